//! The sequencer thread: conflict checks, versionstamps, the journal (durability), then
//! hand-off to the [applier](super::applier), which makes each group visible.
//!
//! The two stages run on two threads, so while the applier writes group *k* into the
//! database, the sequencer already checks, stamps and syncs group *k + 1*. Groups reach
//! the applier in order; a transaction's snapshot never includes a group still in flight,
//! and the conflict history includes it from the moment it is sequenced, so checks stay
//! exact.

use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tracing::warn;

use super::Shared;
use super::applier::{Applier, Group, Resolved};
use super::conflicts::{History, Verdict, WriteSet};
use super::wal::{self, Journal, RecordBuilder};
use crate::error::StorageError;
use crate::kv::{VERSIONSTAMP_LEN, Versionstamp};

/// Longest time between durable database checkpoints (the journal covers the rest).
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// Journal bytes that force a checkpoint (well under its preallocated size).
const CHECKPOINT_BYTES: u64 = wal::PREALLOCATED / 2;
/// Written keys remembered for conflict checks (older snapshots get "too old").
const HISTORY_KEYS: usize = 2_000_000;
/// Groups sequenced but not yet applied, at most.
const IN_FLIGHT: usize = 2;

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

/// Owns ordering and durability of commits.
pub struct Committer {
    shared: Arc<Shared>,
    requests: mpsc::Receiver<CommitRequest>,
    /// The journal making commits durable; `None` when durability is off.
    journal: Option<Journal>,
    max_group: usize,
    history: History,
    record: RecordBuilder,
    last_checkpoint: Instant,
    last_sequenced: u64,
    applier: Option<(mpsc::SyncSender<Group>, JoinHandle<()>)>,
}

impl Committer {
    pub fn new(
        shared: Arc<Shared>,
        requests: mpsc::Receiver<CommitRequest>,
        journal: Option<Journal>,
        max_group: usize,
    ) -> Result<Self, StorageError> {
        let last = shared.committed.load(Ordering::SeqCst);
        let (groups, incoming) = mpsc::sync_channel(IN_FLIGHT);
        let applier = Applier::new(shared.clone(), incoming);
        let handle = std::thread::Builder::new()
            .name("fairway-applier".into())
            .spawn(move || applier.run())
            .map_err(StorageError::engine)?;
        Ok(Committer {
            shared,
            requests,
            journal,
            max_group,
            history: History::new(last, HISTORY_KEYS),
            record: RecordBuilder::default(),
            last_checkpoint: Instant::now(),
            last_sequenced: last,
            applier: Some((groups, handle)),
        })
    }

    /// Serves commit requests until every sender is gone, then checkpoints and stops.
    pub fn run(mut self) {
        while let Ok(first) = self.requests.recv() {
            let mut group = vec![first];
            while group.len() < self.max_group {
                match self.requests.try_recv() {
                    Ok(request) => group.push(request),
                    Err(_) => break,
                }
            }
            self.sequence(group);
        }
        if let Err(err) = self.checkpoint(Vec::new(), Vec::new()) {
            warn!(%err, "final checkpoint failed; the journal will be replayed on open");
        }
        if let Some((groups, handle)) = self.applier.take() {
            drop(groups);
            let _ = handle.join();
        }
    }

    fn spurious_conflict(&self) -> bool {
        let ppm = self.shared.spurious_conflict_ppm.load(Ordering::Relaxed);
        ppm > 0 && rand::random_range(0..1_000_000u64) < ppm
    }

    fn checkpoint_due(&self) -> bool {
        self.journal.as_ref().is_some_and(|j| {
            !j.is_empty() && (self.last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL || j.len() >= CHECKPOINT_BYTES)
        })
    }

    fn send(&self, group: Group) -> Result<(), StorageError> {
        let (groups, _) = self.applier.as_ref().ok_or(StorageError::Closed)?;
        groups.send(group).map_err(|_| StorageError::Closed)
    }

