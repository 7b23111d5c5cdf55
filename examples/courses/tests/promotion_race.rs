//! Over HTTP: on many full courses with two students waiting, `change-capacity` (to 2) and
//! `unsubscribe-student` race. Both free a seat, so every waiting student must end up
//! promoted by the automation, and every row of the `courses` view must equal a fold of
//! the log, read back from the store the app ran on (embedded, or its namespace on the
//! cluster under `FAIRWAY_TEST_ENGINE=fdb`). `FAIRWAY_RACE_COURSES` sets the number of
//! courses (default 300).

mod race;
mod store;

use std::time::Duration;

use courses::events::StudentSubscribed;
use fairway::app::replies::{AutomationsReply, ProgressReply};
use fairway::testkit::TestApp;
use futures::StreamExt;
use race::{Row, fold};
use serde_json::{Value, json};
use store::TestStore;

async fn post(client: &reqwest::Client, app: &TestApp, name: &str, body: Value) -> u16 {
    let url = app.url(&format!("/commands/{name}"));
    client.post(url).json(&body).send().await.unwrap().status().as_u16()
}

/// Reads `path` of `app` (a 503 asked again).
async fn get<T: serde::de::DeserializeOwned>(client: &reqwest::Client, app: &TestApp, path: &str) -> T {
    race::get_json(client, &app.url(path)).await
}

/// Waits until no automation job is pending, no view is behind, and that holds for a
/// while (an event may still be on its way into the queue).
async fn settle(client: &reqwest::Client, app: &TestApp) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut quiet = 0;
    while quiet < 5 {
        assert!(tokio::time::Instant::now() < deadline, "the app settles within 120 s");
        let automations: AutomationsReply = get(client, app, "/automations").await;
        let progress: ProgressReply = get(client, app, "/progress").await;
        let pending: usize = automations.automations.iter().map(|a| a.pending).sum();
        let behind: u64 = progress.views.iter().map(|v| v.remaining).sum();
        quiet = if pending == 0 && behind == 0 { quiet + 1 } else { 0 };
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_capacity_changes_and_unsubscriptions_promote_every_waiting_student() {
    let courses: usize = std::env::var("FAIRWAY_RACE_COURSES").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start_in(dir.path()).await;
    let client = reqwest::Client::new();

    // Every course is full (capacity 1, student s) with two students waiting.
    futures::stream::iter(0..courses)
        .for_each_concurrent(16, |i| {
            let (client, app) = (&client, &app);
            async move {
                let course = format!("c{i}");
                assert_eq!(
                    post(client, app, "define-course", json!({ "course_id": course, "capacity": 1 })).await,
                    200
                );
                let seat = json!({ "course_id": course, "student_id": format!("s{i}") });
                assert_eq!(post(client, app, "subscribe-student", seat).await, 200);
                for w in ["a", "b"] {
                    let wait = json!({ "course_id": course, "student_id": format!("w{i}{w}") });
                    assert_eq!(post(client, app, "join-waiting-list", wait).await, 200);
                }
            }
        })
        .await;

    // Both free a seat; they race on every course at once.
    futures::stream::iter(0..courses)
        .for_each_concurrent(32, |i| {
            let (client, app) = (&client, &app);
            async move {
                let course = format!("c{i}");
                let grow = post(client, app, "change-capacity", json!({ "course_id": course, "capacity": 2 }));
                let leave = post(
                    client,
                    app,
                    "unsubscribe-student",
                    json!({ "course_id": course, "student_id": format!("s{i}") }),
                );
                assert_eq!(futures::join!(grow, leave), (200, 200));
            }
        })
        .await;
    settle(&client, &app).await;

    let automations: AutomationsReply = get(&client, &app, "/automations").await;
    let dead: usize = automations.automations.iter().map(|a| a.dead_letters).sum();
    let page: Value = get(&client, &app, "/views/courses?limit=1000").await;
    assert_eq!(page["next_cursor"], Value::Null, "every course on one page");
    let view: Vec<Value> = serde_json::from_value(page["documents"].clone()).unwrap();
    let store = TestStore::of(&app);
    app.stop().await;

    let log = store.read_log().await;
    let folded = fold(&log);
    let promoted = log
        .iter()
        .filter_map(|e| e.as_event::<StudentSubscribed>())
        .filter(|e| e.as_ref().unwrap().student_id.starts_with('w'))
        .count();
    let still_waiting: usize = folded.values().map(|r| r.waiting.len()).sum();
    println!(
        "{courses} courses: {promoted} of {} waiting students promoted, {still_waiting} still waiting, {dead} dead letters",
        2 * courses
    );
    assert_eq!(dead, 0, "no job was dead-lettered");
    assert_eq!(still_waiting, 0, "every waiting student was promoted");
    assert_eq!(promoted, 2 * courses);
    assert_eq!(view.len(), courses);
    for entry in &view {
        let key = entry["key"].as_str().unwrap();
        let row = &folded[key];
        let doc = &entry["doc"];
        let served = Row {
            capacity: doc["capacity"].as_u64().unwrap(),
            subscribed: doc["subscribed"].as_u64().unwrap(),
            waiting: serde_json::from_value(doc["waiting"].clone()).unwrap(),
        };
        assert_eq!(&served, row, "course {key}: the view row equals a fold of the log");
        assert_eq!((row.capacity, row.subscribed), (2, 2), "course {key} is full again with both waiting students");
    }
    store.clear().await;
}
