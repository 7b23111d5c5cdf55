//! The durable job queue of one automation, kept in the store beside the events: the
//! transactions on its records (jobs, due entries, dead letters, the enqueuer's cursor, the
//! wake key), whose keys and values [`crate::format::queue`] encodes.
//!
//! Every job has exactly one due entry, at `max(not_before, lease_until)`: the time from
//! which a worker may claim it (a fresh job: when it was enqueued; a failed one: the end of
//! its backoff; a leased one: the end of its lease, after which another worker may take it
//! over). Every time is the store's clock ([`DynTx::clock_micros`]), the same for every
//! process on the store, never a host's: on the embedded engine microseconds since the Unix
//! epoch (as the host clock stored them before, so existing queues read on), on
//! FoundationDB the cluster's read version. That clock may leap forward (a recovery, a
//! restore), never back, so a lease ends early, never late.
//!
//! A claim reads the first [`CLAIM_WINDOW`] entries of the index as a snapshot (no read
//! conflict), picks one of the due ones at random and reads that job (a read conflict on it
//! alone) before leasing it. Workers of every instance woken together so spread over
//! different jobs instead of all taking the first entry and all but one conflicting; two
//! that pick the same job still never both hold it: every change of a job rewrites its
//! record, so the second commit conflicts, is run again and picks anew. Due jobs are thus
//! claimed roughly in the order they became due (within a window). However many jobs are
//! leased or backing off, a due one is found with one read of the index; when none is due,
//! its first entry tells the worker how long it may sleep.
//!
//! A claim whose commit landed but was reported as failed (FoundationDB's
//! `commit_unknown_result`) runs again; it first looks whether the job its previous run
//! leased holds that very lease, and if so answers with it instead of leasing a second one
//! (which would leave the first leased to a worker that never runs it).

use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::Duration;

use fairway_dcb::Position;

use super::{DeadLetter, Message, QueueSettings};
use crate::backend::{DynTx, KeyValue, TxFailure};
use crate::format::queue::{
    DUE_ENTRY, Indexed, Job, decode_cursor, decode_dead_letter, encode_cursor, encode_dead_letter, encode_wake,
};
use crate::format::{QueueKeys, after, end_of, now_micros};

/// Longest delay between two attempts of a failing job.
const MAX_JOB_BACKOFF: Duration = Duration::from_secs(300);

/// Jobs indexed per transaction when indexing jobs of an older store.
const INDEX_PAGE: usize = 512;

/// Due entries a claim reads to pick one among.
pub(super) const CLAIM_WINDOW: usize = 16;

/// A due time further ahead of the store's clock than this (or twice the lease, if longer)
/// cannot have been set on this clock: earlier versions wrote the host's clock, which on
/// FoundationDB lies decades ahead of the cluster's (see [`rebase_foreign_times`]).
const FOREIGN_CLOCK: Duration = Duration::from_secs(366 * 24 * 3600);

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

fn corrupt(what: String) -> TxFailure {
    TxFailure::Body(Box::new(Message(what)))
}

/// The failure of a transaction that read a queue record that does not decode.
fn corrupt_record(error: rmp_serde::decode::Error) -> TxFailure {
    corrupt(format!("corrupt queue record: {error}"))
}

/// The job stored as `bytes`.
fn decode_job(bytes: &[u8]) -> Result<Job, TxFailure> {
    Job::decode(bytes).map_err(corrupt_record)
}

/// Writes `job` at `position` with its due entry, removing the entry of its previous state.
fn put_job(tx: &dyn DynTx, keys: &QueueKeys, position: Position, previous: Option<&Job>, job: &Job) {
    if let Some(previous) = previous {
        tx.clear(&keys.due_entry(previous.due_micros(), position));
    }
    tx.set(&keys.job(position), &job.encode());
    tx.set(&keys.due_entry(job.due_micros(), position), DUE_ENTRY);
}

/// Removes the job at `position` and its due entry.
fn remove_job(tx: &dyn DynTx, keys: &QueueKeys, position: Position, job: &Job) {
    tx.clear(&keys.due_entry(job.due_micros(), position));
    tx.clear(&keys.job(position));
}

/// Rewrites the wake key, so watchers in other processes look for due jobs. Its value only
/// has to change (a watch fires on a change): the host's clock does, also between two
/// transactions that read the store's clock at one version.
fn wake(tx: &dyn DynTx, keys: &QueueKeys) {
    tx.set(&keys.wake, &encode_wake(now_micros()));
}

