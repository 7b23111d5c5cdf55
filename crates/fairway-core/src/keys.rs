//! Every key the runtime stores beside the events, built in this one module, and the values
//! of views and snapshots (checkpoints, active versions, snapshot states) with their codecs.
//! Queue entries and idempotency records are MessagePack and framed bytes encoded by
//! `automation/queue.rs` and `app/idempotency/record.rs`, in the formats the table gives.
//!
//! Each part of the runtime writes under a keyspace of its own: `⟦name⟧` below stands for
//! [`Backend::keyspace`]`(name)`, in the DCB layout `<namespace> 0x00 u <name> 0x00`, apart
//! from the events and their indexes.
//!
//! | section | key | value |
//! |---|---|---|
//! | view data | `⟦view/<name>⟧ v <version, u32 BE> d <document key>` | the document (MessagePack map) |
//! | view checkpoint | `⟦view/<name>⟧ v <version, u32 BE> c` | the last position seen (12 bytes), then events applied (u64 BE) |
//! | view active version | `⟦view/<name>⟧ active` | the version readers use (u32 BE) |
//! | automation cursor | `⟦automation/<name>⟧ c` | the last triggering position enqueued |
//! | automation jobs | `⟦automation/<name>⟧ q <position>` | a job: attempts, due times, lease, last error (MessagePack) |
//! | automation due index | `⟦automation/<name>⟧ w <due µs, u64 BE> <position>` | nothing |
//! | automation dead letters | `⟦automation/<name>⟧ x <position>` | a [`DeadLetter`](crate::DeadLetter) (MessagePack) |
//! | automation wake | `⟦automation/<name>⟧ k` | when a job was last enqueued or replayed (µs, u64 BE); idle workers of other processes watch it |
//! | automation indexed marker | `⟦automation/<name>⟧ i` | `done`, or the last job given its due entry by the upgrade of an older store |
//! | snapshots | `⟦snapshot⟧ <command> 0x00 <model version, u32 BE> <SHA-256 of the query's stable bytes, 32 bytes>` | the position folded up to, then the state (MessagePack) |
//! | idempotency records | `⟦idempotency⟧ <command> 0x00 <Idempotency-Key>` | format `1`, the append's versionstamp (10 bytes), then the record (MessagePack) |
//!
//! Positions are their 12-byte big-endian encoding, so keys ending in one sort by
//! position, and due entries sort by due time, then position. Every section of a view
//! version lies under `v <version>`, so dropping a version clears one range. A range of
//! keys sharing a prefix is scanned up to that prefix followed by `0xff` ([`end_of`]).
//!
//! These bytes are the format of existing data directories: the test below pins them.

use fairway_dcb::{POSITION_LEN, Position, Query};

use crate::backend::Backend;

/// The end of the range scanned for the keys starting with `prefix`: `prefix 0xff`.
pub(crate) fn end_of(prefix: &[u8]) -> Vec<u8> {
    [prefix, &[0xff]].concat()
}

/// The first key after `key` (to continue a scan past it).
pub(crate) fn after(key: &[u8]) -> Vec<u8> {
    [key, &[0]].concat()
}

/// The keys of one view version.
#[derive(Clone)]
pub(crate) struct ViewKeys {
    /// Prefix of every version of the view.
    pub(crate) versions: Vec<u8>,
    /// Prefix of the version's documents.
    pub(crate) data: Vec<u8>,
    /// The version's checkpoint.
    pub(crate) checkpoint: Vec<u8>,
    /// Prefix of everything the version stores.
    pub(crate) version_root: Vec<u8>,
    /// The version readers use (shared by every version of the view).
    pub(crate) active: Vec<u8>,
}

impl ViewKeys {
    /// The keys of version `version` of view `name`.
    pub(crate) fn new(backend: &dyn Backend, name: &str, version: u32) -> Self {
        let root = backend.keyspace(&format!("view/{name}"));
        let versions = [root.as_slice(), b"v"].concat();
        let version_root = [versions.as_slice(), &version.to_be_bytes()].concat();
        ViewKeys {
            data: [version_root.as_slice(), b"d"].concat(),
            checkpoint: [version_root.as_slice(), b"c"].concat(),
            active: [root.as_slice(), b"active"].concat(),
            version_root,
            versions,
        }
    }

    /// The version a key under [`ViewKeys::versions`] belongs to.
    pub(crate) fn version_of(&self, key: &[u8]) -> Option<u32> {
        let number = key.strip_prefix(self.versions.as_slice())?.get(..4)?;
        decode_version(number)
    }

