//! Project tasks: `cargo xtask <task>`.
//!
//! - `bench dcb [args]` — builds the DCB benchmark in release and writes `target/bench/dcb.json`
//! - `ci` — runs `.ci/run`
//! - `fdb-check` — checks that the FoundationDB engine compiles (needs libclang)
//! - `fdb-test` — runs the conformance suite against `FAIRWAY_FDB_CLUSTER_FILE`

use std::process::{Command, ExitCode};

fn cargo(args: &[&str]) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.args(args);
    command
}

fn run(mut command: Command) -> ExitCode {
    eprintln!("xtask: running {command:?}");
    match command.status() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("xtask: {command:?} failed with {status}");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("xtask: cannot start {command:?}: {err}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str =
    "usage: cargo xtask <bench dcb [--events N] [--seconds S] [--out FILE] | ci | fdb-check | fdb-test>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest: Vec<&str> = args.iter().skip(2).map(String::as_str).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["bench", "dcb", ..] => {
            let mut command = cargo(&["run", "--release", "-p", "fairway-dcb", "--example", "dcb_bench", "--"]);
            command.args(&rest);
            run(command)
        }
        ["ci"] => {
            let mut command = Command::new("bash");
            command.arg(".ci/run");
            run(command)
        }
        ["fdb-check"] => run(cargo(&["check", "-p", "fairway-dcb", "--features", "fdb", "--all-targets"])),
        ["fdb-test"] => {
            if std::env::var("FAIRWAY_FDB_CLUSTER_FILE").is_err() {
                eprintln!("xtask: set FAIRWAY_FDB_CLUSTER_FILE to a cluster file first");
                return ExitCode::FAILURE;
            }
            run(cargo(&["test", "-p", "fairway-dcb", "--features", "fdb", "--test", "conformance_fdb"]))
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::FAILURE
        }
    }
}
