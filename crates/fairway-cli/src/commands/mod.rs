//! One module per command. Those looking into an app take where to read ([`Source`]) and
//! where to print; `new`, `add` and `fmt` work on files.

pub mod add;
pub mod dead_letters;
pub mod events;
pub mod export;
pub mod fmt;
pub mod import;
pub mod new;
pub mod progress;
pub mod stats;
pub mod views;

use crate::cli::Cli;
use crate::client::Client;
use crate::error::Result;
use crate::local::Local;

/// Where a command reads: the running app, or a stopped app's store.
#[derive(Debug)]
pub enum Source {
    /// The running app, over HTTP.
    Http(Client),
    /// A stopped app's store, opened directly.
    Local(Local),
}

impl Source {
    /// The source of `cli`'s command: the store in `--data-dir`, else the app at `--url`.
    pub fn of(cli: &Cli) -> Result<Self> {
        match &cli.data_dir {
            Some(dir) => Ok(Source::Local(Local::open_existing(dir, &cli.namespace_in(dir))?)),
            None => Ok(Source::Http(Client::new(&cli.url, cli.token.clone())?.with_page_size(cli.page_size))),
        }
    }

    /// Releases the store, if one is open.
    pub fn close(self) {
        if let Source::Local(local) = self {
            local.close();
        }
    }
}
