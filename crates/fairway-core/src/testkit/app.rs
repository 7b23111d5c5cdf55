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
    pub async fn start_with(config: AppConfig, configure: impl FnOnce(App) -> App) -> Self {
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
