//! The committer thread: conflict checks, versionstamps and group commit.

use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use redb::{Durability, ReadableTable};
use tokio::sync::oneshot;
use tracing::{trace, warn};

use super::conflicts::{History, Verdict, WriteSet};
use super::wal::{self, Journal, RecordBuilder};
use super::{DATA, LAST_COMMIT, META, Shared};
use crate::error::StorageError;
use crate::kv::{VERSIONSTAMP_LEN, Versionstamp};

/// Longest time between durable database checkpoints (the journal covers the rest).
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// Journal bytes that force a checkpoint (well under its preallocated size).
const CHECKPOINT_BYTES: u64 = wal::PREALLOCATED / 2;

/// Written keys remembered for conflict checks (older snapshots get "too old").
const HISTORY_KEYS: usize = 2_000_000;

/// One buffered write.
pub enum Mutation {
    /// Set a key.
    Set(Vec<u8>, Vec<u8>),
    /// Clear a key.
    Clear(Vec<u8>),
    /// Clear `[begin, end)`.
    ClearRange(Vec<u8>, Vec<u8>),
    /// Add to a little-endian i64.
    Add(Vec<u8>, i64),
    /// Set a key whose bytes at `offset` take the versionstamp.
    StampKey { key: Vec<u8>, offset: usize, value: Vec<u8> },
    /// Set a value whose bytes at `offset` take the versionstamp.
    StampValue { key: Vec<u8>, value: Vec<u8>, offset: usize },
}

/// The committer's answer: the transaction's versionstamp, or why it failed.
pub type CommitReply = Result<Versionstamp, StorageError>;

/// A transaction waiting to commit.
pub struct CommitRequest {
    pub read_version: u64,
    pub reads: Vec<(Vec<u8>, Vec<u8>)>,
    pub mutations: Vec<Mutation>,
    pub reply: oneshot::Sender<CommitReply>,
}

/// Owns the write side of the database.
pub struct Committer {
    shared: Arc<Shared>,
    requests: mpsc::Receiver<CommitRequest>,
    /// The journal making commits durable; `None` when durability is off.
    journal: Option<Journal>,
    max_group: usize,
    history: History,
    record: RecordBuilder,
    last_checkpoint: Instant,
}

impl Committer {
    pub fn new(
        shared: Arc<Shared>,
        requests: mpsc::Receiver<CommitRequest>,
        journal: Option<Journal>,
        max_group: usize,
    ) -> Self {
        let last = shared.committed.load(Ordering::SeqCst);
        Committer {
            shared,
            requests,
            journal,
            max_group,
            history: History::new(last, HISTORY_KEYS),
            record: RecordBuilder::default(),
            last_checkpoint: Instant::now(),
        }
    }

    /// Serves commit requests until every sender is gone.
    pub fn run(mut self) {
        while let Ok(first) = self.requests.recv() {
            let mut group = vec![first];
            while group.len() < self.max_group {
                match self.requests.try_recv() {
                    Ok(request) => group.push(request),
                    Err(_) => break,
                }
            }
            self.commit_group(group);
        }
        if let Err(err) = self.checkpoint() {
            warn!(%err, "final checkpoint failed; the journal will be replayed on open");
        }
    }

    fn checkpoint_due(&self) -> bool {
        self.journal.as_ref().is_some_and(|j| {
            !j.is_empty() && (self.last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL || j.len() >= CHECKPOINT_BYTES)
        })
    }

    /// Makes everything committed durable in the database itself and restarts the journal.
    fn checkpoint(&mut self) -> Result<(), StorageError> {
        let mut write = self.shared.db.begin_write().map_err(StorageError::engine)?;
        write.set_durability(Durability::Immediate).map_err(StorageError::engine)?;
        {
            let mut meta = write.open_table(META).map_err(StorageError::engine)?;
            meta.insert(LAST_COMMIT, self.shared.committed.load(Ordering::SeqCst)).map_err(StorageError::engine)?;
        }
        write.commit().map_err(StorageError::engine)?;
        if let Some(journal) = &mut self.journal {
            journal.reset();
        }
        self.last_checkpoint = Instant::now();
        Ok(())
    }

