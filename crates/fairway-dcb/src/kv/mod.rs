//! The storage port: an ordered key-value space with FoundationDB's semantics.
//!
//! Everything persistent lives behind this port; the DCB logic above it is written once
//! and runs unchanged on every engine:
//! - byte keys in order; point gets and range scans (forwards, backwards, with limits);
//! - `set`, `clear`, `clear_range`, atomic `add`;
//! - serializable transactions run through a retry loop ([`KvEngine::transact`]): a body
//!   whose commit conflicts is run again from the start, so bodies must be free of outside
//!   side effects;
//! - versionstamped keys and values: a 10-byte stamp assigned at commit, increasing in
//!   commit order, so a reader never sees a later stamp before an earlier one;
//! - [`KvEngine::watch_any`] to wait for one of some keys to change.

pub mod embedded;
#[doc(hidden)]
pub mod faults;
#[cfg(feature = "fdb")]
pub mod fdb;
pub mod interleave;
mod retry;

use std::future::Future;

pub use retry::RetryPolicy;

use crate::error::StorageError;

/// Length of a versionstamp in bytes.
pub const VERSIONSTAMP_LEN: usize = 10;

/// The value of a counter kept by [`KvTransaction::atomic_add`]: a little-endian `i64`,
/// shorter values zero-extended, longer ones cut to 8 bytes (FoundationDB's `ADD` rules).
pub fn little_endian_i64(bytes: &[u8]) -> i64 {
    let mut le = [0u8; 8];
    let n = bytes.len().min(8);
    le[..n].copy_from_slice(&bytes[..n]);
    i64::from_le_bytes(le)
}

/// A commit stamp: 8 bytes of commit version then 2 bytes of order within the commit.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Versionstamp(pub [u8; VERSIONSTAMP_LEN]);

impl Versionstamp {
    /// Builds a stamp from a commit version and the order within that commit.
    pub fn new(commit: u64, order: u16) -> Self {
        let mut bytes = [0u8; VERSIONSTAMP_LEN];
        bytes[..8].copy_from_slice(&commit.to_be_bytes());
        bytes[8..].copy_from_slice(&order.to_be_bytes());
        Versionstamp(bytes)
    }

    /// The commit version part.
    pub fn commit(&self) -> u64 {
        u64::from_be_bytes(self.0[..8].try_into().expect("8 bytes"))
    }

    /// The order-within-commit part.
    pub fn order(&self) -> u16 {
        u16::from_be_bytes(self.0[8..].try_into().expect("2 bytes"))
    }

    /// The positions of the `count` events an append committed under this stamp, in
    /// order (the event's index in the batch is the last part of its position).
    pub fn positions(&self, count: u16) -> Vec<crate::Position> {
        (0..count).map(|index| crate::Position::new(self.commit(), self.order(), index)).collect()
    }
}

/// An armed watch: completes when a watched key may have changed.
pub type Watch = futures::future::BoxFuture<'static, Result<(), StorageError>>;

/// One key and its value.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct KeyValue {
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
}

/// A range scan: keys in `[begin, end)`, at most `limit` of them (0: no limit), in
/// descending order when `reverse`. A `snapshot` scan adds no read conflict.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RangeScan {
    /// First key included.
    pub begin: Vec<u8>,
    /// First key excluded.
    pub end: Vec<u8>,
    /// Most pairs returned; 0 means no limit.
    pub limit: usize,
    /// Scan from the end towards the beginning.
    pub reverse: bool,
    /// Read without adding a read conflict range.
    pub snapshot: bool,
}

/// The result of a committed transaction.
#[derive(Debug)]
pub struct Committed<T> {
    /// What the body returned.
    pub value: T,
    /// The stamp given to the transaction's versionstamped writes, if it made any.
    pub versionstamp: Option<Versionstamp>,
}

/// Errors a transaction body may return: anything built from a [`StorageError`], so that
/// the engine can tell retryable storage failures from the body's own errors.
pub trait TxError: From<StorageError> + Send + 'static {
    /// The storage failure inside, if this error is one.
    fn as_storage(&self) -> Option<&StorageError>;
}

impl TxError for StorageError {
    fn as_storage(&self) -> Option<&StorageError> {
        Some(self)
    }
}

