//! Every key the runtime stores beside the events, built in this one module.
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

use fairway_dcb::{Position, Query};

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
        let version_root = [root.as_slice(), b"v", &version.to_be_bytes()].concat();
        ViewKeys {
            data: [version_root.as_slice(), b"d"].concat(),
            checkpoint: [version_root.as_slice(), b"c"].concat(),
            active: [root.as_slice(), b"active"].concat(),
            version_root,
        }
    }
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
}
