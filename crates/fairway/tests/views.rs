//! Views: projection from the log, read-your-writes, exactly-once with several
//! projectors, and rebuilds into a fresh keyspace on a version bump.

mod common;
mod support;

use std::time::Duration;

use common::{CourseDefined, CourseEvents, DefineCourse, SubscribeStudent};
use fairway::runtime::{CommandRunner, ViewRuntime};
use fairway::{View, ViewError, ViewTx};
use serde::{Deserialize, Serialize};
use support::{open_store, retryable};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CourseRow {
    capacity: u32,
    taken: u32,
}

/// Courses with their seats.
struct CourseList;

impl View for CourseList {
    const NAME: &'static str = "course-list";
    const VERSION: u32 = 1;
    type Events = CourseEvents;

    async fn apply(&self, event: CourseEvents, tx: &ViewTx) -> Result<(), ViewError> {
        match event {
            CourseEvents::Defined(defined) => {
                tx.put(&defined.course_id, &CourseRow { capacity: defined.capacity, taken: 0 })
            }
            CourseEvents::Subscribed(subscribed) => {
                let mut row: CourseRow = tx.get(&subscribed.course_id).await?.expect("course defined first");
                row.taken += 1;
                tx.put(&subscribed.course_id, &row)
            }
        }
    }
}

/// Version 2 of the same view: only the seats left.
struct CourseListV2;

impl View for CourseListV2 {
    const NAME: &'static str = "course-list";
    const VERSION: u32 = 2;
    type Events = CourseEvents;

    async fn apply(&self, event: CourseEvents, tx: &ViewTx) -> Result<(), ViewError> {
        match event {
            CourseEvents::Defined(defined) => tx.put(&defined.course_id, &defined.capacity),
            CourseEvents::Subscribed(subscribed) => {
                tx.update(&subscribed.course_id, |left: &mut u32| *left = left.saturating_sub(1)).await
            }
        }
    }
}

/// Counts every course defined (detects double application).
struct Counter;

impl View for Counter {
    const NAME: &'static str = "counter";
    const VERSION: u32 = 1;
    type Events = CourseDefined;

    async fn apply(&self, _: CourseDefined, tx: &ViewTx) -> Result<(), ViewError> {
        let n: u64 = tx.get("n").await?.unwrap_or(0);
        tx.put("n", &(n + 1))
    }
}

