//! Receipts: one more key written in an append's own transaction, so that it commits with
//! the events or not at all (e.g. the answer stored under an idempotency key: a crash can
//! never leave events without it, or it without events).

use futures::FutureExt;
use futures::future::BoxFuture;

use super::DcbStore;
use crate::error::{InvalidInput, Result, StorageError};
use crate::event_store::Appended;
use crate::kv::{KvEngine, KvTransaction, VERSIONSTAMP_LEN};
use crate::layout::Layout;
use crate::model::limits::{MAX_PAYLOAD_BYTES, MAX_RECEIPT_KEY_BYTES};
use crate::model::{AppendCondition, RawEvent};

/// A key-value receipt written in the transaction of an append.
///
/// A receipt guards its key: if the key already holds a value that still
/// [stands](Receipt::stands), the append writes nothing and fails with
/// [`Error::ReceiptStands`](crate::Error::ReceiptStands) carrying that value (so two appends
/// with one receipt key never both commit).
#[derive(Clone, Debug)]
pub struct Receipt {
    /// The key: it must lie under a [`Layout::user_prefix`](crate::layout::Layout::user_prefix)
    /// of the store's namespace, at most [`MAX_RECEIPT_KEY_BYTES`] bytes long.
    pub key: Vec<u8>,
    /// The value, at most [`MAX_PAYLOAD_BYTES`] bytes.
    pub value: Vec<u8>,
    /// Where in `value` the commit's 10-byte versionstamp is written, if anywhere: the
    /// positions of the appended events follow from it
    /// ([`Versionstamp::positions`](crate::Versionstamp::positions)).
    pub stamp_at: Option<usize>,
    /// Whether a value already stored at `key` still stands (then nothing is written and
    /// the append fails with it); a value that does not stand (e.g. expired) is overwritten.
    pub stands: fn(&[u8]) -> bool,
}

impl Receipt {
    /// Checks the receipt's rules: its key's place, its size, where its stamp goes.
    pub(super) fn check(&self, layout: &Layout) -> Result<(), InvalidInput> {
        let rule = |rule: String| Err(InvalidInput::MalformedReceipt { rule });
        if !layout.is_user_key(&self.key) {
            return rule("the key must lie under a user prefix of the store's namespace".into());
        }
        if self.key.len() > MAX_RECEIPT_KEY_BYTES {
            return rule(format!("key of {} bytes; the limit is {MAX_RECEIPT_KEY_BYTES} bytes", self.key.len()));
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

    /// The receipt's `(key length, value length)`, for the append's transaction size.
    pub(super) fn size(&self) -> (usize, usize) {
        (self.key.len(), self.value.len())
    }

    /// The value standing at the receipt's key, if one does.
    pub(super) async fn standing<T: KvTransaction>(&self, tx: &T) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(tx.get(&self.key, false).await?.filter(|existing| (self.stands)(existing)))
    }

    /// Writes the receipt (its stamp filled in at commit).
    pub(super) fn write<T: KvTransaction>(&self, tx: &T) {
        match self.stamp_at {
            Some(at) => tx.set_versionstamped_value(&self.key, self.value.clone(), at),
            None => tx.set(&self.key, &self.value),
        }
    }
}

impl<E: KvEngine> DcbStore<E> {
    /// Appends `events` if every one of `conditions` holds and writes `receipt` in the same
    /// transaction, unless the receipt's key already holds a standing value: then nothing
    /// is written and the append fails with
    /// [`Error::ReceiptStands`](crate::Error::ReceiptStands). Checks run in this order: the
    /// receipt's key, the events' ids (all stored: nothing written, not even the receipt),
    /// the conditions.
    ///
    /// The future is boxed (as `EventStore::append`'s is), so that it is `Send` wherever
    /// it is awaited.
    pub fn append_with_receipt(
        &self,
        events: Vec<RawEvent>,
        conditions: Vec<AppendCondition>,
        receipt: Receipt,
    ) -> BoxFuture<'_, Result<Appended>> {
        async move { self.commit_append(events, conditions, Some(&receipt)).await }.boxed()
    }
}
