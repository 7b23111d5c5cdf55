//! `cargo xtask new` on a copy of the workspace: the only change is one new file per slice
//! (and, once its tests ran, its insta snapshots beside it); the app discovers the new
//! slices at start, its *whole* test suite stays green, and the new slices answer over HTTP.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a workspace copy needs to build.
const COPIED: [&str; 8] =
    ["Cargo.toml", "Cargo.lock", "rust-toolchain.toml", "rustfmt.toml", ".cargo", "crates", "examples", "xtask"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn copy(from: &Path, to: &Path) {
    if from.is_dir() {
        if from.file_name().is_some_and(|n| n == "target" || n == "fairway-data") {
            return;
        }
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy(&entry.path(), &to.join(entry.file_name()));
        }
    } else if from.exists() {
        std::fs::copy(from, to).unwrap();
    }
}

/// Every file under `root` with its content.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(path.strip_prefix(root).unwrap().to_path_buf(), std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Cargo in the copy, building into a target directory of its own.
///
/// The copy's workspace crates get the same artifact names as the real ones, so sharing
/// the workspace's `target/debug` would overwrite libraries the other tests (and doc
/// tests) of this run link against. The dedicated directory survives between runs, so
/// only the first run pays for building the dependencies.
fn cargo(copy: &Path) -> Command {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"));
    let mut command = Command::new(env!("CARGO"));
    command.current_dir(copy).env("CARGO_TARGET_DIR", target.join("scaffold-check"));
    command
}

#[test]
fn scaffolding_only_adds_files_and_the_app_discovers_the_new_slices() {
    let dir = tempfile::tempdir().unwrap();
    let copy_root = dir.path().join("workspace");
    std::fs::create_dir_all(&copy_root).unwrap();
    for item in COPIED {
        copy(&workspace().join(item), &copy_root.join(item));
    }
    let app = copy_root.join("examples/courses");
    let before = tree(&copy_root);

    for (kind, name) in [("command", "notify-teacher"), ("view", "event-counts"), ("automation", "welcome-student")] {
        let out = run(Command::new(env!("CARGO_BIN_EXE_xtask")).args(["new", kind, name, "--app"]).arg(&app));
        assert!(out.contains("created"), "{out}");
    }
    let refused = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["new", "view", "event-counts", "--app"])
        .arg(&app)
        .output()
        .unwrap();
    assert!(!refused.status.success(), "an existing slice is never overwritten");

    let after = tree(&copy_root);
    let added: Vec<&PathBuf> = after.keys().filter(|path| !before.contains_key(*path)).collect();
    let expected: Vec<PathBuf> = ["event_counts.rs", "notify_teacher.rs", "welcome_student.rs"]
        .iter()
        .map(|file| Path::new("examples/courses/src/slices").join(file))
        .collect();
    assert_eq!(added, expected.iter().collect::<Vec<_>>(), "one new file per slice");
    let generated: Vec<PathBuf> = expected.iter().map(|file| copy_root.join(file)).collect();
    run(Command::new("rustfmt").args(["--edition", "2024", "--check"]).args(&generated));
    for (path, content) in &before {
        assert_eq!(after.get(path), Some(content), "{} changed", path.display());
    }

    let listed = run(cargo(&copy_root).args(["run", "--offline", "--quiet", "-p", "courses", "--", "--list-slices"]));
    let slices: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let names = |kind: &str| -> Vec<String> {
        slices[kind].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_owned()).collect()
    };
    assert!(names("commands").contains(&"notify-teacher".to_owned()), "{slices}");
    assert!(names("commands").contains(&"subscribe-student".to_owned()), "the app's own slices are still there");
    assert!(names("views").contains(&"event-counts".to_owned()), "{slices}");
    assert!(names("automations").contains(&"welcome-student".to_owned()), "{slices}");

    // The new slices' snapshot tests record their first snapshots (as a user accepts them
    // with `INSTA_UPDATE=always` or `cargo insta accept`)...
    run(cargo(&copy_root).args(["test", "--offline", "-p", "courses", "--lib"]).env("INSTA_UPDATE", "always"));
    let snapshots = copy_root.join("examples/courses/src/slices/snapshots");
    let recorded = tree(&copy_root);
    let new_files: Vec<&PathBuf> = recorded.keys().filter(|path| !after.contains_key(*path)).collect();
    assert_eq!(new_files.len(), 3, "one snapshot per generated test: {new_files:?}");
    for file in &new_files {
        assert!(copy_root.join(file).starts_with(&snapshots), "{} is beside the slices", file.display());
    }
    let reaction = &recorded[&PathBuf::from(
        "examples/courses/src/slices/snapshots/courses__slices__welcome_student__tests__handles_a_request.snap",
    )];
    assert!(String::from_utf8_lossy(reaction).contains("result: handled"), "{}", String::from_utf8_lossy(reaction));

    // ...then the app's whole test suite (HTTP, races, crash tests included) runs green as
    // CI runs it, with snapshots compared, never written.
    let suite =
        run(cargo(&copy_root).args(["test", "--offline", "-p", "courses"]).env("INSTA_UPDATE", "no").env("CI", "true"));
    for test in [
        "notify_teacher::tests::records_once",
        "event_counts::tests::counts_notes_by_id",
        "welcome_student::tests::handles_a_request",
        "the_course_app_over_http",
    ] {
        assert!(suite.contains(&format!("{test} ... ok")), "{test} did not pass:\n{suite}");
    }
    let results: Vec<&str> = suite.lines().filter(|line| line.starts_with("test result:")).collect();
    assert!(results.len() >= 5 && results.iter().all(|r| r.starts_with("test result: ok.")), "{suite}");

    serve_and_ask(&copy_root);
}

/// Runs the copy's app binary and asks the new slices over HTTP.
fn serve_and_ask(copy_root: &Path) {
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let _app = KillOnDrop(
        cargo(copy_root)
            .args(["run", "--offline", "--quiet", "-p", "courses", "--", "--listen", &listen, "--data-dir"])
            .arg(data.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while http(&listen, "GET", "/health", "").is_none() {
        assert!(std::time::Instant::now() < deadline, "the app serves within 120 s");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let answers = [
        http(&listen, "POST", "/commands/notify-teacher", r#"{"id": "t1"}"#),
        http(&listen, "POST", "/commands/notify-teacher", r#"{"id": "t1"}"#),
        http(&listen, "POST", "/commands/notify-teacher", r#"{"id": ""}"#),
        http(&listen, "GET", "/views/event-counts", ""),
        http(&listen, "GET", "/automations/welcome-student/dead-letters", ""),
    ];
    let statuses: Vec<u16> = answers.iter().map(|a| a.as_ref().map_or(0, |(status, _)| *status)).collect();
    assert_eq!(statuses, [200, 422, 400, 200, 200], "{answers:?}");
    let bad_id = &answers[2].as_ref().unwrap().1;
    assert!(bad_id.contains("id: must not be empty"), "a bad id is refused naming the field: {bad_id}");
}

/// A child process killed when the test ends, passed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request; the status and body, or `None` when nothing answers.
fn http(address: &str, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body).to_owned();
    Some((status, body))
}
