//! The subscriptions of one store share one watch of its pulse keys: many idle
//! subscriptions arm a few watches, not a set each (FoundationDB allows 10,000 per database
//! by default), and every subscription still sees every event, in order. On the embedded
//! engine in every run, on FoundationDB when a cluster is configured.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fairway_dcb::conformance::{event, read_all};
use fairway_dcb::kv::{Committed, KvEngine, TxError, Watch};
use fairway_dcb::{DcbStore, EmbeddedEngine, EmbeddedOptions, EventStore, Query, ReadOptions, StorageError};
use futures::StreamExt;

/// An engine that counts the watches armed on it.
struct Counting<E> {
    inner: E,
    armed: AtomicUsize,
}

impl<E: KvEngine> KvEngine for Counting<E> {
    type Tx = E::Tx;

    async fn transact<T, Er, F, Fut>(&self, body: F) -> Result<Committed<T>, Er>
    where
        T: Send,
        Er: TxError,
        F: FnMut(Self::Tx) -> Fut + Send,
        Fut: std::future::Future<Output = Result<T, Er>> + Send,
    {
        self.inner.transact(body).await
    }

    async fn watch_any(&self, keys: Vec<Vec<u8>>) -> Result<Watch, StorageError> {
        self.armed.fetch_add(1, Ordering::SeqCst);
        self.inner.watch_any(keys).await
    }

    fn commit_result_may_be_unknown(&self) -> bool {
        self.inner.commit_result_may_be_unknown()
    }
}

const SUBSCRIPTIONS: usize = 20;
const APPENDS: usize = 10;

/// Twenty subscriptions follow ten appends made one at a time once they are all waiting:
/// each sees all ten events in order, and the store armed a few watches per append, where
/// a set per subscription would be twenty.
async fn subscriptions_share_one_watch<E: KvEngine>(engine: Arc<Counting<E>>, namespace: &str) {
    let store = DcbStore::new(engine.clone(), namespace).unwrap();
    let followers: Vec<_> = (0..SUBSCRIPTIONS)
        .map(|_| {
            let subscription = store.subscribe(Query::all(), None);
            tokio::spawn(async move {
                let seen: Vec<_> =
                    subscription.take(APPENDS).map(|event| event.expect("no error").position).collect().await;
                seen
            })
        })
        .collect();
    // Every subscription waits on a watch before the first append.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while engine.armed.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no subscription armed a watch");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = engine.armed.load(Ordering::SeqCst);
    assert!(before < SUBSCRIPTIONS, "idle subscriptions share their watch: {before} armed for {SUBSCRIPTIONS}");
    for n in 0..APPENDS {
        store.append(vec![event("Noted", &[&format!("n:{n}")])], None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log: Vec<_> =
        read_all(&store, Query::all(), ReadOptions::forwards()).await.iter().map(|e| e.position).collect();
    for follower in followers {
        let seen = tokio::time::timeout(Duration::from_secs(60), follower).await.expect("caught up").unwrap();
        assert_eq!(seen, log, "a subscription saw every event, in order");
    }
    let armed = engine.armed.load(Ordering::SeqCst);
    assert!(
        armed <= 3 * (APPENDS + 1),
        "{armed} watches armed for {APPENDS} appends and {SUBSCRIPTIONS} subscriptions (a set each would be {})",
        SUBSCRIPTIONS * APPENDS
    );
    store.clear_namespace().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_subscriptions_share_one_watch() {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions { durable: false, ..EmbeddedOptions::default() };
    let inner = EmbeddedEngine::open(dir.path(), options).unwrap();
    subscriptions_share_one_watch(Arc::new(Counting { inner, armed: AtomicUsize::new(0) }), "watch").await;
}

#[cfg(feature = "fdb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foundationdb_subscriptions_share_one_watch() {
    use fairway_dcb::RetryPolicy;
    use fairway_dcb::kv::fdb::FdbEngine;

    let Some(cluster_file) = fairway_dcb::conformance::fdb_cluster_file("a shared watch case") else { return };
    let inner = FdbEngine::open(Some(&cluster_file), RetryPolicy::default()).expect("cluster reachable");
    let namespace = format!("watch-{:016x}", rand::random::<u64>());
    subscriptions_share_one_watch(Arc::new(Counting { inner, armed: AtomicUsize::new(0) }), &namespace).await;
}
