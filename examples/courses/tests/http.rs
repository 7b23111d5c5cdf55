//! End to end over real HTTP: the app serves on a loopback port; requests go through
//! reqwest. Commands, views with read-your-writes, uniqueness under concurrent requests,
//! and a restart that keeps everything.

use fairway::Id;
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
async fn errors_are_json_and_name_the_field_and_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path()).await;
    let http = reqwest::Client::new();
    let json_error = async |response: reqwest::Response| -> (u16, String) {
        let status = response.status().as_u16();
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(content_type, "application/json", "status {status}");
        (status, response.json::<Value>().await.unwrap()["error"].as_str().unwrap().to_owned())
    };

    // Ids up to the limit work with every tag key; one byte more is a 400 naming the field.
    let (limit, longest) = (Id::MAX_LEN, "c".repeat(Id::MAX_LEN));
    let (status, body) = app.command("define-course", json!({ "course_id": longest, "capacity": 1 })).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) =
        app.command("subscribe-student", json!({ "course_id": longest, "student_id": "s".repeat(limit) })).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) =
        app.command("register-student", json!({ "student_id": "s".repeat(limit), "email": "e".repeat(limit) })).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) =
        app.command("define-course", json!({ "course_id": "c".repeat(limit + 1), "capacity": 1 })).await;
    let expected = format!("invalid command body: course_id: is {} bytes long; the limit is {limit} bytes", limit + 1);
    assert_eq!((status, body["error"].as_str().unwrap()), (400, expected.as_str()));
    let email = format!("{}@example.org", "e".repeat(limit + 1 - "@example.org".len()));
    let (status, body) = app.command("register-student", json!({ "student_id": "s1", "email": email })).await;
    let expected = format!("invalid command body: email: is {} bytes long; the limit is {limit} bytes", limit + 1);
    assert_eq!((status, body["error"].as_str().unwrap()), (400, expected.as_str()));
    let (status, body) = app.command("define-course", json!({ "course_id": "go", "capacity": "many" })).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().starts_with("invalid command body: capacity: invalid type"), "{body}");

    // The router's own answers are JSON too.
    let (status, error) = json_error(http.get(app.app.url("/no/such/route")).send().await.unwrap()).await;
    assert_eq!((status, error.as_str()), (404, "no route for GET /no/such/route"));
    let response = http.get(app.app.url("/commands/define-course")).send().await.unwrap();
    assert_eq!(response.headers()["allow"], "POST", "the allowed method is still named in the header");
    let (status, error) = json_error(response).await;
    assert_eq!(
        (status, error.as_str()),
        (405, "/commands/define-course does not accept GET (the Allow header names what it does)")
    );
    let oversize = vec![b' '; fairway::app::MAX_BODY_BYTES + 1];
    let response = http.post(app.app.url("/commands/define-course")).body(oversize).send().await.unwrap();
    let (status, error) = json_error(response).await;
    assert_eq!((status, error.as_str()), (413, "the request body is larger than the limit of 2097152 bytes (2 MiB)"));
    let (status, error) = json_error(http.get(app.app.url("/views/courses?after=xyz")).send().await.unwrap()).await;
    assert_eq!(status, 400);
    assert!(error.contains("xyz"), "{error}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_course_app_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path()).await;

    let (status, health) = app.get("/health").await;
    assert_eq!((status, &health["status"], &health["failing"]), (200, &json!("ok"), &json!([])));
    // Whatever slices the app holds (adding one changes nothing here): the registry is the
    // list; every view has its projector and every automation its enqueuer and worker.
    let (status, registry) = app.get("/slices").await;
    assert_eq!(status, 200);
    let names = |kind: &str| -> Vec<String> {
        registry[kind].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_owned()).collect()
    };
    let tasks: Vec<&str> = health["tasks"].as_array().unwrap().iter().map(|t| t["task"].as_str().unwrap()).collect();
    let expected_tasks = names("views")
        .into_iter()
        .map(|v| format!("projector:{v}"))
        .chain(names("automations").into_iter().flat_map(|a| [format!("enqueuer:{a}"), format!("worker:{a}:0")]));
    for task in expected_tasks {
        assert!(tasks.contains(&task.as_str()), "{task} runs supervised: {health}");
    }
    let (_, slices) = app.get("/slices").await;
    assert_eq!(slices, registry, "the app serves every registered slice");
    for (kind, name) in
        [("commands", "subscribe-student"), ("views", "courses"), ("automations", "promote-waiting-students")]
    {
        assert!(names(kind).iter().any(|n| n == name), "{name} is one of the {kind}: {slices}");
    }

    assert_eq!(app.command("define-course", json!({ "course_id": "rust", "capacity": 2 })).await.0, 200);
    let (status, body) = app.command("define-course", json!({ "course_id": "rust", "capacity": 2 })).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (422, "course rust already exists"));

    let (status, body) = app.command("subscribe-student", json!({ "course_id": "rust", "student_id": "ada" })).await;
    assert_eq!(status, 200, "{body}");
    let after = body["last_position"].as_str().unwrap().to_owned();
    let (status, course) = app.get(&format!("/views/courses/rust?after={after}")).await;
    assert_eq!(
        (status, course),
        (200, json!({ "capacity": 2, "subscribed": 1, "seats_left": 1, "waiting": [] })),
        "read-your-writes"
    );
    assert_eq!(app.get(&format!("/views/schedules/ada?after={after}")).await.1, json!({ "courses": ["rust"] }));

    // Bad input is refused with a clear status and loses nothing.
    let response =
        reqwest::Client::new().post(app.app.url("/commands/subscribe-student")).body("{not json").send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(app.command("subscribe-student", json!({ "course_id": "rust" })).await.0, 400, "missing field");
    assert_eq!(app.command("no-such-command", json!({})).await.0, 404);
    let (status, body) = app.command("subscribe-student", json!({ "course_id": "", "student_id": "ada" })).await;
    assert_eq!(status, 400, "an empty id is malformed input, not a refusal: {body}");
    assert_eq!(body["error"], "invalid command body: course_id: must not be empty", "{body}");
    let long = "x".repeat(1000);
    let (status, body) = app.command("define-course", json!({ "course_id": long, "capacity": 1 })).await;
    assert_eq!(status, 400, "{body}");
    let expected = format!("invalid command body: course_id: is 1000 bytes long; the limit is {} bytes", Id::MAX_LEN);
    assert_eq!(body["error"], expected);
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
    assert_eq!(
        before_restart,
        json!({
            "documents": [{ "key": "rust", "doc": { "capacity": 5, "subscribed": 2, "seats_left": 3, "waiting": [] } }],
            "next_cursor": null,
        })
    );
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

