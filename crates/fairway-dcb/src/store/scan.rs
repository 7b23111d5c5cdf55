//! Reading one page of one planned scan inside a transaction.

use crate::codec;
use crate::error::StorageError;
use crate::kv::{KvTransaction, RangeScan};
use crate::layout::PositionedRange;
use crate::model::{Position, SequencedEvent};
use crate::store::plan::{Scan, ScanSource};

/// A page of matching events and how far the scan got.
pub struct Page {
    /// Matching events, in scan order.
    pub events: Vec<SequencedEvent>,
    /// The last position the scan looked at (matching or not), if any.
    pub last_scanned: Option<Position>,
    /// Whether the range holds nothing more past `last_scanned`.
    pub exhausted: bool,
}

/// Scans up to `limit` keys of `scan` with positions in `[low, high]`, fetching and
/// filtering the events. The index range read adds a read conflict unless `snapshot`;
/// event fetches are always snapshot reads (stored events never change).
#[allow(clippy::too_many_arguments)]
pub async fn read_page<T: KvTransaction>(
    tx: &T,
    log: &PositionedRange,
    scan: &Scan,
    low: Position,
    high: Position,
    reverse: bool,
    limit: usize,
    snapshot: bool,
) -> Result<Page, StorageError> {
    let (begin, end) = scan.range.bounds(low, high);
    let range = RangeScan { begin, end, limit, reverse, snapshot };
    let mut events = Vec::new();
    let mut last_scanned = None;
    let visited = match scan.source {
        ScanSource::Log => {
            tx.scan_range(&range, |key, value| {
                let position = position_in(&scan.range, key)?;
                last_scanned = Some(position);
                let (event, recorded_at) = codec::decode(value)?;
                if scan.filter.as_ref().is_none_or(|item| item.matches(&event)) {
                    events.push(SequencedEvent { position, recorded_at, event });
                }
                Ok(())
            })
            .await?
        }
        ScanSource::Index => {
            let mut positions = Vec::new();
            let visited = tx
                .scan_range(&range, |key, _| {
                    positions.push(position_in(&scan.range, key)?);
                    Ok(())
                })
                .await?;
            last_scanned = positions.last().copied();
            for position in positions {
                let record = tx
                    .get(&log.key(position), true)
                    .await?
                    .ok_or_else(|| StorageError::Corrupt(format!("index points at missing event {position}")))?;
                let (event, recorded_at) = codec::decode(&record)?;
                if scan.filter.as_ref().is_none_or(|item| item.matches(&event)) {
                    events.push(SequencedEvent { position, recorded_at, event });
                }
            }
            visited
        }
    };
    Ok(Page { events, last_scanned, exhausted: visited < limit })
}

fn position_in(range: &PositionedRange, key: &[u8]) -> Result<Position, StorageError> {
    range.position_of(key).ok_or_else(|| StorageError::Corrupt("index key without a position".into()))
}
