//! Project tasks: `cargo xtask <task>`.
//!
//! - `bench dcb [args]` — builds the DCB benchmark in release and writes `target/bench/dcb.json`
//!   (with `--fdb-cluster-file <file>`, also the append figures on that FoundationDB cluster)
//! - `bench app [args]` — commands through HTTP (bounded and growing boundaries) beside the
//!   store's conditional appends, a view's live lag and projector catch-up, in release;
//!   writes `target/bench/app.json` (with `--fdb-cluster-file <file>`, every row on that
//!   FoundationDB cluster instead, into `target/bench/app-fdb.json`)
//! - `bench instances [args]` — commands/s with one, two and three courses processes on the
//!   FoundationDB cluster `FAIRWAY_FDB_CLUSTER_FILE` names, beside one on the embedded store;
//!   writes `target/bench/instances.json`
//! - `fmt [--check]` — runs rustfmt on every tracked `.rs` file, also those `cargo fmt`
//!   cannot see (slices included with `fairway::slices!()`)
//! - `ci` — runs `.ci/run`
//! - `fdb-check` — checks that the FoundationDB engine compiles (needs libclang)
//! - `fdb-test` — runs the FoundationDB suites (`.ci/fdb_suites.sh`): the store's, and the
//!   façade's and the courses example's whole test suites, with client buggify off and
//!   then on, on the cluster `FAIRWAY_FDB_CLUSTER_FILE` names or on a local one started
//!   from `../shared/fdb/`; a case that skips itself fails

mod format;

use std::path::PathBuf;
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

const USAGE: &str = "usage: cargo xtask <bench dcb [--events N] [--seconds S] [--out FILE] [--fdb-cluster-file F] \
| bench app [--seconds S | --requests N] [--students N] [--events N] [--out FILE] [--fdb-cluster-file F] | bench instances [--clients N] [--seconds S] | fmt [--check] | ci | fdb-check | fdb-test>";

/// Runs the benchmark `example` of `package` in release with `args`; with the `fdb` feature
/// when they name a FoundationDB cluster (`--fdb-cluster-file`), which the engine needs.
fn run_bench(package: &str, example: &str, args: &[&str]) -> ExitCode {
    let features: &[&str] = if args.contains(&"--fdb-cluster-file") { &["--features", "fdb"] } else { &[] };
    let mut command = cargo(&[&["run", "--release", "-p", package], features, &["--example", example, "--"]].concat());
    command.args(args);
    run(command)
}

/// The workspace root (where `cargo xtask` runs from).
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

/// Formats (or checks) every `.rs` file of the workspace.
fn format(check: bool) -> ExitCode {
    let root = workspace_root();
    let files = match format::rust_files(&root) {
        Ok(files) => files,
        Err(err) => {
            eprintln!("xtask: cannot list the .rs files: {err}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("xtask: rustfmt{} on {} files", if check { " --check" } else { "" }, files.len());
    let mut clean = true;
    for mut command in format::rustfmt_commands(&root, &files, check) {
        match command.status() {
            Ok(status) => clean &= status.success(),
            Err(err) => {
                eprintln!("xtask: cannot start rustfmt: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    match (clean, check) {
        (true, _) => ExitCode::SUCCESS,
        (false, true) => {
            eprintln!("xtask: some files are not formatted; `cargo xtask fmt` formats them");
            ExitCode::FAILURE
        }
        (false, false) => ExitCode::FAILURE,
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest: Vec<&str> = args.iter().skip(2).map(String::as_str).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["bench", "dcb", ..] => run_bench("fairway-dcb", "dcb_bench", &rest),
        ["bench", "app", ..] => run_bench("courses", "app_bench", &rest),
        ["bench", "instances", ..] => {
            let build = cargo(&["build", "--release", "-p", "courses", "--features", "fdb", "--bin", "courses"]);
            if run(build) != ExitCode::SUCCESS {
                return ExitCode::FAILURE;
            }
            let mut command = cargo(&["run", "--release", "-p", "courses", "--example", "instances_bench", "--"]);
            command.args(&rest);
            run(command)
        }
        ["fmt", options @ ..] => match options {
            [] => format(false),
            ["--check"] => format(true),
            _ => {
                eprintln!("{USAGE}");
                ExitCode::FAILURE
            }
        },
        ["ci"] => {
            let mut command = Command::new("bash");
            command.arg(".ci/run");
            run(command)
        }
        ["fdb-check"] => run(cargo(&["check", "-p", "fairway-dcb", "--features", "fdb", "--all-targets"])),
        ["fdb-test"] => {
            let mut command = Command::new("bash");
            command.arg(workspace_root().join(".ci/fdb_suites.sh"));
            run(command)
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::FAILURE
        }
    }
}
