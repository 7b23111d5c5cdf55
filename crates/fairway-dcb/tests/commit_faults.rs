//! Commits failed on purpose with each error FoundationDB reports for a commit —
//! `transaction_too_old` (1007), `future_version` (1009), `not_committed` (1020) instead of
//! the commit, `commit_unknown_result` (1021) instead of it or after it landed — inside
//! plain appends, conditional appends and appends with a receipt: each append answers with
//! its positions, the log holds each event once, and the receipt is written once. On the
//! embedded engine in every run, on FoundationDB (through its real `on_error` path) when a
//! cluster is configured.

use std::collections::BTreeMap;
use std::sync::Arc;

use fairway_dcb::conformance::{event, read_all, tag};
use fairway_dcb::kv::KvEngine;
use fairway_dcb::kv::faults::{
    COMMIT_UNKNOWN_RESULT, CommitFault, FUTURE_VERSION, InjectFaults, NOT_COMMITTED, TRANSACTION_TOO_OLD,
};
use fairway_dcb::{
    AppendCondition, DcbStore, EmbeddedEngine, EmbeddedOptions, EventStore, Query, QueryItem, ReadOptions, Receipt,
};

/// Every fault a commit can meet.
fn faults() -> [CommitFault; 5] {
    [
        CommitFault::instead_of_commit(TRANSACTION_TOO_OLD),
        CommitFault::instead_of_commit(FUTURE_VERSION),
        CommitFault::instead_of_commit(NOT_COMMITTED),
        CommitFault::instead_of_commit(COMMIT_UNKNOWN_RESULT),
        CommitFault::unknown_after_landing(),
    ]
}

/// The three kinds of append.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Plain,
    Conditional,
    WithReceipt,
}

/// Appends one event of `kind` tagged `note`; its positions.
async fn append<E: KvEngine + InjectFaults>(store: &DcbStore<E>, kind: Kind, note: &str) -> Vec<fairway_dcb::Position> {
    let events = vec![event("Noted", &[note])];
    let guard = || AppendCondition::none_match(Query::from(QueryItem::types(["Noted"]).with_tags([tag(note)])));
    let appended = match kind {
        Kind::Plain => store.append(events, None).await,
        Kind::Conditional => store.append(events, Some(guard())).await,
        Kind::WithReceipt => {
            let receipt =
                Receipt { key: receipt_key(store, note), value: vec![0; 10], stamp_at: Some(0), stands: |_| true };
            store.append_with_receipt(events, vec![guard()], receipt).await
        }
    };
    appended.unwrap_or_else(|err| panic!("{kind:?} append of {note}: {err}")).positions
}

fn receipt_key<E: KvEngine>(store: &DcbStore<E>, note: &str) -> Vec<u8> {
    [store.layout().user_prefix("receipts"), note.as_bytes().to_vec()].concat()
}

/// Checks that the log holds exactly the events `answered` names, each once, where its
/// append said, and that every receipt holds its append's commit stamp.
async fn each_event_once<E: KvEngine + InjectFaults>(
    store: &DcbStore<E>,
    answered: &BTreeMap<String, (Kind, Vec<fairway_dcb::Position>)>,
) {
    let log = read_all(store, Query::all(), ReadOptions::forwards()).await;
    assert_eq!(log.len(), answered.len(), "no event lost, none written twice");
    for stored in &log {
        let note = stored.event.tags[0].as_str();
        assert_eq!(answered[note].1, vec![stored.position], "{note} answered with the position it holds");
    }
    assert_eq!(store.count().await.unwrap(), answered.len() as u64, "the event count agrees");
    for (note, (kind, positions)) in answered {
        if let Kind::WithReceipt = kind {
            let key = receipt_key(store, note);
            let value = store
                .engine()
                .transact(|tx| {
                    let key = key.clone();
                    async move { fairway_dcb::kv::KvTransaction::get(&tx, &key, false).await }
                })
                .await
                .unwrap()
                .value
                .unwrap_or_else(|| panic!("the receipt of {note} was written"));
            let stamp = fairway_dcb::Versionstamp(value[..10].try_into().unwrap());
            assert_eq!(stamp.positions(1), *positions, "the receipt of {note} holds its append's stamp");
        }
    }
}

/// The next writing commit fails with each fault in turn, in each kind of append.
async fn each_fault_in_each_kind_of_append<E: KvEngine + InjectFaults>(store: DcbStore<E>) {
    let mut answered = BTreeMap::new();
    for (f, fault) in faults().into_iter().enumerate() {
        for kind in [Kind::Plain, Kind::Conditional, Kind::WithReceipt] {
            let note = format!("note:{f}-{kind:?}");
            store.engine().fail_commit(1, fault);
            let positions = append(&store, kind, &note).await;
            answered.insert(note, (kind, positions));
        }
    }
    each_event_once(&store, &answered).await;
}

const WRITERS: usize = 6;
const APPENDS: usize = 15;

/// Racing writers of every kind of append while a fifth of writing commits meet a fault
/// (each of the five at 4 %).
async fn racing_appends_under_every_fault<E: KvEngine + InjectFaults>(store: DcbStore<E>) {
    for fault in faults() {
        store.engine().fail_commits_at_rate(0.04, fault);
    }
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut answered = Vec::new();
                for n in 0..APPENDS {
                    let kind = [Kind::Plain, Kind::Conditional, Kind::WithReceipt][n % 3];
                    let note = format!("note:{writer}-{n}");
                    let positions = append(&store, kind, &note).await;
                    answered.push((note, (kind, positions)));
                }
                answered
            })
        })
        .collect();
    let mut answered = BTreeMap::new();
    for writer in writers {
        answered.extend(writer.await.unwrap());
    }
    assert_eq!(answered.len(), WRITERS * APPENDS);
    for fault in faults() {
        store.engine().fail_commits_at_rate(0.0, fault);
    }
    each_event_once(&store, &answered).await;
}

fn embedded() -> (DcbStore<EmbeddedEngine>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions { durable: false, ..EmbeddedOptions::default() };
    let engine = EmbeddedEngine::open(dir.path(), options).unwrap();
    (DcbStore::new(Arc::new(engine), "faults").unwrap(), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_appends_survive_each_commit_fault() {
    let (store, _dir) = embedded();
    each_fault_in_each_kind_of_append(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_racing_appends_survive_every_commit_fault() {
    let (store, _dir) = embedded();
    racing_appends_under_every_fault(store).await;
}

#[cfg(feature = "fdb")]
mod on_foundationdb {
    use fairway_dcb::DcbStore;
    use fairway_dcb::kv::fdb::FdbEngine;

    fn store() -> Option<DcbStore<FdbEngine>> {
        fairway_dcb::conformance::fdb_store("a commit fault case", "faults")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn foundationdb_appends_survive_each_commit_fault() {
        let Some(store) = store() else { return };
        super::each_fault_in_each_kind_of_append(store.clone()).await;
        store.clear_namespace().await.expect("the case's namespace is cleared");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn foundationdb_racing_appends_survive_every_commit_fault() {
        let Some(store) = store() else { return };
        super::racing_appends_under_every_fault(store.clone()).await;
        store.clear_namespace().await.expect("the case's namespace is cleared");
    }
}
