//! Supervised background tasks over real HTTP: a projector that fails on an event, one that
//! panics, and an automation whose store fails make `/health` answer 503 naming each failing
//! task and why; once the cause goes away the tasks recover by themselves, nothing is lost,
//! and `/health` answers 200 again. Shutdown stays graceful while tasks are failing.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use fairway::app::{SupervisionPolicy, TaskState};
use fairway::dcb::kv::{KeyValue, Watch};
use fairway::dcb::{AppendCondition, Appended, EventStore, Query, RawEvent, Receipt, StorageError};
use fairway::testkit::TestApp;
use fairway::{
    App, AppConfig, Automation, AutomationContext, AutomationError, Command, Decision, Event, EventSet, QueueSettings,
    View, ViewError, ViewTx, automation, command, view,
};
use fairway_core::backend::{Backend, DynTx, ErasedBody, StateStore, TxFailure};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use support::{eventually, open_store};

/// How long a test waits for what happens in the background.
const WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Serialize, Deserialize, Event)]
struct NoteTaken {
    #[tag("note")]
    note: String,
    text: String,
}

#[derive(Debug, Deserialize)]
struct TakeNote {
    note: String,
    text: String,
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[command]
impl Command for TakeNote {
    const NAME: &'static str = "take-note";
    type Events = NoteTaken;
    type State = ();
    type Error = Never;

    fn query(&self) -> Query {
        NoteTaken::query()
    }

    fn evolve(&self, _: &mut (), _: NoteTaken) {}

    fn decide(&self, _: &()) -> Result<Decision, Never> {
        Ok(Decision::event(NoteTaken { note: self.note.clone(), text: self.text.clone() }))
    }
}

/// While set, the `notes` view refuses notes reading "poison" and panics on "boom".
static FRAGILE: AtomicBool = AtomicBool::new(false);

#[derive(Default)]
struct Notes;

#[view]
impl View for Notes {
    const NAME: &'static str = "notes";
    const VERSION: u32 = 1;
    type Events = NoteTaken;

    async fn apply(&self, taken: NoteTaken, tx: &ViewTx) -> Result<(), ViewError> {
        if FRAGILE.load(Ordering::SeqCst) {
            match taken.text.as_str() {
                "poison" => {
                    return Err(ViewError::Document { key: taken.note, reason: "refusing the poisoned note".into() });
                }
                "boom" => panic!("the note exploded"),
                _ => {}
            }
        }
        tx.put(&taken.note, &taken.text)
    }
}

/// Counts the notes the `echo` automation handled (provided per app).
#[derive(Default)]
struct Handled(AtomicUsize);

#[derive(Default)]
struct Echo;

#[automation]
impl Automation for Echo {
    const NAME: &'static str = "echo";
    type Events = NoteTaken;

