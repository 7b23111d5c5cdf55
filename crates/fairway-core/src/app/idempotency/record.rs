//! The stored record of an idempotency key: a format byte, the commit stamp of the append
//! it was written with (filled in by the store), then the body hash, the expiry and the
//! answer in MessagePack. An appending command's answer is rebuilt from the stamp, so it is
//! written in the append's own transaction without knowing its positions.

use std::time::{SystemTime, UNIX_EPOCH};

use fairway_dcb::{VERSIONSTAMP_LEN, Versionstamp};
use serde::{Deserialize, Serialize};

use super::{BodyHash, Outcome};
use crate::command::CommandReply;

/// First byte of a record: its format.
const FORMAT: u8 = 1;
/// Where the commit stamp of an appending command sits in a record.
pub(super) const STAMP_AT: usize = 1;

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

/// What a key's record says after [`FORMAT`] and the stamp.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct RecordBody {
    pub(super) body_hash: BodyHash,
    pub(super) expires_micros: u64,
    pub(super) answer: Answer,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Answer {
    /// The command appended `events` events in `attempts` cycles, at the record's stamp.
    Appended { events: u16, attempts: u32 },
    /// The command appended nothing and answered this.
    Response(StoredResponse),
}

/// A decoded record.
#[derive(Debug)]
pub(super) struct Record {
    stamp: Versionstamp,
    body: RecordBody,
}

impl Record {
    pub(super) fn encode(body: &RecordBody) -> Vec<u8> {
        let mut bytes = vec![FORMAT];
        bytes.extend_from_slice(&[0; VERSIONSTAMP_LEN]);
        rmp_serde::encode::write_named(&mut bytes, body).expect("idempotency records encode");
        bytes
    }

    pub(super) fn decode(bytes: &[u8]) -> Option<Record> {
        let (&format, rest) = bytes.split_first()?;
        if format != FORMAT || rest.len() < VERSIONSTAMP_LEN {
            return None;
        }
        let (stamp, body) = rest.split_at(VERSIONSTAMP_LEN);
        Some(Record { stamp: Versionstamp(stamp.try_into().ok()?), body: rmp_serde::from_slice(body).ok()? })
    }

    /// The response to replay.
    fn response(&self) -> StoredResponse {
        match &self.body.answer {
            Answer::Appended { events, attempts } => {
                StoredResponse::reply(&CommandReply::appended(&self.stamp.positions(*events), *attempts))
            }
            Answer::Response(response) => response.clone(),
        }
    }

    /// What a request with `body_hash` gets from this record.
    pub(super) fn outcome(&self, body_hash: &BodyHash) -> Outcome {
        if &self.body.body_hash == body_hash { Outcome::Replay(self.response()) } else { Outcome::Mismatch }
    }
}

/// Whether stored record bytes are a live record (used by the append transaction).
pub(super) fn stands(bytes: &[u8]) -> bool {
    Record::decode(bytes).is_some_and(|r| r.body.expires_micros > now_micros())
}

pub(super) fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_rebuild_positions_from_the_stamp() {
        let body = RecordBody {
            body_hash: [7; 32],
            expires_micros: u64::MAX,
            answer: Answer::Appended { events: 2, attempts: 3 },
        };
        let mut bytes = Record::encode(&body);
        bytes[STAMP_AT..STAMP_AT + VERSIONSTAMP_LEN].copy_from_slice(&Versionstamp::new(42, 5).0);
        assert!(stands(&bytes));
        let record = Record::decode(&bytes).unwrap();
        let expected = [fairway_dcb::Position::new(42, 5, 0), fairway_dcb::Position::new(42, 5, 1)];
        assert_eq!(
            record.outcome(&[7; 32]),
            Outcome::Replay(StoredResponse::reply(&CommandReply::appended(&expected, 3)))
        );
        assert_eq!(record.outcome(&[8; 32]), Outcome::Mismatch);
        let expired = RecordBody { expires_micros: 1, ..body };
        assert!(!stands(&Record::encode(&expired)));
        assert!(!stands(b"\x00garbage"));
    }
}