/// The last triggering position enqueued, if any.
pub(super) async fn cursor(tx: &dyn DynTx, keys: &QueueKeys) -> Result<Option<Position>, TxFailure> {
    Ok(tx.get(&keys.cursor).await?.as_deref().and_then(decode_cursor))
}

/// Enqueues a fresh job per position after the stored cursor and moves the cursor; returns
/// how many jobs were written.
pub(super) async fn enqueue(tx: &dyn DynTx, keys: &QueueKeys, positions: &[Position]) -> Result<usize, TxFailure> {
    let stored = cursor(tx, keys).await?;
    let fresh = Job::fresh(tx.clock_micros().await?);
    let mut written = 0;
    for position in positions.iter().filter(|p| stored.is_none_or(|s| **p > s)) {
        put_job(tx, keys, *position, None, &fresh);
        written += 1;
    }
    if let Some(last) = positions.last().filter(|l| stored.is_none_or(|s| **l > s)) {
        tx.set(&keys.cursor, &encode_cursor(*last));
    }
    if written > 0 {
        wake(tx, keys);
    }
    Ok(written)
}

/// What a claim found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Claim {
    /// The job at this position, leased to the worker, on this attempt (1-based).
    Claimed(Position, u32),
    /// Nothing due now; the earliest job becomes due after this long, if there is one.
    Idle(Option<Duration>),
}

/// The lease the previous run of one claim wrote, so that the next run, after a commit of
/// unknown result, recognises it if it landed. One per claim (per call of `transact`).
#[derive(Default)]
pub(super) struct Earlier(Mutex<Option<(Position, Job)>>);

impl Earlier {
    fn remember(&self, position: Position, leased: &Job) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((position, leased.clone()));
    }

    fn recall(&self) -> Option<(Position, Job)> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

/// A random number in `0..n` (`n > 0`), different in every call: spreads workers over the
/// due jobs and over time (no cryptographic quality needed).
fn pick(n: u64) -> u64 {
    RandomState::new().hash_one(std::time::Instant::now()) % n
}

/// A random duration in `[0, max)`.
pub(super) fn jitter(max: Duration) -> Duration {
    Duration::from_micros(pick(micros(max).max(1)))
}

/// Claims a due job, picked at random among the first [`CLAIM_WINDOW`] due entries, under a
/// lease of `worker` for `lease` from the store's clock; `earlier` remembers the lease
/// across the runs of this claim (see the module documentation).
pub(super) async fn claim(
    tx: &dyn DynTx,
    keys: &QueueKeys,
    worker: &str,
    lease: Duration,
    earlier: &Earlier,
) -> Result<Claim, TxFailure> {
    let now = tx.clock_micros().await?;
    if let Some((position, leased)) = earlier.recall() {
        let stored = tx.get(&keys.job(position)).await?.as_deref().map(decode_job).transpose()?;
        if stored.as_ref() == Some(&leased) {
            return Ok(Claim::Claimed(position, leased.attempts));
        }
    }
    let end = end_of(&keys.due);
    let mut cursor = keys.due.clone();
    loop {
        let window = tx.snapshot_scan(&cursor, &end, CLAIM_WINDOW).await?;
        let mut due = Vec::with_capacity(window.len());
        // When the first entry that is not due yet becomes due, if the window holds one.
        let mut next = None;
        for KeyValue { key, .. } in &window {
            let (at, position) =
                keys.parse_due_entry(key).ok_or_else(|| corrupt(format!("malformed due entry {key:?}")))?;
            if at > now {
                next = Some(Duration::from_micros(at - now));
                break;
            }
            due.push((at, position, key));
        }
        let start = usize::try_from(pick(due.len().max(1) as u64)).unwrap_or(0);
        for &(at, position, key) in due.iter().cycle().skip(start).take(due.len()) {
            // The job's record read with a conflict: a worker that leases it first makes
            // this claim run again.
            let job = tx.get(&keys.job(position)).await?.as_deref().map(decode_job).transpose()?;
            match job {
                Some(job) if job.due_micros() == at => {
                    let leased = Job {
                        attempts: job.attempts + 1,
                        lease_owner: Some(worker.to_owned()),
                        lease_until_micros: now.saturating_add(micros(lease)),
                        ..job.clone()
                    };
                    put_job(tx, keys, position, Some(&job), &leased);
                    earlier.remember(position, &leased);
                    return Ok(Claim::Claimed(position, leased.attempts));
                }
                // Entries whose job is gone or changed (never written by this module, but
                // repaired rather than left to block the queue) are replaced.
                stale => {
                    tx.clear(key);
                    if let Some(job) = stale {
                        tx.set(&keys.due_entry(job.due_micros(), position), DUE_ENTRY);
                    }
                }
            }
        }
        // Every due entry of the window was stale (none, if the first is not due yet).
        match (next, due.last()) {
            (Some(next), _) => return Ok(Claim::Idle(Some(next))),
            (None, Some((.., last))) if window.len() == CLAIM_WINDOW => cursor = after(last),
            (None, _) => return Ok(Claim::Idle(None)),
        }
    }
}

