//! Automations: react to events by running commands, through a durable queue in the store.
//!
//! - An **enqueuer** follows the automation's query and, in one transaction per batch,
//!   writes a job per triggering event and moves its cursor (re-read inside the
//!   transaction, so several instances never enqueue an event twice).
//! - **Workers** claim due jobs under a lease (a claim is a transaction: two workers never
//!   hold one job), renew the lease while the handler runs, delete the job on success, and
//!   on failure retry it with exponential backoff until `max_attempts`, after which it moves
//!   to the dead-letter queue. A worker that dies mid-job leaves its lease to expire; the
//!   job then runs again. Jobs are found through a due-time index (module `queue`), so any
//!   number of leased or backing-off jobs never hides a due one.
//! - An idle worker sleeps until the earliest job becomes due, at most
//!   [`QueueSettings::poll`], and wakes as soon as a job is enqueued: by the enqueuer of its
//!   own process directly, by one of another process through a watch on the queue's wake key.
//!
//! Delivery is at least once. Handlers stay idempotent naturally by running commands: a
//! command re-run after a crash decides again on the current log (its DCB condition makes
//! a duplicate append impossible when its decision model sees the first one), or appends
//! events with ids derived from the triggering event's position.

mod queue;
mod wake;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use fairway_dcb::{EventStore, Position, Query, ReadOptions};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tracing::{Instrument, debug, info_span, warn};

use crate::BoxError;
use crate::backend::{Backend, DynTx, TxFailure, transact_value};
use crate::command::{Command, CommandError, CommandRunner, Executed};
use crate::dependencies::Dependencies;
use crate::event::{EventSet, Recorded};
use crate::snapshot::Snapshots;
#[cfg(feature = "testkit")]
use crate::testkit::Outcome;
use queue::{Claim, QueueKeys, now_micros};
use wake::Wake;

/// A reaction to events.
pub trait Automation: Send + Sync + 'static {
    /// Stable name (queue keyspace, routes).
    const NAME: &'static str;

    /// The triggering events: an [`EventSet`] (or one [`Event`](crate::Event) type).
    type Events: EventSet;

    /// The events that trigger a job: by default every event of [`Automation::Events`].
    fn query(&self) -> Query {
        Self::Events::query()
    }

    /// Handles one triggering event, usually by running commands through `ctx` (which also
    /// tells the trigger's position). An error makes the job retry later; `?` converts any
    /// error.
    fn handle(
        &self,
        event: Self::Events,
        ctx: &AutomationContext,
    ) -> impl Future<Output = Result<(), AutomationError>> + Send;

    /// Queue tuning: leases, attempts, backoff, workers.
    fn settings(&self) -> QueueSettings {
        QueueSettings::default()
    }
}

/// What handlers may use: commands, reads of the log, and the app's dependencies.
#[derive(Clone)]
pub struct AutomationContext {
    runner: CommandRunner<Arc<dyn EventStore>>,
    dependencies: Dependencies,
    #[cfg(feature = "testkit")]
    recorder: Option<Arc<std::sync::Mutex<Vec<Outcome>>>>,
    trigger: Position,
}

impl AutomationContext {
    /// A context running commands on `events` with `dependencies`.
    pub fn new(events: Arc<dyn EventStore>, dependencies: Dependencies) -> Self {
        AutomationContext::with_runner(CommandRunner::new(events), dependencies)
    }

    /// A context running commands through `runner` (with its snapshots and retry policy).
    pub fn with_runner(runner: CommandRunner<Arc<dyn EventStore>>, dependencies: Dependencies) -> Self {
        AutomationContext {
            runner,
            dependencies,
            #[cfg(feature = "testkit")]
            recorder: None,
            trigger: Position::ZERO,
        }
    }

    /// Handles the event at `position`.
    pub(crate) fn triggered_by(mut self, position: Position) -> Self {
        self.trigger = position;
        self
    }

    /// The position of the triggering event (e.g. to derive ids of appended events).
    pub fn trigger(&self) -> Position {
        self.trigger
    }

    /// Records the outcome of every command run through this context (for tests).
    #[cfg(feature = "testkit")]
    pub(crate) fn recording(mut self, recorder: Arc<std::sync::Mutex<Vec<Outcome>>>) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Runs a command.
    pub async fn execute<C: Command>(&self, command: &C) -> Result<Executed, CommandError<C::Error>> {
        let result = self.runner.execute(command).await;
        #[cfg(feature = "testkit")]
        if let Some(recorder) = &self.recorder {
            recorder.lock().expect("recorder").push(Outcome::of::<C>(&result));
        }
        result
    }

    /// The event store, to read what a decision needs beyond the triggering event.
    pub fn events(&self) -> &Arc<dyn EventStore> {
        self.runner.store()
    }

