//! The app benchmark: commands through HTTP beside the store's own conditional appends, a
//! view's live lag, and projector catch-up, on the embedded store with durability on, or on
//! a FoundationDB cluster.
//!
//! `cargo xtask bench app` runs it in release and writes `target/bench/app.json`: a JSON
//! array of `{"name", "value", "unit"}`, printed to stderr as it goes, whose first entry,
//! `{"name": "engine", "value": "embedded" | "fdb", "unit": "name"}`, names the engine that
//! ran it. Options: `--out <file>`; `--seconds <s>` per row (default 5), or `--requests <n>`
//! per row instead; `--students <n>` in the growing course (default 10,000); `--events <n>`
//! for catch-up (default 1,000,000); `--only <prefix>` runs only the rows whose names start
//! with its `_`-separated words (to profile one, e.g. `--only http_command_bounded_c1`).
//!
//! `--fdb-cluster-file <file>` (in a build with the `fdb` feature, which
//! `cargo xtask bench app --fdb-cluster-file <file>` turns on) runs every row on that
//! FoundationDB cluster instead, the figures keeping their names, and writes
//! `target/bench/app-fdb.json` by default: each store (a row's, the app's, catch-up's) is a
//! fresh namespace `bench-app-<random>-<part>`, cleared once its rows are done. Without the
//! feature, the option is refused.
//!
//! Rows, each at 1, 16 and 64 concurrent clients sharing one HTTP client:
//! - `store_append_conditional`: a fresh durable store, each client appending one event per
//!   request under its own condition (no HTTP, no app);
//! - `http_command_bounded`: each client defines a course, subscribes 40 students to it, then
//!   defines the next, so no command's boundary holds more than 41 events;
//! - `http_command_growing_snap`: every command is `change-capacity` on one course that
//!   starts with `--students` students (appended to the store before the app starts) and
//!   grows by one event per command; the command folds from its snapshots;
//! - `http_command_growing_nosnap`: the same on a second such course with
//!   `change-capacity-folded`, the same decision model registered without snapshots.
//!
//! The app runs with its views and automations live. A row's `cpu_ms` is the process's CPU
//! time (the clients included: they run in this process) from the row's start until every
//! view and automation has caught up with it, over the commands the row ran. A command
//! answered 409 (its boundary kept changing) is sent again, one answered 503 (the store
//! busy: on FoundationDB a transaction past its 5 s) after 100 ms, and its latency runs to
//! the reply that appended. `view_live_lag_p99_ms` samples bounded commands at 64 clients: from
//! a command's reply to the `courses` view's checkpoint reflecting its position, seen in the
//! process by a watch on the checkpoint (as `?after=` waits); `view_live_lag_http_p99_ms`, to
//! a read of the course's row `?after=` that position answered over HTTP, which also queues
//! behind the 64 clients' requests on the same cores. On
//! FoundationDB the cluster's own CPU is not counted, and the store's counters printed per
//! row (fsyncs, journal time) are the embedded engine's: absent there.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use courses::events::{CourseDefined, CourseLife, StudentSubscribed};
use courses::slices::change_capacity::{CapacityError, ChangeCapacity};
use courses::slices::course_list::CourseList;
use fairway::dcb::kv::KvEngine;
use fairway::dcb::{AppendCondition, DcbStore, EmbeddedEngine, EmbeddedOptions, EventStore, Query, RawEvent, Tag};
use fairway::prelude::*;
use fairway::runtime::{Store, ViewRuntime};
use fairway::{App, AppConfig, Event};
use serde_json::{Value, json};
use tokio::sync::{Barrier, mpsc, oneshot};

/// Concurrent clients of every row.
const CLIENTS: [usize; 3] = [1, 16, 64];
/// Students a bounded client subscribes to each of its courses.
const BOUNDED_STUDENTS: u32 = 40;
/// Longest wait for views and automations to catch up after a row.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(900);

/// `change-capacity` without snapshots: every command folds the course from its first event.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
struct ChangeCapacityFolded(ChangeCapacity);

#[command]
impl Command for ChangeCapacityFolded {
    type Events = CourseLife;
    type State = Option<u32>;
    type Error = CapacityError;

