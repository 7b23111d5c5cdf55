//! Streaming reads: one transaction takes the head (when the read needs one) and the first
//! page of every planned scan; then every scan pages through its range in its own short
//! transactions; the scans are merged in position order without duplicates.
//!
//! A read sees one prefix of the log. Events are committed in position order, so once a
//! head position has been seen, every event up to it is visible to every later
//! transaction. A read merged from several scans therefore takes the head when it starts
//! and keeps every page of every scan at or below it: a scan that ran out early cannot miss
//! an event another scan's later page would return. (A read of a single scan needs no
//! head: its pages follow one another in position order.)

use std::collections::VecDeque;
use std::sync::Arc;

use futures::StreamExt;

use crate::error::{Error, StorageError};
use crate::event_store::{BoundedRead, EventStream};
use crate::kv::{KvEngine, KvTransaction, RangeScan, little_endian_i64};
use crate::layout::{Layout, PositionedRange};
use crate::model::{Position, Query, ReadOptions, SequencedEvent};
use crate::store::plan::{ItemPlan, Scan, ScanSource, plan_query};
use crate::store::scan::{Page, PageLimit, Window, count_log_events, count_positions, read_page};

/// Events fetched by a scan's first page; later pages double up to [`MAX_PAGE`].
const FIRST_PAGE: usize = 128;
/// Most events fetched by one page of one scan.
const MAX_PAGE: usize = 4096;
/// Positions counted in each alternative index of a scan that outgrew its first page: the
/// smallest alternative under this count (fewer events than the first page held) replaces
/// the scan.
const PROBE_POSITIONS: usize = FIRST_PAGE;

/// The position of the last event of the log, read in one snapshot transaction.
pub async fn read_head<E: KvEngine>(engine: &E, log: &PositionedRange) -> Result<Option<Position>, StorageError> {
    Ok(engine.transact(|tx| async move { head_in(&tx, log).await }).await?.value)
}

/// The position of the last event of the log in `tx`'s snapshot.
async fn head_in<T: KvTransaction>(tx: &T, log: &PositionedRange) -> Result<Option<Position>, StorageError> {
    let (begin, end) = log.bounds(Position::ZERO, Position::MAX);
    let last = tx.get_range(&RangeScan { begin, end, limit: 1, reverse: true, snapshot: true }).await?;
    Ok(last.first().and_then(|kv| log.position_of(&kv.key)))
}

/// The number of events in the log: the sum of the pulse counters, read in one snapshot.
pub async fn read_count<E: KvEngine>(engine: &E, layout: &Layout) -> Result<u64, StorageError> {
    let keys = layout.pulse_keys();
    let committed = engine
        .transact(|tx| {
            let keys = keys.clone();
            async move {
                let mut total = 0i64;
                for key in &keys {
                    total += tx.get(key, true).await?.map_or(0, |bytes| little_endian_i64(&bytes));
                }
                Ok::<_, StorageError>(total)
            }
        })
        .await?;
    Ok(committed.value.max(0) as u64)
}

/// One scan's progress.
struct Cursor {
    scan: Option<Scan>,
    window: Window,
    buffer: VecDeque<SequencedEvent>,
    page: usize,
    /// Keys used and events fetched so far: the events per key estimate the keys a page
    /// needs, since an index key may stand for a large block.
    keys_used: usize,
    fetched: usize,
    /// Other indexes answering the same item, looked at once the scan outgrows its first
    /// page (see [`MergedRead::narrow`]).
    alternatives: Vec<Scan>,
    /// For a scan of the log that replaced a read's index scans (see
    /// [`MergedRead::read_the_log_if_dense`]): those scans, turned back to when the log
    /// grows sparse.
    instead_of: Vec<Scan>,
}

impl Cursor {
    fn over(scan: Scan, low: Position, high: Position, alternatives: Vec<Scan>) -> Self {
        let window = Window::new(low, high);
        let buffer = VecDeque::new();
        let page = FIRST_PAGE;
        Cursor {
            scan: Some(scan),
            window,
            buffer,
            page,
            keys_used: 0,
            fetched: 0,
            alternatives,
            instead_of: Vec::new(),
        }
    }