    /// Every event of the set `S` matching `query`, oldest first, decoded (events of
    /// other types are skipped without decoding).
    pub async fn read<S: EventSet>(&self, query: impl Into<Query>) -> Result<Vec<S>, AutomationError> {
        let mut events = self.events().read(query.into(), ReadOptions::forwards());
        let mut decoded = Vec::new();
        while let Some(event) = events.try_next().await? {
            if let Some(event) = Recorded::new(event).decode::<S>() {
                decoded.push(event?);
            }
        }
        Ok(decoded)
    }

    /// The dependency of type `T` the app provided (see [`crate::App::provide`]).
    pub fn dependency<T: Send + Sync + 'static>(&self) -> Result<Arc<T>, AutomationError> {
        Ok(self.dependencies.get::<T>()?)
    }
}

/// A failed job attempt: any error, boxed with its source chain.
///
/// `?` converts every `std::error::Error + Send + Sync + 'static` into it, so a handler
/// needs no `map_err`; [`AutomationError::msg`] makes one from a message. Like
/// `anyhow::Error`, it does not implement `std::error::Error` itself (that would collide
/// with the blanket `From`); it dereferences to `dyn Error` instead, so
/// `err.source()` walks the chain, and [`AutomationError::downcast_ref`] finds the
/// original type.
pub struct AutomationError(BoxError);

/// A failure with only a message (see [`AutomationError::msg`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Message(pub String);

impl AutomationError {
    /// A failure with only a message.
    pub fn msg(message: impl Into<String>) -> Self {
        AutomationError(Box::new(Message(message.into())))
    }

    /// Wraps any error, keeping it as the source chain.
    #[deprecated(since = "0.1.0", note = "`?` converts errors; or use `AutomationError::from`")]
    pub fn from_error(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        err.into()
    }

    /// The wrapped error, if it is an `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.0.downcast_ref()
    }

    /// The wrapped error.
    pub fn into_inner(self) -> BoxError {
        self.0
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for AutomationError {
    fn from(err: E) -> Self {
        AutomationError(Box::new(err))
    }
}

impl From<AutomationError> for BoxError {
    fn from(err: AutomationError) -> Self {
        err.0
    }
}

impl std::ops::Deref for AutomationError {
    type Target = dyn std::error::Error + Send + Sync + 'static;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl AsRef<dyn std::error::Error + Send + Sync + 'static> for AutomationError {
    fn as_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl std::fmt::Display for AutomationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::fmt::Debug for AutomationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

/// The triggering event of a job is not in the log.
#[derive(Debug, thiserror::Error)]
#[error("triggering event {0} not found")]
pub struct TriggerNotFound(pub Position);

/// Tuning of an automation's queue.
#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    /// How long a claim lasts without renewal.
    pub lease: Duration,
    /// Attempts before a job moves to the dead-letter queue.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles per attempt (capped at 5 minutes).
    pub retry_backoff: Duration,
    /// Longest idle wait between two looks for due jobs (a worker also wakes when a job is
    /// enqueued, and when the earliest waiting job becomes due).
    pub poll: Duration,
    /// Workers the app runs for this automation (per instance).
    pub workers: usize,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            lease: Duration::from_secs(30),
            max_attempts: 5,
            retry_backoff: Duration::from_secs(1),
            poll: Duration::from_millis(100),
            workers: 2,
        }
    }
}

/// A job that failed `max_attempts` times.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeadLetter {
    /// The triggering event's position.
    pub position: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last error.
    pub error: String,
}

/// Resolves once `stop` is true; never if its sender is gone without asking to stop.
async fn stop_requested(stop: &mut tokio::sync::watch::Receiver<bool>) {
    if stop.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Runs `body` in a transaction and returns its value.
async fn transact<R: Send + 'static>(
    backend: &dyn Backend,
    body: impl Fn(Arc<dyn DynTx>) -> BoxFuture<'static, Result<R, TxFailure>> + Send + Sync,
) -> Result<R, AutomationError> {
    transact_value(backend, body).await.map_err(|err| match err {
        TxFailure::Body(body) => AutomationError(body),
        storage @ TxFailure::Storage(_) => storage.into(),
    })
}

/// An automation bound to a store: its enqueuer, its workers and its dead-letter queue.
pub struct AutomationRuntime<A: Automation> {
    automation: Arc<A>,
    backend: Arc<dyn Backend>,
    keys: QueueKeys,
    settings: QueueSettings,
    dependencies: Dependencies,
    wake: Wake,
}

