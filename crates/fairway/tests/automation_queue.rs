//! The automation queue under pressure: due jobs behind many leased and backing-off ones
//! are claimed by racing workers exactly once, and idle workers wake when a job is enqueued
//! (or becomes due) instead of waiting for their poll.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fairway::dcb::Position;
use fairway::runtime::AutomationRuntime;
use fairway::runtime::Store;
use fairway::{Automation, AutomationContext, AutomationError, Event, QueueSettings};
use serde::{Deserialize, Serialize};
use support::{eventually, open_store};
use tokio::sync::watch;

/// The triggering event; its kind (also a tag) tells the handler what to do.
#[derive(Serialize, Deserialize, Event)]
struct Triggered {
    #[tag("kind")]
    kind: String,
}

/// Hangs forever on events tagged `kind:stuck`, fails on `kind:flaky` (and on
/// `kind:fail-once` the first time), records every other event it handles.
#[derive(Default, Clone)]
struct Recorder {
    handled: Arc<Mutex<BTreeMap<Position, usize>>>,
    stuck: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
}

impl Recorder {
    fn handled(&self) -> BTreeMap<Position, usize> {
        self.handled.lock().unwrap().clone()
    }
}

impl Automation for Recorder {
    const NAME: &'static str = "recorder";
    type Events = Triggered;

    async fn handle(&self, event: Triggered, ctx: &AutomationContext) -> Result<(), AutomationError> {
        match event.kind.as_str() {
            "stuck" => {
                self.stuck.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>().await;
            }
            "flaky" => {
                self.failed.fetch_add(1, Ordering::SeqCst);
                return Err(AutomationError::msg("flaky service"));
            }
            "fail-once" if self.failed.fetch_add(1, Ordering::SeqCst) == 0 => {
                return Err(AutomationError::msg("first attempt fails"));
            }
            _ => {}
        }
        *self.handled.lock().unwrap().entry(ctx.trigger()).or_default() += 1;
        Ok(())
    }
}

/// Appends one event per kind, in order; returns their positions.
async fn append(backend: &Arc<dyn Store>, kinds: &[&str]) -> Vec<Position> {
    let events = kinds.iter().map(|kind| Triggered { kind: (*kind).to_owned() }.to_raw().unwrap()).collect();
    let appended = backend.events().append(events, None).await.unwrap();
    appended.positions
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_workers_claim_every_due_job_behind_100_leased_and_backing_off_jobs_exactly_once() {
    let test = open_store(0.0);
    let backend = test.store.clone();
    let recorder = Recorder::default();
    // Leases and backoffs of an hour: those jobs stay out of reach for the whole test.
    let settings = QueueSettings {
        lease: HOUR,
        max_attempts: 5,
        retry_backoff: HOUR,
        poll: Duration::from_millis(20),
        workers: 1,
    };
    let runtime = AutomationRuntime::new(recorder.clone(), backend.clone(), settings);
    let (leased, backing_off, due) = (70, 30, 400);
    let enqueuer = tokio::spawn(runtime.clone().run_enqueuer());
    // Claims pick among the first due jobs, so each kind is appended once the jobs before
    // it are out of reach.
    append(&backend, &vec!["stuck"; leased]).await;
    eventually("the stuck jobs enqueued", Duration::from_secs(20), async || runtime.pending().await.unwrap() == leased)
        .await;

    // The first 70 jobs: claimed by workers that hang in the handler, holding their lease.
    let mut hanging = Vec::new();
    for n in 0..leased {
        let (runtime, worker) = (runtime.clone(), format!("stuck-{n}"));
        hanging.push(tokio::spawn(async move { runtime.work_once(&worker).await }));
        eventually("the stuck job to start", Duration::from_secs(20), async || {
            recorder.stuck.load(Ordering::SeqCst) == n + 1
        })
        .await;
    }
    // The next 30: claimed, failed, backing off for an hour.
    append(&backend, &vec!["flaky"; backing_off]).await;
    let enqueued = leased + backing_off;
    eventually("the flaky jobs enqueued", Duration::from_secs(20), async || {
        runtime.pending().await.unwrap() == enqueued
    })
    .await;
    for _ in 0..backing_off {
        assert!(runtime.work_once("flaky-worker").await.unwrap(), "a flaky job is claimed");
    }
    assert_eq!(recorder.failed.load(Ordering::SeqCst), backing_off);
    assert!(recorder.handled().is_empty());
    let expected = append(&backend, &vec!["normal"; due]).await;
    eventually("every job enqueued", Duration::from_secs(20), async || {
        runtime.pending().await.unwrap() == enqueued + due
    })
    .await;
    enqueuer.abort();

    // 8 racing workers drain the 400 due jobs behind those 100.
    let (stop_tx, stop) = watch::channel(false);
    let workers: Vec<_> =
        (0..8).map(|n| tokio::spawn(runtime.clone().run_worker_until(format!("racer-{n}"), stop.clone()))).collect();
    eventually("every due job handled", Duration::from_secs(60), async || recorder.handled().len() == due).await;
    stop_tx.send(true).unwrap();
    for worker in workers {
        worker.await.unwrap().unwrap();
    }

    let handled = recorder.handled();
    assert_eq!(handled.keys().copied().collect::<Vec<_>>(), expected, "exactly the due jobs");
    let twice: Vec<_> = handled.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "jobs handled more than once: {twice:?}");
    assert_eq!(recorder.stuck.load(Ordering::SeqCst), leased, "no leased job was taken over");
    assert_eq!(recorder.failed.load(Ordering::SeqCst), backing_off, "no backing-off job ran early");
    assert_eq!(runtime.pending().await.unwrap(), leased + backing_off);
    assert_eq!(runtime.leased().await.unwrap(), leased, "only the hanging jobs hold a lease, not the backing-off ones");
    hanging.iter().for_each(|h| h.abort());
    test.clear().await;
}

