//! The durable job queue of one automation, kept in the store beside the events: the
//! transactions on its records (jobs, due entries, dead letters, the enqueuer's cursor, the
//! wake key), whose keys and values [`crate::format::queue`] encodes.
//!
//! Every job has exactly one due entry, at `max(not_before, lease_until)`: the time from
//! which a worker may claim it (a fresh job: when it was enqueued; a failed one: the end of
//! its backoff; a leased one: the end of its lease, after which another worker may take it
//! over). Due jobs are claimed in the order they became due, then by position. A claim
//! reads the first entry of the index, so however many jobs are leased or backing off, a
//! due job is found with one key read; when none is due, the first entry tells the worker
//! how long it may sleep. Every change of a job moves its due entry in the same
//! transaction, and a claim reads the entry it takes (a read conflict), so two workers never
//! claim one job: the second commit conflicts, is run again and takes the next entry.

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

/// Rewrites the wake key, so watchers in other processes look for due jobs.
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
    let fresh = Job::fresh(now_micros());
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
    /// Nothing due now; the earliest job becomes due at this time (µs), if there is one.
    Idle(Option<u64>),
}

/// Claims the due job with the earliest due time (then the lowest position) under a lease
/// of `worker` until `now + lease`.
pub(super) async fn claim(
    tx: &dyn DynTx,
    keys: &QueueKeys,
    worker: &str,
    lease: Duration,
    now: u64,
) -> Result<Claim, TxFailure> {
    let begin = keys.due.clone();
    let end = end_of(&keys.due);
    // Entries whose job is gone or changed (never written by this module, but repaired
    // rather than left to block the queue) are removed and the next one is read.
    let mut cursor = begin;
    loop {
        let Some(KeyValue { key, .. }) = tx.scan(&cursor, &end, 1).await?.into_iter().next() else {
            return Ok(Claim::Idle(None));
        };
        let (due, position) =
            keys.parse_due_entry(&key).ok_or_else(|| corrupt(format!("malformed due entry {key:?}")))?;
        if due > now {
            return Ok(Claim::Idle(Some(due)));
        }
        let job = tx.get(&keys.job(position)).await?.as_deref().map(decode_job).transpose()?;
        match job {
            Some(job) if job.due_micros() == due => {
                let leased = Job {
                    attempts: job.attempts + 1,
                    lease_owner: Some(worker.to_owned()),
                    lease_until_micros: now.saturating_add(micros(lease)),
                    ..job.clone()
                };
                put_job(tx, keys, position, Some(&job), &leased);
                return Ok(Claim::Claimed(position, leased.attempts));
            }
            stale => {
                tx.clear(&key);
                if let Some(job) = stale {
                    tx.set(&keys.due_entry(job.due_micros(), position), DUE_ENTRY);
                }
                cursor = after(&key);
            }
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
            let retry = Job {
                not_before_micros: now_micros().saturating_add(micros(backoff.min(MAX_JOB_BACKOFF))),
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

/// Extends the lease of `worker` on the job at `position`, if it still holds it.
pub(super) async fn renew(
    tx: &dyn DynTx,
    keys: &QueueKeys,
    worker: &str,
    position: Position,
    lease: Duration,
) -> Result<(), TxFailure> {
    if let Some(job) = held_job(tx, keys, worker, position).await? {
        let renewed = Job { lease_until_micros: now_micros().saturating_add(micros(lease)), ..job.clone() };
        put_job(tx, keys, position, Some(&job), &renewed);
    }
    Ok(())
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
    let now = now_micros();
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
    put_job(tx, keys, position, previous.as_ref(), &Job::fresh(now_micros()));
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

#[cfg(test)]
mod tests;
