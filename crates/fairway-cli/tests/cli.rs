//! The `fairway` binary against a real app started in-process (`TestApp`): the log as a
//! table and as JSON lines with filters and paging, views, dead letters, progress, stats,
//! export from the app then import into a data directory and export again, `--follow`, and
//! the errors a person meets (app down, a running app's directory, a wrong token, unknown
//! names, a non-empty namespace, a bad import file).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fairway::prelude::*;
use fairway::testkit::TestApp;
use fairway::{AppConfig, Id, QueueSettings};
use serde_json::{Value, json};

#[derive(Debug, Serialize, Deserialize, Event)]
struct Noted {
    #[tag("note")]
    id: Id,
    #[tag("author")]
    author: Id,
    text: String,
}

#[derive(Debug, Serialize, Deserialize, Event)]
struct Pinged {
    #[tag("note")]
    id: Id,
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[derive(Debug, Deserialize)]
struct TakeNote {
    id: Id,
    author: Id,
    text: String,
}

#[command]
impl Command for TakeNote {
    const NAME: &'static str = "take-note";
    type Events = Noted;
    type State = ();
    type Error = Never;

    fn query(&self) -> Query {
        Noted::tagged([self.id.tag("note")]).into()
    }

    fn evolve(&self, _: &mut (), _: Noted) {}

    fn decide(&self, _: &()) -> Result<Decision, Never> {
        Ok(Decision::event(Noted { id: self.id.clone(), author: self.author.clone(), text: self.text.clone() }))
    }
}

#[derive(Debug, Deserialize)]
struct Ping {
    id: Id,
}

#[command]
impl Command for Ping {
    const NAME: &'static str = "ping";
    type Events = Pinged;
    type State = ();
    type Error = Never;

    fn query(&self) -> Query {
        Pinged::tagged([self.id.tag("note")]).into()
    }

    fn evolve(&self, _: &mut (), _: Pinged) {}

    fn decide(&self, _: &()) -> Result<Decision, Never> {
        Ok(Decision::event(Pinged { id: self.id.clone() }))
    }
}

#[derive(Default)]
struct Notes;

#[view]
impl View for Notes {
    const NAME: &'static str = "notes";
    const VERSION: u32 = 1;
    type Events = Noted;

    async fn apply(&self, noted: Noted, tx: &ViewTx) -> Result<(), ViewError> {
        tx.update(&noted.id, |text: &mut String| *text = noted.text).await
    }
}

/// Fails every ping at once, so each one ends in the dead-letter queue.
#[derive(Default)]
struct Mailer;

#[automation]
impl Automation for Mailer {
    const NAME: &'static str = "mailer";
    type Events = Pinged;

    async fn handle(&self, pinged: Pinged, _: &AutomationContext) -> Result<(), AutomationError> {
        Err(AutomationError::msg(format!("mail server down for {}", pinged.id)))
    }

    fn settings(&self) -> QueueSettings {
        QueueSettings { max_attempts: 1, retry_backoff: Duration::from_millis(10), ..QueueSettings::default() }
    }
}

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Stdout, after checking the run succeeded.
    fn ok(&self) -> &str {
        assert!(self.success, "fairway failed: {}\nstdout: {}", self.stderr, self.stdout);
        &self.stdout
    }

    /// Stderr, after checking the run failed.
    fn failed(&self) -> &str {
        assert!(!self.success, "fairway should have failed; stdout: {}", self.stdout);
        assert!(self.stderr.starts_with("error: "), "{}", self.stderr);
        &self.stderr
    }

    /// Stdout as JSON lines.
    fn json_lines(&self) -> Vec<Value> {
        self.ok().lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))).collect()
    }
}

/// The binary, without the caller's `FAIRWAY_*` variables.
fn process(args: &[&str], env: &[(&str, &str)]) -> Process {
    let mut process = Process::new(env!("CARGO_BIN_EXE_fairway"));
    process.args(args);
    for name in ["FAIRWAY_URL", "FAIRWAY_ADMIN_TOKEN", "FAIRWAY_NAMESPACE"] {
        process.env_remove(name);
    }
    process.envs(env.iter().copied());
    process
}