    fn query(&self) -> Query {
        self.0.query()
    }

    fn evolve(&self, students: &mut Option<u32>, event: CourseLife) {
        self.0.evolve(students, event);
    }

    fn decide(&self, students: &Option<u32>) -> Result<Decision, CapacityError> {
        self.0.decide(students)
    }
}

/// The figures, in the order they were measured, on the engine named `engine`.
struct Figures {
    engine: &'static str,
    rows: Vec<(String, f64, &'static str)>,
}

impl Figures {
    fn add(&mut self, name: &str, value: f64, unit: &'static str) {
        eprintln!("{name:<46} {value:>14.3} {unit}");
        self.rows.push((name.to_owned(), value, unit));
    }

    fn get(&self, name: &str) -> f64 {
        self.rows.iter().find(|(n, ..)| n == name).map(|(_, v, _)| *v).unwrap_or(f64::NAN)
    }

    fn write(&self, out: &str) {
        let engine = format!("  {{\"name\": \"engine\", \"value\": \"{}\", \"unit\": \"name\"}}", self.engine);
        let figures =
            self.rows.iter().map(|(n, v, u)| format!("  {{\"name\": \"{n}\", \"value\": {v:.3}, \"unit\": \"{u}\"}}"));
        let rows: Vec<String> = std::iter::once(engine).chain(figures).collect();
        if let Some(parent) = std::path::Path::new(out).parent() {
            std::fs::create_dir_all(parent).expect("the output's directory");
        }
        std::fs::write(out, format!("[\n{}\n]\n", rows.join(",\n"))).expect("the output file");
        eprintln!("wrote {out}");
    }
}

fn arg<T: std::str::FromStr>(name: &str) -> Option<T> {
    let args: Vec<String> = std::env::args().collect();
    let value = args.iter().position(|a| a == name).and_then(|i| args.get(i + 1))?;
    Some(value.parse().unwrap_or_else(|_| panic!("{name}: cannot read {value:?}")))
}

/// Where the rows' stores live: directories of the embedded engine under a temporary root,
/// or namespaces of a FoundationDB cluster, fresh for this run.
enum Target {
    /// The embedded engine, durability on: the store `part` in the directory `<root>/<part>`,
    /// namespace `part`.
    Embedded(tempfile::TempDir),
    /// The cluster `cluster_file` names: the store `part` in the namespace
    /// `bench-app-<run>-<part>`, cleared by [`Target::clear`].
    #[cfg(feature = "fdb")]
    Fdb { cluster_file: std::path::PathBuf, engine: Arc<fairway::dcb::FdbEngine>, run: u64 },
}

impl Target {
    /// FoundationDB when `--fdb-cluster-file` names a cluster (refused, with the process
    /// exiting, in a build without the `fdb` feature), else the embedded engine.
    fn from_args() -> Target {
        match arg::<String>("--fdb-cluster-file") {
            None => Target::Embedded(
                tempfile::Builder::new()
                    .prefix("fairway-app-bench")
                    .tempdir_in("target")
                    .expect("temp dir under target/"),
            ),
            #[cfg(feature = "fdb")]
            Some(cluster_file) => {
                let engine = fairway::dcb::FdbEngine::open(Some(&cluster_file), fairway::dcb::RetryPolicy::default())
                    .expect("the FoundationDB cluster opens");
                Target::Fdb { cluster_file: cluster_file.into(), engine: Arc::new(engine), run: rand::random() }
            }
            #[cfg(not(feature = "fdb"))]
            Some(_) => {
                eprintln!(
                    "app_bench: --fdb-cluster-file needs the `fdb` feature of the courses example \
                     (`cargo build --release -p courses --features fdb --example app_bench`, or \
                     `cargo xtask bench app --fdb-cluster-file <file>`)"
                );
                std::process::exit(2)
            }
        }
    }

    /// The engine's name, as the figure `engine` records it.
    fn engine(&self) -> &'static str {
        match self {
            Target::Embedded(_) => "embedded",
            #[cfg(feature = "fdb")]
            Target::Fdb { .. } => "fdb",
        }
    }