    /// The first key of version `version` (to continue a scan of the versions there).
    pub(crate) fn version_start(&self, version: u32) -> Vec<u8> {
        [self.versions.as_slice(), &encode_version(version)].concat()
    }
}

/// A view version's checkpoint: the last position it has seen, and how many events it
/// applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    /// The last position seen.
    pub(crate) position: Position,
    /// Events applied.
    pub(crate) processed: u64,
}

impl Checkpoint {
    /// The stored value: the position (12 bytes), then the count (u64 BE).
    pub(crate) fn encode(&self) -> Vec<u8> {
        [self.position.to_bytes().as_slice(), &self.processed.to_be_bytes()].concat()
    }

    /// The checkpoint stored as `bytes`; a value holding the position alone (no count)
    /// counts 0 events applied.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let position = Position::from_bytes(bytes.get(..POSITION_LEN)?)?;
        let processed = bytes.get(POSITION_LEN..).and_then(|b| b.try_into().ok()).map_or(0, u64::from_be_bytes);
        Some(Checkpoint { position, processed })
    }
}

/// A view version number as stored (in keys and as the active version): u32 BE.
pub(crate) fn encode_version(version: u32) -> [u8; 4] {
    version.to_be_bytes()
}

/// The version number stored as `bytes`.
pub(crate) fn decode_version(bytes: &[u8]) -> Option<u32> {
    bytes.try_into().ok().map(u32::from_be_bytes)
}

/// The key of document `key` under a version's `data` prefix ([`ViewKeys::data`]).
pub(crate) fn document(data: &[u8], key: &str) -> Vec<u8> {
    [data, key.as_bytes()].concat()
}

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

/// A stored snapshot: the position its state was folded up to (12 bytes), then the state
/// as its model encodes it.
pub(crate) fn encode_snapshot(position: Position, state: &[u8]) -> Vec<u8> {
    [position.to_bytes().as_slice(), state].concat()
}

/// The position and the encoded state of a stored snapshot.
pub(crate) fn decode_snapshot(bytes: &[u8]) -> Option<(Position, &[u8])> {
    let (position, state) = bytes.split_at_checked(POSITION_LEN)?;
    Some((Position::from_bytes(position)?, state))
}

/// The keys of decision-model snapshots.
#[derive(Clone)]
pub(crate) struct SnapshotKeys {
    root: Vec<u8>,
}

impl SnapshotKeys {
    /// The snapshot keys of `backend`.
    pub(crate) fn new(backend: &dyn Backend) -> Self {
        SnapshotKeys { root: backend.keyspace("snapshot") }
    }