/// Runs the binary with `args` (off the runtime's threads) and waits for it.
async fn fairway_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut process = process(args, env);
    let output = tokio::task::spawn_blocking(move || process.output().expect("the binary runs")).await.unwrap();
    Run {
        success: output.status.success(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

async fn fairway(args: &[&str]) -> Run {
    fairway_env(args, &[]).await
}

/// Runs the binary against `app` (`--url` first, then `args`).
async fn against(app: &TestApp, args: &[&str]) -> Run {
    let url = app.url("");
    let mut all = vec!["--url", url.as_str()];
    all.extend_from_slice(args);
    fairway(&all).await
}

/// Runs the binary on a data directory (`--data-dir` first, then `args`).
async fn on_dir(dir: &Path, args: &[&str]) -> Run {
    let dir = dir.to_str().unwrap();
    let mut all = vec!["--data-dir", dir];
    all.extend_from_slice(args);
    fairway(&all).await
}

/// Runs a command on `app`; returns the position of its last event.
async fn command(app: &TestApp, name: &str, body: Value) -> String {
    let response = reqwest::Client::new().post(app.url(&format!("/commands/{name}"))).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{name}: {body}");
    body["last_position"].as_str().unwrap().to_owned()
}

async fn note(app: &TestApp, id: &str, author: &str) -> String {
    command(app, "take-note", json!({ "id": id, "author": author, "text": format!("text of {id}") })).await
}

/// `GET path` on `app` as JSON.
async fn get(app: &TestApp, path: &str) -> Value {
    reqwest::get(app.url(path)).await.unwrap().json().await.unwrap()
}

fn field<'a>(lines: &'a [Value], name: &str) -> Vec<&'a str> {
    lines.iter().map(|line| line[name].as_str().unwrap()).collect()
}

