//! The FoundationDB engine (feature `fdb`, client API 7.3).
//!
//! A thin translation of the storage port onto the `foundationdb` crate: every piece of
//! logic above it (DCB layout, planning, conditions, subscriptions) is shared with the
//! embedded engine and tested there. What lives here:
//! - the retry loop: a body runs in a fresh transaction; its commit or a retryable read
//!   error goes through `on_error` (FoundationDB's own backoff and its verdict on whether
//!   the error is retryable), bounded by the engine's [`RetryPolicy`]; every attempt then
//!   runs on a new transaction with its own 5 s timeout (a timeout set on a transaction
//!   survives `on_error`, so reusing it would give all attempts one 5 s together). An
//!   attempt that timed out (1031, which `on_error` does not retry) runs again on a new
//!   transaction, at most [`MAX_TIMED_OUT_ATTEMPTS`] times: the client reports timeouts under
//!   fault injection long before 5 s, and a timeout at commit may hide a landed commit, which
//!   appends recognise by their commit marker as after `commit_unknown_result`;
//! - commit faults planned by tests ([`crate::kv::faults`]), reported through that same path;
//! - versionstamped keys/values with the API ≥ 520 format (4-byte little-endian offset
//!   appended to the parameter) and `get_versionstamp` read after commit;
//! - the client network thread, started by the first engine and stopped by [`stop_network`]
//!   at the end of `main`;
//! - watches for [`KvEngine::watch_any`]: arming retries through `on_error`, and a watch
//!   that fails wakes its waiter after a pause (a spurious wake-up that cannot spin).
//!
//! Limits to keep in mind (enforced above this layer by the DCB limits): 10 MB per
//! transaction, 100 kB per value, 5 s per transaction — long reads page across transactions.

mod network;
mod probe;

use std::sync::Arc;

use foundationdb::options::{MutationType, StreamingMode, TransactionOption};
use foundationdb::{Database, FdbError, KeySelector, RangeOption, Transaction};
use futures::FutureExt;
use tracing::{debug, error, warn};

use crate::kv::faults::{CommitFault, Faults, InjectFaults};

pub use self::network::stop_network;
use crate::error::StorageError;
use crate::kv::{
    Committed, KvEngine, KvTransaction, RangeScan, RetryPolicy, TxError, VERSIONSTAMP_LEN, Versionstamp, Watch,
};

/// Milliseconds after which a single transaction attempt is cancelled.
const TRANSACTION_TIMEOUT_MS: i32 = 5_000;

fn storage(err: FdbError) -> StorageError {
    StorageError::Fdb { code: err.code(), message: err.message().to_owned() }
}

/// Backs off before another attempt after error `code`, through `on_error` (FoundationDB's
/// verdict and delay). An error `on_error` refuses although it is transient
/// ([`StorageError::is_transient`]) is tried again after the engine's own backoff: under
/// client fault injection, `on_error` was seen failing with the very 1007 or 1009 it was
/// given, which then ended reads and subscriptions.
async fn back_off<T>(
    on_error: impl std::future::Future<Output = Result<T, FdbError>>,
    code: i32,
    attempt: u32,
    retry: &RetryPolicy,
) -> Result<(), StorageError> {
    match on_error.await {
        Ok(_) => Ok(()),
        Err(refused) if storage(FdbError::from_code(code)).is_transient() => {
            debug!(code, refused = refused.code(), attempt, "on_error refused a transient error; trying again");
            tokio::time::sleep(retry.backoff(attempt)).await;
            Ok(())
        }
        Err(refused) => Err(storage(refused)),
    }
}

/// A transaction that failed with error `code` in its last allowed attempt: the failure
/// names the attempts made (the engine's [`RetryPolicy::max_attempts`]) and that error.
fn exhausted(attempts: u32, code: i32) -> StorageError {
    StorageError::RetriesExhausted { attempts, last: FdbError::from_code(code).to_string() }
}

/// The FoundationDB engine.
pub struct FdbEngine {
    db: Arc<Database>,
    probe: probe::Probe,
    retry: RetryPolicy,
    /// Commit faults planned by tests.
    faults: Faults,
}

