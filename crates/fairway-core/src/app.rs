//! The app runtime: discovers every slice, opens the store, runs view projectors and serves
//! commands and views over HTTP.
//!
//! | route | what |
//! |---|---|
//! | `POST /commands/<name>` | runs a command (JSON body): 200, 400 bad body, 404 unknown, 409 conflict, 422 rejected |
//! | `GET /views/<name>[?after=<position>]` | every document of a view |
//! | `GET /views/<name>/<key>[?after=<position>]` | one document (404 if absent) |
//! | `GET /slices` | every slice, with view progress |
//! | `GET /health` | liveness |
//!
//! `after` asks for read-your-writes: the read waits (up to 5 s, then 504) until the view
//! reflects that position, e.g. the `last_position` a command returned.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fairway_dcb::{DcbStore, EmbeddedEngine, EmbeddedOptions, EventStore, Position};
use serde_json::json;
use tracing::{error, info};

use crate::backend::Backend;
use crate::command::CommandRunner;
use crate::registry::{CommandFailure, DynView, RegistryError, Slices, discover};

/// How long a read with `?after=` waits for the view.
const READ_YOUR_WRITES_TIMEOUT: Duration = Duration::from_secs(5);

/// Configuration, from flags or environment.
#[derive(Debug, Clone, clap::Parser)]
#[command(about = "A Fairway app: commands, views and automations over one event store")]
pub struct AppConfig {
    /// Directory of the embedded store.
    #[arg(long, env = "FAIRWAY_DATA_DIR", default_value = "fairway-data")]
    pub data_dir: PathBuf,
    /// Namespace of the app's events inside the store.
    #[arg(long, env = "FAIRWAY_NAMESPACE", default_value = "app")]
    pub namespace: String,
    /// Address to serve HTTP on.
    #[arg(long, env = "FAIRWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
}

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
}

/// A running app's shared state.
struct Shared {
    events: Arc<dyn EventStore>,
    slices: Slices,
    views: BTreeMap<&'static str, Arc<dyn DynView>>,
}

/// The app: slices bound to a store.
pub struct App {
    shared: Arc<Shared>,
    engine: Option<Arc<EmbeddedEngine>>,
}

impl App {
    /// Opens the embedded store of `config` and binds every registered slice to it.
    pub fn open(config: &AppConfig) -> Result<Self, AppError> {
        let engine = Arc::new(
            EmbeddedEngine::open(&config.data_dir, EmbeddedOptions::default()).map_err(fairway_dcb::Error::from)?,
        );
        let store = DcbStore::new(engine.clone(), &config.namespace)?;
        let mut app = App::with_backend(Arc::new(store))?;
        app.engine = Some(engine);
        Ok(app)
    }

    /// Binds every registered slice to `backend`.
    pub fn with_backend(backend: Arc<dyn Backend>) -> Result<Self, AppError> {
        let slices = discover()?;
        let views = slices.views.iter().map(|(name, slice)| (*name, (slice.start)(backend.clone()))).collect();
        info!(
            commands = ?slices.commands.keys().collect::<Vec<_>>(),
            views = ?slices.views.keys().collect::<Vec<_>>(),
            events = slices.events.len(),
            "slices discovered"
        );
        Ok(App { shared: Arc::new(Shared { events: backend.events(), slices, views }), engine: None })
    }

    /// The HTTP routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/health", get(|| async { axum::Json(json!({ "status": "ok" })) }))
            .route("/slices", get(list_slices))
            .route("/commands/{name}", post(run_command))
            .route("/views/{name}", get(list_view))
            .route("/views/{name}/{key}", get(get_view))
            .with_state(self.shared.clone())
    }

    /// Starts the projectors and serves on `listener` until `shutdown` completes; then
    /// finishes in-flight requests and closes the store.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let projectors: Vec<_> = self
            .shared
            .views
            .values()
            .map(|view| {
                let (name, run) = (view.name(), view.run());
                tokio::spawn(async move {
                    if let Err(err) = run.await {
                        error!(view = name, %err, "projector stopped");
                    }
                })
            })
            .collect();
        info!(address = %listener.local_addr()?, "serving");
        axum::serve(listener, self.router()).with_graceful_shutdown(shutdown).await?;
        for projector in projectors {
            projector.abort();
            let _ = projector.await;
        }
        if let Some(engine) = &self.engine {
            engine.close();
        }
        info!("stopped");
        Ok(())
    }

    /// The whole program: parse configuration, log to stderr, open, serve until SIGINT or
    /// SIGTERM.
    pub async fn main() -> std::process::ExitCode {
        use clap::Parser;
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
        let config = AppConfig::parse();
        let result = async {
            let app = App::open(&config)?;
            let listener = tokio::net::TcpListener::bind(config.listen).await?;
            app.serve(listener, shutdown_signal()).await
        }
        .await;
        match result {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(err) => {
                error!(%err, "the app failed");
                eprintln!("error: {err}");
                std::process::ExitCode::FAILURE
            }
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    info!("shutdown requested");
}

fn failure(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, axum::Json(json!({ "error": message.to_string() }))).into_response()
}

