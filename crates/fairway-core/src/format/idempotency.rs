//! The stored format of idempotency records: the key of a record and its value, a format
//! byte, the commit stamp of the append it was written with (filled in by the store), then
//! the body hash, the expiry and the answer as a MessagePack map. An appending command's
//! answer is its event count: the positions follow from the stamp, so the record is written
//! in the append's own transaction without knowing them.

use std::borrow::Cow;

use fairway_dcb::{VERSIONSTAMP_LEN, Versionstamp};
use serde::{Deserialize, Serialize};

use super::now_micros;
use crate::app::idempotency::{BodyHash, StoredResponse};
use crate::backend::Backend;

/// The keys of idempotency records.
#[derive(Clone)]
pub(crate) struct IdempotencyKeys {
    root: Vec<u8>,
}

impl IdempotencyKeys {
    /// The idempotency keys of `backend`.
    pub(crate) fn new(backend: &dyn Backend) -> Self {
        IdempotencyKeys { root: backend.keyspace("idempotency") }
    }

    /// The record of `key` for command `command` (`key` already checked).
    pub(crate) fn record(&self, command: &str, key: &str) -> Vec<u8> {
        [self.root.as_slice(), command.as_bytes(), b"\0", key.as_bytes()].concat()
    }

    /// Prefix of every record.
    pub(crate) fn all(&self) -> &[u8] {
        &self.root
    }
}

/// First byte of a record: its format.
const FORMAT: u8 = 1;
/// Where the commit stamp of an appending command sits in a record.
pub(crate) const STAMP_AT: usize = 1;

/// What a key's record says after [`FORMAT`] and the stamp.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RecordBody {
    /// The hash of the request body the key was first used with.
    pub(crate) body_hash: BodyHash,
    /// When the record expires (µs).
    pub(crate) expires_micros: u64,
    /// What the command answered.
    pub(crate) answer: Answer,
}

/// What a command answered to the first request with a key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// The command appended `events` events in `attempts` cycles, at the record's stamp.
    Appended {
        /// Events appended.
        events: u16,
        /// Cycles run.
        attempts: u32,
    },
    /// The command appended nothing and answered this.
    Response(StoredResponse),
}

/// A decoded record: the stamp of its append, and its body.
#[derive(Debug)]
pub(crate) struct Record {
    stamp: Versionstamp,
    body: RecordBody,
}

impl Record {
    /// The stored value of `body`, its stamp left zero for the store to fill in at
    /// [`STAMP_AT`] (or zero for good when the record is written without an append).
    pub(crate) fn encode(body: &RecordBody) -> Vec<u8> {
        let mut bytes = vec![FORMAT];
        bytes.extend_from_slice(&[0; VERSIONSTAMP_LEN]);
        rmp_serde::encode::write_named(&mut bytes, &StoredBody::of(body)).expect("idempotency records encode");
        bytes
    }

    /// The record stored as `bytes`; bytes of another format or that do not decode are no
    /// record.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Record> {
        let (&format, rest) = bytes.split_first()?;
        if format != FORMAT {
            return None;
        }
        let (stamp, body) = rest.split_at_checked(VERSIONSTAMP_LEN)?;
        let body: StoredBody = rmp_serde::from_slice(body).ok()?;
        Some(Record { stamp: Versionstamp(stamp.try_into().ok()?), body: body.into_body() })
    }

    /// The commit stamp of the append the record was written with.
    pub(crate) fn stamp(&self) -> Versionstamp {
        self.stamp
    }

    /// What the record says.
    pub(crate) fn body(&self) -> &RecordBody {
        &self.body
    }
}

/// Whether stored record bytes are a live record (the append transaction asks it of the
/// value under a key).
pub(crate) fn stands(bytes: &[u8]) -> bool {
    Record::decode(bytes).is_some_and(|r| r.body.expires_micros > now_micros())
}

/// A record body as stored: a MessagePack map under these field names.
#[derive(Serialize, Deserialize)]
struct StoredBody<'a> {
    body_hash: BodyHash,
    expires_micros: u64,
    answer: StoredAnswer<'a>,
}

