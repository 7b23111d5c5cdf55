//! The embedded engine's watches are per key: a commit wakes the watches on the keys it
//! wrote, by any kind of write, and no other; a waiter that arms, looks, then waits never
//! sleeps through a change. The engine fires a commit's watches before acknowledging it, so
//! whether a watch fired is known the moment the commit returns. (FoundationDB watches are
//! per key by nature and fire some time after the commit, so "did not fire" cannot be
//! checked there without a clock; the store's watch tests run on both engines.)

use std::sync::Arc;
use std::time::Duration;

use fairway_dcb::kv::{KvEngine, KvTransaction, Versionstamp, Watch};
use fairway_dcb::{EmbeddedEngine, EmbeddedOptions, StorageError};
use futures::FutureExt;

fn open() -> (Arc<EmbeddedEngine>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let options = EmbeddedOptions { durable: false, ..EmbeddedOptions::default() };
    (Arc::new(EmbeddedEngine::open(dir.path(), options).expect("the engine opens")), dir)
}

/// Commits one transaction made of `write`; returns its commit version.
async fn commit(engine: &EmbeddedEngine, write: impl Fn(&<EmbeddedEngine as KvEngine>::Tx) + Send + Sync) -> u64 {
    let committed = engine
        .transact(|tx| {
            write(&tx);
            async { Ok::<_, StorageError>(()) }
        })
        .await
        .expect("the commit succeeds");
    committed.versionstamp.expect("the transaction wrote").commit()
}

/// Whether `watch` has fired (without waiting).
fn fired(watch: &mut Watch) -> bool {
    match watch.now_or_never() {
        Some(result) => {
            result.expect("the watch fired without error");
            true
        }
        None => false,
    }
}

const A: &[u8] = b"w/a";
const B: &[u8] = b"w/b";

#[tokio::test]
async fn a_watch_fires_on_each_kind_of_write_to_its_key_and_on_no_other_key() {
    let (engine, _dir) = open();
    commit(&engine, |tx| tx.set(A, b"0")).await;
    type Write = Box<dyn Fn(&<EmbeddedEngine as KvEngine>::Tx) + Send + Sync>;
    let cases: Vec<(&str, Write, bool)> = vec![
        ("set B", Box::new(|tx| tx.set(B, b"1")), false),
        ("clear B", Box::new(|tx| tx.clear(B)), false),
        ("add to B", Box::new(|tx| tx.atomic_add(B, 1)), false),
        ("clear [w/b, w/c)", Box::new(|tx| tx.clear_range(B, b"w/c")), false),
        ("clear [w/, w/a)", Box::new(|tx| tx.clear_range(b"w/", A)), false),
        ("stamp B's value", Box::new(|tx| tx.set_versionstamped_value(B, vec![0; 10], 0)), false),
        ("set A", Box::new(|tx| tx.set(A, b"1")), true),
        ("clear A", Box::new(|tx| tx.clear(A)), true),
        ("add to A", Box::new(|tx| tx.atomic_add(A, 1)), true),
        ("clear [w/, w/b)", Box::new(|tx| tx.clear_range(b"w/", B)), true),
        ("clear [w/a, w/a\\0)", Box::new(|tx| tx.clear_range(A, b"w/a\0")), true),
        ("stamp A's value", Box::new(|tx| tx.set_versionstamped_value(A, vec![0; 10], 0)), true),
        (
            "set B and A",
            Box::new(|tx| {
                tx.set(B, b"2");
                tx.set(A, b"2");
            }),
            true,
        ),
    ];
    for (what, write, fires) in cases {
        let mut watch = engine.watch_any(vec![A.to_vec()]).await.unwrap();
        commit(&engine, write).await;
        assert_eq!(fired(&mut watch), fires, "a watch on {A:?} after: {what}");
    }
}

