//! `fairway export`: the whole log, consistent at one head, as JSON lines (the format is in
//! [`crate::line`]).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use fairway_dcb::{EventStore, Position, Query, ReadOptions};
use futures::TryStreamExt;
use indicatif::ProgressBar;

use super::Source;
use crate::cli::ExportArgs;
use crate::client::{Client, Filter};
use crate::error::{Error, Result};
use crate::format::{json_line, progress_bar};
use crate::line::ExportedEvent;
use crate::local::Local;

/// The progress bar's look: the share of the log's positions exported so far.
const BAR: &str = "{spinner} exporting [{bar:40}] {percent:>3}% {msg} ({elapsed})";

/// Where the lines go: standard output, or a file written beside its final name and renamed
/// into place once complete.
struct Sink {
    out: BufWriter<Box<dyn Write>>,
    file: Option<(PathBuf, PathBuf)>,
}

impl Sink {
    fn create(path: &Path) -> Result<Self> {
        if path == Path::new("-") {
            return Ok(Sink { out: BufWriter::new(Box::new(std::io::stdout())), file: None });
        }
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = File::create(&partial).map_err(|source| Error::File { path: partial.clone(), source })?;
        Ok(Sink { out: BufWriter::with_capacity(1 << 20, Box::new(file)), file: Some((partial, path.to_path_buf())) })
    }

    fn failed(&self, source: std::io::Error) -> Error {
        match &self.file {
            Some((partial, _)) => Error::File { path: partial.clone(), source },
            None => Error::Output(source),
        }
    }

    fn write(&mut self, line: &ExportedEvent) -> Result<()> {
        json_line(&mut self.out, line).map_err(|e| self.failed(e))
    }

    fn finish(mut self) -> Result<()> {
        self.out.flush().map_err(|e| self.failed(e))?;
        if let Some((partial, path)) = self.file.take() {
            std::fs::rename(&partial, &path).map_err(|source| Error::File { path: path.clone(), source })?;
        }
        Ok(())
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some((partial, _)) = self.file.take() {
            let _ = std::fs::remove_file(partial);
        }
    }
}

/// Runs `fairway export`; reports on stderr what was written.
pub async fn run(source: &Source, args: &ExportArgs) -> Result<()> {
    let mut sink = Sink::create(&args.file)?;
    let (count, head) = match source {
        Source::Http(client) => over_http(client, &mut sink).await?,
        Source::Local(local) => from_store(local, &mut sink).await?,
    };
    sink.finish()?;
    let head = head.map_or_else(|| "the log is empty".to_owned(), |head| format!("head {head}"));
    let target = if args.file == Path::new("-") { "standard output".into() } else { args.file.display().to_string() };
    eprintln!("exported {count} events to {target} ({head})");
    Ok(())
}

fn bar(head: Position) -> ProgressBar {
    let bar = progress_bar(head.commit(), BAR);
    bar.set_message("0 events");
    bar
}

fn advance(bar: &ProgressBar, position: Position, count: u64) {
    bar.set_position(position.commit());
    if count.is_multiple_of(1000) {
        bar.set_message(format!("{count} events"));
    }
}

/// Pages through the log up to the head the first page reports, and not beyond.
async fn over_http(client: &Client, sink: &mut Sink) -> Result<(u64, Option<Position>)> {
    let all = Filter { exact: true, ..Filter::default() };
    let mut page = client.events_page(&all, None, false, client.event_page()).await?;
    let Some(head) = page.head else { return Ok((0, None)) };
    let protocol = |why: String| Error::Protocol { url: client.url(&["admin", "api", "events"], &[]).to_string(), why };
    let bar = bar(head);
    let mut count = 0;
    'pages: loop {
        for event in &page.events {
            let line = ExportedEvent::from_api(event).map_err(&protocol)?;
            let position: Position = line.position.parse().map_err(|e| protocol(format!("position: {e}")))?;
            if position > head {
                break 'pages;
            }
            sink.write(&line)?;
            count += 1;
            advance(&bar, position, count);
        }
        match page.next_cursor {
            Some(next) if next <= head => {
                page = client.events_page(&all, Some(next), false, client.event_page()).await?
            }
            _ => break,
        }
    }
    bar.finish_and_clear();
    Ok((count, Some(head)))
}

/// Reads the log up to the head taken when the read starts, with the stored bytes.
async fn from_store(local: &Local, sink: &mut Sink) -> Result<(u64, Option<Position>)> {
    let read = local.store().read_with_head(Query::all(), ReadOptions::forwards()).await?;
    let Some(head) = read.head else { return Ok((0, None)) };
    let bar = bar(head);
    let mut events = read.events;
    let mut count = 0;
    while let Some(event) = events.try_next().await? {
        sink.write(&ExportedEvent::from_stored(&event))?;
        count += 1;
        advance(&bar, event.position, count);
    }
    bar.finish_and_clear();
    Ok((count, Some(head)))
}
