//! The app as a program: configuration from flags and environment, logs, serving until
//! SIGINT or SIGTERM.

use tracing::{error, info};

use super::config::{AppConfig, LogFormat};
use super::{App, AppError, data_dir, security};
use crate::registry::{Slices, discover};

impl App {
    /// The whole program of the app called `name`: parse configuration (its data directory
    /// defaults to `./<name>-data`, its namespace to `<name>`), log to stderr, open, serve
    /// until SIGINT or SIGTERM. Pass the package's name, which also names the library
    /// holding the slices:
    ///
    /// ```no_run
    /// # mod my_app {}
    /// use my_app as _; // links the library, so its slices are registered
    ///
    /// #[tokio::main]
    /// async fn main() -> std::process::ExitCode {
    ///     fairway_core::App::main(env!("CARGO_PKG_NAME")).await
    /// }
    /// ```
    ///
    /// Refuses to start, saying why and what to do, when no slice is registered, the data
    /// directory belongs to another app or holds other files, another process holds the
    /// store, or the address is taken.
    pub async fn main(name: &str) -> std::process::ExitCode {
        App::main_with(name, |app| app).await
    }

    /// [`App::main`], letting `configure` provide dependencies and layers to the app before
    /// it starts.
    pub async fn main_with(name: &str, configure: impl FnOnce(App) -> App) -> std::process::ExitCode {
        let config = AppConfig::parse_for(name);
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
        let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
        match config.log_format {
            LogFormat::Text => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
            LogFormat::Json => logs.json().with_current_span(true).with_span_list(true).init(),
        }
        let result = async {
            let slices = discover()?;
            if config.list_slices {
                let described = serde_json::to_string_pretty(&slices.describe()).expect("JSON encodes");
                println!("{described}");
            }
            check_some_slice(&slices, name)?;
            if config.list_slices {
                return Ok(());
            }
            // Refuse an unsafe address before touching the store.
            security::AdminAccess::new(config.admin_token.clone(), config.insecure_admin)?
                .check_address(config.listen)?;
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .map_err(|source| AppError::Listen { address: config.listen, source })?;
            if uses_embedded_store(&config) {
                data_dir::claim(&config.data_dir, name)?;
            }
            let app = configure(App::open(&config)?);
            app.serve(listener, shutdown_signal()).await
        }
        .await;
        // Served and every engine dropped: the client network stops and its thread is joined
        // before the process exits, as the client library asks.
        #[cfg(feature = "fdb")]
        if !uses_embedded_store(&config) {
            fairway_dcb::kv::fdb::stop_network();
        }
        match result {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(err) => {
                // Once, in the format the logs are in: a plain line would break JSON logs.
                match config.log_format {
                    LogFormat::Json => error!(%err, "the app failed"),
                    LogFormat::Text => eprintln!("error: {err}"),
                }
                std::process::ExitCode::FAILURE
            }
        }
    }
}

/// Refuses an app with no slice: it would serve nothing, and the likely cause is a binary
/// that does not link the library holding the slices.
fn check_some_slice(slices: &Slices, app: &str) -> Result<(), AppError> {
    if slices.commands.is_empty() && slices.views.is_empty() && slices.automations.is_empty() {
        return Err(AppError::NoSlices { app: app.to_owned(), library: app.replace('-', "_") });
    }
    Ok(())
}

/// Whether `config` opens the embedded store (not FoundationDB).
fn uses_embedded_store(config: &AppConfig) -> bool {
    #[cfg(feature = "fdb")]
    if config.fdb_cluster_file.is_some() {
        return false;
    }
    let _ = config;
    true
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_with_no_slice_is_refused_naming_the_line_to_add() {
        let none = Slices::default();
        let err = check_some_slice(&none, "course-shop").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("add `use course_shop as _;` to src/main.rs"), "{message}");
        assert!(message.contains("fairway add command"), "{message}");
    }
}
