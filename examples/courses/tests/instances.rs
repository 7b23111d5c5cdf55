//! Three courses processes on one FoundationDB cluster and namespace, over HTTP: on many
//! full courses with two students waiting, `change-capacity` (to 2) and
//! `unsubscribe-student` race, spread over the three instances, and the first instance
//! (the first to take every projector's lease) is killed -9 in the middle. Its clients retry
//! on a survivor with the same `Idempotency-Key`. Afterwards, on the log read back from the
//! cluster: every waiting student was promoted exactly once, no job was dead-lettered, and
//! every row of the `courses` view, as a survivor serves it, equals a fold of the log; a
//! view read with `?after=` on one instance waits for a command run on another; a survivor
//! stopped with SIGTERM exits with success.
//!
//! Runs with the `fdb` feature and `FAIRWAY_FDB_CLUSTER_FILE` (`.ci/fdb_suites.sh` runs it
//! on a local cluster); without a cluster it says it was skipped.
//! `FAIRWAY_RACE_COURSES` sets the number of courses (default 150), `FAIRWAY_INSTANCE_RUNS`
//! how many times the whole scenario runs, each on a fresh namespace (default 1).
#![cfg(feature = "fdb")]

mod child;
mod race;
mod store;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use child::Child;
use courses::events::StudentSubscribed;
use fairway::app::replies::{AutomationsReply, CommandReply, ProgressReply};
use fairway::dcb::conformance::fdb_cluster_file;
use futures::StreamExt;
use race::{Row, fold};
use serde_json::{Value, json};
use store::TestStore;

const INSTANCES: usize = 3;

/// The instances and which of them are alive.
struct Cluster {
    instances: Vec<Child>,
    killed: Vec<AtomicBool>,
    http: reqwest::Client,
}

impl Cluster {
    /// Posts `body` to command `name` with `key`, on instance `preferred` or, when that one
    /// is dead or dies during the request, on a survivor with the same key. Returns the
    /// status of the answer.
    async fn post(&self, preferred: usize, name: &str, key: &str, body: &Value) -> u16 {
        for attempt in 0..50 {
            let n = self.alive(preferred + attempt);
            let response = self
                .http
                .post(format!("{}/commands/{name}", self.instances[n].base))
                .header("Idempotency-Key", key)
                .json(body)
                .send()
                .await;
            match response {
                Ok(response) if response.status() != 409 => return response.status().as_u16(),
                // 409: a conflict to retry, or the same key running here still.
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(_) => assert!(self.killed[n].load(Ordering::SeqCst), "only a killed instance fails a request"),
            }
        }
        panic!("{name} {body} was not answered in 50 attempts");
    }

    /// The first live instance from `n` on.
    fn alive(&self, n: usize) -> usize {
        (n..n + INSTANCES).map(|i| i % INSTANCES).find(|&i| !self.killed[i].load(Ordering::SeqCst)).unwrap()
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, n: usize, path: &str) -> T {
        let url = format!("{}{path}", self.instances[self.alive(n)].base);
        race::get_json(&self.http, &url).await
    }