impl<A: Automation> Clone for AutomationRuntime<A> {
    fn clone(&self) -> Self {
        AutomationRuntime {
            automation: self.automation.clone(),
            backend: self.backend.clone(),
            keys: self.keys.clone(),
            settings: self.settings,
            dependencies: self.dependencies.clone(),
            wake: self.wake.clone(),
        }
    }
}

impl<A: Automation> AutomationRuntime<A> {
    /// Binds `automation` to `backend`.
    pub fn new(automation: A, backend: Arc<dyn Backend>, settings: QueueSettings) -> Self {
        let keys = QueueKeys::new(backend.as_ref(), A::NAME);
        let wake = Wake::new(keys.wake.clone());
        AutomationRuntime {
            automation: Arc::new(automation),
            backend,
            keys,
            settings,
            dependencies: Dependencies::new(),
            wake,
        }
    }

    /// Gives handlers access to `dependencies`.
    pub fn with_dependencies(mut self, dependencies: Dependencies) -> Self {
        self.dependencies = dependencies;
        self
    }

    /// The queue settings.
    pub fn settings(&self) -> QueueSettings {
        self.settings
    }

    /// Follows the triggering events forever, enqueuing a job per event and waking idle
    /// workers.
    pub async fn run_enqueuer(self) -> Result<(), AutomationError> {
        let keys = self.keys.clone();
        let cursor = transact(self.backend.as_ref(), move |tx| {
            let keys = keys.clone();
            async move { Ok(tx.get(&keys.cursor).await?.and_then(|b| Position::from_bytes(&b))) }.boxed()
        })
        .await?;
        let mut events = self.backend.events().subscribe(self.automation.query(), cursor).ready_chunks(256);
        while let Some(chunk) = events.next().await {
            let positions: Vec<Position> =
                chunk.into_iter().map(|e| e.map(|e| e.position)).collect::<Result<_, _>>()?;
            let (keys, positions) = (self.keys.clone(), Arc::new(positions));
            let enqueued = transact(self.backend.as_ref(), move |tx| {
                let (keys, positions) = (keys.clone(), positions.clone());
                async move { queue::enqueue(tx.as_ref(), &keys, &positions).await }.boxed()
            })
            .await?;
            if enqueued > 0 {
                self.wake.notify();
            }
        }
        Ok(())
    }

    /// Claims the first due job under a lease owned by `worker`.
    async fn claim(&self, worker: &str) -> Result<Claim, AutomationError> {
        let (keys, worker, lease) = (self.keys.clone(), worker.to_owned(), self.settings.lease);
        transact(self.backend.as_ref(), move |tx| {
            let (keys, worker) = (keys.clone(), worker.clone());
            async move { queue::claim(tx.as_ref(), &keys, &worker, lease, now_micros()).await }.boxed()
        })
        .await
    }

    /// Updates the job at `position` if `worker` still holds it.
    async fn settle(
        &self,
        worker: &str,
        position: Position,
        outcome: Result<(), String>,
    ) -> Result<(), AutomationError> {
        let (keys, worker, settings) = (self.keys.clone(), worker.to_owned(), self.settings);
        let outcome = Arc::new(outcome);
        transact(self.backend.as_ref(), move |tx| {
            let (keys, worker, outcome) = (keys.clone(), worker.clone(), outcome.clone());
            async move { queue::settle(tx.as_ref(), &keys, &worker, position, &outcome, &settings).await }.boxed()
        })
        .await
    }

    /// Extends the lease of `worker` on the job at `position`.
    async fn renew(&self, worker: &str, position: Position) -> Result<(), AutomationError> {
        let (keys, worker, lease) = (self.keys.clone(), worker.to_owned(), self.settings.lease);
        transact(self.backend.as_ref(), move |tx| {
            let (keys, worker) = (keys.clone(), worker.clone());
            async move { queue::renew(tx.as_ref(), &keys, &worker, position, lease).await }.boxed()
        })
        .await
    }

    /// Runs one due job, if any; returns whether one ran.
    pub async fn work_once(&self, worker: &str) -> Result<bool, AutomationError> {
        Ok(matches!(self.work_next(worker).await?, Claim::Claimed(..)))
    }

