//! Helpers the integration tests share: stores on the engine the suite runs on, waiting
//! for a condition, and HTTP calls that answer with their status and JSON body. Slices stay
//! in each test's own file: a slice registers itself in every binary that compiles it.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use fairway::dcb::{DcbStore, EmbeddedEngine, EmbeddedOptions, StorageError};
use fairway::runtime::Store;
use serde_json::Value;

/// Whether the suite runs on FoundationDB, as `TestApp` decides it.
pub use fairway::testkit::runs_on_foundationdb as on_foundationdb;

/// The engine below a test's store.
pub enum Engine {
    /// The embedded engine, in a temporary directory.
    Embedded(Arc<EmbeddedEngine>),
    /// The FoundationDB cluster `FAIRWAY_FDB_CLUSTER_FILE` names.
    #[cfg(feature = "fdb")]
    Fdb(Arc<fairway::dcb::FdbEngine>),
}

/// A fresh engine of the kind the suite runs on, with a namespace of its own on it; the
/// embedded one's directory lives as long as this.
pub struct TestEngine {
    pub engine: Engine,
    pub namespace: String,
    dir: tempfile::TempDir,
}

/// Opens a fresh engine: a connection to the FoundationDB cluster `FAIRWAY_FDB_CLUSTER_FILE`
/// names under `FAIRWAY_TEST_ENGINE=fdb`, with a random namespace, or an embedded engine
/// with `options` in a temporary directory. On FoundationDB, only the options'
/// `unknown_result_rate` applies (the engines' test hook reporting that fraction of the
/// commits that land as of unknown result and running their transaction again).
pub fn open_engine(options: EmbeddedOptions) -> TestEngine {
    let dir = tempfile::tempdir().expect("a temporary directory");
    #[cfg(feature = "fdb")]
    if on_foundationdb() {
        let cluster_file =
            std::env::var("FAIRWAY_FDB_CLUSTER_FILE").expect("FAIRWAY_TEST_ENGINE=fdb needs a cluster file");
        let engine = fairway::dcb::FdbEngine::open(Some(&cluster_file), options.retry).expect("the cluster opens");
        engine.set_unknown_result_rate(options.unknown_result_rate);
        let namespace = format!("store-{:016x}", rand::random::<u64>());
        return TestEngine { engine: Engine::Fdb(Arc::new(engine)), namespace, dir };
    }
    let engine = EmbeddedEngine::open(dir.path(), options).expect("the store opens");
    TestEngine { engine: Engine::Embedded(Arc::new(engine)), namespace: "store".to_owned(), dir }
}

/// Runs `$body` with `$engine` bound to the `Arc` of the concrete engine of a
/// [`TestEngine`] (`$test.engine`), so code generic over the engine runs on either.
#[allow(unused_macros)]
macro_rules! with_engine {
    ($test:expr, |$engine:ident| $body:expr) => {
        match $test {
            $crate::support::Engine::Embedded($engine) => $body,
            #[cfg(feature = "fdb")]
            $crate::support::Engine::Fdb($engine) => $body,
        }
    };
}
#[allow(unused_imports)]
pub(crate) use with_engine;

/// A fresh store on the engine the suite runs on (see [`open_store`]).
pub struct TestStore {
    pub store: Arc<dyn Store>,
    /// The store again, to clear its namespace on FoundationDB.
    #[cfg(feature = "fdb")]
    fdb: Option<DcbStore<fairway::dcb::FdbEngine>>,
    _engine: TestEngine,
}

impl TestStore {
    /// A share `rate` of the commits that write fail with `fault` (0 stops it).
    #[allow(dead_code)]
    pub fn fail_commits_at_rate(&self, rate: f64, fault: fairway::dcb::kv::faults::CommitFault) {
        use fairway::dcb::kv::faults::InjectFaults;
        with_engine!(&self._engine.engine, |engine| engine.fail_commits_at_rate(rate, fault));
    }

    /// The next commit that writes lands, then is reported as of unknown result
    /// (`commit_unknown_result`), so its transaction runs again.
    #[allow(dead_code)]
    pub fn fail_next_commit_after_landing(&self) {
        use fairway::dcb::kv::faults::{CommitFault, InjectFaults};
        with_engine!(&self._engine.engine, |engine| engine.fail_commit(1, CommitFault::unknown_after_landing()));
    }

    /// Clears the store's namespace on FoundationDB (call it when the test passed: a failed
    /// test leaves its namespace for a look); the embedded store's directory goes with this.
    pub async fn clear(self) {
        #[cfg(feature = "fdb")]
        if let Some(store) = &self.fdb {
            store.clear_namespace().await.expect("the namespace clears");
        }
    }
}

/// A fresh store: a namespace of its own on the FoundationDB cluster
/// `FAIRWAY_FDB_CLUSTER_FILE` names under `FAIRWAY_TEST_ENGINE=fdb`, or an embedded store in
/// a temporary directory. A fraction `unknown_result_rate` of the commits that land are
/// reported as of unknown result and their transaction run again (the engines' test hooks).
pub fn open_store(unknown_result_rate: f64) -> TestStore {
    let test = open_engine(EmbeddedOptions { unknown_result_rate, ..EmbeddedOptions::default() });
    match &test.engine {
        Engine::Embedded(engine) => {
            let store = DcbStore::new(engine.clone(), &test.namespace).expect("namespace");
            TestStore {
                store: Arc::new(store),
                #[cfg(feature = "fdb")]
                fdb: None,
                _engine: test,
            }
        }
        #[cfg(feature = "fdb")]
        Engine::Fdb(engine) => {
            let store = DcbStore::new(engine.clone(), &test.namespace).expect("namespace");
            TestStore { store: Arc::new(store.clone()), fdb: Some(store), _engine: test }
        }
    }
}

/// The error the engine raises for a retryable failure: `transaction_too_old` (1007) or
/// `not_committed` (1020, a conflict) on FoundationDB, where the client decides
/// retryability by code; `Retryable` on the embedded engine.
pub fn retryable(code: i32) -> StorageError {
    let message = format!("injected failure {code}");
    if on_foundationdb() { StorageError::Fdb { code, message } } else { StorageError::Retryable(message) }
}

/// Polls `check` every 10 ms until it holds; fails the test naming `what` after `timeout`.
pub async fn eventually(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends `request`; its status and JSON body.
pub async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let (status, body, _) = send_noting_replay(request).await;
    (status, body)
}

/// Sends `request`; its status, JSON body, and whether it was an idempotent replay.
pub async fn send_noting_replay(request: reqwest::RequestBuilder) -> (u16, Value, bool) {
    let response = request.send().await.expect("the request is sent");
    let replayed = response.headers().get(fairway::app::IDEMPOTENT_REPLAYED).is_some();
    let status = response.status().as_u16();
    (status, response.json().await.expect("the answer is JSON"), replayed)
}