/// Settles the job at `position` if `worker` still holds it: deleted on success; on
/// failure retried after an exponential backoff, or moved to the dead letters after
/// `max_attempts`.
pub(super) async fn settle(
    tx: &dyn DynTx,
    keys: &QueueKeys,
    worker: &str,
    position: Position,
    outcome: &Result<(), String>,
    settings: &QueueSettings,
) -> Result<(), TxFailure> {
    let Some(job) = held_job(tx, keys, worker, position).await? else { return Ok(()) };
    match outcome {
        Ok(()) => remove_job(tx, keys, position, &job),
        Err(error) if job.attempts >= settings.max_attempts => {
            remove_job(tx, keys, position, &job);
            let dead = DeadLetter { position, attempts: job.attempts, error: error.clone() };
            tx.set(&keys.dead(position), &encode_dead_letter(&dead));
        }
        Err(error) => {
            let backoff = settings.retry_backoff.saturating_mul(1 << job.attempts.saturating_sub(1).min(16));
            let now = tx.clock_micros().await?;
            let retry = Job {
                not_before_micros: now.saturating_add(micros(backoff.min(MAX_JOB_BACKOFF))),
                lease_until_micros: 0,
                lease_owner: None,
                last_error: Some(error.clone()),
                ..job.clone()
            };
            put_job(tx, keys, position, Some(&job), &retry);
        }
    }
    Ok(())
}

/// Extends the lease of `worker` on the job at `position` to `lease` from the store's
/// clock; `false` if the worker no longer holds it (another worker took the job once its
/// lease ended).
pub(super) async fn renew(
    tx: &dyn DynTx,
    keys: &QueueKeys,
    worker: &str,
    position: Position,
    lease: Duration,
) -> Result<bool, TxFailure> {
    // A lease that ended is renewed all the same while no other worker took the job: a
    // claim now would conflict with this transaction.
    let Some(job) = held_job(tx, keys, worker, position).await? else { return Ok(false) };
    let now = tx.clock_micros().await?;
    let renewed = Job { lease_until_micros: now.saturating_add(micros(lease)), ..job.clone() };
    put_job(tx, keys, position, Some(&job), &renewed);
    Ok(true)
}

/// The job at `position` if `worker` holds its lease (else its lease expired and another
/// worker may have taken it).
async fn held_job(
    tx: &dyn DynTx,
    keys: &QueueKeys,
    worker: &str,
    position: Position,
) -> Result<Option<Job>, TxFailure> {
    let Some(bytes) = tx.get(&keys.job(position)).await? else { return Ok(None) };
    let job = decode_job(&bytes)?;
    Ok((job.lease_owner.as_deref() == Some(worker)).then_some(job))
}

/// Jobs waiting or in progress.
pub(crate) async fn pending(tx: &dyn DynTx, keys: &QueueKeys) -> Result<usize, TxFailure> {
    Ok(tx.scan(&keys.jobs, &end_of(&keys.jobs), 0).await?.len())
}

/// Jobs a worker holds a lease on now.
pub(super) async fn leased(tx: &dyn DynTx, keys: &QueueKeys) -> Result<usize, TxFailure> {
    let now = tx.clock_micros().await?;
    let jobs = tx.scan(&keys.jobs, &end_of(&keys.jobs), 0).await?;
    let mut leased = 0;
    for kv in &jobs {
        let job = decode_job(&kv.value)?;
        leased += usize::from(job.lease_owner.is_some() && job.lease_until_micros > now);
    }
    Ok(leased)
}

