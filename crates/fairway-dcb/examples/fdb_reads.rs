//! Reads inside one transaction on FoundationDB: the 10,000 id lookups of a re-appended
//! batch, and the event fetches of index pages (a tag on 1 in 7 events, and one on all).
//! `FAIRWAY_FDB_CLUSTER_FILE=... cargo run --release -p fairway-dcb --features fdb --example fdb_reads`
//! prints three rounds of timings; the namespace it uses is cleared at the end.

use std::sync::Arc;
use std::time::Instant;

use fairway_dcb::conformance::tag;
use fairway_dcb::kv::fdb::{FdbEngine, stop_network};
use fairway_dcb::{DcbStore, EventStore, Query, QueryItem, RawEvent, ReadOptions, RetryPolicy};
use futures::TryStreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster_file = std::env::var(fairway_dcb::conformance::FDB_CLUSTER_FILE_VAR)?;
    let engine = FdbEngine::open(Some(&cluster_file), RetryPolicy::default())?;
    let store = DcbStore::new(Arc::new(engine), &format!("bench-reads-{:016x}", rand::random::<u64>()))?;
    let batch: Vec<RawEvent> = (0..10_000)
        .map(|i| {
            RawEvent::new("E", vec![1; 100])
                .with_tags([tag("k:all"), tag(&format!("n:{}", i % 7))])
                .with_id(format!("id-{i}"))
        })
        .collect();
    store.append(batch.clone(), None).await?;
    let read = |item: QueryItem| store.read(Query::from(item), ReadOptions::forwards()).try_collect::<Vec<_>>();
    for round in 1..=3 {
        let started = Instant::now();
        assert!(store.append(batch.clone(), None).await?.already_stored);
        let ids = started.elapsed();
        let started = Instant::now();
        assert_eq!(read(QueryItem::tags([tag("n:3")])).await?.len(), 1_429);
        let seventh = started.elapsed();
        let started = Instant::now();
        assert_eq!(read(QueryItem::tags([tag("k:all")])).await?.len(), 10_000);
        let all = started.elapsed();
        println!(
            "round {round}: 10,000 id lookups {ids:?}; 1,429 events by tag {seventh:?}; 10,000 events by tag {all:?}"
        );
    }
    store.clear_namespace().await?;
    drop(store);
    stop_network();
    Ok(())
}
