//! Appends with a receipt in their own transaction (`DcbStore::append_with_receipt`), on the
//! embedded engine with spurious conflicts injected so every retry path runs: the receipt
//! commits with the events or not at all, carries the commit stamp the positions follow
//! from, guards its key against a second append, and racing appends with one key admit one.

use std::sync::Arc;

use fairway_dcb::conformance::{event, read_all, tag};
use fairway_dcb::kv::{KvEngine, KvTransaction, VERSIONSTAMP_LEN, Versionstamp};
use fairway_dcb::{
    AppendCondition, Appended, DcbStore, EmbeddedEngine, EmbeddedOptions, EmbeddedStore, Error, EventStore,
    InvalidInput, Position, Query, QueryItem, ReadOptions, Receipt,
};

fn open(rate: f64) -> (EmbeddedStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions { spurious_conflict_rate: rate, ..EmbeddedOptions::default() };
    let engine = EmbeddedEngine::open(dir.path(), options).unwrap();
    (DcbStore::new(Arc::new(engine), "receipts").unwrap(), dir)
}

/// A receipt whose value is `marker` then room for the stamp; a value starting with `x`
/// does not stand (it is "expired").
fn receipt(store: &EmbeddedStore, key: &str, marker: u8) -> Receipt {
    let mut value = vec![marker];
    value.extend_from_slice(&[0; VERSIONSTAMP_LEN]);
    Receipt {
        key: [store.layout().user_prefix("test").as_slice(), key.as_bytes()].concat(),
        value,
        stamp_at: Some(1),
        stands: |bytes| bytes.first() != Some(&b'x'),
    }
}

async fn stored(store: &EmbeddedStore, key: &[u8]) -> Option<Vec<u8>> {
    let key = key.to_vec();
    let committed = store.engine().transact(|tx| {
        let key = key.clone();
        async move { tx.get(&key, false).await }
    });
    committed.await.map_err(Error::from).unwrap().value
}

fn appended(outcome: Result<Appended, Error>) -> Appended {
    match outcome {
        Ok(appended) => appended,
        Err(Error::ReceiptStands { value }) => panic!("expected an append, the key held {value:?}"),
        Err(other) => panic!("expected an append: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receipt_commits_with_the_events_and_guards_its_key() {
    let (store, _dir) = open(0.05);
    let first = receipt(&store, "k1", b'a');
    let events = vec![event("Opened", &["ticket:1"]), event("Noted", &["ticket:1"])];
    let done = appended(store.append_with_receipt(events, vec![], first.clone()).await);
    assert!(!done.already_stored);
    let value = stored(&store, &first.key).await.expect("the receipt was written");
    let stamp = Versionstamp(value[1..1 + VERSIONSTAMP_LEN].try_into().unwrap());
    let from_stamp: Vec<Position> = (0..2).map(|i| Position::new(stamp.commit(), stamp.order(), i)).collect();
    assert_eq!(done.positions, from_stamp, "the stamp in the receipt gives the positions of the events");

    // A second append with the key writes nothing and fails with the standing receipt.
    let again = store.append_with_receipt(vec![event("Opened", &["ticket:2"])], vec![], receipt(&store, "k1", b'b'));
    match again.await {
        Err(Error::ReceiptStands { value: standing }) => assert_eq!(standing, value),
        other => panic!("expected the standing receipt, got {other:?}"),
    }
    assert_eq!(read_all(&store, Query::all(), ReadOptions::forwards()).await.len(), 2, "nothing appended");

    // A receipt that no longer stands is overwritten.
    let (expired_key, mut expired) = (first.key.clone(), vec![b'x']);
    expired.extend_from_slice(&[0; VERSIONSTAMP_LEN]);
    store
        .engine()
        .transact(|tx| {
            let (key, value) = (expired_key.clone(), expired.clone());
            async move {
                tx.set(&key, &value);
                Ok::<_, Error>(())
            }
        })
        .await
        .unwrap();
    let renewed = store.append_with_receipt(vec![event("Opened", &["ticket:3"])], vec![], receipt(&store, "k1", b'c'));
    appended(renewed.await);
    assert_eq!(stored(&store, &first.key).await.unwrap()[0], b'c');
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_condition_writes_no_receipt_and_a_bad_receipt_is_refused() {
    let (store, _dir) = open(0.05);
    let query = Query::from(QueryItem::types(["Opened"]).with_tags([tag("ticket:1")]));
    store.append(vec![event("Opened", &["ticket:1"])], None).await.unwrap();
    let refused = store
        .append_with_receipt(
            vec![event("Opened", &["ticket:1"])],
            vec![AppendCondition::none_match(query)],
            receipt(&store, "k", b'a'),
        )
        .await;
    assert!(matches!(refused, Err(Error::ConditionFailed { .. })), "{refused:?}");
    assert_eq!(stored(&store, &receipt(&store, "k", b'a').key).await, None, "no receipt without the events");

    let outside = Receipt { key: store.layout().id_key("k"), ..receipt(&store, "k", b'a') };
    let refused = store.append_with_receipt(vec![event("Opened", &[])], vec![], outside).await;
    assert!(matches!(refused, Err(Error::InvalidInput(InvalidInput::MalformedReceipt { .. }))), "{refused:?}");
    let no_room = Receipt { stamp_at: Some(5), ..receipt(&store, "k", b'a') };
    let refused = store.append_with_receipt(vec![event("Opened", &[])], vec![], no_room).await.unwrap_err();
    assert!(refused.to_string().contains("does not fit a value of 11 bytes"), "{refused}");
    assert_eq!(read_all(&store, Query::all(), ReadOptions::forwards()).await.len(), 1, "nothing appended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_appends_with_one_key_admit_exactly_one() {
    let (store, _dir) = open(0.05);
    for round in 0..20 {
        let key = format!("race-{round}");
        let racers: Vec<_> = (0..6)
            .map(|n| {
                let (store, receipt) = (store.clone(), receipt(&store, &key, b'0' + n));
                // Different tags: no append condition or event id links the racers.
                let event = event("Opened", &[&format!("ticket:{round}-{n}")]);
                tokio::spawn(async move { store.append_with_receipt(vec![event], vec![], receipt).await })
            })
            .collect();
        let mut winners = Vec::new();
        let mut existing = Vec::new();
        for racer in racers {
            match racer.await.unwrap() {
                Ok(appended) => winners.push(appended),
                Err(Error::ReceiptStands { value }) => existing.push(value),
                Err(other) => panic!("round {round}: {other}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: one append wins the key");
        let value = stored(&store, &receipt(&store, &key, b'0').key).await.unwrap();
        assert!(existing.iter().all(|v| *v == value), "round {round}: the losers saw the winner's receipt");
    }
    let log = read_all(&store, Query::all(), ReadOptions::forwards()).await;
    assert_eq!(log.len(), 20, "one event per round in the log");
}
