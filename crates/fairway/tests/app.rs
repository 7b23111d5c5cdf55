//! The app runtime over real HTTP: registered automations run with injected dependencies,
//! their dead letters are listed, replayed and purged through the API; `Idempotency-Key`
//! replays responses (bodies compared as JSON values); a panicking command is a JSON 500
//! that releases its key; projector progress is served.

mod support;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fairway::dcb::{Query, QueryItem, Tag};
use fairway::testkit::TestApp;
use fairway::{
    App, AppConfig, Automation, AutomationContext, AutomationError, Command, Decision, Event, EventSet, QueueSettings,
    View, ViewError, ViewTx, automation, command, view,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use support::{eventually, open_store, send_noting_replay};

/// How long a test waits for what happens in the background.
const WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, Serialize, Deserialize, Event)]
struct TicketOpened {
    #[tag("ticket")]
    ticket: String,
    title: String,
}

#[derive(Debug, Deserialize)]
struct OpenTicket {
    ticket: String,
    title: String,
}

#[derive(Debug, thiserror::Error)]
#[error("ticket {0} is already open")]
struct AlreadyOpen(String);

// ANCHOR: snapshots
/// Folds from decision-model snapshots (exercises `#[command(snapshots)]` through HTTP).
impl fairway::SnapshotModel for OpenTicket {
    const MODEL_VERSION: u32 = 1;
}

// ANCHOR_END: snapshots

#[command(snapshots)]
impl Command for OpenTicket {
    const NAME: &'static str = "open-ticket";
    type Events = TicketOpened;
    type State = bool;
    type Error = AlreadyOpen;

    fn query(&self) -> Query {
        TicketOpened::tagged([Tag::new("ticket", &self.ticket).unwrap()]).into()
    }

    fn evolve(&self, open: &mut bool, _: TicketOpened) {
        *open = true;
    }

    fn decide(&self, open: &bool) -> Result<Decision, AlreadyOpen> {
        if *open {
            return Err(AlreadyOpen(self.ticket.clone()));
        }
        Ok(Decision::event(TicketOpened { ticket: self.ticket.clone(), title: self.title.clone() }))
    }
}

/// Closes a ticket; panics the first time it is asked to close `"fragile"`.
#[derive(Debug, Deserialize)]
struct CloseTicket {
    ticket: String,
}

#[derive(Debug, Serialize, Deserialize, Event)]
struct TicketClosed {
    #[tag("ticket")]
    ticket: String,
}

/// Set once the fragile ticket's first close panicked.
static PANICKED_ONCE: AtomicBool = AtomicBool::new(false);

#[command]
impl Command for CloseTicket {
    const NAME: &'static str = "close-ticket";
    type Events = TicketClosed;
    type State = ();
    type Error = AlreadyOpen;

    fn query(&self) -> Query {
        TicketClosed::tagged([Tag::new("ticket", &self.ticket).unwrap()]).into()
    }

    fn evolve(&self, _: &mut (), _: TicketClosed) {}

    fn decide(&self, _: &()) -> Result<Decision, AlreadyOpen> {
        if self.ticket == "fragile" && !PANICKED_ONCE.swap(true, Ordering::SeqCst) {
            panic!("the fragile ticket broke");
        }
        Ok(Decision::event(TicketClosed { ticket: self.ticket.clone() }))
    }
}

#[derive(Default)]
struct Tickets;

#[view]
impl View for Tickets {
    const NAME: &'static str = "tickets";
    const VERSION: u32 = 1;
    type Events = TicketOpened;

    async fn apply(&self, opened: TicketOpened, tx: &ViewTx) -> Result<(), ViewError> {
        tx.put(&opened.ticket, &opened.title)
    }
}

/// An outside service: a pager that may be down.
#[derive(Default)]
struct Pager {
    down: AtomicBool,
    sent: Mutex<Vec<String>>,
}

#[derive(Default)]
struct PageOnNewTicket;

#[automation]
impl Automation for PageOnNewTicket {
    const NAME: &'static str = "page-on-new-ticket";
    type Events = TicketOpened;

