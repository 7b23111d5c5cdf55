//! The `fairway` binary: parses the command line, runs it, reports errors on stderr.

use std::process::ExitCode;

use clap::Parser;
use fairway_cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match fairway_cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is_broken_pipe() => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
