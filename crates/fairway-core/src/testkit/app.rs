//! A whole app, in-process, on a temporary embedded store, serving on a loopback port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::sync::oneshot;

use crate::app::{App, AppConfig};

/// A running app serving on `127.0.0.1:<free port>`. Send requests to [`TestApp::url`] with
/// any HTTP client; [`TestApp::restart`] reopens the same store.
pub struct TestApp {
    address: SocketAddr,
    config: AppConfig,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    dir: Option<tempfile::TempDir>,
}

impl TestApp {
    /// Starts every registered slice on a fresh store in a temporary directory.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut app = TestApp::start_in(dir.path()).await;
        app.dir = Some(dir);
        app
    }

    /// Starts every registered slice on the store in `data_dir` (kept after the test).
    pub async fn start_in(data_dir: impl AsRef<Path>) -> Self {
        TestApp::start_with(AppConfig::with_data_dir(data_dir.as_ref()), |app| app).await
    }

    /// Starts with `config`, letting `configure` provide dependencies.
    ///
    /// The store is the embedded one in `config.data_dir`, whatever the environment says;
    /// in a build with the `fdb` feature and `FAIRWAY_TEST_ENGINE=fdb`, it is instead the
    /// namespace `test-<hash of data_dir>` of the cluster `FAIRWAY_FDB_CLUSTER_FILE` names,
    /// so one test suite runs on both engines (the same directory, the same namespace).
    pub async fn start_with(config: AppConfig, configure: impl FnOnce(App) -> App) -> Self {
        let config = on_test_engine(config);
        let app = configure(App::open(&config).expect("the app opens"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let address = listener.local_addr().expect("bound");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            app.serve(listener, shutdown).await.expect("the app serves");
        });
        TestApp { address, config, stop: Some(stop), task: Some(task), dir: None }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The store's namespace (`app` on the embedded store; `test-<hash>` on FoundationDB).
    pub fn namespace(&self) -> &str {
        &self.config.namespace
    }

    /// Whether the app runs on FoundationDB (`FAIRWAY_TEST_ENGINE=fdb`, see
    /// [`TestApp::start_with`]): facts of the embedded store (its directory's bytes, its
    /// journal's metrics) are then absent.
    pub fn on_foundationdb(&self) -> bool {
        #[cfg(feature = "fdb")]
        return self.config.fdb_cluster_file.is_some();
        #[cfg(not(feature = "fdb"))]
        false
    }

    /// The store's directory.
    pub fn data_dir(&self) -> PathBuf {
        self.config.data_dir.clone()
    }

    /// Stops gracefully: in-flight requests and jobs finish, the store closes.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("the app stops cleanly");
        }
    }

    /// Stops, then starts again on the same store (on a new port).
    pub async fn restart(mut self) -> Self {
        self.shutdown().await;
        let mut next = TestApp::start_with(self.config.clone(), |app| app).await;
        next.dir = self.dir.take();
        next
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Whether the tests run on FoundationDB: `FAIRWAY_TEST_ENGINE=fdb` in a build with the
/// `fdb` feature. [`TestApp`] then runs on the cluster `FAIRWAY_FDB_CLUSTER_FILE` names,
/// and a test opening stores of its own should open them there too.
pub fn runs_on_foundationdb() -> bool {
    cfg!(feature = "fdb") && std::env::var("FAIRWAY_TEST_ENGINE").as_deref() == Ok("fdb")
}

/// `config` on the engine the tests run on (see [`TestApp::start_with`]).
fn on_test_engine(config: AppConfig) -> AppConfig {
    #[cfg(feature = "fdb")]
    {
        let mut config = config;
        config.fdb_cluster_file = None;
        if runs_on_foundationdb() {
            use std::hash::{Hash, Hasher};
            let cluster_file = std::env::var_os("FAIRWAY_FDB_CLUSTER_FILE")
                .expect("FAIRWAY_TEST_ENGINE=fdb needs FAIRWAY_FDB_CLUSTER_FILE");
            let mut hasher = std::hash::DefaultHasher::new();
            config.data_dir.hash(&mut hasher);
            config.fdb_cluster_file = Some(cluster_file.into());
            config.namespace = format!("test-{:016x}", hasher.finish());
        }
        config
    }
    #[cfg(not(feature = "fdb"))]
    config
}
