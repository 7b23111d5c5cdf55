//! Subscribers on multi-type and multi-item queries race writers appending to different
//! types and tags; afterwards every subscriber's deliveries are compared with the log.

use std::sync::Arc;
use std::time::Duration;

use fairway_dcb::{
    DcbStore, EmbeddedEngine, EmbeddedOptions, EventStore, Query, QueryItem, RawEvent, ReadOptions, Tag,
};
use futures::TryStreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const WRITERS: usize = 4;
const EVENTS_PER_WRITER: usize = 3_000;
const TYPES: [&str; 4] = ["A", "B", "C", "D"];

fn tag(text: &str) -> Tag {
    Tag::parse(text).unwrap()
}

/// Writer `w` appends batches of 1–3 events of random types tagged `w:<w>`.
async fn write(store: DcbStore<EmbeddedEngine>, writer: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed * 100 + writer as u64);
    let mut written = 0;
    while written < EVENTS_PER_WRITER {
        let size = rng.random_range(1..=3).min(EVENTS_PER_WRITER - written);
        let events = (0..size)
            .map(|_| {
                let kind = TYPES[rng.random_range(0..TYPES.len())];
                RawEvent::new(kind, Vec::new()).with_tag(tag(&format!("w:{writer}")))
            })
            .collect();
        store.append(events, None).await.unwrap();
        written += size;
        if rng.random_bool(0.2) {
            tokio::task::yield_now().await;
        }
    }
}

/// Follows `query` until `expected` events arrived (or nothing came for 10 s).
async fn follow(
    store: DcbStore<EmbeddedEngine>,
    query: Query,
    expected: Arc<tokio::sync::OnceCell<usize>>,
) -> Vec<fairway_dcb::Position> {
    let mut stream = store.subscribe(query, None);
    let mut seen = Vec::new();
    loop {
        if expected.get().is_some_and(|n| seen.len() >= *n) {
            return seen;
        }
        match tokio::time::timeout(Duration::from_secs(10), stream.try_next()).await {
            Ok(next) => seen.push(next.unwrap().expect("subscriptions do not end").position),
            Err(_) => return seen,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscribers_on_multi_scan_queries_deliver_exactly_the_log() {
    let queries = [
        ("types [A, B]", Query::from(QueryItem::types(["A", "B"]))),
        (
            "[C] | [D] | tag w:0",
            Query::from_items([QueryItem::types(["C"]), QueryItem::types(["D"]), QueryItem::tags([tag("w:0")])]),
        ),
        ("tags w:1 | w:2 | w:3", Query::from_items((1..4).map(|w| QueryItem::tags([tag(&format!("w:{w}"))])))),
    ];
    for seed in 1..=3u64 {
        let dir = tempfile::tempdir().unwrap();
        let options = EmbeddedOptions { durable: false, ..EmbeddedOptions::default() };
        let store = DcbStore::new(Arc::new(EmbeddedEngine::open(dir.path(), options).unwrap()), "race").unwrap();
        let targets: Vec<_> = queries.iter().map(|_| Arc::new(tokio::sync::OnceCell::new())).collect();
        let subscribers: Vec<_> = queries
            .iter()
            .zip(&targets)
            .map(|((_, query), target)| tokio::spawn(follow(store.clone(), query.clone(), target.clone())))
            .collect();
        let writers: Vec<_> = (0..WRITERS).map(|w| tokio::spawn(write(store.clone(), w, seed))).collect();
        for writer in writers {
            writer.await.unwrap();
        }
        let log: Vec<_> = store.read(Query::all(), ReadOptions::forwards()).try_collect().await.unwrap();
        assert_eq!(log.len(), WRITERS * EVENTS_PER_WRITER);
        let wanted: Vec<Vec<_>> = queries
            .iter()
            .map(|(_, q)| log.iter().filter(|e| q.matches(&e.event)).map(|e| e.position).collect())
            .collect();
        for (target, wanted) in targets.iter().zip(&wanted) {
            target.set(wanted.len()).unwrap();
        }
        for ((subscriber, (name, _)), wanted) in subscribers.into_iter().zip(&queries).zip(&wanted) {
            let seen = subscriber.await.unwrap();
            println!("seed {seed}, {name}: delivered {} of {} in the log", seen.len(), wanted.len());
            assert_eq!(&seen, wanted, "seed {seed}, {name}: deliveries differ from the log");
        }
    }
}
