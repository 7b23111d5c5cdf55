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

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{error, info, warn};

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

/// What a task is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Started and not failing.
    Running,
    /// Failed; started again after a backoff.
    Retrying,
    /// Failed many times in a row; still started again now and then.
    Down,
    /// Stopped by the app's shutdown.
    Stopped,
}

/// One task as `/health` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskStatus {
    /// `<role>:<slice>[:<n>]`, e.g. `projector:courses` or `worker:promote:0`.
    pub task: String,
    /// `projector`, `enqueuer`, `worker` or `sweeper`.
    pub role: &'static str,
    /// The view or automation it serves (the sweeper: `idempotency`).
    pub slice: &'static str,
    /// Its state.
    pub state: TaskState,
    /// Failures in a row (0 while running).
    pub failures: u32,
    /// The last error, while failing; after recovery, the error it recovered from.
    pub error: Option<String>,
    /// When it last failed (milliseconds since the Unix epoch).
    pub failed_at_ms: Option<u64>,
    /// When it is started again, while failing (milliseconds since the Unix epoch).
    pub retry_at_ms: Option<u64>,
    /// Times it was started again since the app started.
    pub restarts: u64,
}

impl TaskStatus {
    /// Whether the task is failing (`retrying` or `down`).
    pub fn failing(&self) -> bool {
        matches!(self.state, TaskState::Retrying | TaskState::Down)
    }
}

/// Says why the store refuses writes, if it does.
type StorageProbe = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// How often a failed task waiting for its restart looks whether the store recovered.
const STORAGE_RECHECK: Duration = Duration::from_millis(100);

/// The states of every supervised task, and the store's.
#[derive(Clone)]
pub struct Health {
    tasks: Arc<Mutex<BTreeMap<String, TaskStatus>>>,
    storage: StorageProbe,
}

impl Default for Health {
    /// No task yet, and a store that never refuses writes.
    fn default() -> Self {
        Health::new(|| None)
    }
}

/// The `/health` answer.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// `ok`, or `unavailable` when the store refuses writes or a task is retrying or down.
    pub status: &'static str,
    /// Why the store refuses writes (e.g. its disk is full), if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    /// The tasks retrying or down, with why.
    pub failing: Vec<TaskStatus>,
    /// Every task.
    pub tasks: Vec<TaskStatus>,
}

impl HealthReport {
    /// Whether the store accepts writes and no task is failing.
    pub fn healthy(&self) -> bool {
        self.storage.is_none() && self.failing.is_empty()
    }
}

