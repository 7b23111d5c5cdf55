//! Supervision of the app's background tasks (projectors, enqueuers, workers, the
//! idempotency sweeper): a task that fails or panics is started again after an exponential
//! backoff, and its state is kept for `/health`.
//!
//! A task's state is one of:
//! - `running`: started and not failing (a restarted task counts as running once it has
//!   stayed up for [`SupervisionPolicy::stable_after`]);
//! - `retrying`: it failed and is started again after a backoff; the last error is kept;
//! - `down`: it failed [`SupervisionPolicy::down_after`] times in a row; it is still
//!   started again every [`SupervisionPolicy::max_backoff`], so it recovers by itself once
//!   the cause goes away (a storage outage, a full disk, a bad document fixed by hand);
//! - `stopped`: the app is shutting down.
//!
//! The app is healthy when no task is `retrying` or `down` and the store accepts writes.
//! While the store refuses writes (e.g. its disk is full), a failed task is started again
//! as soon as the store recovers, not only after its backoff: the failure was most likely
//! the store's.
//!
//! Module `health` keeps the states and answers `/health`; this module runs the tasks.

mod health;
#[cfg(test)]
mod tests;

use std::panic::AssertUnwindSafe;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{error, info, warn};

pub use health::{Health, HealthReport, TaskState, TaskStatus};

/// How background tasks are restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupervisionPolicy {
    /// Delay before the first restart; doubled at each further failure in a row.
    pub initial_backoff: Duration,
    /// Longest delay between two restarts.
    pub max_backoff: Duration,
    /// How long a restarted task must stay up to count as running again (its failures in a
    /// row and its backoff start over).
    pub stable_after: Duration,
    /// Failures in a row after which a task is reported `down` rather than `retrying`.
    pub down_after: u32,
}

impl Default for SupervisionPolicy {
    fn default() -> Self {
        SupervisionPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            stable_after: Duration::from_secs(1),
            down_after: 5,
        }
    }
}

impl SupervisionPolicy {
    /// The delay before restarting after `failures` failures in a row (1-based).
    pub fn backoff(&self, failures: u32) -> Duration {
        let doubled = self.initial_backoff.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
        doubled.min(self.max_backoff)
    }
}

fn epoch_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Starts one run of a task.
type Start = Box<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// A task to supervise: a way to start it, and how it ends at shutdown.
pub struct Task {
    role: &'static str,
    slice: &'static str,
    instance: Option<usize>,
    start: Start,
    graceful: bool,
}

impl Task {
    /// A task of `role` (`projector`, `enqueuer`, `worker`, `sweeper`) serving `slice`;
    /// `start` starts one run, which returns only on failure (or, for graceful tasks, once
    /// the stop signal turned true).
    pub fn new<E, F>(role: &'static str, slice: &'static str, start: F) -> Self
    where
        E: std::fmt::Display + 'static,
        F: Fn() -> BoxFuture<'static, Result<(), E>> + Send + Sync + 'static,
    {
        let start: Start = Box::new(move || start().map(|ended| ended.map_err(|e| e.to_string())).boxed());
        Task { role, slice, instance: None, start, graceful: false }
    }

    /// Distinguishes several tasks of one role and slice (workers).
    pub fn instance(mut self, instance: usize) -> Self {
        self.instance = Some(instance);
        self
    }

    /// The task watches the stop signal itself and finishes its work first (workers);
    /// other tasks are dropped at once when it turns true.
    pub fn graceful(mut self) -> Self {
        self.graceful = true;
        self
    }

    /// Whether the task finishes its work when stopped.
    pub fn is_graceful(&self) -> bool {
        self.graceful
    }

    fn name(&self) -> String {
        match self.instance {
            Some(n) => format!("{}:{}:{n}", self.role, self.slice),
            None => format!("{}:{}", self.role, self.slice),
        }
    }
}

/// How one run of a task ended.
enum Ended {
    /// The stop signal turned true.
    Stopped,
    /// It failed (returned an error, returned although it should not, or panicked).
    Failed(String),
}

/// Runs `task` in its own tokio task, starting it again after each failure, until `stop`
/// turns true.
pub fn supervise(task: Task, health: Health, policy: SupervisionPolicy, stop: watch::Receiver<bool>) -> JoinHandle<()> {
    let name = task.name();
    health.register(&name, task.role, task.slice);
    tokio::spawn(run_supervised(task, name, health, policy, stop))
}

async fn run_supervised(
    task: Task,
    name: String,
    health: Health,
    policy: SupervisionPolicy,
    mut stop: watch::Receiver<bool>,
) {
    let mut failures = 0u32;
    loop {
        if *stop.borrow() {
            break;
        }
        let ended = run_once(&task, &name, &health, &policy, &mut failures, &mut stop).await;
        let Ended::Failed(err) = ended else { break };
        if *stop.borrow() {
            warn!(task = name, %err, "background task failed while stopping");
            break;
        }
        failures += 1;
        let backoff = policy.backoff(failures);
        let down = failures >= policy.down_after;
        let now = SystemTime::now();
        health.update(&name, |status| {
            status.state = if down { TaskState::Down } else { TaskState::Retrying };
            status.failures = failures;
            status.error = Some(err.clone());
            status.failed_at_ms = Some(epoch_ms(now));
            status.retry_at_ms = Some(epoch_ms(now + backoff));
        });
        if down {
            error!(task = name, failures, %err, ?backoff, "background task down; retrying");
        } else {
            warn!(task = name, failures, %err, ?backoff, "background task failed; retrying");
        }
        let storage_down = (health.storage)().is_some();
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = health.storage_recovered(), if storage_down => {
                info!(task = name, "the store accepts writes again; restarting at once");
            }
            _ = stopped(&mut stop) => break,
        }
        health.update(&name, |status| status.restarts += 1);
    }
    health.update(&name, |status| {
        status.state = TaskState::Stopped;
        status.retry_at_ms = None;
    });
}

/// One run of `task`: marks it running once it stays up for `stable_after` after
/// failures, and ends it when `stop` turns true unless it is graceful.
async fn run_once(
    task: &Task,
    name: &str,
    health: &Health,
    policy: &SupervisionPolicy,
    failures: &mut u32,
    stop: &mut watch::Receiver<bool>,
) -> Ended {
    let run = AssertUnwindSafe((task.start)()).catch_unwind();
    let mut run = std::pin::pin!(run);
    let stable = tokio::time::sleep_until(Instant::now() + policy.stable_after);
    let mut stable = std::pin::pin!(stable);
    let mut recovered = *failures == 0;
    let mut stopping = false;
    loop {
        tokio::select! {
            outcome = &mut run => {
                return match outcome {
                    Ok(Ok(())) if stopping || *stop.borrow() => Ended::Stopped,
                    Ok(Ok(())) => Ended::Failed("the task ended on its own".into()),
                    Ok(Err(err)) => Ended::Failed(err),
                    Err(panic) => Ended::Failed(format!("panicked: {}", panic_message(panic.as_ref()))),
                };
            }
            _ = &mut stable, if !recovered => {
                recovered = true;
                info!(task = name, after = *failures, "background task recovered");
                *failures = 0;
                health.update(name, |status| {
                    status.state = TaskState::Running;
                    status.failures = 0;
                    status.retry_at_ms = None;
                });
            }
            _ = stopped(stop), if !stopping => {
                if !task.graceful {
                    return Ended::Stopped;
                }
                stopping = true;
            }
        }
    }
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