    async fn handle(&self, opened: TicketOpened, ctx: &AutomationContext) -> Result<(), AutomationError> {
        let pager = ctx.dependency::<std::sync::Arc<Pager>>()?;
        if pager.down.load(Ordering::SeqCst) {
            return Err(AutomationError::msg("pager is down"));
        }
        pager.sent.lock().unwrap().push(opened.ticket);
        Ok(())
    }

    fn settings(&self) -> QueueSettings {
        QueueSettings {
            lease: Duration::from_secs(2),
            max_attempts: 2,
            retry_backoff: Duration::from_millis(10),
            poll: Duration::from_millis(10),
            workers: 2,
        }
    }
}

async fn start(pager: std::sync::Arc<Pager>) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start_with(AppConfig::with_data_dir(dir.path()), move |app: App| app.provide(pager)).await;
    (app, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automations_use_dependencies_and_dead_letters_are_served_replayed_and_purged() {
    let pager = std::sync::Arc::new(Pager::default());
    let (app, _dir) = start(pager.clone()).await;
    let http = reqwest::Client::new();
    let open =
        |ticket: &str| http.post(app.url("/commands/open-ticket")).json(&json!({ "ticket": ticket, "title": "t" }));

    let (status, _, _) = send_noting_replay(open("t1")).await;
    assert_eq!(status, 200);
    eventually("t1 paged", WAIT, async || pager.sent.lock().unwrap().as_slice() == ["t1"]).await;

    pager.down.store(true, Ordering::SeqCst);
    let (_, opened, _) = send_noting_replay(open("t2")).await;
    let position = opened["last_position"].as_str().unwrap().to_owned();
    let dead_url = app.url("/automations/page-on-new-ticket/dead-letters");
    eventually("t2 dead-lettered", WAIT, async || {
        send_noting_replay(http.get(&dead_url)).await.1.as_array().unwrap().len() == 1
    })
    .await;
    let (_, dead, _) = send_noting_replay(http.get(&dead_url)).await;
    assert_eq!(dead[0]["position"], position.as_str());
    assert_eq!((dead[0]["attempts"].as_u64(), dead[0]["error"].as_str()), (Some(2), Some("pager is down")));
    let (_, listed, _) = send_noting_replay(http.get(app.url("/automations"))).await;
    assert_eq!(listed["automations"][0]["dead_letters"], 1, "{listed}");

    pager.down.store(false, Ordering::SeqCst);
    let replay = |p: &str| http.post(app.url(&format!("/automations/page-on-new-ticket/dead-letters/{p}/replay")));
    assert_eq!(send_noting_replay(replay(&position)).await.0, 200);
    eventually("t2 paged after replay", WAIT, async || pager.sent.lock().unwrap().len() == 2).await;
    assert_eq!(send_noting_replay(replay(&position)).await.0, 404, "nothing left to replay");
    assert_eq!(send_noting_replay(replay("not-a-position")).await.0, 400);

    pager.down.store(true, Ordering::SeqCst);
    send_noting_replay(open("t3")).await;
    eventually("t3 dead-lettered", WAIT, async || {
        send_noting_replay(http.get(&dead_url)).await.1.as_array().unwrap().len() == 1
    })
    .await;
    let (status, purged, _) = send_noting_replay(http.delete(&dead_url)).await;
    assert_eq!((status, purged), (200, json!({ "purged": 1 })));
    assert_eq!(send_noting_replay(http.get(&dead_url)).await.1, json!([]));
    assert_eq!(send_noting_replay(http.get(app.url("/automations/nope/dead-letters"))).await.0, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_replays_the_first_response_and_refuses_another_body() {
    let (app, _dir) = start(std::sync::Arc::new(Pager::default())).await;
    let http = reqwest::Client::new();
    let open = |key: &str, title: &str| {
        http.post(app.url("/commands/open-ticket"))
            .header("Idempotency-Key", key)
            .json(&json!({ "ticket": "t1", "title": title }))
    };
    let (status, first, replayed) = send_noting_replay(open("k1", "printer")).await;
    assert_eq!((status, replayed), (200, false));
    let (status, again, replayed) = send_noting_replay(open("k1", "printer")).await;
    assert_eq!((status, replayed), (200, true));
    assert_eq!(again, first, "the stored response, not a second run (which would be a 422)");
    let (status, _, _) = send_noting_replay(open("k1", "scanner")).await;
    assert_eq!(status, 422, "same key, another body");
    let (status, rejected, replayed) = send_noting_replay(open("k2", "printer")).await;
    assert_eq!((status, replayed), (422, false), "{rejected}");
    let (status, _, replayed) = send_noting_replay(open("k2", "printer")).await;
    assert_eq!((status, replayed), (422, true), "domain refusals are stored too");
    let (status, bad, _) = send_noting_replay(open(&"k".repeat(300), "printer")).await;
    assert_eq!(status, 400);
    assert!(bad["error"].as_str().unwrap().contains("255"), "{bad}");

    // Concurrent retries of one key: exactly one runs.
    let requests: Vec<_> = (0..8)
        .map(|_| {
            let request = http
                .post(app.url("/commands/open-ticket"))
                .header("Idempotency-Key", "k3")
                .json(&json!({ "ticket": "t3", "title": "x" }));
            tokio::spawn(async move { send_noting_replay(request).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for request in requests {
        let (status, _, replayed) = request.await.unwrap();
        statuses.push((status, replayed));
    }
    let ran = statuses.iter().filter(|(s, replayed)| *s == 200 && !replayed).count();
    assert_eq!(ran, 1, "{statuses:?}");
    assert!(statuses.iter().all(|(s, _)| *s == 200 || *s == 409), "replays or in-progress: {statuses:?}");

    // The records survive a restart.
    let app = app.restart().await;
    let http = reqwest::Client::new();
    let request = http
        .post(app.url("/commands/open-ticket"))
        .header("Idempotency-Key", "k1")
        .json(&json!({ "ticket": "t1", "title": "printer" }));
    assert_eq!(send_noting_replay(request).await, (200, first, true));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_compares_bodies_as_json_values() {
    let (app, _dir) = start(std::sync::Arc::new(Pager::default())).await;
    let http = reqwest::Client::new();
    let open = |key: &str, body: &str| {
        http.post(app.url("/commands/open-ticket"))
            .header("Idempotency-Key", key)
            .header("content-type", "application/json")
            .body(body.to_owned())
    };
    let (status, first, replayed) = send_noting_replay(open("j1", r#"{"ticket":"t1","title":"printer"}"#)).await;
    assert_eq!((status, replayed), (200, false), "{first}");
    let reordered = "{ \"title\" : \"printer\",\n  \"ticket\": \"t1\" }";
    let (status, again, replayed) = send_noting_replay(open("j1", reordered)).await;
    assert_eq!((status, replayed), (200, true), "other key order and whitespace: the same request, replayed");
    assert_eq!(again, first);
    for other in [r#"{"ticket":"t1","title":"Printer"}"#, r#"{"ticket":"t1","title":"printer","x":1}"#, "[]"] {
        let (status, refused, _) = send_noting_replay(open("j1", other)).await;
        assert_eq!(status, 422, "{other}: another body; {refused}");
        assert!(refused["error"].as_str().unwrap().contains("another body"), "{refused}");
    }
    app.stop().await;
}

/// Two app instances over one store (as on FoundationDB) race requests with one key: the
/// key's record, written in the append transaction, lets exactly one of them run. (Closing
/// decides without looking at the state, so only the record stops a second close.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_racing_one_key_run_the_command_once() {
    let dir = tempfile::tempdir().unwrap();
    let test = open_store(0.0);
    let backend = test.store.clone();
    let config = AppConfig::with_data_dir(dir.path());
    let mut instances = Vec::new();
    for _ in 0..2 {
        let app = App::with_backend(backend.clone(), &config).unwrap().provide(std::sync::Arc::new(Pager::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.serve(listener, async move {
            let _ = stopped.await;
        }));
        instances.push((url, stop, task));
    }
    let http = reqwest::Client::new();
    for round in 0..20 {
        let racers: Vec<_> = (0..6)
            .map(|n| {
                let request = http
                    .post(format!("{}/commands/close-ticket", instances[n % 2].0))
                    .header("Idempotency-Key", format!("race-{round}"))
                    .json(&json!({ "ticket": format!("race-{round}") }));
                tokio::spawn(async move { send_noting_replay(request).await })
            })
            .collect();
        let mut answers = Vec::new();
        for racer in racers {
            answers.push(racer.await.unwrap());
        }
        let ran: Vec<_> = answers.iter().filter(|(status, _, replayed)| *status == 200 && !replayed).collect();
        assert_eq!(ran.len(), 1, "round {round}: {answers:?}");
        for (status, body, replayed) in &answers {
            match (status, replayed) {
                (200, true) => assert_eq!(body, &ran[0].1, "round {round}: a replay is the answer of the run"),
                (200, false) => {}
                (409, false) => {} // A duplicate while the first runs in the same instance.
                other => panic!("round {round}: {other:?} {body}"),
            }
        }
    }
    let closed = Query::from(QueryItem::types([TicketClosed::NAME]));
    let events: Vec<_> =
        futures::TryStreamExt::try_collect(backend.events().read(closed, fairway::dcb::ReadOptions::forwards()))
            .await
            .unwrap();
    assert_eq!(events.len(), 20, "one ticket closed per key");
    for (_, stop, task) in instances {
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
    }
    test.clear().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_command_is_a_json_500_and_releases_its_key() {
    let (app, _dir) = start(std::sync::Arc::new(Pager::default())).await;
    let http = reqwest::Client::new();
    let close = || {
        http.post(app.url("/commands/close-ticket"))
            .header("Idempotency-Key", "p1")
            .json(&json!({ "ticket": "fragile" }))
    };
    let response = close().send().await.expect("an answer, not a dropped connection");
    assert_eq!(response.status().as_u16(), 500);
    let failed: Value = response.json().await.expect("a JSON body");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("panicked") && error.contains("/commands/close-ticket"), "{failed}");
    // The retry with the same key runs (it is neither 409 nor the stored 500).
    let (status, closed, replayed) = send_noting_replay(close()).await;
    assert_eq!((status, replayed), (200, false), "{closed}");
    assert_eq!(send_noting_replay(close()).await, (200, closed, true));
    let (status, _, _) = send_noting_replay(http.get(app.url("/health"))).await;
    assert_eq!(status, 200, "the app still serves");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_and_slices_are_served() {
    let (app, _dir) = start(std::sync::Arc::new(Pager::default())).await;
    let http = reqwest::Client::new();
    let mut last = String::new();
    for i in 0..5 {
        let request =
            http.post(app.url("/commands/open-ticket")).json(&json!({ "ticket": format!("t{i}"), "title": "t" }));
        last = send_noting_replay(request).await.1["last_position"].as_str().unwrap().to_owned();
    }
    let (status, _, _) = send_noting_replay(http.get(app.url(&format!("/views/tickets?after={last}")))).await;
    assert_eq!(status, 200);
    let (_, progress, _) = send_noting_replay(http.get(app.url("/progress"))).await;
    let tickets = &progress["views"][0];
    assert_eq!((tickets["name"].as_str(), tickets["processed"].as_u64()), (Some("tickets"), Some(5)), "{progress}");
    assert_eq!((tickets["remaining"].as_u64(), tickets["total"].as_u64()), (Some(0), Some(5)));
    assert_eq!(tickets["checkpoint"].as_str(), Some(last.as_str()));
    let (_, slices, _) = send_noting_replay(http.get(app.url("/slices"))).await;
    assert_eq!(slices["automations"][0]["name"], "page-on-new-ticket", "{slices}");
    assert!(slices["automations"][0]["type"].as_str().unwrap().ends_with("PageOnNewTicket"));
    assert_eq!(slices["commands"][1]["name"], "open-ticket");
    app.stop().await;
}
