//! The one append path, for plain appends and appends with a receipt: boundary checks,
//! one transaction (its own earlier commit, receipt, ids, conditions, writes), then the
//! outcome as positions.

use tracing::{Instrument, debug, debug_span};

use super::DcbStore;
use super::append::{AppendOutcome, PreparedAppend, append_body, positions_of, validate};
use super::marker::CommitMarker;
use super::receipt::Receipt;
use crate::error::{Error, InvalidInput, Result};
use crate::event_store::Appended;
use crate::kv::KvEngine;
use crate::model::limits::MAX_APPEND_BYTES;
use crate::model::{AppendCondition, RawEvent};

impl<E: KvEngine> DcbStore<E> {
    /// The bytes an append of `events` under `conditions` (no receipt) counts against the
    /// transaction limit, as the store checks them
    /// ([`MAX_APPEND_BYTES`](crate::limits::MAX_APPEND_BYTES)); for tests near the limit.
    #[doc(hidden)]
    pub fn append_transaction_bytes(&self, events: Vec<RawEvent>, conditions: Vec<AppendCondition>) -> usize {
        let layout = self.layout();
        let marker = self.engine().commit_result_may_be_unknown().then(|| CommitMarker::new(layout));
        let extra: Vec<_> = marker.as_ref().map(CommitMarker::size).into_iter().collect();
        PreparedAppend::new(layout, events, conditions).transaction_bytes(layout, &extra)
    }

    /// Appends `events` if every one of `conditions` holds, with `receipt` if given.
    pub(super) async fn commit_append(
        &self,
        events: Vec<RawEvent>,
        conditions: Vec<AppendCondition>,
        receipt: Option<&Receipt>,
    ) -> Result<Appended> {
        validate(&events, &conditions)?;
        let layout = self.layout();
        if let Some(receipt) = receipt {
            receipt.check(layout)?;
        }
        let count = events.len();
        let span = debug_span!(
            "dcb.append",
            namespace = %self.namespace(),
            events = count,
            conditions = conditions.len(),
            receipt = receipt.is_some()
        );
        let prepared = PreparedAppend::new(layout, events, conditions);
        let marker = self.engine().commit_result_may_be_unknown().then(|| CommitMarker::new(layout));
        let marker = marker.as_ref();
        let extra: Vec<_> = marker.map(CommitMarker::size).into_iter().chain(receipt.map(Receipt::size)).collect();
        let bytes = prepared.transaction_bytes(layout, &extra);
        if bytes > MAX_APPEND_BYTES {
            return Err(InvalidInput::BatchTooLarge { bytes, limit: MAX_APPEND_BYTES }.into());
        }
        let committed = self
            .engine()
            .transact(|tx| {
                let prepared = &prepared;
                async move {
                    if let Some(marker) = marker
                        && let Some(stamp) = marker.landed(&tx).await?
                    {
                        return Ok::<_, Error>(AppendOutcome::LandedBefore(stamp));
                    }
                    if let Some(receipt) = receipt
                        && let Some(value) = receipt.standing(&tx).await?
                    {
                        return Ok::<_, Error>(AppendOutcome::ReceiptStands(value));
                    }
                    let outcome = append_body(&tx, layout, prepared).await?;
                    if let AppendOutcome::Written = outcome {
                        if let Some(receipt) = receipt {
                            receipt.write(&tx);
                        }
                        if let Some(marker) = marker {
                            marker.write(&tx);
                        }
                    }
                    Ok(outcome)
                }
            })
            .instrument(span)
            .await?;
        match committed.value {
            AppendOutcome::Written => {
                Ok(Appended { positions: positions_of(committed.versionstamp, count)?, already_stored: false })
            }
            AppendOutcome::LandedBefore(stamp) => {
                debug!(events = count, "an earlier run of the append landed; its positions are the answer");
                Ok(Appended { positions: stamp.positions(count as u16), already_stored: false })
            }
            AppendOutcome::AlreadyStored(positions) => Ok(Appended { positions, already_stored: true }),
            AppendOutcome::ReceiptStands(value) => Err(Error::ReceiptStands { value }),
        }
    }
}
