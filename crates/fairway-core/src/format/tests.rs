//! The bytes of every key, and of the view and snapshot values, as existing data
//! directories hold them.

use std::sync::Arc;

use fairway_dcb::{DcbStore, EmbeddedEngine, EmbeddedOptions, Position, Query, QueryItem, Tag};

use super::*;
use crate::backend::Backend;

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
        [keys.data.clone(), keys.checkpoint, keys.lease, keys.active, document(&keys.data, "c1"), keys.version_root],
        [
            [view, version, b"d"].concat(),
            [view, version, b"c"].concat(),
            [view, version, b"l"].concat(),
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

    let lease = Lease { until_micros: DUE, holder: "4242-0a0b0c0d".into() };
    let bytes = lease.encode();
    assert_eq!(bytes, b"\x11\x22\x33\x44\x55\x66\x77\x884242-0a0b0c0d");
    assert_eq!(Lease::decode(&bytes), Some(lease));
    assert_eq!(Lease::decode(&bytes[..7]), None, "a cut time is no lease");
    assert_eq!(Lease::decode(b"\0\0\0\0\0\0\0\x01\xff"), None, "a holder that is not UTF-8 is no lease");

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
