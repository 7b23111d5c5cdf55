//! `fairway events`: the log as a table or JSON lines, page after page, then followed live.

use std::io::Write;

use fairway_core::app::admin::event_json;
use fairway_dcb::{EventStore, Position, ReadOptions};
use futures::TryStreamExt;
use serde_json::Value;

use super::Source;
use crate::cli::EventsArgs;
use crate::client::{Client, Filter};
use crate::error::{Error, Result};
use crate::format::{EventTable, json_line};
use crate::local::Local;

/// Prints events as asked: JSON lines or table rows.
#[derive(Debug)]
struct Printer {
    json: bool,
    table: EventTable,
}

impl Printer {
    fn print(&mut self, out: &mut dyn Write, event: &Value) -> std::io::Result<()> {
        if self.json { json_line(out, event) } else { self.table.row(out, event) }
    }
}

/// Runs `fairway events`.
pub async fn run(source: &Source, args: &EventsArgs, out: &mut dyn Write) -> Result<()> {
    let filter = Filter { types: args.types.clone(), tags: args.tags.clone(), exact: false };
    let mut printer = Printer { json: args.json, table: EventTable::default() };
    match source {
        Source::Http(client) => over_http(client, &filter, args, &mut printer, out).await,
        Source::Local(local) if args.follow => {
            let why = "nothing appends to a stopped app's store while this tool holds it: start the app and use --url";
            Err(Error::Usage(format!("`fairway events --follow` with --data-dir {}: {why}", local.dir().display())))
        }
        Source::Local(local) => from_store(local, &filter, args, &mut printer, out).await,
    }
}

async fn over_http(
    client: &Client,
    filter: &Filter,
    args: &EventsArgs,
    printer: &mut Printer,
    out: &mut dyn Write,
) -> Result<()> {
    let mut remaining = args.limit;
    let mut from = args.from;
    let mut head;
    loop {
        let size = remaining.map_or(client.event_page(), |left| left.min(client.event_page()));
        let page = client.events_page(filter, from, args.backwards, size).await?;
        head = page.head;
        for event in page.events.iter().take(size as usize) {
            printer.print(out, event)?;
            if let Some(left) = remaining.as_mut() {
                *left -= 1;
            }
        }
        out.flush()?;
        match page.next_cursor {
            Some(next) if remaining != Some(0) => from = Some(next),
            _ => break,
        }
    }
    if !args.follow {
        return Ok(());
    }
    // Follow what is appended after the head the listing went to (`--limit` bounds the
    // listing only), never before `--from`.
    let start = head.map_or(Position::ZERO, Position::next).max(args.from.unwrap_or(Position::ZERO));
    let mut feed = client.follow(filter, start).await?;
    while let Some(event) = feed.next().await? {
        printer.print(out, &event)?;
        out.flush()?;
    }
    Ok(())
}

async fn from_store(
    local: &Local,
    filter: &Filter,
    args: &EventsArgs,
    printer: &mut Printer,
    out: &mut dyn Write,
) -> Result<()> {
    let store = local.store();
    let query = filter.query();
    let mut options = if args.backwards { ReadOptions::backwards() } else { ReadOptions::forwards() };
    if let Some(from) = args.from {
        options = options.from(from);
    }
    if let Some(limit) = args.limit {
        options = options.limit(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    let read = store.read_with_head(query.clone(), options).await?;
    let mut events = read.events;
    while let Some(event) = events.try_next().await? {
        printer.print(out, &event_json(&event))?;
    }
    out.flush()?;
    Ok(())
}
