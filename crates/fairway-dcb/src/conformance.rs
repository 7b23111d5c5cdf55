//! The conformance suite every engine must pass, generic over [`EventStore`].
//!
//! Each case takes a [`StoreFactory`] and opens the fresh namespaces it needs. Engines run
//! the whole suite with [`conformance_tests!`](crate::conformance_tests), which turns every
//! case into its own `#[tokio::test]`.
//!
//! Failures panic with a message naming the broken expectation.

// A test suite: an unwrap that fails is a failing case, with its message.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};

use crate::limits::{
    MAX_CONDITIONS, MAX_EVENTS_PER_APPEND, MAX_METADATA_BYTES, MAX_PAYLOAD_BYTES, MAX_QUERY_ITEMS, MAX_TAGS_PER_EVENT,
};
use crate::{
    AppendCondition, Error, EventStore, InvalidInput, NameRule, Position, Query, QueryItem, RawEvent, ReadOptions,
    SequencedEvent, Tag,
};

/// Opens stores on fresh namespaces of one engine.
pub trait StoreFactory: Send + Sync {
    /// The store type.
    type Store: EventStore + Clone;

    /// Opens the store of `namespace` (created empty if new).
    fn open(&self, namespace: &str) -> impl Future<Output = Self::Store> + Send;

