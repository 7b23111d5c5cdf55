//! The DCB event store, written once over the storage port.

mod append;
mod plan;
mod read;
mod record;
mod scan;
mod subscribe;

use std::sync::Arc;

use async_trait::async_trait;
use tracing::{Instrument, debug_span};

use crate::error::Result;
use crate::event_store::{Appended, EventStore, EventStream};
use crate::kv::KvEngine;
use crate::layout::Layout;
use crate::model::{AppendCondition, Event, Position, Query, ReadOptions};
use append::{AppendOutcome, PreparedAppend, append_body, positions_of, validate};
pub use append::{append_bytes, check_event};
pub use record::{AppendRecord, RecordedAppend};

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
        Ok(DcbStore { inner: Arc::new(Inner { engine, layout, namespace: namespace.to_owned() }) })
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
}

#[async_trait]
impl<E: KvEngine> EventStore for DcbStore<E> {
    fn read(&self, query: Query, options: ReadOptions) -> EventStream {
        read::read_stream(self.inner.engine.clone(), &self.inner.layout, query, options)
    }

    async fn append_checked(&self, events: Vec<Event>, conditions: Vec<AppendCondition>) -> Result<Appended> {
        validate(&events, &conditions)?;
        let count = events.len();
        let span =
            debug_span!("dcb.append", namespace = %self.inner.namespace, events = count, conditions = conditions.len());
        let prepared = PreparedAppend::new(&self.inner.layout, events, conditions);
        let layout = &self.inner.layout;
        let committed = self
            .inner
            .engine
            .transact(|tx| {
                let prepared = &prepared;
                async move { append_body(&tx, layout, prepared).await }
            })
            .instrument(span)
            .await?;
        match committed.value {
            AppendOutcome::AlreadyStored(positions) => Ok(Appended { positions, already_stored: true }),
            AppendOutcome::Written => {
                Ok(Appended { positions: positions_of(committed.versionstamp, count)?, already_stored: false })
            }
        }
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