    /// Runs one due job if there is one; else says when the next one becomes due.
    async fn work_next(&self, worker: &str) -> Result<Claim, AutomationError> {
        let claim = self.claim(worker).await?;
        let Claim::Claimed(position, attempt) = claim else { return Ok(claim) };
        let span = info_span!("job", automation = A::NAME, %position, attempt);
        async {
            let event = self
                .backend
                .events()
                .read(Query::all(), ReadOptions::forwards().from(position).limit(1))
                .try_next()
                .await?
                .filter(|e| e.position == position)
                .ok_or(TriggerNotFound(position))?;
            let runner = CommandRunner::new(self.backend.events()).with_snapshots(Snapshots::new(self.backend.clone()));
            let ctx = AutomationContext::with_runner(runner, self.dependencies.clone()).triggered_by(position);
            // Renew the lease while the handler runs, in the same task: if the worker dies,
            // renewals stop with it and the lease expires.
            let renewals = async {
                loop {
                    tokio::time::sleep(self.settings.lease / 3).await;
                    if let Err(err) = self.renew(worker, position).await {
                        warn!(%err, "lease renewal failed");
                    }
                }
            };
            let outcome = match Recorded::new(event).decode::<A::Events>() {
                None => Ok(()),
                Some(Err(undecodable)) => Err(undecodable.to_string()),
                Some(Ok(event)) => tokio::select! {
                    outcome = self.automation.handle(event, &ctx) => outcome.map_err(|e| e.to_string()),
                    never = renewals => never,
                },
            };
            if let Err(error) = &outcome {
                warn!(%error, "job failed");
            } else {
                debug!("job done");
            }
            self.settle(worker, position, outcome).await?;
            Ok(claim)
        }
        .instrument(span)
        .await
    }

    /// Gives jobs written by earlier versions, before the due-time index, their due entry.
    async fn index_older_jobs(&self) -> Result<(), AutomationError> {
        loop {
            let keys = self.keys.clone();
            let done = transact(self.backend.as_ref(), move |tx| {
                let keys = keys.clone();
                async move { queue::index_older_jobs(tx.as_ref(), &keys).await }.boxed()
            })
            .await?;
            if done {
                return Ok(());
            }
        }
    }

    /// Works forever as `worker`.
    pub async fn run_worker(self, worker: String) -> Result<(), AutomationError> {
        let (_keep, stop) = tokio::sync::watch::channel(false);
        self.run_worker_until(worker, stop).await
    }

    /// Works as `worker` until `stop` turns true; a job in progress is finished first.
    ///
    /// When no job is due, the worker arms its wake-ups (its process's enqueuer, and a
    /// watch on the queue's wake key for enqueuers elsewhere), looks once more, and sleeps
    /// until one fires, the earliest waiting job becomes due, or [`QueueSettings::poll`]
    /// passes; it arms them again before its next look.
    pub async fn run_worker_until(
        self,
        worker: String,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), AutomationError> {
        self.index_older_jobs().await?;
        let mut armed: Option<wake::Armed> = None;
        while !*stop.borrow() {
            let next_due = match self.work_next(&worker).await? {
                Claim::Claimed(..) => {
                    armed = None;
                    continue;
                }
                Claim::Idle(next_due) => next_due,
            };
            if let Some(wake_ups) = armed.take() {
                let until_due = next_due.map(|due| Duration::from_micros(due.saturating_sub(now_micros())));
                let idle = until_due.map_or(self.settings.poll, |d| d.min(self.settings.poll));
                tokio::select! {
                    woken = wake_ups.wait(idle) => woken?,
                    _ = stop_requested(&mut stop) => break,
                }
            }
            // Armed before the next look, so a job enqueued in between is not slept through.
            armed = Some(self.wake.arm(self.backend.as_ref()).await?);
        }
        debug!(automation = A::NAME, worker, "worker stopped");
        Ok(())
    }

    /// Jobs waiting or in progress.
    pub async fn pending(&self) -> Result<usize, AutomationError> {
        let keys = self.keys.clone();
        transact(self.backend.as_ref(), move |tx| {
            let keys = keys.clone();
            async move { queue::pending(tx.as_ref(), &keys).await }.boxed()
        })
        .await
    }

    /// The dead-letter queue, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, AutomationError> {
        let keys = self.keys.clone();
        transact(self.backend.as_ref(), move |tx| {
            let keys = keys.clone();
            async move { queue::dead_letters(tx.as_ref(), &keys).await }.boxed()
        })
        .await
    }

    /// Moves a dead letter back to the queue with fresh attempts; `false` if absent.
    pub async fn replay(&self, position: Position) -> Result<bool, AutomationError> {
        let keys = self.keys.clone();
        let replayed = transact(self.backend.as_ref(), move |tx| {
            let keys = keys.clone();
            async move { queue::replay(tx.as_ref(), &keys, position).await }.boxed()
        })
        .await?;
        if replayed {
            self.wake.notify();
        }
        Ok(replayed)
    }

    /// Deletes every dead letter; returns how many.
    pub async fn purge(&self) -> Result<usize, AutomationError> {
        let keys = self.keys.clone();
        transact(self.backend.as_ref(), move |tx| {
            let keys = keys.clone();
            async move { queue::purge(tx.as_ref(), &keys).await }.boxed()
        })
        .await
    }
}
