//! The embedded engine: one directory, no server, durable on acknowledgement.
//!
//! Storage is a [`redb`] database file (copy-on-write B-tree, crash-safe commits). On top of
//! it this module gives FoundationDB's transaction semantics:
//! - **Optimistic concurrency.** A transaction reads from a consistent snapshot and buffers
//!   its writes. At commit its read ranges are checked against the keys written by every
//!   transaction committed since its snapshot (the `conflicts` history); any overlap is a
//!   conflict and the body is run again. Unrelated transactions never conflict.
//! - **Group commit.** A sequencer thread takes every transaction waiting to commit, checks
//!   and stamps them in order, and makes the group durable with one journal append and one
//!   `fdatasync` (module `wal`); an applier thread then writes the group into the database
//!   without a sync and makes it visible; only then is each caller acknowledged. The two
//!   stages overlap (group *k* is applied while *k + 1* is sequenced). The database itself is made durable every second (a
//!   checkpoint), after which the journal starts over; a crash replays it on open.
//! - **Versionstamps** are (commit number, order in the commit), assigned by the committer,
//!   so they are gapless per commit, increase in commit order and become visible atomically.
//! - **Watches are per key.** [`KvEngine::watch_any`] fires when a commit writes one of the
//!   watched keys (set, clear, a cleared range covering it, an atomic add, a versionstamped
//!   key or value), once that commit is visible; commits to other keys wake nobody (module
//!   `watches`).
//! - **A full disk stops writes, not the engine.** The journal is preallocated and a space
//!   reserve file is kept beside the database (module `space`); when the disk fills up, the
//!   reserve lets the database finish what it was writing, then writes are refused with
//!   [`StorageError::DiskFull`] while reads go on, and they resume by themselves once space
//!   is freed. [`EmbeddedEngine::health`] says why writes are refused.

mod applier;
mod committer;
mod conflicts;
mod space;
mod tx;
mod wal;
mod watches;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use redb::{ReadableDatabase, TableDefinition};

use crate::error::{StorageError, human_bytes};
use crate::kv::faults::{Faults, InjectFaults};
use crate::kv::{Committed, KvEngine, RetryPolicy, TxError, Watch};
use committer::{CommitRequest, Committer};
pub use space::{DEFAULT_RESERVE, RESERVE_FILE, bytes_on_disk};
use space::{Reserve, ReservedFile, Volume};
pub use tx::EmbeddedTx;
pub use wal::PREALLOCATED as JOURNAL_BYTES;
use watches::Watches;

/// The single table holding every key.
pub(crate) const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("data");
/// Engine bookkeeping (the last commit number).
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(crate) const LAST_COMMIT: &str = "last_commit";

/// Name of the database file inside the engine's directory.
pub const DATABASE_FILE: &str = "fairway.redb";
/// Name of the write-ahead journal inside the engine's directory.
pub const JOURNAL_FILE: &str = "fairway.journal";
/// Space a new database file needs when the engine opens.
pub const NEW_DATABASE_BYTES: u64 = 1024 * 1024;

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
    /// Test hook: probability in `[0, 1]` that a commit that landed is reported as of
    /// unknown result and its transaction run again, as FoundationDB may do
    /// (`commit_unknown_result`). Keep at 0 outside tests.
    pub unknown_result_rate: f64,
    /// Most transactions the committer packs into one durable commit.
    pub max_group: usize,
    /// Bytes of disk kept in reserve ([`RESERVE_FILE`]) so that a full disk stops writes
    /// cleanly instead of failing the database midway (see the [module documentation](self)).
    /// 0 turns the reserve off: a full disk then stops the engine until it is restarted.
    pub reserve_bytes: u64,
    /// Longest a group of background work alone (see
    /// [`KvTransaction::set_background`](crate::kv::KvTransaction::set_background)) waits
    /// for a command's commit to share its sync, and only while commands are committing
    /// (one committed within ten times this). Zero commits background work at once.
    pub background_wait: Duration,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            cache_bytes: 1024 * 1024 * 1024,
            durable: true,
            retry: RetryPolicy::default(),
            spurious_conflict_rate: 0.0,
            unknown_result_rate: 0.0,
            max_group: 4096,
            reserve_bytes: DEFAULT_RESERVE,
            background_wait: Duration::from_millis(2),
        }
    }
}