#[tokio::test]
async fn a_watch_fires_on_a_versionstamped_key_that_lands_on_it() {
    let (engine, _dir) = open();
    let last = commit(&engine, |tx| tx.set(B, b"0")).await;
    // The next commit is the engine's only one: its stamp is (last + 1, 0).
    let landing = [&b"log/"[..], &Versionstamp::new(last + 1, 0).0].concat();
    let elsewhere = [&b"log/"[..], &Versionstamp::new(last + 2, 0).0].concat();
    let mut on_landing = engine.watch_any(vec![landing.clone()]).await.unwrap();
    let mut on_elsewhere = engine.watch_any(vec![elsewhere]).await.unwrap();
    let made = commit(&engine, |tx| tx.set_versionstamped_key([&b"log/"[..], &[0; 10]].concat(), 4, b"v")).await;
    assert_eq!(made, last + 1, "no other commit came in between");
    assert!(fired(&mut on_landing), "the watch on the stamped key fired");
    assert!(!fired(&mut on_elsewhere), "a watch on another stamp's key did not");
}

#[tokio::test]
async fn a_watch_on_several_keys_fires_on_any_of_them_and_dropped_watches_do_not_pile_up() {
    let (engine, _dir) = open();
    let mut watch = engine.watch_any(vec![A.to_vec(), B.to_vec()]).await.unwrap();
    commit(&engine, |tx| tx.set(b"w/c", b"1")).await;
    assert!(!fired(&mut watch));
    commit(&engine, |tx| tx.set(B, b"1")).await;
    assert!(fired(&mut watch), "a write to its second key fires it");
    // A thousand watches armed and dropped unfired, then one commit to their key: each is
    // gone, so the commit wakes only the one still armed.
    for _ in 0..1_000 {
        drop(engine.watch_any(vec![A.to_vec()]).await.unwrap());
    }
    let mut kept = engine.watch_any(vec![A.to_vec()]).await.unwrap();
    commit(&engine, |tx| tx.set(A, b"1")).await;
    assert!(fired(&mut kept));
}

#[tokio::test]
async fn closing_the_engine_ends_armed_watches_with_closed() {
    let (engine, _dir) = open();
    let watch = engine.watch_any(vec![A.to_vec()]).await.unwrap();
    engine.close();
    let ended = tokio::time::timeout(Duration::from_secs(30), watch).await.expect("the watch ended");
    assert!(matches!(ended, Err(StorageError::Closed)), "{ended:?}");
    assert!(matches!(engine.watch_any(vec![A.to_vec()]).await, Err(StorageError::Closed)));
}

/// Counts up at key A, 2,000 times, one commit each, while other writers hammer keys
/// beside it; four waiters each arm a watch on A, read it, and wait on the watch until A
/// holds the last count. None of them sleeps through a change: each reaches the last count
/// (a missed wake-up would leave it waiting, as nothing writes A after that), and no waiter
/// is woken by the commits to other keys more often than A changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_that_arm_then_look_see_every_change_racing_the_writers() {
    const COUNTS: u64 = 2_000;
    let (engine, _dir) = open();
    commit(&engine, |tx| tx.set(A, &0u64.to_be_bytes())).await;
    let read_a = |engine: Arc<EmbeddedEngine>| async move {
        let value = engine.transact(|tx| async move { tx.get(A, true).await }).await.unwrap().value.unwrap();
        u64::from_be_bytes(value.try_into().unwrap())
    };
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let engine = engine.clone();
            tokio::spawn(async move {
                let mut wake_ups = 0u64;
                loop {
                    let watch = engine.watch_any(vec![A.to_vec()]).await.unwrap();
                    if read_a(engine.clone()).await == COUNTS {
                        return wake_ups;
                    }
                    watch.await.unwrap();
                    wake_ups += 1;
                }
            })
        })
        .collect();
    let noise: Vec<_> = (0..2)
        .map(|n| {
            let engine = engine.clone();
            tokio::spawn(async move {
                for i in 0..COUNTS {
                    let key = format!("w/noise/{n}/{}", i % 7).into_bytes();
                    commit(&engine, move |tx| tx.set(&key, b"x")).await;
                }
            })
        })
        .collect();
    for count in 1..=COUNTS {
        commit(&engine, |tx| tx.set(A, &count.to_be_bytes())).await;
    }
    for noise in noise {
        noise.await.unwrap();
    }
    for waiter in waiters {
        let wake_ups =
            tokio::time::timeout(Duration::from_secs(120), waiter).await.expect("every waiter saw the last count");
        let wake_ups = wake_ups.unwrap();
        assert!(wake_ups <= COUNTS, "{wake_ups} wake-ups for {COUNTS} changes of A");
    }
    assert_eq!(read_a(engine.clone()).await, COUNTS);
}
