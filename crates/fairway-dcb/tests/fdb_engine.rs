//! The FoundationDB engine's retry loop, on a real cluster (feature `fdb` and
//! `FAIRWAY_FDB_CLUSTER_FILE`; see `conformance::fdb_cluster_file`): every attempt of a
//! transaction has its own 5 s, so a body that conflicts once after 3 s still commits on its
//! second 3 s attempt instead of timing out (1031) at 5 s overall, and one that outlives
//! every attempt fails naming the limit; and `health` reports a
//! cluster that went down (on a private cluster started for the test from
//! `../shared/fdb/start.sh` and killed); and a process that used the cluster exits cleanly,
//! with its client network stopped by `stop_network` or left running. Without the feature the binary is empty;
//! `conformance_fdb` prints why FoundationDB cases did not run.

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
        // Under client fault injection (buggify) more attempts may fail; the first always
        // conflicts, and the key holds what the committed attempt wrote.
        assert!(committed.value >= 2, "the first attempt conflicted, a later one committed");
        assert_eq!(attempts.load(Ordering::SeqCst), committed.value, "the last attempt is the one that committed");
        let stored = engine
            .transact(|tx| {
                let key = key.clone();
                async move { tx.get(&key, false).await }
            })
            .await
            .expect("the key reads back")
            .value;
        assert_eq!(stored, Some(format!("attempt {}", committed.value).into_bytes()), "the committed attempt's write");
        assert!(started.elapsed() > Duration::from_secs(5), "the attempts together took longer than 5 s");
        engine.clear_prefix(&key).await.expect("the case's key is cleared");
    }

    /// A body that outlives every attempt's 5 s fails, after the engine's 8 attempts, with
    /// `TimedOut` naming the limit, a transient failure (a server answers 503).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_past_the_limit_in_every_attempt_fails_naming_it() {
        let Some(engine) = engine() else { return };
        let key = format!("fdb-engine-test/{:016x}", rand::random::<u64>()).into_bytes();
        let attempts = AtomicU32::new(0);
        let failed = engine
            .transact(|tx| {
                let (key, attempts) = (key.clone(), &attempts);
                async move {
                    attempts.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5_200)).await;
                    tx.get(&key, false).await?;
                    Ok::<_, Error>(())
                }
            })
            .await
            .expect_err("no attempt ends within 5 s");
        let Error::Storage(storage) = &failed else { panic!("a storage failure, not {failed:?}") };
        assert!(matches!(storage, fairway_dcb::StorageError::TimedOut { attempts: 8, limit_ms: 5_000 }), "{storage:?}");
        assert!(storage.is_transient());
        assert!(failed.to_string().contains("limit of 5000 ms per attempt"), "{failed}");
        assert!(attempts.load(Ordering::SeqCst) >= 8, "every attempt ran its body");
    }

    /// A body failing with a retryable FoundationDB error in every attempt fails, after the
    /// retry policy's attempts, with `RetriesExhausted` naming them and the last error: a
    /// transient failure, not the raw error of the last attempt.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_failing_in_every_attempt_names_the_attempts() {
        let Some(cluster_file) = fairway_dcb::conformance::fdb_cluster_file("the engine's retry loop") else { return };
        let retry = RetryPolicy { max_attempts: 3, ..RetryPolicy::default() };
        let engine = FdbEngine::open(Some(&cluster_file), retry).expect("cluster reachable");
        let attempts = AtomicU32::new(0);
        let failed = engine
            .transact(|_tx| {
                attempts.fetch_add(1, Ordering::SeqCst);
                let not_committed = fairway_dcb::StorageError::Fdb { code: 1020, message: "not committed".into() };
                async move { Err::<(), _>(Error::Storage(not_committed)) }
            })
            .await
            .expect_err("no attempt succeeds");
        let Error::Storage(storage) = &failed else { panic!("a storage failure, not {failed:?}") };
        assert!(
            matches!(storage, fairway_dcb::StorageError::RetriesExhausted { attempts: 3, last } if last.contains("not_committed") || last.contains("conflict")),
            "{storage:?}"
        );
        assert!(storage.is_transient());
        assert_eq!(attempts.load(Ordering::SeqCst), 3, "each attempt ran its body");
    }

    /// Set in the child process the exit case starts: how the child ends.
    const CHILD_VAR: &str = "FAIRWAY_FDB_NETWORK_CHILD";

    /// Runs this binary's `network_child` case in a child process told to end by `how`;
    /// its output once it exited.
    fn child(how: &str) -> std::process::Output {
        let exe = std::env::current_exe().expect("the test binary");
        std::process::Command::new(exe)
            .args(["--exact", "on_foundationdb::network_child", "--include-ignored", "--nocapture"])
            .env(CHILD_VAR, how)
            .output()
            .expect("the child runs")
    }

    /// The child: opens an engine, commits, drops it, then stops the network (and checks
    /// that no engine opens afterwards) or leaves it running.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "run in a child process by the exit case"]
    async fn network_child() {
        let Ok(how) = std::env::var(CHILD_VAR) else { return };
        let Some(engine) = engine() else { return };
        let key = format!("fdb-engine-test/{:016x}", rand::random::<u64>()).into_bytes();
        engine.clear_prefix(&key).await.expect("a commit");
        drop(engine);
        if how == "stopped" {
            assert!(fairway_dcb::kv::fdb::stop_network(), "the network was running");
            assert!(!fairway_dcb::kv::fdb::stop_network(), "a second stop finds it stopped");
            let cluster_file = std::env::var(fairway_dcb::conformance::FDB_CLUSTER_FILE_VAR).expect("cluster file");
            let reopened = FdbEngine::open(Some(&cluster_file), RetryPolicy::default());
            let err = reopened.err().expect("no engine opens once the network stopped");
            assert!(err.to_string().contains("network of this process was stopped"), "{err}");
        }
        println!("child done: {how}");
    }

    /// A process that used FoundationDB exits cleanly (status 0, its case passed) when it
    /// stops the network at the end, as a program's `main` does, and when it leaves it
    /// running, as test binaries do.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_process_exits_cleanly_with_its_network_stopped_or_running() {
        if fairway_dcb::conformance::fdb_cluster_file("the network's stop").is_none() {
            return;
        }
        for how in ["stopped", "running"] {
            let output = child(how);
            let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
            assert!(output.status.success(), "{how}: {:?}\n{stdout}\n{stderr}", output.status);
            assert!(stdout.contains(&format!("child done: {how}")), "{how}: the child case ran: {stdout}");
            assert!(stdout.contains("1 passed"), "{how}: {stdout}");
        }
    }

    /// A single-process cluster of the test's own, started from `../shared/fdb/start.sh`
    /// in a fresh directory under `target/`; killed and removed on drop.
    struct PrivateCluster {
        pid: u32,
        cluster_file: String,
        dir: std::path::PathBuf,
    }

    impl PrivateCluster {
        fn start() -> Option<Self> {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            let script = root.join("../shared/fdb/start.sh");
            if !script.exists() {
                let required = std::env::var_os(fairway_dcb::conformance::FDB_REQUIRED_VAR).is_some();
                assert!(!required, "a FoundationDB case is required but {} is missing", script.display());
                eprintln!("notice: health probe case skipped: {} is missing", script.display());
                return None;
            }
            // A cluster that does not come up (a loaded machine, its port taken between
            // picking and binding it) is started afresh, up to three times: what this case
            // tests is the engine's health, not the start of a server.
            let mut failures = Vec::new();
            let (dir, output) = loop {
                let dir = root.join(format!("target/fdb-probe-{:016x}", rand::random::<u64>()));
                let mut start = std::process::Command::new("bash");
                start.arg(&script).arg(&dir);
                for (name, _) in std::env::vars_os() {
                    if name.to_string_lossy().starts_with("FDB_NETWORK_OPTION_") {
                        start.env_remove(name);
                    }
                }
                let output = start.output().expect("bash runs");
                if output.status.success() {
                    break (dir, output);
                }
                let server_log = std::fs::read_to_string(dir.join("logs/fdbserver.out")).unwrap_or_default();
                failures.push(format!(
                    "start.sh in {}: {}\nfdbserver.out: {server_log}",
                    dir.display(),
                    String::from_utf8_lossy(&output.stderr)
                ));
                let _ = std::fs::remove_dir_all(&dir);
                assert!(failures.len() < 3, "no cluster started in 3 attempts:\n{}", failures.join("\n"));
            };
            let exports = String::from_utf8_lossy(&output.stdout).into_owned();
            let value = |name: &str| {
                exports
                    .lines()
                    .find_map(|line| line.strip_prefix(&format!("export {name}=")).map(str::to_owned))
                    .unwrap_or_else(|| panic!("start.sh exports {name}: {exports}"))
            };
            let pid = value("FDB_PID").parse().expect("a pid");
            Some(PrivateCluster { pid, cluster_file: value("FAIRWAY_FDB_CLUSTER_FILE"), dir })
        }

        fn kill(&self) {
            let _ = std::process::Command::new("kill")
                .args(["-9", &self.pid.to_string()])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }

    impl Drop for PrivateCluster {
        fn drop(&mut self) {
            self.kill();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    async fn health_becomes(engine: &FdbEngine, healthy: bool) -> Result<(), fairway_dcb::StorageError> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let health = engine.health();
            if health.is_ok() == healthy || Instant::now() > deadline {
                return health;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn health_reports_a_cluster_that_went_down() {
        let Some(cluster) = PrivateCluster::start() else { return };
        let engine = FdbEngine::open(Some(&cluster.cluster_file), RetryPolicy::default()).expect("cluster reachable");
        engine
            .transact(|tx| async move {
                tx.set(b"probe-test", b"up");
                Ok::<_, Error>(())
            })
            .await
            .expect("the cluster takes a write");
        health_becomes(&engine, true).await.expect("healthy while the cluster answers");
        cluster.kill();
        let down = health_becomes(&engine, false).await.expect_err("unhealthy once the cluster is gone");
        assert!(down.to_string().contains("does not answer"), "{down}");
    }
}
