//! The sequencer thread: conflict checks, versionstamps, the journal (durability), then
//! hand-off to the [applier](super::applier), which makes each group visible.
//!
//! The two stages run on two threads, so while the applier writes group *k* into the
//! database, the sequencer already checks, stamps and syncs group *k + 1*. Groups reach
//! the applier in order; a transaction's snapshot never includes a group still in flight,
//! and the conflict history includes it from the moment it is sequenced, so checks stay
//! exact.
//!
//! The committer also decides whether writes are admitted at all. When the disk fills up, the
//! database spends the [space reserve](super::space); the committer then tries to fill it
//! again and, while it cannot, answers every commit with [`StorageError::DiskFull`], trying
//! again every [`PROBE_INTERVAL`] even without requests, so writes resume (and the engine's
//! health turns good) by themselves once space is freed. When the disk runs low it makes
//! checkpoints small and stops pipelining (each group is applied before the next is
//! sequenced), so that what the database writes before the committer looks again never
//! needs more than the reserve.

use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tracing::{info, warn};

use super::applier::{Applier, Group, Resolved};
use super::conflicts::{History, Verdict, WriteSet};
use super::space::is_disk_full;
use super::wal::{self, Journal, RecordBuilder};
use super::{Shared, WriteState};
use crate::error::{StorageError, human_bytes};
use crate::kv::{VERSIONSTAMP_LEN, Versionstamp};

/// Longest time between durable database checkpoints (the journal covers the rest).
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// Journal bytes that force a checkpoint (well under its preallocated size).
const CHECKPOINT_BYTES: u64 = wal::PREALLOCATED / 2;
/// Written keys remembered for conflict checks (older snapshots get "too old").
const HISTORY_KEYS: usize = 2_000_000;
/// Groups sequenced but not yet applied, at most.
const IN_FLIGHT: usize = 2;
/// Commands count as committing while one committed within this many background waits.
const COMMANDS_LIVE_WAITS: u32 = 10;
/// How often the committer tries to fill the space reserve again while the disk is full.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// How often the free space is measured to size checkpoints.
const SPACE_CHECK_INTERVAL: Duration = Duration::from_millis(250);
/// With less free space than this many reserves, the disk counts as running low...
const LOW_SPACE_RESERVES: u64 = 16;
/// ...and a checkpoint is made once the journal holds this fraction of the reserve, so that
/// the pages one checkpoint writes stay well within the reserve.
const LOW_SPACE_CHECKPOINT_FRACTION: u64 = 8;

use crate::metrics::{GROUP_TRANSACTIONS, JOURNAL_SYNC_SECONDS};

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
    /// Background work: may wait up to the background wait for a foreground commit to join.
    pub background: bool,
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
    /// When the space reserve was last tried.
    last_probe: Instant,
    /// Whether the disk ran low when last measured, and when that was.
    space_low: Option<(bool, Instant)>,
    /// When a group with foreground work (a commit someone waits on) was last sequenced.
    last_foreground: Option<Instant>,
    /// Longest a group of background work alone waits for foreground work.
    background_wait: Duration,
}

/// How a sequenced group is made durable.
enum Route {
    /// Its journal record is synced; the applier writes it without a sync.
    Journaled,
    /// The applier writes it with a durable database commit (a checkpoint).
    Checkpoint,
}

