//! Kills a process running an automation worker with SIGKILL while it holds a job (once
//! before the job's command took effect, once after), then runs a worker in this process
//! and checks the whole history: the killed job ran again after its lease expired, no job
//! the dead process finished ran twice, and every triggering event took effect exactly
//! once (the command's append condition makes the repeated job harmless).

mod common;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{CourseDefined, DefineCourse, StudentSubscribed};
use fairway::dcb::{EmbeddedEngine, EventStore, ReadOptions};
use fairway::runtime::Store;
use fairway::runtime::{AutomationRuntime, CommandRunner};
use fairway::{Automation, AutomationContext, AutomationError, EventSet, QueueSettings};
use futures::TryStreamExt;
use support::eventually;

/// How long a test waits for what happens in the background.
const WAIT: Duration = Duration::from_secs(60);

const COURSES_PER_ROUND: usize = 6;
const CHILD_DIR: &str = "FAIRWAY_WORKER_CRASH_CHILD_DIR";
const CHILD_HANG_AT: &str = "FAIRWAY_WORKER_CRASH_HANG_AT";
const CHILD_AFTER_EFFECT: &str = "FAIRWAY_WORKER_CRASH_AFTER_EFFECT";
const NAMESPACE: &str = "worker-crash";
/// Written by the child when it hangs: the position of the job it holds.
const HANGING: &str = "hanging";
/// Appended by the child for every job it finished: one position per line.
const FINISHED: &str = "finished";

/// What a tutor worker does besides seating the tutor.
enum Role {
    /// The child process: logs finished jobs, hangs on its `hang_at`-th job.
    Child { log_dir: PathBuf, hang_at: usize, after_effect: bool, started: AtomicUsize },
    /// This process: records the positions it handled.
    Survivor { handled: Arc<Mutex<Vec<String>>> },
}

/// Seats a tutor in every new course.
struct SeatTutor {
    role: Role,
}

impl Automation for SeatTutor {
    const NAME: &'static str = "seat-tutor";
    type Events = CourseDefined;

    async fn handle(&self, course: CourseDefined, ctx: &AutomationContext) -> Result<(), AutomationError> {
        let position = ctx.trigger().to_string();
        match &self.role {
            Role::Survivor { handled } => {
                common::seat_tutor(course, ctx).await?;
                handled.lock().unwrap().push(position);
                Ok(())
            }
            Role::Child { log_dir, hang_at, after_effect, started } => {
                let nth = started.fetch_add(1, Ordering::SeqCst) + 1;
                if nth == *hang_at {
                    if *after_effect {
                        common::seat_tutor(course.clone(), ctx).await?;
                    }
                    std::fs::write(log_dir.join(HANGING), &position).unwrap();
                    std::future::pending::<()>().await; // Killed here, holding the lease.
                }
                common::seat_tutor(course, ctx).await?;
                let mut log =
                    std::fs::OpenOptions::new().create(true).append(true).open(log_dir.join(FINISHED)).unwrap();
                std::io::Write::write_all(&mut log, format!("{position}\n").as_bytes()).unwrap();
                Ok(())
            }
        }
    }
}

fn settings() -> QueueSettings {
    QueueSettings {
        lease: Duration::from_millis(400),
        max_attempts: 5,
        retry_backoff: Duration::from_millis(5),
        poll: Duration::from_millis(5),
        workers: 1,
    }
}

fn open(dir: &Path) -> (Arc<EmbeddedEngine>, Arc<dyn Store>) {
    common::open_store(dir, NAMESPACE)
}

/// The child: runs an enqueuer and one worker until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of a_worker_killed_mid_job_leaves_it_to_run_again_after_the_lease; started by it"]
async fn worker_crash_child_process() {
    let dir = PathBuf::from(std::env::var(CHILD_DIR).expect("run by the worker crash test"));
    let hang_at = std::env::var(CHILD_HANG_AT).unwrap().parse().unwrap();
    let after_effect = std::env::var(CHILD_AFTER_EFFECT).unwrap() == "1";
    let (_engine, backend) = open(&dir.join("store"));
    let role = Role::Child { log_dir: dir, hang_at, after_effect, started: AtomicUsize::new(0) };
    let runtime = AutomationRuntime::new(SeatTutor { role }, backend, settings());
    let enqueuer = tokio::spawn(runtime.clone().run_enqueuer());
    runtime.run_worker("doomed".into()).await.expect("worker runs");
    enqueuer.abort();
}