impl FdbEngine {
    /// Connects to the cluster described by `cluster_file` (`None`: the default file).
    pub fn open(cluster_file: Option<&str>, retry: RetryPolicy) -> Result<Self, StorageError> {
        network::start()?;
        let db = Arc::new(Database::new(cluster_file).map_err(storage)?);
        let probe = probe::Probe::start(Arc::downgrade(&db));
        Ok(FdbEngine { db, probe, retry, faults: Faults::default() })
    }

    /// Test hook: the probability in `[0, 1]` that a commit that landed is reported as
    /// `commit_unknown_result` (1021) and its transaction run again through `on_error`, as
    /// the cluster may do under load or failover. Keep at 0 outside tests.
    pub fn set_unknown_result_rate(&self, rate: f64) {
        self.faults.at_rate(rate, CommitFault::unknown_after_landing());
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

    /// Commits an attempt whose body succeeded: its versionstamp if it wrote one, or the
    /// transaction (reset) and the error code its commit failed with.
    async fn commit(&self, trx: Transaction, marks: Marks) -> Result<Option<Versionstamp>, (Transaction, i32)> {
        let fault = if marks.wrote { self.faults.next_commit() } else { None };
        if let Some(fault) = fault.filter(|fault| !fault.landed) {
            debug!(code = fault.code, "injected commit fault: the commit does not land");
            return Err((trx, fault.code));
        }
        let stamp = marks.stamped.then(|| trx.get_versionstamp());
        let landed = match trx.commit().await {
            Ok(landed) => landed,
            Err(failed) => {
                let code = failed.code();
                return Err((failed.reset(), code));
            }
        };
        if let Some(fault) = fault {
            debug!(code = fault.code, "injected commit fault after the commit landed");
            return Err((landed.reset(), fault.code));
        }
        let Some(stamp) = stamp else { return Ok(None) };
        let bytes = match stamp.await {
            Ok(bytes) => bytes,
            Err(err) => return Err((landed.reset(), err.code())),
        };
        match <[u8; VERSIONSTAMP_LEN]>::try_from(&bytes[..]) {
            Ok(array) => Ok(Some(Versionstamp(array))),
            Err(_) => {
                error!(len = bytes.len(), "a versionstamp of the wrong length");
                Err((landed.reset(), INTERNAL_ERROR))
            }
        }
    }
}

/// What a body did with its transaction, as far as the commit cares.
#[derive(Clone, Copy, Default)]
struct Marks {
    /// It made versionstamped writes: the commit's stamp is read.
    stamped: bool,
    /// It wrote something (a commit without writes is never faulted).
    wrote: bool,
}

/// A FoundationDB transaction attempt.
#[derive(Clone)]
pub struct FdbTx {
    trx: Arc<Transaction>,
    marks: Arc<std::sync::Mutex<Marks>>,
}

impl FdbTx {
    fn new(trx: Transaction) -> Self {
        FdbTx { trx: Arc::new(trx), marks: Default::default() }
    }

    fn mark(&self, stamped: bool) {
        let mut marks = self.marks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        marks.wrote = true;
        marks.stamped |= stamped;
    }

    /// The transaction back from the body, with what the body did.
    fn into_parts(self) -> Result<(Transaction, Marks), StorageError> {
        let marks = *self.marks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let trx = Arc::try_unwrap(self.trx)
            .map_err(|_| StorageError::Engine("a transaction handle outlived its body".into()))?;
        Ok((trx, marks))
    }
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
        self.mark(false);
        self.trx.set(key, value);
    }

    fn clear(&self, key: &[u8]) {
        self.mark(false);
        self.trx.clear(key);
    }

    fn clear_range(&self, begin: &[u8], end: &[u8]) {
        self.mark(false);
        self.trx.clear_range(begin, end);
    }

    fn atomic_add(&self, key: &[u8], delta: i64) {
        self.mark(false);
        self.trx.atomic_op(key, &delta.to_le_bytes(), MutationType::Add);
    }

    fn set_versionstamped_key(&self, key: Vec<u8>, offset: usize, value: &[u8]) {
        self.mark(true);
        self.trx.atomic_op(&with_offset(key, offset), value, MutationType::SetVersionstampedKey);
    }

