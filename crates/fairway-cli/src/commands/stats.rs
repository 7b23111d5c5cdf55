//! `fairway stats`: the store's namespace, head, event count and bytes on disk.

use std::io::Write;

use fairway_dcb::EventStore;
use serde_json::{Value, json};

use super::Source;
use crate::cli::StatsArgs;
use crate::error::Result;
use crate::format::{human_bytes, json_line};

/// Runs `fairway stats`.
pub async fn run(source: &Source, args: &StatsArgs, out: &mut dyn Write) -> Result<()> {
    let stats = match source {
        Source::Http(client) => client.get(&["admin", "api", "stats"], &[]).await?,
        Source::Local(local) => {
            let store = local.store();
            json!({
                "namespace": local.namespace(),
                "head": store.head().await?.map(|h| h.to_string()),
                "events": store.count().await?,
                "data_dir": local.dir(),
                "bytes_on_disk": local.bytes_on_disk(),
            })
        }
    };
    if args.json {
        json_line(out, &stats)?;
        return Ok(());
    }
    let text = |field: &str| match stats.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(other) => Some(other.to_string()),
    };
    let mut lines = vec![
        ("namespace", text("namespace").unwrap_or_else(|| "-".into())),
        ("head", text("head").unwrap_or_else(|| "none (the log is empty)".into())),
        ("events", text("events").unwrap_or_else(|| "-".into())),
        (
            "bytes on disk",
            match stats.get("bytes_on_disk").and_then(Value::as_u64) {
                Some(bytes) => format!("{} ({bytes} bytes)", human_bytes(bytes)),
                None => "-".into(),
            },
        ),
        ("data dir", text("data_dir").unwrap_or_else(|| "-".into())),
    ];
    for field in ["views", "automations", "commands"] {
        if let Some(count) = text(field) {
            lines.push((field, count));
        }
    }
    for (name, value) in lines {
        writeln!(out, "{name:<14} {value}")?;
    }
    Ok(())
}
