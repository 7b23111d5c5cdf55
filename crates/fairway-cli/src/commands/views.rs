//! `fairway views`: a view's documents, every page of them, or one document.

use std::io::Write;

use serde_json::Value;

use super::Source;
use crate::cli::ViewsArgs;
use crate::error::{Error, Result};
use crate::format::{DOC_WIDTH, abbreviate, json_line, table};

/// Runs `fairway views`.
pub async fn run(source: &Source, args: &ViewsArgs, out: &mut dyn Write) -> Result<()> {
    let client = source.http("views")?;
    if let Some(key) = &args.key {
        let doc = client.get(&["views", &args.view, key], &[]).await?;
        if args.json {
            json_line(out, &doc)?;
        } else {
            writeln!(out, "{}", serde_json::to_string_pretty(&doc).expect("JSON encodes"))?;
        }
        return Ok(());
    }
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", client.view_page().to_string())];
        if let Some(prefix) = &args.prefix {
            query.push(("prefix", prefix.clone()));
        }
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor.clone()));
        }
        let segments = ["views", args.view.as_str()];
        let page = client.get(&segments, &query).await?;
        let Some(documents) = page.get("documents").and_then(Value::as_array) else {
            let url = client.url(&segments, &[]).to_string();
            return Err(Error::Protocol { url, why: "no \"documents\" list".into() });
        };
        for document in documents {
            if args.json {
                json_line(out, document)?;
            } else {
                let key = document.get("key").and_then(Value::as_str).unwrap_or_default().to_owned();
                let doc = document.get("doc").map(Value::to_string).unwrap_or_default();
                rows.push(vec![key, abbreviate(&doc, DOC_WIDTH)]);
            }
        }
        match page.get("next_cursor").and_then(Value::as_str) {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    if !args.json {
        table(out, &["KEY", "DOC"], &rows)?;
    }
    Ok(())
}
