//! A full disk over HTTP, on a small tmpfs (mounted by the test, which needs root as CI has;
//! without it the test prints a notice and stops): commands answer 507 naming the disk and
//! the data directory, `/health` answers 503 saying why, views are still served, and once
//! space is freed commands succeed again without a restart; every acknowledged command's
//! event is in the store.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::{Duration, Instant};

use fairway::dcb::{EventStore, Query, ReadOptions, Tag};
use fairway::testkit::TestApp;
use fairway::{Command, Decision, Event, EventSet, View, ViewError, ViewTx, command, view};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use support::send;

#[derive(Debug, Serialize, Deserialize, Event)]
struct NoteAdded {
    #[tag("note")]
    note: String,
    text: String,
}

#[derive(Debug, Deserialize)]
struct AddNote {
    note: String,
    text: String,
}

#[derive(Debug, thiserror::Error)]
#[error("note {0} exists")]
struct NoteExists(String);

#[command]
impl Command for AddNote {
    const NAME: &'static str = "add-note";
    type Events = NoteAdded;
    type State = bool;
    type Error = NoteExists;

    fn query(&self) -> Query {
        NoteAdded::tagged([Tag::new("note", &self.note).unwrap()]).into()
    }

    fn evolve(&self, exists: &mut bool, _: NoteAdded) {
        *exists = true;
    }

    fn decide(&self, exists: &bool) -> Result<Decision, NoteExists> {
        if *exists {
            return Err(NoteExists(self.note.clone()));
        }
        Ok(Decision::event(NoteAdded { note: self.note.clone(), text: self.text.clone() }))
    }
}

#[derive(Default)]
struct Notes;

#[view]
impl View for Notes {
    const NAME: &'static str = "notes";
    const VERSION: u32 = 1;
    type Events = NoteAdded;

    async fn apply(&self, added: NoteAdded, tx: &ViewTx) -> Result<(), ViewError> {
        tx.put(&added.note, &added.text.len())
    }
}

/// A tmpfs mounted on a fresh directory, unmounted when dropped (also on panic).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `mib` MiB, or prints why it cannot and returns `None`.
    fn mount(mib: u64, test: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("a mount point");
        let output = Process::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .output();
        match output {
            Ok(output) if output.status.success() => Some(Tmpfs { dir }),
            Ok(output) => {
                let stderr = String::from_utf8_lossy(&output.stderr);
                eprintln!("NOTICE: {test} skipped: `mount -t tmpfs` failed (it needs root): {}", stderr.trim());
                None
            }
            Err(err) => {
                eprintln!("NOTICE: {test} skipped: `mount` could not run: {err}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Process::new("umount").arg(self.dir.path()).status().is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Process::new("umount").arg("-l").arg(self.dir.path()).status();
        }
    }
}

/// Fills the filesystem of `dir` with a file, then gives back `leave` bytes.
fn filler(dir: &Path, leave: u64) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![7u8; 64 * 1024];
    while file.write_all(&chunk).is_ok() {}
    let len = file.metadata().unwrap().len();
    file.set_len(len.saturating_sub(leave)).unwrap();
    file.sync_all().unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_507_and_503_serves_views_and_recovers_without_a_restart() {
    let test = "a_full_disk_answers_507_and_503_serves_views_and_recovers_without_a_restart";
    let Some(volume) = Tmpfs::mount(100, test) else { return };
    let data = volume.path().join("store");
    let app = TestApp::start_in(&data).await;
    if app.on_foundationdb() {
        eprintln!("notice: {test} skipped: it fills the embedded store's disk, and the app runs on FoundationDB");
        return;
    }
    let http = reqwest::Client::new();
    let add = |note: String| {
        let text = "x".repeat(32 * 1024);
        http.post(app.url("/commands/add-note")).json(&json!({ "note": note, "text": text }))
    };

    let (status, body) = send(add("first".into())).await;
    assert_eq!(status, 200, "{body}");
    let after = body["last_position"].as_str().unwrap();
    let (status, _) = send(http.get(app.url(&format!("/views/notes/first?after={after}")))).await;
    assert_eq!(status, 200);
    let (status, body) = send(http.get(app.url("/health"))).await;
    assert_eq!((status, &body["status"]), (200, &json!("ok")));

    let filler = filler(volume.path(), 8 * 1024 * 1024);
    let mut acked = vec!["first".to_string()];
    let refused = loop {
        let note = format!("n{}", acked.len());
        let (status, body) = send(add(note.clone())).await;
        if status != 200 {
            break (status, body);
        }
        acked.push(note);
        assert!(acked.len() < 10_000, "8 MiB should fill long before");
    };
    println!("HTTP: {} commands acknowledged, then {} {}", acked.len(), refused.0, refused.1);
    assert_eq!(refused.0, 507, "a full disk answers 507: {}", refused.1);
    let message = refused.1["error"].as_str().unwrap();
    let data_dir = data.display().to_string();
    let mount = volume.path().canonicalize().unwrap().display().to_string();
    assert!(message.contains("disk full") && message.contains(&data_dir) && message.contains(&mount), "{message}");

    let (status, body) = send(http.get(app.url("/health"))).await;
    assert_eq!(status, 503, "{body}");
    let storage = body["storage"].as_str().unwrap();
    assert!(storage.contains("disk full") && storage.contains(&data_dir), "{storage}");
    let (status, body) = send(http.get(app.url("/views/notes/first"))).await;
    assert_eq!(status, 200, "views are served while the disk is full: {body}");
    let (status, _) = send(add("refused-again".into())).await;
    assert_eq!(status, 507);
    let (status, body) = send(add("keyed".into()).header("idempotency-key", "k1")).await;
    assert_eq!(status, 507, "with an Idempotency-Key too: {body}");

    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    loop {
        let (status, _) = send(http.get(app.url("/health"))).await;
        if status == 200 {
            break;
        }
        assert!(freed.elapsed() < Duration::from_secs(5), "/health still {status} after freeing space");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = send(add("after".into())).await;
    assert_eq!(status, 200, "commands work again once space is freed: {body}");
    acked.push("after".into());
    app.stop().await;

    let store = fairway::dcb::open_embedded(&data, "app").unwrap();
    let events: Vec<_> = store.read(NoteAdded::query(), ReadOptions::forwards()).try_collect().await.unwrap();
    let stored: Vec<String> =
        events.iter().map(|e| e.event.tags.iter().find(|t| t.key() == "note").unwrap().value().to_string()).collect();
    assert_eq!(stored, acked, "exactly the acknowledged commands are stored, in order");
}