/// Shared by the engine handle, its transactions and the committer.
pub(crate) struct Shared {
    pub(crate) db: redb::Database,
    /// The last commit number made visible.
    pub(crate) committed: AtomicU64,
    pub(crate) closed: AtomicBool,
    /// Whether commits are accepted; reads are served in every state.
    pub(crate) writes: Mutex<WriteState>,
    pub(crate) volume: Volume,
    pub(crate) reserve: Arc<Reserve>,
    /// Watches on keys, fired by the commits that write them.
    pub(crate) watches: Arc<Watches>,
    pub(crate) spurious_conflict_ppm: AtomicU64,
    /// Commits reported as of unknown result, per million (a test hook).
    unknown_result_ppm: u64,
    pub(crate) stats: Stats,
}

/// Whether the engine accepts commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WriteState {
    /// Commits are accepted.
    Accepting,
    /// The disk is full: commits are refused until the space reserve can be filled again.
    DiskFull {
        /// Bytes free when last measured.
        available: u64,
    },
    /// A commit failed in a way that needs a restart (its outcome is unknown until the
    /// journal is replayed).
    Failed(String),
}

impl Shared {
    /// Refuses commits for good after a failure that left a commit's outcome unknown; the
    /// journal replayed on the next open settles it.
    pub(crate) fn poison(&self, reason: String) {
        {
            let mut writes = self.writes.lock().expect("write state lock");
            if !matches!(*writes, WriteState::Failed(_)) {
                *writes = WriteState::Failed(reason);
            }
        }
        self.watches.wake_all();
    }

    /// The write state.
    pub(crate) fn write_state(&self) -> WriteState {
        self.writes.lock().expect("write state lock").clone()
    }

    /// Sets the write state, unless the engine failed (which only a restart undoes).
    pub(crate) fn set_write_state(&self, state: WriteState) {
        let mut writes = self.writes.lock().expect("write state lock");
        if !matches!(*writes, WriteState::Failed(_)) {
            *writes = state;
        }
    }

    /// Why commits are refused now, if they are.
    pub(crate) fn refusal(&self) -> Option<StorageError> {
        match self.write_state() {
            WriteState::Accepting => None,
            WriteState::DiskFull { available } => Some(self.volume.disk_full(available, self.reserve.target())),
            WriteState::Failed(reason) => Some(StorageError::Engine(format!(
                "writes are refused since a storage failure ({reason}); restart the process: the journal \
                 holding every acknowledged commit is replayed on open"
            ))),
        }
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
    /// Microseconds spent writing and syncing journal records (one `fdatasync` per durable
    /// commit): divided by `commits`, the mean fsync latency.
    pub journal_micros: AtomicU64,
}

/// The embedded storage engine. See the [module documentation](self).
pub struct EmbeddedEngine {
    shared: Arc<Shared>,
    submit: Mutex<Option<mpsc::Sender<CommitRequest>>>,
    committer: Mutex<Option<JoinHandle<()>>>,
    retry: RetryPolicy,
    dir: PathBuf,
    /// Commit faults planned by tests.
    faults: Faults,
}

impl EmbeddedEngine {
    /// An engine in `dir` that syncs nothing, for unit tests that do not crash it.
    #[cfg(test)]
    pub(crate) fn volatile(dir: &Path) -> Self {
        EmbeddedEngine::open(dir, EmbeddedOptions { durable: false, ..EmbeddedOptions::default() })
            .expect("the embedded engine opens")
    }

    /// The database file inside the engine's directory.
    pub const DATABASE_FILE: &str = DATABASE_FILE;
    /// The write-ahead journal inside the engine's directory.
    pub const JOURNAL_FILE: &str = JOURNAL_FILE;

    /// Bytes of every file under `dir` (the store's database, journal and space reserve when
    /// `dir` is a data directory); unreadable entries count as 0.
    pub fn bytes_on_disk(dir: &Path) -> u64 {
        bytes_on_disk(dir)
    }

    /// Opens the engine in `dir`, creating the directory and its database if needed.
    /// Recovers from a crash (the last durable commit is kept, nothing after it).
    pub fn open(dir: impl AsRef<Path>, options: EmbeddedOptions) -> Result<Self, StorageError> {
        let dir = dir.as_ref().to_path_buf();
        let volume = Volume::of(&dir);
        let fresh = check_space(&volume, &options)?;
        let mut created = Created::default();
        let opened = Self::open_files(&dir, volume, options, fresh, &mut created);
        if opened.is_err() {
            created.remove();
        }
        opened
    }

