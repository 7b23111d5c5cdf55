//! Races many tasks making conditional appends over overlapping queries, with spurious
//! conflicts injected, then replays the whole log to prove every verdict right. On the
//! embedded engine in every run (its own injected conflicts), on FoundationDB when a cluster
//! is configured (real conflicts, and `not_committed` injected at the commit through the
//! real `on_error` path).

mod engines;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use fairway_dcb::conformance::{read_all, tag};
use fairway_dcb::kv::{Committed, KvEngine, TxError, Watch};
use fairway_dcb::{
    AppendCondition, DcbStore, EmbeddedEngine, EmbeddedOptions, Error, EventStore, Position, Query, QueryItem,
    RawEvent, ReadOptions, StorageError,
};
use rand::Rng;

const TASKS: usize = 32;
const APPENDS_PER_TASK: usize = 160;
const ENTITIES: usize = 24;

/// An engine that counts transactions and the attempts their bodies took: more attempts
/// than transactions means retries ran.
struct Retries<E> {
    inner: Arc<E>,
    transactions: AtomicU64,
    attempts: AtomicU64,
}

impl<E: KvEngine> Retries<E> {
    fn new(inner: Arc<E>) -> Arc<Self> {
        Arc::new(Retries { inner, transactions: AtomicU64::new(0), attempts: AtomicU64::new(0) })
    }

    /// Attempts beyond the first of each transaction so far.
    fn retried(&self) -> u64 {
        self.attempts.load(Ordering::SeqCst) - self.transactions.load(Ordering::SeqCst)
    }
}

impl<E: KvEngine> KvEngine for Retries<E> {
    type Tx = E::Tx;

    async fn transact<T, Er, F, Fut>(&self, mut body: F) -> Result<Committed<T>, Er>
    where
        T: Send,
        Er: TxError,
        F: FnMut(Self::Tx) -> Fut + Send,
        Fut: std::future::Future<Output = Result<T, Er>> + Send,
    {
        self.transactions.fetch_add(1, Ordering::SeqCst);
        let attempts = &self.attempts;
        self.inner
            .transact(move |tx| {
                attempts.fetch_add(1, Ordering::SeqCst);
                body(tx)
            })
            .await
    }

    async fn watch_any(&self, keys: Vec<Vec<u8>>) -> Result<Watch, StorageError> {
        self.inner.watch_any(keys).await
    }

    fn commit_result_may_be_unknown(&self) -> bool {
        self.inner.commit_result_may_be_unknown()
    }

    fn health(&self) -> Result<(), StorageError> {
        self.inner.health()
    }
}

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

async fn race<E: KvEngine>(store: DcbStore<E>, task: usize) -> Vec<Attempt> {
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

/// Tasks race conditional appends on the store; every verdict is checked
/// against the log afterwards: an accepted append had no match after its `after` up to its
/// own position, a rejected one names the first match, and the log holds exactly the
/// accepted events.
async fn every_verdict_of_racing_conditional_appends_holds_against_the_log<E: KvEngine>(store: DcbStore<Retries<E>>) {
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
    let retried = store.engine().retried();
    assert!(retried > 0, "retries were exercised");
    println!("{accepted} accepted, {rejected} rejected, {retried} attempts run again");
    store.clear_namespace().await.expect("the case's namespace is cleared");
}

/// Tasks append 50 events each, each conditional on its own tag: none is rejected.
async fn appends_on_disjoint_queries_are_never_rejected<E: KvEngine>(store: DcbStore<Retries<E>>) {
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
    assert!(store.engine().retried() > 0, "retries were exercised");
    store.clear_namespace().await.expect("the case's namespace is cleared");
}

/// An embedded store refusing a tenth of commits with a spurious conflict.
fn embedded() -> (DcbStore<Retries<EmbeddedEngine>>, tempfile::TempDir) {
    let options = EmbeddedOptions { spurious_conflict_rate: 0.1, ..EmbeddedOptions::default() };
    let (engine, dir) = engines::embedded(options);
    (DcbStore::new(Retries::new(engine), &engines::fresh_namespace("oracle")).unwrap(), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_every_verdict_of_racing_conditional_appends_holds_against_the_log() {
    let (store, _dir) = embedded();
    every_verdict_of_racing_conditional_appends_holds_against_the_log(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_appends_on_disjoint_queries_are_never_rejected() {
    let (store, _dir) = embedded();
    appends_on_disjoint_queries_are_never_rejected(store.clone()).await;
    let engine = store.engine().inner.clone();
    let commits = engine.stats().commits.load(Ordering::Relaxed);
    assert!(commits < (TASKS * 50) as u64, "appends shared commits");
}

#[cfg(feature = "fdb")]
mod on_foundationdb {
    use fairway_dcb::kv::faults::{CommitFault, InjectFaults, NOT_COMMITTED};
    use fairway_dcb::{DcbStore, FdbEngine};

    use super::{Retries, engines};

    /// A store on a fresh namespace of the configured cluster, a tenth of whose writing
    /// commits fail with `not_committed` before landing.
    fn store(case: &str) -> Option<DcbStore<Retries<FdbEngine>>> {
        let cluster_file = fairway_dcb::conformance::fdb_cluster_file(case)?;
        let engine = engines::foundationdb(&cluster_file);
        engine.fail_commits_at_rate(0.1, CommitFault::instead_of_commit(NOT_COMMITTED));
        Some(DcbStore::new(Retries::new(engine), &engines::fresh_namespace("oracle")).unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn foundationdb_every_verdict_of_racing_conditional_appends_holds_against_the_log() {
        let Some(store) = store("the conditional append oracle") else { return };
        super::every_verdict_of_racing_conditional_appends_holds_against_the_log(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn foundationdb_appends_on_disjoint_queries_are_never_rejected() {
        let Some(store) = store("disjoint conditional appends") else { return };
        super::appends_on_disjoint_queries_are_never_rejected(store).await;
    }
}
