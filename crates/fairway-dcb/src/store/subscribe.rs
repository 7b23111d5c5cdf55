//! Subscriptions: catch up from a position, then follow live appends.
//!
//! A subscription proceeds in rounds. Each round takes the head, streams every matching
//! event after the cursor up to that head (one read, paged), then moves the cursor to the
//! head itself, matched or not. So no round can skip an event: everything up to its head is
//! visible when it starts, and the next round starts right after it. Between rounds it
//! waits on the store's one watch of its pulse keys, shared by all its subscriptions.
//!
//! A transient storage failure (a busy or moving cluster: [`StorageError::is_transient`])
//! does not end a subscription: it starts a new round after the last event it delivered,
//! after a growing pause, for up to [`TRANSIENT_FAILURES_FOR`] of failures in a row.

use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;
use tracing::warn;

use crate::error::Error;
use crate::event_store::{EventStore, EventStream};
use crate::kv::KvEngine;
use crate::model::{Position, Query, ReadOptions, SequencedEvent};
use crate::store::DcbStore;

/// Longest wait before re-reading even without a pulse (guards against lost wake-ups).
const POLL_FALLBACK: Duration = Duration::from_millis(500);
/// How long transient storage failures in a row are ridden out before the subscription
/// ends with the last one.
const TRANSIENT_FAILURES_FOR: Duration = Duration::from_secs(30);
/// The pause after a first transient failure; doubled after each further one, up to
/// [`MAX_FAILURE_PAUSE`].
const FIRST_FAILURE_PAUSE: Duration = Duration::from_millis(10);
/// The longest pause between two tries.
const MAX_FAILURE_PAUSE: Duration = Duration::from_secs(1);

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
    /// Since when, and how many times in a row, it met transient failures.
    failing: Option<(Instant, u32)>,
    /// How long failures in a row are ridden out ([`TRANSIENT_FAILURES_FOR`]).
    ride_out_for: Duration,
}

/// Builds the subscription stream of `store`.
pub fn subscribe_stream<E: KvEngine>(store: DcbStore<E>, query: Query, after: Option<Position>) -> EventStream {
    riding_out_for(store, query, after, TRANSIENT_FAILURES_FOR)
}