    /// Sends a group (possibly empty) to be applied with a durable database commit, waits
    /// for it, and starts the journal over.
    fn checkpoint(
        &mut self,
        writes: Vec<Resolved>,
        replies: Vec<(oneshot::Sender<CommitReply>, Versionstamp)>,
    ) -> Result<(), StorageError> {
        let (done, finished) = mpsc::channel();
        let version = self.last_sequenced;
        self.send(Group { version, writes, replies, durable: Some(done) })?;
        finished.recv().map_err(|_| StorageError::Closed)??;
        if let Some(journal) = &mut self.journal {
            journal.reset();
        }
        self.last_checkpoint = Instant::now();
        Ok(())
    }

    /// Checks and stamps a group, makes it durable, and hands it to the applier.
    fn sequence(&mut self, group: Vec<CommitRequest>) {
        if self.shared.closed.load(Ordering::SeqCst) && self.shared.poisoned.load(Ordering::SeqCst) {
            for request in group {
                let _ = request.reply.send(Err(StorageError::Closed));
            }
            return;
        }
        let version = self.last_sequenced + 1;
        let mut pending = WriteSet::default();
        let mut writes = Vec::new();
        let mut replies = Vec::with_capacity(group.len());
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
            let stamp = Versionstamp::new(version, replies.len() as u16);
            match resolve(request.mutations, stamp, &mut pending, &mut writes) {
                Ok(()) => replies.push((request.reply, stamp)),
                Err(err) => {
                    let _ = request.reply.send(Err(err));
                }
            }
        }
        if replies.is_empty() {
            return;
        }
        self.last_sequenced = version;
        self.history.push(version, pending);
        let result = if self.checkpoint_due() {
            self.checkpoint(writes, replies)
        } else {
            self.journal_and_send(version, writes, replies)
        };
        if let Err(err) = result {
            warn!(%err, version, "commit failed; the engine stops accepting writes");
            self.shared.poison();
        }
    }

    fn journal_and_send(
        &mut self,
        version: u64,
        writes: Vec<Resolved>,
        replies: Vec<(oneshot::Sender<CommitReply>, Versionstamp)>,
    ) -> Result<(), StorageError> {
        if let Some(journal) = &mut self.journal {
            self.record.clear();
            for write in &writes {
                write.record(&mut self.record);
            }
            if let Err(err) = journal.append(version, &self.record) {
                for (reply, _) in replies {
                    let _ = reply.send(Err(StorageError::Engine(format!("journal write failed: {err}"))));
                }
                return Err(err);
            }
        }
        // Durable from here; acknowledged once the applier has made it visible.
        self.send(Group { version, writes, replies, durable: None })
    }
}

fn stamped(mut bytes: Vec<u8>, offset: usize, stamp: Versionstamp) -> Result<Vec<u8>, StorageError> {
    let slot = bytes
        .get_mut(offset..offset + VERSIONSTAMP_LEN)
        .ok_or_else(|| StorageError::Engine(format!("versionstamp offset {offset} outside the bytes")))?;
    slot.copy_from_slice(&stamp.0);
    Ok(bytes)
}

/// Fills in `stamp` and records the written keys for conflict checks.
fn resolve(
    mutations: Vec<Mutation>,
    stamp: Versionstamp,
    written: &mut WriteSet,
    out: &mut Vec<Resolved>,
) -> Result<(), StorageError> {
    let mut resolved = Vec::with_capacity(mutations.len());
    for mutation in mutations {
        resolved.push(match mutation {
            Mutation::Set(key, value) => Resolved::Set(key, value),
            Mutation::Clear(key) => Resolved::Clear(key),
            Mutation::ClearRange(begin, end) => Resolved::ClearRange(begin, end),
            Mutation::Add(key, delta) => Resolved::Add(key, delta),
            Mutation::StampKey { key, offset, value } => Resolved::Set(stamped(key, offset, stamp)?, value),
            Mutation::StampValue { key, value, offset } => Resolved::Set(key, stamped(value, offset, stamp)?),
        });
    }
    for write in &resolved {
        match write {
            Resolved::ClearRange(begin, end) => written.range(begin.clone(), end.clone()),
            other => written.key(other.key().to_vec()),
        }
    }
    out.extend(resolved);
    Ok(())
}