fn epoch_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Health {
    /// The health of an app whose store says through `storage` why it refuses writes.
    pub fn new(storage: impl Fn() -> Option<String> + Send + Sync + 'static) -> Self {
        Health { tasks: Arc::default(), storage: Arc::new(storage) }
    }

    /// Every task's status, which are failing, and the store's problem if any.
    pub fn report(&self) -> HealthReport {
        let tasks: Vec<TaskStatus> = self.tasks.lock().expect("health").values().cloned().collect();
        let failing: Vec<TaskStatus> = tasks.iter().filter(|t| t.failing()).cloned().collect();
        let storage = (self.storage)();
        let status = if storage.is_none() && failing.is_empty() { "ok" } else { "unavailable" };
        HealthReport { status, storage, failing, tasks }
    }

    /// Resolves once the store accepts writes again.
    async fn storage_recovered(&self) {
        while (self.storage)().is_some() {
            tokio::time::sleep(STORAGE_RECHECK).await;
        }
    }

    fn update(&self, task: &str, change: impl FnOnce(&mut TaskStatus)) {
        if let Some(status) = self.tasks.lock().expect("health").get_mut(task) {
            change(status);
        }
    }

    fn register(&self, task: &str, role: &'static str, slice: &'static str) {
        let status = TaskStatus {
            task: task.to_owned(),
            role,
            slice,
            state: TaskState::Running,
            failures: 0,
            error: None,
            failed_at_ms: None,
            retry_at_ms: None,
            restarts: 0,
        };
        self.tasks.lock().expect("health").insert(task.to_owned(), status);
    }
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    use super::*;

    fn quick() -> SupervisionPolicy {
        SupervisionPolicy {
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            stable_after: Duration::from_millis(100),
            down_after: 3,
        }
    }

    fn status(health: &Health) -> TaskStatus {
        health.report().tasks.into_iter().next().expect("one task")
    }

    async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = SupervisionPolicy { initial_backoff: Duration::from_millis(100), ..SupervisionPolicy::default() };
        let delays: Vec<u64> = (1..=12).map(|n| policy.backoff(n).as_millis() as u64).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000]);
        assert_eq!(policy.backoff(u32::MAX), policy.max_backoff);
    }

    #[tokio::test]
    async fn a_failing_task_is_retried_reported_down_then_running_once_the_cause_is_gone() {
        let health = Health::default();
        let (stop_tx, stop) = watch::channel(false);
        let starts = Arc::new(AtomicU32::new(0));
        let failing_starts = 6;
        let counter = starts.clone();
        let task = Task::new("projector", "things", move || {
            let start = counter.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if start <= failing_starts {
                    return Err(format!("broken document (start {start})"));
                }
                std::future::pending().await
            }
            .boxed()
        });
        let handle = supervise(task, health.clone(), quick(), stop);
        eventually("retrying", || status(&health).state == TaskState::Retrying).await;
        assert!(!health.report().healthy());
        eventually("down", || status(&health).state == TaskState::Down).await;
        let down = status(&health);
        assert!(down.failures >= 3, "{down:?}");
        assert!(down.error.as_deref().is_some_and(|e| e.starts_with("broken document")), "{down:?}");
        assert_eq!(health.report().failing[0].task, "projector:things");
        eventually("running again", || status(&health).state == TaskState::Running).await;
        let recovered = status(&health);
        assert_eq!(starts.load(Ordering::SeqCst), failing_starts + 1, "started again after each failure only");
        assert_eq!(recovered.restarts, u64::from(failing_starts));
        assert_eq!(recovered.failures, 0);
        assert!(health.report().healthy());
        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), handle).await.expect("stops at once").unwrap();
        assert_eq!(status(&health).state, TaskState::Stopped);
    }

    #[tokio::test]
    async fn a_panic_is_a_failure_and_a_restart_that_fails_fast_stays_failing() {
        let health = Health::default();
        let (_stop_tx, stop) = watch::channel(false);
        let task = Task::new("worker", "mailer", || {
            async { panic!("the mail server vanished") as Result<(), String> }.boxed()
        })
        .instance(1)
        .graceful();
        let _handle = supervise(task, health.clone(), quick(), stop);
        // Each restart fails at once, before `stable_after`: never reported running.
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_millis(400);
        while Instant::now() < deadline {
            seen.push(status(&health).state);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let after_first_failure: Vec<_> = seen.iter().skip_while(|s| **s == TaskState::Running).collect();
        assert!(after_first_failure.iter().all(|s| matches!(s, TaskState::Retrying | TaskState::Down)), "{seen:?}");
        let failing = status(&health);
        assert_eq!(failing.task, "worker:mailer:1");
        assert_eq!(failing.state, TaskState::Down);
        assert_eq!(failing.error.as_deref(), Some("panicked: the mail server vanished"));
    }

    #[tokio::test]
    async fn a_task_failing_while_the_store_refuses_writes_restarts_as_soon_as_it_recovers() {
        let disk_full = Arc::new(AtomicBool::new(true));
        let probe = disk_full.clone();
        let health = Health::new(move || probe.load(Ordering::SeqCst).then(|| "disk full".to_owned()));
        let (_stop_tx, stop) = watch::channel(false);
        let full = disk_full.clone();
        let task = Task::new("projector", "things", move || {
            let full = full.load(Ordering::SeqCst);
            async move { if full { Err("cannot write: disk full".to_owned()) } else { std::future::pending().await } }
                .boxed()
        });
        // A backoff far longer than the test: only the store's recovery can restart it.
        let policy = SupervisionPolicy { initial_backoff: Duration::from_secs(3600), ..quick() };
        let _handle = supervise(task, health.clone(), policy, stop);
        eventually("retrying", || status(&health).state == TaskState::Retrying).await;
        let report = health.report();
        assert_eq!((report.status, report.storage.as_deref()), ("unavailable", Some("disk full")));
        assert!(!report.healthy());
        disk_full.store(false, Ordering::SeqCst);
        eventually("running again", || status(&health).state == TaskState::Running).await;
        assert_eq!(status(&health).restarts, 1);
        assert!(health.report().healthy());
    }

    #[tokio::test]
    async fn a_graceful_task_finishes_its_work_when_stopped_and_is_not_restarted() {
        let health = Health::default();
        let (stop_tx, stop) = watch::channel(false);
        let starts = Arc::new(AtomicU32::new(0));
        let finished = Arc::new(AtomicU32::new(0));
        let (counter, done, task_stop) = (starts.clone(), finished.clone(), stop.clone());
        let task = Task::new("worker", "mailer", move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let (mut stop, done) = (task_stop.clone(), done.clone());
            async move {
                let _ = stop.wait_for(|s| *s).await;
                tokio::time::sleep(Duration::from_millis(50)).await; // the job in progress
                done.fetch_add(1, Ordering::SeqCst);
                Ok::<(), String>(())
            }
            .boxed()
        })
        .instance(0)
        .graceful();
        let handle = supervise(task, health.clone(), quick(), stop);
        tokio::time::sleep(Duration::from_millis(20)).await;
        stop_tx.send(true).unwrap();
        handle.await.unwrap();
        assert_eq!(finished.load(Ordering::SeqCst), 1, "the run finished its work");
        assert_eq!(starts.load(Ordering::SeqCst), 1, "not started again");
        assert_eq!(status(&health).state, TaskState::Stopped);
    }
}
