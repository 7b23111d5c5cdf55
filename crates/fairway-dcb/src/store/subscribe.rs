//! Subscriptions: catch up from a position, then follow live appends.

use std::collections::VecDeque;
use std::time::Duration;

use futures::{FutureExt, StreamExt, TryStreamExt};

use crate::error::Error;
use crate::event_store::{EventStore, EventStream};
use crate::kv::KvEngine;
use crate::model::{Position, Query, ReadOptions, SequencedEvent};
use crate::store::DcbStore;

const PAGE: usize = 1024;
/// Longest wait before re-reading even without a pulse (guards against lost wake-ups).
const POLL_FALLBACK: Duration = Duration::from_millis(500);

struct Subscription<E: KvEngine> {
    store: DcbStore<E>,
    query: Query,
    after: Option<Position>,
    pending: VecDeque<SequencedEvent>,
    failed: bool,
}

/// Builds the subscription stream of `store`.
pub fn subscribe_stream<E: KvEngine>(store: DcbStore<E>, query: Query, after: Option<Position>) -> EventStream {
    if let Err(err) = query.validate() {
        return futures::stream::once(async move { Err(Error::from(err)) }).boxed();
    }
    let state = Subscription { store, query, after, pending: VecDeque::new(), failed: false };
    futures::stream::unfold(state, |mut state| async move {
        if state.failed {
            return None;
        }
        match state.next().await {
            Ok(event) => Some((Ok(event), state)),
            Err(err) => {
                state.failed = true;
                Some((Err(err), state))
            }
        }
    })
    .boxed()
}

impl<E: KvEngine> Subscription<E> {
    async fn next(&mut self) -> Result<SequencedEvent, Error> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                self.after = Some(event.position);
                return Ok(event);
            }
            if self.fetch().await? {
                continue;
            }
            // Caught up: arm the watch first, then look once more, so an append landing
            // between the read and the watch is never missed.
            let changed = self.store.engine().watch_any(self.store.layout().pulse_keys()).await?;
            if self.fetch().await? {
                continue;
            }
            let _ = tokio::time::timeout(POLL_FALLBACK, changed.map(|_| ())).await;
        }
    }

    /// Reads the next page after the cursor; `true` if it found events.
    async fn fetch(&mut self) -> Result<bool, Error> {
        let from = match self.after {
            Some(Position::MAX) => return Ok(false),
            Some(after) => after.next(),
            None => Position::ZERO,
        };
        let options = ReadOptions::forwards().from(from).limit(PAGE);
        let page: Vec<SequencedEvent> = self.store.read(self.query.clone(), options).try_collect().await?;
        let found = !page.is_empty();
        self.pending.extend(page);
        Ok(found)
    }
}
