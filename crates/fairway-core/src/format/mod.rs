//! The stored format: every key the runtime writes beside the events and every value under
//! them, built, encoded and decoded in this module alone.
//!
//! Each part of the runtime writes under a keyspace of its own: `⟦name⟧` below stands for
//! [`StateStore::keyspace`](crate::backend::StateStore::keyspace)`(name)`, in the DCB layout `<namespace> 0x00 u <name> 0x00`, apart
//! from the events and their indexes. The key builders and value codecs of a section live in
//! its submodule: [`view`], [`queue`], [`snapshot`] and [`idempotency`].
//!
//! | section | key | value | codec |
//! |---|---|---|---|
//! | view data | `⟦view/<name>⟧ v <version, u32 BE> d <document key>` | the document (MessagePack map) | the view's document type, through [`ViewTx`](crate::ViewTx) |
//! | view checkpoint | `⟦view/<name>⟧ v <version, u32 BE> c` | the last position seen (12 bytes), then events applied (u64 BE) | [`view::Checkpoint`] |
//! | view projector lease | `⟦view/<name>⟧ v <version, u32 BE> l` | when the lease ends (the store's clock, µs, u64 BE), then the holding instance's id (UTF-8) | [`view::Lease`] |
//! | view active version | `⟦view/<name>⟧ active` | the version readers use (u32 BE) | [`view::encode_version`], [`view::decode_version`] |
//! | automation cursor | `⟦automation/<name>⟧ c` | the last triggering position enqueued (12 bytes) | [`queue::encode_cursor`], [`queue::decode_cursor`] |
//! | automation jobs | `⟦automation/<name>⟧ q <position>` | a job: attempts, due times, lease, last error (MessagePack map) | [`queue::Job`] |
//! | automation due index | `⟦automation/<name>⟧ w <due µs, u64 BE> <position>` | nothing | [`queue::DUE_ENTRY`] |
//! | automation dead letters | `⟦automation/<name>⟧ x <position>` | a [`DeadLetter`](crate::DeadLetter): position (hex text), attempts, error (MessagePack map) | [`queue::encode_dead_letter`], [`queue::decode_dead_letter`] |
//! | automation wake | `⟦automation/<name>⟧ k` | when a job was last enqueued or replayed (µs, u64 BE); idle workers of other processes watch it | [`queue::encode_wake`] |
//! | automation indexed marker | `⟦automation/<name>⟧ i` | `done`, or the last job given its due entry by the upgrade of an older store (12 bytes) | [`queue::Indexed`] |
//! | snapshots | `⟦snapshot⟧ <command> 0x00 <model version, u32 BE> <SHA-256 of the query's stable bytes, 32 bytes>` | the position folded up to (12 bytes), then the state (MessagePack) | [`snapshot::encode_snapshot`], [`snapshot::decode_snapshot`]; the state by the model's [`SnapshotCodec`](crate::snapshot::SnapshotCodec) |
//! | idempotency records | `⟦idempotency⟧ <command> 0x00 <Idempotency-Key>` | format `1`, the append's versionstamp (10 bytes), then the body hash, expiry and answer (MessagePack map) | [`idempotency::Record`] |
//!
//! Positions are their 12-byte big-endian encoding, so keys ending in one sort by
//! position, and due entries sort by due time, then position. Every section of a view
//! version lies under `v <version>`, so dropping a version clears one range. A range of
//! keys sharing a prefix is scanned up to that prefix followed by `0xff` ([`end_of`]).
//! Times are microseconds since the Unix epoch; a view's lease and an automation job's due
//! time and lease count in the store's clock (`DynTx::clock_micros`), the same for every
//! process on the store (on the embedded engine, microseconds since the Unix epoch too).
//!
//! These bytes are the format of existing data directories: the tests pin them (keys in
//! this module's tests, queue and idempotency values in their submodules' tests). Stored
//! bytes that do not decode are errors or absent values, never panics.

pub(crate) mod idempotency;
pub(crate) mod queue;
pub(crate) mod snapshot;
pub(crate) mod view;

use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) use idempotency::IdempotencyKeys;
pub(crate) use queue::QueueKeys;
pub(crate) use snapshot::{SnapshotKeys, decode_snapshot, encode_snapshot};
pub(crate) use view::{Checkpoint, Lease, ViewKeys, decode_version, document, encode_version};

/// The end of the range scanned for the keys starting with `prefix`: `prefix 0xff`.
pub(crate) fn end_of(prefix: &[u8]) -> Vec<u8> {
    [prefix, &[0xff]].concat()
}

/// The first key after `key` (to continue a scan past it).
pub(crate) fn after(key: &[u8]) -> Vec<u8> {
    [key, &[0]].concat()
}

/// The time now in the unit of stored times: microseconds since the Unix epoch.
pub(crate) fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests;