    /// Opens or creates the files; `created` collects what did not exist before.
    fn open_files(
        dir: &Path,
        volume: Volume,
        options: EmbeddedOptions,
        fresh: bool,
        created: &mut Created,
    ) -> Result<Self, StorageError> {
        let context = |what: &str, path: &Path| {
            let what = format!("{what} {}", path.display());
            move |e: std::io::Error| StorageError::Engine(format!("{what}: {e}"))
        };
        created.dir(dir).map_err(context("create", dir))?;
        let reserve_path = dir.join(RESERVE_FILE);
        created.file(&reserve_path);
        let reserve =
            Arc::new(Reserve::open(&reserve_path, options.reserve_bytes).map_err(context("open", &reserve_path))?);
        let db_path = dir.join(DATABASE_FILE);
        created.file(&db_path);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&db_path)
            .map_err(context("open", &db_path))?;
        let db = redb::Database::builder()
            .set_cache_size(options.cache_bytes)
            .create_with_backend(ReservedFile::new(file, reserve.clone())?)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => StorageError::Locked { dir: dir.to_path_buf() },
                e => StorageError::Engine(format!("open {}: {e}", dir.display())),
            })?;
        let mut last_commit = read_last_commit(&db)?;
        let journal = if options.durable {
            let journal_path = dir.join(JOURNAL_FILE);
            created.file(&journal_path);
            let (journal, records) = wal::Journal::open(&journal_path, last_commit).map_err(|e| {
                if space::is_disk_full(&e) {
                    let available = volume.available().unwrap_or(0);
                    volume.not_enough(
                        available,
                        wal::PREALLOCATED,
                        format!("{} journal", human_bytes(wal::PREALLOCATED)),
                    )
                } else {
                    StorageError::Engine(format!("{}: {e}", journal_path.display()))
                }
            })?;
            let replayed = applier::replay(&db, records).map_err(|e| {
                if reserve.exhausted() {
                    StorageError::Engine(format!(
                        "replaying the journal failed because the disk holding {} is full ({e}); free some \
                         space and open the store again: the journal still holds every acknowledged commit",
                        dir.display()
                    ))
                } else {
                    e
                }
            })?;
            if let Some(replayed) = replayed {
                tracing::info!(from = last_commit, to = replayed, "replayed the journal");
                last_commit = replayed;
            }
            Some(journal)
        } else {
            None
        };
        let available = volume.available().unwrap_or(u64::MAX);
        let writes = if reserve.fill(available).map_err(context("fill", &reserve_path))? {
            WriteState::Accepting
        } else if fresh {
            let what = format!("{} space reserve", human_bytes(reserve.target()));
            return Err(volume.not_enough(available, reserve.missing().unwrap_or(reserve.target()), what));
        } else {
            tracing::warn!(dir = %dir.display(), "the disk is full: the store opens for reads, writes are refused");
            WriteState::DiskFull { available }
        };
        let shared = Arc::new(Shared {
            db,
            committed: AtomicU64::new(last_commit),
            closed: AtomicBool::new(false),
            writes: Mutex::new(writes),
            volume,
            reserve,
            watches: Arc::default(),
            spurious_conflict_ppm: AtomicU64::new((options.spurious_conflict_rate.clamp(0.0, 1.0) * 1e6) as u64),
            unknown_result_ppm: (options.unknown_result_rate.clamp(0.0, 1.0) * 1e6) as u64,
            stats: Stats::default(),
        });
        let (submit, requests) = mpsc::channel();
        let max_group = options.max_group.clamp(1, 65_535);
        let committer = Committer::new(shared.clone(), requests, journal, max_group, options.background_wait)?;
        let handle = std::thread::Builder::new()
            .name("fairway-committer".into())
            .spawn(move || committer.run())
            .map_err(StorageError::engine)?;
        Ok(EmbeddedEngine {
            shared,
            submit: Mutex::new(Some(submit)),
            committer: Mutex::new(Some(handle)),
            retry: options.retry,
            dir: dir.to_path_buf(),
            faults: Faults::default(),
        })
    }

    /// Whether the engine works fully: `Err` says why commits are refused (e.g.
    /// [`StorageError::DiskFull`]) or that it is closed. Reads are served in every state
    /// but the closed one.
    pub fn health(&self) -> Result<(), StorageError> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Err(StorageError::Closed);
        }
        self.shared.refusal().map_or(Ok(()), Err)
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

    /// Whether to report the commit that just landed as of unknown result (test hook).
    fn reports_unknown_result(&self) -> bool {
        let ppm = self.shared.unknown_result_ppm;
        ppm > 0 && rand::random_range(0..1_000_000) < ppm
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
        self.shared.watches.close();
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

impl InjectFaults for EmbeddedEngine {
    fn faults(&self) -> &Faults {
        &self.faults
    }
}

impl Drop for EmbeddedEngine {
    fn drop(&mut self) {
        self.close();
    }
}

/// Checks that the filesystem has room for the files a new store preallocates; returns
/// whether the store is new (its journal is not preallocated yet). An existing store opens
/// whatever the free space: on a full disk it serves reads and refuses writes.
fn check_space(volume: &Volume, options: &EmbeddedOptions) -> Result<bool, StorageError> {
    let size = |name: &str| std::fs::metadata(volume.dir().join(name)).map_or(0, |m| m.len());
    let journal = if options.durable { wal::PREALLOCATED.saturating_sub(size(JOURNAL_FILE)) } else { 0 };
    let database = if volume.dir().join(DATABASE_FILE).exists() { 0 } else { NEW_DATABASE_BYTES };
    let fresh = journal > 0 || database > 0;
    if !fresh {
        return Ok(false);
    }
    let reserve = options.reserve_bytes.saturating_sub(size(RESERVE_FILE));
    let needed = journal + reserve + database;
    let available = volume.available().unwrap_or(u64::MAX);
    if available < needed {
        let parts = [(journal, "journal"), (reserve, "space reserve"), (database, "database")];
        let what = parts
            .iter()
            .filter(|(bytes, _)| *bytes > 0)
            .map(|(bytes, name)| format!("{} {name}", human_bytes(*bytes)))
            .collect::<Vec<_>>()
            .join(" + ");
        return Err(volume.not_enough(available, needed, what));
    }
    Ok(true)
}

/// What an open created, removed again if the open fails, so that a failed open leaves
/// nothing behind.
#[derive(Default)]
struct Created {
    dirs: Vec<PathBuf>,
    files: Vec<PathBuf>,
}

impl Created {
    /// Creates `dir` and its missing parents, remembering them.
    fn dir(&mut self, dir: &Path) -> std::io::Result<()> {
        let absolute = std::path::absolute(dir)?;
        self.dirs.extend(absolute.ancestors().take_while(|a| !a.exists()).map(Path::to_path_buf));
        std::fs::create_dir_all(dir)
    }

    /// Remembers `path` if it does not exist yet (it is about to be created).
    fn file(&mut self, path: &Path) {
        if !path.exists() {
            self.files.push(path.to_path_buf());
        }
    }

    /// Removes what was created, deepest first.
    fn remove(&self) {
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
        for dir in &self.dirs {
            let _ = std::fs::remove_dir(dir);
        }
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
                Ok(value) => {
                    // Only a commit that writes is faulted, as on FoundationDB.
                    let fault = if tx.writes() { self.faults.next_commit() } else { None };
                    match fault {
                        Some(fault) if !fault.landed => Err(E::from(StorageError::Retryable(format!(
                            "injected foundationdb error {} instead of the commit",
                            fault.code
                        )))),
                        _ => match self.commit(&tx).await {
                            // Only a commit that wrote can be of unknown result, as on FoundationDB.
                            Ok(Some(_)) if fault.is_some() || self.reports_unknown_result() => Err(E::from(
                                StorageError::Retryable("commit result unknown (injected: the commit landed)".into()),
                            )),
                            Ok(versionstamp) => return Ok(Committed { value, versionstamp }),
                            Err(err) => Err(E::from(err)),
                        },
                    }
                }
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

    fn commit_result_may_be_unknown(&self) -> bool {
        self.shared.unknown_result_ppm > 0 || self.faults.may_land()
    }

    /// 8,192: a transaction here has no time or size limit, and a view catching up writes
    /// each document it changes once per batch (1,024 gave 300k events/s catching up the
    /// courses list, 8,192 gave 400k; 16,384 no more).
    fn bulk_events_per_transaction(&self) -> usize {
        8192
    }

    fn health(&self) -> Result<(), StorageError> {
        EmbeddedEngine::health(self)
    }

    async fn watch_any(&self, keys: Vec<Vec<u8>>) -> Result<Watch, StorageError> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Err(StorageError::Closed);
        }
        self.shared.watches.arm(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_failed_open_created_is_removed_and_nothing_else() {
        let parent = tempfile::tempdir().unwrap();
        std::fs::write(parent.path().join("kept"), b"").unwrap();
        let dir = parent.path().join("a").join("b");
        let mut created = Created::default();
        created.dir(&dir).unwrap();
        created.file(&dir.join(JOURNAL_FILE));
        std::fs::write(dir.join(JOURNAL_FILE), b"partial").unwrap();
        created.file(&parent.path().join("kept"));
        created.remove();
        assert!(!parent.path().join("a").exists());
        assert!(parent.path().join("kept").exists());
    }
}
