//! The event store contract every engine fulfils.

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::error::Result;
use crate::model::{AppendCondition, Position, Query, RawEvent, ReadOptions, SequencedEvent};

/// A stream of events read from the store. Errors end the stream.
pub type EventStream = BoxStream<'static, Result<SequencedEvent>>;

/// What an accepted append returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The positions of the batch's events, in batch order.
    pub positions: Vec<Position>,
    /// `true` when every event's id was already stored: nothing was written and
    /// `positions` are those of the original append.
    pub already_stored: bool,
}

impl Appended {
    /// The position of the batch's last event.
    pub fn last(&self) -> Position {
        *self.positions.last().expect("an append holds at least one event")
    }
}

/// A read bounded by the head taken when it started: `events` holds every matching event
/// up to `head` (within the read's options) and nothing after it, so "nothing matched" means
/// "nothing matched up to `head`". A command uses `head` as its append condition's `after`.
pub struct BoundedRead {
    /// The last position of the log when the read started (`None`: the log was empty), or
    /// the tighter bound the options set.
    pub head: Option<Position>,
    /// The matching events, streamed.
    pub events: EventStream,
}

impl std::fmt::Debug for BoundedRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundedRead").field("head", &self.head).finish_non_exhaustive()
    }
}

/// A DCB event store: one ordered log of tagged events, read by query, appended to in
/// atomic batches guarded by append conditions.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Streams the events matching `query`, in position order (newest first when
    /// `options.backwards`), paging through the store rather than collecting the result.
    ///
    /// The result is one prefix of the log: every matching event up to a head taken when
    /// the read starts (or `options.up_to`), however many scans and pages the read takes.
    fn read(&self, query: Query, options: ReadOptions) -> EventStream;

    /// Takes the head, then reads like [`EventStore::read`] up to it, and reports it.
    async fn read_with_head(&self, query: Query, options: ReadOptions) -> Result<BoundedRead> {
        let head = match (self.head().await?, options.up_to) {
            (Some(head), Some(bound)) => Some(head.min(bound)),
            (head, _) => head,
        };
        let events = match head {
            Some(head) => self.read(query, options.up_to(head)),
            None => futures::stream::empty().boxed(),
        };
        Ok(BoundedRead { head, events })
    }

    /// Appends `events` atomically if `condition` holds (no event matching its query after
    /// its `after`). Events carrying ids already stored make the call idempotent.
    async fn append(&self, events: Vec<RawEvent>, condition: Option<AppendCondition>) -> Result<Appended> {
        self.append_with_conditions(events, condition.into_iter().collect()).await
    }

    /// Appends `events` atomically if every one of `conditions` holds.
    async fn append_with_conditions(&self, events: Vec<RawEvent>, conditions: Vec<AppendCondition>)
    -> Result<Appended>;

    /// The position of the last event, or `None` for an empty store.
    async fn head(&self) -> Result<Option<Position>>;

    /// How many events the log holds, read from counters the appends keep (no scan).
    async fn count(&self) -> Result<u64>;

    /// Streams every event matching `query` after `after` (all of them when `None`), then
    /// follows new events as they are appended, without ever skipping one. The stream ends
    /// only with an error (e.g. the store closed) or when dropped. A transient storage
    /// failure ([`crate::StorageError::is_transient`]: a busy or moving cluster) does not
    /// end it: it reads again after the last event it delivered, after a growing pause, and
    /// ends with the failure only once failures went on for 30 s in a row.
    fn subscribe(&self, query: Query, after: Option<Position>) -> EventStream;
}

#[async_trait]
impl<S: EventStore + ?Sized> EventStore for std::sync::Arc<S> {
    fn read(&self, query: Query, options: ReadOptions) -> EventStream {
        (**self).read(query, options)
    }

    async fn read_with_head(&self, query: Query, options: ReadOptions) -> Result<BoundedRead> {
        (**self).read_with_head(query, options).await
    }

    async fn append_with_conditions(
        &self,
        events: Vec<RawEvent>,
        conditions: Vec<AppendCondition>,
    ) -> Result<Appended> {
        (**self).append_with_conditions(events, conditions).await
    }

    async fn head(&self) -> Result<Option<Position>> {
        (**self).head().await
    }

    async fn count(&self) -> Result<u64> {
        (**self).count().await
    }

    fn subscribe(&self, query: Query, after: Option<Position>) -> EventStream {
        (**self).subscribe(query, after)
    }
}
