//! Every read is one prefix of the log, even when other appends commit between the pages
//! and scans of a multi-scan read. Appends are injected between the reader's transactions
//! with [`Interleaving`], at every step of the read in turn, and the result is checked
//! against a naive filter of the final log. Items whose first tag is on every event switch
//! to a smaller index mid-read (`[A] tagged k:all`), also with appends between. On the
//! embedded engine in every run, on FoundationDB when a cluster is configured.

mod engines;

use std::sync::Arc;
use std::time::Duration;

use fairway_dcb::kv::KvEngine;
use fairway_dcb::kv::interleave::Interleaving;
use fairway_dcb::{DcbStore, EventStore, Position, Query, QueryItem, RawEvent, ReadOptions, SequencedEvent, Tag};
use futures::{StreamExt, TryStreamExt};

/// A reader whose transactions can be preceded by appends, and a writer, on one namespace.
struct Fixture<E: KvEngine> {
    _dir: Option<tempfile::TempDir>,
    hooked: Arc<Interleaving<E>>,
    reader: DcbStore<Interleaving<E>>,
    writer: DcbStore<E>,
}

impl<E: KvEngine> Fixture<E> {
    /// The writer on a fresh namespace of `engine`, the reader on it through [`Interleaving`].
    fn on(engine: Arc<E>, dir: Option<tempfile::TempDir>) -> Self {
        let namespace = engines::fresh_namespace("prefix");
        let hooked = Arc::new(Interleaving::new(engine.clone()));
        // Appends through the wrapper write commit markers where the engine needs them.
        assert_eq!(hooked.commit_result_may_be_unknown(), engine.commit_result_may_be_unknown());
        let reader = DcbStore::new(hooked.clone(), &namespace).unwrap();
        let writer = DcbStore::new(engine, &namespace).unwrap();
        Fixture { _dir: dir, hooked, reader, writer }
    }

    /// Clears the namespace of a case that passed.
    async fn passed(self) {
        self.writer.clear_namespace().await.expect("the case's namespace is cleared");
    }
}

fn embedded() -> Fixture<fairway_dcb::EmbeddedEngine> {
    let (engine, dir) = engines::embedded(engines::volatile());
    Fixture::on(engine, Some(dir))
}

fn tag(text: &str) -> Tag {
    Tag::parse(text).unwrap()
}

/// One `A`, then `bs` events `B`, each in its own append, 16 at a time (a FoundationDB
/// commit waits for the cluster: one by one, setting up the cases took a minute).
async fn one_a_then_many_b<E: KvEngine>(writer: &DcbStore<E>, bs: usize) {
    writer
        .append(vec![RawEvent::new("A", b"a1".to_vec()).with_tag(tag("k:a")).with_tag(tag("k:all"))], None)
        .await
        .unwrap();
    futures::stream::iter(0..bs)
        .for_each_concurrent(16, |i| async move {
            let b = RawEvent::new("B", format!("b{i}").into_bytes()).with_tag(tag("k:b")).with_tag(tag("k:all"));
            writer.append(vec![b], None).await.unwrap();
        })
        .await;
}

/// Appends `A2` then `B2`.
async fn a2_then_b2<E: KvEngine>(writer: DcbStore<E>) {
    writer
        .append(vec![RawEvent::new("A", b"a2".to_vec()).with_tag(tag("k:a")).with_tag(tag("k:all"))], None)
        .await
        .unwrap();
    writer
        .append(vec![RawEvent::new("B", b"b2".to_vec()).with_tag(tag("k:b")).with_tag(tag("k:all"))], None)
        .await
        .unwrap();
}

async fn log<E: KvEngine>(writer: &DcbStore<E>) -> Vec<SequencedEvent> {
    writer.read(Query::all(), ReadOptions::forwards()).try_collect().await.unwrap()
}

fn positions(events: &[SequencedEvent]) -> Vec<Position> {
    events.iter().map(|e| e.position).collect()
}

/// The matching positions of `log` at or below `head`, in position order.
fn expected(log: &[SequencedEvent], query: &Query, head: Position) -> Vec<Position> {
    log.iter().filter(|e| e.position <= head && query.matches(&e.event)).map(|e| e.position).collect()
}

fn queries() -> Vec<(&'static str, Query)> {
    vec![
        ("[A] | [B]", Query::from_items([QueryItem::types(["A"]), QueryItem::types(["B"])])),
        ("types [A, B]", Query::from(QueryItem::types(["A", "B"]))),
        ("tags k:a | k:b", Query::from_items([QueryItem::tags([tag("k:a")]), QueryItem::tags([tag("k:b")])])),
        ("[A] | tag k:b", Query::from_items([QueryItem::types(["A"]), QueryItem::tags([tag("k:b")])])),
        // Every event has k:all: past its first page the first item switches to A's index...
        (
            "[A] tagged k:all | [B]",
            Query::from_items([QueryItem::types(["A"]).with_tags([tag("k:all")]), QueryItem::types(["B"])]),
        ),
        // ...or to the index of k:a.
        (
            "tags k:all & k:a | tag k:b",
            Query::from_items([QueryItem::tags([tag("k:all"), tag("k:a")]), QueryItem::tags([tag("k:b")])]),
        ),
    ]
}

