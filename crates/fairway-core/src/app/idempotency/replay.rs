//! What a key replays: the [`StoredResponse`] type, and the answer a stored record gives a
//! request (its response again, rebuilt from the append's stamp for an appending command,
//! or a mismatch when the body differs).

use serde::{Deserialize, Serialize};

use super::{BodyHash, Settlement};
use crate::command::CommandReply;
use crate::format::idempotency::{Answer, Record};

/// A stored response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Vec<u8>,
}

impl StoredResponse {
    /// The 200 response to a command that answered `reply`.
    pub fn reply(reply: &CommandReply) -> Self {
        let value = serde_json::to_value(reply).expect("replies encode");
        StoredResponse { status: 200, body: serde_json::to_vec(&value).expect("JSON encodes") }
    }

    /// Whether the response invites a retry (and is therefore not stored).
    pub(super) fn invites_retry(&self) -> bool {
        self.status == 409 || self.status >= 500
    }
}

impl Record {
    /// The response to replay: an appending command's reply is rebuilt from the record's
    /// stamp, whose positions the store assigned.
    fn response(&self) -> StoredResponse {
        match &self.body().answer {
            Answer::Appended { events, attempts } => {
                StoredResponse::reply(&CommandReply::appended(&self.stamp().positions(*events), *attempts))
            }
            Answer::Response(response) => response.clone(),
        }
    }

    /// What a request with `body_hash` gets from this record.
    pub(super) fn settlement(&self, body_hash: &BodyHash) -> Settlement {
        if &self.body().body_hash == body_hash { Settlement::Replay(self.response()) } else { Settlement::Mismatch }
    }
}

#[cfg(test)]
mod tests {
    use fairway_dcb::{Position, VERSIONSTAMP_LEN, Versionstamp};

    use super::*;
    use crate::format::idempotency::{RecordBody, STAMP_AT};

    #[test]
    fn records_replay_their_answer_to_the_same_body_only() {
        let body = RecordBody {
            body_hash: [7; 32],
            expires_micros: u64::MAX,
            answer: Answer::Appended { events: 2, attempts: 3 },
        };
        let mut bytes = Record::encode(&body);
        bytes[STAMP_AT..STAMP_AT + VERSIONSTAMP_LEN].copy_from_slice(&Versionstamp::new(42, 5).0);
        let record = Record::decode(&bytes).unwrap();
        let expected = [Position::new(42, 5, 0), Position::new(42, 5, 1)];
        assert_eq!(
            record.settlement(&[7; 32]),
            Settlement::Replay(StoredResponse::reply(&CommandReply::appended(&expected, 3)))
        );
        assert_eq!(record.settlement(&[8; 32]), Settlement::Mismatch);

        let refused = StoredResponse { status: 422, body: b"{\"error\":\"no\"}".to_vec() };
        let body = RecordBody { answer: Answer::Response(refused.clone()), ..body };
        let record = Record::decode(&Record::encode(&body)).unwrap();
        assert_eq!(record.settlement(&[7; 32]), Settlement::Replay(refused));
    }
}
