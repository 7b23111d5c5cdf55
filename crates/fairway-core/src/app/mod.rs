//! The app runtime: discovers every slice, opens the store, runs view projectors and
//! automation queues, and serves commands, views and automations over HTTP.
//!
#![doc = include_str!("routes.md")]
//!
//! `after` asks for read-your-writes: the read waits (up to 5 s, then 504) until the view
//! reflects that position, e.g. the `last_position` a command returned.
//!
//! Admin routes need `Authorization: Bearer <token>` when the app has an admin token
//! (`--admin-token`, `FAIRWAY_ADMIN_TOKEN`; 401 without it, 403 with another), and without
//! one the app serves only on a loopback address unless `--insecure-admin` is given (see
//! [`security`]). [`App::layer`] adds the user's own layers to every route.
//!
//! Every error is JSON, `{"error": "..."}`: the router's own 404 (no route), 405 (wrong
//! method; the `Allow` header names the right one) and 413 (body over
//! [`MAX_BODY_BYTES`]) included. A panicking handler is answered with a 500 and logged;
//! the connection stays up, and a retry with the same `Idempotency-Key` runs again (see
//! [`idempotency`]).
//!
//! Projectors, enqueuers, workers and the idempotency sweeper run supervised: a task that
//! fails or panics is started again after an exponential backoff (see
//! [`SupervisionPolicy`]), and `/health` reports every task's state.
//!
//! Slices are found through `inventory`: a slice in another crate is linked only if the
//! binary refers to that crate, e.g. `use my_slices as _;`.

pub mod admin;
mod answers;
mod config;
pub mod data_dir;
pub mod error;
pub mod idempotency;
mod instance;
pub mod metrics;
mod page;
mod params;
mod process;
pub mod replies;
mod routes;
pub mod security;
pub mod server;
mod supervisor;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use fairway_dcb::{DcbStore, EmbeddedEngine, EmbeddedOptions, EventStore};
use futures::FutureExt;
use tokio::sync::watch;
use tracing::{info, warn};

pub use answers::MAX_BODY_BYTES;
pub use config::{AppConfig, LogFormat};
pub use error::{ApiError, ServerFailure, log_server_failures};
pub use process::shutdown_signal;
pub use routes::{DEFAULT_PAGE_LIMIT, IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, MAX_PAGE_LIMIT};
pub use supervisor::{HealthReport, SupervisionPolicy, TaskState, TaskStatus};

use crate::backend::Backend;
use crate::command::snapshot::Snapshots;
use crate::dependencies::Dependencies;
use crate::registry::{DynAutomation, DynView, RegistryError, Slices, discover};
use idempotency::Idempotency;
use instance::instance_id;
use supervisor::{Health, Task, supervise};

/// How long a read with `?after=` waits for the view.
const READ_YOUR_WRITES_TIMEOUT: Duration = Duration::from_secs(5);

