//! The admin API and its guard over real HTTP: the log by query with a cursor, followed live
//! over server-sent events, store facts; admin routes need the admin token when one is set
//! (401 without it, 403 with another, JSON either way) while public routes stay open; a
//! user's own layer applies to every route while projectors and workers keep running; open
//! admin routes are refused on a non-loopback address.

use std::time::Duration;

use fairway::prelude::*;
use fairway::testkit::TestApp;
use fairway::{App, AppConfig, Id};
use serde_json::{Value, json};

#[derive(Debug, Serialize, Deserialize, Event)]
struct Noted {
    #[tag("note")]
    id: Id,
    text: String,
}

#[derive(Debug, Serialize, Deserialize, Event)]
struct NoteAcked {
    #[tag("note")]
    id: Id,
}

#[derive(Debug, Deserialize)]
struct TakeNote {
    id: Id,
    text: String,
}

#[derive(Debug, thiserror::Error)]
#[error("note {0} exists")]
struct Exists(Id);

#[command]
impl Command for TakeNote {
    const NAME: &'static str = "take-note";
    type Events = Noted;
    type State = bool;
    type Error = Exists;

    fn query(&self) -> Query {
        Noted::tagged([self.id.tag("note")]).into()
    }

    fn evolve(&self, exists: &mut bool, _: Noted) {
        *exists = true;
    }

    fn decide(&self, exists: &bool) -> Result<Decision, Exists> {
        ensure!(!exists, Exists(self.id.clone()));
        Ok(Decision::event(Noted { id: self.id.clone(), text: self.text.clone() }))
    }
}

#[derive(Debug, Deserialize)]
struct AckNote {
    id: Id,
}

#[command]
impl Command for AckNote {
    const NAME: &'static str = "ack-note";
    type Events = NoteAcked;
    type State = bool;
    type Error = Exists;

    fn query(&self) -> Query {
        NoteAcked::tagged([self.id.tag("note")]).into()
    }

    fn evolve(&self, acked: &mut bool, _: NoteAcked) {
        *acked = true;
    }

    fn decide(&self, acked: &bool) -> Result<Decision, Exists> {
        Ok(if *acked { Decision::none() } else { Decision::event(NoteAcked { id: self.id.clone() }) })
    }
}

/// Acknowledges every note (a worker running a command).
#[derive(Default)]
struct Acknowledge;

#[automation]
impl Automation for Acknowledge {
    const NAME: &'static str = "acknowledge";
    type Events = Noted;

    async fn handle(&self, noted: Noted, ctx: &AutomationContext) -> Result<(), AutomationError> {
        ctx.execute(&AckNote { id: noted.id }).await?;
        Ok(())
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

struct Client<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
}

impl<'a> Client<'a> {
    /// A client sending `headers` with every request.
    fn new(app: &'a TestApp, headers: &[(&'static str, &str)]) -> Self {
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().unwrap());
        }
        Client { app, http: reqwest::Client::builder().default_headers(map).build().unwrap() }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        (status, serde_json::from_str(&body).unwrap_or_else(|_| panic!("{status} is JSON: {body}")))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(self.app.url(path))).await
    }

    async fn command(&self, name: &str, body: Value) -> (u16, Value) {
        self.command_at(&format!("/commands/{name}"), body).await
    }

    async fn command_at(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.http.post(self.app.url(path)).json(&body)).await
    }

    async fn note(&self, id: &str) -> String {
        let (status, body) = self.command("take-note", json!({ "id": id, "text": format!("text of {id}") })).await;
        assert_eq!(status, 200, "{body}");
        body["last_position"].as_str().unwrap().to_owned()
    }
}

