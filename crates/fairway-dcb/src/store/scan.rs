//! Reading one page of one planned scan inside a transaction.
//!
//! Pages are counted in events, not in index keys: an index key stands for a block of
//! positions of one append (see [`crate::layout`]) that may hold hundreds of events, so a
//! page stops inside a block when it is full and the next page resumes there. An event is
//! fetched only when the page has room for it; a page's events are fetched concurrently.

use crate::codec;
use crate::error::StorageError;
use crate::kv::{KvTransaction, RangeScan};
use crate::layout::{self, PositionedRange};
use crate::model::{Position, SequencedEvent};
use crate::store::append::concurrent_gets;
use crate::store::plan::{Scan, ScanSource};

/// A page of matching events and what the scan still has to cover.
pub struct Page {
    /// Matching events, in scan order.
    pub events: Vec<SequencedEvent>,
    /// The part of the window this page did not cover.
    pub rest: Window,
    /// Keys whose events the page took (whole or in part).
    pub keys_used: usize,
    /// Events the page fetched (before filtering).
    pub fetched: usize,
}

/// How much one page may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageLimit {
    /// Most events fetched.
    pub events: usize,
    /// Most keys visited: fewer than `events` when index blocks are known to be large, so
    /// a page does not pull keys (and, on FoundationDB, their values) it will not use.
    pub keys: usize,
}

impl PageLimit {
    /// At most `events` events, visiting as many keys (blocks of one event each at worst).
    pub fn events(events: usize) -> Self {
        PageLimit { events, keys: events }
    }
}

/// What one scan still has to cover: the positions wanted, and the keys not yet visited.
///
/// An index key stands for a block of positions of one append, keyed by the block's last
/// position; the block may also hold earlier positions of the same append, and a range
/// holds at most one key per append. So the keys visited reach to the end of the append
/// holding the upper bound, and the block's positions are then filtered to the wanted
/// bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Positions wanted, inclusive.
    wanted: (Position, Position),
    /// Key positions not yet visited, inclusive.
    keys: (Position, Position),
    exhausted: bool,
}

/// The last position of the append holding `position`.
fn end_of_append(position: Position) -> Position {
    Position::new(position.commit(), position.batch_order(), u16::MAX)
}

impl Window {
    /// The window over positions `[low, high]`.
    pub fn new(low: Position, high: Position) -> Self {
        Window { wanted: (low, high), keys: (low, end_of_append(high)), exhausted: low > high }
    }

    /// Whether every key has been visited.
    pub fn is_exhausted(&self) -> bool {
        self.exhausted
    }

    /// A window with nothing left to visit.
    pub fn finished() -> Self {
        Window { wanted: (Position::MAX, Position::ZERO), keys: (Position::MAX, Position::ZERO), exhausted: true }
    }

    /// The rest of the window once everything up to `covered` (reading forwards) or down
    /// to `covered` (backwards) has been read; `whole_block` tells whether the block
    /// holding `covered` was read whole (otherwise its key is visited again).
    fn after(mut self, covered: Position, whole_block: bool, reverse: bool) -> Self {
        if reverse {
            if covered == Position::ZERO {
                return Window::finished();
            }
            self.wanted.1 = self.wanted.1.min(covered.prev());
            // A block read only in part is visited again; a whole one never.
            self.keys.1 = if whole_block { covered.prev() } else { end_of_append(covered) };
        } else {
            if covered == Position::MAX {
                return Window::finished();
            }
            self.wanted.0 = self.wanted.0.max(covered.next());
            self.keys.0 = covered.next();
        }
        self.exhausted = self.wanted.0 > self.wanted.1 || self.keys.0 > self.keys.1;
        self
    }

    /// The key positions to scan for `source`: the log holds one position per key.
    fn key_bounds(&self, source: ScanSource) -> (Position, Position) {
        match source {
            ScanSource::Log => (self.keys.0.max(self.wanted.0), self.keys.1.min(self.wanted.1)),
            ScanSource::Index => self.keys,
        }
    }

    /// The same positions still wanted, with every key that may hold them to visit again:
    /// the window for reading them through another index.
    pub fn restarted(&self) -> Self {
        if self.exhausted { *self } else { Window::new(self.wanted.0, self.wanted.1) }
    }

    /// The first position a forward read of this window has yet to cover.
    pub fn next_wanted(&self) -> Position {
        self.wanted.0
    }

    fn wants(&self, position: Position) -> bool {
        self.wanted.0 <= position && position <= self.wanted.1
    }
}

/// Where a page stopped: the last position it covered, and whether the block (or log key)
/// holding it was read whole.
#[derive(Clone, Copy)]
struct Stop {
    covered: Position,
    whole_block: bool,
}

