//! Races many tasks making conditional appends over overlapping queries, with spurious
//! conflicts injected, then replays the whole log to prove every verdict right.

use std::collections::HashMap;
use std::sync::Arc;

use fairway_dcb::conformance::{read_all, tag};
use fairway_dcb::{
    AppendCondition, DcbStore, EmbeddedEngine, EmbeddedOptions, Error, EventStore, Position, Query, QueryItem,
    RawEvent, ReadOptions,
};
use rand::Rng;

const TASKS: usize = 32;
const APPENDS_PER_TASK: usize = 160;
const ENTITIES: usize = 24;

struct Attempt {
    id: String,
    query: Query,
    after: Option<Position>,
    outcome: Result<Position, Position>,
}

fn random_query(rng: &mut impl Rng) -> (Query, Vec<String>) {
    let a = format!("e:{}", rng.random_range(0..ENTITIES));
    let mut query = Query::from(QueryItem::tags([tag(&a)]));
    let mut tags = vec![a];
    if rng.random_bool(0.4) {
        let b = format!("e:{}", rng.random_range(0..ENTITIES));
        let item = if rng.random_bool(0.5) {
            QueryItem::tags([tag(&b)]).with_types(["Kind0", "Kind1"])
        } else {
            QueryItem::tags([tag(&b)])
        };
        query = query.or(item);
        tags.push(b);
    }
    (query, tags)
}

async fn race(store: DcbStore<EmbeddedEngine>, task: usize) -> Vec<Attempt> {
    let mut attempts = Vec::with_capacity(APPENDS_PER_TASK);
    for n in 0..APPENDS_PER_TASK {
        let (query, tags, stale, kind, extra) = {
            let mut rng = rand::rng();
            let (query, tags) = random_query(&mut rng);
            (query, tags, rng.random_bool(0.1), rng.random_range(0..3), rng.random_range(0..ENTITIES))
        };
        let seen = read_all(&store, query.clone(), ReadOptions::backwards().limit(1)).await;
        let after = if stale { seen.first().map(|e| e.position.prev()) } else { seen.first().map(|e| e.position) };
        let id = format!("t{task}-n{n}");
        let mut event =
            RawEvent::new(format!("Kind{kind}"), id.clone().into_bytes()).with_tag(tag(&format!("x:{extra}")));
        // Mostly write inside the own boundary, sometimes into another one.
        for t in &tags {
            event = event.with_tag(tag(t));
        }
        let condition = AppendCondition::none_match_after(query.clone(), after);
        let outcome = match store.append(vec![event], Some(condition)).await {
            Ok(appended) => Ok(appended.last()),
            Err(Error::ConditionFailed { position, .. }) => Err(position),
            Err(other) => panic!("unexpected append error: {other}"),
        };
        attempts.push(Attempt { id, query, after, outcome });
    }
    attempts
}

fn open(dir: &std::path::Path, rate: f64) -> Arc<EmbeddedEngine> {
    let options = EmbeddedOptions { spurious_conflict_rate: rate, ..EmbeddedOptions::default() };
    Arc::new(EmbeddedEngine::open(dir, options).expect("engine opens"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_verdict_of_racing_conditional_appends_holds_against_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), 0.1);
    let store = DcbStore::new(engine.clone(), "oracle").unwrap();
    let tasks: Vec<_> = (0..TASKS).map(|t| tokio::spawn(race(store.clone(), t))).collect();
    let mut attempts = Vec::new();
    for task in tasks {
        attempts.extend(task.await.expect("task finishes"));
    }
    assert_eq!(attempts.len(), TASKS * APPENDS_PER_TASK);

    let log = read_all(&store, Query::all(), ReadOptions::forwards()).await;
    let by_id: HashMap<String, usize> =
        log.iter().enumerate().map(|(i, e)| (String::from_utf8(e.event.payload.clone()).unwrap(), i)).collect();
    assert_eq!(by_id.len(), log.len(), "every stored event is unique");
    let index_of: HashMap<Position, usize> = log.iter().enumerate().map(|(i, e)| (e.position, i)).collect();

    let (mut accepted, mut rejected) = (0, 0);
    for attempt in &attempts {
        let low = attempt.after.map_or(0, |after| log.partition_point(|e| e.position <= after));
        match attempt.outcome {
            Ok(position) => {
                accepted += 1;
                let at = by_id.get(&attempt.id).copied().expect("accepted events are stored");
                assert_eq!(log[at].position, position, "reported position is where the event is");
                let broken = log[low..at].iter().find(|e| attempt.query.matches(&e.event));
                assert!(
                    broken.is_none(),
                    "{}: accepted although {:?} matched after {:?}",
                    attempt.id,
                    broken,
                    attempt.after
                );
            }
            Err(conflict) => {
                rejected += 1;
                assert!(!by_id.contains_key(&attempt.id), "{}: rejected events are not stored", attempt.id);
                let at = *index_of.get(&conflict).expect("the conflicting event exists");
                assert!(attempt.after.is_none_or(|after| conflict > after), "conflict lies after `after`");
                assert!(attempt.query.matches(&log[at].event), "the conflicting event matches the query");
                let earlier = log[low..at].iter().find(|e| attempt.query.matches(&e.event));
                assert!(earlier.is_none(), "the first conflicting event is reported");
            }
        }
    }
    assert_eq!(accepted, log.len(), "the log holds exactly the accepted appends");
    assert!(rejected > 0 && accepted > 0, "the race produced both verdicts ({accepted} accepted, {rejected} rejected)");
    assert!(engine.stats().conflicts.load(std::sync::atomic::Ordering::Relaxed) > 0, "retries were exercised");
    println!(
        "{accepted} accepted, {rejected} rejected, {} commits",
        engine.stats().commits.load(std::sync::atomic::Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_on_disjoint_queries_are_never_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), 0.1);
    let store = DcbStore::new(engine.clone(), "disjoint").unwrap();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let own = tag(&format!("owner:{t}"));
                let query = Query::from(QueryItem::tags([own.clone()]));
                let mut after = None;
                for n in 0..50 {
                    let event = RawEvent::new("Owned", format!("{t}-{n}").into_bytes()).with_tag(own.clone());
                    let condition = AppendCondition::none_match_after(query.clone(), after);
                    let appended = store.append(vec![event], Some(condition)).await.expect("disjoint appends pass");
                    after = Some(appended.last());
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("no append was rejected");
    }
    assert_eq!(read_all(&store, Query::all(), ReadOptions::forwards()).await.len(), TASKS * 50);
    assert!(
        engine.stats().commits.load(std::sync::atomic::Ordering::Relaxed) < (TASKS * 50) as u64,
        "appends shared commits"
    );
}
