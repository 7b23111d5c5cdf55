//! The store as the runtime uses it, behind trait objects: events, plus transactions on the
//! same engine for read models and queues. Implemented for every `DcbStore<E>`.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;

pub use fairway_dcb::kv::{KeyValue, Watch};
use fairway_dcb::kv::{KvEngine, KvTransaction, RangeScan};
use fairway_dcb::{AppendCondition, AppendRecord, DcbStore, Event, EventStore, RecordedAppend, StorageError};
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
    /// Writes a key.
    fn set(&self, key: &[u8], value: &[u8]);
    /// Removes a key.
    fn clear(&self, key: &[u8]);
    /// Removes `[begin, end)`.
    fn clear_range(&self, begin: &[u8], end: &[u8]);
}

impl<T: KvTransaction> DynTx for T {
    fn get<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<Option<Vec<u8>>, StorageError>> {
        KvTransaction::get(self, key, false).boxed()
    }

    fn scan<'a>(
        &'a self,
        begin: &'a [u8],
        end: &'a [u8],
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<KeyValue>, StorageError>> {
        async move {
            let scan = RangeScan { begin: begin.to_vec(), end: end.to_vec(), limit, reverse: false, snapshot: false };
            self.get_range(&scan).await
        }
        .boxed()
    }

    fn set(&self, key: &[u8], value: &[u8]) {
        KvTransaction::set(self, key, value)
    }

    fn clear(&self, key: &[u8]) {
        KvTransaction::clear(self, key)
    }

    fn clear_range(&self, begin: &[u8], end: &[u8]) {
        KvTransaction::clear_range(self, begin, end)
    }
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

impl fairway_dcb::kv::TxError for TxFailure {
    fn as_storage(&self) -> Option<&StorageError> {
        match self {
            TxFailure::Storage(err) => Some(err),
            TxFailure::Body(_) => None,
        }
    }
}

/// A transaction body as a [`Backend`] runs it, its value type erased: run again from the
/// start on a retryable conflict. Bodies borrow what they capture for `'a`; write them as
/// closures given to [`<dyn Backend>::transact`](Backend#method.transact), never by hand.
pub type ErasedBody<'a> =
    dyn Fn(Arc<dyn DynTx>) -> BoxFuture<'a, Result<Box<dyn Any + Send>, TxFailure>> + Send + Sync + 'a;

/// Events and transactions of one store.
pub trait Backend: Send + Sync + 'static {
    /// The event store.
    fn events(&self) -> Arc<dyn EventStore>;
    /// The key prefix reserved for the runtime part `name` (a view, a queue, ...).
    fn keyspace(&self, name: &str) -> Vec<u8>;
    /// Runs `body` in a serializable transaction with the engine's retry loop and returns
    /// the value of its committed run. Call [`<dyn Backend>::transact`](Backend#method.transact),
    /// which keeps the value's type.
    fn transact_erased<'a, 'b: 'a>(
        &'a self,
        body: &'a ErasedBody<'b>,
    ) -> BoxFuture<'a, Result<Box<dyn Any + Send>, TxFailure>>;
    /// Appends `events` under `conditions` and writes `record` in the same transaction,
    /// unless the record's key holds a standing value (see
    /// [`DcbStore::append_with_record`]).
    fn append_with_record(
        &self,
        events: Vec<Event>,
        conditions: Vec<AppendCondition>,
        record: AppendRecord,
    ) -> BoxFuture<'_, Result<RecordedAppend, fairway_dcb::Error>>;
    /// Whether the store works fully: `Err` says why it refuses writes (e.g. a full disk).
    fn storage_health(&self) -> Result<(), StorageError> {
        Ok(())
    }

    /// Arms a watch on `keys` (see [`KvEngine::watch_any`]): the returned future yields a
    /// future completing when any of them may have changed since.
    fn watch_any(&self, keys: Vec<Vec<u8>>) -> BoxFuture<'_, Result<Watch, StorageError>>;
}

impl<E: KvEngine> Backend for DcbStore<E> {
    fn events(&self) -> Arc<dyn EventStore> {
        Arc::new(self.clone())
    }

    fn keyspace(&self, name: &str) -> Vec<u8> {
        self.layout().user_prefix(name)
    }

    fn transact_erased<'a, 'b: 'a>(
        &'a self,
        body: &'a ErasedBody<'b>,
    ) -> BoxFuture<'a, Result<Box<dyn Any + Send>, TxFailure>> {
        async move {
            let committed = self.engine().transact(|tx| body(Arc::new(tx))).await?;
            Ok(committed.value)
        }
        .boxed()
    }

    fn append_with_record(
        &self,
        events: Vec<Event>,
        conditions: Vec<AppendCondition>,
        record: AppendRecord,
    ) -> BoxFuture<'_, Result<RecordedAppend, fairway_dcb::Error>> {
        DcbStore::append_with_record(self, events, conditions, record)
    }

    fn storage_health(&self) -> Result<(), StorageError> {
        self.engine().health()
    }

    fn watch_any(&self, keys: Vec<Vec<u8>>) -> BoxFuture<'_, Result<Watch, StorageError>> {
        self.engine().watch_any(keys).boxed()
    }
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