/// One transaction attempt. Handles are cheap clones of the same transaction.
pub trait KvTransaction: Clone + Send + Sync + 'static {
    /// Reads one key.
    fn get(&self, key: &[u8], snapshot: bool) -> impl Future<Output = Result<Option<Vec<u8>>, StorageError>> + Send;

    /// Scans a key range, handing each pair to `visit` in scan order without copying it;
    /// returns how many pairs were visited. An error from `visit` stops the scan.
    fn scan_range<V>(&self, scan: &RangeScan, visit: V) -> impl Future<Output = Result<usize, StorageError>> + Send
    where
        V: FnMut(&[u8], &[u8]) -> Result<(), StorageError> + Send;

    /// Scans a key range into owned pairs.
    fn get_range(&self, scan: &RangeScan) -> impl Future<Output = Result<Vec<KeyValue>, StorageError>> + Send {
        async move {
            let mut pairs = Vec::new();
            self.scan_range(scan, |key, value| {
                pairs.push(KeyValue { key: key.to_vec(), value: value.to_vec() });
                Ok(())
            })
            .await?;
            Ok(pairs)
        }
    }

    /// Writes a key.
    fn set(&self, key: &[u8], value: &[u8]);

    /// Removes a key.
    fn clear(&self, key: &[u8]);

    /// Removes every key in `[begin, end)`.
    fn clear_range(&self, begin: &[u8], end: &[u8]);

    /// Adds `delta` to the little-endian `i64` stored at `key` (missing counts as 0),
    /// without a read conflict.
    fn atomic_add(&self, key: &[u8], delta: i64);

    /// Writes `value` at `key`, whose bytes `[offset, offset + 10)` are replaced at commit
    /// by the transaction's versionstamp.
    fn set_versionstamped_key(&self, key: Vec<u8>, offset: usize, value: &[u8]);

    /// Writes `value` at `key`; bytes `[offset, offset + 10)` of the value are replaced at
    /// commit by the transaction's versionstamp.
    fn set_versionstamped_value(&self, key: &[u8], value: Vec<u8>, offset: usize);

    /// The store's clock, in microseconds, as this transaction sees it: one clock for every
    /// process using the store, never moving backwards, so that leases and due times do not
    /// depend on each host's wall clock. The embedded engine (one process) reads the host's
    /// clock since the Unix epoch, held monotonic; FoundationDB reads the transaction's read
    /// version, which the cluster advances about 10^6 per second and which leaps forward in
    /// a recovery or after a restore (`advanceversion`): a leap ends leases early, never late.
    fn clock_micros(&self) -> impl Future<Output = Result<u64, StorageError>> + Send;

    /// Marks this transaction as background work that no reply waits on (a view applying
    /// events, an automation enqueuing jobs). While commands are committing, an engine with
    /// group commit may hold its commit a moment so that it shares the next command's sync
    /// instead of taking one of its own, ahead of that command. Its commit is as durable and
    /// as exactly-once as any other; only its acknowledgement may come later. Engines
    /// without group commit (FoundationDB) ignore it.
    fn set_background(&self) {}
}

/// Events one transaction of bulk work takes by default: FoundationDB ends a transaction at
/// 5 s and 10 MB.
pub const BULK_EVENTS_PER_TRANSACTION: usize = 1024;

/// A storage engine implementing the port.
pub trait KvEngine: Send + Sync + 'static {
    /// The transaction handle given to bodies.
    type Tx: KvTransaction;

    /// Runs `body` in a serializable transaction, again from the start on a retryable
    /// failure (conflict, injected conflict, transaction too old), within the engine's
    /// [`RetryPolicy`]. A transaction that wrote nothing commits nothing.
    fn transact<T, E, F, Fut>(&self, body: F) -> impl Future<Output = Result<Committed<T>, E>> + Send
    where
        T: Send,
        E: TxError,
        F: FnMut(Self::Tx) -> Fut + Send,
        Fut: Future<Output = Result<T, E>> + Send;

    /// Arms a watch on `keys`. Once the returned future resolves, the watch is armed: the
    /// inner future it yields completes when any of the keys may have changed after that
    /// point (spurious wake-ups are allowed; missed changes are not).
    fn watch_any(&self, keys: Vec<Vec<u8>>) -> impl Future<Output = Result<Watch, StorageError>> + Send;

    /// Whether a commit's result can be reported unknown when it landed (FoundationDB's
    /// `commit_unknown_result`), so that [`KvEngine::transact`] runs a body again after its
    /// commit. Appends then write a commit marker to recognise their own earlier commit.
    fn commit_result_may_be_unknown(&self) -> bool {
        false
    }

    /// How many events one transaction of bulk work (a view applying the log) should take
    /// at most: [`BULK_EVENTS_PER_TRANSACTION`] by default; an engine without
    /// FoundationDB's limits takes more, so that a document changed by several events of a
    /// batch is written once for all of them.
    fn bulk_events_per_transaction(&self) -> usize {
        BULK_EVENTS_PER_TRANSACTION
    }

    /// Whether the engine works fully: `Err` says why it refuses writes (e.g.
    /// [`StorageError::DiskFull`]) or that it is closed. Engines that cannot tell answer `Ok`.
    fn health(&self) -> Result<(), StorageError> {
        Ok(())
    }
}