/// How often expired idempotency records are deleted.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Failures starting the app.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The slices are inconsistent.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] fairway_dcb::Error),
    /// Serving failed.
    #[error("http: {0}")]
    Io(#[from] std::io::Error),
    /// The address to serve on cannot be listened on (taken, or not this machine's).
    #[error(
        "cannot listen on {address}: {source}; another process (perhaps this app, already running) may \
         hold it: stop it, or pass another address with --listen (FAIRWAY_LISTEN)"
    )]
    Listen {
        /// The address.
        address: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// No slice is registered: the app would serve nothing.
    #[error(
        "the app {app:?} has no slice: no command, view or automation is registered. If the library has \
         slices, the binary does not link it: add `use {library} as _;` to src/main.rs. Otherwise add one \
         with `fairway add command <name>` (slices live in src/slices/)"
    )]
    NoSlices {
        /// The app's name.
        app: String,
        /// The library the binary should link.
        library: String,
    },
    /// The data directory belongs to another app or holds other files.
    #[error(transparent)]
    DataDir(#[from] data_dir::DataDirError),
    /// Admin routes would face the network without a token.
    #[error(transparent)]
    InsecureAdmin(#[from] security::InsecureAdmin),
    /// The admin token is blank.
    #[error(transparent)]
    BlankToken(#[from] security::BlankToken),
}

/// Facts about the store, for `GET /admin/api/stats`.
struct StoreFacts {
    namespace: String,
    /// The embedded store's directory; `None` on FoundationDB.
    data_dir: Option<std::path::PathBuf>,
}

/// A running app's shared state.
struct Shared {
    /// The store every slice is bound to.
    store: Arc<dyn Backend>,
    events: Arc<dyn EventStore>,
    slices: Slices,
    views: BTreeMap<&'static str, Arc<dyn DynView>>,
    automations: BTreeMap<&'static str, Arc<dyn DynAutomation>>,
    idempotency: Idempotency,
    snapshots: Snapshots,
    health: Health,
    facts: StoreFacts,
    admin: security::AdminAccess,
    /// The embedded store's committer counters, for `/metrics`.
    store_counters: Option<metrics::StoreCounters>,
    /// Turns true when the app starts shutting down: streams to clients end.
    closing: watch::Sender<bool>,
}

/// Rewrites the app's router (applies a user's layer).
type RouterLayer = Box<dyn Fn(Router) -> Router + Send + Sync>;

/// The app: slices bound to a store.
pub struct App {
    shared: Arc<Shared>,
    layers: Vec<RouterLayer>,
    dependencies: Dependencies,
    shutdown_grace: Duration,
    limits: server::ServeLimits,
    supervision: SupervisionPolicy,
    close: Option<Box<dyn FnOnce() + Send>>,
}

impl App {
    /// Opens the store of `config` (embedded by default; FoundationDB when a cluster file
    /// is configured with the `fdb` feature) and binds every registered slice to it.
    pub fn open(config: &AppConfig) -> Result<Self, AppError> {
        #[cfg(feature = "fdb")]
        if let Some(cluster_file) = &config.fdb_cluster_file {
            let retry = fairway_dcb::RetryPolicy::default();
            let engine = Arc::new(
                fairway_dcb::FdbEngine::open(Some(&cluster_file.to_string_lossy()), retry)
                    .map_err(fairway_dcb::Error::from)?,
            );
            info!(cluster_file = %cluster_file.display(), namespace = config.namespace, "FoundationDB store");
            return App::with_backend(Arc::new(DcbStore::new(engine, &config.namespace)?), config);
        }
        let engine = Arc::new(
            EmbeddedEngine::open(&config.data_dir, EmbeddedOptions::default()).map_err(fairway_dcb::Error::from)?,
        );
        info!(data_dir = %config.data_dir.display(), namespace = config.namespace, "embedded store");
        let store = DcbStore::new(engine.clone(), &config.namespace)?;
        let mut app = App::with_backend(Arc::new(store), config)?;
        let closing = engine.clone();
        app.close = Some(Box::new(move || closing.close()));
        let shared = Arc::get_mut(&mut app.shared).expect("not shared yet");
        shared.facts.data_dir = Some(config.data_dir.clone());
        shared.store_counters = Some(Arc::new(move || {
            use std::sync::atomic::Ordering::Relaxed;
            let stats = engine.stats();
            [stats.commits.load(Relaxed), stats.transactions.load(Relaxed), stats.journal_micros.load(Relaxed)]
        }));
        Ok(app)
    }

    /// Binds every registered slice to `backend`.
    pub fn with_backend(backend: Arc<dyn Backend>, config: &AppConfig) -> Result<Self, AppError> {
        let slices = discover()?;
        let dependencies = Dependencies::new();
        let views = slices.views.iter().map(|(name, slice)| (*name, (slice.start)(backend.clone()))).collect();
        let automations = slices
            .automations
            .iter()
            .map(|(name, slice)| (*name, (slice.start)(backend.clone(), dependencies.clone())))
            .collect();
        info!(
            commands = ?slices.commands.keys().collect::<Vec<_>>(),
            views = ?slices.views.keys().collect::<Vec<_>>(),
            automations = ?slices.automations.keys().collect::<Vec<_>>(),
            events = slices.events.len(),
            "slices discovered"
        );
        let idempotency = Idempotency::new(backend.clone(), config.idempotency_ttl());
        let snapshots = Snapshots::new(backend.clone());
        let events = backend.events();
        let store = backend.clone();
        let health = Health::new(move || backend.storage_health().err().map(|err| err.to_string()));
        let facts = StoreFacts { namespace: config.namespace.clone(), data_dir: None };
        let admin = security::AdminAccess::new(config.admin_token.clone(), config.insecure_admin)?;
        metrics::install();
        let shared = Shared {
            store,
            events,
            slices,
            views,
            automations,
            idempotency,
            snapshots,
            health,
            facts,
            admin,
            store_counters: None,
            closing: watch::channel(false).0,
        };
        Ok(App {
            shared: Arc::new(shared),
            layers: Vec::new(),
            dependencies,
            shutdown_grace: Duration::from_secs(config.shutdown_grace_secs),
            limits: config.serve_limits(),
            supervision: SupervisionPolicy::default(),
            close: None,
        })
    }

    /// The store the app's slices are bound to: for a runtime of one's own beside the app's
    /// (a [`ViewRuntime`](crate::ViewRuntime) waiting in-process for a view to reflect a
    /// position, a one-off fold in a test).
    pub fn store(&self) -> Arc<dyn Backend> {
        self.shared.store.clone()
    }

    /// Provides a dependency to automation handlers (see
    /// [`AutomationContext::dependency`](crate::AutomationContext::dependency)).
    pub fn provide<T: Send + Sync + 'static>(self, value: T) -> Self {
        self.dependencies.provide(value);
        self
    }

    /// Sets how failed background tasks are restarted.
    pub fn supervision(mut self, policy: SupervisionPolicy) -> Self {
        self.supervision = policy;
        self
    }

    /// Applies `layer` (a tower layer: authentication, CORS, rate limits, ...) to every
    /// route, admin routes included; projectors, workers and sweepers run as always. Layers
    /// apply in the order given (the last one is outermost); errors they answer in plain
    /// text are turned into JSON like every other error.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
        L::Service: tower::Service<axum::extract::Request> + Clone + Send + Sync + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Response: axum::response::IntoResponse + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Error: Into<std::convert::Infallible> + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Future: Send + 'static,
    {
        self.layers.push(Box::new(move |router: Router| router.layer(layer.clone())));
        self
    }

    /// The HTTP routes, with the app's layers.
    pub fn router(&self) -> Router {
        routes::router(self.shared.clone(), &self.layers)
    }

    /// Starts projectors, enqueuers, workers and the idempotency sweeper, each supervised
    /// (restarted after failures, reported by `/health`), serves on `listener` until
    /// `shutdown` completes, then finishes in-flight requests and jobs (waiting up to the
    /// configured grace) and closes the store.
    pub async fn serve(
        mut self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let address = listener.local_addr()?;
        self.shared.admin.check_address(address)?;
        if self.shared.admin.exposed(address) {
            warn!(%address, "admin routes (raw events, dead letters) are open to the network without a token (--insecure-admin)");
        }
        let (stop, stopping) = watch::channel(false);
        let instance = instance_id();
        let (mut workers, mut background) = (Vec::new(), Vec::new());
        for task in self.background_tasks(&instance, &stopping) {
            let graceful = task.is_graceful();
            let handle = supervise(task, self.shared.health.clone(), self.supervision, stopping.clone());
            if graceful { workers.push(handle) } else { background.push(handle) }
        }
        info!(address = %listener.local_addr()?, instance, "serving");
        let closing = self.shared.closing.clone();
        let shutdown = async move {
            shutdown.await;
            closing.send_replace(true);
        };
        server::serve(listener, self.router(), shutdown, self.limits, self.shutdown_grace).await;
        let _ = stop.send(true);
        let finishing = futures::future::join_all(workers);
        if tokio::time::timeout(self.shutdown_grace, finishing).await.is_err() {
            warn!(grace = ?self.shutdown_grace, "jobs still running at the end of the grace period; their leases will expire");
        }
        for task in background {
            task.abort();
            let _ = task.await;
        }
        release_view_leases(&self.shared, &instance).await;
        if let Some(close) = self.close.take() {
            close();
        }
        info!("stopped");
        Ok(())
    }

    /// Every background task: a projector per view (projecting while this instance holds
    /// the view version's lease), an enqueuer and its workers per automation (workers named
    /// `<instance>-<n>`, finishing their job when `stopping` turns true), and the
    /// idempotency sweeper.
    fn background_tasks(&self, instance: &str, stopping: &watch::Receiver<bool>) -> Vec<Task> {
        let mut tasks = Vec::new();
        for view in self.shared.views.values() {
            let (view, instance) = (view.clone(), instance.to_owned());
            tasks.push(Task::new("projector", view.name(), move || view.run(instance.clone())));
        }
        for automation in self.shared.automations.values() {
            let enqueuer = automation.clone();
            tasks.push(Task::new("enqueuer", automation.name(), move || enqueuer.run_enqueuer()));
            for n in 0..automation.workers() {
                let (worker, name, stop) = (automation.clone(), format!("{instance}-{n}"), stopping.clone());
                let run = move || worker.run_worker(name.clone(), stop.clone());
                tasks.push(Task::new("worker", automation.name(), run).instance(n).graceful());
            }
        }
        let idempotency = self.shared.idempotency.clone();
        tasks.push(Task::new("sweeper", "idempotency", move || sweep_idempotency(idempotency.clone()).boxed()));
        tasks
    }
}

/// Deletes expired idempotency records now and every [`SWEEP_EVERY`]; returns only on
/// failure.
async fn sweep_idempotency(idempotency: Idempotency) -> Result<(), String> {
    loop {
        match idempotency.sweep().await {
            Ok(0) => {}
            Ok(deleted) => info!(deleted, "expired idempotency records deleted"),
            Err(err) => return Err(format!("idempotency sweep: {err}")),
        }
        tokio::time::sleep(SWEEP_EVERY).await;
    }
}

/// Gives up the projector leases `instance` holds (its projectors stopped), so another
/// instance projects at once rather than once they expire.
async fn release_view_leases(shared: &Shared, instance: &str) {
    for view in shared.views.values() {
        if let Err(err) = view.release(instance).await {
            warn!(view = view.name(), %err, "projector lease not released; it expires by itself");
        }
    }
}
