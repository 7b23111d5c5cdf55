//! Views with several app instances on one store: runtimes of one view in this process (or
//! a child process) stand for the instances. One instance at a time projects a view
//! version, under a lease in the store; a holder that stops or is killed is taken over
//! within seconds; whoever projected, the view equals the fold of the log; an instance of
//! an older version neither re-activates it nor wipes the newer one, and its reads fail
//! (503 over HTTP) naming both versions; `wait_for` sleeps on a watch of the checkpoint
//! instead of polling. Under `FAIRWAY_TEST_ENGINE=fdb` the store is a fresh namespace of
//! the cluster `FAIRWAY_FDB_CLUSTER_FILE` names, else an embedded store.

mod common;
mod support;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{CourseEvents, DefineCourse, SubscribeStudent};
use fairway::dcb::{EmbeddedEngine, Position, Query, ReadOptions};
use fairway::runtime::{CommandRunner, Store, StoredState, ViewRuntime};
use fairway::testkit::runs_on_foundationdb as on_foundationdb;
use fairway::{App, AppConfig, EventSet, View, ViewError, ViewTx, view};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use support::{eventually, send};

/// How long a test waits for what happens in the background (a lease lasts 5 s).
const WAIT: Duration = Duration::from_secs(30);
/// The child process's store: `<directory>\n<namespace>`.
const CHILD: &str = "FAIRWAY_VIEW_INSTANCES_CHILD";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Row {
    capacity: u32,
    taken: u32,
}

/// Seats per course (`course/<id>`), and the events each instance applied
/// (`applied-by/<instance>`, the label its runtime got): who projected shows in the data.
struct Seats {
    instance: String,
    /// How often the view's query was asked for: once per look at the log.
    queries: Arc<AtomicUsize>,
}

impl Seats {
    fn new(instance: &str) -> Self {
        Seats { instance: instance.into(), queries: Arc::default() }
    }
}

impl View for Seats {
    const NAME: &'static str = "seats";
    const VERSION: u32 = 1;
    type Events = CourseEvents;

    fn query(&self) -> Query {
        self.queries.fetch_add(1, Ordering::SeqCst);
        CourseEvents::query()
    }

    async fn apply(&self, event: CourseEvents, tx: &ViewTx) -> Result<(), ViewError> {
        match event {
            CourseEvents::Defined(defined) => {
                tx.put(&format!("course/{}", defined.course_id), &Row { capacity: defined.capacity, taken: 0 })?
            }
            CourseEvents::Subscribed(subscribed) => {
                let key = format!("course/{}", subscribed.course_id);
                let mut row: Row = tx.get(&key).await?.expect("course defined first");
                row.taken += 1;
                tx.put(&key, &row)?
            }
        }
        tx.update(&format!("applied-by/{}", self.instance), |n: &mut u64| *n += 1).await
    }
}

/// Version 2 of the same view, in another shape: the seats left per course.
#[derive(Default)]
struct SeatsV2;

impl View for SeatsV2 {
    const NAME: &'static str = "seats";
    const VERSION: u32 = 2;
    type Events = CourseEvents;

    async fn apply(&self, event: CourseEvents, tx: &ViewTx) -> Result<(), ViewError> {
        seats_left(event, tx, "course/").await
    }
}

/// Folds `event` into the seats left per course, under `prefix` followed by the course id.
async fn seats_left(event: CourseEvents, tx: &ViewTx, prefix: &str) -> Result<(), ViewError> {
    match event {
        CourseEvents::Defined(defined) => tx.put(&format!("{prefix}{}", defined.course_id), &defined.capacity),
        CourseEvents::Subscribed(subscribed) => {
            tx.update(&format!("{prefix}{}", subscribed.course_id), |left: &mut u32| *left -= 1).await
        }
    }
}

/// The view the app instances serve: seats left per course.
#[derive(Default)]
struct Courses;

#[view]
impl View for Courses {
    const NAME: &'static str = "courses";
    const VERSION: u32 = 1;
    type Events = CourseEvents;

    async fn apply(&self, event: CourseEvents, tx: &ViewTx) -> Result<(), ViewError> {
        seats_left(event, tx, "").await
    }
}

/// Its next version, run by hand (a newer deploy): the capacity alone.
#[derive(Default)]
struct CoursesV2;