/// The example: the first item of `[A] | [B]` is read, then `A2` and `B2` commit;
/// the rest of the read must not hold `B2` without `A2`.
async fn a_forwards_read_does_not_return_a_later_event_without_an_earlier_one<E: KvEngine>(
    open: impl Fn() -> Fixture<E>,
) {
    for (name, query) in queries() {
        let f = open();
        one_a_then_many_b(&f.writer, 200).await;
        let before = log(&f.writer).await;
        let mut stream = f.reader.read(query.clone(), ReadOptions::forwards());
        let first = stream.try_next().await.unwrap().unwrap();
        a2_then_b2(f.writer.clone()).await;
        let mut read = vec![first];
        read.extend(stream.try_collect::<Vec<_>>().await.unwrap());
        let after = log(&f.writer).await;
        let top = read.last().unwrap().position;
        assert_eq!(positions(&read), expected(&after, &query, top), "{name}: not a prefix of the log");
        assert_eq!(positions(&read), expected(&before, &query, Position::MAX), "{name}: bounded by the head at start");
        f.passed().await;
    }
}

/// Appends land before each transaction of the read in turn (head, every scan's pages);
/// the result is always every matching event up to some head at least the one at start.
async fn commits_between_the_pages_of_a_read_never_break_the_prefix<E: KvEngine>(open: impl Fn() -> Fixture<E>) {
    for backwards in [false, true] {
        for (name, query) in queries() {
            for step in 0..8 {
                let f = open();
                one_a_then_many_b(&f.writer, 300).await;
                let head_at_start = f.writer.head().await.unwrap().unwrap();
                f.hooked.before(f.hooked.transactions() + step, a2_then_b2(f.writer.clone()));
                let options = if backwards { ReadOptions::backwards() } else { ReadOptions::forwards() };
                let mut read: Vec<SequencedEvent> = f.reader.read(query.clone(), options).try_collect().await.unwrap();
                let after = log(&f.writer).await;
                if backwards {
                    read.reverse();
                }
                let top = read.last().unwrap().position;
                assert!(top >= expected(&after, &query, head_at_start).last().copied().unwrap());
                assert_eq!(
                    positions(&read),
                    expected(&after, &query, top),
                    "{name}, backwards {backwards}, appends before transaction {step}"
                );
                f.passed().await;
            }
        }
    }
}

/// `read_with_head` reports the head it read up to: the result is exactly the matching
/// events up to it, whatever commits during the read, and an empty result still says how
/// far the log was read.
async fn read_with_head_returns_exactly_the_matches_up_to_its_head<E: KvEngine>(open: impl Fn() -> Fixture<E>) {
    for (name, query) in queries() {
        for step in 0..6 {
            let f = open();
            one_a_then_many_b(&f.writer, 300).await;
            let head_at_start = f.writer.head().await.unwrap();
            f.hooked.before(f.hooked.transactions() + step, a2_then_b2(f.writer.clone()));
            let bounded = f.reader.read_with_head(query.clone(), ReadOptions::forwards()).await.unwrap();
            let head = bounded.head.unwrap();
            let read: Vec<SequencedEvent> = bounded.events.try_collect().await.unwrap();
            assert!(Some(head) >= head_at_start);
            assert_eq!(positions(&read), expected(&log(&f.writer).await, &query, head), "{name}, step {step}");
            f.passed().await;
        }
    }
    let f = open();
    f.writer.append(vec![RawEvent::new("C", vec![])], None).await.unwrap();
    let bounded = f.reader.read_with_head(Query::from(QueryItem::types(["A"])), ReadOptions::forwards()).await.unwrap();
    assert_eq!(bounded.head, f.writer.head().await.unwrap(), "nothing matched, the head is still reported");
    assert_eq!(bounded.events.count().await, 0);
    f.passed().await;

    let f = open();
    let empty = f.reader.read_with_head(Query::all(), ReadOptions::forwards()).await.unwrap();
    assert_eq!(empty.head, None, "an empty log has no head");
    assert_eq!(empty.events.count().await, 0);
    one_a_then_many_b(&f.writer, 20).await;
    let all = log(&f.writer).await;
    let bound = all[7].position;
    let query = Query::from(QueryItem::types(["B"]));
    let bounded = f.reader.read_with_head(query.clone(), ReadOptions::forwards().up_to(bound)).await.unwrap();
    assert_eq!(bounded.head, Some(bound), "a bound below the head is the head reported");
    let read: Vec<SequencedEvent> = bounded.events.try_collect().await.unwrap();
    assert_eq!(positions(&read), expected(&all, &query, bound));
    f.passed().await;
}

