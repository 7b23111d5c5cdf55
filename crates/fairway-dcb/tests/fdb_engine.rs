//! The FoundationDB engine's retry loop, on a real cluster (feature `fdb` and
//! `FAIRWAY_FDB_CLUSTER_FILE`; see `conformance::fdb_cluster_file`): every attempt of a
//! transaction has its own 5 s, so a body that conflicts once after 3 s still commits on its
//! second 3 s attempt instead of timing out (1031) at 5 s overall. Without the feature the
//! binary is empty; `conformance_fdb` prints why FoundationDB cases did not run.

#[cfg(feature = "fdb")]
mod on_foundationdb {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    use fairway_dcb::kv::fdb::FdbEngine;
    use fairway_dcb::kv::{KvEngine, KvTransaction};
    use fairway_dcb::{Error, RetryPolicy};

    fn engine() -> Option<Arc<FdbEngine>> {
        let cluster_file = fairway_dcb::conformance::fdb_cluster_file("the engine's retry loop")?;
        Some(Arc::new(FdbEngine::open(Some(&cluster_file), RetryPolicy::default()).expect("cluster reachable")))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_attempt_has_its_own_timeout() {
        let Some(engine) = engine() else { return };
        let key = format!("fdb-engine-test/{:016x}", rand::random::<u64>()).into_bytes();
        let attempts = AtomicU32::new(0);
        let started = Instant::now();
        let committed = engine
            .transact(|tx| {
                let (engine, key, attempts) = (engine.clone(), key.clone(), &attempts);
                async move {
                    let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
                    tx.get(&key, false).await?;
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    if attempt == 1 {
                        // Another transaction writes the key this one read: its commit conflicts.
                        engine
                            .transact(|other| {
                                let key = key.clone();
                                async move {
                                    other.set(&key, b"other");
                                    Ok::<_, Error>(())
                                }
                            })
                            .await?;
                    }
                    tx.set(&key, format!("attempt {attempt}").as_bytes());
                    Ok::<_, Error>(attempt)
                }
            })
            .await
            .expect("the second attempt commits within its own 5 s");
        assert_eq!(committed.value, 2, "one conflict, then a commit");
        assert!(started.elapsed() > Duration::from_secs(5), "the attempts together took longer than 5 s");
    }
}