fn positions(page: &Value) -> Vec<String> {
    page["events"].as_array().unwrap().iter().map(|e| e["position"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_reads_by_query_in_pages_and_follows_live() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start_in(dir.path()).await;
    let client = Client::new(&app, &[]);
    let mut noted = Vec::new();
    for id in ["n1", "n2", "n3", "n4", "n5"] {
        noted.push(client.note(id).await);
    }

    // Pages of 2 over the notes, forwards then backwards, following next_cursor.
    for (direction, expected) in [("false", noted.clone()), ("true", noted.iter().rev().cloned().collect())] {
        let (mut seen, mut from) = (Vec::new(), String::new());
        loop {
            let (status, page) =
                client.get(&format!("/admin/api/events?type=Noted&limit=2&backwards={direction}{from}")).await;
            assert_eq!(status, 200, "{page}");
            seen.extend(positions(&page));
            match page["next_cursor"].as_str() {
                Some(next) => from = format!("&from={next}"),
                None => break,
            }
        }
        assert_eq!(seen, expected, "backwards={direction}");
    }
    let (_, one) = client.get("/admin/api/events?tag=note:n3&type=Noted").await;
    assert_eq!(one["events"][0]["payload"], json!({ "id": "n3", "text": "text of n3" }), "{one}");
    assert_eq!(one["events"][0]["tags"], json!(["note:n3"]));
    assert_eq!(one["events"].as_array().unwrap().len(), 1);
    let refused = [
        ("/admin/api/events?sort=asc", "sort"),
        ("/admin/api/events?limit=0", "limit"),
        ("/admin/api/events?tag=oops", "tag"),
        ("/admin/api/events?from=x", "from"),
        ("/admin/api/events?limit=1&limit=2", "limit: given twice"),
        ("/admin/api/events?type=a%20b", "type"),
        ("/admin/api/events/follow?type=a%20b", "type"),
        ("/admin/api/stats?verbose=1", "verbose: unknown parameter"),
        ("/progress?x=1", "x: unknown parameter"),
        ("/metrics?format=json", "format: unknown parameter"),
        ("/automations/acknowledge/dead-letters?limit=1", "limit: unknown parameter"),
        ("/views/notes?limit=1&limit=2", "limit: given twice"),
        ("/views/notes?limit=abc", "limit: "),
        ("/views/notes/n1?after=soon", "after: "),
    ];
    for (path, named) in refused {
        let (status, body) = client.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body["error"].as_str().unwrap().starts_with(named), "{path}: {body}");
    }
    let (status, body) = client.command_at("/commands/take-note?dry=1", json!({ "id": "q1", "text": "t" })).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("dry: unknown parameter; this route takes none")));

    let logged = |page: Value| page["events"].as_array().unwrap().len() as u64;
    let before = logged(client.get("/admin/api/events?limit=10000").await.1);
    let (status, stats) = client.get("/admin/api/stats").await;
    assert_eq!(status, 200, "{stats}");
    let after = logged(client.get("/admin/api/events?limit=10000").await.1);
    let events = stats["events"].as_u64().unwrap();
    assert!(before >= 5 && (before..=after).contains(&events), "{before} <= {events} <= {after}: {stats}");
    assert_eq!(stats["namespace"], app.namespace());
    if !app.on_foundationdb() {
        assert!(stats["bytes_on_disk"].as_u64().unwrap() > 0, "{stats}");
    }
    let head = stats["head"].as_str().unwrap();
    assert!(head >= noted[4].as_str(), "{stats}");

    // Follow from the first note: the stored ones, then a new one as it is appended.
    let url = app.url(&format!("/admin/api/events/follow?type=Noted&from={}", noted[0]));
    let mut response = client.http.get(url).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let mut added = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let followed = loop {
        let data: Vec<Value> = text
            .lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .map(|data| serde_json::from_str(data).unwrap())
            .collect();
        if data.len() == 5 && added.is_none() {
            added = Some(client.note("n6").await);
        }
        if data.len() >= 6 {
            break data;
        }
        let chunk = tokio::time::timeout_at(deadline, response.chunk()).await.expect("events arrive").unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    };
    let followed: Vec<&str> = followed.iter().map(|e| e["position"].as_str().unwrap()).collect();
    let mut expected: Vec<&str> = noted.iter().map(String::as_str).collect();
    expected.push(added.as_deref().unwrap());
    assert_eq!(followed, expected);
    drop(response);
    app.stop().await;
}

