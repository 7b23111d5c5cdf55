//! Automations: every triggering event handled, failures retried then dead-lettered,
//! replay, purge, and a worker that dies mid-job.

mod common;
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use common::{CourseDefined, DefineCourse, StudentSubscribed};
use fairway::dcb::{EventStore, ReadOptions};
use fairway::runtime::Store;
use fairway::runtime::{AutomationRuntime, CommandRunner};
use fairway::{Automation, AutomationContext, AutomationError, EventSet, QueueSettings};
use futures::TryStreamExt;
use support::{eventually, open_store};

/// How long a test waits for what happens in the background.
const WAIT: Duration = Duration::from_secs(20);

/// Subscribes a tutor to every new course.
#[derive(Default)]
struct SeatTutor {
    fail: Arc<AtomicBool>,
    hang_first: Arc<AtomicBool>,
    calls: Arc<AtomicU32>,
}

impl Automation for SeatTutor {
    const NAME: &'static str = "seat-tutor";
    type Events = CourseDefined;

    async fn handle(&self, course: CourseDefined, ctx: &AutomationContext) -> Result<(), AutomationError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if call == 0 && self.hang_first.load(Ordering::SeqCst) {
            std::future::pending::<()>().await; // The worker dies here.
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(AutomationError::msg("tutor service unavailable"));
        }
        common::seat_tutor(course, ctx).await
    }
}

fn fast() -> QueueSettings {
    QueueSettings {
        lease: Duration::from_millis(300),
        max_attempts: 3,
        retry_backoff: Duration::from_millis(5),
        poll: Duration::from_millis(5),
        workers: 1,
    }
}

async fn tutor_seats(backend: &Arc<dyn Store>) -> usize {
    let events: Vec<_> =
        backend.events().read(StudentSubscribed::query(), ReadOptions::forwards()).try_collect().await.unwrap();
    events.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_triggering_event_takes_effect_with_two_enqueuers_and_two_workers() {
    let test = open_store(0.0);
    let backend = test.store.clone();
    let runtime = AutomationRuntime::new(SeatTutor::default(), backend.clone(), fast());
    let tasks = [
        tokio::spawn(runtime.clone().run_enqueuer()),
        tokio::spawn(runtime.clone().run_enqueuer()),
        tokio::spawn(runtime.clone().run_worker("w1".into())),
        tokio::spawn(runtime.clone().run_worker("w2".into())),
    ];
    let runner = CommandRunner::new(backend.events());
    for i in 0..20 {
        runner.execute(&DefineCourse { course_id: format!("c{i}"), capacity: 5 }).await.unwrap();
    }
    eventually("20 tutor seats", WAIT, async || tutor_seats(&backend).await == 20).await;
    eventually("an empty queue", WAIT, async || runtime.pending().await.unwrap() == 0).await;
    assert!(runtime.dead_letters().await.unwrap().is_empty());
    tasks.iter().for_each(|t| t.abort());
    test.clear().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_jobs_are_retried_then_dead_lettered_and_can_be_replayed_or_purged() {
    let test = open_store(0.0);
    let backend = test.store.clone();
    let automation = SeatTutor::default();
    let (fail, calls) = (automation.fail.clone(), automation.calls.clone());
    fail.store(true, Ordering::SeqCst);
    let runtime = AutomationRuntime::new(automation, backend.clone(), fast());
    let tasks = [tokio::spawn(runtime.clone().run_enqueuer()), tokio::spawn(runtime.clone().run_worker("w".into()))];
    let runner = CommandRunner::new(backend.events());
    let defined = runner.execute(&DefineCourse { course_id: "c1".into(), capacity: 5 }).await.unwrap();
    runner.execute(&DefineCourse { course_id: "c2".into(), capacity: 5 }).await.unwrap();

    eventually("two dead letters", WAIT, async || runtime.dead_letters().await.unwrap().len() == 2).await;
    let dead = runtime.dead_letters().await.unwrap();
    assert_eq!(dead[0].position, defined.last_position().unwrap());
    assert_eq!((dead[0].attempts, dead[0].error.as_str()), (3, "tutor service unavailable"));
    assert_eq!(calls.load(Ordering::SeqCst), 6, "3 attempts per job");
    assert_eq!(tutor_seats(&backend).await, 0);

    fail.store(false, Ordering::SeqCst);
    assert!(runtime.replay(defined.last_position().unwrap()).await.unwrap());
    eventually("the replayed job to run", WAIT, async || tutor_seats(&backend).await == 1).await;
    assert_eq!(runtime.dead_letters().await.unwrap().len(), 1, "the other one stays dead");
    assert_eq!(runtime.purge().await.unwrap(), 1);
    assert!(runtime.dead_letters().await.unwrap().is_empty());
    tasks.iter().for_each(|t| t.abort());
    test.clear().await;
}

/// Replaying and purging dead letters answer what they did when their commit landed but
/// was reported of unknown result: the transaction runs again and finds the letters gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_and_purge_answer_what_they_did_when_their_commit_result_was_unknown() {
    let test = open_store(0.0);
    let backend = test.store.clone();
    let automation = SeatTutor::default();
    automation.fail.store(true, Ordering::SeqCst);
    let runtime = AutomationRuntime::new(automation, backend.clone(), fast());
    let tasks = [tokio::spawn(runtime.clone().run_enqueuer()), tokio::spawn(runtime.clone().run_worker("w".into()))];
    let runner = CommandRunner::new(backend.events());
    let defined = runner.execute(&DefineCourse { course_id: "c1".into(), capacity: 5 }).await.unwrap();
    runner.execute(&DefineCourse { course_id: "c2".into(), capacity: 5 }).await.unwrap();
    eventually("two dead letters", WAIT, async || runtime.dead_letters().await.unwrap().len() == 2).await;
    for task in tasks {
        task.abort();
        let _ = task.await;
    }

    test.fail_next_commit_after_landing();
    assert!(runtime.replay(defined.last_position().unwrap()).await.unwrap(), "the letter was replayed");
    assert_eq!(runtime.pending().await.unwrap(), 1, "its job waits in the queue");
    test.fail_next_commit_after_landing();
    assert_eq!(runtime.purge().await.unwrap(), 1, "the other letter was purged");
    assert!(runtime.dead_letters().await.unwrap().is_empty());
    test.clear().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_a_dead_worker_runs_again_after_its_lease() {
    let test = open_store(0.0);
    let backend = test.store.clone();
    let automation = SeatTutor::default();
    let (hang, calls) = (automation.hang_first.clone(), automation.calls.clone());
    hang.store(true, Ordering::SeqCst);
    let runtime = AutomationRuntime::new(automation, backend.clone(), fast());
    let enqueuer = tokio::spawn(runtime.clone().run_enqueuer());
    let doomed = tokio::spawn(runtime.clone().run_worker("doomed".into()));
    CommandRunner::new(backend.events()).execute(&DefineCourse { course_id: "c1".into(), capacity: 5 }).await.unwrap();
    eventually("the doomed worker to start the job", WAIT, async || calls.load(Ordering::SeqCst) == 1).await;
    doomed.abort(); // Dies mid-job, holding the lease.
    let _ = doomed.await;
    let survivor = tokio::spawn(runtime.clone().run_worker("survivor".into()));
    eventually("the job to run again", WAIT, async || tutor_seats(&backend).await == 1).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2, "run again exactly once after the lease expired");
    eventually("an empty queue", WAIT, async || runtime.pending().await.unwrap() == 0).await;
    enqueuer.abort();
    survivor.abort();
    test.clear().await;
}
