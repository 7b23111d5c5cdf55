//! The store as the runtime uses it, behind trait objects: the events, and the derived
//! state (read models, queues, snapshots) in transactions on the same engine. Module `dcb`
//! implements both for every `DcbStore<E>`: the one place the runtime meets the store's
//! key-value layer.

mod dcb;

use std::any::Any;
use std::future::Future;
use std::sync::Arc;

pub use fairway_dcb::kv::{KeyValue, Watch};
use fairway_dcb::{AppendCondition, Appended, EventStore, RawEvent, Receipt, StorageError};
use futures::FutureExt;
use futures::future::BoxFuture;

/// A transaction usable through a trait object.
pub trait DynTx: Send + Sync {
    /// Reads a key (adds a read conflict).
    fn get<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<Option<Vec<u8>>, StorageError>>;
    /// Reads up to `limit` pairs (0: all) in `[begin, end)` (adds a read conflict).
    fn scan<'a>(
        &'a self,
        begin: &'a [u8],
        end: &'a [u8],
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<KeyValue>, StorageError>>;
    /// Reads up to `limit` pairs (0: all) in `[begin, end)` without a read conflict: writes
    /// there by concurrent transactions do not make this one run again. By default a
    /// [`scan`](DynTx::scan) (more conflicts, never fewer).
    fn snapshot_scan<'a>(
        &'a self,
        begin: &'a [u8],
        end: &'a [u8],
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<KeyValue>, StorageError>> {
        self.scan(begin, end, limit)
    }
    /// Writes a key.
    fn set(&self, key: &[u8], value: &[u8]);
    /// Removes a key.
    fn clear(&self, key: &[u8]);
    /// Removes `[begin, end)`.
    fn clear_range(&self, begin: &[u8], end: &[u8]);
    /// The store's clock in microseconds: one clock for every process on the store, never
    /// moving backwards (see `fairway_dcb::kv::KvTransaction::clock_micros`). Leases and due
    /// times use it, not the host's wall clock.
    fn clock_micros(&self) -> BoxFuture<'_, Result<u64, StorageError>>;
    /// Marks the transaction as background work no reply waits on (a view's batch, jobs
    /// enqueued): its commit may share a later command's group commit (see
    /// `fairway_dcb::kv::KvTransaction::set_background`).
    fn set_background(&self);
}

/// An error inside a runtime transaction: storage, or the body's own (boxed) failure.
#[derive(Debug, thiserror::Error)]
pub enum TxFailure {
    /// The storage engine failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The body failed.
    #[error("{0}")]
    Body(Box<dyn std::error::Error + Send + Sync>),
}

/// A transaction body as a [`Backend`] runs it, its value type erased: run again from the
/// start on a retryable conflict. Bodies borrow what they capture for `'a`; write them as
/// closures given to [`<dyn Backend>::transact`](Backend#method.transact), never by hand.
pub type ErasedBody<'a> =
    dyn Fn(Arc<dyn DynTx>) -> BoxFuture<'a, Result<Box<dyn Any + Send>, TxFailure>> + Send + Sync + 'a;

/// The derived state the runtime keeps beside the events (read models, queues, snapshots,
/// idempotency records): keyspaces, serializable transactions and watches on the store's
/// engine. The runtime's own port: nothing in it names the engine's key-value layer.
pub trait StateStore: Send + Sync + 'static {
    /// The key prefix reserved for the runtime part `name` (a view, a queue, ...).
    fn keyspace(&self, name: &str) -> Vec<u8>;
    /// Runs `body` in a serializable transaction with the engine's retry loop and returns
    /// the value of its committed run. Call [`<dyn Backend>::transact`](Backend#method.transact),
    /// which keeps the value's type.
    fn transact_erased<'a, 'b: 'a>(
        &'a self,
        body: &'a ErasedBody<'b>,
    ) -> BoxFuture<'a, Result<Box<dyn Any + Send>, TxFailure>>;
    /// Arms a watch on `keys`: the returned future yields a future completing when any of
    /// them may have changed since.
    fn watch_any(&self, keys: Vec<Vec<u8>>) -> BoxFuture<'_, Result<Watch, StorageError>>;
    /// Whether the store works fully: `Err` says why it refuses writes (e.g. a full disk).
    fn storage_health(&self) -> Result<(), StorageError> {
        Ok(())
    }
    /// How many events one transaction of bulk work (a view's batch) should take at most:
    /// the engine's limits decide.
    fn bulk_events_per_transaction(&self) -> usize {
        fairway_dcb::kv::BULK_EVENTS_PER_TRANSACTION
    }
}

/// The store a runtime binds to: the events, through `fairway-dcb`'s public event-store
/// API, and the [derived state](StateStore) on the same engine, so that an append and its
/// receipt commit in one transaction. Implemented for every `DcbStore<E>`.
pub trait Backend: StateStore {
    /// The event store.
    fn events(&self) -> Arc<dyn EventStore>;
    /// Appends `events` under `conditions` and writes `receipt` in the same transaction,
    /// unless the receipt's key holds a standing value (see
    /// [`DcbStore::append_with_receipt`](fairway_dcb::DcbStore::append_with_receipt)).
    fn append_with_receipt(
        &self,
        events: Vec<RawEvent>,
        conditions: Vec<AppendCondition>,
        receipt: Receipt,
    ) -> BoxFuture<'_, Result<Appended, fairway_dcb::Error>>;
}

impl dyn Backend {
    /// Runs `body` in a serializable transaction (again from the start on a retryable
    /// conflict, so it must have no outside effects) and returns the value of its committed
    /// run. The body borrows what it needs: write it `move |tx| async move { … }` over
    /// references, and it clones nothing per attempt.
    pub async fn transact<'b, R, F, Fut>(&self, body: F) -> Result<R, TxFailure>
    where
        R: Send + 'static,
        F: Fn(Arc<dyn DynTx>) -> Fut + Send + Sync + 'b,
        Fut: Future<Output = Result<R, TxFailure>> + Send + 'b,
    {
        let erased = move |tx: Arc<dyn DynTx>| -> BoxFuture<'b, Result<Box<dyn Any + Send>, TxFailure>> {
            let run = body(tx);
            async move { Ok(Box::new(run.await?) as Box<dyn Any + Send>) }.boxed()
        };
        let value = self.transact_erased(&erased).await?;
        Ok(*value.downcast::<R>().expect("a body's value has the body's type"))
    }
}
