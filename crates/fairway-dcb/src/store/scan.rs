//! Reading one page of one planned scan inside a transaction.

use crate::codec;
use crate::error::StorageError;
use crate::kv::{KvTransaction, RangeScan};
use crate::layout::{self, PositionedRange};
use crate::model::{Position, SequencedEvent};
use crate::store::plan::{Scan, ScanSource};

/// A page of matching events and how far the scan got.
pub struct Page {
    /// Matching events, in scan order.
    pub events: Vec<SequencedEvent>,
    /// The position of the last key the scan visited (matching or not), if any.
    pub last_scanned: Option<Position>,
    /// Whether the range holds nothing more past `last_scanned`.
    pub exhausted: bool,
}

/// What one scan still has to cover: the positions wanted, and the keys not yet visited.
///
/// An index key stands for a block of positions of one append (see [`crate::layout`]),
/// keyed by the block's last position; a block may also hold earlier positions of the
/// same append. So the keys visited reach to the end of the append holding `high`, and
/// the block's positions are then filtered to the wanted bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Positions wanted, inclusive.
    wanted: (Position, Position),
    /// Key positions not yet visited, inclusive.
    keys: (Position, Position),
    exhausted: bool,
}

impl Window {
    /// The window over positions `[low, high]`.
    pub fn new(low: Position, high: Position) -> Self {
        let keys = (low, Position::new(high.commit(), high.batch_order(), u16::MAX));
        Window { wanted: (low, high), keys, exhausted: low > high }
    }

    /// Whether every key has been visited.
    pub fn is_exhausted(&self) -> bool {
        self.exhausted
    }

    /// A window with nothing left to visit.
    pub fn finished() -> Self {
        Window { wanted: (Position::MAX, Position::ZERO), keys: (Position::MAX, Position::ZERO), exhausted: true }
    }

    /// Moves past `page`, read in direction `reverse`.
    pub fn advance(&mut self, page: &Page, reverse: bool) {
        let last = if page.exhausted { None } else { page.last_scanned };
        match last {
            Some(last) if reverse && last > Position::ZERO => self.keys.1 = last.prev(),
            Some(last) if !reverse && last < Position::MAX => self.keys.0 = last.next(),
            _ => self.exhausted = true,
        }
        if self.keys.0 > self.keys.1 {
            self.exhausted = true;
        }
    }

    /// The key positions to scan for `source`: the log holds one position per key.
    fn key_bounds(&self, source: ScanSource) -> (Position, Position) {
        match source {
            ScanSource::Log => (self.keys.0.max(self.wanted.0), self.keys.1.min(self.wanted.1)),
            ScanSource::Index => self.keys,
        }
    }

    fn wants(&self, position: Position) -> bool {
        self.wanted.0 <= position && position <= self.wanted.1
    }
}

/// Scans up to `limit` keys of `scan` in `window`, fetching and filtering the events. The
/// index range read adds a read conflict unless `snapshot`; event fetches are always
/// snapshot reads (stored events never change).
pub async fn read_page<T: KvTransaction>(
    tx: &T,
    log: &PositionedRange,
    scan: &Scan,
    window: &Window,
    reverse: bool,
    limit: usize,
    snapshot: bool,
) -> Result<Page, StorageError> {
    let (low, high) = window.key_bounds(scan.source);
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
                .scan_range(&range, |key, value| {
                    let last = position_in(&scan.range, key)?;
                    last_scanned = Some(last);
                    let start = positions.len();
                    layout::block_positions(last, value, |p| {
                        if window.wants(p) {
                            positions.push(p);
                        }
                    })?;
                    if reverse {
                        positions[start..].reverse();
                    }
                    Ok(())
                })
                .await?;
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures::TryStreamExt;

    use super::*;
    use crate::kv::KvEngine;
    use crate::store::DcbStore;
    use crate::store::plan::plan_item;
    use crate::{EmbeddedEngine, EmbeddedOptions, Event, EventStore, Query, QueryItem, ReadOptions, Tag};

    /// Pages through `scan` with `limit` keys per page, as the readers do.
    async fn paged(
        store: &DcbStore<EmbeddedEngine>,
        scan: &Scan,
        low: Position,
        high: Position,
        reverse: bool,
        limit: usize,
    ) -> Vec<Position> {
        let (log, mut window, mut found) = (store.layout().log(), Window::new(low, high), Vec::new());
        while !window.is_exhausted() {
            let page = store
                .engine()
                .transact(|tx| {
                    let (log, scan) = (log.clone(), scan.clone());
                    async move { read_page(&tx, &log, &scan, &window, reverse, limit, true).await }
                })
                .await
                .unwrap()
                .value;
            found.extend(page.events.iter().map(|e| e.position));
            window.advance(&page, reverse);
        }
        found
    }

    /// Every window (bounds at every position, inside blocks too), both directions and
    /// small pages return exactly the matching positions in order, once each.
    #[tokio::test]
    async fn paging_through_blocks_matches_a_naive_filter() {
        let dir = tempfile::tempdir().unwrap();
        let options = EmbeddedOptions { durable: false, ..EmbeddedOptions::default() };
        let store = DcbStore::new(Arc::new(EmbeddedEngine::open(dir.path(), options).unwrap()), "scan").unwrap();
        let shared = Tag::parse("k:shared").unwrap();
        let odd = Tag::parse("k:odd").unwrap();
        for (batch, size) in [3usize, 1, 5, 2, 4].into_iter().enumerate() {
            let events = (0..size)
                .map(|i| {
                    let tags =
                        if (batch + i) % 2 == 1 { vec![shared.clone(), odd.clone()] } else { vec![shared.clone()] };
                    Event::new(if i % 3 == 0 { "A" } else { "B" }, Vec::new()).with_tags(tags)
                })
                .collect();
            store.append(events, None).await.unwrap();
        }
        let log: Vec<_> = store.read(Query::all(), ReadOptions::forwards()).try_collect().await.unwrap();
        let items = [QueryItem::tags([shared]), QueryItem::tags([odd]), QueryItem::types(["A"]), QueryItem::new()];
        for item in items {
            let scan = plan_item(store.layout(), &item).scans.remove(0);
            for low in &log {
                for high in &log {
                    let (low, high) = (low.position, high.position);
                    let mut expected: Vec<Position> = log
                        .iter()
                        .filter(|e| item.matches(&e.event) && low <= e.position && e.position <= high)
                        .map(|e| e.position)
                        .collect();
                    for limit in [1, 2, 7] {
                        let forwards = paged(&store, &scan, low, high, false, limit).await;
                        assert_eq!(forwards, expected, "{item:?} [{low}, {high}] forwards, {limit} per page");
                    }
                    expected.reverse();
                    for limit in [1, 2, 7] {
                        let backwards = paged(&store, &scan, low, high, true, limit).await;
                        assert_eq!(backwards, expected, "{item:?} [{low}, {high}] backwards, {limit} per page");
                    }
                }
            }
        }
    }
}
