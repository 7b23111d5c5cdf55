//! Appends that write one more key in their own transaction: a record that commits with
//! the events or not at all (e.g. the answer stored under an idempotency key, so that a
//! crash can never leave events without it, or it without events).

use futures::FutureExt;
use futures::future::BoxFuture;
use tracing::{Instrument, debug_span};

use super::DcbStore;
use super::append::{AppendOutcome, PreparedAppend, append_body, positions_of, validate};
use crate::error::{Error, InvalidInput, Result};
use crate::event_store::Appended;
use crate::kv::{KvEngine, KvTransaction, VERSIONSTAMP_LEN};
use crate::model::limits::MAX_PAYLOAD_BYTES;
use crate::model::{AppendCondition, Event};

/// A key-value record written in the transaction of an append.
///
/// The record guards itself: if `key` already holds a value that still
/// [stands](AppendRecord::stands), the append writes nothing and that value is returned
/// (so two appends carrying one record key never both commit).
#[derive(Clone, Debug)]
pub struct AppendRecord {
    /// The key: it must lie under a [`Layout::user_prefix`](crate::layout::Layout::user_prefix)
    /// of the store's namespace.
    pub key: Vec<u8>,
    /// The value, at most [`MAX_PAYLOAD_BYTES`] bytes.
    pub value: Vec<u8>,
    /// Where in `value` the commit's 10-byte versionstamp is written, if anywhere: the
    /// positions of the appended events follow from it (commit, order within the commit,
    /// then the event's index in the batch).
    pub stamp_at: Option<usize>,
    /// Whether a value already stored at `key` still stands (then nothing is written and
    /// it is returned); a value that does not stand (e.g. expired) is overwritten.
    pub stands: fn(&[u8]) -> bool,
}

/// What an append with a record did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordedAppend {
    /// The events were written and the record with them. When `already_stored` is set,
    /// every event's id was stored before: nothing was written, not even the record.
    Appended(Appended),
    /// The record's key already held this standing value: nothing was written.
    Existing(Vec<u8>),
}

/// What the transaction body did.
enum Outcome {
    Append(AppendOutcome),
    Existing(Vec<u8>),
}

impl AppendRecord {
    fn check(&self, store_layout: &crate::layout::Layout) -> Result<(), InvalidInput> {
        let rule = |rule: String| Err(InvalidInput::MalformedRecord { rule });
        if !store_layout.is_user_key(&self.key) {
            return rule("the key must lie under a user prefix of the store's namespace".into());
        }
        if self.value.len() > MAX_PAYLOAD_BYTES {
            return rule(format!("value of {} bytes; the limit is {MAX_PAYLOAD_BYTES} bytes", self.value.len()));
        }
        if let Some(at) = self.stamp_at
            && at + VERSIONSTAMP_LEN > self.value.len()
        {
            return rule(format!(
                "a {VERSIONSTAMP_LEN}-byte stamp at offset {at} does not fit a value of {} bytes",
                self.value.len()
            ));
        }
        Ok(())
    }

    fn write<T: KvTransaction>(&self, tx: &T) {
        match self.stamp_at {
            Some(at) => tx.set_versionstamped_value(&self.key, self.value.clone(), at),
            None => tx.set(&self.key, &self.value),
        }
    }
}

impl<E: KvEngine> DcbStore<E> {
    /// Appends `events` if every one of `conditions` holds and writes `record` in the same
    /// transaction, unless the record's key already holds a standing value: then nothing
    /// is written and that value is returned. Checks run in this order: the record's key,
    /// the events' ids (all stored: nothing written, not even the record), the conditions.
    ///
    /// The future is boxed (as `EventStore::append`'s is), so that it is `Send` wherever
    /// it is awaited.
    pub fn append_with_record(
        &self,
        events: Vec<Event>,
        conditions: Vec<AppendCondition>,
        record: AppendRecord,
    ) -> BoxFuture<'_, Result<RecordedAppend>> {
        self.append_with_record_unboxed(events, conditions, record).boxed()
    }

    async fn append_with_record_unboxed(
        &self,
        events: Vec<Event>,
        conditions: Vec<AppendCondition>,
        record: AppendRecord,
    ) -> Result<RecordedAppend> {
        validate(&events, &conditions)?;
        let layout = &self.inner.layout;
        record.check(layout)?;
        let count = events.len();
        let span = debug_span!("dcb.append_with_record", namespace = %self.inner.namespace, events = count);
        let prepared = PreparedAppend::new(layout, events, conditions);
        let committed = self
            .inner
            .engine
            .transact(|tx| {
                let (prepared, record) = (&prepared, &record);
                async move {
                    if let Some(existing) = tx.get(&record.key, false).await?
                        && (record.stands)(&existing)
                    {
                        return Ok::<_, Error>(Outcome::Existing(existing));
                    }
                    let outcome = append_body(&tx, layout, prepared).await?;
                    if let AppendOutcome::Written = outcome {
                        record.write(&tx);
                    }
                    Ok(Outcome::Append(outcome))
                }
            })
            .instrument(span)
            .await?;
        match committed.value {
            Outcome::Existing(value) => Ok(RecordedAppend::Existing(value)),
            Outcome::Append(AppendOutcome::AlreadyStored(positions)) => {
                Ok(RecordedAppend::Appended(Appended { positions, already_stored: true }))
            }
            Outcome::Append(AppendOutcome::Written) => {
                let positions = positions_of(committed.versionstamp, count)?;
                Ok(RecordedAppend::Appended(Appended { positions, already_stored: false }))
            }
        }
    }
}
