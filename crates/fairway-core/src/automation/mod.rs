//! Automations: react to events by running commands, through a durable queue in the store.
//!
//! - An **enqueuer** follows the automation's query and, in one transaction per batch,
//!   writes a job per triggering event and moves its cursor (re-read inside the
//!   transaction, so several instances never enqueue an event twice).
//! - **Workers** claim due jobs under a lease (a claim is a transaction: two workers never
//!   hold one job), renew the lease while the handler runs, delete the job on success, and
//!   on failure retry it with exponential backoff until `max_attempts`, after which it moves
//!   to the dead-letter queue. A worker that dies mid-job leaves its lease to expire; the
//!   job then runs again. A worker that can no longer renew its lease stops its handler
//!   before the lease ends (as a crash would), so a job never runs twice at once. Jobs are
//!   found through a due-time index (module `queue`), so any number of leased or
//!   backing-off jobs never hides a due one; workers of every instance pick among the first
//!   due jobs instead of all taking the first one. Leases and due times count in the store's
//!   clock, the same for every instance (see module `queue`).
//! - An idle worker sleeps until the earliest job becomes due, at most
//!   [`QueueSettings::poll`], and wakes as soon as a job is enqueued: by the enqueuer of its
//!   own process directly, by one of another process through a watch on the queue's wake key.
//!
//! Delivery is at least once. Handlers stay idempotent naturally by running commands: a
//! command re-run after a crash decides again on the current log (its DCB condition makes
//! a duplicate append impossible when its decision model sees the first one), or appends
//! events with ids derived from the triggering event's position.
//!
//! Modules: `queue` (the transactions on the job records; their stored format is
//! `crate::format::queue`'s), `worker` (the [`AutomationRuntime`]: enqueuer, workers,
//! dead-letter administration), `wake` (waking idle workers).

pub(crate) mod queue;
mod wake;
mod worker;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use fairway_dcb::{EventStore, Position, Query, ReadOptions};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

use crate::BoxError;
use crate::command::{Command, CommandError, CommandRunner, Executed};
use crate::dependencies::Dependencies;
use crate::event::{EventSet, Recorded};
#[cfg(feature = "testkit")]
use crate::testkit::CommandOutcome;

pub use worker::AutomationRuntime;

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
    recorder: Option<Arc<std::sync::Mutex<Vec<CommandOutcome>>>>,
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
    pub(crate) fn recording(mut self, recorder: Arc<std::sync::Mutex<Vec<CommandOutcome>>>) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Runs a command.
    pub async fn execute<C: Command>(&self, command: &C) -> Result<Executed, CommandError<C::Error>> {
        let result = self.runner.execute(command).await;
        #[cfg(feature = "testkit")]
        if let Some(recorder) = &self.recorder {
            recorder.lock().expect("recorder").push(CommandOutcome::of::<C>(&result));
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
    pub position: Position,
    /// Attempts made.
    pub attempts: u32,
    /// The last error.
    pub error: String,
}
