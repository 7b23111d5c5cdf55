//! One module per command. Each takes where to read ([`Source`]) and where to print.

pub mod dead_letters;
pub mod events;
pub mod export;
pub mod import;
pub mod progress;
pub mod stats;
pub mod views;

use crate::cli::{Cli, Command};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::local::Local;

/// Where a command reads: the running app, or a stopped app's store.
#[derive(Debug)]
pub enum Source {
    /// The running app, over HTTP.
    Http(Client),
    /// A stopped app's store, opened directly.
    Local(Local),
}

/// The commands that only the running app can answer, and why.
pub fn app_only(command: &Command) -> Option<(&'static str, &'static str)> {
    match command {
        Command::Views(_) => Some(("views", "views are the app's read models, built by its slices")),
        Command::DeadLetters(_) => Some(("dead-letters", "its automations' queues live in it")),
        Command::Progress(_) => Some(("progress", "its projectors build the views while it runs")),
        _ => None,
    }
}

fn needs_the_app(command: &str, why: &str) -> Error {
    Error::Usage(format!("`fairway {command}` asks the running app ({why}): use --url, not --data-dir"))
}

impl Source {
    /// The source of `cli`'s command: the store in `--data-dir`, else the app at `--url`.
    pub fn of(cli: &Cli) -> Result<Self> {
        match (&cli.data_dir, app_only(&cli.command)) {
            (Some(_), Some((command, why))) => Err(needs_the_app(command, why)),
            (Some(dir), None) => Ok(Source::Local(Local::open_existing(dir, &cli.namespace)?)),
            (None, _) => Ok(Source::Http(Client::new(&cli.url, cli.token.clone())?.with_page_size(cli.page_size))),
        }
    }

    /// The client, for the commands that only the running app can answer (`command`).
    pub fn http(&self, command: &str) -> Result<&Client> {
        match self {
            Source::Http(client) => Ok(client),
            Source::Local(_) => Err(needs_the_app(command, "the data directory holds its events only")),
        }
    }

    /// Releases the store, if one is open.
    pub fn close(self) {
        if let Source::Local(local) = self {
            local.close();
        }
    }
}