    fn fixed(events: impl IntoIterator<Item = SequencedEvent>) -> Self {
        let buffer = events.into_iter().collect();
        let window = Window::finished();
        let (alternatives, instead_of) = (Vec::new(), Vec::new());
        Cursor { scan: None, window, buffer, page: 0, keys_used: 0, fetched: 0, alternatives, instead_of }
    }

    fn exhausted(&self) -> bool {
        self.window.is_exhausted()
    }

    /// Takes in a page read for this cursor: its events, what is left of the window, and
    /// a next page twice as large (up to [`MAX_PAGE`]).
    fn absorb(&mut self, page: Page) {
        self.page = (self.page * 2).min(MAX_PAGE);
        self.window = page.rest;
        self.keys_used += page.keys_used;
        self.fetched += page.fetched;
        self.buffer.extend(page.events);
    }

    /// The next page's limit for at most `events` events: keys for that many events at
    /// the events per key seen so far, plus one for a block read only in part.
    fn limit(&self, events: usize) -> PageLimit {
        let keys = match (self.keys_used, self.fetched) {
            (0, _) | (_, 0) => events,
            (keys, fetched) => (events * keys).div_ceil(fetched) + 1,
        };
        PageLimit { events, keys }
    }
}

/// The state of a merged read.
struct MergedRead<E> {
    engine: Arc<E>,
    log: PositionedRange,
    /// The query read, to filter the log with if the read turns to it (see
    /// [`MergedRead::read_the_log_if_dense`]).
    query: Query,
    /// The plan, until the read starts and turns it into cursors.
    plans: Option<Vec<ItemPlan>>,
    cursors: Vec<Cursor>,
    reverse: bool,
    remaining: usize,
    /// Positions read, inclusive; the upper bound drops to the head when the read starts.
    bounds: (Position, Position),
    /// The prefix of the log the read sees: `options.up_to`, the head taken at start, or
    /// (single-scan reads) the whole log. Last-only items are resolved within it.
    top: Position,
    /// Whether the read must take the head when it starts (several scans and no bound
    /// given, or the caller asked for the head).
    needs_head: bool,
    /// Whether the log held an event when the read took its head (`top` is then at most
    /// that head).
    head_seen: bool,
    failed: bool,
}

/// Reads `query` as a stream; invalid queries yield one error.
pub fn read_stream<E: KvEngine>(engine: Arc<E>, layout: &Layout, query: Query, options: ReadOptions) -> EventStream {
    if let Err(err) = query.validate() {
        return futures::stream::once(async move { Err(Error::from(err)) }).boxed();
    }
    MergedRead::new(engine, layout, &query, options, false).into_stream()
}

/// Reads `query` up to the head of the log, taken in the read's first transaction, which
/// also reads the first page of every scan: a boundary of a few events is read whole in
/// one snapshot. Returns that head (bounded by `options.up_to`; `None` when the log is
/// empty) and the events.
pub async fn read_with_head<E: KvEngine>(
    engine: Arc<E>,
    layout: &Layout,
    query: Query,
    options: ReadOptions,
) -> Result<BoundedRead, Error> {
    query.validate()?;
    let mut state = MergedRead::new(engine, layout, &query, options, true);
    if let Some(plans) = state.plans.take() {
        state.start(plans).await?;
    }
    let head = state.head_seen.then_some(state.top);
    Ok(BoundedRead { head, events: state.into_stream() })
}

impl<E: KvEngine> MergedRead<E> {
    /// The state of a read of `query`; `with_head` makes it take the head when it starts
    /// even when it would need none.
    fn new(engine: Arc<E>, layout: &Layout, query: &Query, options: ReadOptions, with_head: bool) -> Self {
        let top = options.up_to.unwrap_or(Position::MAX);
        let bounds = match (options.backwards, options.from) {
            (false, from) => (from.unwrap_or(Position::ZERO), top),
            (true, from) => (Position::ZERO, from.map_or(top, |from| from.min(top))),
        };
        let plans = plan_query(layout, query);
        let sources: usize = plans.iter().map(|p| p.scans.len()).sum();
        MergedRead {
            engine,
            log: layout.log(),
            query: query.clone(),
            plans: Some(plans),
            cursors: Vec::new(),
            reverse: options.backwards,
            remaining: options.limit.unwrap_or(usize::MAX),
            bounds,
            top,
            needs_head: with_head || (options.up_to.is_none() && sources > 1),
            head_seen: false,
            failed: false,
        }
    }

