//! Commands per second with one, two and three courses processes on one FoundationDB
//! cluster, beside one process on the embedded store, in the same run: the same clients
//! spread over the instances, each filling courses of at most 40 students (bounded
//! boundaries), with the courses views and automation live.
//!
//! `cargo xtask bench instances` builds the courses binary with the `fdb` feature and runs
//! this in release; it writes `target/bench/instances.json`, a JSON array of
//! `{"name", "value", "unit"}`. Options: `--cluster-file <file>` (default
//! `FAIRWAY_FDB_CLUSTER_FILE`), `--courses-bin <path>` (default `target/release/courses`),
//! `--clients <n>` (default 48), `--seconds <s>` per configuration (default 10), `--out <file>`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

/// Students per course: each command's boundary stays small.
const STUDENTS_PER_COURSE: usize = 40;

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

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// One courses process, killed when dropped.
struct Instance {
    child: Child,
    base: String,
}

impl Instance {
    async fn start(bin: &Path, store_args: &[String], log: &Path) -> Instance {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(bin)
            .args(store_args)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap_or_else(|err| panic!("{}: {err}", bin.display()));
        let instance = Instance { child, base: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !reqwest::get(format!("{}/health", instance.base)).await.is_ok_and(|r| r.status() == 200) {
            assert!(Instant::now() < deadline, "an instance did not start; see {}", log.display());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        instance
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `clients` clients, spread over `bases`, each defining courses and filling them with
/// students for `seconds`. Returns every command's latency (ms, sorted) and the elapsed time.
async fn fill_courses(bases: &[String], clients: usize, seconds: f64, run: &str) -> (Vec<f64>, Duration) {
    let http = reqwest::Client::new();
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (http, base, run) = (http.clone(), bases[client % bases.len()].clone(), run.to_owned());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                for i in 0.. {
                    if Instant::now() >= until {
                        break;
                    }
                    let course = format!("{run}-{client}-{}", i / (STUDENTS_PER_COURSE + 1));
                    let (command, body) = match i % (STUDENTS_PER_COURSE + 1) {
                        0 => ("define-course", json!({ "course_id": course, "capacity": STUDENTS_PER_COURSE })),
                        n => {
                            ("subscribe-student", json!({ "course_id": course, "student_id": format!("{course}-{n}") }))
                        }
                    };
                    let sent = Instant::now();
                    let response = http.post(format!("{base}/commands/{command}")).json(&body).send().await.unwrap();
                    assert!(response.status().is_success(), "{command}: {}", response.text().await.unwrap());
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

async fn measure(figures: &mut Figures, label: &str, bases: &[String], clients: usize, seconds: f64) {
    let (latencies, elapsed) = fill_courses(bases, clients, seconds, label).await;
    figures.add(&format!("{label}_rps"), latencies.len() as f64 / elapsed.as_secs_f64(), "req/s");
    figures.add(&format!("{label}_p50_ms"), percentile(&latencies, 0.50), "ms");
    figures.add(&format!("{label}_p99_ms"), percentile(&latencies, 0.99), "ms");
}

#[tokio::main]
async fn main() {
    let out = arg("--out").unwrap_or_else(|| "target/bench/instances.json".into());
    let cluster_file = arg("--cluster-file")
        .or_else(|| std::env::var("FAIRWAY_FDB_CLUSTER_FILE").ok())
        .expect("--cluster-file <file> or FAIRWAY_FDB_CLUSTER_FILE");
    let bin = arg("--courses-bin").unwrap_or_else(|| "target/release/courses".into());
    let clients: usize = arg("--clients").map_or(48, |v| v.parse().expect("--clients <n>"));
    let seconds: f64 = arg("--seconds").map_or(10.0, |v| v.parse().expect("--seconds <s>"));
    let bin = Path::new(&bin);
    let root = tempfile::Builder::new().prefix("fairway-instances").tempdir_in("target").unwrap();
    let mut figures = Figures(Vec::new());
    figures.add("clients", clients as f64, "clients");

    let embedded = ["--data-dir".to_owned(), root.path().join("embedded").display().to_string()];
    let instance = Instance::start(bin, &embedded, &root.path().join("embedded.log")).await;
    measure(
        &mut figures,
        &format!("embedded_instances1_c{clients}"),
        std::slice::from_ref(&instance.base),
        clients,
        seconds,
    )
    .await;
    drop(instance);

    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    for count in 1..=3 {
        let namespace = format!("bench-instances-{stamp}-{count}");
        let store = ["--fdb-cluster-file".to_owned(), cluster_file.clone(), "--namespace".to_owned(), namespace];
        let mut instances = Vec::new();
        for n in 0..count {
            instances.push(Instance::start(bin, &store, &root.path().join(format!("fdb-{count}-{n}.log"))).await);
        }
        let bases: Vec<String> = instances.iter().map(|i| i.base.clone()).collect();
        measure(&mut figures, &format!("fdb_instances{count}_c{clients}"), &bases, clients, seconds).await;
    }

    if let Some(parent) = Path::new(&out).parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&out, figures.json()).unwrap();
    eprintln!("wrote {out}");
}