    fn spurious_conflict(&self) -> bool {
        let ppm = self.shared.spurious_conflict_ppm.load(Ordering::Relaxed);
        ppm > 0 && rand::random_range(0..1_000_000u64) < ppm
    }

    /// Checks, applies and durably commits a group; then answers every request in it.
    fn commit_group(&mut self, group: Vec<CommitRequest>) {
        let version = self.shared.committed.load(Ordering::SeqCst) + 1;
        let mut pending = WriteSet::default();
        let mut accepted = Vec::with_capacity(group.len());
        let checkpoint = self.checkpoint_due();
        self.record.clear();
        let result = (|| -> Result<(), StorageError> {
            let mut writes = Vec::new();
            let mut write = self.shared.db.begin_write().map_err(StorageError::engine)?;
            let durability = if checkpoint { Durability::Immediate } else { Durability::None };
            write.set_durability(durability).map_err(StorageError::engine)?;
            {
                let mut table = write.open_table(DATA).map_err(StorageError::engine)?;
                for request in group {
                    let verdict = if self.spurious_conflict() {
                        Verdict::Conflict
                    } else {
                        self.history.check(request.read_version, &request.reads, &pending)
                    };
                    if verdict != Verdict::Clear {
                        self.shared.stats.conflicts.fetch_add(1, Ordering::Relaxed);
                        let _ = request.reply.send(Err(StorageError::Retryable(format!("{verdict:?}"))));
                        continue;
                    }
                    let stamp = Versionstamp::new(version, accepted.len() as u16);
                    resolve(request.mutations, stamp, &mut pending, &mut writes)?;
                    accepted.push((request.reply, stamp));
                }
                apply(&mut table, std::mem::take(&mut writes), &mut self.record)?;
                let mut meta = write.open_table(META).map_err(StorageError::engine)?;
                meta.insert(LAST_COMMIT, version).map_err(StorageError::engine)?;
            }
            if accepted.is_empty() {
                write.abort().map_err(StorageError::engine)?;
                return Ok(());
            }
            if !checkpoint && let Some(journal) = &mut self.journal {
                // Durable from here: acknowledged once visible below.
                journal.append(version, &self.record)?;
            }
            write.commit().map_err(StorageError::engine)?;
            if checkpoint {
                if let Some(journal) = &mut self.journal {
                    journal.reset();
                }
                self.last_checkpoint = Instant::now();
            }
            Ok(())
        })();
        match result {
            Ok(()) if !accepted.is_empty() => {
                self.shared.committed.store(version, Ordering::SeqCst);
                self.history.push(version, pending);
                self.shared.stats.commits.fetch_add(1, Ordering::Relaxed);
                self.shared.stats.transactions.fetch_add(accepted.len() as u64, Ordering::Relaxed);
                trace!(version, transactions = accepted.len(), "group committed");
                self.shared.changes.send_replace(version);
                for (reply, stamp) in accepted {
                    let _ = reply.send(Ok(stamp));
                }
            }
            Ok(()) => {}
            Err(err) => {
                warn!(%err, "group commit failed");
                for (reply, _) in accepted {
                    let _ = reply.send(Err(StorageError::Engine(format!("commit failed: {err}"))));
                }
            }
        }
    }
}

fn stamped(mut bytes: Vec<u8>, offset: usize, stamp: Versionstamp) -> Result<Vec<u8>, StorageError> {
    let slot = bytes
        .get_mut(offset..offset + VERSIONSTAMP_LEN)
        .ok_or_else(|| StorageError::Engine(format!("versionstamp offset {offset} outside the bytes")))?;
    slot.copy_from_slice(&stamp.0);
    Ok(bytes)
}

/// A mutation with its versionstamp filled in.
enum Resolved {
    Set(Vec<u8>, Vec<u8>),
    Clear(Vec<u8>),
    ClearRange(Vec<u8>, Vec<u8>),
    Add(Vec<u8>, i64),
}

impl Resolved {
    fn key(&self) -> &[u8] {
        match self {
            Resolved::Set(k, _) | Resolved::Clear(k) | Resolved::ClearRange(k, _) | Resolved::Add(k, _) => k,
        }
    }
}