    fn set_versionstamped_value(&self, key: &[u8], value: Vec<u8>, offset: usize) {
        self.mark(true);
        self.trx.atomic_op(key, &with_offset(value, offset), MutationType::SetVersionstampedValue);
    }

    async fn clock_micros(&self) -> Result<u64, StorageError> {
        let version = self.trx.get_read_version().await.map_err(storage)?;
        Ok(u64::try_from(version).unwrap_or(0))
    }
}

/// FoundationDB's `transaction_timed_out`: the attempt ran out of its time (or the client
/// says so under fault injection). Not retryable for `on_error`; the engine retries it on a
/// new transaction, a few times at most.
const TRANSACTION_TIMED_OUT: i32 = 1031;
/// FoundationDB's `internal_error`, reported for a malformed answer of the client library.
const INTERNAL_ERROR: i32 = 4100;
/// How long a failed watch waits before waking its waiter.
const WATCH_ERROR_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);
/// Timed-out attempts of one transaction run again before it fails with the timeout.
pub const MAX_TIMED_OUT_ATTEMPTS: u32 = 8;

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
        let mut attempt = 0u32;
        let mut timed_out = 0u32;
        loop {
            attempt += 1;
            let tx = FdbTx::new(self.new_transaction()?);
            let outcome = body(tx.clone()).await;
            let (trx, marks) = tx.into_parts()?;
            let (trx, code) = match outcome {
                Ok(value) => match self.commit(trx, marks).await {
                    Ok(versionstamp) => return Ok(Committed { value, versionstamp }),
                    Err(failed) => failed,
                },
                Err(failure) => match failure.as_storage() {
                    Some(StorageError::Fdb { code, .. }) => (trx, *code),
                    _ => return Err(failure),
                },
            };
            if attempt >= self.retry.max_attempts {
                return Err(E::from(exhausted(attempt, code)));
            }
            if code == TRANSACTION_TIMED_OUT {
                // A timeout at commit may hide a landed commit: the body runs again as after
                // `commit_unknown_result` (appends recognise their own commit by its marker).
                timed_out += 1;
                if timed_out >= MAX_TIMED_OUT_ATTEMPTS {
                    let limit_ms = TRANSACTION_TIMEOUT_MS.unsigned_abs();
                    return Err(E::from(StorageError::TimedOut { attempts: timed_out, limit_ms }));
                }
                debug!(attempt, timed_out, "a transaction attempt timed out; running it again");
                tokio::time::sleep(self.retry.backoff(attempt)).await;
                continue;
            }
            // `on_error` backs off if the error is retryable and fails with it otherwise; the
            // next attempt gets a transaction (and a timeout) of its own.
            debug!(code, attempt, "a transaction attempt failed");
            back_off(trx.on_error(FdbError::from_code(code)), code, attempt, &self.retry).await?;
        }
    }

    async fn watch_any(&self, keys: Vec<Vec<u8>>) -> Result<Watch, StorageError> {
        // The watches are armed when their transaction commits: a failed commit goes through
        // `on_error` (which fails at once on an error it does not retry) like any other.
        let mut attempt = 0u32;
        let watches = loop {
            attempt += 1;
            let trx = self.db.create_trx().map_err(storage)?;
            let watches: Vec<_> = keys.iter().map(|key| trx.watch(key)).collect();
            match trx.commit().await {
                Ok(_) => break watches,
                Err(failed) if attempt < self.retry.max_attempts => {
                    let code = failed.code();
                    debug!(code, attempt, "arming a watch failed; trying again");
                    back_off(failed.on_error(), code, attempt, &self.retry).await?;
                }
                Err(failed) => return Err(exhausted(attempt, failed.code())),
            }
        };
        Ok(async move {
            let (result, _, _) = futures::future::select_all(watches).await;
            // A watch that fails (too many watches, a version the storage server does not
            // have yet, a cancelled read...) is a spurious wake-up, after a pause so that a
            // waiter re-arming at once cannot spin.
            if let Err(err) = result {
                warn!(code = err.code(), "a FoundationDB watch failed; its waiter re-reads after a pause");
                tokio::time::sleep(WATCH_ERROR_PAUSE).await;
            }
            Ok(())
        }
        .boxed())
    }
}

impl InjectFaults for FdbEngine {
    fn faults(&self) -> &Faults {
        &self.faults
    }
}
