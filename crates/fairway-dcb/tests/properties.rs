//! Property tests: key encodings keep order; planned queries equal a naive filter.

use std::sync::Arc;

use fairway_dcb::conformance::read_all;
use fairway_dcb::layout::Layout;
use fairway_dcb::{
    AppendCondition, DcbStore, EmbeddedEngine, EmbeddedOptions, EventStore, Position, Query, QueryItem, RawEvent,
    ReadOptions, Tag,
};
use proptest::prelude::*;

fn position() -> impl Strategy<Value = Position> {
    (any::<u64>(), any::<u16>(), any::<u16>()).prop_map(|(c, b, i)| Position::new(c, b, i))
}

fn small_tag() -> impl Strategy<Value = Tag> {
    (0..3usize, 0..4usize).prop_map(|(k, v)| Tag::new(["a", "b", "ab"][k], v).unwrap())
}

fn small_type() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["T".to_string(), "U".to_string(), "TU".to_string()])
}

fn item() -> impl Strategy<Value = QueryItem> {
    (prop::collection::vec(small_type(), 0..3), prop::collection::vec(small_tag(), 0..3), any::<bool>()).prop_map(
        |(types, tags, last)| {
            let item = QueryItem::types(types).with_tags(tags);
            if last { item.last_only() } else { item }
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn position_bytes_and_text_sort_like_positions(a in position(), b in position()) {
        prop_assert_eq!(a.cmp(&b), a.to_bytes().cmp(&b.to_bytes()));
        prop_assert_eq!(a.cmp(&b), a.to_string().cmp(&b.to_string()));
        prop_assert_eq!(a.to_string().parse::<Position>().unwrap(), a);
    }

    #[test]
    fn index_keys_sort_by_name_then_position(
        t1 in small_tag(), t2 in small_tag(), p1 in position(), p2 in position(),
    ) {
        let layout = Layout::new("ns").unwrap();
        let k1 = layout.tag_index(&t1).key(p1);
        let k2 = layout.tag_index(&t2).key(p2);
        let expected = t1.as_str().cmp(t2.as_str()).then(p1.cmp(&p2));
        prop_assert_eq!(k1.cmp(&k2), expected);
        let ((b, e), inside) = (layout.tag_index(&t1).bounds(Position::ZERO, Position::MAX), &k1);
        prop_assert!(&b <= inside && inside < &e);
        prop_assert!(k2 < b || k2 >= e || t1 == t2, "ranges of different tags never overlap");
    }
}

/// What a query must return, computed by brute force over the whole log.
fn naive(log: &[fairway_dcb::SequencedEvent], query: &Query, options: ReadOptions) -> Vec<Position> {
    let mut picked: Vec<Position> = Vec::new();
    for item in query.items() {
        let matches: Vec<Position> = log.iter().filter(|e| item.matches(&e.event)).map(|e| e.position).collect();
        if item.last_only {
            picked.extend(matches.last());
        } else {
            picked.extend(matches);
        }
    }
    picked.sort();
    picked.dedup();
    picked.retain(|p| match (options.backwards, options.from) {
        (_, None) => true,
        (false, Some(from)) => *p >= from,
        (true, Some(from)) => *p <= from,
    });
    if options.backwards {
        picked.reverse();
    }
    picked.truncate(options.limit.unwrap_or(usize::MAX));
    picked
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn planned_reads_equal_a_naive_filter(
        events in prop::collection::vec((small_type(), prop::collection::vec(small_tag(), 0..4)), 1..60),
        append_size in 1..9usize,
        queries in prop::collection::vec((prop::collection::vec(item(), 1..4), any::<bool>(), 0..70usize, prop::option::of(0..30usize)), 1..6),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let options = EmbeddedOptions { durable: false, ..EmbeddedOptions::default() };
            let engine = Arc::new(EmbeddedEngine::open(dir.path(), options).unwrap());
            let store = DcbStore::new(engine, "prop").unwrap();
            for chunk in events.chunks(append_size) {
                let batch = chunk.iter().map(|(t, tags)| RawEvent::new(t.clone(), Vec::new()).with_tags(tags.clone())).collect();
                store.append(batch, None).await.unwrap();
            }
            let log = read_all(&store, Query::all(), ReadOptions::forwards()).await;
            let conditions = queries.clone();
            for (items, backwards, from_index, limit) in queries {
                let query = Query::from_items(items);
                let from = log.get(from_index).map(|e| e.position);
                let options = ReadOptions { from, backwards, limit, ..ReadOptions::default() };
                let got: Vec<Position> = read_all(&store, query.clone(), options).await.iter().map(|e| e.position).collect();
                assert_eq!(got, naive(&log, &query, options), "query {query:?} with {options:?}");
            }
            // Conditions see the same events: an append guarded by `query` after `from`
            // fails exactly when the naive filter finds a match after it.
            for (items, _, from_index, _) in conditions {
                let query = Query::from_items(items.into_iter().map(|mut item| {
                    item.last_only = false;
                    item
                }));
                let log = read_all(&store, Query::all(), ReadOptions::forwards()).await;
                let after = log.get(from_index).map(|e| e.position);
                let matched = log.iter().any(|e| after.is_none_or(|a| e.position > a) && query.matches(&e.event));
                let condition = AppendCondition::none_match_after(query.clone(), after);
                let result = store.append(vec![RawEvent::new("Guarded", Vec::new())], Some(condition)).await;
                let failed = matches!(result, Err(fairway_dcb::Error::ConditionFailed { .. }));
                assert!(failed == matched && (failed || result.is_ok()), "condition {query:?} after {after:?}: {result:?}");
            }
        });
    }
}
