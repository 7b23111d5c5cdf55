//! Kills a process appending to the embedded store with SIGKILL at random moments, then
//! checks that every acknowledged append survived, no batch is half visible, appends go
//! on, and a subscription resumes from a stored position without gaps. Kill times span
//! several journal checkpoints (one per second), so replay after a reset is exercised too.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fairway_dcb::conformance::{read_all, tag};
use fairway_dcb::{AppendCondition, EventStore, Position, Query, QueryItem, RawEvent, ReadOptions};
use futures::{StreamExt, TryStreamExt};
use rand::Rng;

const ROUNDS: usize = 20;
const CHILD_DIR: &str = "FAIRWAY_CRASH_CHILD_DIR";
const CHILD_ROUND: &str = "FAIRWAY_CRASH_CHILD_ROUND";
const NAMESPACE: &str = "crash";

/// Payload of every event: `round/batch/index/size`.
fn payload(round: usize, batch: usize, index: usize, size: usize) -> Vec<u8> {
    format!("{round}/{batch}/{index}/{size}").into_bytes()
}

/// The child: appends batches in a loop from 8 concurrent tasks, printing `ACK` lines.
/// Run by the parent through the test harness; it does nothing without its environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of crash_recovery_keeps_every_acknowledged_append; started by it"]
async fn crash_child_process() {
    let dir = std::env::var(CHILD_DIR).expect("run by the crash test");
    let round: usize = std::env::var(CHILD_ROUND).expect("run by the crash test").parse().unwrap();
    let store = fairway_dcb::open_embedded(dir, NAMESPACE).expect("store opens");
    let stdout = std::sync::Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let (store, stdout) = (store.clone(), stdout.clone());
            tokio::spawn(async move {
                for n in 0.. {
                    let batch = n * 8 + writer;
                    let size = 1 + batch % 5;
                    let events = (0..size)
                        .map(|i| {
                            RawEvent::new("Crashed", payload(round, batch, i, size))
                                .with_tags([tag(&format!("round:{round}")), tag(&format!("w:{writer}"))])
                        })
                        .collect();
                    let guard =
                        AppendCondition::none_match(Query::from(QueryItem::tags([tag(&format!("b:{round}-{batch}"))])));
                    let appended = store.append(events, Some(guard)).await.expect("append");
                    let mut out = stdout.lock().unwrap();
                    writeln!(out, "ACK {batch} {size} {}", appended.last()).unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
}

struct Acked {
    size: usize,
    last: Position,
}

fn run_child_until_killed(dir: &std::path::Path, round: usize, kill_after: Duration) -> HashMap<usize, Acked> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "crash_child_process", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_ROUND, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("child starts");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut acked = HashMap::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let parts: Vec<&str> = line.split_whitespace().collect();
            if let ["ACK", batch, size, last] = parts[..] {
                acked
                    .insert(batch.parse().unwrap(), Acked { size: size.parse().unwrap(), last: last.parse().unwrap() });
            }
        }
        acked
    });
    let started = Instant::now();
    std::thread::sleep(kill_after);
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    let acked = reader.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(60));
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_recovery_keeps_every_acknowledged_append() {
    let dir = tempfile::tempdir().unwrap();
    let mut checkpoint: Option<Position> = None;
    let mut total_acked = 0;
    for round in 0..ROUNDS {
        let kill_after = Duration::from_millis(rand::rng().random_range(150..2500));
        let acked = run_child_until_killed(dir.path(), round, kill_after);
        total_acked += acked.len();

        let store = fairway_dcb::open_embedded(dir.path(), NAMESPACE).expect("store reopens after SIGKILL");
        let round_query = Query::from(QueryItem::tags([tag(&format!("round:{round}"))]));
        let events = read_all(&store, round_query, ReadOptions::forwards()).await;
        let mut batches: BTreeMap<usize, Vec<(usize, usize, Position)>> = BTreeMap::new();
        for e in &events {
            let text = String::from_utf8(e.event.payload.clone()).unwrap();
            let fields: Vec<usize> = text.split('/').map(|f| f.parse().unwrap()).collect();
            assert_eq!(fields[0], round);
            batches.entry(fields[1]).or_default().push((fields[2], fields[3], e.position));
        }
        for (batch, ack) in &acked {
            let stored = batches.get(batch).unwrap_or_else(|| panic!("round {round}: acknowledged batch {batch} lost"));
            assert_eq!(stored.len(), ack.size, "round {round}: batch {batch} complete");
            assert_eq!(stored.last().unwrap().2, ack.last, "round {round}: batch {batch} at its acknowledged position");
        }
        for (batch, stored) in &batches {
            let size = stored[0].1;
            assert_eq!(stored.len(), size, "round {round}: batch {batch} is whole, never half visible");
            assert!(stored.iter().enumerate().all(|(i, s)| s.0 == i), "batch {batch} in order");
        }

        // The event count the appends keep survives the crash exactly.
        let held = read_all(&store, Query::all(), ReadOptions::forwards()).await.len() as u64;
        assert_eq!(store.count().await.unwrap(), held, "round {round}: the count matches the recovered log");

        // Appends continue after recovery.
        let head = store.head().await.unwrap();
        let after = store.append(vec![RawEvent::new("Recovered", round.to_string().into_bytes())], None).await.unwrap();
        assert!(Some(after.last()) > head, "positions keep increasing after a crash");

        // A subscription resumes from the stored checkpoint without gaps or repeats.
        let expected: Vec<Position> = read_all(
            &store,
            Query::all(),
            ReadOptions::forwards().from(checkpoint.map_or(Position::ZERO, Position::next)),
        )
        .await
        .iter()
        .map(|e| e.position)
        .collect();
        let resumed: Vec<Position> = store
            .subscribe(Query::all(), checkpoint)
            .take(expected.len())
            .map_ok(|e| e.position)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(resumed, expected, "round {round}: subscription resumes exactly after its checkpoint");
        checkpoint = resumed.last().copied().or(checkpoint);
        store.engine().close();
    }
    println!("{ROUNDS} kills, {total_acked} acknowledged batches verified");
    assert!(total_acked > ROUNDS, "children acknowledged appends before being killed ({total_acked})");
}
