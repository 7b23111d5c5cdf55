//! The embedded engine: one directory, no server, durable on acknowledgement.
//!
//! Storage is a [`redb`] database file (copy-on-write B-tree, crash-safe commits). On top of
//! it this module gives FoundationDB's transaction semantics:
//! - **Optimistic concurrency.** A transaction reads from a consistent snapshot and buffers
//!   its writes. At commit its read ranges are checked against the keys written by every
//!   transaction committed since its snapshot (the [`conflicts`] history); any overlap is a
//!   conflict and the body is run again. Unrelated transactions never conflict.
//! - **Group commit.** A sequencer thread takes every transaction waiting to commit, checks
//!   and stamps them in order, and makes the group durable with one journal append and one
//!   `fdatasync` ([`wal`]); an applier thread then writes the group into the database
//!   without a sync and makes it visible; only then is each caller acknowledged. The two
//!   stages overlap (group *k* is applied while *k + 1* is sequenced). The database itself is made durable every second (a
//!   checkpoint), after which the journal starts over; a crash replays it on open.
//! - **Versionstamps** are (commit number, order in the commit), assigned by the committer,
//!   so they are gapless per commit, increase in commit order and become visible atomically.

mod applier;
mod committer;
mod conflicts;
mod tx;
mod wal;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use futures::FutureExt;
use redb::{ReadableDatabase, TableDefinition};
use tokio::sync::watch;

use crate::error::StorageError;
use crate::kv::{Committed, KvEngine, RetryPolicy, TxError, Watch};
use committer::{CommitRequest, Committer};
pub use tx::EmbeddedTx;

/// The single table holding every key.
pub(crate) const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("data");
/// Engine bookkeeping (the last commit number).
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(crate) const LAST_COMMIT: &str = "last_commit";

/// Name of the database file inside the engine's directory.
pub const DATABASE_FILE: &str = "fairway.redb";
/// Name of the write-ahead journal inside the engine's directory.
pub const JOURNAL_FILE: &str = "fairway.journal";

/// Settings of the embedded engine.
#[derive(Clone, Debug)]
pub struct EmbeddedOptions {
    /// Page cache size in bytes.
    pub cache_bytes: usize,
    /// Make each commit durable (fsync) before acknowledging it. Turn off only for
    /// throwaway stores: an acknowledged append may then be lost on power failure.
    pub durable: bool,
    /// Retry policy of transactions.
    pub retry: RetryPolicy,
    /// Test hook: probability in `[0, 1]` that a commit is refused with a spurious conflict,
    /// so that every retry path runs. Keep at 0 outside tests.
    pub spurious_conflict_rate: f64,
    /// Most transactions the committer packs into one durable commit.
    pub max_group: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            cache_bytes: 1024 * 1024 * 1024,
            durable: true,
            retry: RetryPolicy::default(),
            spurious_conflict_rate: 0.0,
            max_group: 4096,
        }
    }
}

/// Shared by the engine handle, its transactions and the committer.
pub(crate) struct Shared {
    pub(crate) db: redb::Database,
    /// The last commit number made visible.
    pub(crate) committed: AtomicU64,
    pub(crate) closed: AtomicBool,
    /// Set when a commit failed after being journaled: its outcome is unknown until the
    /// journal is replayed, so the engine refuses further transactions.
    pub(crate) poisoned: AtomicBool,
    pub(crate) changes: watch::Sender<u64>,
    pub(crate) spurious_conflict_ppm: AtomicU64,
    pub(crate) stats: Stats,
}

impl Shared {
    /// Stops accepting transactions after a failure that left a commit's outcome unknown.
    pub(crate) fn poison(&self) {
        self.poisoned.store(true, Ordering::SeqCst);
        self.closed.store(true, Ordering::SeqCst);
        self.changes.send_modify(|_| {});
    }
}

/// Counters of the committer, for benchmarks and tests.
#[derive(Default, Debug)]
pub struct Stats {
    /// Durable commits made (each one fsync).
    pub commits: AtomicU64,
    /// Transactions committed.
    pub transactions: AtomicU64,
    /// Transactions refused for a conflict (real or injected).
    pub conflicts: AtomicU64,
}

/// The embedded storage engine. See the [module documentation](self).
pub struct EmbeddedEngine {
    shared: Arc<Shared>,
    submit: Mutex<Option<mpsc::Sender<CommitRequest>>>,
    committer: Mutex<Option<JoinHandle<()>>>,
    retry: RetryPolicy,
    dir: PathBuf,
}