/// An answer as stored: a map of one entry, the variant's name to its fields.
#[derive(Serialize, Deserialize)]
enum StoredAnswer<'a> {
    Appended { events: u16, attempts: u32 },
    Response { status: u16, body: Cow<'a, [u8]> },
}

impl<'a> StoredBody<'a> {
    /// The stored form of `body`, borrowing its response.
    fn of(body: &'a RecordBody) -> Self {
        let answer = match &body.answer {
            Answer::Appended { events, attempts } => StoredAnswer::Appended { events: *events, attempts: *attempts },
            Answer::Response(response) => {
                StoredAnswer::Response { status: response.status, body: Cow::Borrowed(&response.body) }
            }
        };
        StoredBody { body_hash: body.body_hash, expires_micros: body.expires_micros, answer }
    }

    /// The body stored in this form.
    fn into_body(self) -> RecordBody {
        let answer = match self.answer {
            StoredAnswer::Appended { events, attempts } => Answer::Appended { events, attempts },
            StoredAnswer::Response { status, body } => {
                Answer::Response(StoredResponse { status, body: body.into_owned() })
            }
        };
        RecordBody { body_hash: self.body_hash, expires_micros: self.expires_micros, answer }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(answer: Answer) -> RecordBody {
        RecordBody { body_hash: [7; 32], expires_micros: 0x1122_3344_5566_7788, answer }
    }

    /// The start every record below shares: format, a zero stamp, then the body hash and
    /// the expiry.
    fn head() -> Vec<u8> {
        [
            b"\x01".as_slice(),
            &[0; VERSIONSTAMP_LEN],
            b"\x83",
            b"\xa9body_hash\xdc\x00\x20",
            &[7; 32],
            b"\xaeexpires_micros\xcf\x11\x22\x33\x44\x55\x66\x77\x88",
        ]
        .concat()
    }

    /// The bytes below were written by the idempotency records before their format moved
    /// here; a change here makes existing records unreadable, and their keys run again.
    #[test]
    fn records_keep_their_bytes_and_round_trip() {
        let appended = body(Answer::Appended { events: 2, attempts: 3 });
        let bytes = Record::encode(&appended);
        assert_eq!(
            bytes,
            [head().as_slice(), b"\xa6answer\x81\xa8Appended\x82\xa6events\x02\xa8attempts\x03"].concat()
        );
        assert_eq!(Record::decode(&bytes).unwrap().body(), &appended);

        let response = body(Answer::Response(StoredResponse { status: 422, body: b"{}".to_vec() }));
        let bytes = Record::encode(&response);
        assert_eq!(
            bytes,
            [head().as_slice(), b"\xa6answer\x81\xa8Response\x82\xa6status\xcd\x01\xa6\xa4body\x92{}"].concat()
        );
        assert_eq!(Record::decode(&bytes).unwrap().body(), &response);
    }

    #[test]
    fn the_stamp_is_read_where_the_store_writes_it() {
        let mut bytes = Record::encode(&body(Answer::Appended { events: 1, attempts: 1 }));
        assert_eq!(Record::decode(&bytes).unwrap().stamp(), Versionstamp([0; VERSIONSTAMP_LEN]));
        bytes[STAMP_AT..STAMP_AT + VERSIONSTAMP_LEN].copy_from_slice(&Versionstamp::new(42, 5).0);
        assert_eq!(Record::decode(&bytes).unwrap().stamp(), Versionstamp::new(42, 5));
    }

    #[test]
    fn undecodable_bytes_are_no_record_and_do_not_stand() {
        let bytes = Record::encode(&body(Answer::Appended { events: 1, attempts: 1 }));
        assert!(stands(&bytes));
        assert!(!stands(&Record::encode(&RecordBody {
            expires_micros: 1,
            ..body(Answer::Appended { events: 1, attempts: 1 })
        })));
        for undecodable in
            [&b""[..], b"\x01", &bytes[..STAMP_AT + VERSIONSTAMP_LEN], &bytes[..bytes.len() - 1], b"\x00garbage"]
        {
            assert!(Record::decode(undecodable).is_none(), "{undecodable:?}");
            assert!(!stands(undecodable));
        }
        let other_format = [&[2], &bytes[1..]].concat();
        assert!(Record::decode(&other_format).is_none(), "another format");
    }
}
