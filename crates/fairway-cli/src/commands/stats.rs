//! `fairway stats`: the store's namespace, head, event count and bytes on disk.

use std::io::Write;

use fairway_core::app::replies::StoreStats;
use fairway_dcb::EventStore;
use reqwest::Method;

use super::Source;
use crate::cli::StatsArgs;
use crate::error::Result;
use crate::format::{human_bytes, json_line};

/// Runs `fairway stats`.
pub async fn run(source: &Source, args: &StatsArgs, out: &mut dyn Write) -> Result<()> {
    let stats = match source {
        Source::Http(client) => client.reply(Method::GET, &["admin", "api", "stats"], &[]).await?,
        Source::Local(local) => {
            let store = local.store();
            StoreStats {
                namespace: local.namespace().to_owned(),
                head: store.head().await?,
                events: store.count().await?,
                data_dir: Some(local.dir().to_owned()),
                bytes_on_disk: Some(local.bytes_on_disk()),
                views: None,
                automations: None,
                commands: None,
            }
        }
    };
    if args.json {
        json_line(out, &stats)?;
        return Ok(());
    }
    let or_dash = |value: Option<String>| value.unwrap_or_else(|| "-".into());
    let mut lines = vec![
        ("namespace", stats.namespace.clone()),
        ("head", stats.head.map_or_else(|| "none (the log is empty)".into(), |head| head.to_string())),
        ("events", stats.events.to_string()),
        ("bytes on disk", or_dash(stats.bytes_on_disk.map(|bytes| format!("{} ({bytes} bytes)", human_bytes(bytes))))),
        ("data dir", or_dash(stats.data_dir.as_ref().map(|dir| dir.display().to_string()))),
    ];
    for (field, count) in [("views", stats.views), ("automations", stats.automations), ("commands", stats.commands)] {
        if let Some(count) = count {
            lines.push((field, count.to_string()));
        }
    }
    for (name, value) in lines {
        writeln!(out, "{name:<14} {value}")?;
    }
    Ok(())
}
