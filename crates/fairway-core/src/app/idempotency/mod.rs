//! `Idempotency-Key` support: the first answer to a key is stored for a TTL and replayed to
//! every retry with the same key and body, so a client may retry a command after a timeout
//! or a crash without running it twice.
//!
//! - A command that appends events writes its answer under the key *in the append's own
//!   transaction* (an [`AppendStep`](crate::AppendStep)): a crash cannot separate the
//!   events from the answer. After a restart, a retry is replayed if the command committed
//!   and runs if it did not.
//! - Answers that append nothing (refusals, nothing to do, bad bodies) are stored after
//!   the command, before the response is sent: if the process dies in between, nothing was
//!   written and nothing was answered, so running the retry is correct.
//! - Nothing is stored while a request runs, so nothing can be left "in progress" by a
//!   dead process: a retry after a crash is answered at once, on every engine. A duplicate
//!   arriving while the first request still runs *in this process* gets 409. Duplicates
//!   running at once in several processes (FoundationDB) may both decide, but the record's
//!   key admits one append: the other request replays the stored answer.
//! - A retry with the same key but another body gets 422. Bodies are compared by the
//!   SHA-256 of their canonical JSON (keys sorted, no whitespace), so key order and
//!   spacing do not matter; a body that is not JSON is hashed as it is.
//! - Answers that invite a retry (409 conflict, 5xx) are not stored.
//! - Records expire after the TTL; a sweeper deletes expired ones.
//!
//! The stored format of a record is `crate::format::idempotency`'s; module `replay` holds
//! what a record answers, `hash` the comparison of bodies, `ticket` the run of a claimed
//! request and its append step; this module claims keys, stores answers and sweeps expired
//! records.

mod hash;
mod replay;
mod ticket;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::backend::{Backend, TxFailure};
use crate::format::idempotency::{Answer, Record, RecordBody, stands};
use crate::format::{IdempotencyKeys, after, end_of, now_micros};
use ticket::{Running, Seen, StepState};

pub use hash::{BodyHash, body_hash};
pub use replay::StoredResponse;
pub use ticket::Ticket;

/// Longest accepted key, in bytes.
pub const MAX_KEY_LEN: usize = 255;

/// Records deleted per sweeper transaction.
const SWEEP_PAGE: usize = 512;

/// What to do with a request carrying a key.
pub enum Claim {
    /// First time: run the command with the ticket's [`Ticket::append_step`], then
    /// [`Ticket::finish`].
    Run(Ticket),
    /// Seen and answered: send this response again.
    Replay(StoredResponse),
    /// A request with this key is running in this process right now.
    InProgress,
    /// The key was used with another body.
    Mismatch,
}

/// How a request with a key ends.
#[derive(Debug, PartialEq)]
pub enum Settlement {
    /// Send this response (it is stored when it does not invite a retry).
    Respond(StoredResponse),
    /// Another request with the key was answered first: send its response again.
    Replay(StoredResponse),
    /// Another request with the key, but another body, was answered first.
    Mismatch,
}

/// A malformed key.
#[derive(Debug, thiserror::Error)]
#[error("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters, got {0:?}")]
pub struct BadKey(pub String);

/// The idempotency records of an app.
#[derive(Clone)]
pub struct Idempotency {
    backend: Arc<dyn Backend>,
    keys: IdempotencyKeys,
    ttl: Duration,
    running: Arc<Mutex<HashSet<Vec<u8>>>>,
}

impl Idempotency {
    /// Records in `backend`, kept for `ttl`.
    pub fn new(backend: Arc<dyn Backend>, ttl: Duration) -> Self {
        let keys = IdempotencyKeys::new(backend.as_ref());
        Idempotency { backend, keys, ttl, running: Arc::default() }
    }