impl EmbeddedEngine {
    /// Opens the engine in `dir`, creating the directory and its database if needed.
    /// Recovers from a crash (the last durable commit is kept, nothing after it).
    pub fn open(dir: impl AsRef<Path>, options: EmbeddedOptions) -> Result<Self, StorageError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| StorageError::Engine(format!("create {}: {e}", dir.display())))?;
        let db = redb::Database::builder()
            .set_cache_size(options.cache_bytes)
            .create(dir.join(DATABASE_FILE))
            .map_err(|e| StorageError::Engine(format!("open {}: {e}", dir.display())))?;
        let mut last_commit = read_last_commit(&db)?;
        let journal = if options.durable {
            let (journal, records) = wal::Journal::open(&dir.join(JOURNAL_FILE), last_commit)?;
            if let Some(replayed) = applier::replay(&db, records)? {
                tracing::info!(from = last_commit, to = replayed, "replayed the journal");
                last_commit = replayed;
            }
            Some(journal)
        } else {
            None
        };
        let shared = Arc::new(Shared {
            db,
            committed: AtomicU64::new(last_commit),
            closed: AtomicBool::new(false),
            poisoned: AtomicBool::new(false),
            changes: watch::channel(last_commit).0,
            spurious_conflict_ppm: AtomicU64::new((options.spurious_conflict_rate.clamp(0.0, 1.0) * 1e6) as u64),
            stats: Stats::default(),
        });
        let (submit, requests) = mpsc::channel();
        let committer = Committer::new(shared.clone(), requests, journal, options.max_group.clamp(1, 65_535))?;
        let handle = std::thread::Builder::new()
            .name("fairway-committer".into())
            .spawn(move || committer.run())
            .map_err(StorageError::engine)?;
        Ok(EmbeddedEngine {
            shared,
            submit: Mutex::new(Some(submit)),
            committer: Mutex::new(Some(handle)),
            retry: options.retry,
            dir,
        })
    }

    /// The directory the engine lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Committer counters.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Space accounting of the database file: `(stored, metadata, fragmented)` bytes.
    pub fn space(&self) -> Result<(u64, u64, u64), StorageError> {
        let write = self.shared.db.begin_write().map_err(StorageError::engine)?;
        let stats = write.stats().map_err(StorageError::engine)?;
        let out = (stats.stored_bytes(), stats.metadata_bytes(), stats.fragmented_bytes());
        write.abort().map_err(StorageError::engine)?;
        Ok(out)
    }

    /// Changes the spurious conflict rate (test hook; see [`EmbeddedOptions`]).
    pub fn set_spurious_conflict_rate(&self, rate: f64) {
        self.shared.spurious_conflict_ppm.store((rate.clamp(0.0, 1.0) * 1e6) as u64, Ordering::Relaxed);
    }

    /// Stops accepting transactions, lets the committer finish what it holds, and waits
    /// for it. Later calls fail with a closed error. Also done on drop.
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        drop(self.submit.lock().expect("submit lock").take());
        if let Some(handle) = self.committer.lock().expect("committer lock").take() {
            let _ = handle.join();
        }
        self.shared.changes.send_modify(|_| {});
    }

    fn begin(&self) -> Result<EmbeddedTx, StorageError> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Err(StorageError::Closed);
        }
        EmbeddedTx::begin(self.shared.clone())
    }

    async fn commit(&self, tx: &EmbeddedTx) -> Result<Option<crate::kv::Versionstamp>, StorageError> {
        let Some(request) = tx.take_commit_request() else { return Ok(None) };
        let (request, reply) = request;
        let sender = self.submit.lock().expect("submit lock").clone().ok_or(StorageError::Closed)?;
        sender.send(request).map_err(|_| StorageError::Closed)?;
        reply.await.map_err(|_| StorageError::Closed)?.map(Some)
    }
}

impl Drop for EmbeddedEngine {
    fn drop(&mut self) {
        self.close();
    }
}

fn read_last_commit(db: &redb::Database) -> Result<u64, StorageError> {
    let read = db.begin_read().map_err(StorageError::engine)?;
    match read.open_table(META) {
        Ok(table) => Ok(table.get(LAST_COMMIT).map_err(StorageError::engine)?.map_or(0, |v| v.value())),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(StorageError::engine(e)),
    }
}

impl KvEngine for EmbeddedEngine {
    type Tx = EmbeddedTx;

    async fn transact<T, E, F, Fut>(&self, mut body: F) -> Result<Committed<T>, E>
    where
        T: Send,
        E: TxError,
        F: FnMut(Self::Tx) -> Fut + Send,
        Fut: std::future::Future<Output = Result<T, E>> + Send,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let tx = self.begin()?;
            let outcome: Result<T, E> = match body(tx.clone()).await {
                Ok(value) => match self.commit(&tx).await {
                    Ok(versionstamp) => return Ok(Committed { value, versionstamp }),
                    Err(err) => Err(E::from(err)),
                },
                Err(err) => Err(err),
            };
            let err = outcome.err().expect("successful attempts returned above");
            let last = match err.as_storage() {
                Some(StorageError::Retryable(reason)) => reason.clone(),
                _ => return Err(err),
            };
            if attempt >= self.retry.max_attempts {
                return Err(E::from(StorageError::RetriesExhausted { attempts: attempt, last }));
            }
            tokio::time::sleep(self.retry.backoff(attempt)).await;
        }
    }

    async fn watch_any(&self, _keys: Vec<Vec<u8>>) -> Result<Watch, StorageError> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Err(StorageError::Closed);
        }
        let mut changes = self.shared.changes.subscribe();
        changes.mark_unchanged();
        let shared = self.shared.clone();
        Ok(async move {
            let changed = changes.changed().await;
            if changed.is_err() || shared.closed.load(Ordering::SeqCst) {
                return Err(StorageError::Closed);
            }
            Ok(())
        }
        .boxed())
    }
}