async fn run_command(State(shared): State<Arc<Shared>>, Path(name): Path<String>, body: Bytes) -> Response {
    let Some(handler) = shared.slices.commands.get(name.as_str()) else {
        return failure(StatusCode::NOT_FOUND, format!("unknown command {name:?}"));
    };
    let body: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(err) => return failure(StatusCode::BAD_REQUEST, format!("body is not JSON: {err}")),
    };
    match handler(CommandRunner::new(shared.events.clone()), body).await {
        Ok(reply) => axum::Json(reply).into_response(),
        Err(err @ CommandFailure::BadRequest(_)) => failure(StatusCode::BAD_REQUEST, err),
        Err(err @ CommandFailure::Rejected(_)) => failure(StatusCode::UNPROCESSABLE_ENTITY, err),
        Err(err @ CommandFailure::Conflict(_)) => failure(StatusCode::CONFLICT, err),
        Err(err @ CommandFailure::Internal(_)) => failure(StatusCode::INTERNAL_SERVER_ERROR, err),
    }
}

/// `?after=<position>`.
#[derive(serde::Deserialize)]
struct After {
    after: Option<String>,
}

async fn view_after(shared: &Shared, name: &str, after: After) -> Result<Arc<dyn DynView>, Response> {
    let view =
        shared.views.get(name).ok_or_else(|| failure(StatusCode::NOT_FOUND, format!("unknown view {name:?}")))?;
    if let Some(after) = after.after {
        let position: Position = after.parse().map_err(|e| failure(StatusCode::BAD_REQUEST, e))?;
        view.wait_for(position, READ_YOUR_WRITES_TIMEOUT).await.map_err(|e| failure(StatusCode::GATEWAY_TIMEOUT, e))?;
    }
    Ok(view.clone())
}

async fn list_view(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(after): Query<After>,
) -> Response {
    let view = match view_after(&shared, &name, after).await {
        Ok(view) => view,
        Err(response) => return response,
    };
    match view.list().await {
        Ok(docs) => {
            axum::Json(docs.into_iter().map(|(k, v)| json!({ "key": k, "doc": v })).collect::<Vec<_>>()).into_response()
        }
        Err(err) => failure(StatusCode::INTERNAL_SERVER_ERROR, err),
    }
}

async fn get_view(
    State(shared): State<Arc<Shared>>,
    Path((name, key)): Path<(String, String)>,
    Query(after): Query<After>,
) -> Response {
    let view = match view_after(&shared, &name, after).await {
        Ok(view) => view,
        Err(response) => return response,
    };
    match view.get(key.clone()).await {
        Ok(Some(doc)) => axum::Json(doc).into_response(),
        Ok(None) => failure(StatusCode::NOT_FOUND, format!("view {name:?} has no document {key:?}")),
        Err(err) => failure(StatusCode::INTERNAL_SERVER_ERROR, err),
    }
}

async fn list_slices(State(shared): State<Arc<Shared>>) -> Response {
    let mut views = Vec::new();
    for view in shared.views.values() {
        let progress = view.progress().await.ok();
        views.push(json!({
            "name": view.name(),
            "version": view.version(),
            "checkpoint": progress.and_then(|p| p.checkpoint).map(|p| p.to_string()),
            "active": progress.is_some_and(|p| p.active),
        }));
    }
    axum::Json(json!({
        "commands": shared.slices.commands.keys().collect::<Vec<_>>(),
        "views": views,
        "events": shared.slices.events.keys().collect::<Vec<_>>(),
    }))
    .into_response()
}