    /// Called when a case has passed: e.g. clears the namespaces it opened on a shared
    /// cluster. Nothing by default.
    fn finish(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Opens a store on a namespace no other case uses.
    fn fresh(&self) -> impl Future<Output = Self::Store> + Send {
        async move {
            let name = format!("conf-{:016x}", rand::random::<u64>());
            self.open(&name).await
        }
    }
}

/// The variable naming the FoundationDB cluster file the FoundationDB cases run against.
pub const FDB_CLUSTER_FILE_VAR: &str = "FAIRWAY_FDB_CLUSTER_FILE";
/// When set, a FoundationDB case that cannot run fails instead of skipping itself (CI sets
/// it where a cluster is started).
pub const FDB_REQUIRED_VAR: &str = "FAIRWAY_FDB_REQUIRED";

/// The cluster file for a FoundationDB case named `case`: `None`, with a notice saying why,
/// when [`FDB_CLUSTER_FILE_VAR`] is not set; a failure then if [`FDB_REQUIRED_VAR`] is set.
pub fn fdb_cluster_file(case: &str) -> Option<String> {
    match std::env::var(FDB_CLUSTER_FILE_VAR) {
        Ok(cluster_file) => Some(cluster_file),
        Err(_) => {
            assert!(
                std::env::var_os(FDB_REQUIRED_VAR).is_none(),
                "{FDB_REQUIRED_VAR} is set but {FDB_CLUSTER_FILE_VAR} is not: {case} cannot run"
            );
            eprintln!("notice: {case} skipped on FoundationDB: {FDB_CLUSTER_FILE_VAR} is not set");
            None
        }
    }
}

/// A store on a fresh namespace `<prefix>-<random>` of the configured FoundationDB cluster
/// for the case named `case`: `None`, with a notice, without a cluster (see
/// [`fdb_cluster_file`]).
#[cfg(feature = "fdb")]
pub fn fdb_store(case: &str, prefix: &str) -> Option<crate::DcbStore<crate::kv::fdb::FdbEngine>> {
    let cluster_file = fdb_cluster_file(case)?;
    let retry = crate::RetryPolicy::default();
    let engine = crate::kv::fdb::FdbEngine::open(Some(&cluster_file), retry).expect("cluster reachable");
    let namespace = format!("{prefix}-{:016x}", rand::random::<u64>());
    Some(crate::DcbStore::new(std::sync::Arc::new(engine), &namespace).expect("valid namespace"))
}

/// Builds a tag, panicking on a malformed one (test helper).
pub fn tag(text: &str) -> Tag {
    Tag::parse(text).expect("test tags are well formed")
}

/// An event of `event_type` with `tags` and a payload naming it.
pub fn event(event_type: &str, tags: &[&str]) -> RawEvent {
    RawEvent::new(event_type, format!("{event_type}{tags:?}").into_bytes()).with_tags(tags.iter().map(|t| tag(t)))
}

/// Reads a whole query into memory (test helper).
pub async fn read_all<S: EventStore>(store: &S, query: Query, options: ReadOptions) -> Vec<SequencedEvent> {
    store.read(query, options).try_collect().await.expect("read succeeds")
}

fn positions(events: &[SequencedEvent]) -> Vec<Position> {
    events.iter().map(|e| e.position).collect()
}

/// Appends without condition, returning the last position.
async fn put<S: EventStore>(store: &S, events: Vec<RawEvent>) -> Position {
    store.append(events, None).await.expect("unconditional append succeeds").last()
}

/// A store holding a fixed mix of events; returns it with all its events.
async fn seeded<F: StoreFactory>(factory: &F) -> (F::Store, Vec<SequencedEvent>) {
    let store = factory.fresh().await;
    put(&store, vec![event("CourseDefined", &["course:c1"]), event("CourseDefined", &["course:c2"])]).await;
    put(&store, vec![event("StudentRegistered", &["student:s1"])]).await;
    put(&store, vec![event("StudentSubscribed", &["course:c1", "student:s1"])]).await;
    put(&store, vec![event("CapacityChanged", &["course:c1"])]).await;
    put(
        &store,
        vec![event("StudentSubscribed", &["course:c2", "student:s1"]), event("StudentRegistered", &["student:s2"])],
    )
    .await;
    put(&store, vec![event("StudentSubscribed", &["course:c1", "student:s2"])]).await;
    put(&store, vec![event("StudentUnsubscribed", &["course:c1", "student:s1"])]).await;
    put(&store, vec![event("Untagged", &[])]).await;
    let all = read_all(&store, Query::all(), ReadOptions::forwards()).await;
    assert_eq!(all.len(), 10, "seeded store holds 10 events");
    (store, all)
}

/// An empty store has no head and reads nothing, in any direction.
pub async fn empty_store<F: StoreFactory>(factory: &F) {
    let store = factory.fresh().await;
    assert_eq!(store.head().await.unwrap(), None);
    assert_eq!(store.count().await.unwrap(), 0);
    assert!(read_all(&store, Query::all(), ReadOptions::forwards()).await.is_empty());
    assert!(read_all(&store, Query::all(), ReadOptions::backwards()).await.is_empty());
    let by_tag = Query::from(QueryItem::tags([tag("a:b")]));
    assert!(read_all(&store, by_tag, ReadOptions::forwards()).await.is_empty());
}

/// Appends return increasing positions; the head is the last one; events read back intact.
pub async fn append_and_read_back<F: StoreFactory>(factory: &F) {
    let store = factory.fresh().await;
    let first = store
        .append(
            vec![event("A", &["x:1"]), event("B", &["x:1", "y:2"]).with_id("id-b").with_metadata(b"m".to_vec())],
            None,
        )
        .await
        .unwrap();
    assert_eq!(first.positions.len(), 2);
    assert!(first.positions[0] < first.positions[1]);
    assert!(!first.already_stored);
    let second = store.append(vec![event("C", &[])], None).await.unwrap();
    assert!(second.last() > first.last());
    assert_eq!(store.head().await.unwrap(), Some(second.last()));
    assert_eq!(store.count().await.unwrap(), 3);
    let all = read_all(&store, Query::all(), ReadOptions::forwards()).await;
    assert_eq!(positions(&all), [first.positions.clone(), second.positions.clone()].concat());
    assert_eq!(all[1].event.event_type, "B");
    assert_eq!(all[1].event.tags, vec![tag("x:1"), tag("y:2")]);
    assert_eq!(all[1].event.id.as_deref(), Some("id-b"));
    assert_eq!(all[1].event.metadata.as_deref(), Some(&b"m"[..]));
    assert_eq!(all[1].event.payload, event("B", &["x:1", "y:2"]).payload);
    let age = all[0].recorded_at.elapsed().unwrap_or_default();
    assert!(age < Duration::from_secs(300), "recorded_at is the append time");
}

/// Forward and backward reads with `from` and `limit`, including limit 0 and `from` past the head.
pub async fn read_options<F: StoreFactory>(factory: &F) {
    let (store, all) = seeded(factory).await;
    let ps = positions(&all);
    let rev: Vec<Position> = ps.iter().rev().copied().collect();
    let read = |options| {
        let store = store.clone();
        async move { positions(&read_all(&store, Query::all(), options).await) }
    };
    assert_eq!(read(ReadOptions::forwards()).await, ps);
    assert_eq!(read(ReadOptions::backwards()).await, rev);
    assert_eq!(read(ReadOptions::forwards().from(ps[4])).await, ps[4..].to_vec(), "from is inclusive");
    assert_eq!(read(ReadOptions::backwards().from(ps[4])).await, rev[5..].to_vec(), "backwards from is inclusive");
    assert_eq!(read(ReadOptions::forwards().limit(3)).await, ps[..3].to_vec());
    assert_eq!(read(ReadOptions::backwards().limit(3)).await, rev[..3].to_vec());
    assert_eq!(read(ReadOptions::forwards().from(ps[2]).limit(2)).await, ps[2..4].to_vec());
    assert!(read(ReadOptions::forwards().limit(0)).await.is_empty(), "limit 0 reads nothing");
    let past = ps[9].next();
    assert!(read(ReadOptions::forwards().from(past)).await.is_empty(), "from past the head reads nothing");
    assert_eq!(read(ReadOptions::backwards().from(past)).await, rev, "backwards from past the head reads all");
    assert_eq!(read(ReadOptions::forwards().from(Position::ZERO)).await, ps);
    let by_tag = Query::from(QueryItem::tags([tag("course:c1")]));
    let tagged = positions(&read_all(&store, by_tag.clone(), ReadOptions::backwards().limit(2)).await);
    assert_eq!(tagged, vec![ps[8], ps[7]]);
}

fn naive(all: &[SequencedEvent], query: &Query) -> Vec<Position> {
    all.iter().filter(|e| query.matches(&e.event)).map(|e| e.position).collect()
}

/// Type, tag, type+tag and multi-item queries return matches ascending, without duplicates.
pub async fn queries<F: StoreFactory>(factory: &F) {
    let (store, all) = seeded(factory).await;
    let queries = [
        Query::from(QueryItem::types(["CourseDefined"])),
        Query::from(QueryItem::types(["CourseDefined", "CapacityChanged"])),
        Query::from(QueryItem::tags([tag("course:c1")])),
        Query::from(QueryItem::tags([tag("course:c1"), tag("student:s1")])),
        Query::from(QueryItem::types(["StudentSubscribed"]).with_tags([tag("student:s1")])),
        Query::from(QueryItem::types(["StudentSubscribed", "StudentUnsubscribed"]).with_tags([tag("course:c1")])),
        Query::from(QueryItem::tags([tag("course:c1")])).or(QueryItem::tags([tag("student:s1")])),
        Query::from(QueryItem::types(["StudentRegistered"])).or(QueryItem::tags([tag("student:s2")])),
        Query::from(QueryItem::types(["Nope"])),
        Query::from(QueryItem::tags([tag("course:c9")])),
        Query::from(QueryItem::types(["Untagged"])).or(QueryItem::new()),
    ];
    for query in queries {
        let got = read_all(&store, query.clone(), ReadOptions::forwards()).await;
        let expected = naive(&all, &query);
        assert_eq!(positions(&got), expected, "query {query:?}");
        let unique: BTreeSet<Position> = expected.iter().copied().collect();
        assert_eq!(unique.len(), expected.len(), "no duplicates for {query:?}");
        let mut backwards = positions(&read_all(&store, query.clone(), ReadOptions::backwards()).await);
        backwards.reverse();
        assert_eq!(backwards, expected, "backwards {query:?}");
    }
}

/// Tags are opaque strings: spaces, `:` in the value and any script are stored and read
/// back as given, and a tag's query never matches a longer tag that starts with it.
pub async fn opaque_tags<F: StoreFactory>(factory: &F) {
    let store = factory.fresh().await;
    let texts =
        ["k:a", "k:a b", "k:a:b", "k:ab", "k:a é", "student:Ada Lovelace", "city:東京 タワー", "first name:Ada"];
    let events: Vec<RawEvent> = texts.iter().map(|text| event("Tagged", &[text])).collect();
    put(&store, events).await;
    let all = read_all(&store, Query::all(), ReadOptions::forwards()).await;
    let stored: Vec<&str> = all.iter().map(|e| e.event.tags[0].as_str()).collect();
    assert_eq!(stored, texts, "tags read back as written");
    for (index, text) in texts.iter().enumerate() {
        for options in [ReadOptions::forwards(), ReadOptions::backwards()] {
            let got = read_all(&store, Query::from(QueryItem::tags([tag(text)])), options).await;
            assert_eq!(positions(&got), [all[index].position], "query of tag {text:?}");
        }
    }
    let spaced = Query::from(QueryItem::types(["Tagged"]).with_tags([tag("k:a b")]));
    let condition = AppendCondition::none_match_after(QueryItem::tags([tag("k:a")]), Some(all[0].position));
    store.append(vec![event("Tagged", &["k:a b"])], Some(condition)).await.expect("k:a b is not k:a");
    assert_eq!(read_all(&store, spaced, ReadOptions::forwards()).await.len(), 2);
}

/// Last-only items read one event: the last match.
pub async fn last_only_items<F: StoreFactory>(factory: &F) {
    let (store, all) = seeded(factory).await;
    let last = |query: &Query| naive(&all, query).last().copied();
    let subscribed = Query::from(QueryItem::types(["StudentSubscribed"]));
    let got =
        read_all(&store, Query::from(QueryItem::types(["StudentSubscribed"]).last_only()), ReadOptions::forwards())
            .await;
    assert_eq!(positions(&got), last(&subscribed).into_iter().collect::<Vec<_>>());
    let c1 = Query::from(QueryItem::tags([tag("course:c1")]));
    let mixed = Query::from(QueryItem::tags([tag("course:c1")]).last_only()).or(QueryItem::types(["CourseDefined"]));
    let mut expected = naive(&all, &Query::from(QueryItem::types(["CourseDefined"])));
    expected.extend(last(&c1));
    expected.sort();
    assert_eq!(positions(&read_all(&store, mixed, ReadOptions::forwards()).await), expected);
    let none = Query::from(QueryItem::tags([tag("course:c9")]).last_only());
    assert!(read_all(&store, none, ReadOptions::forwards()).await.is_empty());
    let filtered = Query::from(QueryItem::types(["StudentSubscribed"]).with_tags([tag("student:s1")]).last_only());
    let want = last(&Query::from(QueryItem::types(["StudentSubscribed"]).with_tags([tag("student:s1")])));
    assert_eq!(
        positions(&read_all(&store, filtered, ReadOptions::forwards()).await),
        want.into_iter().collect::<Vec<_>>()
    );
}

/// At least 15 conditions that must fail: each names the first conflicting event, and
/// nothing is written.
pub async fn conditions_that_fail<F: StoreFactory>(factory: &F) {
    let (store, all) = seeded(factory).await;
    let p = positions(&all);
    let head = store.head().await.unwrap();
    let q = |item: QueryItem| Query::from(item);
    let cases: Vec<(&str, AppendCondition, Position)> = vec![
        ("any event, whole log", AppendCondition::none_match(Query::all()), p[0]),
        ("any event after the first", AppendCondition::none_match_after(Query::all(), Some(p[0])), p[1]),
        ("type anywhere", AppendCondition::none_match(q(QueryItem::types(["CourseDefined"]))), p[0]),
        ("type after", AppendCondition::none_match_after(q(QueryItem::types(["CapacityChanged"])), Some(p[3])), p[4]),
        ("tag anywhere", AppendCondition::none_match(q(QueryItem::tags([tag("student:s2")]))), p[6]),
        ("tag after", AppendCondition::none_match_after(q(QueryItem::tags([tag("course:c1")])), Some(p[4])), p[7]),
        ("two tags", AppendCondition::none_match(q(QueryItem::tags([tag("course:c1"), tag("student:s1")]))), p[3]),
        (
            "type and tag",
            AppendCondition::none_match(q(QueryItem::types(["StudentSubscribed"]).with_tags([tag("student:s2")]))),
            p[7],
        ),
        (
            "several types with a tag, after",
            AppendCondition::none_match_after(
                q(QueryItem::types(["StudentSubscribed", "StudentUnsubscribed"]).with_tags([tag("course:c1")])),
                Some(p[7]),
            ),
            p[8],
        ),
        (
            "second item matches",
            AppendCondition::none_match(q(QueryItem::types(["Nope"])).or(QueryItem::tags([tag("course:c2")]))),
            p[1],
        ),
        (
            "earliest of two items",
            AppendCondition::none_match_after(
                q(QueryItem::types(["Untagged"])).or(QueryItem::types(["CapacityChanged"])),
                Some(p[2]),
            ),
            p[4],
        ),
        ("untagged type", AppendCondition::none_match(q(QueryItem::types(["Untagged"]))), p[9]),
        ("match is the head", AppendCondition::none_match_after(Query::all(), Some(p[8])), p[9]),
        (
            "second event of a batch",
            AppendCondition::none_match_after(q(QueryItem::tags([tag("student:s2")])), Some(p[5])),
            p[6],
        ),
        (
            "last-only item still guards everything after",
            AppendCondition::none_match_after(q(QueryItem::tags([tag("course:c1")]).last_only()), Some(p[0])),
            p[3],
        ),
        (
            "after zero is the whole log",
            AppendCondition::none_match_after(q(QueryItem::types(["StudentRegistered"])), Some(Position::ZERO)),
            p[2],
        ),
    ];
    assert!(cases.len() >= 15);
    for (name, condition, expected) in cases {
        let result = store.append(vec![event("Probe", &["probe:1"])], Some(condition)).await;
        match result {
            Err(Error::ConditionFailed { condition: 0, position }) => {
                assert_eq!(position, expected, "case {name:?}: conflicting position")
            }
            other => panic!("case {name:?}: expected ConditionFailed, got {other:?}"),
        }
    }
    assert_eq!(store.head().await.unwrap(), head, "failed conditions write nothing");
    // With several conditions, the failing one is named.
    let ok = AppendCondition::none_match(q(QueryItem::types(["Nope"])));
    let bad = AppendCondition::none_match(q(QueryItem::types(["Untagged"])));
    let result = store.append_with_conditions(vec![event("Probe", &[])], vec![ok, bad]).await;
    assert!(matches!(result, Err(Error::ConditionFailed { condition: 1, position }) if position == p[9]), "{result:?}");
    assert_eq!(store.head().await.unwrap(), head);
}

/// At least 8 conditions that must pass.
pub async fn conditions_that_pass<F: StoreFactory>(factory: &F) {
    let (store, all) = seeded(factory).await;
    let p = positions(&all);
    let q = |item: QueryItem| Query::from(item);
    // Probes land after the head, so the match-all case must come first.
    let cases: Vec<(&str, Vec<AppendCondition>)> = vec![
        ("nothing after the head", vec![AppendCondition::none_match_after(Query::all(), Some(p[9]))]),
        ("unknown type", vec![AppendCondition::none_match(q(QueryItem::types(["Nope"])))]),
        ("unknown tag", vec![AppendCondition::none_match(q(QueryItem::tags([tag("course:c9")])))]),
        (
            "tag seen up to its last event",
            vec![AppendCondition::none_match_after(q(QueryItem::tags([tag("student:s2")])), Some(p[7]))],
        ),
        (
            "tags that never meet",
            vec![AppendCondition::none_match(q(QueryItem::tags([tag("course:c2"), tag("student:s2")])))],
        ),
        (
            "type without that tag",
            vec![AppendCondition::none_match(q(QueryItem::types(["CapacityChanged"]).with_tags([tag("course:c2")])))],
        ),
        (
            "types after their last event",
            vec![AppendCondition::none_match_after(
                q(QueryItem::types(["CourseDefined", "CapacityChanged"])),
                Some(p[4]),
            )],
        ),
        (
            "several conditions, all hold",
            vec![
                AppendCondition::none_match(q(QueryItem::types(["Nope"]))),
                AppendCondition::none_match_after(q(QueryItem::tags([tag("course:c1")])), Some(p[8])),
            ],
        ),
        ("no condition at all", vec![]),
        ("after MAX", vec![AppendCondition::none_match_after(Query::all(), Some(Position::MAX))]),
    ];
    assert!(cases.len() >= 8);
    let mut head = store.head().await.unwrap().expect("seeded");
    for (name, conditions) in cases {
        // Each probe lands after the head; guard it so later cases still see their range.
        let appended = store
            .append_with_conditions(vec![event("Probe", &["probe:pass"])], conditions)
            .await
            .unwrap_or_else(|e| panic!("case {name:?} must pass: {e}"));
        assert!(appended.last() > head, "case {name:?}: position after the head");
        head = appended.last();
    }
    assert_eq!(store.head().await.unwrap(), Some(head));
}

/// Re-appending a batch whose ids are stored returns the original positions and writes
/// nothing, even when its condition would now fail; a partly stored batch is refused.
pub async fn idempotent_append<F: StoreFactory>(factory: &F) {
    let store = factory.fresh().await;
    let guard = AppendCondition::none_match(Query::from(QueryItem::types(["Invoice"])));
    let batch =
        vec![event("Invoice", &["invoice:1"]).with_id("inv-1"), event("Line", &["invoice:1"]).with_id("line-1")];
    let first = store.append(batch.clone(), Some(guard.clone())).await.unwrap();
    assert!(!first.already_stored);
    let again = store.append(batch.clone(), Some(guard.clone())).await.unwrap();
    assert!(again.already_stored, "the retry is recognised");
    assert_eq!(again.positions, first.positions, "the original positions");
    assert_eq!(read_all(&store, Query::all(), ReadOptions::forwards()).await.len(), 2, "nothing written twice");
    assert_eq!(store.count().await.unwrap(), 2, "a recognised retry counts nothing");
    let partial = vec![event("Line", &[]).with_id("line-1"), event("Line", &[]).with_id("line-2")];
    match store.append(partial, None).await {
        Err(Error::PartialDuplicate { id, position }) => {
            assert_eq!(id, "line-1");
            assert_eq!(position, first.positions[1]);
        }
        other => panic!("expected PartialDuplicate, got {other:?}"),
    }
    assert_eq!(store.count().await.unwrap(), 2, "a refused append counts nothing");
    let fresh = store.append(vec![event("Line", &[]).with_id("line-2")], None).await.unwrap();
    assert!(!fresh.already_stored);
    assert_eq!(store.count().await.unwrap(), 3);
    assert_eq!(store.head().await.unwrap(), Some(fresh.last()));
}

fn invalid(result: crate::Result<crate::Appended>) -> InvalidInput {
    match result {
        Err(Error::InvalidInput(err)) => err,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

/// Every invalid input is rejected with the right error, and nothing is written.
pub async fn invalid_input_is_rejected<F: StoreFactory>(factory: &F) {
    let store = factory.fresh().await;
    let head = put(&store, vec![event("Seed", &["s:1"])]).await;
    let ok = || event("Ok", &["k:v"]);
    let rejected = [
        (vec![], None),
        (vec![ok(), RawEvent::new("", b"x".to_vec())], None),
        (vec![RawEvent::new("has space", Vec::new())], None),
        (vec![RawEvent::new("T", vec![0u8; MAX_PAYLOAD_BYTES + 1])], None),
        (vec![RawEvent::new("T", Vec::new()).with_metadata(vec![0u8; MAX_METADATA_BYTES + 1])], None),
        (
            vec![RawEvent::new("T", Vec::new()).with_tags((0..=MAX_TAGS_PER_EVENT).map(|i| tag(&format!("t:{i}"))))],
            None,
        ),
        (vec![ok().with_id("")], None),
        (vec![ok().with_id("a b")], None),
        (vec![ok().with_id("same"), ok().with_id("same")], None),
        (vec![ok()], Some(AppendCondition::none_match(Query::from_items([])))),
        (vec![ok()], Some(AppendCondition::none_match(Query::from(QueryItem::types(["bad type"]))))),
        (
            vec![ok()],
            Some(AppendCondition::none_match(Query::from_items(
                (0..=MAX_QUERY_ITEMS).map(|_| QueryItem::types(["A"])),
            ))),
        ),
    ];
    let expected: [fn(&InvalidInput) -> bool; 12] = [
        |e| matches!(e, InvalidInput::EmptyBatch),
        |e| matches!(e, InvalidInput::MalformedType { rule: NameRule::Empty, .. }),
        |e| matches!(e, InvalidInput::MalformedType { rule: NameRule::ForbiddenChar(' '), .. }),
        |e| matches!(e, InvalidInput::PayloadTooLarge { index: 0, limit: MAX_PAYLOAD_BYTES, .. }),
        |e| matches!(e, InvalidInput::MetadataTooLarge { limit: MAX_METADATA_BYTES, .. }),
        |e| matches!(e, InvalidInput::TooManyTags { count, limit: MAX_TAGS_PER_EVENT, .. } if *count == MAX_TAGS_PER_EVENT + 1),
        |e| matches!(e, InvalidInput::MalformedEventId { rule: NameRule::Empty, .. }),
        |e| matches!(e, InvalidInput::MalformedEventId { rule: NameRule::ForbiddenChar(' '), .. }),
        |e| matches!(e, InvalidInput::DuplicateIdInBatch { .. }),
        |e| matches!(e, InvalidInput::EmptyQuery),
        |e| matches!(e, InvalidInput::MalformedType { .. }),
        |e| matches!(e, InvalidInput::TooManyQueryItems { limit: MAX_QUERY_ITEMS, .. }),
    ];
    for (index, ((events, condition), check)) in rejected.into_iter().zip(expected).enumerate() {
        let err = invalid(store.append(events, condition).await);
        assert!(check(&err), "case {index}: unexpected error {err:?}");
        assert!(!err.to_string().is_empty());
    }
    let conditions = vec![AppendCondition::none_match(Query::all()); MAX_CONDITIONS + 1];
    let err = invalid(store.append_with_conditions(vec![ok()], conditions).await);
    assert!(matches!(err, InvalidInput::TooManyConditions { limit: MAX_CONDITIONS, .. }), "{err:?}");
    let err = invalid(store.append((0..=MAX_EVENTS_PER_APPEND).map(|_| ok()).collect(), None).await);
    assert!(matches!(err, InvalidInput::TooManyEvents { limit: MAX_EVENTS_PER_APPEND, .. }), "{err:?}");
    let big = (0..130).map(|_| RawEvent::new("Big", vec![7u8; MAX_PAYLOAD_BYTES])).collect();
    let err = invalid(store.append(big, None).await);
    assert!(matches!(err, InvalidInput::BatchTooLarge { .. }), "{err:?}");
    assert!(err.to_string().contains("limit"), "the limit is named: {err}");
    let read_err = store.read(Query::from_items([]), ReadOptions::forwards()).next().await;
    assert!(matches!(read_err, Some(Err(Error::InvalidInput(InvalidInput::EmptyQuery)))), "{read_err:?}");
    assert_eq!(store.head().await.unwrap(), Some(head), "nothing was written");
    assert_eq!(store.count().await.unwrap(), 1, "nothing was counted");
    assert_eq!(read_all(&store, Query::all(), ReadOptions::forwards()).await.len(), 1);
}

/// Batches close to the limits are accepted whole.
pub async fn big_batches_near_the_limits<F: StoreFactory>(factory: &F) {
    let store = factory.fresh().await;
    let big: Vec<RawEvent> = (0..100).map(|i| RawEvent::new("Big", vec![i as u8; MAX_PAYLOAD_BYTES])).collect();
    let appended = store.append(big, None).await.expect("100 events of the largest payload fit one append");
    assert_eq!(appended.positions.len(), 100);
    let many: Vec<RawEvent> = (0..MAX_EVENTS_PER_APPEND).map(|i| event("Small", &[&format!("n:{}", i % 50)])).collect();
    let appended = store.append(many, None).await.expect("the largest event count fits one append");
    assert_eq!(appended.positions.len(), MAX_EVENTS_PER_APPEND);
    let tags: Vec<Tag> = (0..MAX_TAGS_PER_EVENT).map(|i| tag(&format!("t{i}:{}", "v".repeat(200)))).collect();
    store.append(vec![RawEvent::new("Tagged", Vec::new()).with_tags(tags.clone())], None).await.expect("the most tags");
    let read = read_all(&store, Query::from(QueryItem::tags([tags[31].clone()])), ReadOptions::forwards()).await;
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].event.tags.len(), MAX_TAGS_PER_EVENT);
    let all = read_all(&store, Query::all(), ReadOptions::forwards()).await;
    assert_eq!(all.len(), 100 + MAX_EVENTS_PER_APPEND + 1);
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(all[99].event.payload, vec![99u8; MAX_PAYLOAD_BYTES]);
    let n7 = read_all(&store, Query::from(QueryItem::tags([tag("n:7")])), ReadOptions::forwards()).await;
    assert_eq!(n7.len(), MAX_EVENTS_PER_APPEND / 50);
}

/// Two namespaces on one engine never see each other's events, positions or conditions.
pub async fn namespaces_are_isolated<F: StoreFactory>(factory: &F) {
    let a = factory.fresh().await;
    let b = factory.fresh().await;
    put(&a, vec![event("A", &["k:1"])]).await;
    assert_eq!(b.head().await.unwrap(), None, "b sees no head of a");
    assert!(read_all(&b, Query::all(), ReadOptions::forwards()).await.is_empty());
    let guard = AppendCondition::none_match(Query::from(QueryItem::tags([tag("k:1")])));
    b.append(vec![event("B", &["k:1"])], Some(guard.clone())).await.expect("a's event does not fail b's condition");
    assert!(matches!(a.append(vec![event("A", &[])], Some(guard)).await, Err(Error::ConditionFailed { .. })));
    let in_a = read_all(&a, Query::all(), ReadOptions::forwards()).await;
    let in_b = read_all(&b, Query::all(), ReadOptions::forwards()).await;
    assert_eq!(in_a.len(), 1);
    assert_eq!(in_b.len(), 1);
    assert_eq!(in_a[0].event.event_type, "A");
    assert_eq!(in_b[0].event.event_type, "B");
    let id = vec![event("I", &[]).with_id("shared-id")];
    assert!(!a.append(id.clone(), None).await.unwrap().already_stored);
    assert!(!b.append(id, None).await.unwrap().already_stored, "ids are per namespace");
    assert_eq!((a.count().await.unwrap(), b.count().await.unwrap()), (2, 2), "counts are per namespace");
}

/// Racing appends of different sizes, some refused by their condition: the count is the
/// number of events the log holds.
pub async fn count_matches_the_log<F: StoreFactory>(factory: &F) {
    let store = factory.fresh().await;
    let writers: Vec<_> = (0..6)
        .map(|writer| {
            let store = store.clone();
            tokio::spawn(async move {
                for round in 0..15usize {
                    let size = 1 + (writer + round) % 4;
                    let events: Vec<RawEvent> = (0..size).map(|_| event("Counted", &["race:1"])).collect();
                    // Every third append is guarded by a stale condition on a shared tag.
                    let condition = (round % 3 == 0)
                        .then(|| AppendCondition::none_match(Query::from(QueryItem::tags([tag("race:1")]))));
                    match store.append(events, condition).await {
                        Ok(_) | Err(Error::ConditionFailed { .. }) => {}
                        Err(other) => panic!("append failed: {other}"),
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let held = read_all(&store, Query::all(), ReadOptions::forwards()).await.len() as u64;
    assert!(held > 0);
    assert_eq!(store.count().await.unwrap(), held);
}

/// A subscription catches up, then follows concurrent appends without skipping one.
pub async fn subscription_catches_up_and_follows<F: StoreFactory>(factory: &F) {
    let store = factory.fresh().await;
    for i in 0..20 {
        put(&store, vec![event("E", &[&format!("n:{}", i % 3)])]).await;
    }
    let query = Query::from(QueryItem::tags([tag("n:0")])).or(QueryItem::types(["Live"]));
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let tasks: Vec<_> = (0..4)
                .map(|w| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        for i in 0..25 {
                            put(
                                &store,
                                vec![event("Live", &[&format!("w:{w}")]), event("Other", &[&format!("i:{i}")])],
                            )
                            .await;
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("writer task");
            }
        })
    };
    let first_seven = read_all(&store, query.clone(), ReadOptions::forwards()).await;
    let mut subscription = store.subscribe(query.clone(), None);
    let expected_total = 7 + 100;
    let mut seen = Vec::new();
    while seen.len() < expected_total {
        let next = tokio::time::timeout(Duration::from_secs(30), subscription.next()).await;
        let event = next.expect("subscription keeps up").expect("stream open").expect("no error");
        seen.push(event);
    }
    writer.await.expect("writers finish");
    let truth = read_all(&store, query.clone(), ReadOptions::forwards()).await;
    assert_eq!(positions(&seen), positions(&truth), "the subscription saw exactly the log, in order");
    assert!(positions(&seen).starts_with(&positions(&first_seven)[..first_seven.len().min(7)]));
    // Resume after a stored position.
    let resume_from = seen[50].position;
    let resumed: Vec<SequencedEvent> =
        store.subscribe(query, Some(resume_from)).take(expected_total - 51).try_collect().await.unwrap();
    assert_eq!(positions(&resumed), positions(&truth[51..]));
}

/// Expands to one `#[tokio::test]` per conformance case. `$make` is an async function
/// returning `Option<impl StoreFactory>`; `None` skips the case (the function should print
/// why, e.g. that no FoundationDB cluster is configured).
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::conformance_tests!(@cases $make;
            empty_store, append_and_read_back, read_options, queries, opaque_tags, last_only_items,
            conditions_that_fail, conditions_that_pass, idempotent_append, invalid_input_is_rejected,
            big_batches_near_the_limits, namespaces_are_isolated, count_matches_the_log,
            subscription_catches_up_and_follows);
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if let Some(factory) = $make().await {
                    $crate::conformance::$case(&factory).await;
                    $crate::conformance::StoreFactory::finish(&factory).await;
                }
            }
        )*
    };
}
