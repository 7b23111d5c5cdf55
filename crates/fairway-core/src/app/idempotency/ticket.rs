//! [`Ticket`]: the right to run a request whose key has no record yet, and the append step
//! writing the key's record in the command's own append transaction.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use fairway_dcb::{AppendCondition, Appended, Error as StoreError, RawEvent, Receipt};
use futures::FutureExt;
use futures::future::BoxFuture;

use super::{BodyHash, ClaimError, Idempotency, Settlement, StoredResponse};
use crate::command::AppendStep;
use crate::format::idempotency::{Answer, Record, RecordBody, STAMP_AT, stands};

/// Marks a key as running in this process until dropped (also when the request panics).
pub(super) struct Running {
    pub(super) keys: Arc<Mutex<HashSet<Vec<u8>>>>,
    pub(super) key: Vec<u8>,
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
pub(super) enum Seen {
    /// It did not append (yet).
    Nothing,
    /// It appended the events and the record with them.
    Recorded,
    /// The key already held a record: nothing was appended.
    Existing(Record),
}

/// What a ticket and its append step share.
#[derive(Debug)]
pub(super) struct StepState {
    pub(super) record_key: Vec<u8>,
    pub(super) body_hash: BodyHash,
    pub(super) seen: Mutex<Seen>,
}

/// The right to run a request whose key has no record yet.
pub struct Ticket {
    pub(super) idempotency: Idempotency,
    pub(super) state: Arc<StepState>,
    pub(super) _running: Running,
}

impl Ticket {
    /// The append step writing the key's record in the command's append transaction.
    pub fn append_step(&self) -> Arc<dyn AppendStep> {
        Arc::new(RecordingAppend { idempotency: self.idempotency.clone(), state: self.state.clone() })
    }

    /// Settles the key once the command answered `response`: stores it (unless it was
    /// stored with the events, or invites a retry), or returns the answer that another
    /// request with the key stored first.
    pub async fn finish(self, response: StoredResponse) -> Result<Settlement, ClaimError> {
        let seen = std::mem::replace(&mut *self.state.seen.lock().expect("step state"), Seen::Nothing);
        match seen {
            Seen::Existing(record) => Ok(record.settlement(&self.state.body_hash)),
            Seen::Recorded => Ok(Settlement::Respond(response)),
            Seen::Nothing if response.invites_retry() => Ok(Settlement::Respond(response)),
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
        events: Vec<RawEvent>,
        condition: AppendCondition,
        attempt: u32,
    ) -> BoxFuture<'_, Result<Appended, StoreError>> {
        async move {
            let count = u16::try_from(events.len()).unwrap_or(u16::MAX);
            let body = RecordBody {
                body_hash: self.state.body_hash,
                expires_micros: self.idempotency.expires_micros(),
                answer: Answer::Appended { events: count, attempts: attempt },
            };
            let receipt = Receipt {
                key: self.state.record_key.clone(),
                value: Record::encode(&body),
                stamp_at: Some(STAMP_AT),
                stands,
            };
            let backend = &self.idempotency.backend;
            match backend.append_with_receipt(events, vec![condition], receipt).await {
                Ok(appended) => {
                    if !appended.already_stored {
                        *self.state.seen.lock().expect("step state") = Seen::Recorded;
                    }
                    Ok(appended)
                }
                // Another request with the key answered first: the command ends with this
                // error, and `Ticket::finish` replays that request's answer instead.
                Err(StoreError::ReceiptStands { value }) => {
                    let record = Record::decode(&value).ok_or_else(|| {
                        StoreError::Storage(fairway_dcb::StorageError::Corrupt("undecodable idempotency record".into()))
                    })?;
                    *self.state.seen.lock().expect("step state") = Seen::Existing(record);
                    Err(StoreError::ReceiptStands { value })
                }
                Err(other) => Err(other),
            }
        }
        .boxed()
    }
}