    /// Where the figures go unless `--out` says.
    fn default_out(&self) -> &'static str {
        match self {
            Target::Embedded(_) => "target/bench/app.json",
            #[cfg(feature = "fdb")]
            Target::Fdb { .. } => "target/bench/app-fdb.json",
        }
    }

    /// The namespace of the store `part`.
    fn namespace(&self, part: &str) -> String {
        match self {
            Target::Embedded(_) => part.to_owned(),
            #[cfg(feature = "fdb")]
            Target::Fdb { run, .. } => format!("bench-app-{run:016x}-{part}"),
        }
    }

    /// The app's configuration, on the store `app` (whatever the environment says).
    fn app_config(&self) -> AppConfig {
        let namespace = self.namespace("app");
        match self {
            Target::Embedded(root) => {
                let mut config = AppConfig::with_data_dir(root.path().join("app"));
                #[cfg(feature = "fdb")]
                {
                    config.fdb_cluster_file = None;
                }
                config.namespace = namespace;
                config
            }
            #[cfg(feature = "fdb")]
            Target::Fdb { cluster_file, .. } => {
                // The data directory is unused: the store is the cluster's.
                let mut config = AppConfig::with_data_dir(std::path::PathBuf::new());
                config.fdb_cluster_file = Some(cluster_file.clone());
                config.namespace = namespace;
                config
            }
        }
    }

    /// Clears the store `part` on FoundationDB; the embedded stores go with the temporary
    /// root at the end.
    #[cfg_attr(not(feature = "fdb"), allow(unused_variables))]
    async fn clear(&self, part: &str) {
        match self {
            Target::Embedded(_) => {}
            #[cfg(feature = "fdb")]
            Target::Fdb { engine, .. } => {
                let store = DcbStore::new(engine.clone(), &self.namespace(part)).expect("a namespace");
                store.clear_namespace().await.expect("the namespace clears");
            }
        }
    }
}

/// Runs `$body` with `$store` bound to the store `$part` of a [`Target`] (a `DcbStore` of
/// its engine), so code generic over the engine runs on either; an embedded engine closes
/// after it (the store's directory free for the app to open).
macro_rules! with_store {
    ($target:expr, $part:expr, |$store:ident| $body:expr) => {
        match $target {
            Target::Embedded(root) => {
                let engine = Arc::new(
                    EmbeddedEngine::open(root.path().join($part), EmbeddedOptions::default()).expect("a store"),
                );
                let $store = DcbStore::new(engine.clone(), &$target.namespace($part)).expect("a namespace");
                let value = $body;
                engine.close();
                value
            }
            #[cfg(feature = "fdb")]
            Target::Fdb { engine, .. } => {
                let $store = DcbStore::new(engine.clone(), &$target.namespace($part)).expect("a namespace");
                $body
            }
        }
    };
}

/// The app serving on a loopback port until [`BenchApp::stop`].
struct BenchApp {
    address: SocketAddr,
    /// The store the app serves, for runtimes of the bench's own.
    store: Arc<dyn Store>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl BenchApp {
    /// Opens the app's store as `config` says and serves every registered slice.
    async fn start(config: &AppConfig) -> Self {
        let app = App::open(config).expect("the app opens");
        let store = app.store();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let address = listener.local_addr().expect("bound");
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(async move { app.serve(listener, shutdown).await.expect("the app serves") });
        BenchApp { address, store, stop, task }
    }

    /// `http://127.0.0.1:<port><path>`.
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Stops gracefully: jobs in progress finish, the store closes.
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("the app stops cleanly");
    }
}

/// How long each row runs: for a time, or for a number of requests shared by its clients.
#[derive(Clone, Copy)]
enum Budget {
    Seconds(f64),
    Requests(usize),
}

impl Budget {
    /// When one of `clients` clients, started at `start`, having sent `sent`, stops.
    fn more(self, start: Instant, sent: usize, clients: usize) -> bool {
        match self {
            Budget::Seconds(s) => start.elapsed().as_secs_f64() < s,
            Budget::Requests(n) => sent < n.div_ceil(clients),
        }
    }
}

