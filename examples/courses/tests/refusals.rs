//! The app binary refuses to start where it would otherwise fail silently or share what it
//! must not: a taken port, a data directory held by another process, another app's store,
//! a directory of other files. Each refusal names the address or the directory, and
//! nothing is written. The data directory cases run the binary on the embedded store
//! whatever engine the suite runs on.

mod child;
mod store;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use store::TestStore;

/// The binary with `args` on the embedded store in `data_dir`.
fn courses(args: &[&str], data_dir: &Path) -> Command {
    let mut command = child::command(&TestStore::embedded(data_dir));
    command.args(args);
    command
}

/// Runs the app to completion (it must refuse, so it exits at once); returns its stderr.
fn refused(mut command: Command) -> String {
    let Output { status, stderr, .. } = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    assert_eq!(status.code(), Some(1), "the app must refuse to start: {stderr}");
    stderr
}

#[test]
fn a_taken_port_is_an_error_naming_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let stderr = refused(courses(&["--listen", &address], dir.path()));
    assert!(stderr.contains(&format!("cannot listen on {address}")), "{stderr}");
    assert!(stderr.contains("--listen"), "says what to do: {stderr}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "no store was made");
}

#[test]
fn another_apps_store_and_a_directory_of_other_files_are_refused() {
    let other_app = tempfile::tempdir().unwrap();
    std::fs::write(other_app.path().join("fairway-app"), "notes\n").unwrap();
    let stderr = refused(courses(&["--listen", "127.0.0.1:0"], other_app.path()));
    assert!(stderr.contains(&other_app.path().display().to_string()), "names the directory: {stderr}");
    assert!(stderr.contains("holds the store of the app \"notes\""), "{stderr}");
    assert!(!other_app.path().join("fairway.redb").exists(), "nothing was opened");

    let documents = tempfile::tempdir().unwrap();
    std::fs::write(documents.path().join("thesis.txt"), "mine").unwrap();
    let stderr = refused(courses(&["--listen", "127.0.0.1:0"], documents.path()));
    assert!(stderr.contains(&format!("{} is not a Fairway data directory", documents.path().display())), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(documents.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["thesis.txt"], "the directory is left as it was");
}

#[test]
fn a_second_instance_on_one_data_directory_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = courses(&["--listen", "127.0.0.1:0"], dir.path()).spawn().unwrap();
    // The first instance owns the directory once its owner file and database exist.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(dir.path().join("fairway-app").exists() && dir.path().join("fairway.journal").exists()) {
        assert!(Instant::now() < deadline, "the first instance did not open its store");
        std::thread::sleep(Duration::from_millis(50));
    }
    let stderr = refused(courses(&["--listen", "127.0.0.1:0"], dir.path()));
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(
        stderr.contains(&format!("the data directory {} is in use by another process", dir.path().display())),
        "{stderr}"
    );
}

#[test]
fn the_defaults_are_the_apps_own() {
    let help = Command::new(env!("CARGO_BIN_EXE_courses")).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("[default: courses-data]"), "{help}");
    assert!(help.contains("[default: courses]"), "{help}");
}
