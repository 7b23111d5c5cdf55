//! App configuration from command-line flags and environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

// ANCHOR: flags
/// Configuration, from flags or environment.
#[derive(Debug, Clone, clap::Parser)]
#[command(about = "A Fairway app: commands, views and automations over one event store")]
pub struct AppConfig {
    /// Directory of the embedded store (an app's default: `./<app>-data`).
    #[arg(long, env = "FAIRWAY_DATA_DIR", default_value = "fairway-data")]
    pub data_dir: PathBuf,
    /// FoundationDB cluster file: when set, the app uses FoundationDB instead of the
    /// embedded store.
    #[cfg(feature = "fdb")]
    #[arg(long, env = "FAIRWAY_FDB_CLUSTER_FILE")]
    pub fdb_cluster_file: Option<PathBuf>,
    /// Namespace of the app's events inside the store (an app's default: its name).
    #[arg(long, env = "FAIRWAY_NAMESPACE", default_value = "app")]
    pub namespace: String,
    /// Address to serve HTTP on.
    #[arg(long, env = "FAIRWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// How long a response stored under an `Idempotency-Key` is replayed, in seconds.
    #[arg(long, env = "FAIRWAY_IDEMPOTENCY_TTL_SECS", default_value_t = 24 * 60 * 60)]
    pub idempotency_ttl_secs: u64,
    /// How long shutdown waits for jobs in progress, in seconds.
    #[arg(long, env = "FAIRWAY_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,
    /// Most HTTP connections open at once (at least 1); more wait to be accepted.
    #[arg(long, env = "FAIRWAY_MAX_CONNECTIONS", default_value_t = 1_000,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_connections: usize,
    /// Longest time a client may take, from connecting, to send a request's headers, in
    /// seconds (at least 1).
    #[arg(long, env = "FAIRWAY_HEADER_READ_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_secs: u64,
    /// Token every admin route (`/admin/...`, dead letters) requires as
    /// `Authorization: Bearer <token>`; without one, admin routes are open and the app serves
    /// only on a loopback address.
    #[arg(long, env = "FAIRWAY_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Serve open admin routes (no token) on a non-loopback address anyway.
    #[arg(long, env = "FAIRWAY_INSECURE_ADMIN")]
    pub insecure_admin: bool,
    /// Log lines as `text` (for people) or `json` (one object per line, with the span
    /// fields: the slice's name, the job's position, ...).
    #[arg(long, env = "FAIRWAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Print every discovered slice as JSON and exit, without opening the store.
    #[arg(long)]
    pub list_slices: bool,
}
// ANCHOR_END: flags

/// How log lines are written (to stderr; filtered by `RUST_LOG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl AppConfig {
    /// The configuration with every default, storing in `data_dir`.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        use clap::Parser;
        let mut config = AppConfig::parse_from(["fairway-app"]);
        config.data_dir = data_dir.into();
        config
    }

    /// The configuration of the app called `app`, from the process's arguments and
    /// environment: its data directory defaults to `./<app>-data` and its namespace to
    /// `<app>`, so two apps never share a store by accident. Prints help or an error and
    /// exits on bad arguments.
    pub fn parse_for(app: &str) -> Self {
        AppConfig::try_parse_for(app, std::env::args_os()).unwrap_or_else(|err| err.exit())
    }

    /// [`AppConfig::parse_for`] on the given arguments (the first one is the program).
    pub fn try_parse_for<I, T>(app: &str, args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory, FromArgMatches};
        let data_dir = format!("{app}-data");
        let command = AppConfig::command()
            .name(app.to_owned())
            .about(format!("{app}: a Fairway app serving commands, views and automations over one event store"))
            .mut_arg("data_dir", |arg| arg.default_value(data_dir))
            .mut_arg("namespace", |arg| arg.default_value(app.to_owned()));
        AppConfig::from_arg_matches(&command.try_get_matches_from(args)?)
    }

    /// The limits on HTTP connections.
    pub fn serve_limits(&self) -> crate::app::server::ServeLimits {
        crate::app::server::ServeLimits {
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs.max(1)),
            max_connections: self.max_connections.max(1),
        }
    }

    /// The idempotency TTL.
    pub fn idempotency_ttl(&self) -> Duration {
        Duration::from_secs(self.idempotency_ttl_secs)
    }
}