/// Three notes (authors a1, a2, a1) and a ping of n1; their positions in order.
async fn seed(app: &TestApp) -> Vec<String> {
    vec![
        note(app, "n1", "a1").await,
        note(app, "n2", "a2").await,
        note(app, "n3", "a1").await,
        command(app, "ping", json!({ "id": "n1" })).await,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_come_as_a_table_or_json_lines_filtered_and_paged() {
    let kept = tempfile::tempdir().unwrap();
    let app = TestApp::start_in(kept.path()).await;
    let positions = seed(&app).await;

    // JSON lines: the admin API's events, one per line, whatever the page size.
    let api = get(&app, "/admin/api/events?limit=100").await;
    let expected = api["events"].as_array().unwrap().clone();
    assert_eq!(field(&expected, "position"), positions);
    for page_size in ["1000", "1", "3"] {
        let lines = against(&app, &["events", "--json", "--page-size", page_size]).await.json_lines();
        assert_eq!(lines, expected, "page size {page_size}");
    }
    assert_eq!(expected[1]["payload"], json!({ "id": "n2", "author": "a2", "text": "text of n2" }));

    // The table: a header, then one row per event with its position, type, tags, payload.
    let table = against(&app, &["events"]).await;
    let rows: Vec<&str> = table.ok().lines().collect();
    assert_eq!(rows.len(), 5, "{}", table.stdout);
    for column in ["POSITION", "TYPE", "TAGS", "PAYLOAD"] {
        assert!(rows[0].contains(column), "{}", rows[0]);
    }
    for (row, position) in rows[1..].iter().zip(&positions) {
        assert!(row.starts_with(position.as_str()), "{row}");
    }
    assert!(rows[2].contains("Noted") && rows[2].contains("author:a2,note:n2"), "{}", rows[2]);
    assert!(rows[2].contains(r#""text":"text of n2""#), "{}", rows[2]);
    assert!(rows[4].contains("Pinged") && rows[4].contains(r#"{"id":"n1"}"#), "{}", rows[4]);

    // Filters: types (any of them), tags (all of them), from, backwards, limit.
    let run = |args: &'static [&'static str]| {
        let app = &app;
        async move {
            let mut all = vec!["events", "--json", "--page-size", "1"];
            all.extend_from_slice(args);
            against(app, &all).await.json_lines()
        }
    };
    assert_eq!(field(&run(&["--type", "Pinged"]).await, "position"), [positions[3].as_str()]);
    assert_eq!(field(&run(&["--type", "Pinged", "--type", "Noted"]).await, "position"), positions);
    assert_eq!(field(&run(&["--tag", "author:a1"]).await, "position"), [&positions[0], &positions[2]]);
    assert_eq!(field(&run(&["--tag", "note:n1"]).await, "type"), ["Noted", "Pinged"]);
    assert_eq!(field(&run(&["--tag", "note:n1", "--tag", "author:a1"]).await, "position"), [&positions[0]]);
    assert!(run(&["--type", "Nothing"]).await.is_empty());
    assert_eq!(field(&run(&["--limit", "2"]).await, "position"), [&positions[0], &positions[1]]);
    assert_eq!(
        field(&run(&["--backwards", "--limit", "3"]).await, "position"),
        [&positions[3], &positions[2], &positions[1]]
    );
    let from = against(&app, &["events", "--json", "--from", &positions[2]]).await.json_lines();
    assert_eq!(field(&from, "position"), [&positions[2], &positions[3]]);

    // The same log read from the stopped app's data directory.
    let dir = app.data_dir();
    app.stop().await;
    assert_eq!(on_dir(&dir, &["events", "--json"]).await.json_lines(), expected);
    let filtered = on_dir(&dir, &["events", "--json", "--tag", "author:a1", "--backwards"]).await.json_lines();
    assert_eq!(field(&filtered, "position"), [&positions[2], &positions[0]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_progress_and_dead_letters() {
    let app = TestApp::start().await;
    let positions = seed(&app).await;

    // `progress --watch` returns once the view has caught up: 3 notes processed.
    let progress = against(&app, &["progress", "--watch"]).await;
    let row = progress.ok().lines().find(|line| line.starts_with("notes")).expect("a row for the view");
    assert!(row.contains("3/3") && row.contains("active"), "{}", progress.stdout);
    let json = against(&app, &["progress", "--json"]).await.json_lines();
    assert_eq!(
        (json[0]["views"][0]["processed"].as_u64(), json[0]["views"][0]["remaining"].as_u64()),
        (Some(3), Some(0))
    );

    // Every document, over pages of one; one document; a prefix.
    let docs = against(&app, &["views", "notes", "--json", "--page-size", "1"]).await.json_lines();
    let expected: Vec<Value> =
        ["n1", "n2", "n3"].iter().map(|id| json!({ "key": id, "doc": format!("text of {id}") })).collect();
    assert_eq!(docs, expected);
    let table = against(&app, &["views", "notes"]).await;
    let rows: Vec<&str> = table.ok().lines().collect();
    assert_eq!(rows.len(), 4, "{}", table.stdout);
    assert!(
        rows[0].starts_with("KEY") && rows[2].starts_with("n2") && rows[2].ends_with(r#""text of n2""#),
        "{rows:?}"
    );
    assert_eq!(against(&app, &["views", "notes", "n2"]).await.ok().trim(), r#""text of n2""#);
    let prefixed = against(&app, &["views", "notes", "--prefix", "n3", "--json"]).await.json_lines();
    assert_eq!(prefixed, [expected[2].clone()]);
    let unknown = against(&app, &["views", "nope"]).await;
    assert!(unknown.failed().contains(r#"unknown view "nope""#), "{}", unknown.stderr);
    let absent = against(&app, &["views", "notes", "n9"]).await;
    assert!(absent.failed().contains(r#"has no document "n9""#), "{}", absent.stderr);

    // The ping ends in the mailer's dead letters.
    let deadline = Instant::now() + Duration::from_secs(20);
    let letters = loop {
        let letters = against(&app, &["dead-letters", "mailer", "--json"]).await.json_lines();
        if !letters.is_empty() {
            break letters;
        }
        assert!(Instant::now() < deadline, "the ping is dead-lettered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["position"], positions[3].as_str());
    assert!(letters[0]["error"].as_str().unwrap().contains("mail server down for n1"), "{letters:?}");
    let table = against(&app, &["dead-letters", "mailer"]).await;
    assert!(table.ok().lines().nth(1).unwrap().starts_with(&positions[3]), "{}", table.stdout);

    let replayed = against(&app, &["dead-letters", "mailer", "replay", &positions[3]]).await;
    assert!(replayed.ok().contains("re-queued"), "{}", replayed.stdout);
    let missing = against(&app, &["dead-letters", "mailer", "replay", &positions[0]]).await;
    assert!(missing.failed().contains("has no dead letter"), "{}", missing.stderr);
    // The replayed job fails again and comes back; then purge empties the queue.
    let deadline = Instant::now() + Duration::from_secs(20);
    while against(&app, &["dead-letters", "mailer", "--json"]).await.json_lines().is_empty() {
        assert!(Instant::now() < deadline, "the replayed ping is dead-lettered again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let purged = against(&app, &["dead-letters", "mailer", "purge"]).await;
    assert!(purged.ok().contains("purged 1 dead letters"), "{}", purged.stdout);
    assert!(against(&app, &["dead-letters", "mailer", "--json"]).await.json_lines().is_empty());
    assert!(against(&app, &["dead-letters", "mailer"]).await.ok().contains("no dead letters"));
    let unknown = against(&app, &["dead-letters", "nope"]).await;
    assert!(unknown.failed().contains(r#"unknown automation "nope""#), "{}", unknown.stderr);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_over_http_and_from_the_data_dir() {
    let kept = tempfile::tempdir().unwrap();
    let app = TestApp::start_in(kept.path()).await;
    let positions = seed(&app).await;
    let stats = against(&app, &["stats"]).await;
    let text = stats.ok();
    assert!(text.contains("namespace      app"), "{text}");
    assert!(text.contains(&format!("head           {}", positions[3])), "{text}");
    assert!(text.contains("views          1") && text.contains("automations    1"), "{text}");
    let json = &against(&app, &["stats", "--json"]).await.json_lines()[0];
    assert_eq!((json["head"].as_str(), json["events"].as_u64()), (Some(positions[3].as_str()), Some(4)), "{json}");
    assert!(text.contains("events         4"), "{text}");
    assert!(json["bytes_on_disk"].as_u64().unwrap() > 0, "{json}");

    let dir = app.data_dir();
    app.stop().await;
    let json = &on_dir(&dir, &["stats", "--json"]).await.json_lines()[0];
    assert_eq!(json["events"], 4, "{json}");
    assert_eq!((json["head"].as_str(), json["namespace"].as_str()), (Some(positions[3].as_str()), Some("app")));
    assert!(json["bytes_on_disk"].as_u64().unwrap() > 0, "{json}");
    let text = on_dir(&dir, &["stats"]).await;
    assert!(text.ok().contains("events         4"), "{}", text.stdout);
    let other = on_dir(&dir, &["stats", "--json", "--namespace", "other"]).await.json_lines();
    assert_eq!((other[0]["events"].as_u64(), other[0]["head"].is_null()), (Some(0), true), "namespaces are apart");
}

/// An export file's lines as JSON, without what an import changes (position, time).
fn portable(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let mut line: Value = serde_json::from_str(line).unwrap();
            let object = line.as_object_mut().unwrap();
            assert!(object.remove("position").unwrap().is_string(), "{object:?}");
            assert!(object.remove("recorded_at_ms").unwrap().is_u64(), "{object:?}");
            line
        })
        .collect()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= chunk.len() { ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_from_the_app_import_into_a_data_dir_and_export_again() {
    // A store holding, besides the app's events, raw ones: a payload that is not
    // MessagePack, an id, metadata, and MessagePack whose keys are not sorted.
    let work = tempfile::tempdir().unwrap();
    let (original, fresh) = (work.path().join("original"), work.path().join("fresh"));
    {
        use fairway::dcb::{EventStore, RawEvent, Tag};
        let store = fairway::dcb::open_embedded(&original, "app").unwrap();
        let raw = RawEvent::new("Raw", vec![0xc1, 0x00, 0xff, b'{'])
            .with_tag(Tag::parse("source:legacy system").unwrap())
            .with_id("raw-1")
            .with_metadata(b"trace=1".to_vec());
        #[derive(Serialize)]
        struct Unsorted {
            zeta: u32,
            alpha: String,
        }
        let packed = rmp_serde::to_vec_named(&Unsorted { zeta: 7, alpha: "a".into() }).unwrap();
        store.append(vec![raw, RawEvent::new("Packed", packed)], None).await.unwrap();
        store.engine().close();
    }
    let app = TestApp::start_in(&original).await;
    let mut positions = seed(&app).await;
    positions.extend([note(&app, "n4", "a2").await, note(&app, "n5", "a3").await]);

    // Over HTTP, in pages of two: every event up to the head, in order.
    let exported = work.path().join("http.jsonl");
    let run = against(&app, &["export", exported.to_str().unwrap(), "--page-size", "2"]).await;
    run.ok();
    assert!(run.stderr.contains("exported 8 events"), "{}", run.stderr);
    assert!(!work.path().join("http.jsonl.partial").exists(), "the partial file is renamed");
    let lines: Vec<Value> =
        std::fs::read_to_string(&exported).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(field(&lines, "type"), ["Raw", "Packed", "Noted", "Noted", "Noted", "Pinged", "Noted", "Noted"]);
    assert_eq!(field(&lines[2..], "position"), positions);
    assert_eq!(
        lines[0],
        json!({
            "position": lines[0]["position"], "recorded_at_ms": lines[0]["recorded_at_ms"], "type": "Raw",
            "tags": ["source:legacy system"], "id": "raw-1", "payload_b64": base64(&[0xc1, 0x00, 0xff, b'{']),
            "metadata_b64": base64(b"trace=1"),
        })
    );
    let noted = Noted { id: Id::new("n1").unwrap(), author: Id::new("a1").unwrap(), text: "text of n1".into() };
    assert_eq!(lines[2]["payload_b64"], base64(&rmp_serde::to_vec_named(&noted).unwrap()), "the stored bytes");
    assert_eq!(lines[2]["metadata_b64"], Value::Null);

    // Imported into an empty data directory, then exported from it: the same events.
    let run = on_dir(&fresh, &["import", exported.to_str().unwrap()]).await;
    run.ok();
    assert!(run.stderr.contains("imported 8 events"), "{}", run.stderr);
    let copy = work.path().join("copy.jsonl");
    on_dir(&fresh, &["export", copy.to_str().unwrap()]).await.ok();
    let (before, after) = (portable(&exported), portable(&copy));
    assert_eq!(after.len(), before.len());
    for (line, (a, b)) in before.iter().zip(&after).enumerate() {
        assert_eq!(a, b, "line {}", line + 1);
    }
    let events = on_dir(&fresh, &["events", "--json"]).await.json_lines();
    assert_eq!(events[3]["payload"], json!({ "id": "n2", "author": "a2", "text": "text of n2" }));

    // A namespace holding events is refused, and keeps only what it had.
    let again = on_dir(&fresh, &["import", exported.to_str().unwrap()]).await;
    assert!(again.failed().contains(r#"namespace "app""#) && again.stderr.contains("already holds events"));
    assert_eq!(on_dir(&fresh, &["events", "--json"]).await.json_lines().len(), 8);

    // From a data directory the bytes are the stored ones: a round trip keeps them all,
    // the unsorted MessagePack included.
    app.stop().await;
    let stored = work.path().join("stored.jsonl");
    on_dir(&original, &["export", stored.to_str().unwrap()]).await.ok();
    let (stored_lines, http_lines) = (portable(&stored), portable(&exported));
    assert_eq!(stored_lines, http_lines, "over HTTP every byte is the stored one, unsorted MessagePack included");
    on_dir(&fresh, &["import", stored.to_str().unwrap(), "--namespace", "second"]).await.ok();
    let second = work.path().join("second.jsonl");
    on_dir(&fresh, &["export", second.to_str().unwrap(), "--namespace", "second"]).await.ok();
    assert_eq!(portable(&second), portable(&stored));
    // Either way, every event decodes to the same value.
    let values = |namespace: &'static str| {
        let fresh = &fresh;
        async move {
            let mut events = on_dir(fresh, &["events", "--json", "--namespace", namespace]).await.json_lines();
            for event in &mut events {
                let event = event.as_object_mut().unwrap();
                event.remove("position");
                event.remove("recorded_at_ms");
            }
            events
        }
    };
    assert_eq!(values("second").await, values("app").await);
    assert_eq!(stored_lines.len(), 8);
}

#[tokio::test]
async fn a_bad_import_file_appends_nothing() {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("bad.jsonl");
    let good = r#"{"position":"000000000000000100000000","recorded_at_ms":1,"type":"A","tags":["k:v"],"id":"x","payload_b64":"wQI=","metadata_b64":null}"#;
    std::fs::write(&file, format!("{good}\nnot json\n")).unwrap();
    let dir = work.path().join("store");
    let run = on_dir(&dir, &["import", file.to_str().unwrap()]).await;
    assert!(run.failed().contains("bad.jsonl, line 2: not an exported event"), "{}", run.stderr);
    let out_of_order = good.replace("0001", "0000");
    std::fs::write(&file, format!("{good}\n{out_of_order}\n")).unwrap();
    let run = on_dir(&dir, &["import", file.to_str().unwrap()]).await;
    assert!(run.failed().contains("line 2") && run.stderr.contains("not in log order"), "{}", run.stderr);
    assert!(!dir.exists(), "a bad file creates no store");

    // An event the store would refuse, on the last of 1,500 lines: refused before any append.
    let line = |n: usize, tags: &[String]| {
        json!({ "position": format!("{n:024x}"), "recorded_at_ms": 1, "type": "A", "tags": tags, "id": null,
                "payload_b64": "wQI=", "metadata_b64": null })
        .to_string()
    };
    let mut lines: Vec<String> = (1..1500).map(|n| line(n, &["k:v".to_owned()])).collect();
    lines.push(line(1500, &(0..33).map(|t| format!("k:{t}")).collect::<Vec<_>>()));
    std::fs::write(&file, lines.join("\n")).unwrap();
    let run = on_dir(&dir, &["import", file.to_str().unwrap()]).await;
    assert!(run.failed().contains("bad.jsonl, line 1500: 33 tags; the limit is 32"), "{}", run.stderr);
    assert!(!dir.exists(), "nothing was appended, no store created");

    std::fs::write(&file, format!("{good}\n\n")).unwrap();
    on_dir(&dir, &["import", file.to_str().unwrap()]).await.ok();
    let events = on_dir(&dir, &["events", "--json"]).await.json_lines();
    assert_eq!((events.len(), &events[0]["payload_hex"], &events[0]["id"]), (1, &json!("c102"), &json!("x")));

    let empty = work.path().join("empty.jsonl");
    std::fs::write(&empty, "\n").unwrap();
    let fresh = work.path().join("never");
    let run = on_dir(&fresh, &["import", empty.to_str().unwrap()]).await;
    assert!(run.ok().is_empty() && run.stderr.contains("holds no events: nothing to import"), "{}", run.stderr);
    assert!(!fresh.exists(), "no store for an empty file");

    let without_dir = fairway(&["import", file.to_str().unwrap()]).await;
    assert!(without_dir.failed().contains("pass --data-dir"), "{}", without_dir.stderr);
}

#[tokio::test]
async fn an_app_that_is_down_is_named_with_what_to_do() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    for args in [&["events"][..], &["stats"], &["views", "notes"], &["export", "/dev/null"]] {
        let mut all = vec!["--url", url.as_str()];
        all.extend_from_slice(args);
        let run = fairway(&all).await;
        let expected =
            format!("error: no app answers at {url}: start it, or pass --data-dir to read a stopped app's store");
        assert_eq!(run.failed().trim(), expected, "{args:?}");
    }
    let by_env = fairway_env(&["events"], &[("FAIRWAY_URL", url.as_str())]).await;
    assert!(by_env.failed().contains(&url), "{}", by_env.stderr);
    let nowhere = fairway(&["--data-dir", "/nonexistent/fairway", "events"]).await;
    assert!(nowhere.failed().contains("holds no Fairway store"), "{}", nowhere.stderr);
    assert!(!Path::new("/nonexistent/fairway").exists(), "reads create nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_apps_data_dir_is_refused() {
    let app = TestApp::start().await;
    let position = note(&app, "n1", "a1").await;
    let dir = app.data_dir();
    let work = tempfile::tempdir().unwrap();
    let one_event = work.path().join("one.jsonl");
    let line = r#"{"position":"000000000000000100000000","recorded_at_ms":1,"type":"A","tags":[],"payload_b64":""}"#;
    std::fs::write(&one_event, line).unwrap();
    let all: [&[&str]; 7] = [
        &["events"],
        &["stats"],
        &["export", "/dev/null"],
        &["import", one_event.to_str().unwrap()],
        &["views", "notes"],
        &["dead-letters", "mailer"],
        &["progress"],
    ];
    for args in all {
        let run = on_dir(&dir, args).await;
        let expected = format!("error: {} is in use by a running app: use --url", dir.display());
        assert_eq!(run.failed().trim(), expected, "{args:?}");
    }
    // The app did not notice.
    assert!(note(&app, "n2", "a1").await > position);
    app.stop().await;
}

/// Waits until the mailer has dead-lettered `count` jobs, over HTTP.
async fn dead_lettered(app: &TestApp, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let letters = against(app, &["dead-letters", "mailer", "--json"]).await.json_lines();
        if letters.len() == count {
            return letters;
        }
        assert!(Instant::now() < deadline, "{count} dead letters, not {}", letters.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_progress_and_dead_letters_of_a_stopped_app_from_its_data_dir() {
    let kept = tempfile::tempdir().unwrap();
    let app = TestApp::start_in(kept.path()).await;
    let positions = seed(&app).await;
    against(&app, &["progress", "--watch"]).await.ok();
    dead_lettered(&app, 1).await;
    let dir = app.data_dir();
    app.stop().await;

    // The active version's documents, all of them, one, by prefix; unknown names are named.
    let docs = on_dir(&dir, &["views", "notes", "--json"]).await.json_lines();
    let expected: Vec<Value> =
        ["n1", "n2", "n3"].iter().map(|id| json!({ "key": id, "doc": format!("text of {id}") })).collect();
    assert_eq!(docs, expected);
    assert_eq!(on_dir(&dir, &["views", "notes", "n2"]).await.ok().trim(), r#""text of n2""#);
    assert_eq!(on_dir(&dir, &["views", "notes", "--prefix", "n3", "--json"]).await.json_lines(), [expected[2].clone()]);
    let table = on_dir(&dir, &["views", "notes"]).await;
    assert!(table.ok().lines().nth(2).unwrap().starts_with("n2"), "{}", table.stdout);
    let unknown = on_dir(&dir, &["views", "nope"]).await;
    assert!(unknown.failed().contains(r#"no view "nope""#) && unknown.stderr.contains("views there: notes"));
    let absent = on_dir(&dir, &["views", "notes", "n9"]).await;
    assert!(absent.failed().contains(r#"view "notes" has no document "n9""#), "{}", absent.stderr);

    // Progress: the checkpoint each version left, and the queues.
    let progress = on_dir(&dir, &["progress"]).await;
    let row = progress.ok().lines().find(|line| line.starts_with("notes")).expect("a row for the view");
    assert!(row.contains("active") && row.contains(&positions[2]), "{}", progress.stdout);
    let json = &on_dir(&dir, &["progress", "--json"]).await.json_lines()[0];
    assert_eq!((json["views"][0]["processed"].as_u64(), json["views"][0]["active"].as_bool()), (Some(3), Some(true)));
    assert_eq!(json["automations"][0], json!({ "name": "mailer", "pending": 0, "dead_letters": 1 }), "{json}");
    let watch = on_dir(&dir, &["progress", "--watch"]).await;
    assert!(watch.failed().contains("start the app and use --url"), "{}", watch.stderr);
    let follow = on_dir(&dir, &["events", "--follow"]).await;
    assert!(follow.failed().contains("start the app and use --url"), "{}", follow.stderr);

    // Dead letters: listed, replayed into the queue, run again once the app is back.
    let letters = on_dir(&dir, &["dead-letters", "mailer", "--json"]).await.json_lines();
    assert_eq!((letters.len(), letters[0]["position"].as_str()), (1, Some(positions[3].as_str())));
    assert!(letters[0]["error"].as_str().unwrap().contains("mail server down for n1"), "{letters:?}");
    let unknown = on_dir(&dir, &["dead-letters", "nope"]).await;
    assert!(
        unknown.failed().contains(r#"no automation "nope""#) && unknown.stderr.contains("automations there: mailer")
    );
    let missing = on_dir(&dir, &["dead-letters", "mailer", "replay", &positions[0]]).await;
    assert!(missing.failed().contains("has no dead letter"), "{}", missing.stderr);
    let replayed = on_dir(&dir, &["dead-letters", "mailer", "replay", &positions[3]]).await;
    assert!(replayed.ok().contains("re-queued"), "{}", replayed.stdout);
    let json = &on_dir(&dir, &["progress", "--json"]).await.json_lines()[0];
    assert_eq!(json["automations"][0], json!({ "name": "mailer", "pending": 1, "dead_letters": 0 }), "{json}");

    let app = TestApp::start_in(&dir).await;
    dead_lettered(&app, 1).await;
    app.stop().await;
    let purged = on_dir(&dir, &["dead-letters", "mailer", "purge"]).await;
    assert!(purged.ok().contains("purged 1 dead letters"), "{}", purged.stdout);
    assert!(on_dir(&dir, &["dead-letters", "mailer"]).await.ok().contains("no dead letters"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_need_the_apps_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = AppConfig::with_data_dir(dir.path());
    config.admin_token = Some("s3cret".into());
    let app = TestApp::start_with(config, |app| app).await;
    let position = note(&app, "n1", "a1").await;

    let without = against(&app, &["events"]).await;
    assert!(
        without.failed().contains("401") && without.stderr.contains("set FAIRWAY_ADMIN_TOKEN"),
        "{}",
        without.stderr
    );
    let wrong = against(&app, &["events", "--token", "nope"]).await;
    assert!(wrong.failed().contains("403") && wrong.stderr.contains("FAIRWAY_ADMIN_TOKEN"), "{}", wrong.stderr);
    let wrong = against(&app, &["dead-letters", "mailer", "--token", "nope"]).await;
    assert!(wrong.failed().contains("FAIRWAY_ADMIN_TOKEN"), "{}", wrong.stderr);

    let url = app.url("");
    let by_env = fairway_env(&["--url", &url, "events", "--json"], &[("FAIRWAY_ADMIN_TOKEN", "s3cret")]).await;
    assert_eq!(field(&by_env.json_lines(), "position"), [position.as_str()]);
    let by_flag = against(&app, &["stats", "--json", "--token", "s3cret"]).await.json_lines();
    assert_eq!(by_flag[0]["head"], position.as_str());
    // Views are public: no token needed.
    assert!(against(&app, &["progress", "--watch"]).await.ok().contains("notes"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_prints_events_appended_after_it_started() {
    let app = TestApp::start().await;
    let first = note(&app, "n1", "a1").await;
    note(&app, "n0", "a1").await;
    let url = app.url("");
    // `--limit` bounds the listing: n0, stored after n1, is neither listed nor followed.
    let mut child = process(&["--url", &url, "events", "--follow", "--json", "--type", "Noted", "--limit", "1"], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let next = || {
        let line = received.recv_timeout(Duration::from_secs(20)).expect("a line within 20 s");
        serde_json::from_str::<Value>(&line).unwrap()
    };
    assert_eq!(next()["position"], first.as_str(), "the stored event first");
    // Printed, so it is following now: a ping (filtered out), then a note.
    command(&app, "ping", json!({ "id": "n1" })).await;
    let second = note(&app, "n2", "a2").await;
    let followed = next();
    assert_eq!((followed["position"].as_str(), followed["type"].as_str()), (Some(second.as_str()), Some("Noted")));
    assert_eq!(followed["payload"]["text"], "text of n2");
    assert!(child.try_wait().unwrap().is_none(), "still following");
    child.kill().unwrap();
    child.wait().unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_racing_appends_is_the_log_up_to_one_head_without_a_gap() {
    let app = TestApp::start().await;
    for n in 0..30 {
        note(&app, &format!("before-{n}"), "a1").await;
    }
    // Writers append while the export pages through the log, three events a page.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|writer| {
            let (url, stop) = (app.url("/commands/take-note"), stop.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut written = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let body = json!({ "id": format!("during-{writer}-{written}"), "author": "a2", "text": "racing" });
                    assert_eq!(http.post(&url).json(&body).send().await.unwrap().status(), 200);
                    written += 1;
                }
                written
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("racing.jsonl");
    let run = against(&app, &["export", file.to_str().unwrap(), "--page-size", "3"]).await;
    run.ok();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let written: usize = futures::future::join_all(writers).await.into_iter().map(|w| w.unwrap()).sum();
    assert!(written > 0, "the writers appended during the export");

    // The file is exactly the log's first events, up to the head the export reports.
    let exported: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["position"].as_str().unwrap().to_owned())
        .collect();
    let head = exported.last().unwrap().clone();
    assert!(run.stderr.contains(&format!("head {head}")), "{}", run.stderr);
    let log: Vec<String> = against(&app, &["events", "--json"])
        .await
        .json_lines()
        .iter()
        .map(|event| event["position"].as_str().unwrap().to_owned())
        .collect();
    assert!(log.len() > exported.len() || written == 0, "appends landed after the export's head");
    assert_eq!(exported, log[..exported.len()], "no event missing, repeated or out of order");
    assert!(exported.len() >= 30);
    app.stop().await;
}
