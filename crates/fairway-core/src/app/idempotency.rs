//! `Idempotency-Key` support: the first answer to a key is stored for a TTL and replayed to
//! every retry with the same key and body, so a client may retry a command after a timeout
//! or a crash without running it twice.
//!
//! - A command that appends events writes its answer under the key *in the append's own
//!   transaction* (an [`AppendStep`]): a crash cannot separate the events from the answer.
//!   After a restart, a retry is replayed if the command committed and runs if it did not.
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

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fairway_dcb::kv::{VERSIONSTAMP_LEN, Versionstamp};
use fairway_dcb::{AppendCondition, AppendRecord, Appended, Error as StoreError, Event, Position, RecordedAppend};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backend::{Backend, TxFailure, transact_value};
use crate::command::AppendStep;
use crate::registry::CommandReply;

/// Longest accepted key, in bytes.
pub const MAX_KEY_LEN: usize = 255;

/// Records deleted per sweeper transaction.
const SWEEP_PAGE: usize = 512;

/// First byte of a record: its format.
const FORMAT: u8 = 1;
/// Where the commit stamp of an appending command sits in a record.
const STAMP_AT: usize = 1;

/// A stored response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Vec<u8>,
}

impl StoredResponse {
    /// The 200 response to a command that answered `reply`.
    pub fn reply(reply: &CommandReply) -> Self {
        let value = serde_json::to_value(reply).expect("replies encode");
        StoredResponse { status: 200, body: serde_json::to_vec(&value).expect("JSON encodes") }
    }

    /// Whether the response invites a retry (and is therefore not stored).
    fn invites_retry(&self) -> bool {
        self.status == 409 || self.status >= 500
    }
}

/// The SHA-256 of a request body: of its canonical JSON if it is JSON, else of its bytes.
pub type BodyHash = [u8; 32];

/// What a key's record says after [`FORMAT`] and the stamp.
#[derive(Debug, Serialize, Deserialize)]
struct RecordBody {
    body_hash: BodyHash,
    expires_micros: u64,
    answer: Answer,
}

#[derive(Debug, Serialize, Deserialize)]
enum Answer {
    /// The command appended `events` events in `attempts` cycles, at the record's stamp.
    Appended { events: u16, attempts: u32 },
    /// The command appended nothing and answered this.
    Response(StoredResponse),
}

/// A decoded record.
#[derive(Debug)]
struct Record {
    stamp: Versionstamp,
    body: RecordBody,
}

impl Record {
    fn encode(body: &RecordBody) -> Vec<u8> {
        let mut bytes = vec![FORMAT];
        bytes.extend_from_slice(&[0; VERSIONSTAMP_LEN]);
        rmp_serde::encode::write_named(&mut bytes, body).expect("idempotency records encode");
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<Record> {
        let (&format, rest) = bytes.split_first()?;
        if format != FORMAT || rest.len() < VERSIONSTAMP_LEN {
            return None;
        }
        let (stamp, body) = rest.split_at(VERSIONSTAMP_LEN);
        Some(Record { stamp: Versionstamp(stamp.try_into().ok()?), body: rmp_serde::from_slice(body).ok()? })
    }

    /// The response to replay.
    fn response(&self) -> StoredResponse {
        match &self.body.answer {
            Answer::Appended { events, attempts } => {
                let positions: Vec<Position> =
                    (0..*events).map(|i| Position::new(self.stamp.commit(), self.stamp.order(), i)).collect();
                StoredResponse::reply(&CommandReply::appended(&positions, *attempts))
            }
            Answer::Response(response) => response.clone(),
        }
    }

    /// What a request with `body_hash` gets from this record.
    fn outcome(&self, body_hash: &BodyHash) -> Outcome {
        if &self.body.body_hash == body_hash { Outcome::Replay(self.response()) } else { Outcome::Mismatch }
    }
}

/// Whether stored record bytes are a live record (used by the append transaction).
fn stands(bytes: &[u8]) -> bool {
    Record::decode(bytes).is_some_and(|r| r.body.expires_micros > now_micros())
}

fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// The SHA-256 of `body`'s canonical JSON (object keys sorted, no insignificant
/// whitespace), or of its raw bytes when it is not JSON.
pub fn body_hash(body: &[u8]) -> BodyHash {
    let mut hasher = Sha256::new();
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => {
            let mut canonical = Vec::with_capacity(body.len());
            write_canonical(&value, &mut canonical);
            hasher.update(b"json\0");
            hasher.update(&canonical);
        }
        Err(_) => {
            hasher.update(b"raw\0");
            hasher.update(body);
        }
    }
    hasher.finalize().into()
}

fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (n, (key, value)) in entries.into_iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key).expect("strings encode");
                out.push(b':');
                write_canonical(value, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("scalars encode"),
    }
}

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
pub enum Outcome {
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
    root: Vec<u8>,
    ttl: Duration,
    running: Arc<Mutex<HashSet<Vec<u8>>>>,
}

impl Idempotency {
    /// Records in `backend`, kept for `ttl`.
    pub fn new(backend: Arc<dyn Backend>, ttl: Duration) -> Self {
        let root = backend.keyspace("idempotency");
        Idempotency { backend, root, ttl, running: Arc::default() }
    }

    fn key(&self, command: &str, key: &str) -> Result<Vec<u8>, BadKey> {
        if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(BadKey(key.chars().take(MAX_KEY_LEN + 1).collect()));
        }
        Ok([self.root.as_slice(), command.as_bytes(), b"\0", key.as_bytes()].concat())
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
            return Ok(match record.outcome(&body_hash) {
                Outcome::Replay(response) => Claim::Replay(response),
                _ => Claim::Mismatch,
            });
        }
        let state = Arc::new(StepState { record_key, body_hash, seen: Mutex::new(Seen::Nothing) });
        Ok(Claim::Run(Ticket { idempotency: self.clone(), state, _running: running }))
    }

    /// The live record at `record_key`, if any.
    async fn stored(&self, record_key: &[u8]) -> Result<Option<Record>, TxFailure> {
        let record_key = record_key.to_vec();
        transact_value(self.backend.as_ref(), move |tx| {
            let record_key = record_key.clone();
            async move { Ok(tx.get(&record_key).await?.filter(|bytes| stands(bytes))) }.boxed()
        })
        .await
        .map(|bytes| bytes.as_deref().and_then(Record::decode))
    }

    /// Stores `response` (which appended nothing) at `record_key` unless a live record is
    /// there already; returns that record's outcome then.
    async fn store(&self, state: &StepState, response: StoredResponse) -> Result<Outcome, TxFailure> {
        let body = RecordBody {
            body_hash: state.body_hash,
            expires_micros: self.expires_micros(),
            answer: Answer::Response(response.clone()),
        };
        let (record_key, value) = (state.record_key.clone(), Record::encode(&body));
        let existing = transact_value(self.backend.as_ref(), move |tx| {
            let (record_key, value) = (record_key.clone(), value.clone());
            async move {
                match tx.get(&record_key).await? {
                    Some(bytes) if stands(&bytes) => Ok(Some(bytes)),
                    _ => {
                        tx.set(&record_key, &value);
                        Ok(None)
                    }
                }
            }
            .boxed()
        })
        .await?;
        Ok(match existing.as_deref().and_then(Record::decode) {
            Some(record) => record.outcome(&state.body_hash),
            None => Outcome::Respond(response),
        })
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
                    let page = tx.scan(&begin, &end, SWEEP_PAGE).await?;
                    let mut count = 0;
                    for kv in &page {
                        if !stands(&kv.value) {
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

/// Marks a key as running in this process until dropped (also when the request panics).
struct Running {
    keys: Arc<Mutex<HashSet<Vec<u8>>>>,
    key: Vec<u8>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.remove(&self.key);
        }
    }
}

/// What the append step saw.
#[derive(Debug)]
enum Seen {
    /// It did not append (yet).
    Nothing,
    /// It appended the events and the record with them.
    Recorded,
    /// The key already held a record: nothing was appended.
    Existing(Record),
}

/// What a ticket and its append step share.
#[derive(Debug)]
struct StepState {
    record_key: Vec<u8>,
    body_hash: BodyHash,
    seen: Mutex<Seen>,
}

/// The right to run a request whose key has no record yet.
pub struct Ticket {
    idempotency: Idempotency,
    state: Arc<StepState>,
    _running: Running,
}

impl Ticket {
    /// The append step writing the key's record in the command's append transaction.
    pub fn append_step(&self) -> Arc<dyn AppendStep> {
        Arc::new(RecordingAppend { idempotency: self.idempotency.clone(), state: self.state.clone() })
    }

    /// Settles the key once the command answered `response`: stores it (unless it was
    /// stored with the events, or invites a retry), or returns the answer that another
    /// request with the key stored first.
    pub async fn finish(self, response: StoredResponse) -> Result<Outcome, ClaimError> {
        let seen = std::mem::replace(&mut *self.state.seen.lock().expect("step state"), Seen::Nothing);
        match seen {
            Seen::Existing(record) => Ok(record.outcome(&self.state.body_hash)),
            Seen::Recorded => Ok(Outcome::Respond(response)),
            Seen::Nothing if response.invites_retry() => Ok(Outcome::Respond(response)),
            Seen::Nothing => Ok(self.idempotency.store(&self.state, response).await?),
        }
    }
}

/// Appends a command's events together with its key's record.
struct RecordingAppend {
    idempotency: Idempotency,
    state: Arc<StepState>,
}

impl AppendStep for RecordingAppend {
    fn append(
        &self,
        events: Vec<Event>,
        condition: AppendCondition,
        attempt: u32,
    ) -> BoxFuture<'_, Result<Option<Appended>, StoreError>> {
        async move {
            let count = u16::try_from(events.len()).unwrap_or(u16::MAX);
            let body = RecordBody {
                body_hash: self.state.body_hash,
                expires_micros: self.idempotency.expires_micros(),
                answer: Answer::Appended { events: count, attempts: attempt },
            };
            let record = AppendRecord {
                key: self.state.record_key.clone(),
                value: Record::encode(&body),
                stamp_at: Some(STAMP_AT),
                stands,
            };
            let backend = &self.idempotency.backend;
            match backend.append_with_record(events, vec![condition], record).await? {
                RecordedAppend::Appended(appended) => {
                    if !appended.already_stored {
                        *self.state.seen.lock().expect("step state") = Seen::Recorded;
                    }
                    Ok(Some(appended))
                }
                RecordedAppend::Existing(bytes) => {
                    let record = Record::decode(&bytes).ok_or_else(|| {
                        StoreError::Storage(fairway_dcb::StorageError::Corrupt("undecodable idempotency record".into()))
                    })?;
                    *self.state.seen.lock().expect("step state") = Seen::Existing(record);
                    Ok(None)
                }
            }
        }
        .boxed()
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
mod tests {
    use super::*;

    #[test]
    fn bodies_hash_by_their_canonical_json() {
        let a = body_hash(br#"{"course_id":"go","capacity":3,"tags":[{"b":1,"a":2}]}"#);
        let b = body_hash(b" { \"tags\" : [ {\"a\":2, \"b\":1} ],\n \"capacity\": 3, \"course_id\": \"go\" } ");
        assert_eq!(a, b, "key order and whitespace do not matter");
        assert_ne!(a, body_hash(br#"{"course_id":"go","capacity":4,"tags":[{"b":1,"a":2}]}"#));
        assert_ne!(a, body_hash(br#"{"course_id":"go","capacity":3,"tags":[{"a":1,"b":2}]}"#));
        assert_ne!(body_hash(b"[1,2]"), body_hash(b"[2,1]"), "arrays keep their order");
        assert_eq!(body_hash(b"not json"), body_hash(b"not json"));
        assert_ne!(body_hash(b"not json"), body_hash(b"not json "), "raw bytes when not JSON");
    }

    #[test]
    fn records_round_trip_and_rebuild_positions_from_the_stamp() {
        let body = RecordBody {
            body_hash: [7; 32],
            expires_micros: u64::MAX,
            answer: Answer::Appended { events: 2, attempts: 3 },
        };
        let mut bytes = Record::encode(&body);
        bytes[STAMP_AT..STAMP_AT + VERSIONSTAMP_LEN].copy_from_slice(&Versionstamp::new(42, 5).0);
        assert!(stands(&bytes));
        let record = Record::decode(&bytes).unwrap();
        let expected = [Position::new(42, 5, 0), Position::new(42, 5, 1)];
        assert_eq!(
            record.outcome(&[7; 32]),
            Outcome::Replay(StoredResponse::reply(&CommandReply::appended(&expected, 3)))
        );
        assert_eq!(record.outcome(&[8; 32]), Outcome::Mismatch);
        let expired = RecordBody { expires_micros: 1, ..body };
        assert!(!stands(&Record::encode(&expired)));
        assert!(!stands(b"\x00garbage"));
    }
}