    async fn handle(&self, _: NoteTaken, ctx: &AutomationContext) -> Result<(), AutomationError> {
        ctx.dependency::<Arc<Handled>>()?.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn settings(&self) -> QueueSettings {
        QueueSettings {
            lease: Duration::from_secs(5),
            max_attempts: 3,
            retry_backoff: Duration::from_millis(10),
            poll: Duration::from_millis(20),
            workers: 2,
        }
    }
}

fn quick() -> SupervisionPolicy {
    SupervisionPolicy {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        stable_after: Duration::from_millis(300),
        down_after: 3,
    }
}

async fn health(client: &reqwest::Client, base: &str) -> (u16, Value) {
    let response = client.get(format!("{base}/health")).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn names(tasks: &Value) -> Vec<String> {
    tasks.as_array().unwrap().iter().map(|t| t["task"].as_str().unwrap().to_owned()).collect()
}

async fn take_note(client: &reqwest::Client, base: &str, note: &str, text: &str) {
    let response = client
        .post(format!("{base}/commands/take-note"))
        .json(&json!({ "note": note, "text": text }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{}", response.text().await.unwrap());
}

async fn note(client: &reqwest::Client, base: &str, note: &str) -> Option<String> {
    let response = client.get(format!("{base}/views/notes/{note}")).send().await.unwrap();
    match response.status().as_u16() {
        200 => Some(response.json().await.unwrap()),
        404 => None,
        other => panic!("GET note {note}: {other}"),
    }
}

/// Waits for `/health` to be 503 with exactly `failing` failing, in `state`; returns the body.
async fn failing(client: &reqwest::Client, base: &str, failing: &[&str], state: TaskState) -> Value {
    let state = serde_json::to_value(state).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = health(client, base).await;
        let failing_as_expected = names(&body["failing"]) == failing
            && body["failing"].as_array().unwrap().iter().all(|t| t["state"] == state);
        if status == 503 && failing_as_expected {
            assert_eq!(body["status"], "unavailable");
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for 503 naming {failing:?} as {state}; last answer {status}: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn healthy(client: &reqwest::Client, base: &str) -> Value {
    let mut body = Value::Null;
    eventually("200 from /health", WAIT, async || {
        let (status, got) = health(client, base).await;
        body = got;
        status == 200
    })
    .await;
    assert_eq!(body["status"], "ok");
    assert_eq!(body["failing"], json!([]));
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_failing_on_an_event_is_reported_then_recovers_when_the_cause_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let handled = Arc::new(Handled::default());
    let config = AppConfig::with_data_dir(dir.path());
    let provided = handled.clone();
    let app = TestApp::start_with(config, move |app: App| app.supervision(quick()).provide(provided)).await;
    let (client, base) = (reqwest::Client::new(), app.url(""));

    let body = healthy(&client, &base).await;
    let tasks = names(&body["tasks"]);
    for task in ["projector:notes", "enqueuer:echo", "worker:echo:0", "worker:echo:1", "sweeper:idempotency"] {
        assert!(tasks.contains(&task.to_owned()), "{task} in {tasks:?}");
    }
    assert!(body["tasks"].as_array().unwrap().iter().all(|t| t["state"] == "running"), "{body}");
    take_note(&client, &base, "n1", "fine").await;
    eventually("n1 in the view", WAIT, async || note(&client, &base, "n1").await.is_some()).await;

    FRAGILE.store(true, Ordering::SeqCst);
    take_note(&client, &base, "n2", "poison").await;
    take_note(&client, &base, "n3", "after the poison").await;
    let body = failing(&client, &base, &["projector:notes"], TaskState::Down).await;
    let projector = &body["failing"][0];
    assert_eq!(projector["role"], "projector");
    assert_eq!(projector["slice"], "notes");
    let error = projector["error"].as_str().unwrap();
    assert!(error.contains("refusing the poisoned note"), "{error}");
    assert!(projector["failures"].as_u64().unwrap() >= 3, "{projector}");
    assert_eq!(note(&client, &base, "n2").await, None, "the failing batch was not applied");

    FRAGILE.store(false, Ordering::SeqCst);
    let body = healthy(&client, &base).await;
    let recovered = body["tasks"].as_array().unwrap().iter().find(|t| t["task"] == "projector:notes").unwrap();
    assert!(recovered["restarts"].as_u64().unwrap() >= 3, "{recovered}");
    assert_eq!(note(&client, &base, "n2").await.as_deref(), Some("poison"), "applied after recovery");
    assert_eq!(note(&client, &base, "n3").await.as_deref(), Some("after the poison"));

    // A panic is a failure like any other: caught, reported, retried.
    FRAGILE.store(true, Ordering::SeqCst);
    take_note(&client, &base, "n4", "boom").await;
    let body = failing(&client, &base, &["projector:notes"], TaskState::Down).await;
    assert_eq!(body["failing"][0]["error"], "panicked: the note exploded");
    FRAGILE.store(false, Ordering::SeqCst);
    healthy(&client, &base).await;
    assert_eq!(note(&client, &base, "n4").await.as_deref(), Some("boom"));
    eventually("every note echoed", WAIT, async || handled.0.load(Ordering::SeqCst) == 4).await;
    tokio::time::timeout(Duration::from_secs(20), app.stop()).await.expect("stops within the grace");
}

/// A backend whose transactions fail on the keys under `prefix` while `broken` is set, as
/// a store that lost part of its disk would.
struct Flaky {
    inner: Arc<dyn Backend>,
    prefix: Vec<u8>,
    broken: Arc<AtomicBool>,
}

struct FlakyTx {
    inner: Arc<dyn DynTx>,
    prefix: Vec<u8>,
    broken: Arc<AtomicBool>,
}

impl FlakyTx {
    fn check(&self, key: &[u8]) -> Result<(), StorageError> {
        if self.broken.load(Ordering::SeqCst) && key.starts_with(&self.prefix) {
            return Err(StorageError::Engine("the queue's disk is unplugged".into()));
        }
        Ok(())
    }
}

impl DynTx for FlakyTx {
    fn get<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<Option<Vec<u8>>, StorageError>> {
        async move {
            self.check(key)?;
            self.inner.get(key).await
        }
        .boxed()
    }

    fn scan<'a>(
        &'a self,
        begin: &'a [u8],
        end: &'a [u8],
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<KeyValue>, StorageError>> {
        async move {
            self.check(begin)?;
            self.inner.scan(begin, end, limit).await
        }
        .boxed()
    }

    fn set(&self, key: &[u8], value: &[u8]) {
        self.inner.set(key, value)
    }

    fn clear(&self, key: &[u8]) {
        self.inner.clear(key)
    }

    fn clear_range(&self, begin: &[u8], end: &[u8]) {
        self.inner.clear_range(begin, end)
    }

    fn clock_micros(&self) -> BoxFuture<'_, Result<u64, StorageError>> {
        self.inner.clock_micros()
    }

    fn set_background(&self) {
        self.inner.set_background()
    }
}

impl StateStore for Flaky {
    fn keyspace(&self, name: &str) -> Vec<u8> {
        self.inner.keyspace(name)
    }

    fn transact_erased<'a, 'b: 'a>(
        &'a self,
        body: &'a ErasedBody<'b>,
    ) -> BoxFuture<'a, Result<Box<dyn std::any::Any + Send>, TxFailure>> {
        async move {
            let wrapped = |tx: Arc<dyn DynTx>| {
                let tx: Arc<dyn DynTx> =
                    Arc::new(FlakyTx { inner: tx, prefix: self.prefix.clone(), broken: self.broken.clone() });
                body(tx)
            };
            self.inner.transact_erased(&wrapped).await
        }
        .boxed()
    }

    fn watch_any(&self, keys: Vec<Vec<u8>>) -> BoxFuture<'_, Result<Watch, StorageError>> {
        self.inner.watch_any(keys)
    }
}

impl Backend for Flaky {
    fn events(&self) -> Arc<dyn EventStore> {
        self.inner.events()
    }

    fn append_with_receipt(
        &self,
        events: Vec<RawEvent>,
        conditions: Vec<AppendCondition>,
        receipt: Receipt,
    ) -> BoxFuture<'_, Result<Appended, fairway::dcb::Error>> {
        self.inner.append_with_receipt(events, conditions, receipt)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automation_whose_store_fails_is_reported_then_catches_up_and_shutdown_stays_graceful() {
    let dir = tempfile::tempdir().unwrap();
    let test = open_store(0.0);
    let store: Arc<dyn Backend> = test.store.clone();
    let broken = Arc::new(AtomicBool::new(false));
    let prefix = store.keyspace("automation/echo");
    let backend = Arc::new(Flaky { inner: store, prefix, broken: broken.clone() });
    let handled = Arc::new(Handled::default());
    let app = App::with_backend(backend, &AppConfig::with_data_dir(dir.path()))
        .unwrap()
        .supervision(quick())
        .provide(handled.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();

    healthy(&client, &base).await;
    take_note(&client, &base, "n1", "before").await;
    eventually("n1 echoed", WAIT, async || handled.0.load(Ordering::SeqCst) == 1).await;

    broken.store(true, Ordering::SeqCst);
    take_note(&client, &base, "n2", "while broken").await;
    let body = failing(&client, &base, &["enqueuer:echo", "worker:echo:0", "worker:echo:1"], TaskState::Down).await;
    for task in body["failing"].as_array().unwrap() {
        let error = task["error"].as_str().unwrap();
        assert!(error.contains("the queue's disk is unplugged"), "{task}");
        assert!(task["retry_at_ms"].as_u64().is_some(), "{task}");
    }
    assert_eq!(note(&client, &base, "n2").await.as_deref(), Some("while broken"), "the projector is unaffected");
    assert_eq!(handled.0.load(Ordering::SeqCst), 1);

    broken.store(false, Ordering::SeqCst);
    healthy(&client, &base).await;
    eventually("n2 echoed after recovery", WAIT, async || handled.0.load(Ordering::SeqCst) == 2).await;

    // Shutting down while tasks are failing: the supervisors stop retrying and serve ends.
    broken.store(true, Ordering::SeqCst);
    take_note(&client, &base, "n3", "broken again").await;
    failing(&client, &base, &["enqueuer:echo", "worker:echo:0", "worker:echo:1"], TaskState::Down).await;
    stop.send(()).unwrap();
    let served = tokio::time::timeout(Duration::from_secs(20), server).await.expect("stops within the grace");
    served.unwrap().unwrap();
    test.clear().await;
}
