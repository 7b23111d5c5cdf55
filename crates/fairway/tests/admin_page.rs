//! The admin page in a real browser: headless Chromium loads `/admin` from a running app and
//! the DOM it renders shows the events, view documents, progress and dead letters the test
//! wrote. Without Chromium the test prints a notice and passes, unless
//! `FAIRWAY_REQUIRE_BROWSER` is set (CI sets it and installs Debian's `chromium`).

use std::process::Command as Process;
use std::time::Duration;

use fairway::prelude::*;
use fairway::testkit::TestApp;
use fairway::{Id, QueueSettings};
use serde_json::json;

#[derive(Debug, Serialize, Deserialize, Event)]
struct PageNoted {
    #[tag("page-note")]
    id: Id,
    text: String,
}

#[derive(Debug, Deserialize)]
struct WriteNote {
    id: Id,
    text: String,
}

#[derive(Debug, thiserror::Error)]
#[error("note {0} exists")]
struct Exists(Id);

#[command]
impl Command for WriteNote {
    const NAME: &'static str = "write-note";
    type Events = PageNoted;
    type State = bool;
    type Error = Exists;

    fn query(&self) -> Query {
        PageNoted::tagged([self.id.tag("page-note")]).into()
    }

    fn evolve(&self, exists: &mut bool, _: PageNoted) {
        *exists = true;
    }

    fn decide(&self, exists: &bool) -> Result<Decision, Exists> {
        ensure!(!exists, Exists(self.id.clone()));
        Ok(Decision::event(PageNoted { id: self.id.clone(), text: self.text.clone() }))
    }
}

#[derive(Default)]
struct PageNotes;

#[view]
impl View for PageNotes {
    const NAME: &'static str = "page-notes";
    const VERSION: u32 = 1;
    type Events = PageNoted;

    async fn apply(&self, noted: PageNoted, tx: &ViewTx) -> Result<(), ViewError> {
        tx.update(&noted.id, |text: &mut String| *text = noted.text).await
    }
}

/// Fails every job at once, so each note ends in the dead-letter queue.
#[derive(Default)]
struct Mailer;

#[automation]
impl Automation for Mailer {
    const NAME: &'static str = "mailer";
    type Events = PageNoted;

    async fn handle(&self, noted: PageNoted, _: &AutomationContext) -> Result<(), AutomationError> {
        Err(AutomationError::msg(format!("mail server down for {}", noted.id)))
    }

    fn settings(&self) -> QueueSettings {
        QueueSettings { max_attempts: 1, retry_backoff: Duration::from_millis(10), ..QueueSettings::default() }
    }
}

/// The first Chromium binary on the `PATH`.
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| Process::new(name).arg("--version").output().is_ok_and(|out| out.status.success()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_page_shows_events_views_progress_and_dead_letters() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("FAIRWAY_REQUIRE_BROWSER").is_none(),
            "FAIRWAY_REQUIRE_BROWSER is set but no chromium is installed (apt-get install chromium)"
        );
        eprintln!("NOTICE: admin page test skipped: no chromium on PATH (apt-get install chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start_in(dir.path()).await;
    let http = reqwest::Client::new();
    let mut last = String::new();
    for (id, text) in [("shopping", "milk, bread"), ("todo", "water the plants")] {
        let response = http.post(app.url("/commands/write-note")).json(&json!({ "id": id, "text": text })).send().await;
        let body: serde_json::Value = response.unwrap().json().await.unwrap();
        last = body["last_position"].as_str().unwrap().to_owned();
    }
    // The view has both notes, and both mails are dead letters, before the browser looks.
    let view = http.get(app.url(&format!("/views/page-notes?after={last}"))).send().await.unwrap();
    assert_eq!(view.status(), 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let dead: Vec<serde_json::Value> =
            http.get(app.url("/automations/mailer/dead-letters")).send().await.unwrap().json().await.unwrap();
        if dead.len() == 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "both jobs fail into the dead-letter queue: {dead:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let url = app.url("/admin");
    let dom = tokio::task::spawn_blocking(move || {
        let output = Process::new(browser)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            .args(["--virtual-time-budget=20000", "--dump-dom", &url])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    })
    .await
    .unwrap();

    assert!(dom.contains(r#"data-loaded="true""#), "the page loaded every section without error:\n{dom}");
    assert!(dom.contains(&format!(r#"data-position="{last}""#)), "the newest event is a row:\n{dom}");
    for shown in [
        "PageNoted",                                         // the events table
        "page-note:shopping",                                // their tags
        "water the plants",                                  // payloads and the view's documents
        r#"data-view="page-notes""#,                         // the view's table
        "mail server down for shopping",                     // a dead letter with its error
        "Replay",                                            // its replay button
        "Purge mailer",                                      // the purge button
        &format!("Namespace {}, 2 events", app.namespace()), // store facts
        "0 pending (0 running), 2 dead letters",             // the queue
    ] {
        assert!(dom.contains(shown), "the page shows {shown:?}:\n{dom}");
    }
    app.stop().await;
}
