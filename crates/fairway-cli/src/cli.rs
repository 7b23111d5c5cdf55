//! The command line: global options and one subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use fairway_dcb::{Position, Tag};

/// The default URL of a running app.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// `fairway`: make an app and its slices; look into an app, over HTTP while it runs or in
/// its store while it is stopped.
#[derive(Debug, Parser)]
#[command(
    name = "fairway",
    version,
    about = "Make a Fairway app and its slices; look into an app: its event log, views, dead letters, progress \
             and stats; export and import the log",
    long_about = "Make a Fairway app (`fairway new`) and its slices (`fairway add`), format it (`fairway fmt`); \
                  look into an app: its event log, views, dead letters, progress and stats; export and import \
                  the log.\n\nBy default every other command asks the running app over HTTP (--url). With \
                  --data-dir, every command reads a STOPPED app's embedded store directly (views as stored, \
                  checkpoints, queues and dead letters included), and `import` writes into one (the store \
                  admits one process at a time). Following the log and watching progress need the running \
                  app."
)]
pub struct Cli {
    /// Where the running app serves.
    #[arg(long, env = "FAIRWAY_URL", default_value = DEFAULT_URL, global = true)]
    pub url: String,
    /// The app's admin token, sent as `Authorization: Bearer <token>` (admin routes: the
    /// log, stats, dead letters).
    #[arg(long, env = "FAIRWAY_ADMIN_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Read (or, for `import`, write) the embedded store in this directory instead of asking
    /// the app: the app must be stopped.
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// The app's namespace inside the store (with --data-dir; default: the app named in the
    /// directory's `fairway-app` file, else `app`).
    #[arg(long, env = "FAIRWAY_NAMESPACE", global = true)]
    pub namespace: Option<String>,
    /// Events or documents asked for per request (the app's limits still apply; a testing
    /// aid).
    #[arg(long, global = true, hide = true, default_value_t = crate::client::EVENT_PAGE,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub page_size: u64,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The namespace to open in `dir`: `--namespace`, else the app that owns the directory,
    /// else `app`.
    pub fn namespace_in(&self, dir: &std::path::Path) -> String {
        self.namespace.clone().or_else(|| fairway_core::app::data_dir::owner(dir)).unwrap_or_else(|| "app".to_owned())
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make a new app: a Cargo project of its own that builds, tests and runs at once, with
    /// one example command.
    New(NewArgs),
    /// Add a slice to the app around the current directory: `src/slices/<name>.rs`, with a
    /// test that passes as written.
    Add(AddArgs),
    /// Format every Rust file of the app around the current directory, the slices included
    /// (which `cargo fmt` does not reach).
    Fmt(FmtArgs),
    /// List events of the log (a table, or JSON lines with --json), optionally following it.
    Events(EventsArgs),
    /// List a view's documents, or show one.
    Views(ViewsArgs),
    /// List an automation's dead letters, replay one, or purge them all.
    DeadLetters(DeadLettersArgs),
    /// Show how far each view has processed the log.
    Progress(ProgressArgs),
    /// Show the store's head, size and namespace.
    Stats(StatsArgs),
    /// Write the whole log, at one head, to a file of JSON lines (see the crate docs for the
    /// line format).
    Export(ExportArgs),
    /// Append the events of an export file to an empty namespace of a stopped app's store
    /// (needs --data-dir).
    Import(ImportArgs),
}

/// `fairway new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The app's name (`shop`, `course-shop`): its package, data directory (`./<name>-data`)
    /// and namespace.
    pub name: String,
    /// Where to write it (default: `./<name>`); must not exist or be empty.
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Take `fairway` from this checkout's `crates/fairway` directory (default: the checkout
    /// this tool was built from, if it is still there, else this tool's version).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["git", "fairway_version"])]
    pub fairway_path: Option<PathBuf>,
    /// Take `fairway` from this git repository.
    #[arg(long, value_name = "URL", conflicts_with = "fairway_version")]
    pub git: Option<String>,
    /// The branch of --git.
    #[arg(long, requires = "git")]
    pub branch: Option<String>,
    /// Take this published version of `fairway`.
    #[arg(long, value_name = "VERSION")]
    pub fairway_version: Option<String>,
}

/// `fairway add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// What kind of slice.
    #[arg(value_enum)]
    pub kind: crate::scaffold::Kind,
    /// Its name (`take-note`): the route, the file (`take_note.rs`) and the type (`TakeNote`).
    pub name: String,
}

/// `fairway fmt`.
#[derive(Debug, Args)]
pub struct FmtArgs {
    /// Only check: list the files that are not formatted, and fail if there are any.
    #[arg(long)]
    pub check: bool,
}

/// `fairway events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only events of this type (repeatable: any of them).
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
    /// Only events carrying this tag (repeatable: all of them).
    #[arg(long = "tag", value_name = "KEY:VALUE")]
    pub tags: Vec<Tag>,
    /// Start at this position (inclusive).
    #[arg(long, value_name = "POSITION")]
    pub from: Option<Position>,
    /// Newest first.
    #[arg(long, conflicts_with = "follow")]
    pub backwards: bool,
    /// At most this many events (default: all).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// After listing, keep printing the events appended since (until interrupted);
    /// `--limit` bounds the listing only.
    #[arg(long)]
    pub follow: bool,
    /// One JSON object per line (the admin API's event shape) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `fairway views`.
#[derive(Debug, Args)]
pub struct ViewsArgs {
    /// The view's name.
    pub view: String,
    /// Show only this document.
    pub key: Option<String>,
    /// Only documents whose key starts with this.
    #[arg(long, conflicts_with = "key")]
    pub prefix: Option<String>,
    /// JSON instead of a table: one `{"key","doc"}` object per line, or the document.
    #[arg(long)]
    pub json: bool,
}

/// `fairway dead-letters`.
#[derive(Debug, Args)]
pub struct DeadLettersArgs {
    /// The automation's name.
    pub automation: String,
    /// What to do with them (default: list them).
    #[command(subcommand)]
    pub action: Option<DeadLetterAction>,
    /// The list as JSON lines.
    #[arg(long)]
    pub json: bool,
}

/// What to do with dead letters.
#[derive(Debug, Subcommand)]
pub enum DeadLetterAction {
    /// Re-queue the dead letter of the event at this position.
    Replay {
        /// The triggering event's position.
        position: Position,
    },
    /// Delete every dead letter of the automation.
    Purge,
}

/// `fairway progress`.
#[derive(Debug, Args)]
pub struct ProgressArgs {
    /// Show live progress bars until every view has caught up.
    #[arg(long, conflicts_with = "json")]
    pub watch: bool,
    /// The app's answer as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `fairway stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// As one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `fairway export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The file to write (`-`: standard output). It is written beside, then renamed into
    /// place, so an interrupted export never leaves a file that looks complete.
    pub file: PathBuf,
}

/// `fairway import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The export file to read (`-`: standard input).
    pub file: PathBuf,
}