// ANCHOR: api_key
/// A user's own check on every route (an API key; the admin token has the
/// `Authorization` header).
async fn api_key(
    request: fairway::axum::extract::Request,
    next: fairway::axum::middleware::Next,
) -> fairway::axum::response::Response {
    use fairway::axum::response::IntoResponse;
    match request.headers().get("x-api-key").and_then(|v| v.to_str().ok()) {
        Some("user-key") => next.run(request).await,
        _ => (fairway::axum::http::StatusCode::UNAUTHORIZED, "sign in first").into_response(),
    }
}
// ANCHOR_END: api_key

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_need_the_admin_token_and_user_layers_guard_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = AppConfig::with_data_dir(dir.path());
    config.admin_token = Some("admin-token".into());
    // ANCHOR: layer
    let app = TestApp::start_with(config, |app: App| app.layer(fairway::axum::middleware::from_fn(api_key))).await;
    // ANCHOR_END: layer

    // The user's layer guards every route, admin ones included, and answers JSON.
    let stranger = Client::new(&app, &[]);
    for path in ["/slices", "/views/notes", "/health", "/admin/api/events"] {
        let (status, body) = stranger.get(path).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("sign in first")), "{path}: {body}");
    }

    // Past it, public routes are open, and projectors and workers run: a note is projected
    // and acknowledged by the automation's command.
    let user = Client::new(&app, &[("x-api-key", "user-key")]);
    let position = user.note("n1").await;
    let (status, doc) = user.get(&format!("/views/notes/n1?after={position}")).await;
    assert_eq!((status, doc), (200, json!("text of n1")));

    // Admin routes need the admin token: 401 without, 403 with another one.
    let wrong = Client::new(&app, &[("x-api-key", "user-key"), ("authorization", "Bearer nope")]);
    let admin = Client::new(&app, &[("x-api-key", "user-key"), ("authorization", "Bearer admin-token")]);
    for path in
        ["/admin/api/events", "/admin/api/stats", "/automations/acknowledge/dead-letters", "/admin/api/progress"]
    {
        let (status, body) = user.get(path).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert!(body["error"].as_str().unwrap().contains("Authorization: Bearer"), "{body}");
        assert_eq!(wrong.get(path).await.0, 403, "{path}");
        assert_eq!(admin.get(path).await.0, 200, "{path}");
    }
    let purge = user.send(user.http.delete(app.url("/automations/acknowledge/dead-letters"))).await;
    assert_eq!(purge.0, 401, "changing a queue is an admin route: {purge:?}");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, acked) = admin.get("/admin/api/events?type=NoteAcked").await;
        if acked["events"].as_array().unwrap().len() == 1 {
            assert_eq!(acked["events"][0]["tags"], json!(["note:n1"]));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the automation's worker runs behind the layer: {acked}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_admin_routes_refuse_rebound_names_and_cross_origin_pages() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start_in(dir.path()).await;
    let tool = Client::new(&app, &[]);
    assert_eq!(tool.get("/admin/api/stats").await.0, 200, "curl and the CLI send neither header");
    let rebound = Client::new(&app, &[("host", "attacker.example:8080")]);
    let (status, body) = rebound.get("/admin/api/events").await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("loopback names only"), "{body}");
    let page = Client::new(&app, &[("origin", "https://evil.example")]);
    let purge = page.send(page.http.delete(app.url("/automations/acknowledge/dead-letters"))).await;
    assert_eq!(purge.0, 403, "{purge:?}");
    assert!(purge.1["error"].as_str().unwrap().contains("cross-origin"), "{purge:?}");
    let absolute = rebound_by_uri(&app).await;
    assert!(absolute.starts_with("HTTP/1.1 403"), "a request in absolute form is judged by its URI's host: {absolute}");
    let authority = app.url("").trim_end_matches('/').to_owned();
    let same = Client::new(&app, &[("origin", authority.as_str())]);
    assert_eq!(same.get("/admin/api/stats").await.0, 200, "the admin page's own requests");
    assert_eq!(rebound.get("/slices").await.0, 200, "public routes are the app's to guard");
    app.stop().await;
}

#[tokio::test]
async fn open_admin_routes_are_refused_on_a_non_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::open(&AppConfig::with_data_dir(dir.path())).unwrap();
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let refused = app.serve(listener, std::future::pending()).await.unwrap_err();
    assert!(refused.to_string().contains("--admin-token"), "{refused}");
    assert!(refused.to_string().contains("--insecure-admin"), "{refused}");

    let other = tempfile::tempdir().unwrap();
    let mut config = AppConfig::with_data_dir(other.path());
    config.insecure_admin = true;
    let app = App::open(&config).unwrap();
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let served = tokio::time::timeout(Duration::from_millis(300), app.serve(listener, std::future::pending())).await;
    assert!(served.is_err(), "told to, it serves (still running after 300 ms)");
}

