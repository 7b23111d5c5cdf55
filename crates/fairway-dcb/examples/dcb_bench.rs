//! The DCB store benchmark on the embedded engine, durability on.
//!
//! `cargo xtask bench dcb` runs it in release and writes `target/bench/dcb.json`: a JSON array
//! of `{"name", "value", "unit"}`. Options: `--out <file>`, `--events <n>` (events loaded for
//! the read figures, default 1,000,000), `--seconds <s>` per append scenario (default 3).
//!
//! Built with the `fdb` feature and given `--fdb-cluster-file <file>`, it also runs the
//! append scenarios on that FoundationDB cluster, in a fresh namespace cleared afterwards,
//! in the same run: figures named `fdb_…` beside the embedded engine's.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use fairway_dcb::kv::KvEngine;
use fairway_dcb::{
    AppendCondition, DcbStore, EmbeddedEngine, EmbeddedOptions, EventStore, Position, Query, QueryItem, RawEvent,
    ReadOptions, Tag,
};
use futures::TryStreamExt;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Figures(Vec<(String, f64, &'static str)>);

impl Figures {
    fn add(&mut self, name: &str, value: f64, unit: &'static str) {
        eprintln!("{name:<32} {value:>14.2} {unit}");
        self.0.push((name.to_owned(), value, unit));
    }

    fn json(&self) -> String {
        let rows: Vec<String> = self
            .0
            .iter()
            .map(|(n, v, u)| format!("  {{\"name\": \"{n}\", \"value\": {:.3}, \"unit\": \"{u}\"}}", v))
            .collect();
        format!("[\n{}\n]\n", rows.join(",\n"))
    }
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

/// Median cost of writing 4 KiB and `fdatasync`ing it, in milliseconds.
fn fdatasync_ms(dir: &std::path::Path) -> f64 {
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path).expect("probe file");
    let block = vec![7u8; 4096];
    let mut samples: Vec<f64> = (0..200)
        .map(|_| {
            file.write_all(&block).unwrap();
            let start = Instant::now();
            file.sync_data().unwrap();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    std::fs::remove_file(path).ok();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn payload(n: usize) -> Vec<u8> {
    format!(
        "{{\"n\":{n},\"name\":\"student-{n}\",\"course\":\"course-{}\",\"note\":\"bench payload of about 100 bytes\"}}",
        n % 1000
    )
    .into_bytes()
}

/// Commits and transactions the embedded engine counted so far (none on another engine).
type Counters<'a> = &'a dyn Fn() -> Option<(u64, u64)>;

/// `clients` tasks, each appending one event per request under its own condition; figures
/// named `<prefix>append_conditional_…`.
async fn conditional<E: KvEngine>(
    store: &DcbStore<E>,
    clients: usize,
    seconds: f64,
    figures: &mut Figures,
    prefix: &str,
    counters: Counters<'_>,
) {
    let before = counters();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let store = store.clone();
            tokio::spawn(async move {
                let own = Tag::new("client", format!("c{clients}-{c}")).unwrap();
                let query = Query::from(QueryItem::types(["Booked"]).with_tags([own.clone()]));
                let mut after = None;
                let mut latencies = Vec::new();
                let mut n = 0;
                while Instant::now() < deadline {
                    let event =
                        RawEvent::new("Booked", payload(n)).with_tags([own.clone(), Tag::new("seat", n % 97).unwrap()]);
                    let sent = Instant::now();
                    let appended = store
                        .append(vec![event], Some(AppendCondition::none_match_after(query.clone(), after)))
                        .await
                        .unwrap();
                    latencies.push(sent.elapsed().as_secs_f64() * 1e3);
                    after = Some(appended.last());
                    n += 1;
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    figures.add(&format!("{prefix}append_conditional_c{clients}_eps"), latencies.len() as f64 / elapsed, "events/s");
    let p = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    figures.add(&format!("{prefix}append_conditional_c{clients}_p50_ms"), p(0.50), "ms");
    figures.add(&format!("{prefix}append_conditional_c{clients}_p99_ms"), p(0.99), "ms");
    if let (Some((commits0, txs0)), Some((commits, txs))) = (before, counters()) {
        let per_fsync = (txs - txs0) as f64 / (commits - commits0).max(1) as f64;
        figures.add(&format!("appends_per_fsync_c{clients}"), per_fsync, "appends/fsync");
    }
}

/// The append scenarios on the FoundationDB cluster `cluster_file` names, in a fresh
/// namespace cleared afterwards.
#[cfg(feature = "fdb")]
async fn foundationdb_appends(cluster_file: &str, seconds: f64, figures: &mut Figures) {
    let engine = fairway_dcb::FdbEngine::open(Some(cluster_file), fairway_dcb::RetryPolicy::default())
        .expect("the FoundationDB cluster opens");
    let namespace = format!("bench-{}", std::process::id());
    let store = DcbStore::new(Arc::new(engine), &namespace).unwrap();
    for clients in [1, 4, 16, 64] {
        conditional(&store, clients, seconds, figures, "fdb_", &|| None).await;
    }
    batches(&store, 1, seconds, figures, "fdb_append_batch100_c1_eps").await;
    batches(&store, 16, seconds, figures, "fdb_append_batch100_c16_eps").await;
    store.clear_namespace().await.expect("the bench namespace clears");
}

/// `clients` tasks appending 100-event batches.
async fn batches<E: KvEngine>(store: &DcbStore<E>, clients: usize, seconds: f64, figures: &mut Figures, name: &str) {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut events = 0usize;
                while Instant::now() < deadline {
                    let batch = (0..100)
                        .map(|i| {
                            RawEvent::new("Imported", payload(i))
                                .with_tags([Tag::new("batch", c).unwrap(), Tag::new("item", events + i).unwrap()])
                        })
                        .collect();
                    store.append(batch, None).await.unwrap();
                    events += 100;
                }
                events
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    figures.add(name, total as f64 / start.elapsed().as_secs_f64(), "events/s");
}

/// Loads `count` events (tags: a tenant shared by 1/10 of them, an entity shared by 100).
async fn load(store: &DcbStore<EmbeddedEngine>, count: usize) {
    let start = Instant::now();
    for chunk in (0..count).collect::<Vec<_>>().chunks(2000) {
        let batch = chunk
            .iter()
            .map(|&n| {
                RawEvent::new(["Registered", "Subscribed", "Paid"][n % 3], payload(n)).with_tags([
                    Tag::new("tenant", n % 10).unwrap(),
                    Tag::new("entity", n % (count / 100).max(1)).unwrap(),
                ])
            })
            .collect();
        store.append(batch, None).await.unwrap();
    }
    eprintln!("loaded {count} events in {:.1}s", start.elapsed().as_secs_f64());
}

async fn read_rate(store: &DcbStore<EmbeddedEngine>, query: Query) -> (usize, f64) {
    let start = Instant::now();
    let mut stream = store.read(query, ReadOptions::forwards());
    let mut count = 0usize;
    let mut bytes = 0usize;
    while let Some(event) = stream.try_next().await.unwrap() {
        count += 1;
        bytes += event.event.payload.len();
    }
    assert!(bytes > 0);
    (count, count as f64 / start.elapsed().as_secs_f64())
}

/// Reads `query` in pages of `limit` events, each page a new read starting after the last
/// event of the one before (as a consumer catching up page by page does).
async fn paged_read_rate(store: &DcbStore<EmbeddedEngine>, query: Query, limit: usize) -> (usize, f64) {
    let start = Instant::now();
    let mut count = 0usize;
    let mut from = Position::ZERO;
    loop {
        let page: Vec<_> =
            store.read(query.clone(), ReadOptions::forwards().from(from).limit(limit)).try_collect().await.unwrap();
        count += page.len();
        match page.last() {
            Some(last) if page.len() == limit => from = last.position.next(),
            _ => break,
        }
    }
    (count, count as f64 / start.elapsed().as_secs_f64())
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let out = arg("--out").unwrap_or_else(|| "target/bench/dcb.json".into());
    let events: usize = arg("--events").map_or(1_000_000, |v| v.parse().expect("--events <n>"));
    let seconds: f64 = arg("--seconds").map_or(3.0, |v| v.parse().expect("--seconds <s>"));
    let root = tempfile::Builder::new().prefix("fairway-bench").tempdir_in("target").expect("temp dir under target/");
    let mut figures = Figures(Vec::new());
    figures.add("fdatasync_4k_before_ms", fdatasync_ms(root.path()), "ms");

    let append_dir = root.path().join("append");
    let durable = std::env::var("BENCH_NONDURABLE").is_err();
    let engine =
        Arc::new(EmbeddedEngine::open(&append_dir, EmbeddedOptions { durable, ..EmbeddedOptions::default() }).unwrap());
    let store = DcbStore::new(engine.clone(), "bench").unwrap();
    let reads_only = std::env::args().any(|a| a == "--reads-only");
    if !reads_only {
        let batches_only = std::env::args().any(|a| a == "--batches-only");
        let counters = || {
            let stats = engine.stats();
            Some((stats.commits.load(Ordering::Relaxed), stats.transactions.load(Ordering::Relaxed)))
        };
        for clients in [1, 4, 16, 64].into_iter().filter(|_| !batches_only) {
            conditional(&store, clients, seconds, &mut figures, "", &counters).await;
        }
        batches(&store, 1, seconds, &mut figures, "append_batch100_c1_eps").await;
        batches(&store, 4, seconds, &mut figures, "append_batch100_eps").await;
        batches(&store, 16, seconds, &mut figures, "append_batch100_c16_eps").await;
    }
    engine.close();
    drop(store);
    #[cfg(feature = "fdb")]
    if let Some(cluster_file) = arg("--fdb-cluster-file") {
        foundationdb_appends(&cluster_file, seconds, &mut figures).await;
    }

    if std::env::args().any(|a| a == "--writes-only") {
        return write_figures(&out, &figures);
    }
    let read_dir = root.path().join("read");
    let mut options = EmbeddedOptions::default();
    if let Some(mb) = arg("--cache-mb") {
        options.cache_bytes = mb.parse::<usize>().expect("--cache-mb <n>") << 20;
    }
    let engine = Arc::new(EmbeddedEngine::open(&read_dir, options).unwrap());
    let store = DcbStore::new(engine.clone(), "bench").unwrap();
    load(&store, events).await;
    let (stored, metadata, fragmented) = engine.space().unwrap();
    eprintln!("space: stored {stored} metadata {metadata} fragmented {fragmented} file {}", dir_bytes(&read_dir));
    let repeat: usize = arg("--read-repeat").map_or(1, |v| v.parse().expect("--read-repeat <n>"));
    for _ in 1..repeat {
        read_rate(&store, Query::all()).await;
        read_rate(&store, Query::from(QueryItem::tags([Tag::new("tenant", 3).unwrap()]))).await;
    }
    let (count, rate) = read_rate(&store, Query::all()).await;
    assert_eq!(count, events);
    figures.add("read_all_eps", rate, "events/s");
    let (count, rate) = read_rate(&store, Query::from(QueryItem::tags([Tag::new("tenant", 3).unwrap()]))).await;
    assert_eq!(count, events / 10);
    figures.add("read_tag_eps", rate, "events/s");
    let (_, rate) =
        read_rate(&store, Query::from(QueryItem::types(["Paid"]).with_tags([Tag::new("tenant", 3).unwrap()]))).await;
    figures.add("read_type_tag_eps", rate, "events/s");
    // Two index scans merged (bounded by one head), over appends of 2,000 events.
    let (count, rate) = read_rate(&store, Query::from(QueryItem::types(["Paid", "Registered"]))).await;
    assert_eq!(count, (0..events).filter(|n| n % 3 != 1).count());
    figures.add("read_two_types_eps", rate, "events/s");
    // Pages of 256 over appends of 2,000 events: a page must cost what it returns.
    let (count, rate) = paged_read_rate(&store, Query::from(QueryItem::types(["Paid"])), 256).await;
    assert_eq!(count, (0..events).filter(|n| n % 3 == 2).count());
    figures.add("read_paged256_type_eps", rate, "events/s");
    let (count, rate) = paged_read_rate(&store, Query::from(QueryItem::types(["Paid", "Subscribed"])), 256).await;
    assert_eq!(count, (0..events).filter(|n| n % 3 != 0).count());
    figures.add("read_paged256_two_types_eps", rate, "events/s");
    engine.close();
    drop(store);
    figures.add("store_bytes_per_event", dir_bytes(&read_dir) as f64 / events as f64, "bytes");
    figures.add("fdatasync_4k_after_ms", fdatasync_ms(root.path()), "ms");

    write_figures(&out, &figures);
}

/// Writes the figures as JSON to `out`.
fn write_figures(out: &str, figures: &Figures) {
    if let Some(parent) = std::path::Path::new(out).parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(out, figures.json()).unwrap();
    eprintln!("wrote {out}");
}