/// The process's CPU time (user + system, every thread), from `/proc/self/stat`.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name's closing parenthesis start at field 3 (the state);
    // utime and stime are fields 14 and 15, in clock ticks of 1/100 s on Linux.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("a command name") + 1..].split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_millis(ticks * 10)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// One command to send: its route, body, and what the `courses` view shows once it ran.
struct Request {
    command: &'static str,
    body: Value,
    course: String,
    subscribed: u32,
}

/// What one client sends next.
enum Workload {
    /// Own courses of at most [`BOUNDED_STUDENTS`] students: define one, fill it, define
    /// the next.
    Bounded { prefix: String, course: usize, subscribed: Option<u32> },
    /// `command` on one long course, alternating two capacities above its students.
    Growing { command: &'static str, course: String, capacity: u32, sent: u32 },
}

impl Workload {
    fn next(&mut self) -> Request {
        match self {
            Workload::Bounded { prefix, course, subscribed } => {
                let course_id = format!("{prefix}-{course}");
                let Some(count) = subscribed else {
                    *subscribed = Some(0);
                    let body = json!({ "course_id": course_id, "capacity": BOUNDED_STUDENTS });
                    return Request { command: "define-course", body, course: course_id, subscribed: 0 };
                };
                *count += 1;
                let body = json!({ "course_id": course_id, "student_id": format!("{course_id}-s{count}") });
                let request = Request { command: "subscribe-student", body, course: course_id, subscribed: *count };
                if *count == BOUNDED_STUDENTS {
                    (*course, *subscribed) = (*course + 1, None);
                }
                request
            }
            Workload::Growing { command, course, capacity, sent } => {
                *sent += 1;
                let body = json!({ "course_id": course, "capacity": *capacity + *sent % 2 });
                Request { command, body, course: course.clone(), subscribed: 0 }
            }
        }
    }
}

/// A command's reply: where its events landed, and the requests it took.
struct Reply {
    position: String,
    sent: usize,
    attempts: u64,
}

/// Sends `request` until it appends (a 409 is sent again at once, a 503 after 100 ms);
/// panics on any other answer.
async fn send(http: &reqwest::Client, base: &str, request: &Request) -> Reply {
    let url = format!("{base}/commands/{}", request.command);
    for sent in 1.. {
        let response = http.post(&url).json(&request.body).send().await.expect("the app answers");
        let status = response.status();
        let body: Value = response.json().await.expect("a JSON reply");
        match status.as_u16() {
            200 => {
                let position = body["last_position"].as_str().expect("the command appended").to_owned();
                let attempts = body["attempts"].as_u64().expect("attempts");
                return Reply { position, sent, attempts };
            }
            409 => continue,
            // The store was busy (on FoundationDB, a fold past its 5 s per attempt).
            503 => tokio::time::sleep(Duration::from_millis(100)).await,
            _ => panic!("{} answered {status}: {body}", request.command),
        }
    }
    unreachable!("the loop above returns")
}

/// A command sampled for the view's lag: its course, what the view must show, its position
/// and when its reply arrived.
struct Sample {
    course: String,
    subscribed: u32,
    position: String,
    replied: Instant,
}

/// Samples the `courses` view's lag behind commands: asks the clients for their next reply
/// (so the sample is fresh), waits in this process until the view's checkpoint reflects its
/// position (a watch on the checkpoint, as `?after=` waits), then reads the course's row
/// over HTTP `?after=` that position.
struct LagProbe {
    wanted: Arc<AtomicBool>,
    samples: mpsc::UnboundedSender<Sample>,
}

impl LagProbe {
    /// Offers a reply, taken if the sampler waits for one.
    fn offer(&self, request: &Request, reply: &Reply, replied: Instant) {
        if self.wanted.swap(false, Ordering::AcqRel) {
            let (course, subscribed, position) = (request.course.clone(), request.subscribed, reply.position.clone());
            let _ = self.samples.send(Sample { course, subscribed, position, replied });
        }
    }
}

/// The lags sampled, in ms from a command's reply: to the view reflecting it (seen in
/// process), and to a client's `?after=` read of it answered over HTTP.
struct Lags {
    applied: Vec<f64>,
    over_http: Vec<f64>,
}

/// Starts the sampler; it ends when every [`LagProbe`] is dropped, answering the lags.
fn lag_sampler(app: &BenchApp, http: reqwest::Client) -> (LagProbe, tokio::task::JoinHandle<Lags>) {
    let wanted = Arc::new(AtomicBool::new(false));
    let (samples, mut received) = mpsc::unbounded_channel::<Sample>();
    let (flag, base) = (wanted.clone(), app.url("/views/courses"));
    let view = ViewRuntime::new(CourseList, app.store.clone());
    let task = tokio::spawn(async move {
        let mut lags = Lags { applied: Vec::new(), over_http: Vec::new() };
        loop {
            tokio::time::sleep(Duration::from_millis(2)).await;
            flag.store(true, Ordering::Release);
            let Some(sample) = received.recv().await else { break };
            let position = sample.position.parse().expect("a position");
            view.wait_for(position, Duration::from_secs(30)).await.expect("the view reflects the command");
            lags.applied.push(sample.replied.elapsed().as_secs_f64() * 1e3);
            let url = format!("{base}/{}?after={}", sample.course, sample.position);
            let response = http.get(&url).send().await.expect("the app answers");
            assert_eq!(response.status(), 200, "{url}");
            let row: Value = response.json().await.expect("a row");
            // The client may have sent more to the course since: at least, not exactly.
            let subscribed = row["subscribed"].as_u64().expect("subscribed");
            assert!(subscribed >= u64::from(sample.subscribed), "the view passed the command: {row}");
            lags.over_http.push(sample.replied.elapsed().as_secs_f64() * 1e3);
        }
        lags
    });
    (LagProbe { wanted, samples }, task)
}

/// What a row measured.
struct Row {
    latencies: Vec<f64>,
    elapsed: Duration,
    /// CPU time while the clients ran, then until everything caught up.
    cpu: (Duration, Duration),
    /// Requests sent (409s included) and command cycles run, over every client.
    sent: usize,
    attempts: u64,
}

/// Runs `clients` clients with their workloads (after one unmeasured warm-up command each),
/// then waits for the app's views and automations to catch up.
async fn http_row(
    app: &BenchApp,
    http: &reqwest::Client,
    workloads: Vec<Workload>,
    budget: Budget,
    probe: Option<LagProbe>,
) -> Row {
    let clients = workloads.len();
    let counters = Counters::scrape(app, http).await;
    let ready = Arc::new(Barrier::new(clients + 1));
    let probe = probe.map(Arc::new);
    let tasks: Vec<_> = workloads
        .into_iter()
        .map(|mut workload| {
            let (http, ready, probe) = (http.clone(), ready.clone(), probe.clone());
            let base = app.url("");
            async move {
                send(&http, &base, &workload.next()).await;
                ready.wait().await;
                let start = Instant::now();
                let (mut latencies, mut sent, mut attempts) = (Vec::new(), 0, 0);
                while budget.more(start, latencies.len(), clients) {
                    let request = workload.next();
                    let began = Instant::now();
                    let reply = send(&http, &base, &request).await;
                    latencies.push(began.elapsed().as_secs_f64() * 1e3);
                    (sent, attempts) = (sent + reply.sent, attempts + reply.attempts);
                    if let Some(probe) = &probe {
                        probe.offer(&request, &reply, Instant::now());
                    }
                }
                (latencies, sent, attempts)
            }
        })
        .map(tokio::spawn)
        .collect();
    drop(probe);
    ready.wait().await;
    let (start, cpu0) = (Instant::now(), process_cpu());
    let mut row = Row { latencies: Vec::new(), elapsed: Duration::ZERO, cpu: Default::default(), sent: 0, attempts: 0 };
    for task in tasks {
        let (latencies, sent, attempts) = task.await.expect("a client");
        row.latencies.extend(latencies);
        (row.sent, row.attempts) = (row.sent + sent, row.attempts + attempts);
    }
    row.elapsed = start.elapsed();
    let ran = process_cpu() - cpu0;
    let drained = Instant::now();
    drain(app, http).await;
    row.cpu = (ran, process_cpu() - cpu0);
    eprintln!(
        "  {} commands in {:.1}s, {} requests, {} cycles; caught up {:.2}s later; CPU {:.2}s while running, {:.2}s with the catching up",
        row.latencies.len(),
        row.elapsed.as_secs_f64(),
        row.sent,
        row.attempts,
        drained.elapsed().as_secs_f64(),
        row.cpu.0.as_secs_f64(),
        row.cpu.1.as_secs_f64()
    );
    let client_mean_ms = row.latencies.iter().sum::<f64>() / row.latencies.len() as f64;
    counters.report(Counters::scrape(app, http).await, client_mean_ms);
    row.latencies.sort_by(f64::total_cmp);
    row
}

/// The app's own counters, from `/metrics`: where a row's time went on average.
#[derive(Clone, Copy, Default)]
struct Counters {
    fsyncs: f64,
    transactions: f64,
    journal_s: f64,
    requests: f64,
    request_s: f64,
    commands: f64,
    command_s: f64,
}

impl Counters {
    async fn scrape(app: &BenchApp, http: &reqwest::Client) -> Self {
        let page = http.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("metrics text");
        // The sum of every sample of `name` whose labels hold `labels`.
        let sum = |name: &str, labels: &str| -> f64 {
            let samples = page.lines().filter(|line| !line.starts_with('#'));
            let values = samples.filter_map(|line| {
                let (key, value) = line.rsplit_once(' ')?;
                (key.split('{').next() == Some(name) && key.contains(labels)).then(|| value.parse::<f64>().ok())?
            });
            values.sum()
        };
        let route = "route=\"/commands/";
        Counters {
            fsyncs: sum("fairway_store_commits_total", ""),
            transactions: sum("fairway_store_transactions_total", ""),
            journal_s: sum("fairway_store_journal_microseconds_total", "") / 1e6,
            requests: sum("fairway_http_request_duration_seconds_count", route),
            request_s: sum("fairway_http_request_duration_seconds_sum", route),
            commands: sum("fairway_command_duration_seconds_count", ""),
            command_s: sum("fairway_command_duration_seconds_sum", ""),
        }
    }

