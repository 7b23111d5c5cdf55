//! The storage port's semantics on the embedded engine: own writes, atomic adds,
//! versionstamps, phantom conflicts, bounded retries, closing and reopening.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use fairway_dcb::conformance::{event, read_all};
use fairway_dcb::kv::{KvEngine, KvTransaction, RangeScan, RetryPolicy};
use fairway_dcb::{DcbStore, EmbeddedEngine, EmbeddedOptions, Error, EventStore, Query, ReadOptions, StorageError};

fn engine(dir: &std::path::Path, options: EmbeddedOptions) -> Arc<EmbeddedEngine> {
    Arc::new(EmbeddedEngine::open(dir, options).expect("engine opens"))
}

fn scan(begin: &[u8], end: &[u8], snapshot: bool) -> RangeScan {
    RangeScan { begin: begin.to_vec(), end: end.to_vec(), limit: 0, reverse: false, snapshot }
}

#[tokio::test]
async fn a_transaction_sees_its_own_writes_and_clears() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), EmbeddedOptions::default());
    engine
        .transact(|tx| async move {
            tx.set(b"k1", b"a");
            tx.set(b"k2", b"b");
            tx.set(b"k3", b"c");
            Ok::<_, StorageError>(())
        })
        .await
        .unwrap();
    let seen = engine
        .transact(|tx| async move {
            tx.clear_range(b"k1", b"k3");
            tx.set(b"k2", b"again");
            tx.set(b"k4", b"d");
            let own = tx.get(b"k2", false).await?;
            let gone = tx.get(b"k1", false).await?;
            let pairs = tx.get_range(&scan(b"k", b"l", false)).await?;
            Ok::<_, StorageError>((own, gone, pairs.into_iter().map(|p| p.key).collect::<Vec<_>>()))
        })
        .await
        .unwrap()
        .value;
    assert_eq!(seen.0.as_deref(), Some(&b"again"[..]));
    assert_eq!(seen.1, None);
    assert_eq!(seen.2, vec![b"k2".to_vec(), b"k3".to_vec(), b"k4".to_vec()]);
}

#[tokio::test]
async fn atomic_adds_and_versionstamps_are_applied_at_commit() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), EmbeddedOptions::default());
    let mut stamps = Vec::new();
    for _ in 0..3 {
        let committed = engine
            .transact(|tx| async move {
                tx.atomic_add(b"counter", 5);
                tx.set_versionstamped_key(b"log/\0\0\0\0\0\0\0\0\0\0".to_vec(), 4, b"v");
                tx.set_versionstamped_value(b"last", vec![0; 10], 0);
                Ok::<_, StorageError>(())
            })
            .await
            .unwrap();
        stamps.push(committed.versionstamp.expect("stamped writes return the stamp"));
    }
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "stamps increase in commit order");
    let (counter, keys, last) = engine
        .transact(|tx| async move {
            let counter = tx.get(b"counter", true).await?;
            let keys = tx.get_range(&scan(b"log/", b"log0", true)).await?;
            let last = tx.get(b"last", true).await?;
            Ok::<_, StorageError>((counter, keys, last))
        })
        .await
        .unwrap()
        .value;
    assert_eq!(counter, Some(15i64.to_le_bytes().to_vec()));
    let stamped: Vec<Vec<u8>> = stamps.iter().map(|s| [&b"log/"[..], &s.0[..]].concat()).collect();
    assert_eq!(keys.into_iter().map(|k| k.key).collect::<Vec<_>>(), stamped);
    assert_eq!(last, Some(stamps[2].0.to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_into_a_scanned_range_conflicts_and_an_unrelated_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), EmbeddedOptions::default());
    for (watched, other, expect_retry) in [(&b"a/"[..], &b"a/x"[..], true), (&b"a/"[..], &b"b/x"[..], false)] {
        let attempts = AtomicU32::new(0);
        let attempts = &attempts;
        let engine2 = engine.clone();
        engine
            .transact(|tx| {
                let engine2 = engine2.clone();
                async move {
                    let attempt = attempts.fetch_add(1, Ordering::SeqCst);
                    let seen = tx.get_range(&scan(watched, &[watched, &[0xff][..]].concat(), false)).await?;
                    if attempt == 0 {
                        // A concurrent transaction writes after our snapshot was taken.
                        engine2
                            .transact(|t| async move {
                                t.set(other, b"1");
                                Ok::<_, StorageError>(())
                            })
                            .await?;
                    }
                    tx.set(&[watched, b"count"].concat(), seen.len().to_string().as_bytes());
                    Ok::<_, StorageError>(())
                }
            })
            .await
            .unwrap();
        let retried = attempts.load(Ordering::SeqCst) > 1;
        assert_eq!(retried, expect_retry, "writing {other:?} while {watched:?} was scanned");
    }
}

#[tokio::test]
async fn retries_are_bounded_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions {
        spurious_conflict_rate: 1.0,
        retry: RetryPolicy { max_attempts: 4, ..RetryPolicy::default() },
        ..EmbeddedOptions::default()
    };
    let store = DcbStore::new(engine(dir.path(), options), "retry").unwrap();
    match store.append(vec![event("E", &[])], None).await {
        Err(Error::Storage(StorageError::RetriesExhausted { attempts: 4, .. })) => {}
        other => panic!("expected RetriesExhausted after 4 attempts, got {other:?}"),
    }
    store.engine().set_spurious_conflict_rate(0.0);
    assert!(read_all(&store, Query::all(), ReadOptions::forwards()).await.is_empty(), "nothing was written");
}

#[tokio::test]
async fn a_closed_store_refuses_work_and_a_reopened_one_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let store = DcbStore::new(engine(dir.path(), EmbeddedOptions::default()), "reopen").unwrap();
        let appended = store.append(vec![event("E", &["k:1"])], None).await.unwrap();
        store.engine().close();
        assert!(matches!(store.append(vec![event("E", &[])], None).await, Err(Error::Closed)));
        assert!(matches!(store.head().await, Err(Error::Closed)));
        let mut read = store.read(Query::all(), ReadOptions::forwards());
        assert!(matches!(futures::StreamExt::next(&mut read).await, Some(Err(Error::Closed))));
        appended.last()
    };
    let store = DcbStore::new(engine(dir.path(), EmbeddedOptions::default()), "reopen").unwrap();
    assert_eq!(store.head().await.unwrap(), Some(first));
    let next = store.append(vec![event("E", &[])], None).await.unwrap();
    assert!(next.last() > first, "positions keep growing across restarts");
}

#[tokio::test]
async fn stores_can_be_used_behind_a_trait_object() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> =
        Arc::new(DcbStore::new(engine(dir.path(), EmbeddedOptions::default()), "dyn").unwrap());
    let appended = store.append(vec![event("E", &["k:1"])], None).await.unwrap();
    assert_eq!(store.head().await.unwrap(), Some(appended.last()));
}
