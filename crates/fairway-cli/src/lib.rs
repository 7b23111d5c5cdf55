//! # fairway-cli
//!
//! The `fairway` command-line tool. It makes apps and slices:
//!
//! | command | what |
//! |---|---|
//! | `fairway new <name> [--path DIR] [--fairway-path DIR \| --git URL [--branch B] \| --fairway-version V]` | a standalone app (a Cargo project of its own) with one example command; see [`scaffold`] |
//! | `fairway add <command\|view\|automation> <name>` | `src/slices/<name>.rs` in the app around the current directory, with a passing test |
//! | `fairway fmt [--check]` | rustfmt on every `.rs` file of the app, slices included |
//!
//! And it looks into an app: it asks a running app over HTTP (`--url`, default
//! `http://127.0.0.1:8080`, or `FAIRWAY_URL`; the admin token from `--token` or
//! `FAIRWAY_ADMIN_TOKEN`, sent as `Authorization: Bearer <token>`), or, with
//! `--data-dir <dir>` (and `--namespace`, default: the app named in the directory's
//! `fairway-app` file, else `app`), opens a stopped app's embedded
//! store directly. The store admits one process at a time: a running app's directory is
//! refused with a hint to use `--url`.
//!
//! | command | what | with `--data-dir` |
//! |---|---|---|
//! | `fairway events [--type T]... [--tag K:V]... [--from P] [--backwards] [--limit N] [--follow] [--json]` | the log as a table or JSON lines (the admin API's event shape), page after page; `--follow` then prints new events as they come | yes |
//! | `fairway views <view> [<key>] [--prefix P] [--json]` | a view's documents (every page), or one | no: views are the app's |
//! | `fairway dead-letters <automation> [replay <position> \| purge]` | an automation's dead letters; re-queue one; delete them all | no |
//! | `fairway progress [--watch] [--json]` | each view's processed/total events; `--watch`: live bars until every view caught up | no |
//! | `fairway stats [--json]` | namespace, head, bytes on disk (and, from a data directory, the number of events) | yes |
//! | `fairway export <file>` | the log at one head as JSON lines (format: [`mod@line`]) | yes: the stored bytes |
//! | `fairway import <file>` | an export file into an empty namespace, in batches | required |
//!
//! Errors go to stderr with a non-zero exit status. Progress bars go to stderr, only when
//! it is a terminal.
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::dbg_macro, clippy::todo, clippy::unimplemented)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod cli;
pub mod client;
pub mod commands;
pub mod error;
pub mod format;
pub mod line;
pub mod local;
pub mod scaffold;

use std::io::{BufWriter, Write};

pub use cli::Cli;
use cli::Command;
use commands::Source;
pub use error::{Error, Result};

/// Runs the command `cli` asks for, printing to standard output.
pub async fn run(cli: Cli) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let result = run_to(&cli, &mut out).await;
    let flushed = out.flush().map_err(Error::Output);
    result.and(flushed)
}

/// Runs the command `cli` asks for, printing to `out`.
pub async fn run_to(cli: &Cli, out: &mut dyn Write) -> Result<()> {
    match &cli.command {
        Command::New(args) => return commands::new::run(args, out),
        Command::Add(args) => return commands::add::run(args, out),
        Command::Fmt(args) => return commands::fmt::run(args),
        _ => {}
    }
    if let Command::Import(args) = &cli.command {
        let Some(dir) = &cli.data_dir else {
            return Err(Error::Usage(
                "`fairway import` writes into a stopped app's store: pass --data-dir (and --namespace)".into(),
            ));
        };
        return commands::import::run(dir, &cli.namespace_in(dir), args).await;
    }
    let source = Source::of(cli)?;
    let result = match &cli.command {
        Command::Events(args) => commands::events::run(&source, args, out).await,
        Command::Views(args) => commands::views::run(&source, args, out).await,
        Command::DeadLetters(args) => commands::dead_letters::run(&source, args, out).await,
        Command::Progress(args) => commands::progress::run(&source, args, out).await,
        Command::Stats(args) => commands::stats::run(&source, args, out).await,
        Command::Export(args) => commands::export::run(&source, args).await,
        Command::Import(_) | Command::New(_) | Command::Add(_) | Command::Fmt(_) => unreachable!("handled above"),
    };
    source.close();
    result
}
