//! `--log-format json`: the app binary writes one JSON object per line, and the lines of a
//! slice's work carry its name in their spans, from the HTTP request down. The app runs on
//! the embedded store whatever engine the suite runs on.

mod child;
mod store;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use store::TestStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_naming_the_slice() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = child::command(&TestStore::embedded(dir.path()))
        .args(["--log-format", "json", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info,fairway_core=debug")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, received) = mpsc::channel::<String>();
    let stderr = BufReader::new(app.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });

    // The address the app serves on, from its `serving` line.
    let mut seen: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let address = loop {
        let line = received.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("a serving line");
        let parsed: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        seen.push(line);
        if parsed["fields"]["message"] == "serving" {
            break parsed["fields"]["address"].as_str().unwrap().to_owned();
        }
    };
    let answer = reqwest::Client::new()
        .post(format!("http://{address}/commands/define-course"))
        .json(&serde_json::json!({ "course_id": "logs", "capacity": 3 }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    // Give the projectors a moment to log that they caught up, then stop the app.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    interrupt(&app);
    assert!(app.wait().unwrap().success(), "{}", seen.join("\n"));
    reader.join().unwrap();
    seen.extend(received.try_iter());

    let lines: Vec<Value> = seen
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let all = seen.join("\n");
    let projector = lines.iter().find(|l| l["span"]["name"] == "projector" && l["span"]["slice"] == "courses");
    assert!(projector.is_some(), "a projector's lines name its view: {all}");

    // The command's line sits in the request's span and the command's, both naming it.
    let appended = lines.iter().find(|l| l["fields"]["message"] == "command appended").expect(&all);
    let spans = appended["spans"].as_array().expect("the span list");
    let named = |name: &str| spans.iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("{name}: {appended}"));
    assert_eq!(named("request")["slice"], "define-course", "{appended}");
    assert_eq!(named("request")["route"], "/commands/{name}", "{appended}");
    assert_eq!(named("command")["slice"], "define-course", "{appended}");
}

/// Asks the app to stop as Ctrl-C would.
fn interrupt(app: &std::process::Child) {
    let status = Command::new("kill").args(["-INT", &app.id().to_string()]).status().unwrap();
    assert!(status.success());
}