/// Fills in `stamp` and records the written keys for conflict checks.
fn resolve(
    mutations: Vec<Mutation>,
    stamp: Versionstamp,
    written: &mut WriteSet,
    out: &mut Vec<Resolved>,
) -> Result<(), StorageError> {
    for mutation in mutations {
        let resolved = match mutation {
            Mutation::Set(key, value) => Resolved::Set(key, value),
            Mutation::Clear(key) => Resolved::Clear(key),
            Mutation::ClearRange(begin, end) => {
                written.range(begin.clone(), end.clone());
                out.push(Resolved::ClearRange(begin, end));
                continue;
            }
            Mutation::Add(key, delta) => Resolved::Add(key, delta),
            Mutation::StampKey { key, offset, value } => Resolved::Set(stamped(key, offset, stamp)?, value),
            Mutation::StampValue { key, value, offset } => Resolved::Set(key, stamped(value, offset, stamp)?),
        };
        written.key(resolved.key().to_vec());
        out.push(resolved);
    }
    Ok(())
}

/// Applies a group's writes in key order (in call order when ranges are cleared, since those
/// do not commute with other writes) and records them in the journal record.
fn apply(
    table: &mut redb::Table<'_, &'static [u8], &'static [u8]>,
    mut writes: Vec<Resolved>,
    record: &mut RecordBuilder,
) -> Result<(), StorageError> {
    let engine = StorageError::engine;
    if !writes.iter().any(|w| matches!(w, Resolved::ClearRange(..))) {
        // Stable: writes to one key keep their order. Sorted inserts walk the tree once.
        writes.sort_by(|a, b| a.key().cmp(b.key()));
    }
    for write in writes {
        match write {
            Resolved::Set(key, value) => {
                table.insert(key.as_slice(), value.as_slice()).map_err(engine)?;
                record.push(wal::SET, &key, &value);
            }
            Resolved::Clear(key) => {
                table.remove(key.as_slice()).map_err(engine)?;
                record.push(wal::CLEAR, &key, &[]);
            }
            Resolved::ClearRange(begin, end) => {
                if begin < end {
                    table.retain_in::<&[u8], _>(begin.as_slice()..end.as_slice(), |_, _| false).map_err(engine)?;
                }
                record.push(wal::CLEAR_RANGE, &begin, &end);
            }
            Resolved::Add(key, delta) => {
                let current = table.get(key.as_slice()).map_err(engine)?.map_or(0i64, |v| {
                    let bytes = v.value();
                    let mut le = [0u8; 8];
                    let n = bytes.len().min(8);
                    le[..n].copy_from_slice(&bytes[..n]);
                    i64::from_le_bytes(le)
                });
                let value = current.wrapping_add(delta).to_le_bytes();
                table.insert(key.as_slice(), value.as_slice()).map_err(engine)?;
                record.push(wal::SET, &key, &value);
            }
        }
    }
    Ok(())
}

/// Applies journal records found on open to the database, durably.
pub fn replay(db: &redb::Database, records: Vec<wal::Replayed>) -> Result<Option<u64>, StorageError> {
    let Some(last) = records.last().map(|r| r.0) else { return Ok(None) };
    let engine = |e: redb::Error| StorageError::engine(e);
    let mut write = db.begin_write().map_err(|e| engine(e.into()))?;
    write.set_durability(Durability::Immediate).map_err(|e| engine(e.into()))?;
    {
        let mut table = write.open_table(DATA).map_err(|e| engine(e.into()))?;
        for (_, ops) in records {
            for op in ops {
                match op {
                    wal::Op::Set(key, value) => {
                        table.insert(key.as_slice(), value.as_slice()).map_err(|e| engine(e.into()))?;
                    }
                    wal::Op::Clear(key) => {
                        table.remove(key.as_slice()).map_err(|e| engine(e.into()))?;
                    }
                    wal::Op::ClearRange(begin, end) if begin < end => {
                        table
                            .retain_in::<&[u8], _>(begin.as_slice()..end.as_slice(), |_, _| false)
                            .map_err(|e| engine(e.into()))?;
                    }
                    wal::Op::ClearRange(..) => {}
                }
            }
        }
        let mut meta = write.open_table(META).map_err(|e| engine(e.into()))?;
        meta.insert(LAST_COMMIT, last).map_err(|e| engine(e.into()))?;
    }
    write.commit().map_err(|e| engine(e.into()))?;
    Ok(Some(last))
}
