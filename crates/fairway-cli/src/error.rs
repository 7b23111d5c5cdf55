//! Everything the tool can fail with, each worded for the person at the terminal.

use std::path::PathBuf;

/// Result type of the tool.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failure of a `fairway` command. `main` prints it on stderr and exits non-zero.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Nothing listens at the app's URL.
    #[error("no app answers at {url}: start it, or pass --data-dir to read a stopped app's store")]
    AppDown {
        /// The app's base URL.
        url: String,
    },
    /// The data directory is held by a running app (the store allows one process at a time).
    #[error("{} is in use by a running app: use --url", .dir.display())]
    Locked {
        /// The data directory.
        dir: PathBuf,
    },
    /// `--data-dir` names a directory without a store (reads never create one).
    #[error("{} holds no Fairway store (no {file} in it): pass the app's --data-dir", .dir.display())]
    NoStore {
        /// The directory given.
        dir: PathBuf,
        /// The database file that is missing.
        file: &'static str,
    },
    /// The app wants an admin token (401) or refused the one given (403).
    #[error(
        "the app refused the request ({status}: {message}): {}",
        if *.status == 401 {
            "set FAIRWAY_ADMIN_TOKEN (or pass --token) to the app's admin token"
        } else {
            "FAIRWAY_ADMIN_TOKEN (or --token) is not the app's admin token"
        }
    )]
    Unauthorized {
        /// 401 (no token) or 403 (another token).
        status: u16,
        /// The app's message.
        message: String,
    },
    /// The app answered 404: an unknown view, automation, document or dead letter.
    #[error("{message}")]
    NotFound {
        /// The app's message, e.g. `unknown view "nope"`.
        message: String,
    },
    /// The app answered another error status.
    #[error("the app answered {status}: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The app's message.
        message: String,
    },
    /// The request failed on the way (other than nothing listening).
    #[error("request to {url} failed: {source}")]
    Http {
        /// The request's URL.
        url: String,
        /// Why.
        source: reqwest::Error,
    },
    /// The app answered something the tool does not understand.
    #[error("unexpected answer from {url}: {why}")]
    Protocol {
        /// The request's URL.
        url: String,
        /// What was wrong with it.
        why: String,
    },
    /// The app ended the followed log with an error.
    #[error("following the log failed: {0}")]
    FollowFailed(String),
    /// The event store failed.
    #[error("store: {0}")]
    Store(#[from] fairway_dcb::Error),
    /// A file could not be read or written.
    #[error("{}: {source}", .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line of an import file is not an exported event.
    #[error("{}, line {line}: {why}", .path.display())]
    BadLine {
        /// The file.
        path: PathBuf,
        /// The line number (from 1).
        line: usize,
        /// What is wrong with it.
        why: String,
    },
    /// `import` refuses a namespace that already holds events.
    #[error(
        "namespace {namespace:?} in {} already holds events (head {head}): import needs an empty \
         namespace (pick another --namespace or a fresh --data-dir)",
        .dir.display()
    )]
    NotEmpty {
        /// The data directory.
        dir: PathBuf,
        /// The namespace.
        namespace: String,
        /// Its last position.
        head: String,
    },
    /// An append of `import` failed after some events were imported.
    #[error(
        "import stopped at the batch ending on line {line}, after {imported} events: {source}; {}",
        if *.imported == 0 {
            "nothing was imported: the namespace is still empty"
        } else {
            "the namespace now holds those events: import again into a fresh one"
        }
    )]
    ImportStopped {
        /// Events appended before the failure.
        imported: u64,
        /// The last line of the failed batch.
        line: usize,
        /// Why the append failed.
        source: fairway_dcb::Error,
    },
    /// Reading a stopped app's views or queues failed.
    #[error("reading the store's views and queues: {0}")]
    State(String),
    /// The command cannot run as asked (e.g. needs the running app, or `--data-dir`).
    #[error("{0}")]
    Usage(String),
    /// `fairway new` or `fairway add` wrote nothing.
    #[error(transparent)]
    Scaffold(#[from] crate::scaffold::ScaffoldError),
    /// A program the command runs (rustfmt) could not be started.
    #[error("cannot run {program}: {source} (install it with `rustup component add {program}`)")]
    Tool {
        /// The program.
        program: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// `fairway fmt --check` found files that are not formatted.
    #[error("some files are not formatted (rustfmt listed them above): `fairway fmt` formats them")]
    Unformatted,
    /// rustfmt failed (e.g. a file does not parse).
    #[error("rustfmt failed ({0}); see its message above")]
    FormatFailed(std::process::ExitStatus),
    /// Writing to standard output failed.
    #[error("writing the output: {0}")]
    Output(std::io::Error),
}

impl From<fairway_core::ViewError> for Error {
    fn from(err: fairway_core::ViewError) -> Self {
        Error::State(err.to_string())
    }
}

impl From<fairway_core::AutomationError> for Error {
    fn from(err: fairway_core::AutomationError) -> Self {
        Error::State(err.to_string())
    }
}

impl Error {
    /// Whether the error is standard output closing early (e.g. `fairway events | head`):
    /// not a failure worth reporting.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Output(err) if err.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

impl From<std::io::Error> for Error {
    /// An I/O error on standard output (file errors carry their path).
    fn from(err: std::io::Error) -> Self {
        Error::Output(err)
    }
}
