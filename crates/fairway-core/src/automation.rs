//! Automations: react to events by running commands, through a durable queue in the store.
//!
//! - An **enqueuer** follows the automation's query and, in one transaction per batch,
//!   writes a job per triggering event and moves its cursor (re-read inside the
//!   transaction, so several instances never enqueue an event twice).
//! - **Workers** claim due jobs under a lease (a claim is a transaction: two workers never
//!   hold one job), renew the lease while the handler runs, delete the job on success, and
//!   on failure retry it with exponential backoff until `max_attempts`, after which it moves
//!   to the dead-letter queue. A worker that dies mid-job leaves its lease to expire; the
//!   job then runs again.
//!
//! Delivery is at least once. Handlers stay idempotent naturally by running commands: a
//! command re-run after a crash decides again on the current log (its DCB condition makes
//! a duplicate append impossible when its decision model sees the first one), or appends
//! events with ids derived from the triggering event's position.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fairway_dcb::{EventStore, Position, Query, ReadOptions};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tracing::{Instrument, debug, info_span, warn};

use crate::backend::{Backend, DynTx, TxFailure, transact_value};
use crate::command::{Command, CommandError, CommandRunner, Executed};
use crate::dependencies::Dependencies;
use crate::event::Recorded;
use crate::testkit::Outcome;

/// A reaction to events.
pub trait Automation: Send + Sync + 'static {
    /// Stable name (queue keyspace, routes).
    const NAME: &'static str;

    /// The triggering events.
    fn query(&self) -> Query;

    /// Handles one triggering event, usually by running commands through `ctx`. An error
    /// makes the job retry later.
    fn handle(
        &self,
        event: &Recorded,
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
    recorder: Option<Arc<std::sync::Mutex<Vec<Outcome>>>>,
}

impl AutomationContext {
    /// A context running commands on `events` with `dependencies`.
    pub fn new(events: Arc<dyn EventStore>, dependencies: Dependencies) -> Self {
        AutomationContext { runner: CommandRunner::new(events), dependencies, recorder: None }
    }

    /// Records the outcome of every command run through this context (for tests).
    pub(crate) fn recording(mut self, recorder: Arc<std::sync::Mutex<Vec<Outcome>>>) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Runs a command.
    pub async fn execute<C: Command>(&self, command: &C) -> Result<Executed, CommandError<C::Error>> {
        let result = self.runner.execute(command).await;
        if let Some(recorder) = &self.recorder {
            recorder.lock().expect("recorder").push(Outcome::of::<C>(&result));
        }
        result
    }

    /// The event store, to read what a decision needs beyond the triggering event.
    pub fn events(&self) -> &Arc<dyn EventStore> {
        self.runner.store()
    }

    /// Every event matching `query`, oldest first.
    pub async fn read(&self, query: Query) -> Result<Vec<Recorded>, AutomationError> {
        self.events()
            .read(query, ReadOptions::forwards())
            .map_ok(Recorded::new)
            .try_collect()
            .await
            .map_err(AutomationError::from_error)
    }

    /// The dependency of type `T` the app provided (see [`crate::App::provide`]).
    pub fn dependency<T: Send + Sync + 'static>(&self) -> Result<Arc<T>, AutomationError> {
        self.dependencies.get::<T>().map_err(AutomationError::from_error)
    }
}

/// A failed job attempt.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AutomationError(pub String);

impl AutomationError {
    /// Wraps any error.
    pub fn from_error(err: impl std::fmt::Display) -> Self {
        AutomationError(err.to_string())
    }
}

/// Tuning of an automation's queue.
#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    /// How long a claim lasts without renewal.
    pub lease: Duration,
    /// Attempts before a job moves to the dead-letter queue.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles per attempt (capped at 5 minutes).
    pub retry_backoff: Duration,
    /// Idle wait between polls for due jobs.
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

/// A queued job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Job {
    attempts: u32,
    not_before_micros: u64,
    lease_until_micros: u64,
    lease_owner: Option<String>,
    last_error: Option<String>,
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

impl Job {
    /// A job due now, never attempted.
    fn fresh() -> Self {
        Job { attempts: 0, not_before_micros: 0, lease_until_micros: 0, lease_owner: None, last_error: None }
    }
}

fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

#[derive(Clone)]
struct QueueKeys {
    cursor: Vec<u8>,
    jobs: Vec<u8>,
    dead: Vec<u8>,
}

fn end_of(prefix: &[u8]) -> Vec<u8> {
    [prefix, &[0xff]].concat()
}

impl QueueKeys {
    fn new(backend: &dyn Backend, name: &str) -> Self {
        let root = backend.keyspace(&format!("automation/{name}"));
        QueueKeys {
            cursor: [root.as_slice(), b"c"].concat(),
            jobs: [root.as_slice(), b"q"].concat(),
            dead: [root.as_slice(), b"x"].concat(),
        }
    }

    fn job(&self, position: Position) -> Vec<u8> {
        [self.jobs.as_slice(), &position.to_bytes()].concat()
    }

