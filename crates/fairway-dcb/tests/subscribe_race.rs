//! Subscribers on multi-type and multi-item queries race writers appending to different
//! types and tags; afterwards every subscriber's deliveries are compared with the log. On
//! the embedded engine in every run, on FoundationDB when a cluster is configured.

mod engines;

use std::sync::Arc;
use std::time::Duration;

use fairway_dcb::kv::KvEngine;
use fairway_dcb::{DcbStore, EventStore, Query, QueryItem, RawEvent, ReadOptions, Tag};
use futures::TryStreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const WRITERS: usize = 4;
const SEEDS: u64 = 3;
const TYPES: [&str; 4] = ["A", "B", "C", "D"];

fn tag(text: &str) -> Tag {
    Tag::parse(text).unwrap()
}

/// Writer `w` appends `events` in batches of 1–3 events of random types tagged `w:<w>`.
async fn write<E: KvEngine>(store: DcbStore<E>, writer: usize, seed: u64, events: usize) {
    let mut rng = StdRng::seed_from_u64(seed * 100 + writer as u64);
    let mut written = 0;
    while written < events {
        let size = rng.random_range(1..=3).min(events - written);
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
async fn follow<E: KvEngine>(
    store: DcbStore<E>,
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

/// Three subscribers race four writers of `events_per_writer` events each, on the store
/// `open` gives for each seed; each subscriber delivers exactly the matching events of the
/// log, in order. The namespace of each seed is cleared once its checks passed.
async fn subscribers_on_multi_scan_queries_deliver_exactly_the_log<E: KvEngine>(
    open: impl Fn() -> DcbStore<E>,
    events_per_writer: usize,
) {
    let queries = [
        ("types [A, B]", Query::from(QueryItem::types(["A", "B"]))),
        (
            "[C] | [D] | tag w:0",
            Query::from_items([QueryItem::types(["C"]), QueryItem::types(["D"]), QueryItem::tags([tag("w:0")])]),
        ),
        ("tags w:1 | w:2 | w:3", Query::from_items((1..4).map(|w| QueryItem::tags([tag(&format!("w:{w}"))])))),
    ];
    for seed in 1..=SEEDS {
        let store = open();
        let targets: Vec<_> = queries.iter().map(|_| Arc::new(tokio::sync::OnceCell::new())).collect();
        let subscribers: Vec<_> = queries
            .iter()
            .zip(&targets)
            .map(|((_, query), target)| tokio::spawn(follow(store.clone(), query.clone(), target.clone())))
            .collect();
        let writers: Vec<_> =
            (0..WRITERS).map(|w| tokio::spawn(write(store.clone(), w, seed, events_per_writer))).collect();
        for writer in writers {
            writer.await.unwrap();
        }
        let log: Vec<_> = store.read(Query::all(), ReadOptions::forwards()).try_collect().await.unwrap();
        assert_eq!(log.len(), WRITERS * events_per_writer);
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
        store.clear_namespace().await.expect("the seed's namespace is cleared");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_subscribers_on_multi_scan_queries_deliver_exactly_the_log() {
    let (engine, _dir) = engines::embedded(engines::volatile());
    let open = || DcbStore::new(engine.clone(), &engines::fresh_namespace("race")).unwrap();
    subscribers_on_multi_scan_queries_deliver_exactly_the_log(open, 3_000).await;
}

/// Fewer events per writer than on the embedded engine: each commit waits for the cluster.
#[cfg(feature = "fdb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn foundationdb_subscribers_on_multi_scan_queries_deliver_exactly_the_log() {
    let Some(cluster_file) = fairway_dcb::conformance::fdb_cluster_file("the subscription race") else { return };
    let engine = engines::foundationdb(&cluster_file);
    let open = || DcbStore::new(engine.clone(), &engines::fresh_namespace("race")).unwrap();
    subscribers_on_multi_scan_queries_deliver_exactly_the_log(open, 1_000).await;
}
