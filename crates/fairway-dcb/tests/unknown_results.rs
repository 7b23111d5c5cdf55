//! Commits whose result is reported unknown after they landed (FoundationDB's
//! `commit_unknown_result`, 1021) are run again by the engine; every append must still land
//! exactly once, answer with its own positions, and never fail on its own events. Injected
//! on the embedded engine (`EmbeddedOptions::unknown_result_rate`) in every run, and on
//! FoundationDB (`FdbEngine::set_unknown_result_rate`) when a cluster is configured.

use std::collections::BTreeMap;
use std::sync::Arc;

use fairway_dcb::conformance::{event, read_all, tag};
use fairway_dcb::{
    AppendCondition, DcbStore, EmbeddedEngine, EmbeddedOptions, EventStore, Query, QueryItem, ReadOptions, RetryPolicy,
};

const WRITERS: usize = 8;
const APPENDS: usize = 25;

/// Racing writers append one event each time (every other append under a condition on its
/// own tag); the log then holds each event once, at the position its append answered.
async fn every_append_lands_once<S: EventStore + Clone + 'static>(store: S) {
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut answered = Vec::new();
                for n in 0..APPENDS {
                    let note = format!("note:{writer}-{n}");
                    let condition = (n % 2 == 1).then(|| {
                        AppendCondition::none_match(Query::from(QueryItem::types(["Noted"]).with_tags([tag(&note)])))
                    });
                    let appended = store.append(vec![event("Noted", &[&note])], condition).await;
                    let appended = appended.unwrap_or_else(|err| panic!("append of {note}: {err}"));
                    answered.push((note, appended.positions));
                }
                answered
            })
        })
        .collect();
    let mut answered = BTreeMap::new();
    for writer in writers {
        answered.extend(writer.await.unwrap());
    }
    let log = read_all(&store, Query::all(), ReadOptions::forwards()).await;
    assert_eq!(log.len(), WRITERS * APPENDS, "every append landed exactly once");
    for stored in &log {
        let note = stored.event.tags[0].as_str().to_owned();
        assert_eq!(answered[&note], vec![stored.position], "{note} answered with the position it holds");
    }
    assert_eq!(store.count().await.unwrap(), (WRITERS * APPENDS) as u64, "the event count agrees");
}

/// Every commit that writes reported unknown: the run after the first finds the first
/// run's marker, writes nothing (a read-only commit is never unknown) and answers with the
/// position the event got, which the log holds once.
async fn an_append_whose_every_write_is_reported_unknown_lands_once<S: EventStore>(store: S) {
    let appended = store.append(vec![event("Noted", &["note:unknown"])], None).await.unwrap();
    let log = read_all(&store, Query::all(), ReadOptions::forwards()).await;
    assert_eq!(log.len(), 1, "written once, not once per run");
    assert_eq!(appended.positions, vec![log[0].position], "the answer is where it landed");
}

fn embedded(unknown_result_rate: f64) -> (DcbStore<EmbeddedEngine>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions {
        durable: false,
        unknown_result_rate,
        spurious_conflict_rate: 0.05,
        retry: RetryPolicy { max_attempts: 8, ..RetryPolicy::default() },
        ..EmbeddedOptions::default()
    };
    let engine = EmbeddedEngine::open(dir.path(), options).unwrap();
    (DcbStore::new(Arc::new(engine), "unknown").unwrap(), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_appends_land_once_when_a_third_of_commits_are_reported_unknown() {
    let (store, _dir) = embedded(0.3);
    every_append_lands_once(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_append_whose_every_write_is_reported_unknown_lands_once() {
    let (store, _dir) = embedded(1.0);
    an_append_whose_every_write_is_reported_unknown_lands_once(store).await;
}

#[cfg(feature = "fdb")]
mod on_foundationdb {
    use std::sync::Arc;

    use fairway_dcb::kv::fdb::FdbEngine;
    use fairway_dcb::{DcbStore, RetryPolicy};

    /// A store on a fresh namespace of the configured cluster, commits reported unknown at
    /// `rate`; `None` (with a notice) without a cluster, a failure when one is required.
    fn store(rate: f64) -> Option<DcbStore<FdbEngine>> {
        let cluster_file = fairway_dcb::conformance::fdb_cluster_file("an unknown-result case")?;
        let retry = RetryPolicy { max_attempts: 8, ..RetryPolicy::default() };
        let engine = FdbEngine::open(Some(&cluster_file), retry).expect("cluster reachable");
        engine.set_unknown_result_rate(rate);
        let namespace = format!("unknown-{:016x}", rand::random::<u64>());
        Some(DcbStore::new(Arc::new(engine), &namespace).expect("valid namespace"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn foundationdb_appends_land_once_when_a_third_of_commits_are_reported_unknown() {
        if let Some(store) = store(0.3) {
            super::every_append_lands_once(store.clone()).await;
            store.clear_namespace().await.expect("the case's namespace is cleared");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn foundationdb_append_whose_every_write_is_reported_unknown_lands_once() {
        if let Some(store) = store(1.0) {
            super::an_append_whose_every_write_is_reported_unknown_lands_once(store.clone()).await;
            store.engine().set_unknown_result_rate(0.0);
            store.clear_namespace().await.expect("the case's namespace is cleared");
        }
    }
}