    fn dead(&self, position: Position) -> Vec<u8> {
        [self.dead.as_slice(), &position.to_bytes()].concat()
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(value).expect("queue records encode")
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, TxFailure> {
    rmp_serde::from_slice(bytes)
        .map_err(|e| TxFailure::Body(Box::new(AutomationError(format!("corrupt queue record: {e}")))))
}

/// Runs `body` in a transaction and returns its value.
async fn transact<R: Send + 'static>(
    backend: &dyn Backend,
    body: impl Fn(Arc<dyn DynTx>) -> BoxFuture<'static, Result<R, TxFailure>> + Send + Sync,
) -> Result<R, AutomationError> {
    transact_value(backend, body).await.map_err(AutomationError::from_error)
}

/// An automation bound to a store: its enqueuer, its workers and its dead-letter queue.
pub struct AutomationRuntime<A: Automation> {
    automation: Arc<A>,
    backend: Arc<dyn Backend>,
    keys: QueueKeys,
    settings: QueueSettings,
    dependencies: Dependencies,
}

impl<A: Automation> Clone for AutomationRuntime<A> {
    fn clone(&self) -> Self {
        AutomationRuntime {
            automation: self.automation.clone(),
            backend: self.backend.clone(),
            keys: self.keys.clone(),
            settings: self.settings,
            dependencies: self.dependencies.clone(),
        }
    }
}

impl<A: Automation> AutomationRuntime<A> {
    /// Binds `automation` to `backend`.
    pub fn new(automation: A, backend: Arc<dyn Backend>, settings: QueueSettings) -> Self {
        let keys = QueueKeys::new(backend.as_ref(), A::NAME);
        AutomationRuntime {
            automation: Arc::new(automation),
            backend,
            keys,
            settings,
            dependencies: Dependencies::new(),
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

    /// Follows the triggering events forever, enqueuing a job per event.
    pub async fn run_enqueuer(self) -> Result<(), AutomationError> {
        let keys = self.keys.clone();
        let cursor = transact(self.backend.as_ref(), move |tx| {
            let keys = keys.clone();
            async move { Ok(tx.get(&keys.cursor).await?.and_then(|b| Position::from_bytes(&b))) }.boxed()
        })
        .await?;
        let mut events = self.backend.events().subscribe(self.automation.query(), cursor).ready_chunks(256);
        while let Some(chunk) = events.next().await {
            let positions: Vec<Position> = chunk
                .into_iter()
                .map(|e| e.map(|e| e.position))
                .collect::<Result<_, _>>()
                .map_err(AutomationError::from_error)?;
            let (keys, positions) = (self.keys.clone(), Arc::new(positions));
            transact(self.backend.as_ref(), move |tx| {
                let (keys, positions) = (keys.clone(), positions.clone());
                async move {
                    let stored = tx.get(&keys.cursor).await?.and_then(|b| Position::from_bytes(&b));
                    let job = Job::fresh();
                    for position in positions.iter().filter(|p| stored.is_none_or(|s| **p > s)) {
                        tx.set(&keys.job(*position), &encode(&job));
                    }
                    if let Some(last) = positions.last().filter(|l| stored.is_none_or(|s| **l > s)) {
                        tx.set(&keys.cursor, &last.to_bytes());
                    }
                    Ok(())
                }
                .boxed()
            })
            .await?;
        }
        Ok(())
    }

    /// Claims the first due job under a lease owned by `worker`.
    async fn claim(&self, worker: &str) -> Result<Option<(Position, u32)>, AutomationError> {
        let (keys, worker, lease) = (self.keys.clone(), worker.to_owned(), self.settings.lease);
        transact(self.backend.as_ref(), move |tx| {
            let (keys, worker) = (keys.clone(), worker.clone());
            async move {
                let now = now_micros();
                for kv in tx.scan(&keys.jobs, &end_of(&keys.jobs), 64).await? {
                    let mut job: Job = decode(&kv.value)?;
                    if job.not_before_micros > now || job.lease_until_micros > now {
                        continue;
                    }
                    let position = Position::from_bytes(&kv.key[keys.jobs.len()..])
                        .ok_or_else(|| TxFailure::Body(Box::new(AutomationError("job key without position".into()))))?;
                    job.attempts += 1;
                    job.lease_owner = Some(worker.clone());
                    job.lease_until_micros = now + lease.as_micros() as u64;
                    tx.set(&kv.key, &encode(&job));
                    return Ok(Some((position, job.attempts)));
                }
                Ok(None)
            }
            .boxed()
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
            async move {
                let key = keys.job(position);
                let Some(bytes) = tx.get(&key).await? else { return Ok(()) };
                let mut job: Job = decode(&bytes)?;
                if job.lease_owner.as_deref() != Some(worker.as_str()) {
                    return Ok(()); // The lease expired and another worker took the job.
                }
                match outcome.as_ref() {
                    Ok(()) => tx.clear(&key),
                    Err(error) if job.attempts >= settings.max_attempts => {
                        tx.clear(&key);
                        let dead =
                            DeadLetter { position: position.to_string(), attempts: job.attempts, error: error.clone() };
                        tx.set(&keys.dead(position), &encode(&dead));
                    }
                    Err(error) => {
                        let backoff =
                            settings.retry_backoff.saturating_mul(1 << job.attempts.saturating_sub(1).min(16));
                        job.not_before_micros = now_micros() + backoff.min(Duration::from_secs(300)).as_micros() as u64;
                        job.lease_until_micros = 0;
                        job.lease_owner = None;
                        job.last_error = Some(error.clone());
                        tx.set(&key, &encode(&job));
                    }
                }
                Ok(())
            }
            .boxed()
        })
        .await
    }

    /// Extends the lease of `worker` on the job at `position`.
    async fn renew(&self, worker: &str, position: Position) -> Result<(), AutomationError> {
        let (keys, worker, lease) = (self.keys.clone(), worker.to_owned(), self.settings.lease);
        transact(self.backend.as_ref(), move |tx| {
            let (keys, worker) = (keys.clone(), worker.clone());
            async move {
                let key = keys.job(position);
                if let Some(bytes) = tx.get(&key).await? {
                    let mut job: Job = decode(&bytes)?;
                    if job.lease_owner.as_deref() == Some(worker.as_str()) {
                        job.lease_until_micros = now_micros() + lease.as_micros() as u64;
                        tx.set(&key, &encode(&job));
                    }
                }
                Ok(())
            }
            .boxed()
        })
        .await
    }

    /// Runs one due job, if any; returns whether one ran.
    pub async fn work_once(&self, worker: &str) -> Result<bool, AutomationError> {
        let Some((position, attempt)) = self.claim(worker).await? else { return Ok(false) };
        let span = info_span!("job", automation = A::NAME, %position, attempt);
        async {
            let event = self
                .backend
                .events()
                .read(Query::all(), ReadOptions::forwards().from(position).limit(1))
                .try_next()
                .await
                .map_err(AutomationError::from_error)?
                .filter(|e| e.position == position)
                .ok_or_else(|| AutomationError(format!("triggering event {position} not found")))?;
            let ctx = AutomationContext::new(self.backend.events(), self.dependencies.clone());
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
            let event = Recorded::new(event);
            let outcome = tokio::select! {
                outcome = self.automation.handle(&event, &ctx) => outcome.map_err(|e| e.0),
                never = renewals => never,
            };
            if let Err(error) = &outcome {
                warn!(%error, "job failed");
            } else {
                debug!("job done");
            }
            self.settle(worker, position, outcome).await?;
            Ok(true)
        }
        .instrument(span)
        .await
    }

    /// Works forever as `worker`, polling for due jobs.
    pub async fn run_worker(self, worker: String) -> Result<(), AutomationError> {
        let (_keep, stop) = tokio::sync::watch::channel(false);
        self.run_worker_until(worker, stop).await
    }

    /// Works as `worker` until `stop` turns true; a job in progress is finished first.
    pub async fn run_worker_until(
        self,
        worker: String,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), AutomationError> {
        while !*stop.borrow() {
            if !self.work_once(&worker).await? {
                tokio::select! {
                    _ = tokio::time::sleep(self.settings.poll) => {}
                    _ = stop.changed() => {}
                }
            }
        }
        debug!(automation = A::NAME, worker, "worker stopped");
        Ok(())
    }

    /// Jobs waiting or in progress.
    pub async fn pending(&self) -> Result<usize, AutomationError> {
        let keys = self.keys.clone();
        transact(self.backend.as_ref(), move |tx| {
            let keys = keys.clone();
            async move { Ok(tx.scan(&keys.jobs, &end_of(&keys.jobs), 0).await?.len()) }.boxed()
        })
        .await
    }

    /// The dead-letter queue, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, AutomationError> {
        let keys = self.keys.clone();
        transact(self.backend.as_ref(), move |tx| {
            let keys = keys.clone();
            async move { tx.scan(&keys.dead, &end_of(&keys.dead), 0).await?.iter().map(|kv| decode(&kv.value)).collect() }
                .boxed()
        })
        .await
    }

    /// Moves a dead letter back to the queue with fresh attempts; `false` if absent.
    pub async fn replay(&self, position: Position) -> Result<bool, AutomationError> {
        let keys = self.keys.clone();
        transact(self.backend.as_ref(), move |tx| {
            let keys = keys.clone();
            async move {
                if tx.get(&keys.dead(position)).await?.is_none() {
                    return Ok(false);
                }
                tx.clear(&keys.dead(position));
                let job = Job::fresh();
                tx.set(&keys.job(position), &encode(&job));
                Ok(true)
            }
            .boxed()
        })
        .await
    }

    /// Deletes every dead letter; returns how many.
    pub async fn purge(&self) -> Result<usize, AutomationError> {
        let keys = self.keys.clone();
        transact(self.backend.as_ref(), move |tx| {
            let keys = keys.clone();
            async move {
                let count = tx.scan(&keys.dead, &end_of(&keys.dead), 0).await?.len();
                tx.clear_range(&keys.dead, &end_of(&keys.dead));
                Ok(count)
            }
            .boxed()
        })
        .await
    }
}
