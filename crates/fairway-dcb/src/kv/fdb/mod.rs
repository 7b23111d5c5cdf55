//! The FoundationDB engine (feature `fdb`, client API 7.3).
//!
//! A thin translation of the storage port onto the `foundationdb` crate: every piece of
//! logic above it (DCB layout, planning, conditions, subscriptions) is shared with the
//! embedded engine and tested there. What lives here:
//! - the retry loop: a body runs in a fresh transaction; its commit or a retryable read
//!   error goes through `on_error` (FoundationDB's own backoff and its verdict on whether
//!   the error is retryable), bounded by the engine's [`RetryPolicy`]; every attempt then
//!   runs on a new transaction with its own 5 s timeout (a timeout set on a transaction
//!   survives `on_error`, so reusing it would give all attempts one 5 s together);
//! - versionstamped keys/values with the API ≥ 520 format (4-byte little-endian offset
//!   appended to the parameter) and `get_versionstamp` read after commit;
//! - watches for [`KvEngine::watch_any`].
//!
//! Limits to keep in mind (enforced above this layer by the DCB limits): 10 MB per
//! transaction, 100 kB per value, 5 s per transaction — long reads page across transactions.

mod probe;

use std::sync::{Arc, Once};

use foundationdb::options::{MutationType, StreamingMode, TransactionOption};
use foundationdb::{Database, FdbError, KeySelector, RangeOption, Transaction};
use futures::FutureExt;

use crate::error::StorageError;
use crate::kv::{Committed, KvEngine, KvTransaction, RangeScan, RetryPolicy, TxError, Versionstamp, Watch};

/// Milliseconds after which a single transaction attempt is cancelled.
const TRANSACTION_TIMEOUT_MS: i32 = 5_000;

fn storage(err: FdbError) -> StorageError {
    StorageError::Fdb { code: err.code(), message: err.message().to_owned() }
}

static NETWORK: Once = Once::new();

/// Starts the FoundationDB client network thread once per process. It runs until the
/// process exits (the client library allows one network per process).
fn boot_network() {
    NETWORK.call_once(|| {
        // SAFETY: called once per process (guarded by `Once`); the returned guard is leaked
        // so the network is never stopped while transactions may still use it.
        let network = unsafe { foundationdb::boot() };
        std::mem::forget(network);
    });
}

/// The FoundationDB engine.
pub struct FdbEngine {
    db: Arc<Database>,
    probe: probe::Probe,
    retry: RetryPolicy,
    /// Commits reported as of unknown result after they landed, per million (a test hook).
    unknown_result_ppm: std::sync::atomic::AtomicU64,
}

impl FdbEngine {
    /// Connects to the cluster described by `cluster_file` (`None`: the default file).
    pub fn open(cluster_file: Option<&str>, retry: RetryPolicy) -> Result<Self, StorageError> {
        boot_network();
        let db = Arc::new(Database::new(cluster_file).map_err(storage)?);
        let probe = probe::Probe::start(Arc::downgrade(&db));
        Ok(FdbEngine { db, probe, retry, unknown_result_ppm: Default::default() })
    }

    /// Test hook: the probability in `[0, 1]` that a commit that landed is reported as
    /// `commit_unknown_result` (1021) and its transaction run again through `on_error`, as
    /// the cluster may do under load or failover. Keep at 0 outside tests.
    pub fn set_unknown_result_rate(&self, rate: f64) {
        let ppm = (rate.clamp(0.0, 1.0) * 1e6) as u64;
        self.unknown_result_ppm.store(ppm, std::sync::atomic::Ordering::Relaxed);
    }

    fn reports_unknown_result(&self) -> bool {
        let ppm = self.unknown_result_ppm.load(std::sync::atomic::Ordering::Relaxed);
        ppm > 0 && rand::random_range(0..1_000_000) < ppm
    }

    /// Removes every key starting with `prefix` (e.g. a test namespace).
    pub async fn clear_prefix(&self, prefix: &[u8]) -> Result<(), StorageError> {
        let mut end = prefix.to_vec();
        end.push(0xff);
        self.transact(|tx| {
            tx.clear_range(prefix, &end);
            async { Ok::<_, StorageError>(()) }
        })
        .await
        .map(|_| ())
    }

    fn new_transaction(&self) -> Result<Transaction, StorageError> {
        let trx = self.db.create_trx().map_err(storage)?;
        trx.set_option(TransactionOption::Timeout(TRANSACTION_TIMEOUT_MS)).map_err(storage)?;
        Ok(trx)
    }
}

/// A FoundationDB transaction attempt.
#[derive(Clone)]
pub struct FdbTx {
    trx: Arc<Transaction>,
    stamped: Arc<std::sync::atomic::AtomicBool>,
}

fn with_offset(mut bytes: Vec<u8>, offset: usize) -> Vec<u8> {
    bytes.extend_from_slice(&(offset as u32).to_le_bytes());
    bytes
}

impl KvTransaction for FdbTx {
    async fn get(&self, key: &[u8], snapshot: bool) -> Result<Option<Vec<u8>>, StorageError> {
        let value = self.trx.get(key, snapshot).await.map_err(storage)?;
        Ok(value.map(|v| v.to_vec()))
    }