/// Last-only items are resolved up to the read's head, not past it.
async fn last_only_items_stay_within_the_head<E: KvEngine>(open: impl Fn() -> Fixture<E>) {
    for step in 0..4 {
        let f = open();
        one_a_then_many_b(&f.writer, 50).await;
        let query = Query::from_items([QueryItem::types(["A"]).last_only(), QueryItem::types(["B"])]);
        f.hooked.before(f.hooked.transactions() + step, a2_then_b2(f.writer.clone()));
        let bounded = f.reader.read_with_head(query, ReadOptions::forwards()).await.unwrap();
        let head = bounded.head.unwrap();
        let read: Vec<SequencedEvent> = bounded.events.try_collect().await.unwrap();
        let after = log(&f.writer).await;
        let last_a = after.iter().rev().find(|e| e.event.event_type == "A" && e.position <= head).unwrap().position;
        let mut wanted: Vec<Position> =
            after.iter().filter(|e| e.event.event_type == "B" && e.position <= head).map(|e| e.position).collect();
        wanted.push(last_a);
        wanted.sort();
        assert_eq!(positions(&read), wanted, "step {step}");
        f.passed().await;
    }
}

/// A subscription on a multi-scan query delivers every matching event once, in order,
/// whatever commits between the steps of its catch-up and live rounds.
async fn subscriptions_never_skip_events_committed_between_pages<E: KvEngine>(open: impl Fn() -> Fixture<E>) {
    for (name, query) in queries() {
        for step in 0..6 {
            let f = open();
            one_a_then_many_b(&f.writer, 200).await;
            f.hooked.before(f.hooked.transactions() + step, a2_then_b2(f.writer.clone()));
            let mut stream = f.reader.subscribe(query.clone(), None);
            let mut seen = Vec::new();
            // 1 A + 200 B + A2 + B2 match every query.
            while seen.len() < 203 {
                let next = tokio::time::timeout(Duration::from_secs(10), stream.try_next()).await;
                let event = next.expect("an event within 10 s").unwrap().unwrap();
                seen.push(event.position);
            }
            assert_eq!(seen, expected(&log(&f.writer).await, &query, Position::MAX), "{name}, step {step}");
            assert!(!f.hooked.pending(), "the injected appends ran");
            f.passed().await;
        }
    }
}

#[tokio::test]
async fn embedded_forwards_read_does_not_return_a_later_event_without_an_earlier_one() {
    a_forwards_read_does_not_return_a_later_event_without_an_earlier_one(embedded).await;
}

#[tokio::test]
async fn embedded_commits_between_the_pages_of_a_read_never_break_the_prefix() {
    commits_between_the_pages_of_a_read_never_break_the_prefix(embedded).await;
}

#[tokio::test]
async fn embedded_read_with_head_returns_exactly_the_matches_up_to_its_head() {
    read_with_head_returns_exactly_the_matches_up_to_its_head(embedded).await;
}

#[tokio::test]
async fn embedded_last_only_items_stay_within_the_head() {
    last_only_items_stay_within_the_head(embedded).await;
}

#[tokio::test]
async fn embedded_subscriptions_never_skip_events_committed_between_pages() {
    subscriptions_never_skip_events_committed_between_pages(embedded).await;
}

#[cfg(feature = "fdb")]
mod on_foundationdb {
    use fairway_dcb::FdbEngine;
    use fairway_dcb::conformance::fdb_cluster_file;

    use super::{Fixture, engines};

    /// Fixtures on the configured cluster, each engine opened on its own.
    fn on_cluster(case: &str) -> Option<impl Fn() -> Fixture<FdbEngine>> {
        let cluster_file = fdb_cluster_file(case)?;
        Some(move || Fixture::on(engines::foundationdb(&cluster_file), None))
    }

    #[tokio::test]
    async fn foundationdb_forwards_read_does_not_return_a_later_event_without_an_earlier_one() {
        let Some(open) = on_cluster("a forwards prefix read") else { return };
        super::a_forwards_read_does_not_return_a_later_event_without_an_earlier_one(open).await;
    }

    #[tokio::test]
    async fn foundationdb_commits_between_the_pages_of_a_read_never_break_the_prefix() {
        let Some(open) = on_cluster("commits between the pages of a read") else { return };
        super::commits_between_the_pages_of_a_read_never_break_the_prefix(open).await;
    }

    #[tokio::test]
    async fn foundationdb_read_with_head_returns_exactly_the_matches_up_to_its_head() {
        let Some(open) = on_cluster("read_with_head's head") else { return };
        super::read_with_head_returns_exactly_the_matches_up_to_its_head(open).await;
    }

    #[tokio::test]
    async fn foundationdb_last_only_items_stay_within_the_head() {
        let Some(open) = on_cluster("last-only items within the head") else { return };
        super::last_only_items_stay_within_the_head(open).await;
    }

    #[tokio::test]
    async fn foundationdb_subscriptions_never_skip_events_committed_between_pages() {
        let Some(open) = on_cluster("subscriptions with commits between pages") else { return };
        super::subscriptions_never_skip_events_committed_between_pages(open).await;
    }
}