    /// The read's events, from where it stands.
    fn into_stream(self) -> EventStream {
        futures::stream::unfold(self, |mut state| async move {
            if state.failed || state.remaining == 0 {
                return None;
            }
            match state.next_run().await {
                Ok(run) if run.is_empty() => None,
                Ok(mut run) => {
                    run.truncate(state.remaining);
                    state.remaining -= run.len();
                    Some((Ok(run), state))
                }
                Err(err) => {
                    state.failed = true;
                    Some((Err(err), state))
                }
            }
        })
        .flat_map(|run| match run {
            Ok(events) => futures::stream::iter(events.into_iter().map(Ok)).left_stream(),
            Err(err) => futures::stream::once(async move { Err(err) }).right_stream(),
        })
        .boxed()
    }
}

impl<E: KvEngine> MergedRead<E> {
    /// The next events in read order: a whole page when a single scan is left, otherwise
    /// one merged event. Empty at the end.
    async fn next_run(&mut self) -> Result<Vec<SequencedEvent>, Error> {
        if let Some(plans) = self.plans.take() {
            self.start(plans).await?;
        }
        // (Filling may add cursors: a log scan turning back to index scans.)
        while let Some(index) = self.cursors.iter().position(|c| c.buffer.is_empty() && !c.exhausted()) {
            self.fill(index).await?;
        }
        // Every cursor now holds events or is exhausted.
        let mut live = self.cursors.iter_mut().filter(|c| !c.buffer.is_empty());
        if let (Some(only), None) = (live.next(), live.next()) {
            return Ok(std::mem::take(&mut only.buffer).into());
        }
        Ok(self.next_merged().into_iter().collect())
    }

    /// Opens the read in one transaction: takes the head if the read needs one and bounds
    /// the read by it, and reads the first page of every scan (one after the other: read
    /// concurrently on FoundationDB under client fault injection, a failed page's siblings
    /// dropped mid-flight, some runs surfaced 1007 and 1009 unretried); then narrows
    /// the scans that outgrew their first page and resolves the last-only items.
    async fn start(&mut self, plans: Vec<ItemPlan>) -> Result<(), Error> {
        let mut scans = Vec::new();
        let mut last_only = Vec::new();
        for plan in plans {
            if plan.last_only {
                last_only.push(plan.scans);
            } else if let [scan] = plan.scans.as_slice() {
                scans.push((scan.clone(), plan.alternatives));
            } else {
                scans.extend(plan.scans.into_iter().map(|scan| (scan, Vec::new())));
            }
        }
        let (needs_head, reverse, bounds) = (self.needs_head, self.reverse, self.bounds);
        let limit = PageLimit::events(FIRST_PAGE.min(self.remaining));
        let (scans_ref, log) = (&scans, &self.log);
        let (head, pages) = self
            .engine
            .transact(|tx| async move {
                let head = if needs_head { head_in(&tx, log).await? } else { None };
                if needs_head && head.is_none() {
                    return Ok((None, Vec::new()));
                }
                let high = head.map_or(bounds.1, |head| bounds.1.min(head));
                if bounds.0 > high {
                    return Ok((head, Vec::new()));
                }
                let window = Window::new(bounds.0, high);
                let mut pages = Vec::with_capacity(scans_ref.len());
                for (scan, _) in scans_ref {
                    pages.push(read_page(&tx, log, scan, &window, reverse, limit, true).await?);
                }
                Ok::<_, StorageError>((head, pages))
            })
            .await?
            .value;
        if let Some(head) = head {
            self.head_seen = true;
            self.top = self.top.min(head);
            self.bounds.1 = self.bounds.1.min(head);
        } else if needs_head {
            return Ok(());
        }
        let (low, high) = self.bounds;
        if low > high {
            return Ok(());
        }
        for ((scan, alternatives), page) in scans.into_iter().zip(pages) {
            let mut cursor = Cursor::over(scan, low, high, alternatives);
            cursor.absorb(page);
            self.cursors.push(cursor);
            let index = self.cursors.len() - 1;
            if !self.cursors[index].alternatives.is_empty() && !self.cursors[index].exhausted() {
                self.narrow(index).await?;
            }
        }
        if !self.reverse && last_only.is_empty() {
            self.read_the_log_if_dense().await?;
        }
        self.resolve_last_only(last_only).await
    }

