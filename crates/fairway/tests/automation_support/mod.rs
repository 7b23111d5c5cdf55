//! What the tests of automation queues shared by several app instances need: a store on
//! the engine the suite runs on (`support::open_store`, re-exported here), a store wrapper
//! that counts transaction attempts and can fail chosen attempts with the engine's
//! retryable errors, and an automation that records the full history of its handler calls,
//! with the oracle that checks it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fairway::dcb::kv::{KeyValue, Watch};
use fairway::dcb::{AppendCondition, Appended, EventStore, Position, RawEvent, Receipt, StorageError};
use fairway::runtime::{AutomationRuntime, StateStore, Store};
use fairway::{Automation, AutomationContext, AutomationError, Event, QueueSettings};
use fairway_core::backend::{DynTx, ErasedBody, TxFailure};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub use crate::support::open_store;
use crate::support::{eventually, retryable};

/// Transaction attempts through an [`Observed`] store.
#[derive(Default, Debug)]
pub struct Counts {
    /// Transactions run.
    pub transactions: AtomicUsize,
    /// Attempts of those, the first ones included.
    pub attempts: AtomicUsize,
    /// Transactions that looked for due jobs (claims).
    pub claims: AtomicUsize,
    /// Attempts of those.
    pub claim_attempts: AtomicUsize,
    /// Attempts failed on purpose.
    pub injected: AtomicUsize,
    /// Attempts of claims failed on purpose.
    pub injected_claims: AtomicUsize,
}

impl Counts {
    /// Attempts beyond the first of every transaction.
    pub fn retries(&self) -> usize {
        self.attempts.load(Ordering::SeqCst) - self.transactions.load(Ordering::SeqCst)
    }

    /// Attempts beyond the first of every claim.
    pub fn claim_retries(&self) -> usize {
        self.claim_attempts.load(Ordering::SeqCst) - self.claims.load(Ordering::SeqCst)
    }
}

/// A store passing everything through to another, counting the attempts of its runtime
/// transactions and, when `faults` is on, failing the first attempt of every transaction
/// with a retryable error: in turn at its first read (`transaction_too_old`) and after its
/// body ran (`not_committed`, as a commit that conflicted).
pub struct Observed {
    inner: Arc<dyn Store>,
    pub counts: Arc<Counts>,
    pub faults: Arc<AtomicBool>,
}

impl Observed {
    pub fn new(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Observed { inner, counts: Arc::default(), faults: Arc::default() })
    }
}

/// When an attempt fails on purpose.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    FirstRead,
    AfterBody,
}

/// One attempt's transaction: the engine's, watched.
struct ObservedTx {
    inner: Arc<dyn DynTx>,
    fault: Mutex<Fault>,
    /// Whether this attempt looked for due jobs.
    claimed: AtomicBool,
}

impl ObservedTx {
    /// Fails the first read if this attempt is to fail there.
    fn read(&self) -> Result<(), StorageError> {
        let mut fault = self.fault.lock().unwrap();
        if *fault == Fault::FirstRead {
            *fault = Fault::None;
            return Err(retryable(1007));
        }
        Ok(())
    }
}

impl ObservedTx {
    /// A range read, noting whether it is a claim's look for due jobs.
    fn range<'a>(
        &'a self,
        begin: &'a [u8],
        end: &'a [u8],
        limit: usize,
        snapshot: bool,
        claim: bool,
    ) -> BoxFuture<'a, Result<Vec<KeyValue>, StorageError>> {
        async move {
            if claim {
                self.claimed.store(true, Ordering::SeqCst);
            }
            self.read()?;
            if snapshot {
                self.inner.snapshot_scan(begin, end, limit).await
            } else {
                self.inner.scan(begin, end, limit).await
            }
        }
        .boxed()
    }
}

impl DynTx for ObservedTx {
    fn get<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<Option<Vec<u8>>, StorageError>> {
        async move {
            self.read()?;
            self.inner.get(key).await
        }
        .boxed()
    }

    fn scan<'a>(
        &'a self,
        begin: &'a [u8],
        end: &'a [u8],
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<KeyValue>, StorageError>> {
        // A look for the first due job, as claims made it before they read the index
        // without conflicts.
        self.range(begin, end, limit, false, limit == 1)
    }

    fn snapshot_scan<'a>(
        &'a self,
        begin: &'a [u8],
        end: &'a [u8],
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<KeyValue>, StorageError>> {
        self.range(begin, end, limit, true, true)
    }

    fn set(&self, key: &[u8], value: &[u8]) {
        self.inner.set(key, value)
    }

    fn clear(&self, key: &[u8]) {
        self.inner.clear(key)
    }

