//! The stored format of an automation's queue: the keys of its sections (cursor, jobs, due
//! index, dead letters, wake, indexed marker) and the values under them.
//!
//! A job's times and the due index's keys count in the store's clock
//! (`DynTx::clock_micros`): on the embedded engine microseconds since the Unix epoch, what
//! the host's clock wrote here before, so existing data directories read unchanged; on
//! FoundationDB the cluster's read version (jobs timed on a host's clock there by earlier
//! versions are made due by `automation::queue::rebase_foreign_times`). The wake value is
//! only a change marker, still the host's clock.

use std::borrow::Cow;

use fairway_dcb::{POSITION_LEN, Position};
use serde::{Deserialize, Serialize};

use crate::automation::DeadLetter;
use crate::backend::Backend;

/// The keys of one automation's queue.
#[derive(Clone)]
pub(crate) struct QueueKeys {
    /// The enqueuer's cursor.
    pub(crate) cursor: Vec<u8>,
    /// Prefix of the jobs.
    pub(crate) jobs: Vec<u8>,
    /// Prefix of the due-time index.
    pub(crate) due: Vec<u8>,
    /// Prefix of the dead letters.
    pub(crate) dead: Vec<u8>,
    /// Rewritten by every enqueue and replay.
    pub(crate) wake: Vec<u8>,
    /// How far jobs of older stores have been given their due entry.
    pub(crate) indexed: Vec<u8>,
}

impl QueueKeys {
    /// The queue keys of automation `name`.
    pub(crate) fn new(backend: &dyn Backend, name: &str) -> Self {
        let root = backend.keyspace(&format!("automation/{name}"));
        let key = |section: &[u8]| [root.as_slice(), section].concat();
        QueueKeys {
            cursor: key(b"c"),
            jobs: key(b"q"),
            due: key(b"w"),
            dead: key(b"x"),
            wake: key(b"k"),
            indexed: key(b"i"),
        }
    }

    /// The job triggered by the event at `position`.
    pub(crate) fn job(&self, position: Position) -> Vec<u8> {
        [self.jobs.as_slice(), &position.to_bytes()].concat()
    }

    /// The position of a job key, if it is one.
    pub(crate) fn job_position(&self, key: &[u8]) -> Option<Position> {
        key.strip_prefix(self.jobs.as_slice()).and_then(Position::from_bytes)
    }

    /// The due entry of the job at `position`, due at `due_micros`.
    pub(crate) fn due_entry(&self, due_micros: u64, position: Position) -> Vec<u8> {
        [self.due.as_slice(), &due_micros.to_be_bytes(), &position.to_bytes()].concat()
    }

    /// The due time and position of a due entry.
    pub(crate) fn parse_due_entry(&self, key: &[u8]) -> Option<(u64, Position)> {
        let rest = key.strip_prefix(self.due.as_slice())?;
        let (due, position) = rest.split_at_checked(8)?;
        Some((u64::from_be_bytes(due.try_into().ok()?), Position::from_bytes(position)?))
    }

    /// The dead letter of the job at `position`.
    pub(crate) fn dead(&self, position: Position) -> Vec<u8> {
        [self.dead.as_slice(), &position.to_bytes()].concat()
    }
}

/// The stored cursor: the last triggering position enqueued (12 bytes).
pub(crate) fn encode_cursor(position: Position) -> [u8; POSITION_LEN] {
    position.to_bytes()
}

/// The cursor stored as `bytes`; bytes that are no position are no cursor.
pub(crate) fn decode_cursor(bytes: &[u8]) -> Option<Position> {
    Position::from_bytes(bytes)
}

/// The value of a due entry: nothing, its key says it all.
pub(crate) const DUE_ENTRY: &[u8] = &[];

/// The stored wake value: the time of the enqueue or replay (µs, u64 BE).
pub(crate) fn encode_wake(now_micros: u64) -> [u8; 8] {
    now_micros.to_be_bytes()
}

/// A queued job, stored as a MessagePack map under its field names.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Job {
    /// Attempts started so far.
    pub(crate) attempts: u32,
    /// No attempt before this time (µs, the store's clock): when the job was enqueued, or
    /// the end of its backoff.
    pub(crate) not_before_micros: u64,
    /// The end of the current lease (µs, the store's clock); 0 when the job was never
    /// leased or was settled since.
    pub(crate) lease_until_micros: u64,
    /// The worker holding the lease.
    pub(crate) lease_owner: Option<String>,
    /// The error of the last failed attempt.
    pub(crate) last_error: Option<String>,
}

impl Job {
    /// A job never attempted, due from `now` (µs): jobs run in the order they became due,
    /// so fresh jobs do not starve retries and expired leases that are due earlier.
    pub(crate) fn fresh(now: u64) -> Self {
        Job { attempts: 0, not_before_micros: now, lease_until_micros: 0, lease_owner: None, last_error: None }
    }

    /// From when a worker may claim it: the due time its due entry is keyed by.
    pub(crate) fn due_micros(&self) -> u64 {
        self.not_before_micros.max(self.lease_until_micros)
    }

    /// The stored value.
    pub(crate) fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("queue records encode")
    }

    /// The job stored as `bytes`.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, rmp_serde::decode::Error> {
        rmp_serde::from_slice(bytes)
    }
}