    async fn scan_range<V>(&self, scan: &RangeScan, mut visit: V) -> Result<usize, StorageError>
    where
        V: FnMut(&[u8], &[u8]) -> Result<(), StorageError> + Send,
    {
        let mut option = RangeOption {
            begin: KeySelector::first_greater_or_equal(scan.begin.clone()),
            end: KeySelector::first_greater_or_equal(scan.end.clone()),
            limit: (scan.limit > 0).then_some(scan.limit),
            reverse: scan.reverse,
            mode: if scan.limit > 0 { StreamingMode::Exact } else { StreamingMode::WantAll },
            ..RangeOption::default()
        };
        let mut count = 0;
        let mut iteration = 1;
        loop {
            let values = self.trx.get_range(&option, iteration, scan.snapshot).await.map_err(storage)?;
            for pair in values.iter() {
                visit(pair.key(), pair.value())?;
                count += 1;
            }
            match option.next_range(&values) {
                Some(next) => option = next,
                None => return Ok(count),
            }
            iteration += 1;
        }
    }

    fn set(&self, key: &[u8], value: &[u8]) {
        self.trx.set(key, value);
    }

    fn clear(&self, key: &[u8]) {
        self.trx.clear(key);
    }

    fn clear_range(&self, begin: &[u8], end: &[u8]) {
        self.trx.clear_range(begin, end);
    }

    fn atomic_add(&self, key: &[u8], delta: i64) {
        self.trx.atomic_op(key, &delta.to_le_bytes(), MutationType::Add);
    }

    fn set_versionstamped_key(&self, key: Vec<u8>, offset: usize, value: &[u8]) {
        self.stamped.store(true, std::sync::atomic::Ordering::Relaxed);
        self.trx.atomic_op(&with_offset(key, offset), value, MutationType::SetVersionstampedKey);
    }

    fn set_versionstamped_value(&self, key: &[u8], value: Vec<u8>, offset: usize) {
        self.stamped.store(true, std::sync::atomic::Ordering::Relaxed);
        self.trx.atomic_op(key, &with_offset(value, offset), MutationType::SetVersionstampedValue);
    }

    async fn clock_micros(&self) -> Result<u64, StorageError> {
        let version = self.trx.get_read_version().await.map_err(storage)?;
        Ok(u64::try_from(version).unwrap_or(0))
    }
}

/// FoundationDB's `commit_unknown_result`: the commit may or may not have landed.
const COMMIT_UNKNOWN_RESULT: i32 = 1021;

impl KvEngine for FdbEngine {
    type Tx = FdbTx;

    fn commit_result_may_be_unknown(&self) -> bool {
        true
    }

    fn health(&self) -> Result<(), StorageError> {
        self.probe.failure().map_or(Ok(()), |why| Err(StorageError::Unavailable(why)))
    }

    async fn transact<T, E, F, Fut>(&self, mut body: F) -> Result<Committed<T>, E>
    where
        T: Send,
        E: TxError,
        F: FnMut(Self::Tx) -> Fut + Send,
        Fut: std::future::Future<Output = Result<T, E>> + Send,
    {
        let mut trx = self.new_transaction()?;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let tx = FdbTx { trx: Arc::new(trx), stamped: Default::default() };
            let outcome = body(tx.clone()).await;
            let stamped = tx.stamped.load(std::sync::atomic::Ordering::Relaxed);
            let FdbTx { trx: shared, .. } = tx;
            let owned = Arc::try_unwrap(shared)
                .map_err(|_| E::from(StorageError::Engine("a transaction handle outlived its body".into())))?;
            let failure = match outcome {
                Ok(value) => {
                    let stamp = stamped.then(|| owned.get_versionstamp());
                    match owned.commit().await {
                        // A read-only commit (committed version -1) is never of unknown result.
                        Ok(landed)
                            if landed.committed_version().is_ok_and(|version| version >= 0)
                                && self.reports_unknown_result()
                                && attempt < self.retry.max_attempts =>
                        {
                            let unknown = FdbError::from_code(COMMIT_UNKNOWN_RESULT);
                            landed.reset().on_error(unknown).await.map_err(storage)?;
                            trx = self.new_transaction()?;
                            continue;
                        }
                        Ok(_) => {
                            let versionstamp = match stamp {
                                Some(stamp) => {
                                    let bytes = stamp.await.map_err(storage)?;
                                    let array: [u8; 10] = bytes[..]
                                        .try_into()
                                        .map_err(|_| StorageError::Engine("versionstamp is not 10 bytes".into()))?;
                                    Some(Versionstamp(array))
                                }
                                None => None,
                            };
                            return Ok(Committed { value, versionstamp });
                        }
                        Err(commit_error) => {
                            let code = commit_error.code();
                            if attempt >= self.retry.max_attempts {
                                return Err(E::from(StorageError::RetriesExhausted {
                                    attempts: attempt,
                                    last: FdbError::from_code(code).to_string(),
                                }));
                            }
                            commit_error.on_error().await.map_err(storage)?;
                            trx = self.new_transaction()?;
                            continue;
                        }
                    }
                }
                Err(err) => err,
            };
            let code = match failure.as_storage() {
                Some(StorageError::Fdb { code, .. }) => *code,
                _ => return Err(failure),
            };
            if attempt >= self.retry.max_attempts {
                return Err(failure);
            }
            // `on_error` backs off if the error is retryable and fails with it otherwise; the
            // next attempt gets a transaction (and a timeout) of its own.
            owned.on_error(FdbError::from_code(code)).await.map_err(storage)?;
            trx = self.new_transaction()?;
        }
    }

    async fn watch_any(&self, keys: Vec<Vec<u8>>) -> Result<Watch, StorageError> {
        let trx = self.db.create_trx().map_err(storage)?;
        let watches: Vec<_> = keys.iter().map(|key| trx.watch(key)).collect();
        trx.commit().await.map_err(|e| storage(FdbError::from_code(e.code())))?;
        Ok(async move {
            let (result, _, _) = futures::future::select_all(watches).await;
            result.map_err(storage)
        }
        .boxed())
    }
}
