//! The states of the supervised tasks and of the store, as `/health` reports them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

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
    pub(super) storage: StorageProbe,
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
    pub(super) async fn storage_recovered(&self) {
        while (self.storage)().is_some() {
            tokio::time::sleep(STORAGE_RECHECK).await;
        }
    }

    pub(super) fn update(&self, task: &str, change: impl FnOnce(&mut TaskStatus)) {
        if let Some(status) = self.tasks.lock().expect("health").get_mut(task) {
            change(status);
        }
    }

    pub(super) fn register(&self, task: &str, role: &'static str, slice: &'static str) {
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
