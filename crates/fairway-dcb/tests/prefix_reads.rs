//! Every read is one prefix of the log, even when other appends commit between the pages
//! and scans of a multi-scan read. Appends are injected between the reader's transactions
//! with [`Interleaving`], at every step of the read in turn, and the result is checked
//! against a naive filter of the final log.

use std::sync::Arc;
use std::time::Duration;

use fairway_dcb::kv::interleave::Interleaving;
use fairway_dcb::{
    DcbStore, EmbeddedEngine, EmbeddedOptions, EventStore, Position, Query, QueryItem, RawEvent, ReadOptions,
    SequencedEvent, Tag,
};
use futures::{StreamExt, TryStreamExt};

type Reader = DcbStore<Interleaving<EmbeddedEngine>>;
type Writer = DcbStore<EmbeddedEngine>;

struct Fixture {
    _dir: tempfile::TempDir,
    hooked: Arc<Interleaving<EmbeddedEngine>>,
    reader: Reader,
    writer: Writer,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions { durable: false, ..EmbeddedOptions::default() };
    let engine = Arc::new(EmbeddedEngine::open(dir.path(), options).unwrap());
    let hooked = Arc::new(Interleaving::new(engine.clone()));
    let reader = DcbStore::new(hooked.clone(), "prefix").unwrap();
    let writer = DcbStore::new(engine, "prefix").unwrap();
    Fixture { _dir: dir, hooked, reader, writer }
}

fn tag(text: &str) -> Tag {
    Tag::parse(text).unwrap()
}

/// One `A`, then `bs` events `B`, each in its own append.
async fn one_a_then_many_b(writer: &Writer, bs: usize) {
    writer.append(vec![RawEvent::new("A", b"a1".to_vec()).with_tag(tag("k:a"))], None).await.unwrap();
    for i in 0..bs {
        writer.append(vec![RawEvent::new("B", format!("b{i}").into_bytes()).with_tag(tag("k:b"))], None).await.unwrap();
    }
}

/// Appends `A2` then `B2`.
async fn a2_then_b2(writer: Writer) {
    writer.append(vec![RawEvent::new("A", b"a2".to_vec()).with_tag(tag("k:a"))], None).await.unwrap();
    writer.append(vec![RawEvent::new("B", b"b2".to_vec()).with_tag(tag("k:b"))], None).await.unwrap();
}

async fn log(writer: &Writer) -> Vec<SequencedEvent> {
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
    ]
}

/// The example: the first item of `[A] | [B]` is read, then `A2` and `B2` commit;
/// the rest of the read must not hold `B2` without `A2`.
#[tokio::test]
async fn a_forwards_read_does_not_return_a_later_event_without_an_earlier_one() {
    for (name, query) in queries() {
        let f = fixture();
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
    }
}

/// Appends land before each transaction of the read in turn (head, every scan's pages);
/// the result is always every matching event up to some head at least the one at start.
#[tokio::test]
async fn commits_between_the_pages_of_a_read_never_break_the_prefix() {
    for backwards in [false, true] {
        for (name, query) in queries() {
            for step in 0..8 {
                let f = fixture();
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
            }
        }
    }
}

/// `read_with_head` reports the head it read up to: the result is exactly the matching
/// events up to it, whatever commits during the read, and an empty result still says how
/// far the log was read.
#[tokio::test]
async fn read_with_head_returns_exactly_the_matches_up_to_its_head() {
    for (name, query) in queries() {
        for step in 0..6 {
            let f = fixture();
            one_a_then_many_b(&f.writer, 300).await;
            let head_at_start = f.writer.head().await.unwrap();
            f.hooked.before(f.hooked.transactions() + step, a2_then_b2(f.writer.clone()));
            let bounded = f.reader.read_with_head(query.clone(), ReadOptions::forwards()).await.unwrap();
            let head = bounded.head.unwrap();
            let read: Vec<SequencedEvent> = bounded.events.try_collect().await.unwrap();
            assert!(Some(head) >= head_at_start);
            assert_eq!(positions(&read), expected(&log(&f.writer).await, &query, head), "{name}, step {step}");
        }
    }
    let f = fixture();
    f.writer.append(vec![RawEvent::new("C", vec![])], None).await.unwrap();
    let bounded = f.reader.read_with_head(Query::from(QueryItem::types(["A"])), ReadOptions::forwards()).await.unwrap();
    assert_eq!(bounded.head, f.writer.head().await.unwrap(), "nothing matched, the head is still reported");
    assert_eq!(bounded.events.count().await, 0);
}

/// Last-only items are resolved up to the read's head, not past it.
#[tokio::test]
async fn last_only_items_stay_within_the_head() {
    for step in 0..4 {
        let f = fixture();
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
    }
}

/// A subscription on a multi-scan query delivers every matching event once, in order,
/// whatever commits between the steps of its catch-up and live rounds.
#[tokio::test]
async fn subscriptions_never_skip_events_committed_between_pages() {
    for (name, query) in queries() {
        for step in 0..6 {
            let f = fixture();
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
        }
    }
}