/// Tutor seats per course, from the log.
async fn seats_per_course(backend: &Arc<dyn Store>) -> BTreeMap<String, usize> {
    let events: Vec<_> =
        backend.events().read(StudentSubscribed::query(), ReadOptions::forwards()).try_collect().await.unwrap();
    let mut seats = BTreeMap::new();
    for event in events {
        let subscribed = StudentSubscribed::decode(&event.event).expect("a subscription").unwrap();
        *seats.entry(subscribed.course_id).or_default() += 1;
    }
    seats
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_leaves_it_to_run_again_after_the_lease() {
    let exe = std::env::current_exe().unwrap();
    for (round, after_effect) in [false, true].into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, backend) = open(&dir.path().join("store"));
        let runner = CommandRunner::new(backend.events());
        let courses: Vec<String> = (0..COURSES_PER_ROUND).map(|i| format!("r{round}-c{i}")).collect();
        for course_id in &courses {
            runner.execute(&DefineCourse { course_id: course_id.clone(), capacity: 5 }).await.unwrap();
        }
        drop(runner);
        common::close_store(engine, backend);

        let hang_at = rand::random_range(1..=COURSES_PER_ROUND);
        let mut child = Command::new(&exe)
            .args(["worker_crash_child_process", "--exact", "--ignored", "--nocapture"])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_HANG_AT, hang_at.to_string())
            .env(CHILD_AFTER_EFFECT, if after_effect { "1" } else { "0" })
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let hanging = dir.path().join(HANGING);
        eventually("the child to hold a job", WAIT, async || hanging.exists()).await;
        child.kill().unwrap(); // SIGKILL while the handler holds the job and renews its lease.
        child.wait().unwrap();
        let killed_job = std::fs::read_to_string(&hanging).unwrap();
        let finished_by_child: BTreeSet<String> = lines(&dir.path().join(FINISHED)).into_iter().collect();
        assert_eq!(finished_by_child.len(), hang_at - 1, "round {round}: the child finished the jobs before");

        let (engine, backend) = open(&dir.path().join("store"));
        let handled = Arc::new(Mutex::new(Vec::new()));
        let role = Role::Survivor { handled: handled.clone() };
        let runtime = AutomationRuntime::new(SeatTutor { role }, backend.clone(), settings());
        let tasks =
            [tokio::spawn(runtime.clone().run_enqueuer()), tokio::spawn(runtime.clone().run_worker("survivor".into()))];
        eventually("every job to be done", WAIT, async || {
            handled.lock().unwrap().len() == COURSES_PER_ROUND - finished_by_child.len()
                && runtime.pending().await.unwrap() == 0
        })
        .await;
        tasks.iter().for_each(|t| t.abort());

        let handled = handled.lock().unwrap().clone();
        let handled_set: BTreeSet<String> = handled.iter().cloned().collect();
        assert_eq!(handled.len(), handled_set.len(), "round {round}: no job ran twice here: {handled:?}");
        assert!(handled_set.contains(&killed_job), "round {round}: the killed job ran again");
        assert!(handled_set.is_disjoint(&finished_by_child), "round {round}: finished jobs did not run again");
        assert!(runtime.dead_letters().await.unwrap().is_empty(), "round {round}: nothing dead-lettered");
        let expected: BTreeMap<String, usize> = courses.iter().map(|c| (c.clone(), 1)).collect();
        assert_eq!(seats_per_course(&backend).await, expected, "round {round}: one tutor seat per course");
        drop(runtime);
        common::close_store(engine, backend);
    }
}