/// The dead letters, oldest first.
pub(crate) async fn dead_letters(tx: &dyn DynTx, keys: &QueueKeys) -> Result<Vec<DeadLetter>, TxFailure> {
    tx.scan(&keys.dead, &end_of(&keys.dead), 0)
        .await?
        .iter()
        .map(|kv| decode_dead_letter(&kv.value).map_err(corrupt_record))
        .collect()
}

/// Moves the dead letter at `position` back to the queue with fresh attempts; `false` if
/// there is none.
pub(crate) async fn replay(tx: &dyn DynTx, keys: &QueueKeys, position: Position) -> Result<bool, TxFailure> {
    if tx.get(&keys.dead(position)).await?.is_none() {
        return Ok(false);
    }
    tx.clear(&keys.dead(position));
    let previous = tx.get(&keys.job(position)).await?.as_deref().map(decode_job).transpose()?;
    put_job(tx, keys, position, previous.as_ref(), &Job::fresh(tx.clock_micros().await?));
    wake(tx, keys);
    Ok(true)
}

/// Deletes every dead letter; returns how many.
pub(crate) async fn purge(tx: &dyn DynTx, keys: &QueueKeys) -> Result<usize, TxFailure> {
    let count = tx.scan(&keys.dead, &end_of(&keys.dead), 0).await?.len();
    tx.clear_range(&keys.dead, &end_of(&keys.dead));
    Ok(count)
}

/// Gives up to [`INDEX_PAGE`] jobs written before the due-time index existed their due
/// entry; returns `true` once every job has one. Writing an entry is idempotent (its key
/// follows from the job), so concurrent runs and jobs written since are harmless.
pub(super) async fn index_older_jobs(tx: &dyn DynTx, keys: &QueueKeys) -> Result<bool, TxFailure> {
    let begin = match tx.get(&keys.indexed).await?.as_deref().and_then(Indexed::decode) {
        Some(Indexed::Done) => return Ok(true),
        Some(Indexed::Through(last)) => keys.job(last.next()),
        None => keys.jobs.clone(),
    };
    let page = tx.scan(&begin, &end_of(&keys.jobs), INDEX_PAGE).await?;
    let mut last = None;
    for kv in &page {
        let position =
            keys.job_position(&kv.key).ok_or_else(|| corrupt(format!("job key without position {:?}", kv.key)))?;
        let job = decode_job(&kv.value)?;
        tx.set(&keys.due_entry(job.due_micros(), position), DUE_ENTRY);
        last = Some(position);
    }
    let done = page.len() < INDEX_PAGE;
    match last {
        Some(last) if !done => tx.set(&keys.indexed, &Indexed::Through(last).encode()),
        _ => tx.set(&keys.indexed, &Indexed::Done.encode()),
    }
    Ok(done)
}

/// Makes up to [`INDEX_PAGE`] jobs whose due time cannot be on the store's clock due now
/// (see [`FOREIGN_CLOCK`]; their lease, if any, ends now); returns `true` once none is
/// left. On FoundationDB that is every job a version before the store's clock left; on the
/// embedded engine, whose clock is the host's, none (short of a host clock set back by
/// more than a year). The range read is empty on every later start.
pub(super) async fn rebase_foreign_times(tx: &dyn DynTx, keys: &QueueKeys, lease: Duration) -> Result<bool, TxFailure> {
    let now = tx.clock_micros().await?;
    let foreign = now.saturating_add(micros(FOREIGN_CLOCK.max(lease.saturating_mul(2))));
    let begin = keys.due_entry(foreign.saturating_add(1), Position::ZERO);
    let page = tx.scan(&begin, &end_of(&keys.due), INDEX_PAGE).await?;
    for KeyValue { key, .. } in &page {
        let (at, position) =
            keys.parse_due_entry(key).ok_or_else(|| corrupt(format!("malformed due entry {key:?}")))?;
        tx.clear(key);
        let Some(job) = tx.get(&keys.job(position)).await?.as_deref().map(decode_job).transpose()? else { continue };
        if job.due_micros() != at {
            tx.set(&keys.due_entry(job.due_micros(), position), DUE_ENTRY);
            continue;
        }
        let rebased = Job {
            not_before_micros: job.not_before_micros.min(now),
            lease_until_micros: job.lease_until_micros.min(now),
            ..job.clone()
        };
        put_job(tx, keys, position, Some(&job), &rebased);
    }
    Ok(page.len() < INDEX_PAGE)
}

#[cfg(test)]
mod tests;