    /// The snapshot of command `command`'s model version `model_version` folded over
    /// `query`.
    /// The query is its SHA-256 over [`Query::stable_bytes`]: a fixed 32 bytes whatever the
    /// query's size, and a format that no change of `Debug` can move.
    pub(crate) fn snapshot(&self, command: &str, model_version: u32, query: &Query) -> Vec<u8> {
        use sha2::Digest;
        let query = sha2::Sha256::digest(query.stable_bytes());
        [self.root.as_slice(), command.as_bytes(), b"\0", &model_version.to_be_bytes(), query.as_slice()].concat()
    }
}

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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use fairway_dcb::{DcbStore, EmbeddedEngine, EmbeddedOptions, QueryItem, Tag};

    use super::*;

    fn backend(dir: &std::path::Path) -> Arc<dyn Backend> {
        let engine = Arc::new(EmbeddedEngine::open(dir, EmbeddedOptions::default()).unwrap());
        Arc::new(DcbStore::new(engine, "app").unwrap())
    }

    /// A position whose every byte differs: `commit 0x0102030405060708`, `batch 0x090a`,
    /// `index 0x0b0c`.
    const POSITION: &[u8; 12] = b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c";
    /// A due time whose every byte differs.
    const DUE: u64 = 0x1122_3344_5566_7788;

    fn position() -> Position {
        Position::from_bytes(POSITION).unwrap()
    }

    fn query() -> Query {
        Query::from(QueryItem::types(["CourseDefined"]).with_tags([Tag::new("course", "c1").unwrap()]))
    }

    /// The bytes below were taken from the key builders before they moved here (in
    /// `view.rs`, `automation/queue.rs`, `snapshot.rs` and `app/idempotency.rs`); a change
    /// here orphans the data of existing stores.
    #[test]
    fn every_key_keeps_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(dir.path());

        let view: &[u8] = b"app\0uview/courses\0";
        let version: &[u8] = b"v\0\0\0\x03";
        let keys = ViewKeys::new(backend.as_ref(), "courses", 3);
        assert_eq!(
            [keys.data.clone(), keys.checkpoint, keys.active, document(&keys.data, "c1"), keys.version_root],
            [
                [view, version, b"d"].concat(),
                [view, version, b"c"].concat(),
                [view, b"active"].concat(),
                [view, version, b"dc1"].concat(),
                [view, version].concat(),
            ]
        );

        let queue: &[u8] = b"app\0uautomation/promote\0";
        let due: &[u8] = b"\x11\x22\x33\x44\x55\x66\x77\x88";
        let keys = QueueKeys::new(backend.as_ref(), "promote");
        assert_eq!(
            [
                keys.cursor.clone(),
                keys.job(position()),
                keys.due_entry(DUE, position()),
                keys.dead(position()),
                keys.wake.clone(),
                keys.indexed.clone(),
                keys.jobs.clone(),
                keys.due.clone(),
                keys.dead.clone(),
            ],
            [
                [queue, b"c"].concat(),
                [queue, b"q", POSITION].concat(),
                [queue, b"w", due, POSITION].concat(),
                [queue, b"x", POSITION].concat(),
                [queue, b"k"].concat(),
                [queue, b"i"].concat(),
                [queue, b"q"].concat(),
                [queue, b"w"].concat(),
                [queue, b"x"].concat(),
            ]
        );
        assert_eq!(keys.job_position(&keys.job(position())), Some(position()));
        assert_eq!(keys.parse_due_entry(&keys.due_entry(DUE, position())), Some((DUE, position())));

        // SHA-256 of the query's stable bytes, computed outside this code: pins both formats.
        let query_digest = "7c76e55afadb224cf6d2e4b9e9abecc174be46699980aebf38cc5085dbbeb880";
        let query_digest: Vec<u8> =
            (0..64).step_by(2).map(|i| u8::from_str_radix(&query_digest[i..i + 2], 16).unwrap()).collect();
        assert_eq!(
            SnapshotKeys::new(backend.as_ref()).snapshot("Subscribe", 2, &query()),
            [b"app\0usnapshot\0Subscribe\0\0\0\0\x02".as_slice(), &query_digest].concat()
        );

        let keys = IdempotencyKeys::new(backend.as_ref());
        assert_eq!(keys.record("define_course", "k-1"), b"app\0uidempotency\0define_course\0k-1".to_vec());
        assert_eq!(keys.all(), b"app\0uidempotency\0");
        assert_eq!(end_of(keys.all()), b"app\0uidempotency\0\xff");
        assert_eq!(after(b"k"), b"k\0");
    }

    /// The values kept in this module's formats: pinned bytes, and each decodes what it
    /// encodes.
    #[test]
    fn every_value_keeps_its_bytes_and_round_trips() {
        let checkpoint = Checkpoint { position: position(), processed: 0x0102 };
        let bytes = checkpoint.encode();
        assert_eq!(bytes, [POSITION.as_slice(), b"\0\0\0\0\0\0\x01\x02"].concat());
        assert_eq!(Checkpoint::decode(&bytes), Some(checkpoint));
        assert_eq!(
            Checkpoint::decode(POSITION),
            Some(Checkpoint { position: position(), processed: 0 }),
            "a checkpoint written before the count was kept"
        );
        assert_eq!(Checkpoint::decode(&POSITION[..11]), None, "a cut position is no checkpoint");

        assert_eq!(encode_version(3), *b"\0\0\0\x03");
        assert_eq!(decode_version(&encode_version(u32::MAX)), Some(u32::MAX));
        assert_eq!(decode_version(b"\0\x03"), None);

        let snapshot = encode_snapshot(position(), b"state");
        assert_eq!(snapshot, [POSITION.as_slice(), b"state"].concat());
        assert_eq!(decode_snapshot(&snapshot), Some((position(), b"state".as_slice())));
        assert_eq!(decode_snapshot(&POSITION[..5]), None);

        let dir = tempfile::tempdir().unwrap();
        let keys = ViewKeys::new(backend(dir.path()).as_ref(), "courses", 7);
        assert_eq!(keys.version_of(&keys.checkpoint), Some(7));
        assert_eq!(keys.version_start(8), ViewKeys::new(backend(dir.path()).as_ref(), "courses", 8).version_root);
    }
}
