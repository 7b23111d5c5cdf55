//! The engines the store's race and prefix tests run on: the embedded one in a temporary
//! directory in every run, FoundationDB when a cluster is configured. Each case opens its
//! stores on a namespace of its own and clears it once it passed.

// Each test binary uses the part it needs.
#![allow(dead_code)]

use std::sync::Arc;

use fairway_dcb::{EmbeddedEngine, EmbeddedOptions};

/// An embedded engine in a fresh temporary directory (kept while the directory lives).
pub fn embedded(options: EmbeddedOptions) -> (Arc<EmbeddedEngine>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = EmbeddedEngine::open(dir.path(), options).expect("the embedded engine opens");
    (Arc::new(engine), dir)
}

/// Options of an embedded engine that syncs nothing (the tests do not crash it).
pub fn volatile() -> EmbeddedOptions {
    EmbeddedOptions { durable: false, ..EmbeddedOptions::default() }
}

/// A namespace `<prefix>-<random>` no other case uses.
pub fn fresh_namespace(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// Sends the store's and engine's logs (debug and up) to the test's captured output, shown
/// when a case fails: the retries and ridden-out failures that led there.
pub fn log_to_test_output() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::new("fairway_dcb=debug"))
        .try_init();
}

/// An engine on the FoundationDB cluster `cluster_file` names; the case's logs go to its
/// output.
#[cfg(feature = "fdb")]
pub fn foundationdb(cluster_file: &str) -> Arc<fairway_dcb::FdbEngine> {
    log_to_test_output();
    let engine = fairway_dcb::FdbEngine::open(Some(cluster_file), fairway_dcb::RetryPolicy::default())
        .expect("the cluster is reachable");
    Arc::new(engine)
}