/// Polls `path` until `check` holds (automations run in the background).
async fn eventually(app: &Running, path: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, body) = app.get(path).await;
        if check(&body) {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting on {path}: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_students_are_promoted_in_order_when_seats_free_up() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path()).await;
    assert_eq!(app.command("define-course", json!({ "course_id": "go", "capacity": 1 })).await.0, 200);
    assert_eq!(app.command("subscribe-student", json!({ "course_id": "go", "student_id": "ada" })).await.0, 200);
    let join = |student: &str| json!({ "course_id": "go", "student_id": student });
    let (status, body) = app.command("join-waiting-list", join("bob")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.command("join-waiting-list", join("cyd")).await.0, 200);
    assert_eq!(app.command("join-waiting-list", join("dan")).await.0, 200);
    assert_eq!(app.command("join-waiting-list", join("bob")).await.0, 422, "already waiting");
    assert_eq!(app.command("join-waiting-list", join("ada")).await.0, 422, "already in");

    // Two more seats: the first two in the queue are promoted, the third keeps waiting.
    assert_eq!(app.command("change-capacity", json!({ "course_id": "go", "capacity": 3 })).await.0, 200);
    let course = eventually(&app, "/views/courses/go", |c| c["subscribed"] == 3).await;
    assert_eq!(course["waiting"], json!(["dan"]));
    assert_eq!(app.get("/views/schedules/cyd").await.1, json!({ "courses": ["go"] }));

    // A student leaving frees a seat for the next one.
    assert_eq!(app.command("unsubscribe-student", json!({ "course_id": "go", "student_id": "ada" })).await.0, 200);
    let course = eventually(&app, "/views/courses/go", |c| c["waiting"] == json!([])).await;
    assert_eq!((course["subscribed"].as_u64(), course["seats_left"].as_u64()), (Some(3), Some(0)));
    let (_, automations) = app.get("/automations").await;
    assert_eq!(automations["automations"][0]["dead_letters"], 0, "{automations}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_lists_are_pages_with_a_key_cursor_and_refuse_unknown_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path()).await;
    let mut last = String::new();
    for course in ["a1", "a2", "a3", "b1", "b2"] {
        let (status, body) = app.command("define-course", json!({ "course_id": course, "capacity": 1 })).await;
        assert_eq!(status, 200, "{body}");
        last = body["last_position"].as_str().unwrap().to_owned();
    }

    // Following the cursor visits every document once, in key order.
    let (mut keys, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let cursor_param = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let (status, page) = app.get(&format!("/views/courses?after={last}&limit=2{cursor_param}")).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        let documents = page["documents"].as_array().unwrap();
        assert!(documents.len() <= 2, "{page}");
        keys.extend(documents.iter().map(|d| d["key"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(keys, ["a1", "a2", "a3", "b1", "b2"]);
    assert_eq!(pages, 3);

    let (_, prefixed) = app.get("/views/courses?prefix=b").await;
    let keys: Vec<&str> =
        prefixed["documents"].as_array().unwrap().iter().map(|d| d["key"].as_str().unwrap()).collect();
    assert_eq!((keys, &prefixed["next_cursor"]), (vec!["b1", "b2"], &Value::Null));
    let (_, after_prefix) = app.get("/views/courses?prefix=a&cursor=a3").await;
    assert_eq!(after_prefix["documents"], json!([]), "a cursor past the prefix ends the list");

    for (query, named) in [
        ("limit=10&sort=desc", "sort"),
        ("limt=10", "limt"),
        ("limit=0", "limit"),
        ("limit=1001", "1000"),
        ("limit=ten", "limit"),
    ] {
        let (status, body) = app.get(&format!("/views/courses?{query}")).await;
        let error = body["error"].as_str().unwrap_or_default();
        assert_eq!(status, 400, "{query}: {body}");
        assert!(error.contains(named), "{query}: the error names {named}: {error}");
    }
    let (status, body) = app.get("/views/courses/a1?sort=desc").await;
    assert_eq!(status, 400, "{body}");
    app.stop().await;
}