    fn clear_range(&self, begin: &[u8], end: &[u8]) {
        self.inner.clear_range(begin, end)
    }

    fn clock_micros(&self) -> BoxFuture<'_, Result<u64, StorageError>> {
        async move {
            self.read()?;
            self.inner.clock_micros().await
        }
        .boxed()
    }

    fn set_background(&self) {
        self.inner.set_background()
    }
}

impl StateStore for Observed {
    fn keyspace(&self, name: &str) -> Vec<u8> {
        self.inner.keyspace(name)
    }

    fn transact_erased<'a, 'b: 'a>(
        &'a self,
        body: &'a ErasedBody<'b>,
    ) -> BoxFuture<'a, Result<Box<dyn std::any::Any + Send>, TxFailure>> {
        async move {
            let number = self.counts.transactions.fetch_add(1, Ordering::SeqCst);
            let attempts = AtomicUsize::new(0);
            let looked = Arc::new(AtomicBool::new(false));
            let wrapped: &ErasedBody<'_> = &|tx: Arc<dyn DynTx>| {
                let first = attempts.fetch_add(1, Ordering::SeqCst) == 0;
                let fault = match (first && self.faults.load(Ordering::SeqCst), number % 2) {
                    (false, _) => Fault::None,
                    (true, 0) => Fault::FirstRead,
                    (true, _) => Fault::AfterBody,
                };
                let observed =
                    Arc::new(ObservedTx { inner: tx, fault: Mutex::new(fault), claimed: AtomicBool::new(false) });
                let run = body(observed.clone());
                let (counts, looked) = (self.counts.clone(), looked.clone());
                async move {
                    let outcome = run.await;
                    let claim = observed.claimed.load(Ordering::SeqCst);
                    counts.attempts.fetch_add(1, Ordering::SeqCst);
                    if claim {
                        looked.store(true, Ordering::SeqCst);
                        counts.claim_attempts.fetch_add(1, Ordering::SeqCst);
                    }
                    if fault != Fault::None {
                        counts.injected.fetch_add(1, Ordering::SeqCst);
                        if claim {
                            counts.injected_claims.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    let value = outcome?;
                    if fault == Fault::AfterBody {
                        return Err(TxFailure::Storage(retryable(1020)));
                    }
                    Ok(value)
                }
                .boxed()
            };
            let outcome = self.inner.transact_erased(wrapped).await;
            if looked.load(Ordering::SeqCst) {
                self.counts.claims.fetch_add(1, Ordering::SeqCst);
            }
            outcome
        }
        .boxed()
    }

    fn watch_any(&self, keys: Vec<Vec<u8>>) -> BoxFuture<'_, Result<Watch, StorageError>> {
        self.inner.watch_any(keys)
    }
}

impl Store for Observed {
    fn events(&self) -> Arc<dyn EventStore> {
        self.inner.events()
    }

    fn append_with_receipt(
        &self,
        events: Vec<RawEvent>,
        conditions: Vec<AppendCondition>,
        receipt: Receipt,
    ) -> BoxFuture<'_, Result<Appended, fairway::dcb::Error>> {
        self.inner.append_with_receipt(events, conditions, receipt)
    }
}

/// The triggering event of the jobs; its kind tells the handler how long to take.
#[derive(Serialize, Deserialize, Event)]
pub struct Chore {
    #[tag("kind")]
    pub kind: String,
}

/// Appends one chore per kind, in order; returns their positions.
pub async fn append(store: &Arc<dyn Store>, kinds: &[&str]) -> Vec<Position> {
    let events = kinds.iter().map(|kind| Chore { kind: (*kind).to_owned() }.to_raw().unwrap()).collect();
    store.events().append(events, None).await.unwrap().positions
}

/// A handler call's step, in the order they happened across every instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Started,
    Finished,
}

/// Every step of every handler call: (instance, job, step), in the order they happened.
#[derive(Default, Clone)]
pub struct History(Arc<Mutex<Vec<(usize, Position, Step)>>>);

impl History {
    fn record(&self, instance: usize, position: Position, step: Step) {
        self.0.lock().unwrap().push((instance, position, step));
    }

    /// The steps so far.
    pub fn steps(&self) -> Vec<(usize, Position, Step)> {
        self.0.lock().unwrap().clone()
    }

    /// Jobs finished so far.
    pub fn finished(&self) -> usize {
        self.steps().iter().filter(|(_, _, step)| *step == Step::Finished).count()
    }

