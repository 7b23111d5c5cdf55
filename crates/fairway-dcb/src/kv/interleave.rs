//! An engine wrapper that runs scheduled work between transactions, to test what a
//! multi-transaction operation (a paged read, a subscription round) does when other
//! commits land between its steps.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use fairway_dcb::kv::interleave::Interleaving;
//! use fairway_dcb::{DcbStore, EmbeddedEngine, EmbeddedOptions, RawEvent, EventStore};
//!
//! let engine = Arc::new(EmbeddedEngine::open("./data", EmbeddedOptions::default())?);
//! let hooked = Arc::new(Interleaving::new(engine.clone()));
//! let reader = DcbStore::new(hooked.clone(), "demo")?;
//! let writer = DcbStore::new(engine, "demo")?;
//! // Before the reader's second transaction from now, append an event.
//! hooked.before(hooked.transactions() + 1, async move {
//!     writer.append(vec![RawEvent::new("A", vec![])], None).await.unwrap();
//! });
//! # let _ = reader; Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::error::StorageError;
use crate::kv::{Committed, KvEngine, TxError, Watch};

/// An engine running scheduled futures before chosen transactions of the inner engine.
pub struct Interleaving<E> {
    inner: Arc<E>,
    started: AtomicUsize,
    scheduled: Mutex<BTreeMap<usize, Vec<BoxFuture<'static, ()>>>>,
}

impl<E: KvEngine> Interleaving<E> {
    /// Wraps `inner`; work done directly on `inner` is not counted nor delayed.
    pub fn new(inner: Arc<E>) -> Self {
        Interleaving { inner, started: AtomicUsize::new(0), scheduled: Mutex::new(BTreeMap::new()) }
    }

    /// The wrapped engine.
    pub fn inner(&self) -> &Arc<E> {
        &self.inner
    }

    /// How many transactions were started through this wrapper so far.
    pub fn transactions(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    /// Runs `work` to completion right before transaction number `n` (counting from 0)
    /// starts. Work scheduled for a number already passed never runs.
    pub fn before(&self, n: usize, work: impl Future<Output = ()> + Send + 'static) {
        self.scheduled.lock().expect("schedule lock").entry(n).or_default().push(work.boxed());
    }

    /// Whether scheduled work is still waiting for its transaction.
    pub fn pending(&self) -> bool {
        let started = self.transactions();
        self.scheduled.lock().expect("schedule lock").range(started..).next().is_some()
    }
}

impl<E: KvEngine> KvEngine for Interleaving<E> {
    type Tx = E::Tx;

    fn transact<T, Er, F, Fut>(&self, body: F) -> impl Future<Output = Result<Committed<T>, Er>> + Send
    where
        T: Send,
        Er: TxError,
        F: FnMut(Self::Tx) -> Fut + Send,
        Fut: Future<Output = Result<T, Er>> + Send,
    {
        let number = self.started.fetch_add(1, Ordering::SeqCst);
        let work = self.scheduled.lock().expect("schedule lock").remove(&number).unwrap_or_default();
        async move {
            for work in work {
                work.await;
            }
            self.inner.transact(body).await
        }
    }

    fn watch_any(&self, keys: Vec<Vec<u8>>) -> impl Future<Output = Result<Watch, StorageError>> + Send {
        self.inner.watch_any(keys)
    }

    fn commit_result_may_be_unknown(&self) -> bool {
        self.inner.commit_result_may_be_unknown()
    }

    fn bulk_events_per_transaction(&self) -> usize {
        self.inner.bulk_events_per_transaction()
    }

    fn health(&self) -> Result<(), StorageError> {
        self.inner.health()
    }
}
