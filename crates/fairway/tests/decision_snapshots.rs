//! Decision-model snapshots: a long history is folded once, later runs fold only what came
//! after the snapshot, decisions equal a full fold, and a new model version ignores old
//! snapshots.

mod support;

use std::collections::BTreeMap;
use std::sync::Mutex;

use fairway::dcb::{EventStore, Query, Tag};
use fairway::runtime::{CommandRunner, Snapshots};
use fairway::{Command, Decision, Event, EventSet, SnapshotModel, command};
use serde::{Deserialize, Serialize};
use support::open_store;

#[derive(Serialize, Deserialize, Event)]
struct Deposited {
    #[tag("account")]
    account: String,
    amount: u64,
}

/// Events folded per account (the tests run in parallel, each on its own accounts).
static EVOLVED: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

fn count_fold(account: &str) {
    *EVOLVED.lock().unwrap().entry(account.to_owned()).or_default() += 1;
}

/// Events folded for `account` since the last call.
fn evolved(account: &str) -> usize {
    EVOLVED.lock().unwrap().remove(account).unwrap_or(0)
}

fn account(account: &str) -> Query {
    Deposited::tagged([Tag::new("account", account).unwrap()]).into()
}

/// Deposits if the balance stays under a limit; the model version is a type parameter so
/// one test can run two versions of one command.
#[derive(Deserialize)]
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
    type Events = Deposited;
    type State = u64;
    type Error = OverLimit;

    fn query(&self) -> Query {
        account(&self.account)
    }

    fn evolve(&self, balance: &mut u64, deposited: Deposited) {
        count_fold(&self.account);
        *balance += deposited.amount;
    }

    fn decide(&self, balance: &u64) -> Result<Decision, OverLimit> {
        fairway::ensure!(balance + self.amount <= LIMIT, OverLimit(LIMIT));
        Ok(Decision::event(Deposited { account: self.account.clone(), amount: self.amount }))
    }
}

impl<const V: u32> SnapshotModel for Deposit<V> {
    const MODEL_VERSION: u32 = V;
    const SNAPSHOT_EVERY: usize = 50;
}

/// The same deposit registered with `#[command(snapshots)]`: it folds from snapshots
/// through a plain `execute` whenever its runner has them.
#[derive(Deserialize)]
struct RegisteredDeposit(Deposit<1>);

#[command(snapshots)]
impl Command for RegisteredDeposit {
    const NAME: &'static str = "registered-deposit";
    type Events = Deposited;
    type State = u64;
    type Error = OverLimit;

    fn query(&self) -> Query {
        self.0.query()
    }

    fn evolve(&self, balance: &mut u64, deposited: Deposited) {
        self.0.evolve(balance, deposited);
    }

    fn decide(&self, balance: &u64) -> Result<Decision, OverLimit> {
        self.0.decide(balance)
    }
}

