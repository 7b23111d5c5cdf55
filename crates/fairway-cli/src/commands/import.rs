//! `fairway import`: an export file into an empty namespace of a stopped app's store, in
//! batches, keeping the order, types, tags, payloads, ids and metadata of the events (the
//! store gives them new positions and recording times).

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::Path;

use fairway_dcb::{Event, EventStore, Position};

use crate::cli::ImportArgs;
use crate::error::{Error, Result};
use crate::format::progress_bar;
use crate::line::ExportedEvent;
use crate::local::Local;

/// Most events appended at once.
pub const BATCH_EVENTS: usize = 1_000;
/// Most bytes (payloads, metadata, names) appended at once; the store's limit is 8 MiB.
pub const BATCH_BYTES: usize = 4 * 1024 * 1024;

/// The file's lines, readable twice (standard input is buffered whole).
enum Input {
    File(std::path::PathBuf),
    Memory(Vec<u8>),
}

impl Input {
    fn open(path: &Path) -> Result<Self> {
        if path == Path::new("-") {
            let mut all = Vec::new();
            std::io::stdin()
                .read_to_end(&mut all)
                .map_err(|source| Error::File { path: path.to_path_buf(), source })?;
            return Ok(Input::Memory(all));
        }
        Ok(Input::File(path.to_path_buf()))
    }

    fn reader(&self) -> Result<Box<dyn BufRead + '_>> {
        match self {
            Input::File(path) => {
                let file = File::open(path).map_err(|source| Error::File { path: path.clone(), source })?;
                Ok(Box::new(BufReader::with_capacity(1 << 20, file)))
            }
            Input::Memory(bytes) => Ok(Box::new(Cursor::new(bytes.as_slice()))),
        }
    }
}

/// Every event of the file with its line number, checked as it is read.
struct Events<'a> {
    reader: Box<dyn BufRead + 'a>,
    path: &'a Path,
    line: usize,
    text: String,
}

impl<'a> Events<'a> {
    fn of(input: &'a Input, path: &'a Path) -> Result<Self> {
        Ok(Events { reader: input.reader()?, path, line: 0, text: String::new() })
    }

    fn next(&mut self) -> Result<Option<(usize, ExportedEvent, Event)>> {
        loop {
            self.text.clear();
            let read = self
                .reader
                .read_line(&mut self.text)
                .map_err(|source| Error::File { path: self.path.to_path_buf(), source })?;
            if read == 0 {
                return Ok(None);
            }
            self.line += 1;
            if self.text.trim().is_empty() {
                continue;
            }
            let bad = |why: String| Error::BadLine { path: self.path.to_path_buf(), line: self.line, why };
            let exported: ExportedEvent =
                serde_json::from_str(&self.text).map_err(|e| bad(format!("not an exported event: {e}")))?;
            let event = exported.to_event().map_err(bad)?;
            return Ok(Some((self.line, exported, event)));
        }
    }
}

/// Runs `fairway import` into `local`; reports on stderr what was appended.
pub async fn run(local: &Local, args: &ImportArgs) -> Result<()> {
    let store = local.store();
    if let Some(head) = store.head().await? {
        return Err(Error::NotEmpty {
            dir: local.dir().to_path_buf(),
            namespace: local.namespace().to_owned(),
            head: head.to_string(),
        });
    }
    let input = Input::open(&args.file)?;
    let events = |input| Events::of(input, &args.file);

    // First pass: every line is an event, in log order, with unique ids; nothing is
    // appended before the whole file is known to be good.
    let (mut checked, mut total, mut ids, mut previous) = (events(&input)?, 0u64, HashSet::new(), None::<Position>);
    while let Some((line, exported, event)) = checked.next()? {
        let bad = |why: String| Error::BadLine { path: args.file.clone(), line, why };
        let position: Position = exported.position.parse().map_err(|e| bad(format!("position: {e}")))?;
        if let Some(previous) = previous.filter(|p| *p >= position) {
            return Err(bad(format!("position {position} does not follow {previous}: the file is not in log order")));
        }
        previous = Some(position);
        if let Some(id) = event.id.clone()
            && !ids.insert(id.clone())
        {
            return Err(bad(format!("event id {id:?} appears twice in the file")));
        }
        total += 1;
    }
    drop(ids);

    let bar = progress_bar(total, "{spinner} importing [{bar:40}] {pos}/{len} events ({elapsed}, {eta} left)");
    let (mut reading, mut imported, mut head) = (events(&input)?, 0u64, None);
    let (mut batch, mut bytes, mut last_line) = (Vec::new(), 0usize, 0usize);
    loop {
        let next = reading.next()?;
        let full = batch.len() >= BATCH_EVENTS || bytes >= BATCH_BYTES;
        let size = next.as_ref().map_or(0, |(_, _, event)| event_bytes(event));
        if !batch.is_empty() && (next.is_none() || full || bytes + size > BATCH_BYTES) {
            let count = batch.len() as u64;
            let appended = store
                .append(std::mem::take(&mut batch), None)
                .await
                .map_err(|source| Error::ImportStopped { imported, line: last_line, source })?;
            head = Some(appended.last());
            imported += count;
            bytes = 0;
            bar.set_position(imported);
        }
        let Some((line, _, event)) = next else { break };
        bytes += size;
        last_line = line;
        batch.push(event);
    }
    bar.finish_and_clear();
    let head = head.map_or_else(|| "the file holds no events".to_owned(), |head| format!("head {head}"));
    eprintln!(
        "imported {imported} events into namespace {:?} of {} ({head})",
        local.namespace(),
        local.dir().display()
    );
    Ok(())
}

/// About what an event weighs in an append.
fn event_bytes(event: &Event) -> usize {
    let tags: usize = event.tags.iter().map(|t| t.as_str().len() + 16).sum();
    let id = event.id.as_ref().map_or(0, |id| 2 * id.len() + 32);
    event.payload.len() + event.metadata.as_ref().map_or(0, Vec::len) + event.event_type.len() + tags + id + 64
}
