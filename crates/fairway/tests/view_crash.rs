//! Kills a process running a projector with SIGKILL at random moments of its catch-up, then
//! checks that the view's data and checkpoint moved together: every event up to the
//! checkpoint was applied exactly once (counted documents equal the events the view's
//! query matches up to the checkpoint), none after it.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use fairway::dcb::{EmbeddedEngine, EventStore, Position, ReadOptions};
use fairway::runtime::Store;
use fairway::runtime::ViewRuntime;
use fairway::{Event, View, ViewError, ViewTx};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

const ROUNDS: usize = 8;
const EVENTS_PER_ROUND: usize = 6_000;
const CHILD_DIR: &str = "FAIRWAY_VIEW_CRASH_CHILD_DIR";
const NAMESPACE: &str = "view-crash";

#[derive(Serialize, Deserialize, Event)]
struct Ticked {
    #[tag("bucket")]
    bucket: u32,
}

#[derive(Serialize, Deserialize, Event)]
struct Ignored {
    n: u32,
}

/// Counts ticks per bucket: a tick applied twice would show as an extra count.
#[derive(Default)]
struct TickCounts;

impl View for TickCounts {
    const NAME: &'static str = "tick-counts";
    const VERSION: u32 = 1;
    type Events = Ticked;

    async fn apply(&self, tick: Ticked, tx: &ViewTx) -> Result<(), ViewError> {
        let key = format!("bucket-{:02}", tick.bucket);
        let count: u64 = tx.get(&key).await?.unwrap_or(0);
        tx.put(&key, &(count + 1))
    }
}

fn open(dir: &std::path::Path) -> (Arc<EmbeddedEngine>, Arc<dyn Store>) {
    common::open_store(dir, NAMESPACE)
}

/// The child: runs the projector until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of a_projector_killed_mid_batch_applies_every_event_exactly_once; started by it"]
async fn view_crash_child_process() {
    let dir = std::env::var(CHILD_DIR).expect("run by the view crash test");
    let (_engine, backend) = open(std::path::Path::new(&dir));
    // Every round's child is the same instance: it takes back the lease its killed
    // predecessor left, instead of waiting for it to expire.
    ViewRuntime::new(TickCounts, backend).run("view-crash-child").await.expect("projector runs");
}

/// Appends one round of events: ticks in 10 buckets, with events the view ignores between.
async fn append_round(backend: &Arc<dyn Store>, round: usize) {
    let events = backend.events();
    for chunk in 0..EVENTS_PER_ROUND / 100 {
        let batch = (0..100)
            .map(|i| {
                let n = (round * EVENTS_PER_ROUND + chunk * 100 + i) as u32;
                if n.is_multiple_of(7) { Ignored { n }.to_raw() } else { Ticked { bucket: n % 10 }.to_raw() }.unwrap()
            })
            .collect();
        events.append(batch, None).await.expect("append");
    }
}

/// Ticks the log holds at or before `checkpoint`.
async fn ticks_up_to(backend: &Arc<dyn Store>, checkpoint: Option<Position>) -> u64 {
    let Some(checkpoint) = checkpoint else { return 0 };
    let ticks: Vec<_> = backend
        .events()
        .read(TickCounts.query(), ReadOptions::forwards())
        .try_filter(|e| futures::future::ready(e.position <= checkpoint))
        .try_collect()
        .await
        .unwrap();
    ticks.len() as u64
}

async fn counted(view: &ViewRuntime<TickCounts>) -> u64 {
    let counts = view.read(|tx| async move { tx.range::<u64>("bucket-").await }).await.expect("the view reads");
    counts.iter().map(|(_, n)| n).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_killed_mid_batch_applies_every_event_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut kills_mid_catch_up = 0;
    // Kill times are random below a bound that halves whenever a kill came too late.
    let mut max_wait_ms = 600;
    for round in 0..ROUNDS {
        let (engine, backend) = open(dir.path());
        append_round(&backend, round).await;
        common::close_store(engine, backend);

        let mut child = Command::new(&exe)
            .args(["view_crash_child_process", "--exact", "--ignored", "--nocapture"])
            .env(CHILD_DIR, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let wait = Duration::from_millis(rand::random_range(20..max_wait_ms));
        tokio::time::sleep(wait).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let (engine, backend) = open(dir.path());
        let view = ViewRuntime::new(TickCounts, backend.clone());
        let progress = view.progress().await.unwrap();
        let expected = ticks_up_to(&backend, progress.checkpoint).await;
        assert_eq!(counted(&view).await, expected, "round {round}: data and checkpoint moved together");
        assert_eq!(progress.processed, expected, "round {round}: the applied count matches the checkpoint");
        let all_ticks = ticks_up_to(&backend, backend.events().head().await.unwrap()).await;
        if expected < all_ticks {
            kills_mid_catch_up += 1;
        } else {
            max_wait_ms = (max_wait_ms / 2).max(60);
        }
        drop(view);
        common::close_store(engine, backend);
    }

    let (engine, backend) = open(dir.path());
    let view = ViewRuntime::new(TickCounts, backend.clone());
    view.catch_up().await.unwrap();
    let all_ticks = ticks_up_to(&backend, backend.events().head().await.unwrap()).await;
    assert_eq!(counted(&view).await, all_ticks, "after resuming, every tick counted once");
    assert_eq!(all_ticks as usize, (0..ROUNDS * EVENTS_PER_ROUND).filter(|n| !n.is_multiple_of(7)).count());
    engine.close();
    eprintln!("{kills_mid_catch_up} of {ROUNDS} kills landed before the projector caught up");
    assert!(kills_mid_catch_up > 0, "at least one kill must interrupt a catch-up to test anything");
}
