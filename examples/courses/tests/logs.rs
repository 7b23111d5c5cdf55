//! `--log-format json`: the app binary writes one JSON object per line, and the lines of a
//! slice's work carry its name in their span.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn json_logs_are_one_object_per_line_naming_the_slice() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = Command::new(env!("CARGO_BIN_EXE_courses"))
        .args(["--log-format", "json", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the store is open (its space reserve exists), the projectors log when they catch
    // up; give them a moment, then stop the app.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.path().join("fairway.reserve").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    interrupt(&app);
    let mut stderr = String::new();
    app.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(app.wait().unwrap().success(), "{stderr}");

    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    assert!(lines.iter().any(|l| l["fields"]["message"] == "serving"), "{stderr}");
    let projector = lines.iter().find(|l| l["span"]["name"] == "projector" && l["span"]["view"] == "courses");
    assert!(projector.is_some(), "a projector's lines name its view: {stderr}");
}

/// Asks the app to stop as Ctrl-C would.
fn interrupt(app: &std::process::Child) {
    let status = Command::new("kill").args(["-INT", &app.id().to_string()]).status().unwrap();
    assert!(status.success());
}