    /// A forward read whose index scans, over their first pages, matched at least half of
    /// the log's events there reads the rest from the log itself, filtered: one range
    /// scan instead of an index scan and a fetch per event for each of them (a view
    /// catching up on most of the log). The events already read stay; the log is counted
    /// up to twice as many keys as they are, without decoding an event.
    async fn read_the_log_if_dense(&mut self) -> Result<(), Error> {
        let scanning = |c: &Cursor| c.scan.as_ref().is_some_and(|scan| scan.source == ScanSource::Index);
        let buffered: usize = self.cursors.iter().map(|c| c.buffer.len()).sum();
        // A read that holds half of what it wants (a page of a paged read) or everything it
        // matches (a command's boundary) is not worth counting the log for.
        let more_to_read = self.remaining / 2 > buffered && !self.cursors.iter().all(Cursor::exhausted);
        if self.cursors.is_empty() || !self.cursors.iter().all(scanning) || !more_to_read {
            return Ok(());
        }
        // Every cursor read every match before the first position one of them has yet to cover.
        let frontier = self.cursors.iter().filter(|c| !c.exhausted()).map(|c| c.window.next_wanted()).min();
        let (Some(frontier), (low, high)) = (frontier, self.bounds) else { return Ok(()) };
        let matched: usize =
            self.cursors.iter().map(|c| c.buffer.iter().take_while(|e| e.position < frontier).count()).sum();
        if matched == 0 || frontier <= low {
            return Ok(());
        }
        let (log, limit) = (&self.log, 2 * matched);
        let count = self
            .engine
            .transact(|tx| async move { count_log_events(&tx, log, low, frontier.prev(), limit).await })
            .await?
            .value;
        if count >= limit {
            return Ok(());
        }
        let (mut read, mut instead_of) = (Vec::new(), Vec::new());
        for cursor in std::mem::take(&mut self.cursors) {
            read.extend(cursor.buffer.into_iter().take_while(|e| e.position < frontier));
            instead_of.extend(cursor.scan);
        }
        read.sort_by_key(|e| e.position);
        read.dedup_by_key(|e| e.position);
        let filter = Some(self.query.clone());
        let log_scan = Scan { range: self.log.clone(), source: ScanSource::Log, filter };
        self.cursors.push(Cursor::fixed(read));
        self.cursors.push(Cursor { instead_of, ..Cursor::over(log_scan, frontier, high, Vec::new()) });
        Ok(())
    }

    /// The log scan at `index`, which replaced index scans, found less than a quarter of a
    /// page matching: the read goes on through those index scans from where the log scan
    /// stopped (its events read stay in its buffer), within the bounds the read had when
    /// it started with them.
    fn turn_back_to_indexes(&mut self, index: usize) {
        let cursor = &mut self.cursors[index];
        let scans = std::mem::take(&mut cursor.instead_of);
        let next = cursor.window.next_wanted();
        cursor.window = Window::finished();
        let high = self.bounds.1;
        if next <= high {
            self.cursors.extend(scans.into_iter().map(|scan| Cursor::over(scan, next, high, Vec::new())));
        }
    }

    /// Pops the first event in read order across cursors, dropping its duplicates.
    fn next_merged(&mut self) -> Option<SequencedEvent> {
        let reverse = self.reverse;
        let best = self
            .cursors
            .iter()
            .filter_map(|c| c.buffer.front().map(|e| e.position))
            .reduce(|a, b| if (b < a) != reverse { b } else { a });
        let best = best?;
        let mut chosen = None;
        for cursor in &mut self.cursors {
            if cursor.buffer.front().is_some_and(|e| e.position == best) {
                chosen = cursor.buffer.pop_front();
            }
        }
        chosen
    }

