//! The applier thread: writes sequenced groups into the database, makes them visible and
//! acknowledges them; also replays the journal on open.

use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};

use redb::{Durability, ReadableTable};
use tokio::sync::oneshot;
use tracing::{trace, warn};

use super::committer::CommitReply;
use super::wal::{self, RecordBuilder};
use super::{DATA, LAST_COMMIT, META, Shared};
use crate::error::StorageError;
use crate::kv::{Versionstamp, little_endian_i64};

/// A write with its versionstamp filled in.
pub enum Resolved {
    /// Set a key.
    Set(Vec<u8>, Vec<u8>),
    /// Remove a key.
    Clear(Vec<u8>),
    /// Remove `[begin, end)`.
    ClearRange(Vec<u8>, Vec<u8>),
    /// Add to the little-endian `i64` at a key.
    Add(Vec<u8>, i64),
}

impl Resolved {
    /// The key written (the start of a cleared range).
    pub fn key(&self) -> &[u8] {
        match self {
            Resolved::Set(k, _) | Resolved::Clear(k) | Resolved::ClearRange(k, _) | Resolved::Add(k, _) => k,
        }
    }

    /// Adds this write to a journal record.
    pub fn record(&self, record: &mut RecordBuilder) {
        match self {
            Resolved::Set(k, v) => record.push(wal::SET, k, v),
            Resolved::Clear(k) => record.push(wal::CLEAR, k, &[]),
            Resolved::ClearRange(b, e) => record.push(wal::CLEAR_RANGE, b, e),
            Resolved::Add(k, delta) => record.push(wal::ADD, k, &delta.to_le_bytes()),
        }
    }
}

/// A sequenced group: its writes in order and the callers to answer.
pub struct Group {
    pub version: u64,
    pub writes: Vec<Resolved>,
    pub replies: Vec<(oneshot::Sender<CommitReply>, Versionstamp)>,
    /// Commit durably (a checkpoint).
    pub durable: bool,
    /// `Some`: report the outcome on this channel once applied.
    pub done: Option<mpsc::Sender<Result<(), StorageError>>>,
}

/// Owns the write side of the database.
pub struct Applier {
    shared: Arc<Shared>,
    groups: mpsc::Receiver<Group>,
}

impl Applier {
    pub fn new(shared: Arc<Shared>, groups: mpsc::Receiver<Group>) -> Self {
        Applier { shared, groups }
    }

    pub fn run(self) {
        // After a group failed to apply, later groups are not applied either: one of them
        // becoming visible (or a checkpoint recording it as durable) without the failed one
        // would leave a gap. The journal holds them all and is replayed on the next open.
        let mut failed: Option<String> = None;
        while let Ok(group) = self.groups.recv() {
            let Group { version, writes, replies, durable, done } = group;
            let result = match &failed {
                None => commit(&self.shared.db, version, &writes, durable),
                Some(first) => Err(StorageError::Engine(format!("not applied after an earlier failure: {first}"))),
            };
            match &result {
                Ok(()) => {
                    if !replies.is_empty() {
                        self.shared.committed.store(version, Ordering::SeqCst);
                        self.shared.stats.commits.fetch_add(1, Ordering::Relaxed);
                        self.shared.stats.transactions.fetch_add(replies.len() as u64, Ordering::Relaxed);
                        trace!(version, transactions = replies.len(), "group visible");
                        self.shared.watches.fire_written(&writes);
                    }
                    for (reply, stamp) in replies {
                        let _ = reply.send(Ok(stamp));
                    }
                }
                Err(err) => {
                    failed.get_or_insert_with(|| err.to_string());
                    warn!(%err, version, "applying a group failed; the engine refuses writes until it is restarted");
                    let reason = if self.shared.reserve.exhausted() {
                        format!("the disk filled up beyond the space reserve while applying commit {version}: {err}")
                    } else {
                        format!("applying commit {version} failed: {err}")
                    };
                    self.shared.poison(reason);
                    for (reply, _) in replies {
                        let message = format!(
                            "commit outcome unknown ({err}); restart the process: the journal is replayed on open"
                        );
                        let _ = reply.send(Err(StorageError::Engine(message)));
                    }
                }
            }
            if let Some(done) = done {
                let _ = done.send(result);
            }
        }
    }
}

fn engine(err: impl Into<redb::Error>) -> StorageError {
    StorageError::engine(err.into())
}

/// Applies `writes` in order and records `version` as the last commit, in one database
/// transaction (durable when `durable`).
fn commit(db: &redb::Database, version: u64, writes: &[Resolved], durable: bool) -> Result<(), StorageError> {
    let mut write = db.begin_write().map_err(engine)?;
    write.set_durability(if durable { Durability::Immediate } else { Durability::None }).map_err(engine)?;
    {
        let mut table = write.open_table(DATA).map_err(engine)?;
        for op in writes {
            match op {
                Resolved::Set(key, value) => {
                    table.insert(key.as_slice(), value.as_slice()).map_err(engine)?;
                }
                Resolved::Clear(key) => {
                    table.remove(key.as_slice()).map_err(engine)?;
                }
                Resolved::ClearRange(begin, end) => {
                    if begin < end {
                        table.retain_in::<&[u8], _>(begin.as_slice()..end.as_slice(), |_, _| false).map_err(engine)?;
                    }
                }
                Resolved::Add(key, delta) => {
                    let current =
                        table.get(key.as_slice()).map_err(engine)?.map_or(0, |v| little_endian_i64(v.value()));
                    table
                        .insert(key.as_slice(), current.wrapping_add(*delta).to_le_bytes().as_slice())
                        .map_err(engine)?;
                }
            }
        }
        let mut meta = write.open_table(META).map_err(engine)?;
        meta.insert(LAST_COMMIT, version).map_err(engine)?;
    }
    write.commit().map_err(engine)
}

/// Applies journal records found on open to the database, durably; returns the last
/// commit replayed.
pub fn replay(db: &redb::Database, records: Vec<wal::Replayed>) -> Result<Option<u64>, StorageError> {
    let Some(last) = records.last().map(|r| r.0) else { return Ok(None) };
    let writes = records
        .into_iter()
        .flat_map(|(_, ops)| ops)
        .map(|op| match op {
            wal::Op::Set(k, v) => Resolved::Set(k, v),
            wal::Op::Clear(k) => Resolved::Clear(k),
            wal::Op::ClearRange(b, e) => Resolved::ClearRange(b, e),
            wal::Op::Add(k, delta) => Resolved::Add(k, delta),
        })
        .collect::<Vec<_>>();
    commit(db, last, &writes, true)?;
    Ok(Some(last))
}