impl View for CoursesV2 {
    const NAME: &'static str = "courses";
    const VERSION: u32 = 2;
    type Events = common::CourseDefined;

    async fn apply(&self, defined: common::CourseDefined, tx: &ViewTx) -> Result<(), ViewError> {
        tx.put(&defined.course_id, &defined.capacity)
    }
}

/// The store the test's instances share, and the embedded engine to close, if embedded.
struct Shared {
    store: Arc<dyn Store>,
    embedded: Option<Arc<EmbeddedEngine>>,
}

impl Shared {
    /// Namespace `namespace` of the cluster under `FAIRWAY_TEST_ENGINE=fdb`, else the
    /// embedded store in `dir`.
    fn open(dir: &std::path::Path, namespace: &str) -> Self {
        #[cfg(feature = "fdb")]
        if on_foundationdb() {
            let cluster = std::env::var("FAIRWAY_FDB_CLUSTER_FILE").expect("FAIRWAY_TEST_ENGINE=fdb needs a cluster");
            let retry = fairway::dcb::RetryPolicy::default();
            let engine = fairway::dcb::FdbEngine::open(Some(&cluster), retry).expect("the cluster opens");
            let store = fairway::dcb::DcbStore::new(Arc::new(engine), namespace).expect("namespace");
            return Shared { store: Arc::new(store), embedded: None };
        }
        let (engine, store) = common::open_store(dir, namespace);
        Shared { store, embedded: Some(engine) }
    }

    /// Releases an embedded store for another process.
    fn close(self) {
        if let Some(engine) = self.embedded {
            common::close_store(engine, self.store);
        }
    }
}

/// A namespace no other test uses (on a cluster every test shares).
fn fresh_namespace() -> String {
    format!("view-instances-{:016x}", rand::random::<u64>())
}