    /// Checks the whole history: every job of `positions` finished exactly once, no other
    /// job ran, and no job had two calls running at once (a call is running from its start
    /// to its finish; a call that never finished was aborted with its worker, and its job
    /// must be finished by a later call). Returns the calls per job.
    pub fn check_exactly_once(&self, positions: &[Position]) -> BTreeMap<Position, Vec<(usize, Step)>> {
        let mut calls: BTreeMap<Position, Vec<(usize, Step)>> = BTreeMap::new();
        for (instance, position, step) in self.steps() {
            calls.entry(position).or_default().push((instance, step));
        }
        assert_eq!(calls.keys().copied().collect::<Vec<_>>(), positions, "exactly the enqueued jobs ran");
        for (position, steps) in &calls {
            let finished = steps.iter().filter(|(_, step)| *step == Step::Finished).count();
            assert_eq!(finished, 1, "job {position} finished {finished} times: {steps:?}");
            let (last_instance, last) = steps[steps.len() - 1];
            assert_eq!(last, Step::Finished, "job {position} ends finished: {steps:?}");
            // The finishing call is the last one started, and started right before it.
            assert_eq!(steps[steps.len() - 2], (last_instance, Step::Started), "job {position}: {steps:?}");
            assert!(steps[..steps.len() - 2].iter().all(|(_, step)| *step == Step::Started), "{position}: {steps:?}");
        }
        calls
    }
}

/// Records every call in the history as instance `instance`; takes `SLOW` on chores of
/// kind `slow` (renewing its lease meanwhile), and hangs on its first chore when `hang`.
pub struct Recorder {
    pub instance: usize,
    pub history: History,
    pub hang: AtomicBool,
}

/// How long a `slow` chore takes.
pub const SLOW: Duration = Duration::from_millis(1500);

impl Automation for Recorder {
    const NAME: &'static str = "chores";
    type Events = Chore;

    async fn handle(&self, chore: Chore, ctx: &AutomationContext) -> Result<(), AutomationError> {
        let position = ctx.trigger();
        self.history.record(self.instance, position, Step::Started);
        if self.hang.swap(false, Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        match chore.kind.as_str() {
            "slow" => tokio::time::sleep(SLOW).await,
            _ => tokio::task::yield_now().await,
        }
        self.history.record(self.instance, position, Step::Finished);
        Ok(())
    }
}

/// One app instance's part of the queue: its own runtime (its own wake-ups, so it hears of
/// other instances' enqueues only through the store), its enqueuer and its workers
/// (named `instance-<n>-<worker>`).
pub struct Instance {
    pub runtime: AutomationRuntime<Recorder>,
    tasks: Vec<tokio::task::JoinHandle<Result<(), AutomationError>>>,
    enqueuer: tokio::task::JoinHandle<Result<(), AutomationError>>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Instance {
    /// Starts instance `n` on `store` with `settings.workers` workers.
    pub fn start(n: usize, store: Arc<dyn Store>, history: &History, settings: QueueSettings, hang: bool) -> Self {
        let recorder = Recorder { instance: n, history: history.clone(), hang: AtomicBool::new(hang) };
        let runtime = AutomationRuntime::new(recorder, store, settings);
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let tasks = (0..settings.workers)
            .map(|w| tokio::spawn(runtime.clone().run_worker_until(format!("instance-{n}-{w}"), stopping.clone())))
            .collect();
        let enqueuer = tokio::spawn(runtime.clone().run_enqueuer());
        Instance { runtime, tasks, enqueuer, stop }
    }

    /// Stops the workers once their jobs are done; every worker ends without error.
    pub async fn stop(self) {
        self.stop.send(true).unwrap();
        for task in self.tasks {
            task.await.unwrap().expect("the worker ends without error");
        }
        self.enqueuer.abort();
        let _ = self.enqueuer.await;
    }

    /// Waits until the instances finished every job of `positions` and the queue is empty,
    /// checks there is no dead letter, stops them and checks the history (see
    /// [`History::check_exactly_once`]); returns the calls per job.
    pub async fn drain(
        instances: Vec<Instance>,
        history: &History,
        positions: &[Position],
        wait: Duration,
    ) -> BTreeMap<Position, Vec<(usize, Step)>> {
        eventually("every job finished", wait, async || history.finished() == positions.len()).await;
        let runtime = &instances[0].runtime;
        eventually("the queue empties", wait, async || runtime.pending().await.unwrap() == 0).await;
        assert!(runtime.dead_letters().await.unwrap().is_empty(), "no dead letter");
        for instance in instances {
            instance.stop().await;
        }
        history.check_exactly_once(positions)
    }

    /// Kills the workers and the enqueuer where they are, as a crash would.
    pub fn abort(self) {
        self.tasks.iter().for_each(|task| task.abort());
        self.enqueuer.abort();
    }
}