    /// Fetches the next page of cursor `index` until it has events or is exhausted.
    async fn fill(&mut self, index: usize) -> Result<(), Error> {
        let reverse = self.reverse;
        while self.cursors[index].buffer.is_empty() && !self.cursors[index].exhausted() {
            let cursor = &self.cursors[index];
            let scan = cursor.scan.clone().expect("scanning cursors have a scan");
            let window = cursor.window;
            let limit = cursor.limit(cursor.page.min(self.remaining));
            let log = self.log.clone();
            let page = self
                .engine
                .transact(|tx| {
                    let (scan, log) = (scan.clone(), log.clone());
                    async move { read_page(&tx, &log, &scan, &window, reverse, limit, true).await }
                })
                .await?
                .value;
            let (fetched, matched) = (page.fetched, page.events.len());
            let cursor = &mut self.cursors[index];
            cursor.absorb(page);
            if !cursor.instead_of.is_empty() && !cursor.exhausted() && fetched >= FIRST_PAGE && matched * 4 < fetched {
                self.turn_back_to_indexes(index);
                return Ok(());
            }
            let cursor = &mut self.cursors[index];
            if !cursor.alternatives.is_empty() && !cursor.exhausted() {
                self.narrow(index).await?;
            }
        }
        Ok(())
    }

    /// Cursor `index` outgrew its first page: counts the positions each of its alternative
    /// indexes holds over what is left of its window, and switches to the smallest if it
    /// holds fewer than [`PROBE_POSITIONS`] (a course's few waiting-list joins instead of its
    /// thousands of events). Looked at once per cursor.
    async fn narrow(&mut self, index: usize) -> Result<(), Error> {
        let cursor = &mut self.cursors[index];
        let alternatives = std::mem::take(&mut cursor.alternatives);
        let window = cursor.window.restarted();
        let counts = self
            .engine
            .transact(|tx| {
                let alternatives = &alternatives;
                async move {
                    let mut counts = Vec::with_capacity(alternatives.len());
                    for scan in alternatives {
                        counts.push(count_positions(&tx, scan, &window, PROBE_POSITIONS).await?);
                    }
                    Ok::<_, StorageError>(counts)
                }
            })
            .await?
            .value;
        let smallest =
            counts.into_iter().zip(alternatives).filter(|(count, _)| *count < PROBE_POSITIONS).min_by_key(|(c, _)| *c);
        if let Some((_, scan)) = smallest {
            // Its events already read stay in the buffer; the new index starts after them.
            let cursor = &mut self.cursors[index];
            cursor.scan = Some(scan);
            cursor.window = window;
            (cursor.keys_used, cursor.fetched) = (0, 0);
        }
        Ok(())
    }

    /// Finds the last event (within the prefix the read sees) of every last-only item and
    /// adds those inside the read bounds.
    async fn resolve_last_only(&mut self, items: Vec<Vec<Scan>>) -> Result<(), Error> {
        let (low, high) = self.bounds;
        let top = self.top;
        let mut found = Vec::new();
        for scans in items {
            let mut best: Option<SequencedEvent> = None;
            for scan in scans {
                if let Some(event) = last_match(&*self.engine, &self.log, &scan, top).await?
                    && best.as_ref().is_none_or(|b| b.position < event.position)
                {
                    best = Some(event);
                }
            }
            found.extend(best.filter(|e| e.position >= low && e.position <= high));
        }
        found.sort_by_key(|e| e.position);
        found.dedup_by_key(|e| e.position);
        if self.reverse {
            found.reverse();
        }
        if !found.is_empty() {
            self.cursors.push(Cursor::fixed(found));
        }
        Ok(())
    }
}

