//! The DCB event store, written once over the storage port.

mod append;
mod commit;
mod marker;
mod plan;
mod pulse;
mod read;
mod receipt;
mod scan;
mod subscribe;

use std::sync::Arc;

use crate::error::Result;
use crate::event_store::{Appended, BoundedRead, EventStore, EventStream};
use crate::kv::{KvEngine, KvTransaction};
use crate::layout::Layout;
use crate::model::{AppendCondition, Position, Query, RawEvent, ReadOptions};
pub use append::{append_bytes, check_event};
use async_trait::async_trait;
pub use receipt::Receipt;

/// The DCB event store over a storage engine, confined to one namespace.
///
/// Cloning is cheap; clones share the engine. Two stores on different namespaces of one
/// engine never see each other's events, positions or conditions.
pub struct DcbStore<E: KvEngine> {
    inner: Arc<Inner<E>>,
}

struct Inner<E> {
    engine: Arc<E>,
    layout: Layout,
    namespace: String,
    /// The watch on the pulse keys, shared by the store's subscriptions.
    pulse: pulse::Pulse,
}

impl<E: KvEngine> Clone for DcbStore<E> {
    fn clone(&self) -> Self {
        DcbStore { inner: self.inner.clone() }
    }
}

impl<E: KvEngine> DcbStore<E> {
    /// Opens the store of `namespace` (`[A-Za-z0-9_.-]`, at most 64 bytes) on `engine`.
    pub fn new(engine: Arc<E>, namespace: &str) -> Result<Self> {
        let layout = Layout::new(namespace)?;
        let inner = Inner { engine, layout, namespace: namespace.to_owned(), pulse: pulse::Pulse::default() };
        Ok(DcbStore { inner: Arc::new(inner) })
    }

    /// The engine below the store.
    pub fn engine(&self) -> &Arc<E> {
        &self.inner.engine
    }

    /// The key layout of the store's namespace.
    pub fn layout(&self) -> &Layout {
        &self.inner.layout
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// Removes every key of the namespace, in one transaction: its events, their indexes
    /// and everything kept under its user prefixes. The store is empty afterwards (e.g. a
    /// test's namespace on a shared cluster, cleared when the test ends).
    pub async fn clear_namespace(&self) -> Result<()> {
        let begin = self.layout().prefix().to_vec();
        let mut end = begin.clone();
        end.push(0xff);
        self.engine()
            .transact(|tx| {
                tx.clear_range(&begin, &end);
                async { Ok::<_, crate::Error>(()) }
            })
            .await?;
        Ok(())
    }
}

#[async_trait]
impl<E: KvEngine> EventStore for DcbStore<E> {
    fn read(&self, query: Query, options: ReadOptions) -> EventStream {
        read::read_stream(self.inner.engine.clone(), &self.inner.layout, query, options)
    }

    async fn read_with_head(&self, query: Query, options: ReadOptions) -> Result<BoundedRead> {
        read::read_with_head(self.inner.engine.clone(), &self.inner.layout, query, options).await
    }

    async fn append_with_conditions(
        &self,
        events: Vec<RawEvent>,
        conditions: Vec<AppendCondition>,
    ) -> Result<Appended> {
        self.commit_append(events, conditions, None).await
    }

    async fn head(&self) -> Result<Option<Position>> {
        Ok(read::read_head(&*self.inner.engine, &self.inner.layout.log()).await?)
    }

    async fn count(&self) -> Result<u64> {
        Ok(read::read_count(&*self.inner.engine, &self.inner.layout).await?)
    }

    fn subscribe(&self, query: Query, after: Option<Position>) -> EventStream {
        subscribe::subscribe_stream(self.clone(), query, after)
    }
}
