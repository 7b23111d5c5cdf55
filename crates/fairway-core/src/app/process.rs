//! The app as a program: configuration from flags and environment, logs, serving until
//! SIGINT or SIGTERM.

use tracing::{error, info};

use super::config::{AppConfig, LogFormat};
use super::{App, security};
use crate::registry::discover;

impl App {
    /// The whole program: parse configuration, log to stderr, open, serve until SIGINT or
    /// SIGTERM.
    pub async fn main() -> std::process::ExitCode {
        App::main_with(|app| app).await
    }

    /// [`App::main`], letting `configure` provide dependencies to the app before it starts.
    pub async fn main_with(configure: impl FnOnce(App) -> App) -> std::process::ExitCode {
        use clap::Parser;
        let config = AppConfig::parse();
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
        let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
        match config.log_format {
            LogFormat::Text => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
            LogFormat::Json => logs.json().with_current_span(true).with_span_list(true).init(),
        }
        let result = async {
            if config.list_slices {
                let described = serde_json::to_string_pretty(&discover()?.describe()).expect("JSON encodes");
                println!("{described}");
                return Ok(());
            }
            // Refuse an unsafe address before touching the store.
            security::AdminAccess::new(config.admin_token.clone(), config.insecure_admin)?
                .check_address(config.listen)?;
            let app = configure(App::open(&config)?);
            let listener = tokio::net::TcpListener::bind(config.listen).await?;
            app.serve(listener, shutdown_signal()).await
        }
        .await;
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