    /// Waits until no automation job is pending and no view is behind, for a while.
    async fn settle(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
        let mut quiet = 0;
        while quiet < 5 {
            assert!(tokio::time::Instant::now() < deadline, "the instances settle within 180 s");
            let automations: AutomationsReply = self.get(1, "/automations").await;
            let progress: ProgressReply = self.get(2, "/progress").await;
            let pending: usize = automations.automations.iter().map(|a| a.pending).sum();
            let behind: u64 = progress.views.iter().map(|v| v.remaining).sum();
            quiet = if pending == 0 && behind == 0 { quiet + 1 } else { 0 };
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_promote_every_waiting_student_once_with_one_killed() {
    let Some(cluster_file) = fdb_cluster_file("three courses instances") else { return };
    for run in 0..env_number("FAIRWAY_INSTANCE_RUNS", 1) {
        race_on_three_instances(&cluster_file, run).await;
    }
}

async fn race_on_three_instances(cluster_file: &str, run: usize) {
    let courses = env_number("FAIRWAY_RACE_COURSES", 150);
    let dir = tempfile::tempdir().unwrap();
    let store = TestStore::fdb(cluster_file, "instances");
    let mut instances = Vec::new();
    for n in 0..INSTANCES {
        instances.push(Child::start(&store, &dir.path().join(format!("instance-{n}.log"))).await);
    }
    let cluster = Cluster {
        instances,
        killed: (0..INSTANCES).map(|_| AtomicBool::new(false)).collect(),
        http: reqwest::Client::new(),
    };

    // Every course is full (capacity 1, student s) with two students waiting, each course
    // set up through another instance.
    futures::stream::iter(0..courses)
        .for_each_concurrent(16, |i| {
            let cluster = &cluster;
            async move {
                let course = format!("c{i}");
                let define = json!({ "course_id": course, "capacity": 1 });
                assert_eq!(cluster.post(i, "define-course", &format!("define-{i}"), &define).await, 200);
                let seat = json!({ "course_id": course, "student_id": format!("s{i}") });
                assert_eq!(cluster.post(i + 1, "subscribe-student", &format!("seat-{i}"), &seat).await, 200);
                for (w, student) in ["a", "b"].into_iter().enumerate() {
                    let wait = json!({ "course_id": course, "student_id": format!("w{i}{student}") });
                    let key = format!("wait-{i}-{student}");
                    assert_eq!(cluster.post(i + w, "join-waiting-list", &key, &wait).await, 200);
                }
            }
        })
        .await;

    // Both free a seat; they race on every course at once, each from another instance; the
    // first instance is killed when half the courses are done.
    let done = AtomicUsize::new(0);
    let killer = async {
        while done.load(Ordering::SeqCst) < courses / 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        cluster.killed[0].store(true, Ordering::SeqCst);
        cluster.instances[0].kill();
    };
    let race = futures::stream::iter(0..courses).for_each_concurrent(32, |i| {
        let (cluster, done) = (&cluster, &done);
        async move {
            let course = format!("c{i}");
            let grow = json!({ "course_id": course, "capacity": 2 });
            let leave = json!({ "course_id": course, "student_id": format!("s{i}") });
            let (grow_key, leave_key) = (format!("grow-{i}"), format!("leave-{i}"));
            let grow = cluster.post(i, "change-capacity", &grow_key, &grow);
            let leave = cluster.post(i + 1, "unsubscribe-student", &leave_key, &leave);
            assert_eq!(futures::join!(grow, leave), (200, 200), "course {i}");
            done.fetch_add(1, Ordering::SeqCst);
        }
    });
    futures::join!(race, killer);
    cluster.settle().await;

    let automations: AutomationsReply = cluster.get(1, "/automations").await;
    let dead: usize = automations.automations.iter().map(|a| a.dead_letters).sum();
    let page: Value = cluster.get(2, "/views/courses?limit=1000").await;
    assert_eq!(page["next_cursor"], Value::Null, "every course on one page");
    let view: Vec<Value> = serde_json::from_value(page["documents"].clone()).unwrap();

    // Read-your-writes across instances: a course defined through one instance is served by
    // another at once with ?after=<the command's position>.
    let defined: CommandReply = cluster
        .http
        .post(format!("{}/commands/define-course", cluster.instances[1].base))
        .json(&json!({ "course_id": "read-your-writes", "capacity": 7 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let after = defined.last_position.unwrap();
    let row: Value = cluster.get(2, &format!("/views/courses/read-your-writes?after={after}")).await;
    assert_eq!(row["capacity"], 7, "another instance serves the write it waited for: {row}");

    // A graceful stop drains the instance and stops the client network before exiting.
    assert!(cluster.instances[1].terminate(), "a terminated instance exits with success");
    cluster.killed[1].store(true, Ordering::SeqCst);

    let log = store.read_log().await;
    let folded = fold(&log);
    let mut promotions: BTreeMap<String, usize> = BTreeMap::new();
    for subscribed in log.iter().filter_map(|e| e.as_event::<StudentSubscribed>()) {
        let subscribed = subscribed.unwrap();
        if subscribed.student_id.starts_with('w') {
            *promotions.entry(subscribed.student_id.into()).or_default() += 1;
        }
    }
    let still_waiting: usize = folded.values().map(|r| r.waiting.len()).sum();
    println!(
        "run {run}: {courses} courses on {INSTANCES} instances, one killed: {} of {} waiting students promoted, \
         {still_waiting} still waiting, {dead} dead letters, {} events",
        promotions.len(),
        2 * courses,
        log.len()
    );
    assert_eq!(dead, 0, "no job was dead-lettered");
    assert_eq!(still_waiting, 0, "every waiting student was promoted");
    assert_eq!(promotions.len(), 2 * courses, "every waiting student was promoted");
    assert!(promotions.values().all(|&n| n == 1), "no student was promoted twice: {promotions:?}");
    assert_eq!(view.len(), courses);
    for entry in &view {
        let key = entry["key"].as_str().unwrap();
        let doc = &entry["doc"];
        let served = Row {
            capacity: doc["capacity"].as_u64().unwrap(),
            subscribed: doc["subscribed"].as_u64().unwrap(),
            waiting: serde_json::from_value(doc["waiting"].clone()).unwrap(),
        };
        assert_eq!(&served, &folded[key], "course {key}: the view row equals a fold of the log");
        assert_eq!((served.capacity, served.subscribed), (2, 2), "course {key} is full again");
    }
    drop(cluster);
    store.clear().await;
}
