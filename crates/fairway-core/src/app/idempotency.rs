//! `Idempotency-Key` support: the first response to a key is stored in the store for a TTL
//! and replayed to every retry with the same key and body, so a client may retry a command
//! after a timeout without running it twice.
//!
//! - The first request claims the key in a transaction (so concurrent retries cannot both
//!   run the command); a concurrent duplicate gets 409 until the first one finishes.
//! - A retry with the same key but a different body gets 422.
//! - Responses that invite a retry (409 conflict, 5xx) release the key instead of storing.
//! - Records expire after the TTL; a sweeper deletes expired ones.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use serde::{Deserialize, Serialize};

use crate::backend::{Backend, TxFailure, transact_value};

/// Longest accepted key, in bytes.
pub const MAX_KEY_LEN: usize = 255;

/// How long a claim protects a request still running (after which a retry may run it).
const CLAIM: Duration = Duration::from_secs(60);

/// Records deleted per sweeper transaction.
const SWEEP_PAGE: usize = 512;

/// A stored response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    body_hash: u32,
    expires_micros: u64,
    response: Option<StoredResponse>,
}

/// What to do with a request carrying a key.
#[derive(Debug, PartialEq)]
pub enum Claim {
    /// First time: run the command, then [`Idempotency::finish`].
    Run,
    /// Seen and answered: send this response again.
    Replay(StoredResponse),
    /// The first request with this key is still running.
    InProgress,
    /// The key was used with another body.
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
    root: Vec<u8>,
    ttl: Duration,
}

fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

fn decode(bytes: &[u8]) -> Option<Record> {
    rmp_serde::from_slice(bytes).ok()
}

fn encode(record: &Record) -> Vec<u8> {
    rmp_serde::to_vec_named(record).expect("idempotency records encode")
}

impl Idempotency {
    /// Records in `backend`, kept for `ttl`.
    pub fn new(backend: Arc<dyn Backend>, ttl: Duration) -> Self {
        let root = backend.keyspace("idempotency");
        Idempotency { backend, root, ttl }
    }

    fn key(&self, command: &str, key: &str) -> Result<Vec<u8>, BadKey> {
        if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(BadKey(key.chars().take(MAX_KEY_LEN + 1).collect()));
        }
        Ok([self.root.as_slice(), command.as_bytes(), b"\0", key.as_bytes()].concat())
    }

    /// Claims `key` for a request of `command` with `body`.
    pub async fn claim(&self, command: &str, key: &str, body: &[u8]) -> Result<Claim, ClaimError> {
        let (record_key, body_hash) = (self.key(command, key)?, crc32fast::hash(body));
        let ttl = self.ttl;
        let claim = transact_value(self.backend.as_ref(), move |tx| {
            let record_key = record_key.clone();
            async move {
                let now = now_micros();
                if let Some(record) = tx.get(&record_key).await?.as_deref().and_then(decode)
                    && record.expires_micros > now
                {
                    return Ok(match record.response {
                        _ if record.body_hash != body_hash => Claim::Mismatch,
                        Some(response) => Claim::Replay(response),
                        None => Claim::InProgress,
                    });
                }
                let expires_micros = now + CLAIM.min(ttl).as_micros() as u64;
                tx.set(&record_key, &encode(&Record { body_hash, expires_micros, response: None }));
                Ok::<_, TxFailure>(Claim::Run)
            }
            .boxed()
        })
        .await?;
        Ok(claim)
    }

    /// Stores the response to a claimed key, or releases the key when the response invites
    /// a retry (409, 5xx).
    pub async fn finish(
        &self,
        command: &str,
        key: &str,
        body: &[u8],
        response: StoredResponse,
    ) -> Result<(), ClaimError> {
        let (record_key, body_hash) = (self.key(command, key)?, crc32fast::hash(body));
        let retryable = response.status == 409 || response.status >= 500;
        let (ttl, response) = (self.ttl, Arc::new(response));
        transact_value(self.backend.as_ref(), move |tx| {
            let (record_key, response) = (record_key.clone(), response.clone());
            async move {
                if retryable {
                    tx.clear(&record_key);
                } else {
                    let expires_micros = now_micros() + ttl.as_micros() as u64;
                    let record = Record { body_hash, expires_micros, response: Some((*response).clone()) };
                    tx.set(&record_key, &encode(&record));
                }
                Ok(())
            }
            .boxed()
        })
        .await?;
        Ok(())
    }

    /// Deletes expired records; returns how many.
    pub async fn sweep(&self) -> Result<usize, ClaimError> {
        let mut deleted = 0;
        let mut from = self.root.clone();
        let end = [self.root.as_slice(), &[0xff]].concat();
        loop {
            let (begin, end) = (from.clone(), end.clone());
            let (count, next) = transact_value(self.backend.as_ref(), move |tx| {
                let (begin, end) = (begin.clone(), end.clone());
                async move {
                    let now = now_micros();
                    let page = tx.scan(&begin, &end, SWEEP_PAGE).await?;
                    let mut count = 0;
                    for kv in &page {
                        if decode(&kv.value).is_none_or(|r| r.expires_micros <= now) {
                            tx.clear(&kv.key);
                            count += 1;
                        }
                    }
                    let next =
                        (page.len() == SWEEP_PAGE).then(|| [page[page.len() - 1].key.as_slice(), b"\0"].concat());
                    Ok((count, next))
                }
                .boxed()
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