async fn rows(view: &ViewRuntime<CourseList>) -> Vec<(String, CourseRow)> {
    view.read(|tx| async move { tx.range::<CourseRow>("").await }).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_follows_the_log_and_serves_read_your_writes() {
    let test = open_store(0.0);
    let runner = CommandRunner::new(test.store.events());
    runner.execute(&DefineCourse { course_id: "c1".into(), capacity: 3 }).await.unwrap();
    let view = ViewRuntime::new(CourseList, test.store.clone());
    let projector = tokio::spawn(view.clone().run("instance-1"));
    for student in ["s1", "s2"] {
        let executed =
            runner.execute(&SubscribeStudent { course_id: "c1".into(), student_id: student.into() }).await.unwrap();
        view.wait_for(executed.last_position().unwrap(), Duration::from_secs(10)).await.unwrap();
        let taken = rows(&view).await[0].1.taken;
        assert_eq!(taken, if student == "s1" { 1 } else { 2 }, "read-your-writes after {student}");
    }
    runner.execute(&DefineCourse { course_id: "c2".into(), capacity: 9 }).await.unwrap();
    let last = runner.execute(&DefineCourse { course_id: "c3".into(), capacity: 1 }).await.unwrap();
    view.wait_for(last.last_position().unwrap(), Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        rows(&view).await,
        vec![
            ("c1".into(), CourseRow { capacity: 3, taken: 2 }),
            ("c2".into(), CourseRow { capacity: 9, taken: 0 }),
            ("c3".into(), CourseRow { capacity: 1, taken: 0 }),
        ]
    );
    let progress = view.progress().await.unwrap();
    assert!(progress.active && progress.checkpoint == last.last_position());
    projector.abort();
    test.clear().await;
}

/// Commits of the projector's batches (and of the appends) fail now and then with
/// `transaction_too_old`, `future_version` or `not_committed`, or land and are reported of
/// unknown result: the view still applies every event exactly once and keeps up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_faults_in_view_batches_neither_lose_nor_repeat_an_event() {
    use fairway::dcb::kv::faults::{CommitFault, FUTURE_VERSION, NOT_COMMITTED, TRANSACTION_TOO_OLD};
    let test = open_store(0.0);
    for code in [TRANSACTION_TOO_OLD, FUTURE_VERSION, NOT_COMMITTED] {
        test.fail_commits_at_rate(0.05, CommitFault::instead_of_commit(code));
    }
    test.fail_commits_at_rate(0.05, CommitFault::unknown_after_landing());
    let runner = CommandRunner::new(test.store.events());
    let projector = tokio::spawn(ViewRuntime::new(Counter, test.store.clone()).run("instance-1"));
    let mut last = None;
    for i in 0..200 {
        let executed = runner.execute(&DefineCourse { course_id: format!("c{i}"), capacity: 1 }).await.unwrap();
        last = executed.last_position();
    }
    let view = ViewRuntime::new(Counter, test.store.clone());
    view.wait_for(last.unwrap(), Duration::from_secs(30)).await.unwrap();
    let n: u64 = view.read(|tx| async move { Ok(tx.get::<u64>("n").await?.unwrap_or(0)) }).await.unwrap();
    assert_eq!(n, 200, "every event applied exactly once");
    assert!(!projector.is_finished(), "the projector still runs");
    projector.abort();
    test.clear().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_projectors_of_one_view_apply_each_event_once() {
    let test = open_store(0.0);
    let runner = CommandRunner::new(test.store.events());
    let backend = test.store.clone();
    let projectors: Vec<_> =
        (0..3).map(|n| tokio::spawn(ViewRuntime::new(Counter, backend.clone()).run(format!("instance-{n}")))).collect();
    let mut last = None;
    for i in 0..120 {
        let executed = runner.execute(&DefineCourse { course_id: format!("c{i}"), capacity: 1 }).await.unwrap();
        last = executed.last_position();
    }
    let view = ViewRuntime::new(Counter, backend.clone());
    view.wait_for(last.unwrap(), Duration::from_secs(20)).await.unwrap();
    let n: u64 = view.read(|tx| async move { Ok(tx.get::<u64>("n").await?.unwrap_or(0)) }).await.unwrap();
    assert_eq!(n, 120, "three projectors applied every event exactly once");
    projectors.into_iter().for_each(|p| p.abort());
    test.clear().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_rebuilds_from_the_log_then_replaces_the_old_one() {
    let test = open_store(0.0);
    let runner = CommandRunner::new(test.store.events());
    runner.execute(&DefineCourse { course_id: "c1".into(), capacity: 5 }).await.unwrap();
    let last = runner.execute(&SubscribeStudent { course_id: "c1".into(), student_id: "s1".into() }).await.unwrap();
    let backend = test.store.clone();

    let v1 = ViewRuntime::new(CourseList, backend.clone());
    let p1 = tokio::spawn(v1.clone().run("instance-1"));
    v1.wait_for(last.last_position().unwrap(), Duration::from_secs(10)).await.unwrap();
    // Reaching a position and becoming active are two steps: activation commits with the
    // batch that finds the projector caught up, which may follow the one that got there.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !v1.progress().await.unwrap().active {
        assert!(tokio::time::Instant::now() < deadline, "v1 becomes active after catching up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let v2 = ViewRuntime::new(CourseListV2, backend.clone());
    // Before v2 has caught up, its readers are served the active (v1) data.
    let before = v2.read(|tx| async move { tx.range::<CourseRow>("").await }).await.unwrap();
    assert_eq!(before, vec![("c1".into(), CourseRow { capacity: 5, taken: 1 })]);
    p1.abort();
    let p2 = tokio::spawn(v2.clone().run("instance-2"));
    v2.wait_for(last.last_position().unwrap(), Duration::from_secs(10)).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !v2.progress().await.unwrap().active {
        assert!(tokio::time::Instant::now() < deadline, "v2 becomes active after catching up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let left: Vec<(String, u32)> = v2.read(|tx| async move { tx.range::<u32>("").await }).await.unwrap();
    assert_eq!(left, vec![("c1".into(), 4)], "rebuilt from the log in the new shape");
    let old = v1.progress().await.unwrap();
    assert_eq!(old.checkpoint, None, "the old version's data and checkpoint were dropped");
    assert!(!old.active);
    p2.abort();
    test.clear().await;
}

/// Counts courses defined, under a name the next view's name starts with.
struct Course;

impl View for Course {
    const NAME: &'static str = "course";
    const VERSION: u32 = 3;
    type Events = CourseDefined;

    async fn apply(&self, defined: CourseDefined, tx: &ViewTx) -> Result<(), ViewError> {
        tx.put(&defined.course_id, &defined.capacity)
    }
}

/// Runs `view` until it is active and has applied `last`.
async fn caught_up<V: View>(view: &ViewRuntime<V>, last: fairway::dcb::Position) {
    view.wait_for(last, Duration::from_secs(10)).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !view.progress().await.unwrap().active {
        assert!(tokio::time::Instant::now() < deadline, "{} becomes active", V::NAME);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stores_views_are_found_and_read_without_their_slices() {
    use fairway::runtime::{StoredState, StoredVersion};
    let test = open_store(0.0);
    let runner = CommandRunner::new(test.store.events());
    runner.execute(&DefineCourse { course_id: "c1".into(), capacity: 5 }).await.unwrap();
    runner.execute(&DefineCourse { course_id: "c2".into(), capacity: 7 }).await.unwrap();
    let last = runner.execute(&SubscribeStudent { course_id: "c1".into(), student_id: "s1".into() }).await.unwrap();
    let last = last.last_position().unwrap();
    let backend = test.store.clone();
    let state = StoredState::new(backend.clone());
    assert!(state.views().await.unwrap().is_empty(), "no view has written anything yet");

    // Three views whose names prefix one another or share a start.
    let (list, course, counter) = (
        ViewRuntime::new(CourseList, backend.clone()),
        ViewRuntime::new(Course, backend.clone()),
        ViewRuntime::new(Counter, backend.clone()),
    );
    let projectors = [
        tokio::spawn(list.clone().run("i")),
        tokio::spawn(course.clone().run("i")),
        tokio::spawn(counter.clone().run("i")),
    ];
    caught_up(&list, last).await;
    caught_up(&course, last).await;
    let defined = runner.execute(&DefineCourse { course_id: "c3".into(), capacity: 1 }).await.unwrap();
    caught_up(&counter, defined.last_position().unwrap()).await;
    caught_up(&list, defined.last_position().unwrap()).await;
    caught_up(&course, defined.last_position().unwrap()).await;
    projectors.iter().for_each(|p| p.abort());

    let views = state.views().await.unwrap();
    let names: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["counter", "course", "course-list"]);
    let course_view = &views[1];
    assert_eq!(course_view.active, Some(3));
    let checkpoint = course.progress().await.unwrap().checkpoint;
    assert_eq!(course_view.versions, [StoredVersion { version: 3, checkpoint, processed: 3 }]);

    let page = state.view_page("course-list", "", None, 2).await.unwrap().expect("an active version");
    let keys: Vec<&str> = page.documents.iter().map(|d| d.key.as_str()).collect();
    assert_eq!((keys, page.next_cursor.as_deref()), (vec!["c1", "c2"], Some("c2")));
    let rest = state.view_page("course-list", "", Some("c2"), 2).await.unwrap().unwrap();
    assert_eq!((rest.documents.len(), rest.next_cursor), (1, None));
    let c1 = state.view_document("course-list", "c1").await.unwrap();
    assert_eq!(c1, Some(serde_json::json!({ "capacity": 5, "taken": 1 })));
    assert_eq!(state.view_document("course", "c2").await.unwrap(), Some(serde_json::json!(7)));
    assert_eq!(state.view_document("course", "c9").await.unwrap(), None);
    assert_eq!(state.view_page("nope", "", None, 10).await.unwrap(), None, "no such view");

    // A new version replaces the old one: only it is found, active.
    let v2 = ViewRuntime::new(CourseListV2, backend.clone());
    let p2 = tokio::spawn(v2.clone().run("instance-2"));
    caught_up(&v2, defined.last_position().unwrap()).await;
    p2.abort();
    let list_view = state.views().await.unwrap().into_iter().find(|v| v.name == "course-list").unwrap();
    assert_eq!(list_view.active, Some(2));
    assert_eq!(list_view.versions.iter().map(|v| v.version).collect::<Vec<_>>(), [2]);
    assert_eq!(state.view_document("course-list", "c1").await.unwrap(), Some(serde_json::json!(4)));
    test.clear().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retryable_storage_error_inside_a_read_runs_the_read_again() {
    let test = open_store(0.0);
    let view = ViewRuntime::new(CourseList, test.store.clone());
    let runs = std::sync::atomic::AtomicU32::new(0);
    let rows = view
        .read(|tx| {
            let run = runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            async move {
                if run == 1 {
                    // What the engine raises for a transaction that may succeed when run
                    // again (transaction_too_old on FoundationDB).
                    return Err(ViewError::Store(fairway::dcb::Error::Storage(retryable(1007))));
                }
                tx.range::<CourseRow>("").await
            }
        })
        .await
        .expect("the second run answers");
    assert!(rows.is_empty());
    // Twice, or more where FoundationDB's client injects faults of its own (buggify).
    assert!(runs.load(std::sync::atomic::Ordering::SeqCst) >= 2, "the read ran again");
    test.clear().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_and_keys_over_their_limits_are_refused_naming_the_limit() {
    use fairway::app::{MAX_DOCUMENT_BYTES, MAX_DOCUMENT_KEY_BYTES};
    let test = open_store(0.0);
    let view = ViewRuntime::new(CourseList, test.store.clone());
    let big = &"x".repeat(MAX_DOCUMENT_BYTES);
    let refused = view.read(|tx| async move { tx.put("big", big) }).await.unwrap_err();
    assert!(refused.to_string().contains(&format!("the limit is {MAX_DOCUMENT_BYTES} bytes")), "{refused}");
    let long_key = &"k".repeat(MAX_DOCUMENT_KEY_BYTES + 1);
    let refused = view.read(|tx| async move { tx.put(long_key, &1u32) }).await.unwrap_err();
    assert!(refused.to_string().contains(&format!("the limit is {MAX_DOCUMENT_KEY_BYTES} bytes")), "{refused}");
    let fits = &"x".repeat(MAX_DOCUMENT_BYTES - 16);
    view.read(|tx| async move { tx.put("fits", fits) }).await.expect("a document within the limit is written");
    test.clear().await;
}

/// A catch-up over more than two of the engine's batches (the next batch read while one
/// is applied) applies every event exactly once, in order, and stops at the head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_over_several_batches_applies_every_event_once() {
    use fairway::Event;
    let test = open_store(0.0);
    let events = 2 * test.store.bulk_events_per_transaction() + 7;
    let mut last = None;
    for first in (0..events).step_by(1_000) {
        let batch = (first..(first + 1_000).min(events))
            .map(|n| CourseDefined { course_id: format!("c{n}"), capacity: 1 }.to_raw().unwrap())
            .collect();
        last = Some(test.store.events().append(batch, None).await.unwrap().last());
    }
    let view = ViewRuntime::new(Counter, test.store.clone());
    let (processed, checkpoint) = view.catch_up().await.unwrap();
    // A batch whose commit landed but was reported unknown (FoundationDB's client injects
    // that under buggify) applies nothing when run again: this run counts fewer.
    assert!(processed <= events && checkpoint == last, "up to the head: {processed} of {events}, {checkpoint:?}");
    let n: u64 = view.read(|tx| async move { Ok(tx.get::<u64>("n").await?.unwrap_or(0)) }).await.unwrap();
    assert_eq!(n, events as u64, "each applied exactly once");
    let progress = view.progress().await.unwrap();
    assert!(progress.active && progress.processed == events as u64, "{progress:?}");
    test.clear().await;
}