/// `writers` tasks racing: each defines `rounds` courses (named after `wave`) and
/// subscribes students to its own and its neighbour's courses (some subscriptions are
/// refused: full, not yet defined). Returns the head of the log afterwards.
async fn race_writers(store: &Arc<dyn Store>, wave: &str, writers: usize, rounds: usize) -> Position {
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (runner, wave) = (CommandRunner::new(store.events()), wave.to_owned());
            tokio::spawn(async move {
                for r in 0..rounds {
                    let define = DefineCourse { course_id: format!("{wave}.{w}-{r}"), capacity: 2 };
                    runner.execute(&define).await.expect("a new course is defined");
                    for course in [format!("{wave}.{w}-{}", r / 2), format!("{wave}.{}-{r}", (w + 1) % writers)] {
                        let _ =
                            runner.execute(&SubscribeStudent { course_id: course, student_id: format!("s{w}") }).await;
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a writer finishes");
    }
    store.events().head().await.unwrap().expect("events were appended")
}

/// The view computed straight from the log: the oracle.
async fn fold_of_the_log(store: &Arc<dyn Store>) -> (BTreeMap<String, Row>, u64) {
    let events: Vec<_> =
        store.events().read(CourseEvents::query(), ReadOptions::forwards()).try_collect().await.unwrap();
    let mut rows = BTreeMap::new();
    for event in &events {
        match CourseEvents::decode(&event.event).unwrap().unwrap() {
            CourseEvents::Defined(defined) => {
                rows.insert(format!("course/{}", defined.course_id), Row { capacity: defined.capacity, taken: 0 });
            }
            CourseEvents::Subscribed(subscribed) => {
                rows.get_mut(&format!("course/{}", subscribed.course_id)).unwrap().taken += 1
            }
        }
    }
    (rows, events.len() as u64)
}

async fn rows(view: &ViewRuntime<Seats>) -> BTreeMap<String, Row> {
    view.read(|tx| async move { tx.range::<Row>("course/").await }).await.unwrap().into_iter().collect()
}

/// Events applied per instance.
async fn applied_by(view: &ViewRuntime<Seats>) -> BTreeMap<String, u64> {
    let counts = view.read(|tx| async move { tx.range::<u64>("applied-by/").await }).await.unwrap();
    counts.into_iter().map(|(key, n)| (key["applied-by/".len()..].to_owned(), n)).collect()
}

async fn holder<V: View>(view: &ViewRuntime<V>) -> Option<String> {
    view.progress().await.unwrap().holder
}

/// The view reflects the whole log, applied exactly once, by `instances` only.
async fn assert_is_the_fold_of_the_log(view: &ViewRuntime<Seats>, store: &Arc<dyn Store>, instances: &[&str]) {
    let (expected, events) = fold_of_the_log(store).await;
    assert_eq!(rows(view).await, expected, "the view equals the fold of the log");
    let applied = applied_by(view).await;
    assert_eq!(applied.values().sum::<u64>(), events, "every event applied exactly once: {applied:?}");
    assert!(applied.keys().all(|instance| instances.contains(&instance.as_str())), "applied by {applied:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_several_instances_projects_and_the_view_is_the_fold_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let shared = Shared::open(dir.path(), &fresh_namespace());
    let names = ["a", "b", "c"];
    let views: Vec<_> = names.map(|name| ViewRuntime::new(Seats::new(name), shared.store.clone())).into();
    let projectors: Vec<_> = views.iter().zip(names).map(|(view, name)| tokio::spawn(view.clone().run(name))).collect();

    let head = race_writers(&shared.store, "race", 4, 15).await;
    views[1].wait_for(head, WAIT).await.unwrap();
    let holder = holder(&views[2]).await.expect("an instance holds the lease");
    assert!(names.contains(&holder.as_str()), "{holder}");
    assert_is_the_fold_of_the_log(&views[0], &shared.store, &[&holder]).await;
    let applied = applied_by(&views[0]).await;
    assert_eq!(applied.keys().collect::<Vec<_>>(), [&holder], "only the lease holder projected");
    for projector in &projectors {
        assert!(!projector.is_finished(), "an instance without the lease stands by");
    }
    projectors.iter().for_each(|p| p.abort());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_holder_is_taken_over_within_seconds_and_nothing_is_applied_twice() {
    let dir = tempfile::tempdir().unwrap();
    let shared = Shared::open(dir.path(), &fresh_namespace());
    let names = ["a", "b", "c"];
    let views: Vec<_> = names.map(|name| ViewRuntime::new(Seats::new(name), shared.store.clone())).into();
    let mut projectors: BTreeMap<_, _> =
        views.iter().zip(names).map(|(view, name)| (name, tokio::spawn(view.clone().run(name)))).collect();

    let head = race_writers(&shared.store, "first", 2, 10).await;
    views[0].wait_for(head, WAIT).await.unwrap();
    let first = holder(&views[0]).await.expect("an instance holds the lease");
    let stopped = projectors.remove(first.as_str()).unwrap();
    stopped.abort();
    assert!(stopped.await.unwrap_err().is_cancelled());

    // Written while the lease of the stopped holder runs out.
    let head = race_writers(&shared.store, "second", 2, 10).await;
    eventually("another instance takes the lease over", WAIT, async || {
        holder(&views[0]).await.is_some_and(|now| now != first)
    })
    .await;
    views[0].wait_for(head, WAIT).await.unwrap();
    let second = holder(&views[0]).await.unwrap();
    assert_is_the_fold_of_the_log(&views[0], &shared.store, &[&first, &second]).await;
    assert!(applied_by(&views[0]).await[&second] > 0, "the new holder applied what came after");
    projectors.values().for_each(|p| p.abort());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_instance_releases_its_lease_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let shared = Shared::open(dir.path(), &fresh_namespace());
    let head = race_writers(&shared.store, "first", 2, 3).await;
    let a = ViewRuntime::new(Seats::new("a"), shared.store.clone());
    let running = tokio::spawn(a.clone().run("a"));
    a.wait_for(head, WAIT).await.unwrap();
    assert_eq!(holder(&a).await.as_deref(), Some("a"));
    running.abort();
    assert!(running.await.unwrap_err().is_cancelled());

    a.release("b").await.unwrap();
    assert_eq!(holder(&a).await.as_deref(), Some("a"), "only the holder gives the lease up");
    a.release("a").await.unwrap();
    assert_eq!(holder(&a).await, None, "the lease is free at once, not when it would have expired");
    let b = ViewRuntime::new(Seats::new("b"), shared.store.clone());
    let running = tokio::spawn(b.clone().run("b"));
    let head = race_writers(&shared.store, "second", 2, 3).await;
    b.wait_for(head, WAIT).await.unwrap();
    assert_eq!(holder(&b).await.as_deref(), Some("b"));
    assert_is_the_fold_of_the_log(&b, &shared.store, &["a", "b"]).await;
    running.abort();
}

/// The child: runs the projector as instance `child` until killed, and prints `holding`
/// once it holds the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of a_killed_holders_lease_is_taken_over; started by it"]
async fn view_instances_child_process() {
    let store = std::env::var(CHILD).expect("run by a_killed_holders_lease_is_taken_over");
    let (dir, namespace) = store.split_once('\n').unwrap();
    let shared = Shared::open(std::path::Path::new(dir), namespace);
    let view = ViewRuntime::new(Seats::new("child"), shared.store.clone());
    let projector = tokio::spawn(view.clone().run("child"));
    eventually("the child holds the lease", WAIT, async || holder(&view).await.as_deref() == Some("child")).await;
    println!("holding");
    projector.await.unwrap().expect("the projector runs until killed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holders_lease_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let namespace = fresh_namespace();
    let shared = Shared::open(dir.path(), &namespace);
    race_writers(&shared.store, "first", 2, 10).await;
    // The embedded store belongs to one process at a time: the child's while it runs.
    let shared = if on_foundationdb() {
        Some(shared)
    } else {
        shared.close();
        None
    };

    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["view_instances_child_process", "--exact", "--ignored", "--nocapture"])
        .env(CHILD, format!("{}\n{namespace}", dir.path().display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let holding = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout).lines().map_while(Result::ok).any(|line| line == "holding")
    });
    assert!(tokio::time::timeout(WAIT, holding).await.unwrap().unwrap(), "the child takes the lease");

    // On FoundationDB this instance runs beside the child, standing by.
    let beside = shared.map(|shared| {
        let parent = ViewRuntime::new(Seats::new("parent"), shared.store.clone());
        (tokio::spawn(parent.clone().run("parent")), parent, shared)
    });
    if let Some((_, parent, _)) = &beside {
        assert_eq!(holder(parent).await.as_deref(), Some("child"), "the child keeps its lease while it lives");
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let (projector, parent, shared) = beside.unwrap_or_else(|| {
        let shared = Shared::open(dir.path(), &namespace);
        let parent = ViewRuntime::new(Seats::new("parent"), shared.store.clone());
        (tokio::spawn(parent.clone().run("parent")), parent, shared)
    });

    let head = race_writers(&shared.store, "second", 2, 5).await;
    eventually("the killed child's lease is taken over", WAIT, async || {
        holder(&parent).await.as_deref() == Some("parent")
    })
    .await;
    parent.wait_for(head, WAIT).await.unwrap();
    assert_is_the_fold_of_the_log(&parent, &shared.store, &["child", "parent"]).await;
    projector.abort();
}

/// Runs `view` until it is active and reflects `position`.
async fn caught_up<V: View>(view: &ViewRuntime<V>, position: Position) {
    view.wait_for(position, WAIT).await.unwrap();
    eventually(&format!("{} version {} becomes active", V::NAME, V::VERSION), WAIT, async || {
        view.progress().await.unwrap().active
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_instance_neither_reactivates_its_version_nor_wipes_the_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    let shared = Shared::open(dir.path(), &fresh_namespace());
    let store = &shared.store;
    let head = race_writers(store, "first", 2, 4).await;
    let v1 = ViewRuntime::new(Seats::new("old"), store.clone());
    let old = tokio::spawn(v1.clone().run("old"));
    caught_up(&v1, head).await;

    // A rolling deploy: an instance of version 2 rebuilds beside the old one, then switches.
    let v2 = ViewRuntime::new(SeatsV2, store.clone());
    let new = tokio::spawn(v2.clone().run("new"));
    caught_up(&v2, head).await;
    // Events the old projector receives too: it finds its version superseded.
    let head = race_writers(store, "second", 2, 4).await;
    v2.wait_for(head, WAIT).await.unwrap();

    // An old instance started now stands down at once and for good.
    let late = tokio::time::timeout(Duration::from_secs(2), v1.clone().run("late")).await;
    assert!(late.is_err(), "a superseded projector neither projects nor ends: {late:?}");
    let refused = v1.catch_up().await.unwrap_err();
    assert!(matches!(refused, ViewError::Superseded { view: "seats", version: 1, active: 2 }), "{refused}");
    let refused = v1.read(|tx| async move { tx.range::<Row>("course/").await }).await.unwrap_err();
    assert!(matches!(refused, ViewError::Superseded { .. }), "{refused}");
    let message = refused.to_string();
    assert!(message.contains("version 1") && message.contains("version 2"), "{message}");
    let refused = v1.wait_for(head, WAIT).await.unwrap_err();
    assert!(matches!(refused, ViewError::Superseded { .. }), "{refused}");

    let stored = StoredState::new(store.clone()).views().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].active, Some(2), "the active version stays the newer one");
    let versions: Vec<u32> = stored[0].versions.iter().map(|v| v.version).collect();
    assert_eq!(versions, [2], "the old instances wrote nothing of version 1 again");
    let left: BTreeMap<String, u32> =
        v2.read(|tx| async move { tx.range::<u32>("course/").await }).await.unwrap().into_iter().collect();
    let expected: BTreeMap<String, u32> =
        fold_of_the_log(store).await.0.into_iter().map(|(key, row)| (key, row.capacity - row.taken)).collect();
    assert_eq!(left, expected, "version 2 is the fold of the whole log");
    let progress = v1.progress().await.unwrap();
    assert_eq!((progress.active, progress.checkpoint, progress.holder), (false, None, None));
    assert!(!old.is_finished(), "the old projector stood down without failing");
    old.abort();
    new.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_sleeps_until_the_checkpoint_passes_the_position() {
    let dir = tempfile::tempdir().unwrap();
    let shared = Shared::open(dir.path(), &fresh_namespace());
    let head = race_writers(&shared.store, "race", 2, 3).await;
    let waiting = Seats::new("reader");
    let looks = waiting.queries.clone();
    let reader = ViewRuntime::new(waiting, shared.store.clone());
    let waiter = tokio::spawn(async move { reader.wait_for(head, Duration::from_secs(120)).await });

    // Nothing is written meanwhile: the waiter looked once and sleeps (polling every 5 ms
    // would have looked about 100 times).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiter.is_finished(), "no projector runs yet");
    assert!(looks.load(Ordering::SeqCst) <= 2, "the waiter looked {} times", looks.load(Ordering::SeqCst));

    let projector = ViewRuntime::new(Seats::new("a"), shared.store.clone());
    let running = tokio::spawn(projector.run("a"));
    let waited = tokio::time::timeout(WAIT, waiter).await.expect("the waiter wakes long before its own timeout");
    waited.unwrap().expect("the view reached the position");
    running.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_instances_share_one_projector_and_a_superseded_one_answers_503() {
    let dir = tempfile::tempdir().unwrap();
    let shared = Shared::open(dir.path(), &fresh_namespace());
    let config = AppConfig::with_data_dir(dir.path());
    let mut instances = Vec::new();
    for _ in 0..2 {
        let app = App::with_backend(shared.store.clone(), &config).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.serve(listener, async move {
            let _ = stopped.await;
        }));
        instances.push((url, stop, task));
    }
    let runner = CommandRunner::new(shared.store.events());
    runner.execute(&DefineCourse { course_id: "c1".into(), capacity: 3 }).await.unwrap();
    let subscribed = runner.execute(&SubscribeStudent { course_id: "c1".into(), student_id: "s1".into() }).await;
    let last = subscribed.unwrap().last_position().unwrap();

    let http = reqwest::Client::new();
    for (url, _, _) in &instances {
        let (status, left) = send(http.get(format!("{url}/views/courses/c1?after={last}"))).await;
        assert_eq!((status, left), (200, Value::from(2)), "read-your-writes on every instance");
    }
    eventually("both instances name the same holder in /progress", WAIT, async || {
        let mut holders = Vec::new();
        for (url, _, _) in &instances {
            let (_, progress) = send(http.get(format!("{url}/progress"))).await;
            holders.push(progress["views"][0]["holder"].as_str().map(str::to_owned));
        }
        holders[0].is_some() && holders[0] == holders[1]
    })
    .await;

    let next = ViewRuntime::new(CoursesV2, shared.store.clone());
    let projector = tokio::spawn(next.clone().run("next-deploy"));
    caught_up(&next, last).await;
    for (url, _, _) in &instances {
        let (status, refused) = send(http.get(format!("{url}/views/courses/c1"))).await;
        assert_eq!(status, 503, "{refused}");
        let message = refused["error"].as_str().unwrap();
        assert!(message.contains("courses version 1") && message.contains("version 2"), "{message}");
    }
    projector.abort();
    for (_, stop, task) in instances {
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
    }
}
