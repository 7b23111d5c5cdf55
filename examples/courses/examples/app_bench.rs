//! The app benchmark: command latency through HTTP and projector catch-up, on the embedded
//! store with durability on.
//!
//! `cargo xtask bench app` runs it in release and writes `target/bench/app.json`: a JSON
//! array of `{"name", "value", "unit"}`. Options: `--out <file>`, `--requests <n>` per
//! concurrency level (default 4,000), `--events <n>` for catch-up (default 1,000,000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use courses::events::{CourseDefined, StudentSubscribed};
use courses::slices::course_list::CourseList;
use fairway::dcb::{DcbStore, EmbeddedEngine, EmbeddedOptions, EventStore};
use fairway::runtime::Store;
use fairway::runtime::ViewRuntime;
use fairway::testkit::TestApp;
use fairway::{AppConfig, Event};
use serde_json::json;

struct Figures(Vec<(String, f64, &'static str)>);

impl Figures {
    fn add(&mut self, name: &str, value: f64, unit: &'static str) {
        eprintln!("{name:<36} {value:>14.2} {unit}");
        self.0.push((name.to_owned(), value, unit));
    }

    fn json(&self) -> String {
        let rows: Vec<String> = self
            .0
            .iter()
            .map(|(n, v, u)| format!("  {{\"name\": \"{n}\", \"value\": {v:.3}, \"unit\": \"{u}\"}}"))
            .collect();
        format!("[\n{}\n]\n", rows.join(",\n"))
    }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// `requests` subscribe-student commands over HTTP from `clients` concurrent clients, each
/// on its own course (so conditions never collide); latencies in ms.
async fn subscribe_latencies(app: &TestApp, clients: usize, requests: usize) -> (Vec<f64>, Duration) {
    let http = reqwest::Client::new();
    for client in 0..clients {
        let body = json!({ "course_id": format!("c{clients}-{client}"), "capacity": requests });
        let response = http.post(app.url("/commands/define-course")).json(&body).send().await.unwrap();
        assert!(response.status().is_success());
    }
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (http, url) = (http.clone(), app.url("/commands/subscribe-student"));
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                for i in 0..requests / clients {
                    let body =
                        json!({ "course_id": format!("c{clients}-{client}"), "student_id": format!("s{client}-{i}") });
                    let sent = Instant::now();
                    let response = http.post(&url).json(&body).send().await.unwrap();
                    assert!(response.status().is_success(), "{}", response.text().await.unwrap());
                    latencies.push(sent.elapsed().as_secs_f64() * 1e3);
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    latencies.sort_by(f64::total_cmp);
    (latencies, started.elapsed())
}

/// Loads `events` course events in batches, then times a fresh projector catching up.
async fn catch_up_eps(dir: &std::path::Path, events: usize) -> f64 {
    let engine = Arc::new(EmbeddedEngine::open(dir, EmbeddedOptions::default()).unwrap());
    let store = DcbStore::new(engine.clone(), "catch-up").unwrap();
    let courses = 1_000;
    let defined: Vec<_> = (0..courses)
        .map(|c| CourseDefined { course_id: format!("c{c}").as_str().into(), capacity: 10_000 }.to_raw().unwrap())
        .collect();
    store.append(defined, None).await.unwrap();
    for batch in 0..(events - courses).div_ceil(1_000) {
        let subscribed: Vec<_> = (0..1_000)
            .map(|i| {
                let n = batch * 1_000 + i;
                StudentSubscribed {
                    course_id: format!("c{}", n % courses).as_str().into(),
                    student_id: format!("s{n}").as_str().into(),
                }
                .to_raw()
                .unwrap()
            })
            .collect();
        store.append(subscribed, None).await.unwrap();
    }
    let backend: Arc<dyn Store> = Arc::new(store);
    let view = ViewRuntime::new(CourseList, backend);
    let started = Instant::now();
    let (processed, _) = view.catch_up().await.unwrap();
    let eps = processed as f64 / started.elapsed().as_secs_f64();
    engine.close();
    eps
}

#[tokio::main]
async fn main() {
    let out = std::env::args()
        .collect::<Vec<_>>()
        .windows(2)
        .find(|w| w[0] == "--out")
        .map_or_else(|| "target/bench/app.json".to_owned(), |w| w[1].clone());
    let (requests, events) = (arg("--requests", 4_000), arg("--events", 1_000_000));
    let mut figures = Figures(Vec::new());
    let root = tempfile::tempdir().unwrap();

    let app = TestApp::start_with(AppConfig::with_data_dir(root.path().join("app")), |app| app).await;
    for clients in [1, 16] {
        let (latencies, elapsed) = subscribe_latencies(&app, clients, requests).await;
        figures.add(&format!("http_command_c{clients}_p50_ms"), percentile(&latencies, 0.50), "ms");
        figures.add(&format!("http_command_c{clients}_p99_ms"), percentile(&latencies, 0.99), "ms");
        figures.add(&format!("http_command_c{clients}_rps"), latencies.len() as f64 / elapsed.as_secs_f64(), "req/s");
    }
    app.stop().await;

    figures.add("projector_catch_up_events", events as f64, "events");
    figures.add("projector_catch_up_eps", catch_up_eps(&root.path().join("catch-up"), events).await, "events/s");

    if let Some(parent) = std::path::Path::new(&out).parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&out, figures.json()).unwrap();
    eprintln!("wrote {out}");
}
