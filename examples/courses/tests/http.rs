//! End to end over real HTTP: the app serves on a loopback port; requests go through
//! reqwest. Commands, views with read-your-writes, uniqueness under concurrent requests,
//! and a restart that keeps everything.

use fairway::testkit::TestApp;
use serde_json::{Value, json};

use courses as _;

struct Running {
    app: TestApp,
}

async fn start(dir: &std::path::Path) -> Running {
    Running { app: TestApp::start_in(dir).await }
}

impl Running {
    async fn stop(self) {
        self.app.stop().await;
    }

    async fn command(&self, name: &str, body: Value) -> (u16, Value) {
        let response =
            reqwest::Client::new().post(self.app.url(&format!("/commands/{name}"))).json(&body).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// Sends every body to command `name` at once; returns the statuses.
    async fn race(&self, name: &str, bodies: impl Iterator<Item = Value>) -> Vec<u16> {
        let url = self.app.url(&format!("/commands/{name}"));
        let requests: Vec<_> = bodies
            .map(|body| {
                let url = url.clone();
                tokio::spawn(async move {
                    reqwest::Client::new().post(url).json(&body).send().await.unwrap().status().as_u16()
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for request in requests {
            statuses.push(request.await.unwrap());
        }
        statuses
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = reqwest::get(self.app.url(path)).await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_course_app_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path()).await;

    assert_eq!(app.get("/health").await, (200, json!({ "status": "ok" })));
    let (_, slices) = app.get("/slices").await;
    assert_eq!(slices["commands"].as_array().unwrap().len(), 5, "{slices}");

    assert_eq!(app.command("define-course", json!({ "course_id": "rust", "capacity": 2 })).await.0, 200);
    let (status, body) = app.command("define-course", json!({ "course_id": "rust", "capacity": 2 })).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (422, "course rust already exists"));

    let (status, body) = app.command("subscribe-student", json!({ "course_id": "rust", "student_id": "ada" })).await;
    assert_eq!(status, 200, "{body}");
    let after = body["last_position"].as_str().unwrap().to_owned();
    let (status, course) = app.get(&format!("/views/courses/rust?after={after}")).await;
    assert_eq!((status, course), (200, json!({ "capacity": 2, "subscribed": 1, "seats_left": 1 })), "read-your-writes");
    assert_eq!(app.get(&format!("/views/schedules/ada?after={after}")).await.1, json!({ "courses": ["rust"] }));

    // Bad input is refused with a clear status and loses nothing.
    let response =
        reqwest::Client::new().post(app.app.url("/commands/subscribe-student")).body("{not json").send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(app.command("subscribe-student", json!({ "course_id": "rust" })).await.0, 400, "missing field");
    assert_eq!(app.command("no-such-command", json!({})).await.0, 404);
    assert_eq!(app.get("/views/courses/nope").await.0, 404);
    assert_eq!(app.get("/views/courses/rust?after=xyz").await.0, 400);

    // Uniqueness under concurrent requests: one email, eight students racing for it.
    let bodies = (0..8).map(|i| json!({ "student_id": format!("student-{i}"), "email": "same@example.org" }));
    let mut statuses = app.race("register-student", bodies).await;
    statuses.sort();
    assert_eq!(statuses, vec![200, 422, 422, 422, 422, 422, 422, 422], "exactly one registration wins");

    // The course holds at most its capacity, even when students race for the last seat.
    let bodies = (0..6).map(|i| json!({ "course_id": "rust", "student_id": format!("racer-{i}") }));
    let won = app.race("subscribe-student", bodies).await.into_iter().filter(|s| *s == 200).count();
    assert_eq!(won, 1, "one seat was left");
    let (_, body) = app.command("change-capacity", json!({ "course_id": "rust", "capacity": 5 })).await;
    let after = body["last_position"].as_str().unwrap().to_owned();
    let before_restart = app.get(&format!("/views/courses?after={after}")).await.1;
    assert_eq!(before_restart, json!([{ "key": "rust", "doc": { "capacity": 5, "subscribed": 2, "seats_left": 3 } }]));
    app.stop().await;

    // A restart keeps everything.
    let app = start(dir.path()).await;
    assert_eq!(app.get("/views/courses").await.1, before_restart);
    let (status, _) =
        app.command("register-student", json!({ "student_id": "late", "email": "same@example.org" })).await;
    assert_eq!(status, 422, "the email is still taken after a restart");
    assert_eq!(app.command("unsubscribe-student", json!({ "course_id": "rust", "student_id": "ada" })).await.0, 200);
    app.stop().await;
}