/// A worker whose poll is an hour handles a job enqueued while it sleeps: the enqueue
/// woke it (without the wake-up it would look again only after the hour).
async fn an_idle_worker_is_woken_by_an_enqueue(separate_enqueuer: bool) {
    let test = open_store(0.0);
    let backend = test.store.clone();
    let recorder = Recorder::default();
    let settings = QueueSettings { lease: HOUR, max_attempts: 5, retry_backoff: HOUR, poll: HOUR, workers: 1 };
    let runtime = AutomationRuntime::new(recorder.clone(), backend.clone(), settings);
    // A separate runtime shares no in-process notification with the worker: as an enqueuer
    // in another process, it can wake it only through the store's watch.
    let enqueuing = if separate_enqueuer {
        AutomationRuntime::new(recorder.clone(), backend.clone(), settings)
    } else {
        runtime.clone()
    };
    let enqueuer = tokio::spawn(enqueuing.run_enqueuer());
    let (_stop_tx, stop) = watch::channel(false);
    let worker = tokio::spawn(runtime.clone().run_worker_until("sleeper".into(), stop));

    let first = append(&backend, &["normal"]).await[0];
    eventually("the first job", Duration::from_secs(20), async || recorder.handled().contains_key(&first)).await;
    // The worker found the queue empty after that job and went to sleep for its poll hour.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let appended = tokio::time::Instant::now();
    let second = append(&backend, &["normal"]).await[0];
    eventually("the job enqueued while the worker slept", Duration::from_secs(20), async || {
        recorder.handled().contains_key(&second)
    })
    .await;
    let through = if separate_enqueuer { "the store's watch" } else { "the in-process notification" };
    println!("woken through {through}: job handled {:?} after its append (poll: 1 h)", appended.elapsed());
    worker.abort();
    enqueuer.abort();
    test.clear().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_is_woken_by_an_enqueue_in_its_process() {
    an_idle_worker_is_woken_by_an_enqueue(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_is_woken_by_an_enqueue_elsewhere_through_the_store() {
    an_idle_worker_is_woken_by_an_enqueue(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_wakes_when_a_failed_job_becomes_due_and_when_a_dead_letter_is_replayed() {
    let test = open_store(0.0);
    let backend = test.store.clone();
    let recorder = Recorder::default();
    let settings = QueueSettings {
        lease: HOUR,
        max_attempts: 1,
        retry_backoff: Duration::from_millis(200),
        poll: HOUR,
        workers: 1,
    };
    let runtime = AutomationRuntime::new(recorder.clone(), backend.clone(), settings);
    let enqueuer = tokio::spawn(runtime.clone().run_enqueuer());
    let (_stop_tx, stop) = watch::channel(false);
    let worker = tokio::spawn(runtime.clone().run_worker_until("sleeper".into(), stop));

    // max_attempts 1: the failing job goes straight to the dead letters.
    let failing = append(&backend, &["fail-once"]).await[0];
    eventually("a dead letter", Duration::from_secs(20), async || runtime.dead_letters().await.unwrap().len() == 1)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(runtime.replay(failing).await.unwrap());
    eventually("the replayed job", Duration::from_secs(20), async || recorder.handled().contains_key(&failing)).await;
    worker.abort();
    enqueuer.abort();

    // Retried after its 200 ms backoff although the poll is an hour.
    let settings = QueueSettings { max_attempts: 3, ..settings };
    let recorder = Recorder::default();
    let runtime = AutomationRuntime::new(recorder.clone(), backend.clone(), settings);
    let (_stop_tx, stop) = watch::channel(false);
    let worker = tokio::spawn(runtime.clone().run_worker_until("sleeper-2".into(), stop));
    let enqueuer = tokio::spawn(runtime.clone().run_enqueuer());
    let retried = append(&backend, &["fail-once"]).await[0];
    eventually("the retried job", Duration::from_secs(20), async || recorder.handled().contains_key(&retried)).await;
    assert_eq!(recorder.failed.load(Ordering::SeqCst), 2, "failed once, then succeeded");
    worker.abort();
    enqueuer.abort();
    test.clear().await;
}
