//! Subscriptions: catch up from a position, then follow live appends.
//!
//! A subscription proceeds in rounds. Each round takes the head, streams every matching
//! event after the cursor up to that head (one read, paged), then moves the cursor to the
//! head itself, matched or not. So no round can skip an event: everything up to its head is
//! visible when it starts, and the next round starts right after it. Between rounds it
//! waits on the store's one watch of its pulse keys, shared by all its subscriptions.

use std::time::Duration;

use futures::StreamExt;

use crate::error::Error;
use crate::event_store::{EventStore, EventStream};
use crate::kv::KvEngine;
use crate::model::{Position, Query, ReadOptions, SequencedEvent};
use crate::store::DcbStore;

/// Longest wait before re-reading even without a pulse (guards against lost wake-ups).
const POLL_FALLBACK: Duration = Duration::from_millis(500);

/// A round in progress: its events, and the head that bounds them.
struct Round {
    events: EventStream,
    head: Position,
}

struct Subscription<E: KvEngine> {
    store: DcbStore<E>,
    query: Query,
    /// Every matching event up to here has been delivered.
    after: Option<Position>,
    round: Option<Round>,
    failed: bool,
}

/// Builds the subscription stream of `store`.
pub fn subscribe_stream<E: KvEngine>(store: DcbStore<E>, query: Query, after: Option<Position>) -> EventStream {
    if let Err(err) = query.validate() {
        return futures::stream::once(async move { Err(Error::from(err)) }).boxed();
    }
    let state = Subscription { store, query, after, round: None, failed: false };
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
            if let Some(round) = &mut self.round {
                match round.events.next().await {
                    Some(event) => return event,
                    None => {
                        self.after = Some(round.head);
                        self.round = None;
                    }
                }
            }
            if self.start_round().await? {
                continue;
            }
            // Caught up: arm the watch first, then look once more, so an append landing
            // between the read and the watch is never missed.
            let changed = self.store.inner.pulse.armed(&**self.store.engine(), self.store.layout()).await?;
            if self.start_round().await? {
                continue;
            }
            let _ = tokio::time::timeout(POLL_FALLBACK, changed).await;
        }
    }

    /// Starts a round if the head moved past the cursor; `true` if it did.
    async fn start_round(&mut self) -> Result<bool, Error> {
        let from = match self.after {
            Some(Position::MAX) => return Ok(false),
            Some(after) => after.next(),
            None => Position::ZERO,
        };
        let read = self.store.read_with_head(self.query.clone(), ReadOptions::forwards().from(from)).await?;
        match read.head {
            Some(head) if head >= from => {
                self.round = Some(Round { events: read.events, head });
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
