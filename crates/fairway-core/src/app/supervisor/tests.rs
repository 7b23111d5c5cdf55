//! Restarts, backoff, health states and graceful stops of supervised tasks.

use std::sync::Arc;
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
    let task =
        Task::new("worker", "mailer", || async { panic!("the mail server vanished") as Result<(), String> }.boxed())
            .instance(1)
            .graceful();
    let _handle = supervise(task, health.clone(), quick(), stop);
    // Each restart fails at once, before `stable_after`: never reported running again, and
    // down after the policy's failures in a row (however slow the machine is).
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.last() != Some(&TaskState::Down) {
        assert!(Instant::now() < deadline, "down within 20 s: {seen:?}");
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