impl SnapshotModel for RegisteredDeposit {
    const MODEL_VERSION: u32 = 1;
    const SNAPSHOT_EVERY: usize = 50;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_spare_refolds_and_decide_like_a_full_fold() {
    let test = open_store(0.0);
    let store = test.store.events();
    let history: Vec<_> =
        (0..500).map(|_| Deposited { account: "a".into(), amount: 1_000 }.to_raw().unwrap()).collect();
    store.append(history, None).await.unwrap();
    let backend = test.store.clone();
    let (snapshots, runner) = (Snapshots::new(backend), CommandRunner::new(store.clone()));
    let deposit = |amount| Deposit::<1> { account: "a".into(), amount };

    runner.execute_with_snapshots(&deposit(1_000), &snapshots).await.unwrap();
    assert_eq!(evolved("a"), 500, "the first run folds the whole history and saves a snapshot");
    runner.execute_with_snapshots(&deposit(1_000), &snapshots).await.unwrap();
    assert_eq!(evolved("a"), 1, "the next run folds only the event appended after the snapshot");

    // Decisions match a full fold: the balance is 502,000; 498,000 more is the limit.
    let refused = runner.execute_with_snapshots(&deposit(498_001), &snapshots).await;
    assert!(matches!(refused, Err(fairway::CommandError::Rejected(OverLimit(_)))), "{refused:?}");
    assert!(runner.execute(&deposit(498_001)).await.is_err(), "a full fold refuses too");
    runner.execute_with_snapshots(&deposit(498_000), &snapshots).await.unwrap();
    evolved("a");

    // Another account's query has its own snapshot.
    let other = Deposit::<1> { account: "b".into(), amount: 5 };
    runner.execute_with_snapshots(&other, &snapshots).await.unwrap();
    assert_eq!((evolved("a"), evolved("b")), (0, 0), "account b has no history yet");

    // A new model version ignores the old snapshots and folds everything again.
    let v2 = Deposit::<2> { account: "a".into(), amount: 0 };
    runner.execute_with_snapshots(&v2, &snapshots).await.unwrap();
    assert_eq!(evolved("a"), 503);
    runner.execute_with_snapshots(&v2, &snapshots).await.unwrap();
    assert_eq!(evolved("a"), 1, "version 2 saved its own snapshot");
    test.clear().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_snapshotted_commands_keep_the_invariant() {
    let test = open_store(0.0);
    let store = test.store.events();
    let backend = test.store.clone();
    let snapshots = Snapshots::new(backend);
    // Each racer deposits until it is refused: a command that gave up on a boundary that
    // kept changing (32 racers on one account) tries again.
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (store, snapshots) = (store.clone(), snapshots.clone());
            tokio::spawn(async move {
                let runner = CommandRunner::new(store);
                let (mut accepted, mut gave_up) = (0, 0);
                loop {
                    assert!(accepted + gave_up < 1_000, "a racer is refused before 1,000 tries");
                    let deposit = Deposit::<7> { account: "race".into(), amount: 4_000 };
                    match runner.execute_with_snapshots(&deposit, &snapshots).await {
                        Ok(_) => accepted += 1,
                        Err(fairway::CommandError::Rejected(OverLimit(_))) => return (accepted, gave_up),
                        Err(fairway::CommandError::Conflict { .. }) => gave_up += 1,
                        Err(other) => panic!("unexpected outcome: {other}"),
                    }
                }
            })
        })
        .collect();
    let (mut accepted, mut gave_up) = (0, 0);
    for task in tasks {
        let (ok, conflicts) = task.await.unwrap();
        (accepted, gave_up) = (accepted + ok, gave_up + conflicts);
    }
    println!("{accepted} deposits accepted; {gave_up} gave up on conflicts and were tried again");
    assert_eq!(accepted, LIMIT / 4_000, "exactly as many deposits as fit under the limit");
    let mut balance = 0;
    let mut events = store.read(Deposit::<7> { account: "race".into(), amount: 0 }.query(), Default::default());
    while let Some(event) = futures::TryStreamExt::try_next(&mut events).await.unwrap() {
        balance += Deposited::decode(&event.event).expect("a deposit").unwrap().amount;
    }
    assert_eq!(balance, LIMIT);
    test.clear().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_registered_with_snapshots_folds_from_them_wherever_its_runner_has_them() {
    let test = open_store(0.0);
    let store = test.store.events();
    let history: Vec<_> =
        (0..200).map(|_| Deposited { account: "r".into(), amount: 1_000 }.to_raw().unwrap()).collect();
    store.append(history, None).await.unwrap();
    let backend = test.store.clone();
    let deposit = |amount| RegisteredDeposit(Deposit { account: "r".into(), amount });

    // Without snapshots, the runner folds the whole history every time.
    let plain = CommandRunner::new(store.clone());
    plain.execute(&deposit(1_000)).await.unwrap();
    plain.execute(&deposit(1_000)).await.unwrap();
    assert_eq!(evolved("r"), 200 + 201, "no snapshots: two full folds");

    // With them, a plain `execute` folds from the latest snapshot.
    let runner = CommandRunner::new(store.clone()).with_snapshots(Snapshots::new(backend));
    runner.execute(&deposit(1_000)).await.unwrap();
    assert_eq!(evolved("r"), 202, "the first run folds the whole history and saves a snapshot");
    runner.execute(&deposit(1_000)).await.unwrap();
    assert_eq!(evolved("r"), 1, "the next run folds only the event appended after the snapshot");

    // Decisions match a full fold: the balance is 204,000; 796,000 more is the limit.
    let refused = runner.execute(&deposit(796_001)).await;
    assert!(matches!(refused, Err(fairway::CommandError::Rejected(OverLimit(_)))), "{refused:?}");
    assert!(plain.execute(&deposit(796_001)).await.is_err(), "a full fold refuses too");
    runner.execute(&deposit(796_000)).await.unwrap();
    test.clear().await;
}
