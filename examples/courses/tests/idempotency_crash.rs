//! `Idempotency-Key` across kill -9: the courses app runs as a child process while clients
//! send commands with keys; the child is SIGKILLed with requests in flight, in several
//! rounds. After each restart every key of the round is retried with the same body:
//! - a key whose response was acknowledged is replayed, with the same body;
//! - a key whose request died is answered at once (never 409 "in progress"): replayed if
//!   its command committed before the kill, run now if it did not;
//! - no command's events appear twice in the log, and every replayed position is the
//!   event of that key's command.
//!
//! The child runs on the suite's engine: the embedded store in a temporary directory, or a
//! fresh namespace of the cluster under `FAIRWAY_TEST_ENGINE=fdb`; the log is read back
//! from that store.

mod child;
mod store;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use child::Child;
use courses::events::{CourseDefined, StudentRegistered};
use fairway::Event;
use fairway::dcb::Position;
use serde_json::{Value, json};
use store::TestStore;

const ROUNDS: usize = 4;
const CLIENTS: usize = 12;

/// One request with a key, and what its client saw.
#[derive(Clone, Debug)]
struct Sent {
    key: String,
    command: &'static str,
    body: Value,
    /// The entity the command creates (course or student id).
    entity: String,
    /// What the client saw.
    seen: Seen,
}

#[derive(Clone, Debug)]
enum Seen {
    /// The acknowledged response: status and body.
    Answered(u16, Value),
    /// The request was sent, the process died before answering.
    Died,
    /// The process was already dead: the request never reached it.
    Refused,
}

fn request(round: usize, n: usize) -> (&'static str, Value, String) {
    if n.is_multiple_of(2) {
        let course = format!("r{round}-c{n}");
        ("define-course", json!({ "course_id": course, "capacity": 3 }), course)
    } else {
        let student = format!("r{round}-s{n}");
        let body = json!({ "student_id": student, "email": format!("{student}@example.org") });
        ("register-student", body, student)
    }
}

async fn post(http: &reqwest::Client, base: &str, sent: &Sent) -> Result<(u16, Value, bool), reqwest::Error> {
    let response = http
        .post(format!("{base}/commands/{}", sent.command))
        .header("Idempotency-Key", &sent.key)
        .json(&sent.body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let replayed = response.headers().contains_key(fairway::app::IDEMPOTENT_REPLAYED);
    Ok((status, response.json().await?, replayed))
}

/// Sends requests from `CLIENTS` clients until `stop`, counting answers in `answered`;
/// returns every request sent.
async fn load(base: String, round: usize, stop: Arc<AtomicBool>, answered: Arc<AtomicUsize>) -> Vec<Sent> {
    let counter = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (base, stop, counter, sent) = (base.clone(), stop.clone(), counter.clone(), sent.clone());
            let answered = answered.clone();
            tokio::spawn(async move {
                let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
                while !stop.load(Ordering::SeqCst) {
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    let (command, body, entity) = request(round, n);
                    let mut request = Sent { key: format!("r{round}-k{n}"), command, body, entity, seen: Seen::Died };
                    request.seen = match post(&http, &base, &request).await {
                        Ok((status, body, _)) => {
                            answered.fetch_add(1, Ordering::SeqCst);
                            Seen::Answered(status, body)
                        }
                        Err(err) if err.is_connect() => Seen::Refused,
                        Err(_) => Seen::Died,
                    };
                    sent.lock().unwrap().push(request);
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    Arc::try_unwrap(sent).unwrap().into_inner().unwrap()
}

#[derive(Default, Debug)]
struct Figures {
    sent: usize,
    acknowledged: usize,
    replayed: usize,
    died: usize,
    died_but_committed: usize,
    rerun: usize,
    never_reached: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_retried_after_kill_9_are_replayed_or_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let (store, log) = (TestStore::fresh(&dir.path().join("data")), dir.path().join("child.log"));
    let mut total = Figures::default();
    let mut settled: Vec<(Sent, Value)> = Vec::new();
    for round in 0..ROUNDS {
        let app = Child::start(&store, &log).await;
        let (stop, answered) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let load = tokio::spawn(load(app.base.clone(), round, stop.clone(), answered.clone()));
        let (target, deadline) = (rand::random_range(100..400), tokio::time::Instant::now() + Duration::from_secs(60));
        while answered.load(Ordering::SeqCst) < target {
            assert!(tokio::time::Instant::now() < deadline, "round {round}: the app answers too slowly");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        app.kill(); // With requests in flight.
        stop.store(true, Ordering::SeqCst);
        let sent = load.await.unwrap();

        let app = Child::start(&store, &log).await;
        let http = reqwest::Client::new();
        let mut figures = Figures { sent: sent.len(), ..Figures::default() };
        for request in sent {
            let (status, body, replayed) = post(&http, &app.base, &request).await.unwrap();
            let context = format!("round {round}, key {}: {status} {body}", request.key);
            assert_eq!(status, 200, "every retry is answered with the command's success: {context}");
            match &request.seen {
                Seen::Answered(first_status, first_body) => {
                    figures.acknowledged += 1;
                    assert_eq!(*first_status, 200, "{context}");
                    assert!(replayed, "an acknowledged key is replayed, not run again: {context}");
                    assert_eq!(&body, first_body, "the replay is the acknowledged response: {context}");
                    figures.replayed += 1;
                }
                Seen::Died if replayed => {
                    figures.died += 1;
                    figures.died_but_committed += 1;
                }
                Seen::Died => {
                    figures.died += 1;
                    figures.rerun += 1;
                }
                Seen::Refused => {
                    assert!(!replayed, "a request that never reached the app ran now: {context}");
                    figures.never_reached += 1;
                }
            }
            let (status, again, replayed) = post(&http, &app.base, &request).await.unwrap();
            assert_eq!((status, &again, replayed), (200, &body, true), "a second retry replays: {context}");
            settled.push((request, body));
        }
        println!("round {round}: {figures:?}");
        assert!(figures.died > 0, "round {round}: the kill caught requests in flight");
        total.sent += figures.sent;
        total.acknowledged += figures.acknowledged;
        total.replayed += figures.replayed;
        total.died += figures.died;
        total.died_but_committed += figures.died_but_committed;
        total.rerun += figures.rerun;
        total.never_reached += figures.never_reached;
        app.kill();
    }
    println!("all rounds: {total:?}");

    // The log: each command's event exactly once, at the position its answer gives.
    let mut created = std::collections::BTreeMap::<String, Vec<Position>>::new();
    for recorded in store.read_log().await {
        let entity = match recorded.event_type() {
            t if t == CourseDefined::NAME => recorded.as_event::<CourseDefined>().unwrap().unwrap().course_id,
            t if t == StudentRegistered::NAME => recorded.as_event::<StudentRegistered>().unwrap().unwrap().student_id,
            _ => continue,
        };
        created.entry(entity.into()).or_default().push(recorded.position());
    }
    assert_eq!(created.len(), settled.len(), "one entity per key");
    for (request, body) in &settled {
        let positions = &created[&request.entity];
        assert_eq!(positions.len(), 1, "{} was created once: {positions:?}", request.entity);
        assert_eq!(body["last_position"], positions[0].to_string(), "the answer of {} names its event", request.key);
    }
    assert_eq!(total.acknowledged, total.replayed);
    assert!(total.acknowledged > 0 && total.died > 0, "{total:?}");
    store.clear().await;
}
