//! `fairway import`: an export file into an empty namespace of a stopped app's store, in
//! batches, keeping the order, types, tags, payloads, ids and metadata of the events (the
//! store gives them new positions and recording times).

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::Path;

use fairway_dcb::{EventStore, Position, RawEvent, append_bytes, check_event};

use crate::cli::ImportArgs;
use crate::error::{Error, Result};
use crate::format::progress_bar;
use crate::line::ExportedEvent;
use crate::local::Local;

/// Most events appended at once.
pub const BATCH_EVENTS: usize = 1_000;
/// Most bytes appended at once, counted as the store counts them (`append_bytes`): half the
/// store's limit per append.
pub const BATCH_BYTES: usize = fairway_dcb::limits::MAX_APPEND_BYTES / 2;

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

    fn next(&mut self) -> Result<Option<(usize, ExportedEvent, RawEvent)>> {
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

/// Runs `fairway import` into namespace `namespace` of the store in `dir`; reports on
/// stderr what was appended. The whole file is checked first: a bad file creates no store
/// and appends nothing.
pub async fn run(dir: &Path, namespace: &str, args: &ImportArgs) -> Result<()> {
    let input = Input::open(&args.file)?;
    let total = check(&input, &args.file)?;
    if total == 0 {
        eprintln!("{} holds no events: nothing to import, no store created or changed", args.file.display());
        return Ok(());
    }
    let local = Local::open(dir, namespace)?;
    let result = append_all(&local, &input, args, total).await;
    local.close();
    result
}

/// First pass: every line is an event the store accepts, in log order, with unique ids;
/// returns how many there are.
fn check(input: &Input, path: &Path) -> Result<u64> {
    let (mut checked, mut total, mut ids, mut previous) =
        (Events::of(input, path)?, 0u64, HashSet::new(), None::<Position>);
    while let Some((line, exported, event)) = checked.next()? {
        let bad = |why: String| Error::BadLine { path: path.to_path_buf(), line, why };
        check_event(0, &event).map_err(|err| bad(without_index(&err.to_string())))?;
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
    Ok(total)
}

/// Second pass: appends the checked events in batches into an empty namespace.
async fn append_all(local: &Local, input: &Input, args: &ImportArgs, total: u64) -> Result<()> {
    let store = local.store();
    if let Some(head) = store.head().await? {
        return Err(Error::NotEmpty {
            dir: local.dir().to_path_buf(),
            namespace: local.namespace().to_owned(),
            head: head.to_string(),
        });
    }
    let bar = progress_bar(total, "{spinner} importing [{bar:40}] {pos}/{len} events ({elapsed}, {eta} left)");
    let (mut reading, mut imported, mut head) = (Events::of(input, &args.file)?, 0u64, None);
    let (mut batch, mut bytes, mut last_line) = (Vec::new(), 0usize, 0usize);
    loop {
        let next = reading.next()?;
        let full = batch.len() >= BATCH_EVENTS || bytes >= BATCH_BYTES;
        let size = next.as_ref().map_or(0, |(_, _, event)| append_bytes(event));
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

/// A store's complaint about one event without the event's index in its batch (`event 0: `),
/// which means nothing in a file.
fn without_index(message: &str) -> String {
    match message.split_once(": ") {
        Some((index, rest)) if index.strip_prefix("event ").is_some_and(|n| n.parse::<usize>().is_ok()) => rest.into(),
        _ => message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::without_index;

    #[test]
    fn a_files_line_says_what_is_wrong_without_a_batch_index() {
        assert_eq!(
            without_index("event 0: 33 tags; the limit is 32 tags per event"),
            "33 tags; the limit is 32 tags per event"
        );
        assert_eq!(
            without_index("event type \"a b\": holds the forbidden character ' '"),
            "event type \"a b\": holds the forbidden character ' '"
        );
    }
}
