//! [`Backend`] and [`StateStore`] for every `DcbStore<E>`: runtime transactions as the
//! engine's own, the event store as itself.

use std::any::Any;
use std::sync::Arc;

use fairway_dcb::kv::{KeyValue, KvEngine, KvTransaction, RangeScan, TxError, Watch};
use fairway_dcb::{AppendCondition, Appended, DcbStore, EventStore, RawEvent, Receipt, StorageError};
use futures::FutureExt;
use futures::future::BoxFuture;

use super::{Backend, DynTx, ErasedBody, StateStore, TxFailure};

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
        forward_range(self, begin, end, limit, false)
    }

    fn snapshot_scan<'a>(
        &'a self,
        begin: &'a [u8],
        end: &'a [u8],
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<KeyValue>, StorageError>> {
        forward_range(self, begin, end, limit, true)
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

    fn clock_micros(&self) -> BoxFuture<'_, Result<u64, StorageError>> {
        KvTransaction::clock_micros(self).boxed()
    }

    fn set_background(&self) {
        KvTransaction::set_background(self)
    }
}

/// Up to `limit` pairs (0: all) of `[begin, end)` in key order; a `snapshot` read adds no
/// read conflict.
fn forward_range<'a, T: KvTransaction>(
    tx: &'a T,
    begin: &'a [u8],
    end: &'a [u8],
    limit: usize,
    snapshot: bool,
) -> BoxFuture<'a, Result<Vec<KeyValue>, StorageError>> {
    async move {
        let scan = RangeScan { begin: begin.to_vec(), end: end.to_vec(), limit, reverse: false, snapshot };
        tx.get_range(&scan).await
    }
    .boxed()
}

impl<E: KvEngine> StateStore for DcbStore<E> {
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

    fn storage_health(&self) -> Result<(), StorageError> {
        self.engine().health()
    }

    fn bulk_events_per_transaction(&self) -> usize {
        self.engine().bulk_events_per_transaction()
    }

    fn watch_any(&self, keys: Vec<Vec<u8>>) -> BoxFuture<'_, Result<Watch, StorageError>> {
        self.engine().watch_any(keys).boxed()
    }
}

impl<E: KvEngine> Backend for DcbStore<E> {
    fn events(&self) -> Arc<dyn EventStore> {
        Arc::new(self.clone())
    }

    fn append_with_receipt(
        &self,
        events: Vec<RawEvent>,
        conditions: Vec<AppendCondition>,
        receipt: Receipt,
    ) -> BoxFuture<'_, Result<Appended, fairway_dcb::Error>> {
        DcbStore::append_with_receipt(self, events, conditions, receipt)
    }
}

impl TxError for TxFailure {
    fn as_storage(&self) -> Option<&StorageError> {
        match self {
            TxFailure::Storage(err) => Some(err),
            TxFailure::Body(_) => None,
        }
    }
}