    fn key(&self, command: &str, key: &str) -> Result<Vec<u8>, BadKey> {
        if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(BadKey(key.chars().take(MAX_KEY_LEN + 1).collect()));
        }
        Ok(self.keys.record(command, key))
    }

    fn expires_micros(&self) -> u64 {
        now_micros().saturating_add(self.ttl.as_micros() as u64)
    }

    /// Looks up `key` for a request of `command` with `body`.
    pub async fn claim(&self, command: &str, key: &str, body: &[u8]) -> Result<Claim, ClaimError> {
        let record_key = self.key(command, key)?;
        let body_hash = body_hash(body);
        if !self.running.lock().expect("running keys").insert(record_key.clone()) {
            return Ok(Claim::InProgress);
        }
        let running = Running { keys: self.running.clone(), key: record_key.clone() };
        if let Some(record) = self.stored(&record_key).await? {
            return Ok(match record.settlement(&body_hash) {
                Settlement::Replay(response) => Claim::Replay(response),
                _ => Claim::Mismatch,
            });
        }
        let state = Arc::new(StepState { record_key, body_hash, seen: Mutex::new(Seen::Nothing) });
        Ok(Claim::Run(Ticket { idempotency: self.clone(), state, _running: running }))
    }

    /// The live record at `record_key`, if any.
    async fn stored(&self, record_key: &[u8]) -> Result<Option<Record>, TxFailure> {
        self.backend
            .transact(move |tx| async move { Ok(tx.get(record_key).await?.filter(|bytes| stands(bytes))) })
            .await
            .map(|bytes| bytes.as_deref().and_then(Record::decode))
    }

    /// Stores `response` (which appended nothing) at `record_key` unless a live record is
    /// there already; returns that record's outcome then. A run that finds the very record
    /// it writes (its commit landed, reported unknown) answers as the first.
    async fn store(&self, state: &StepState, response: StoredResponse) -> Result<Settlement, TxFailure> {
        let body = RecordBody {
            body_hash: state.body_hash,
            expires_micros: self.expires_micros(),
            answer: Answer::Response(response.clone()),
        };
        let (record_key, value) = (&state.record_key, &Record::encode(&body));
        let existing = self
            .backend
            .transact(move |tx| async move {
                match tx.get(record_key).await? {
                    // This call's own record: an earlier run of this transaction committed
                    // although its result was reported unknown (the expiry, to the
                    // microsecond, tells it from another request's).
                    Some(bytes) if bytes == *value => Ok(None),
                    Some(bytes) if stands(&bytes) => Ok(Some(bytes)),
                    _ => {
                        tx.set(record_key, value);
                        Ok(None)
                    }
                }
            })
            .await?;
        Ok(match existing.as_deref().and_then(Record::decode) {
            Some(record) => record.settlement(&state.body_hash),
            None => Settlement::Respond(response),
        })
    }

    /// Deletes expired records; returns how many.
    pub async fn sweep(&self) -> Result<usize, ClaimError> {
        let mut deleted = 0;
        let mut from = self.keys.all().to_vec();
        let end = end_of(self.keys.all());
        loop {
            let (begin, end) = (&from, &end);
            let (count, next) = self
                .backend
                .transact(move |tx| async move {
                    let page = tx.scan(begin, end, SWEEP_PAGE).await?;
                    let mut count = 0;
                    for kv in &page {
                        if !stands(&kv.value) {
                            tx.clear(&kv.key);
                            count += 1;
                        }
                    }
                    let next = (page.len() == SWEEP_PAGE).then(|| after(&page[page.len() - 1].key));
                    Ok((count, next))
                })
                .await?;
            deleted += count;
            match next {
                Some(next) => from = next,
                None => return Ok(deleted),
            }
        }
    }
}

/// Why a key could not be claimed or settled.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// The key is malformed (400).
    #[error(transparent)]
    BadKey(#[from] BadKey),
    /// The store failed (500).
    #[error("idempotency store: {0}")]
    Store(#[from] TxFailure),
}

#[cfg(test)]
mod tests;