impl Committer {
    pub fn new(
        shared: Arc<Shared>,
        requests: mpsc::Receiver<CommitRequest>,
        journal: Option<Journal>,
        max_group: usize,
        background_wait: Duration,
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
            last_probe: Instant::now(),
            space_low: None,
            last_foreground: None,
            background_wait,
            applier: Some((groups, handle)),
        })
    }

    /// Serves commit requests until every sender is gone, then checkpoints and stops.
    pub fn run(mut self) {
        loop {
            let first = if self.disk_full() {
                match self.requests.recv_timeout(PROBE_INTERVAL) {
                    Ok(request) => request,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        self.probe();
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match self.requests.recv() {
                    Ok(request) => request,
                    Err(_) => break,
                }
            };
            let group = self.gather(first);
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

    /// The group that starts with `first`: every request already waiting, up to the group
    /// limit. A group of background work alone, while commands are committing, first waits
    /// up to the background wait for a foreground commit, so that both share one sync and
    /// the command never queues behind a sync of background work.
    fn gather(&mut self, first: CommitRequest) -> Vec<CommitRequest> {
        let mut foreground = !first.background;
        let mut group = vec![first];
        let live = self.background_wait * COMMANDS_LIVE_WAITS;
        let commands_live = self.last_foreground.is_some_and(|at| at.elapsed() < live);
        if !foreground && commands_live && !self.disk_full() {
            let deadline = Instant::now() + self.background_wait;
            while !foreground && group.len() < self.max_group {
                match self.requests.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(request) => {
                        foreground = !request.background;
                        group.push(request);
                    }
                    Err(_) => break,
                }
            }
        }
        while group.len() < self.max_group {
            match self.requests.try_recv() {
                Ok(request) => {
                    foreground |= !request.background;
                    group.push(request);
                }
                Err(_) => break,
            }
        }
        if foreground {
            self.last_foreground = Some(Instant::now());
        }
        group
    }

    fn spurious_conflict(&self) -> bool {
        let ppm = self.shared.spurious_conflict_ppm.load(Ordering::Relaxed);
        ppm > 0 && rand::random_range(0..1_000_000u64) < ppm
    }

    fn checkpoint_due(&mut self) -> bool {
        let Some(journal) = &self.journal else { return false };
        if journal.is_empty() {
            return false;
        }
        let written = journal.len();
        self.last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL || written >= self.checkpoint_bytes()
    }

    /// Journal bytes that call for a checkpoint: fewer when the disk runs low.
    fn checkpoint_bytes(&mut self) -> u64 {
        let reserve = self.shared.reserve.target();
        if self.space_low() { (reserve / LOW_SPACE_CHECKPOINT_FRACTION).max(1) } else { CHECKPOINT_BYTES }
    }

    /// Whether the disk runs low (measured at most every [`SPACE_CHECK_INTERVAL`]).
    fn space_low(&mut self) -> bool {
        let reserve = self.shared.reserve.target();
        match self.space_low {
            Some((low, measured)) if measured.elapsed() < SPACE_CHECK_INTERVAL => low,
            _ => {
                let low =
                    reserve > 0 && self.shared.volume.available().is_ok_and(|free| free < reserve * LOW_SPACE_RESERVES);
                self.space_low = Some((low, Instant::now()));
                low
            }
        }
    }

    /// Hands a journaled group to the applier and waits until it is applied. Used while the
    /// disk runs low: the committer then sees a space reserve spent by this group before it
    /// sequences the next one, so the reserve only ever has to cover one group's pages.
    fn apply_and_wait(
        &mut self,
        version: u64,
        writes: Vec<Resolved>,
        replies: Vec<(oneshot::Sender<CommitReply>, Versionstamp)>,
    ) -> Result<(), StorageError> {
        let (done, finished) = mpsc::channel();
        self.send(Group { version, writes, replies, durable: false, done: Some(done) })?;
        finished.recv().map_err(|_| StorageError::Closed)?
    }

    fn disk_full(&self) -> bool {
        matches!(self.shared.write_state(), WriteState::DiskFull { .. })
    }

    /// Tries to fill the space reserve: writes are admitted while it is full and refused
    /// with [`StorageError::DiskFull`] while the disk has no room for it.
    fn probe(&mut self) {
        self.last_probe = Instant::now();
        let volume = &self.shared.volume;
        let available = volume.available().unwrap_or(0);
        let filled = self.shared.reserve.fill(available).unwrap_or_else(|err| {
            warn!(%err, "the space reserve could not be filled");
            false
        });
        let was_full = self.disk_full();
        if filled {
            self.shared.set_write_state(WriteState::Accepting);
            if was_full {
                info!(dir = %volume.dir().display(), "disk space is back: writes are accepted again");
            }
        } else {
            self.shared.set_write_state(WriteState::DiskFull { available });
            if !was_full {
                warn!(
                    dir = %volume.dir().display(),
                    free = %human_bytes(available),
                    needed = %human_bytes(self.shared.reserve.target()),
                    "the disk is full: writes are refused until space is freed; reads go on"
                );
            }
        }
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
        self.send(Group { version, writes, replies, durable: true, done: Some(done) })?;
        finished.recv().map_err(|_| StorageError::Closed)??;
        if let Some(journal) = &mut self.journal {
            journal.reset();
        }
        self.last_checkpoint = Instant::now();
        Ok(())
    }

    /// Checks and stamps a group, makes it durable, and hands it to the applier.
    fn sequence(&mut self, group: Vec<CommitRequest>) {
        if self.disk_full() && self.last_probe.elapsed() >= PROBE_INTERVAL {
            self.probe();
        }
        if self.shared.refusal().is_some() {
            for request in group {
                let refusal = self.shared.refusal().unwrap_or(StorageError::Closed);
                let _ = request.reply.send(Err(refusal));
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
        metrics::histogram!(GROUP_TRANSACTIONS).record(replies.len() as f64);
        let route = if self.checkpoint_due() {
            Ok(Route::Checkpoint)
        } else {
            match self.journal(version, &writes) {
                Ok(()) => Ok(Route::Journaled),
                // The record outgrew the journal's preallocation on a full disk: make the
                // group durable in the database instead, which may spend the reserve.
                Err(err) if is_disk_full(&err) => Ok(Route::Checkpoint),
                Err(err) => Err(StorageError::Engine(format!("journal write failed: {err}"))),
            }
        };
        let result = match route {
            Ok(route) => {
                self.last_sequenced = version;
                self.history.push(version, pending);
                match route {
                    // Durable from here; acknowledged once the applier has made it visible.
                    Route::Journaled if self.space_low() => self.apply_and_wait(version, writes, replies),
                    Route::Journaled => self.send(Group { version, writes, replies, durable: false, done: None }),
                    Route::Checkpoint => self.checkpoint(writes, replies),
                }
            }
            Err(err) => {
                for (reply, _) in replies {
                    let _ = reply.send(Err(StorageError::Engine(err.to_string())));
                }
                Err(err)
            }
        };
        if let Err(err) = result {
            let reason = if self.shared.reserve.exhausted() {
                format!("the disk filled up beyond the space reserve: {err}")
            } else {
                err.to_string()
            };
            warn!(%err, version, "commit failed; the engine refuses writes until it is restarted");
            self.shared.poison(reason);
            return;
        }
        if self.shared.reserve.take_spent() {
            self.probe();
        }
    }

    /// Writes the journal record of a group and syncs it (nothing to do without a journal).
    fn journal(&mut self, version: u64, writes: &[Resolved]) -> std::io::Result<()> {
        let Some(journal) = &mut self.journal else { return Ok(()) };
        self.record.clear();
        for write in writes {
            write.record(&mut self.record);
        }
        let started = std::time::Instant::now();
        journal.append(version, &self.record)?;
        let elapsed = started.elapsed();
        let micros = elapsed.as_micros().try_into().unwrap_or(u64::MAX);
        self.shared.stats.journal_micros.fetch_add(micros, Ordering::Relaxed);
        metrics::histogram!(JOURNAL_SYNC_SECONDS).record(elapsed.as_secs_f64());
        Ok(())
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
