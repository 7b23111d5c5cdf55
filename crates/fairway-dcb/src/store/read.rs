//! Streaming reads: every planned scan pages through its range in its own short
//! transactions; the scans are merged in position order without duplicates.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::StreamExt;

use crate::error::{Error, StorageError};
use crate::event_store::EventStream;
use crate::kv::KvEngine;
use crate::layout::{Layout, PositionedRange};
use crate::model::{Position, Query, ReadOptions, SequencedEvent};
use crate::store::plan::{Scan, plan_query};
use crate::store::scan::{Window, read_page};

const FIRST_PAGE: usize = 128;
const MAX_PAGE: usize = 4096;

/// One scan's progress.
struct Cursor {
    scan: Option<Scan>,
    window: Window,
    buffer: VecDeque<SequencedEvent>,
    page: usize,
}

impl Cursor {
    fn over(scan: Scan, low: Position, high: Position) -> Self {
        Cursor { scan: Some(scan), window: Window::new(low, high), buffer: VecDeque::new(), page: FIRST_PAGE }
    }

    fn fixed(events: impl IntoIterator<Item = SequencedEvent>) -> Self {
        Cursor { scan: None, window: Window::finished(), buffer: events.into_iter().collect(), page: 0 }
    }

    fn exhausted(&self) -> bool {
        self.window.is_exhausted()
    }
}

/// The state of a merged read.
struct MergedRead<E> {
    engine: Arc<E>,
    log: PositionedRange,
    cursors: Vec<Cursor>,
    reverse: bool,
    remaining: usize,
    started: bool,
    pending_last_only: Vec<Vec<Scan>>,
    bounds: (Position, Position),
    failed: bool,
}

/// Reads `query` as a stream; invalid queries yield one error.
pub fn read_stream<E: KvEngine>(engine: Arc<E>, layout: &Layout, query: Query, options: ReadOptions) -> EventStream {
    if let Err(err) = query.validate() {
        return futures::stream::once(async move { Err(Error::from(err)) }).boxed();
    }
    let remaining = options.limit.unwrap_or(usize::MAX);
    let (low, high) = match (options.backwards, options.from) {
        (false, from) => (from.unwrap_or(Position::ZERO), Position::MAX),
        (true, from) => (Position::ZERO, from.unwrap_or(Position::MAX)),
    };
    let mut cursors = Vec::new();
    let mut pending_last_only = Vec::new();
    for item in plan_query(layout, &query) {
        if item.last_only {
            pending_last_only.push(item.scans);
        } else {
            cursors.extend(item.scans.into_iter().map(|scan| Cursor::over(scan, low, high)));
        }
    }
    let state = MergedRead {
        engine,
        log: layout.log(),
        cursors,
        reverse: options.backwards,
        remaining,
        started: false,
        pending_last_only,
        bounds: (low, high),
        failed: false,
    };
    futures::stream::unfold(state, |mut state| async move {
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

impl<E: KvEngine> MergedRead<E> {
    /// The next events in read order: a whole page when a single scan is left, otherwise
    /// one merged event. Empty at the end.
    async fn next_run(&mut self) -> Result<Vec<SequencedEvent>, Error> {
        if !self.started {
            self.started = true;
            self.resolve_last_only().await?;
        }
        for index in 0..self.cursors.len() {
            if self.cursors[index].buffer.is_empty() && !self.cursors[index].exhausted() {
                self.fill(index).await?;
            }
        }
        // Every cursor now holds events or is exhausted.
        let mut live = self.cursors.iter_mut().filter(|c| !c.buffer.is_empty());
        if let (Some(only), None) = (live.next(), live.next()) {
            return Ok(std::mem::take(&mut only.buffer).into());
        }
        Ok(self.next_merged().into_iter().collect())
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
            let limit = cursor.page.min(self.remaining.saturating_add(16));
            let log = self.log.clone();
            let page = self
                .engine
                .transact(|tx| {
                    let (scan, log) = (scan.clone(), log.clone());
                    async move { read_page(&tx, &log, &scan, &window, reverse, limit, true).await }
                })
                .await?
                .value;
            let cursor = &mut self.cursors[index];
            cursor.page = (cursor.page * 2).min(MAX_PAGE);
            cursor.window.advance(&page, reverse);
            cursor.buffer.extend(page.events);
        }
        Ok(())
    }

    /// Finds the last event of every last-only item and adds those inside the read bounds.
    async fn resolve_last_only(&mut self) -> Result<(), Error> {
        let (low, high) = self.bounds;
        let mut found = Vec::new();
        for scans in std::mem::take(&mut self.pending_last_only) {
            let mut best: Option<SequencedEvent> = None;
            for scan in scans {
                if let Some(event) = last_match(&*self.engine, &self.log, &scan).await?
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

/// The last event of the whole log matching `scan`.
async fn last_match<E: KvEngine>(
    engine: &E,
    log: &PositionedRange,
    scan: &Scan,
) -> Result<Option<SequencedEvent>, StorageError> {
    let mut window = Window::new(Position::ZERO, Position::MAX);
    let mut page = 16;
    while !window.is_exhausted() {
        let result = engine
            .transact(|tx| {
                let (scan, log) = (scan.clone(), log.clone());
                async move { read_page(&tx, &log, &scan, &window, true, page, true).await }
            })
            .await?
            .value;
        window.advance(&result, true);
        if let Some(event) = result.events.into_iter().next() {
            return Ok(Some(event));
        }
        page = (page * 2).min(MAX_PAGE);
    }
    Ok(None)
}
