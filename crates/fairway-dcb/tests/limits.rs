//! The store's limits where FoundationDB's are: an append's transaction counted as
//! FoundationDB counts it (keys, values, write and read conflict ranges) so that a batch over
//! the limit is refused with the typed error naming it instead of failing with FoundationDB's
//! `transaction_too_large` (2101), and one just under commits; the largest event fits one
//! value; a receipt key over its limit is refused naming it. On the embedded engine in every
//! run, on FoundationDB when a cluster is configured.

use std::sync::Arc;

use fairway_dcb::conformance::tag;
use fairway_dcb::kv::KvEngine;
use fairway_dcb::limits::{
    MAX_APPEND_BYTES, MAX_EVENT_ID_LEN, MAX_METADATA_BYTES, MAX_PAYLOAD_BYTES, MAX_RECEIPT_KEY_BYTES,
    MAX_TAGS_PER_EVENT, MAX_TYPE_LEN,
};
use fairway_dcb::{
    DcbStore, EmbeddedEngine, EmbeddedOptions, Error, EventStore, InvalidInput, Query, QueryItem, RawEvent,
    ReadOptions, Receipt, append_bytes,
};
use futures::TryStreamExt;

/// Event `i` of a batch whose size is mostly index keys: the most tags, each long and its own.
fn wide(i: usize) -> RawEvent {
    let tags = (0..MAX_TAGS_PER_EVENT).map(|t| tag(&format!("t{t:02}:{i:06}{}", "v".repeat(240))));
    RawEvent::new("Wide", vec![1; 64]).with_tags(tags)
}

fn batch(n: usize) -> Vec<RawEvent> {
    (0..n).map(wide).collect()
}

/// The largest batch of [`wide`] events the store accepts, by its own count.
fn largest_accepted<E: KvEngine>(store: &DcbStore<E>) -> usize {
    let (mut fits, mut over) = (1, 2);
    while store.append_transaction_bytes(batch(over), vec![]) <= MAX_APPEND_BYTES {
        (fits, over) = (over, over * 2);
    }
    while over - fits > 1 {
        let mid = (fits + over) / 2;
        if store.append_transaction_bytes(batch(mid), vec![]) <= MAX_APPEND_BYTES {
            fits = mid;
        } else {
            over = mid;
        }
    }
    fits
}

async fn a_batch_just_over_the_limit_is_refused_and_one_just_under_commits<E: KvEngine>(store: DcbStore<E>) {
    let fits = largest_accepted(&store);
    let counted = store.append_transaction_bytes(batch(fits + 1), vec![]);
    // Most of the batch is index keys, each counted three times (the key written and the two
    // ends of its write conflict range): far more than the keys and values alone.
    let keys_and_values: usize = batch(fits + 1)
        .iter()
        .map(|e| e.payload.len() + e.tags.iter().map(|t| t.as_str().len()).sum::<usize>() * 2)
        .sum();
    assert!(counted > 2 * keys_and_values, "conflict ranges are counted: {counted} for {keys_and_values}");
    match store.append(batch(fits + 1), None).await {
        Err(Error::InvalidInput(InvalidInput::BatchTooLarge { bytes, limit })) => {
            assert_eq!((bytes, limit), (counted, MAX_APPEND_BYTES));
            let message = InvalidInput::BatchTooLarge { bytes, limit }.to_string();
            assert!(message.contains(&format!("the limit is {MAX_APPEND_BYTES} bytes")), "{message}");
        }
        other => panic!("{} events: expected BatchTooLarge, got {other:?}", fits + 1),
    }
    assert_eq!(store.count().await.unwrap(), 0, "nothing of the refused batch was written");
    let appended = store.append(batch(fits), None).await.expect("the largest accepted batch commits");
    assert_eq!(appended.positions.len(), fits);
    assert_eq!(store.count().await.unwrap(), fits as u64);
    let last_tag = batch(fits)[fits - 1].tags[MAX_TAGS_PER_EVENT - 1].clone();
    let read: Vec<_> =
        store.read(Query::from(QueryItem::tags([last_tag])), ReadOptions::forwards()).try_collect().await.unwrap();
    assert_eq!(read.len(), 1, "the last event's last tag is indexed");
    assert_eq!(read[0].position, appended.last());
    let upper_bound: usize = batch(fits).iter().map(append_bytes).sum();
    assert!(upper_bound >= store.append_transaction_bytes(batch(fits), vec![]), "append_bytes bounds the count");
}