/// Reads up to `limit.events` events of `scan` in `window`, visiting at most `limit.keys`
/// keys (events fetched and filtered; an event
/// that does not fit is not fetched). The index range read adds a read conflict unless
/// `snapshot`; event fetches are always snapshot reads (stored events never change).
pub async fn read_page<T: KvTransaction>(
    tx: &T,
    log: &PositionedRange,
    scan: &Scan,
    window: &Window,
    reverse: bool,
    limit: PageLimit,
    snapshot: bool,
) -> Result<Page, StorageError> {
    let max_events = limit.events.max(1);
    let max_keys = match scan.source {
        ScanSource::Log => max_events,
        ScanSource::Index => limit.keys.clamp(1, max_events),
    };
    let (low, high) = window.key_bounds(scan.source);
    let (begin, end) = scan.range.bounds(low, high);
    let range = RangeScan { begin, end, limit: max_keys, reverse, snapshot };
    let mut keys_used = 0;
    let mut fetched = 0;
    let mut events = Vec::new();
    let mut stop: Option<Stop> = None;
    // Set once the page is full: the keys visited after that are left for the next page.
    let mut full = false;
    let mut skipped = false;
    let visited = match scan.source {
        ScanSource::Log => {
            tx.scan_range(&range, |key, value| {
                let position = position_in(&scan.range, key)?;
                stop = Some(Stop { covered: position, whole_block: true });
                keys_used += 1;
                fetched += 1;
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
            let mut block = Vec::new();
            let visited = tx
                .scan_range(&range, |key, value| {
                    if full {
                        skipped = true;
                        return Ok(());
                    }
                    let last = position_in(&scan.range, key)?;
                    block.clear();
                    layout::block_positions(last, value, |p| {
                        if window.wants(p) {
                            block.push(p);
                        }
                    })?;
                    if reverse {
                        block.reverse();
                    }
                    keys_used += 1;
                    let room = max_events - positions.len();
                    if block.len() <= room {
                        positions.extend_from_slice(&block);
                        stop = Some(Stop { covered: last, whole_block: true });
                        full = block.len() == room;
                    } else {
                        positions.extend_from_slice(&block[..room]);
                        stop = Some(Stop { covered: block[room - 1], whole_block: false });
                        full = true;
                    }
                    Ok(())
                })
                .await?;
            fetched = positions.len();
            let keys = positions.iter().map(|p| log.key(*p)).collect();
            let records = concurrent_gets(tx, keys, true).await?;
            for (position, record) in positions.into_iter().zip(records) {
                let record =
                    record.ok_or_else(|| StorageError::Corrupt(format!("index points at missing event {position}")))?;
                let (event, recorded_at) = codec::decode(&record)?;
                if scan.filter.as_ref().is_none_or(|item| item.matches(&event)) {
                    events.push(SequencedEvent { position, recorded_at, event });
                }
            }
            visited
        }
    };
    let ran_out = visited < max_keys && !skipped && stop.is_none_or(|s| s.whole_block);
    let rest = match stop {
        Some(stop) if !ran_out => window.after(stop.covered, stop.whole_block, reverse),
        _ => Window::finished(),
    };
    Ok(Page { events, rest, keys_used, fetched })
}

/// How many positions the index of `scan` holds in `window`, counted from at most `limit`
/// keys (so the count reaches `limit` whenever there are more), without a read conflict and
/// without fetching a single event: how large an index is where a read would use it.
pub async fn count_positions<T: KvTransaction>(
    tx: &T,
    scan: &Scan,
    window: &Window,
    limit: usize,
) -> Result<usize, StorageError> {
    let (low, high) = window.key_bounds(scan.source);
    let (begin, end) = scan.range.bounds(low, high);
    let mut count = 0;
    let keys = tx
        .scan_range(&RangeScan { begin, end, limit, reverse: false, snapshot: true }, |key, value| {
            layout::block_positions(position_in(&scan.range, key)?, value, |p| count += usize::from(window.wants(p)))
        })
        .await?;
    Ok(if keys == limit { count.max(limit) } else { count })
}

/// How many events the log holds in `[low, high]`, counted up to `limit` keys, without a
/// read conflict and without decoding one.
pub async fn count_log_events<T: KvTransaction>(
    tx: &T,
    log: &PositionedRange,
    low: Position,
    high: Position,
    limit: usize,
) -> Result<usize, StorageError> {
    let (begin, end) = log.bounds(low, high);
    tx.scan_range(&RangeScan { begin, end, limit, reverse: false, snapshot: true }, |_, _| Ok(())).await
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
    use crate::{EmbeddedEngine, EventStore, Query, QueryItem, RawEvent, ReadOptions, Tag};

    /// Pages through `scan` with `limit` keys per page, as the readers do.
    async fn paged(
        store: &DcbStore<EmbeddedEngine>,
        scan: &Scan,
        low: Position,
        high: Position,
        reverse: bool,
        limit: PageLimit,
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
            window = page.rest;
        }
        found
    }

    /// Page limits: by events alone, and with fewer keys than events (large blocks).
    fn limits() -> [PageLimit; 5] {
        let few_keys = |events, keys| PageLimit { events, keys };
        [PageLimit::events(1), PageLimit::events(2), PageLimit::events(7), few_keys(7, 1), few_keys(3, 2)]
    }

    /// Every window (bounds at every position, inside blocks too), both directions and
    /// small pages return exactly the matching positions in order, once each.
    #[tokio::test]
    async fn paging_through_blocks_matches_a_naive_filter() {
        let dir = tempfile::tempdir().unwrap();
        let store = DcbStore::new(Arc::new(EmbeddedEngine::volatile(dir.path())), "scan").unwrap();
        let shared = Tag::parse("k:shared").unwrap();
        let odd = Tag::parse("k:odd").unwrap();
        for (batch, size) in [3usize, 1, 5, 2, 4].into_iter().enumerate() {
            let events = (0..size)
                .map(|i| {
                    let tags =
                        if (batch + i) % 2 == 1 { vec![shared.clone(), odd.clone()] } else { vec![shared.clone()] };
                    RawEvent::new(if i % 3 == 0 { "A" } else { "B" }, Vec::new()).with_tags(tags)
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
                    for limit in limits() {
                        let forwards = paged(&store, &scan, low, high, false, limit).await;
                        assert_eq!(forwards, expected, "{item:?} [{low}, {high}] forwards, {limit:?} per page");
                    }
                    expected.reverse();
                    for limit in limits() {
                        let backwards = paged(&store, &scan, low, high, true, limit).await;
                        assert_eq!(backwards, expected, "{item:?} [{low}, {high}] backwards, {limit:?} per page");
                    }
                }
            }
        }
    }
}
