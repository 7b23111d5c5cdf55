//! Decision-model snapshots: a long history is folded once, later runs fold only what came
//! after the snapshot, decisions equal a full fold, and a new model version ignores old
//! snapshots.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use fairway::backend::Backend;
use fairway::dcb::{DcbStore, EmbeddedEngine, EmbeddedOptions, EventStore, Query, QueryItem, Tag};
use fairway::{Command, CommandRunner, Decision, Event, EventError, Recorded, SnapshotModel, Snapshots};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
struct Deposited {
    #[tag("account")]
    account: String,
    amount: u64,
}

/// Events folded for accounts other than `race` (the tests run in parallel).
static EVOLVED: AtomicUsize = AtomicUsize::new(0);

/// Deposits if the balance stays under a limit; the model version is a type parameter so
/// one test can run two versions of one command.
struct Deposit<const V: u32> {
    account: String,
    amount: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("the balance would exceed {0}")]
struct OverLimit(u64);

const LIMIT: u64 = 1_000_000;

impl<const V: u32> Command for Deposit<V> {
    const NAME: &'static str = "deposit";
    type State = u64;
    type Error = OverLimit;

    fn query(&self) -> Query {
        QueryItem::types([Deposited::NAME]).with_tags([Tag::new("account", &self.account).unwrap()]).into()
    }

    fn evolve(&self, balance: &mut u64, event: &Recorded) -> Result<(), EventError> {
        if self.account != "race" {
            EVOLVED.fetch_add(1, Ordering::SeqCst);
        }
        *balance += event.as_event::<Deposited>().expect("queried")?.amount;
        Ok(())
    }

    fn decide(&self, balance: &u64) -> Result<Decision, OverLimit> {
        if balance + self.amount > LIMIT {
            return Err(OverLimit(LIMIT));
        }
        Ok(Decision::event(Deposited { account: self.account.clone(), amount: self.amount }))
    }
}

impl<const V: u32> SnapshotModel for Deposit<V> {
    const MODEL_VERSION: u32 = V;
    const SNAPSHOT_EVERY: usize = 50;
}

fn evolved() -> usize {
    EVOLVED.swap(0, Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_spare_refolds_and_decide_like_a_full_fold() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(EmbeddedEngine::open(dir.path(), EmbeddedOptions::default()).unwrap());
    let store = Arc::new(DcbStore::new(engine, "snapshots").unwrap());
    let history: Vec<_> =
        (0..500).map(|_| Deposited { account: "a".into(), amount: 1_000 }.to_raw().unwrap()).collect();
    store.append(history, None).await.unwrap();
    let backend: Arc<dyn Backend> = store.clone();
    let (snapshots, runner) = (Snapshots::new(backend), CommandRunner::new(store.clone()));
    let deposit = |amount| Deposit::<1> { account: "a".into(), amount };

    runner.execute_with_snapshots(&deposit(1_000), &snapshots).await.unwrap();
    assert_eq!(evolved(), 500, "the first run folds the whole history and saves a snapshot");
    runner.execute_with_snapshots(&deposit(1_000), &snapshots).await.unwrap();
    assert_eq!(evolved(), 1, "the next run folds only the event appended after the snapshot");

    // Decisions match a full fold: the balance is 502,000; 498,000 more is the limit.
    let refused = runner.execute_with_snapshots(&deposit(498_001), &snapshots).await;
    assert!(matches!(refused, Err(fairway::CommandError::Rejected(OverLimit(_)))), "{refused:?}");
    assert!(runner.execute(&deposit(498_001)).await.is_err(), "a full fold refuses too");
    runner.execute_with_snapshots(&deposit(498_000), &snapshots).await.unwrap();
    evolved();

    // Another account's query has its own snapshot.
    let other = Deposit::<1> { account: "b".into(), amount: 5 };
    runner.execute_with_snapshots(&other, &snapshots).await.unwrap();
    assert_eq!(evolved(), 0, "account b has no history yet");

    // A new model version ignores the old snapshots and folds everything again.
    let v2 = Deposit::<2> { account: "a".into(), amount: 0 };
    runner.execute_with_snapshots(&v2, &snapshots).await.unwrap();
    assert_eq!(evolved(), 503);
    runner.execute_with_snapshots(&v2, &snapshots).await.unwrap();
    assert_eq!(evolved(), 1, "version 2 saved its own snapshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_snapshotted_commands_keep_the_invariant() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(EmbeddedEngine::open(dir.path(), EmbeddedOptions::default()).unwrap());
    let store = Arc::new(DcbStore::new(engine, "snapshots-race").unwrap());
    let backend: Arc<dyn Backend> = store.clone();
    let snapshots = Snapshots::new(backend);
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (store, snapshots) = (store.clone(), snapshots.clone());
            tokio::spawn(async move {
                let runner = CommandRunner::new(store);
                let mut accepted = 0;
                for _ in 0..10 {
                    let deposit = Deposit::<7> { account: "race".into(), amount: 4_000 };
                    if runner.execute_with_snapshots(&deposit, &snapshots).await.is_ok() {
                        accepted += 1;
                    }
                }
                accepted
            })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        accepted += task.await.unwrap();
    }
    assert_eq!(accepted, LIMIT / 4_000, "exactly as many deposits as fit under the limit");
    let mut balance = 0;
    let mut events = store.read(Deposit::<7> { account: "race".into(), amount: 0 }.query(), Default::default());
    while let Some(event) = futures::TryStreamExt::try_next(&mut events).await.unwrap() {
        balance += fairway::Recorded::new(event).as_event::<Deposited>().unwrap().unwrap().amount;
    }
    assert_eq!(balance, LIMIT);
}