/// A dead letter as stored: a MessagePack map of the fields of [`DeadLetter`], the
/// position as its hex text.
#[derive(Serialize, Deserialize)]
struct StoredDeadLetter<'a> {
    position: Position,
    attempts: u32,
    error: Cow<'a, str>,
}

/// The stored value of `dead`.
pub(crate) fn encode_dead_letter(dead: &DeadLetter) -> Vec<u8> {
    let stored =
        StoredDeadLetter { position: dead.position, attempts: dead.attempts, error: Cow::Borrowed(&dead.error) };
    rmp_serde::to_vec_named(&stored).expect("queue records encode")
}

/// The dead letter stored as `bytes`.
pub(crate) fn decode_dead_letter(bytes: &[u8]) -> Result<DeadLetter, rmp_serde::decode::Error> {
    let StoredDeadLetter { position, attempts, error } = rmp_serde::from_slice(bytes)?;
    Ok(DeadLetter { position, attempts, error: error.into_owned() })
}

/// How far the jobs of a store written before the due index have been given their due
/// entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Indexed {
    /// Every job has its due entry: stored as `done`.
    Done,
    /// Every job up to this position has its due entry: stored as the position (12
    /// bytes).
    Through(Position),
}

/// The stored value of [`Indexed::Done`].
const DONE: &[u8] = b"done";

impl Indexed {
    /// The stored value.
    pub(crate) fn encode(&self) -> Vec<u8> {
        match self {
            Indexed::Done => DONE.to_vec(),
            Indexed::Through(position) => position.to_bytes().to_vec(),
        }
    }

    /// The marker stored as `bytes`; other bytes are no marker (indexing starts over).
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes == DONE { Some(Indexed::Done) } else { Position::from_bytes(bytes).map(Indexed::Through) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A position whose every byte differs.
    fn position() -> Position {
        Position::new(0x0102_0304_0506_0708, 0x090a, 0x0b0c)
    }

    /// The bytes below were written by the queue before its format moved here; a change
    /// here orphans the jobs and dead letters of existing stores.
    #[test]
    fn jobs_keep_their_bytes_and_round_trip() {
        let job = Job {
            attempts: 3,
            not_before_micros: 0x1122_3344_5566_7788,
            lease_until_micros: 0x0102_0304,
            lease_owner: Some("w-1".into()),
            last_error: Some("boom".into()),
        };
        let bytes = job.encode();
        assert_eq!(
            bytes,
            [
                b"\x85".as_slice(),
                b"\xa8attempts\x03",
                b"\xb1not_before_micros\xcf\x11\x22\x33\x44\x55\x66\x77\x88",
                b"\xb2lease_until_micros\xce\x01\x02\x03\x04",
                b"\xablease_owner\xa3w-1",
                b"\xaalast_error\xa4boom",
            ]
            .concat()
        );
        assert_eq!(Job::decode(&bytes).unwrap(), job);

        let fresh = Job::fresh(5);
        let bytes = fresh.encode();
        assert_eq!(
            bytes,
            [
                b"\x85".as_slice(),
                b"\xa8attempts\x00",
                b"\xb1not_before_micros\x05",
                b"\xb2lease_until_micros\x00",
                b"\xablease_owner\xc0",
                b"\xaalast_error\xc0",
            ]
            .concat()
        );
        assert_eq!(Job::decode(&bytes).unwrap(), fresh);
        assert_eq!(fresh.due_micros(), 5);
        assert_eq!(Job { lease_until_micros: 9, ..fresh }.due_micros(), 9, "a lease defers the due time");

        assert!(Job::decode(b"\x00garbage").is_err());
        assert!(Job::decode(&[]).is_err());
    }

    #[test]
    fn dead_letters_keep_their_bytes_and_round_trip() {
        let dead = DeadLetter { position: position(), attempts: 5, error: "boom".into() };
        let bytes = encode_dead_letter(&dead);
        assert_eq!(
            bytes,
            [
                b"\x83".as_slice(),
                b"\xa8position\xb80102030405060708090a0b0c",
                b"\xa8attempts\x05",
                b"\xa5error\xa4boom",
            ]
            .concat()
        );
        assert_eq!(decode_dead_letter(&bytes).unwrap(), dead);
        assert!(decode_dead_letter(b"\x81\xa8position\xa3xyz").is_err(), "a position that does not parse");
        assert!(decode_dead_letter(&Job::fresh(0).encode()).is_err(), "a job is no dead letter");
    }

    #[test]
    fn cursor_wake_due_and_indexed_values_keep_their_bytes_and_round_trip() {
        let bytes = encode_cursor(position());
        assert_eq!(bytes, *b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c");
        assert_eq!(decode_cursor(&bytes), Some(position()));
        assert_eq!(decode_cursor(&bytes[..11]), None);

        assert_eq!(encode_wake(0x1122_3344_5566_7788), *b"\x11\x22\x33\x44\x55\x66\x77\x88");
        assert_eq!(DUE_ENTRY, b"");

        assert_eq!(Indexed::Done.encode(), b"done");
        assert_eq!(Indexed::Through(position()).encode(), bytes);
        for marker in [Indexed::Done, Indexed::Through(position())] {
            assert_eq!(Indexed::decode(&marker.encode()), Some(marker));
        }
        assert_eq!(Indexed::decode(b"don"), None);
    }
}