    /// Prints the means per command between `self` and `later`, beside the clients' mean.
    fn report(self, later: Counters, client_mean_ms: f64) {
        let commands = (later.requests - self.requests).max(1.0);
        let fsyncs = later.fsyncs - self.fsyncs;
        eprintln!(
            "  per command: {:.2} fsyncs, {:.2} transactions; mean ms: client {client_mean_ms:.3}, server request {:.3}, \
             command runner {:.3}; journal write+sync {:.3} ms per fsync",
            fsyncs / commands,
            (later.transactions - self.transactions) / commands,
            (later.request_s - self.request_s) * 1e3 / commands,
            (later.command_s - self.command_s) * 1e3 / (later.commands - self.commands).max(1.0),
            (later.journal_s - self.journal_s) * 1e3 / fsyncs.max(1.0),
        );
    }
}

/// Waits until every view has applied the whole log and no automation has a job pending,
/// seen twice in a row.
async fn drain(app: &BenchApp, http: &reqwest::Client) {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    let mut quiet = 0;
    while quiet < 2 {
        assert!(Instant::now() < deadline, "views and automations did not catch up in {DRAIN_TIMEOUT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let get = |path: &str| http.get(app.url(path)).send();
        let progress: Value = get("/progress").await.expect("progress").json().await.expect("progress JSON");
        let queues: Value = get("/automations").await.expect("automations").json().await.expect("automations JSON");
        let views_done = progress["views"].as_array().expect("views").iter().all(|v| v["remaining"] == json!(0));
        let queues_done =
            queues["automations"].as_array().expect("automations").iter().all(|a| a["pending"] == json!(0));
        quiet = if views_done && queues_done { quiet + 1 } else { 0 };
    }
}

fn add_row(figures: &mut Figures, name: &str, row: &Row) {
    let commands = row.latencies.len() as f64;
    figures.add(&format!("{name}_p50_ms"), percentile(&row.latencies, 0.50), "ms");
    figures.add(&format!("{name}_p99_ms"), percentile(&row.latencies, 0.99), "ms");
    figures.add(&format!("{name}_rps"), commands / row.elapsed.as_secs_f64(), "commands/s");
    figures.add(&format!("{name}_cpu_ms"), row.cpu.1.as_secs_f64() * 1e3 / commands, "ms/command");
}

/// `clients` tasks, each appending one event per request to `store` (fresh) under its own
/// condition (its type and client tag after its last append): the store's figure for what a
/// command pays at least.
async fn store_row<E: KvEngine>(store: &DcbStore<E>, clients: usize, budget: Budget, figures: &mut Figures) {
    let start = Instant::now();
    let tasks = (0..clients).map(|client| {
        let store = store.clone();
        tokio::spawn(async move {
            let own = Tag::new("client", client).expect("a tag");
            let boundary = Query::from(QueryItem::types(["Booked"]).with_tags([own.clone()]));
            let (mut after, mut latencies) = (None, Vec::new());
            while budget.more(start, latencies.len(), clients) {
                let seat = Tag::new("seat", latencies.len() % 97).expect("a tag");
                let payload = format!(
                    "{{\"client\":{client},\"n\":{},\"note\":\"about 100 bytes of payload\"}}",
                    latencies.len()
                );
                let event = RawEvent::new("Booked", payload.into_bytes()).with_tags([own.clone(), seat]);
                let condition = AppendCondition::none_match_after(boundary.clone(), after);
                let began = Instant::now();
                after = Some(store.append(vec![event], Some(condition)).await.expect("an append").last());
                latencies.push(began.elapsed().as_secs_f64() * 1e3);
            }
            latencies
        })
    });
    let mut latencies = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        latencies.extend(task.await.expect("a client"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    figures.add(&format!("store_append_conditional_c{clients}_p50_ms"), percentile(&latencies, 0.50), "ms");
    figures.add(&format!("store_append_conditional_c{clients}_eps"), latencies.len() as f64 / elapsed, "events/s");
}

/// Appends `courses`, each defined and holding `students` students, to the app's store
/// before the app opens it (in batches of 1,000 events, far faster than commands).
async fn preload<E: KvEngine>(store: &DcbStore<E>, courses: &[&str], students: usize) {
    for course in courses {
        let defined = CourseDefined { course_id: (*course).into(), capacity: students as u32 };
        store.append(vec![defined.to_raw().expect("an event")], None).await.expect("an append");
        for first in (0..students).step_by(1_000) {
            let batch = (first..(first + 1_000).min(students))
                .map(|n| {
                    let subscribed = StudentSubscribed {
                        course_id: (*course).into(),
                        student_id: format!("{course}-s{n}").as_str().into(),
                    };
                    subscribed.to_raw().expect("an event")
                })
                .collect();
            store.append(batch, None).await.expect("an append");
        }
    }
}

/// Loads `events` course events in batches into `store` (fresh), then times a fresh
/// projector catching up.
async fn catch_up_eps<E: KvEngine>(store: &DcbStore<E>, events: usize) -> f64 {
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
    let backend: Arc<dyn Store> = Arc::new(store.clone());
    let view = ViewRuntime::new(CourseList, backend);
    let started = Instant::now();
    let (processed, _) = view.catch_up().await.unwrap();
    processed as f64 / started.elapsed().as_secs_f64()
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let target = Target::from_args();
    let out = arg("--out").unwrap_or_else(|| target.default_out().to_owned());
    let budget = arg("--requests").map_or_else(|| Budget::Seconds(arg("--seconds").unwrap_or(5.0)), Budget::Requests);
    let (students, events) = (arg("--students").unwrap_or(10_000), arg("--events").unwrap_or(1_000_000));
    eprintln!("engine: {}", target.engine());
    let mut figures = Figures { engine: target.engine(), rows: Vec::new() };
    let only: Option<String> = arg("--only");
    // Whole words: `http_command_bounded_c1` is not a prefix of `http_command_bounded_c16`.
    let wanted = |row: &str| only.as_deref().is_none_or(|prefix| format!("{row}_").starts_with(&format!("{prefix}_")));

    for clients in CLIENTS.into_iter().filter(|c| wanted(&format!("store_append_conditional_c{c}"))) {
        let part = format!("store-c{clients}");
        with_store!(&target, &part, |store| store_row(&store, clients, budget, &mut figures).await);
        target.clear(&part).await;
    }

    let started = Instant::now();
    with_store!(&target, "app", |store| preload(&store, &["long-snap", "long-folded"], students).await);
    let app = BenchApp::start(&target.app_config()).await;
    let http = reqwest::Client::new();
    drain(&app, &http).await;
    eprintln!("two courses of {students} students loaded and caught up in {:.1}s", started.elapsed().as_secs_f64());

    for clients in CLIENTS.into_iter().filter(|c| wanted(&format!("http_command_bounded_c{c}"))) {
        let workloads =
            (0..clients).map(|c| Workload::Bounded { prefix: format!("b{clients}-{c}"), course: 0, subscribed: None });
        let (probe, sampler) = if clients == 64 { Some(lag_sampler(&app, http.clone())) } else { None }.unzip();
        let row = http_row(&app, &http, workloads.collect(), budget, probe).await;
        add_row(&mut figures, &format!("http_command_bounded_c{clients}"), &row);
        if let Some(sampler) = sampler {
            let Lags { mut applied, mut over_http } = sampler.await.expect("the sampler");
            applied.sort_by(f64::total_cmp);
            over_http.sort_by(f64::total_cmp);
            eprintln!(
                "  {} lag samples, p50 {:.2} ms applied, {:.2} ms read over HTTP",
                applied.len(),
                percentile(&applied, 0.5),
                percentile(&over_http, 0.5)
            );
            figures.add("view_live_lag_p99_ms", percentile(&applied, 0.99), "ms");
            figures.add("view_live_lag_http_p99_ms", percentile(&over_http, 0.99), "ms");
        }
    }
    for (case, command, course) in
        [("growing_snap", "change-capacity", "long-snap"), ("growing_nosnap", "change-capacity-folded", "long-folded")]
    {
        for clients in CLIENTS.into_iter().filter(|c| wanted(&format!("http_command_{case}_c{c}"))) {
            let capacity = 2 * students as u32;
            let workloads =
                (0..clients).map(|_| Workload::Growing { command, course: course.to_owned(), capacity, sent: 0 });
            let row = http_row(&app, &http, workloads.collect(), budget, None).await;
            add_row(&mut figures, &format!("http_command_{case}_c{clients}"), &row);
        }
    }
    app.stop().await;
    target.clear("app").await;

    if wanted("projector_catch_up") {
        figures.add("projector_catch_up_events", events as f64, "events");
        let eps = with_store!(&target, "catch-up", |store| catch_up_eps(&store, events).await);
        target.clear("catch-up").await;
        figures.add("projector_catch_up_eps", eps, "events/s");
    }

    let bounded_c1 = figures.get("http_command_bounded_c1_p50_ms");
    let ratios = [
        ("ratio_c1_p50_bounded_minus_store_ms", bounded_c1 - figures.get("store_append_conditional_c1_p50_ms"), "ms"),
        (
            "ratio_growing_snap_over_bounded_c1_p50",
            figures.get("http_command_growing_snap_c1_p50_ms") / bounded_c1,
            "ratio",
        ),
        (
            "ratio_growing_nosnap_over_bounded_c1_p50",
            figures.get("http_command_growing_nosnap_c1_p50_ms") / bounded_c1,
            "ratio",
        ),
        (
            "ratio_c64_rps_bounded_over_store",
            figures.get("http_command_bounded_c64_rps") / figures.get("store_append_conditional_c64_eps"),
            "ratio",
        ),
    ];
    for (name, value, unit) in ratios.into_iter().filter(|(_, value, _)| value.is_finite()) {
        figures.add(name, value, unit);
    }
    figures.write(&out);
    // Every engine dropped: the client network stops before the process exits, as the
    // FoundationDB client library asks.
    #[cfg(feature = "fdb")]
    if matches!(target, Target::Fdb { .. }) {
        drop(target);
        fairway::dcb::kv::fdb::stop_network();
    }
}
