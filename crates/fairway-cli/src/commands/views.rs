//! `fairway views`: a view's documents, every page of them, or one document; from the
//! running app, or from a stopped app's store (its active version).

use std::io::Write;

use serde_json::Value;

use fairway_core::view::Page;
use reqwest::Method;

use super::Source;
use crate::cli::ViewsArgs;
use crate::error::{Error, Result};
use crate::format::{DOC_WIDTH, abbreviate, json_line, table};
use crate::local::Local;

/// Documents read per page from a data directory.
const LOCAL_PAGE: usize = 500;

/// Runs `fairway views`.
pub async fn run(source: &Source, args: &ViewsArgs, out: &mut dyn Write) -> Result<()> {
    if let Some(key) = &args.key {
        let doc = document(source, &args.view, key).await?;
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
        let Page { documents, next_cursor } = page(source, args, cursor.as_deref()).await?;
        for document in documents {
            if args.json {
                json_line(out, &document)?;
            } else {
                rows.push(vec![document.key, abbreviate(&document.doc.to_string(), DOC_WIDTH)]);
            }
        }
        match next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    if !args.json {
        table(out, &["KEY", "DOC"], &rows)?;
    }
    Ok(())
}

/// One document of the view, from the app or from the store it left.
async fn document(source: &Source, view: &str, key: &str) -> Result<Value> {
    match source {
        Source::Http(client) => client.get(&["views", view, key], &[]).await,
        Source::Local(local) => match local.state().view_document(view, key).await? {
            Some(doc) => Ok(doc),
            None => Err(missing(local, view, Some(key)).await),
        },
    }
}

/// One page of documents after `cursor`, with the next cursor.
async fn page(source: &Source, args: &ViewsArgs, cursor: Option<&str>) -> Result<Page<Value>> {
    match source {
        Source::Http(client) => {
            let mut query = vec![("limit", client.view_page().to_string())];
            if let Some(prefix) = &args.prefix {
                query.push(("prefix", prefix.clone()));
            }
            if let Some(cursor) = cursor {
                query.push(("cursor", cursor.to_owned()));
            }
            client.reply(Method::GET, &["views", args.view.as_str()], &query).await
        }
        Source::Local(local) => {
            let prefix = args.prefix.as_deref().unwrap_or("");
            match local.state().view_page(&args.view, prefix, cursor, LOCAL_PAGE).await? {
                Some(page) => Ok(page),
                None => Err(missing(local, &args.view, None).await),
            }
        }
    }
}

/// The error for a view (or one of its documents) the store does not hold, naming the views
/// it does hold.
async fn missing(local: &Local, view: &str, key: Option<&str>) -> Error {
    let views = match local.state().views().await {
        Ok(views) => views.into_iter().filter(|v| v.active.is_some()).map(|v| v.name).collect::<Vec<_>>(),
        Err(err) => return err.into(),
    };
    let known = if views.is_empty() { "none".to_owned() } else { views.join(", ") };
    let message = match key {
        Some(key) if views.iter().any(|v| v == view) => format!("view {view:?} has no document {key:?}"),
        _ => format!("no view {view:?} in {} (views there: {known})", local.dir().display()),
    };
    Error::NotFound { message }
}