/// The last event at or before `high` matching `scan`.
async fn last_match<E: KvEngine>(
    engine: &E,
    log: &PositionedRange,
    scan: &Scan,
    high: Position,
) -> Result<Option<SequencedEvent>, StorageError> {
    let mut window = Window::new(Position::ZERO, high);
    let mut page = 16;
    while !window.is_exhausted() {
        let result = engine
            .transact(|tx| {
                let (scan, log) = (scan.clone(), log.clone());
                async move { read_page(&tx, &log, &scan, &window, true, PageLimit::events(page), true).await }
            })
            .await?
            .value;
        window = result.rest;
        if let Some(event) = result.events.into_iter().next() {
            return Ok(Some(event));
        }
        page = (page * 2).min(MAX_PAGE);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;

    use super::*;
    use crate::store::DcbStore;
    use crate::{EmbeddedEngine, EventStore, QueryItem, RawEvent};

    /// A forward read matching most of the log turns to the log after its first pages, one
    /// matching a fifth of it stays on its index, and both return exactly the matches.
    #[tokio::test]
    async fn a_read_matching_most_of_the_log_reads_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = DcbStore::new(Arc::new(EmbeddedEngine::volatile(dir.path())), "dense").unwrap();
        for batch in 0..4 {
            let events = (0..500).map(|i| RawEvent::new(if (batch + i) % 5 == 0 { "B" } else { "A" }, Vec::new()));
            store.append(events.collect(), None).await.unwrap();
        }
        let log: Vec<SequencedEvent> = store.read(Query::all(), ReadOptions::forwards()).try_collect().await.unwrap();
        let cases = [
            (Query::from(QueryItem::types(["A"])), true),
            (Query::from_items([QueryItem::types(["A"]), QueryItem::types(["B"])]), true),
            (Query::from(QueryItem::types(["B"])), false),
        ];
        for (query, dense) in cases {
            let mut read =
                MergedRead::new(store.engine().clone(), store.layout(), &query, ReadOptions::forwards(), true);
            let plans = read.plans.take().unwrap();
            read.start(plans).await.unwrap();
            let on_log = read.cursors.iter().any(|c| c.scan.as_ref().is_some_and(|s| s.source == ScanSource::Log));
            assert_eq!(on_log, dense, "{query:?}");
            let events: Vec<SequencedEvent> = read.into_stream().try_collect().await.unwrap();
            let expected: Vec<Position> = log.iter().filter(|e| query.matches(&e.event)).map(|e| e.position).collect();
            assert_eq!(events.iter().map(|e| e.position).collect::<Vec<_>>(), expected, "{query:?}");
        }
    }

    /// A read that turned to the log while its type was dense (an import of 600) turns back
    /// to the type's index once the log grows sparse in it, and returns exactly the matches.
    #[tokio::test]
    async fn a_read_turns_back_to_its_index_once_the_log_grows_sparse() {
        let dir = tempfile::tempdir().unwrap();
        let store = DcbStore::new(Arc::new(EmbeddedEngine::volatile(dir.path())), "sparse").unwrap();
        store.append((0..600).map(|_| RawEvent::new("A", Vec::new())).collect(), None).await.unwrap();
        for _ in 0..8 {
            let events = (0..500).map(|i| RawEvent::new(if i % 25 == 0 { "A" } else { "B" }, Vec::new()));
            store.append(events.collect(), None).await.unwrap();
        }
        let query = Query::from(QueryItem::types(["A"]));
        let mut read = MergedRead::new(store.engine().clone(), store.layout(), &query, ReadOptions::forwards(), false);
        let mut found = Vec::new();
        let mut sources = Vec::new();
        loop {
            let run = read.next_run().await.unwrap();
            if run.is_empty() {
                break;
            }
            found.extend(run.into_iter().map(|e| e.position));
            let source = read.cursors.iter().rev().find_map(|c| c.scan.as_ref().map(|s| s.source));
            if sources.last() != Some(&source) {
                sources.push(source);
            }
        }
        assert_eq!(sources, [Some(ScanSource::Log), Some(ScanSource::Index)], "to the log and back");
        let log: Vec<SequencedEvent> = store.read(Query::all(), ReadOptions::forwards()).try_collect().await.unwrap();
        let expected: Vec<Position> = log.iter().filter(|e| query.matches(&e.event)).map(|e| e.position).collect();
        assert_eq!(found, expected);
    }
}