/// The value of the first sample of `metric` whose labels include every one of `labels`.
fn sample(metrics: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|line| line.starts_with(&format!("{metric}{{")) || line.starts_with(&format!("{metric} ")))
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_commands_requests_lag_queues_and_commits() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start_in(dir.path()).await;
    let client = Client::new(&app, &[]);
    client.note("m1").await;
    client.note("m2").await;
    let (status, _) = client.command("take-note", json!({ "id": "m1", "text": "again" })).await;
    assert_eq!(status, 422);

    // Notes racing on one id read the same events: all but one conflict, decide again and
    // are rejected. Race until a retry happened (the first round nearly always does).
    let scrape = || async { reqwest::get(app.url("/metrics")).await.unwrap().text().await.unwrap() };
    let retries = |metrics: &str| sample(metrics, "fairway_command_retries_total", &["command=\"take-note\""]);
    for round in 0..20 {
        let racing =
            (0..8).map(|_| client.command("take-note", json!({ "id": format!("race-{round}"), "text": "racing" })));
        let statuses: Vec<u16> = futures::future::join_all(racing).await.into_iter().map(|(s, _)| s).collect();
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "one note per id: {statuses:?}");
        if retries(&scrape().await).is_some() {
            break;
        }
    }

    let metrics = scrape().await;
    let retried = retries(&metrics).expect("a racing command was decided again");
    let conflicts = sample(&metrics, "fairway_command_conflicts_total", &["command=\"take-note\""]).unwrap();
    assert!(retried >= 1.0 && conflicts >= retried, "{metrics}");
    assert!(sample(&metrics, "fairway_automation_leased_jobs", &["automation=\"acknowledge\""]).is_some());
    assert!(sample(&metrics, "fairway_store_events", &[]).unwrap() >= 3.0, "{metrics}");
    assert!(metrics.contains("# HELP fairway_commands_total commands run: accepted"), "{metrics}");
    let accepted = ["command=\"take-note\"", "outcome=\"accepted\""];
    assert!(sample(&metrics, "fairway_commands_total", &accepted).unwrap() >= 2.0, "{metrics}");
    let rejected = ["command=\"take-note\"", "outcome=\"rejected\""];
    assert!(sample(&metrics, "fairway_commands_total", &rejected).unwrap() >= 1.0, "{metrics}");
    assert!(sample(&metrics, "fairway_command_duration_seconds_count", &["command=\"take-note\""]).unwrap() >= 3.0);
    let posted = ["method=\"POST\"", "route=\"/commands/{name}\"", "status=\"200\""];
    assert!(sample(&metrics, "fairway_http_requests_total", &posted).unwrap() >= 2.0, "{metrics}");
    assert!(sample(&metrics, "fairway_view_lag_events", &["view=\"notes\""]).is_some(), "{metrics}");
    assert!(sample(&metrics, "fairway_automation_pending_jobs", &["automation=\"acknowledge\""]).is_some());
    assert!(sample(&metrics, "fairway_automation_dead_letters", &["automation=\"acknowledge\""]).is_some());
    if app.on_foundationdb() {
        // The figures below are the embedded store's (its commits, journal and group commits).
        app.stop().await;
        return;
    }
    assert!(metrics.contains("# HELP fairway_store_journal_sync_seconds time to write and sync"), "{metrics}");
    assert!(sample(&metrics, "fairway_store_commits_total", &[]).unwrap() >= 2.0, "{metrics}");
    assert!(sample(&metrics, "fairway_store_transactions_total", &[]).unwrap() >= 2.0, "{metrics}");
    assert!(sample(&metrics, "fairway_store_journal_microseconds_total", &[]).unwrap() > 0.0, "{metrics}");
    assert!(sample(&metrics, "fairway_store_journal_sync_seconds_count", &[]).unwrap() >= 2.0, "{metrics}");
    assert!(sample(&metrics, "fairway_store_journal_sync_seconds_bucket", &["le=\"+Inf\""]).unwrap() >= 2.0);
    let groups = sample(&metrics, "fairway_store_group_commit_transactions_count", &[]).unwrap();
    let grouped = sample(&metrics, "fairway_store_group_commit_transactions_sum", &[]).unwrap();
    assert!(groups >= 2.0 && grouped >= groups, "every group holds a transaction or more: {metrics}");
    assert!(sample(&metrics, "fairway_store_group_commit_transactions_bucket", &["le=\"1024\""]).is_some());
    app.stop().await;
}

/// Sends `GET http://attacker.example/admin/api/stats` (absolute form) with a loopback Host
/// header; returns the raw answer.
async fn rebound_by_uri(app: &TestApp) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.url("").trim_start_matches("http://").trim_end_matches('/').to_owned();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request =
        "GET http://attacker.example/admin/api/stats HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}