/// The largest event the limits allow: the biggest payload and metadata, the most and
/// longest tags, the longest type and id. Its stored record fits one FoundationDB value.
async fn the_largest_event_fits_one_value<E: KvEngine>(store: DcbStore<E>) {
    let tags = (0..MAX_TAGS_PER_EVENT).map(|t| tag(&format!("{t:02}:{}", "x".repeat(252))));
    let event = RawEvent::new("T".repeat(MAX_TYPE_LEN), vec![7; MAX_PAYLOAD_BYTES])
        .with_tags(tags)
        .with_metadata(vec![8; MAX_METADATA_BYTES])
        .with_id("i".repeat(MAX_EVENT_ID_LEN));
    let appended = store.append(vec![event.clone()], None).await.expect("the largest event is stored");
    let read: Vec<_> = store.read(Query::all(), ReadOptions::forwards()).try_collect().await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].position, appended.last());
    assert_eq!(read[0].event.payload, event.payload);
    assert_eq!(read[0].event.tags, event.tags);
    let over = RawEvent::new("T", vec![0; MAX_PAYLOAD_BYTES + 1]);
    let err = store.append(vec![over], None).await.expect_err("a payload over the limit");
    assert!(err.to_string().contains(&format!("the limit is {MAX_PAYLOAD_BYTES} bytes")), "{err}");
}

async fn a_receipt_key_over_its_limit_is_refused<E: KvEngine>(store: DcbStore<E>) {
    let prefix = store.layout().user_prefix("receipts");
    let receipt = |len: usize| Receipt {
        key: [prefix.clone(), vec![b'k'; len - prefix.len()]].concat(),
        value: b"done".to_vec(),
        stamp_at: None,
        stands: |_| true,
    };
    let err = store
        .append_with_receipt(vec![RawEvent::new("A", Vec::new())], vec![], receipt(MAX_RECEIPT_KEY_BYTES + 1))
        .await
        .expect_err("a receipt key over the limit");
    assert!(matches!(err, Error::InvalidInput(InvalidInput::MalformedReceipt { .. })), "{err:?}");
    assert!(err.to_string().contains(&format!("the limit is {MAX_RECEIPT_KEY_BYTES} bytes")), "{err}");
    store
        .append_with_receipt(vec![RawEvent::new("A", Vec::new())], vec![], receipt(MAX_RECEIPT_KEY_BYTES))
        .await
        .expect("a receipt key at the limit");
    assert_eq!(store.count().await.unwrap(), 1);
}

fn embedded() -> (DcbStore<EmbeddedEngine>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions { durable: false, ..EmbeddedOptions::default() };
    let engine = EmbeddedEngine::open(dir.path(), options).unwrap();
    (DcbStore::new(Arc::new(engine), "limits").unwrap(), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_batch_just_over_the_limit_is_refused_and_one_just_under_commits() {
    let (store, _dir) = embedded();
    a_batch_just_over_the_limit_is_refused_and_one_just_under_commits(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_largest_event_fits_one_value() {
    let (store, _dir) = embedded();
    the_largest_event_fits_one_value(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_receipt_key_over_its_limit_is_refused() {
    let (store, _dir) = embedded();
    a_receipt_key_over_its_limit_is_refused(store).await;
}

#[cfg(feature = "fdb")]
mod on_foundationdb {
    use fairway_dcb::DcbStore;
    use fairway_dcb::kv::fdb::FdbEngine;

    fn store() -> Option<DcbStore<FdbEngine>> {
        fairway_dcb::conformance::fdb_store("a limits case", "limits")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn foundationdb_batch_just_over_the_limit_is_refused_and_one_just_under_commits() {
        let Some(store) = store() else { return };
        super::a_batch_just_over_the_limit_is_refused_and_one_just_under_commits(store.clone()).await;
        store.clear_namespace().await.expect("the case's namespace is cleared");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn foundationdb_largest_event_fits_one_value() {
        let Some(store) = store() else { return };
        super::the_largest_event_fits_one_value(store.clone()).await;
        store.clear_namespace().await.expect("the case's namespace is cleared");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn foundationdb_receipt_key_over_its_limit_is_refused() {
        let Some(store) = store() else { return };
        super::a_receipt_key_over_its_limit_is_refused(store.clone()).await;
        store.clear_namespace().await.expect("the case's namespace is cleared");
    }
}