/// [`subscribe_stream`], riding out transient failures in a row for `ride_out_for`.
fn riding_out_for<E: KvEngine>(
    store: DcbStore<E>,
    query: Query,
    after: Option<Position>,
    ride_out_for: Duration,
) -> EventStream {
    if let Err(err) = query.validate() {
        return futures::stream::once(async move { Err(Error::from(err)) }).boxed();
    }
    let state = Subscription { store, query, after, round: None, failed: false, failing: None, ride_out_for };
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
    /// The next event; rides out transient failures (see the module's docs).
    async fn next(&mut self) -> Result<SequencedEvent, Error> {
        loop {
            match self.next_or_failure().await {
                Ok(event) => {
                    self.failing = None;
                    return Ok(event);
                }
                Err(err) => self.ride_out(err).await?,
            }
        }
    }

    /// Waits before another try after the transient failure `err`; gives it back when it
    /// is not transient or failures went on for the ride-out time.
    async fn ride_out(&mut self, err: Error) -> Result<(), Error> {
        let transient = matches!(&err, Error::Storage(storage) if storage.is_transient());
        let (since, failures) = self.failing.unwrap_or((Instant::now(), 0));
        if !transient || since.elapsed() >= self.ride_out_for {
            return Err(err);
        }
        let failures = failures + 1;
        self.failing = Some((since, failures));
        // The round is read again from the last event delivered.
        self.round = None;
        let pause = FIRST_FAILURE_PAUSE.saturating_mul(1 << failures.min(10)).min(MAX_FAILURE_PAUSE);
        warn!(error = %err, failures, ?pause, "a subscription met a transient storage failure; reading again");
        tokio::time::sleep(pause).await;
        Ok(())
    }

    async fn next_or_failure(&mut self) -> Result<SequencedEvent, Error> {
        loop {
            if let Some(round) = &mut self.round {
                match round.events.next().await {
                    Some(event) => {
                        let event = event?;
                        // Every matching event up to it was delivered: a round read again
                        // after a failure starts right after it.
                        self.after = Some(event.position);
                        return Ok(event);
                    }
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
            // Caught up without a failure: a later failure starts a new run of them.
            self.failing = None;
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use futures::TryStreamExt;

    use super::*;
    use crate::error::StorageError;
    use crate::kv::{Committed, TxError, Watch};
    use crate::{EmbeddedEngine, QueryItem, RawEvent};

    /// The embedded engine, with one in `one_in` transactions (spread by a hash of their
    /// number, not periodic) failing with `failure` before its body runs, as a cluster may
    /// after its retries.
    struct Flaky {
        inner: EmbeddedEngine,
        one_in: u32,
        failure: fn() -> StorageError,
        calls: AtomicU32,
        /// Transactions to fail from now on, whatever `one_in` says.
        fail_next: AtomicU32,
    }

    impl KvEngine for Flaky {
        type Tx = <EmbeddedEngine as KvEngine>::Tx;

        async fn transact<T, E, F, Fut>(&self, body: F) -> Result<Committed<T>, E>
        where
            T: Send,
            E: TxError,
            F: FnMut(Self::Tx) -> Fut + Send,
            Fut: std::future::Future<Output = Result<T, E>> + Send,
        {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            let planned = self.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
            if planned || (call.wrapping_mul(0x9E37_79B1) >> 16).is_multiple_of(self.one_in) {
                return Err(E::from((self.failure)()));
            }
            self.inner.transact(body).await
        }

        async fn watch_any(&self, keys: Vec<Vec<u8>>) -> Result<Watch, StorageError> {
            self.inner.watch_any(keys).await
        }
    }

    fn flaky(dir: &tempfile::TempDir, one_in: u32, failure: fn() -> StorageError) -> DcbStore<Flaky> {
        let inner = EmbeddedEngine::volatile(dir.path());
        DcbStore::new(
            Arc::new(Flaky { inner, one_in, failure, calls: AtomicU32::new(0), fail_next: AtomicU32::new(0) }),
            "flaky",
        )
        .unwrap()
    }

    fn exhausted() -> StorageError {
        StorageError::RetriesExhausted { attempts: 200, last: "Request for future version".into() }
    }

    /// A subscription on several scans, following writers while its store fails one in four
    /// transactions with a transient failure, delivers every matching event of the log once,
    /// in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_subscription_rides_out_transient_failures_and_delivers_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = flaky(&dir, 4, exhausted);
        let query = Query::from_items([QueryItem::types(["A"]), QueryItem::types(["B"])]);
        // Types A, B, C in turn (two in three match): 1,500 events before it subscribes (its
        // first round reads several pages of each scan), 60 while it follows.
        let append = |store: DcbStore<Flaky>, from: usize, to: usize, batch: usize| async move {
            let mut appended = from;
            while appended < to {
                let events = (0..batch).map(|i| RawEvent::new(["A", "B", "C"][(appended + i) % 3], Vec::new()));
                // The writer meets the flaky engine too: it tries again.
                if store.append(events.collect(), None).await.is_ok() {
                    appended += batch;
                }
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
        };
        append(store.clone(), 0, 1_500, 30).await;
        let matching = 1_040;
        let mut stream = store.subscribe(query.clone(), None);
        let follower = tokio::spawn(async move {
            let mut delivered = Vec::new();
            while delivered.len() < matching {
                let next = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("no stall");
                delivered.push(next.expect("subscriptions do not end").expect("transient failures are ridden out"));
            }
            delivered.into_iter().map(|e| e.position).collect::<Vec<_>>()
        });
        append(store.clone(), 1_500, 1_560, 3).await;
        let delivered = follower.await.unwrap();
        let log = loop {
            if let Ok(log) = store.read(query.clone(), ReadOptions::forwards()).try_collect::<Vec<_>>().await {
                break log;
            }
        };
        assert_eq!(delivered, log.iter().map(|e| e.position).collect::<Vec<_>>());
    }

    /// Failures far apart, met while the subscription waits for appends, are each ridden
    /// out: caught up in between, it counts its ride-out time afresh.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failures_far_apart_are_each_ridden_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = flaky(&dir, u32::MAX, exhausted);
        let engine = store.engine().clone();
        let mut stream = riding_out_for(store.clone(), Query::all(), None, Duration::from_millis(100));
        let (sender, mut delivered) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(next) = stream.next().await {
                let _ = sender.send(next);
            }
        });
        for round in 0..2 {
            // The waiting subscription looks again every 500 ms: its next transaction fails;
            // twice, further apart than the ride-out time, with nothing delivered between.
            for _ in 0..2 {
                engine.fail_next.store(1, Ordering::SeqCst);
                let started = std::time::Instant::now();
                while engine.fail_next.load(Ordering::SeqCst) > 0 {
                    assert!(started.elapsed() < Duration::from_secs(10), "round {round}: the subscription looks again");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                // Past the ride-out time before the next failure.
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            let appended = store.append(vec![RawEvent::new("A", Vec::new())], None).await.unwrap();
            let next = tokio::time::timeout(Duration::from_secs(10), delivered.recv()).await.expect("no stall");
            let event = next.expect("subscriptions do not end").expect("each failure is ridden out");
            assert_eq!(event.position, appended.last(), "round {round}");
        }
    }

    /// A failure that is not transient ends the subscription with it.
    #[tokio::test]
    async fn a_subscription_ends_with_a_failure_that_is_not_transient() {
        let dir = tempfile::tempdir().unwrap();
        let store = flaky(&dir, 1, || StorageError::Corrupt("a broken record".into()));
        let mut stream = store.subscribe(Query::all(), None);
        let failure = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("no stall");
        assert!(matches!(failure, Some(Err(Error::Storage(StorageError::Corrupt(_))))), "{failure:?}");
        assert!(stream.next().await.is_none(), "the stream ended");
    }
}
