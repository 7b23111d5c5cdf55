//! `fairway progress`: how far each view's projector has come through the log, once or
//! live until every view has caught up; or, in a stopped app's store, where each view
//! version's checkpoint stands and what its automations' queues hold.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use fairway_core::app::replies::{ProgressReply, ViewProgress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use super::Source;
use crate::cli::ProgressArgs;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::format::{json_line, table};
use crate::local::Local;

/// How often `--watch` asks the app again.
pub const WATCH_EVERY: Duration = Duration::from_millis(500);

/// The app's answer to `GET /progress`, as it came (for `--json`) and read.
async fn fetch(client: &Client) -> Result<(Value, Vec<ViewProgress>)> {
    let answer = client.get(&["progress"], &[]).await?;
    let reply: ProgressReply = serde_json::from_value(answer.clone()).map_err(|err| Error::Protocol {
        url: client.url(&["progress"], &[]).to_string(),
        why: format!("not a list of views' progress: {err}"),
    })?;
    Ok((answer, reply.views))
}

/// Runs `fairway progress`.
pub async fn run(source: &Source, args: &ProgressArgs, out: &mut dyn Write) -> Result<()> {
    let client = match source {
        Source::Http(client) => client,
        Source::Local(local) if args.watch => {
            let why = "nothing moves in a stopped app's store: start the app and use --url";
            return Err(Error::Usage(format!(
                "`fairway progress --watch` with --data-dir {}: {why}",
                local.dir().display()
            )));
        }
        Source::Local(local) => return stored(local, args, out).await,
    };
    let (answer, mut views) = fetch(client).await?;
    if args.json {
        json_line(out, &answer)?;
        return Ok(());
    }
    if args.watch {
        views = watch(client, views).await?;
    }
    if views.is_empty() {
        writeln!(out, "the app has no views")?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|view| {
            vec![
                view.name.clone(),
                view.version.to_string(),
                if view.active { "active" } else { "building" }.to_owned(),
                format!("{}/{}", view.processed, view.total),
                view.remaining.to_string(),
                view.checkpoint.map_or_else(|| "-".into(), |p| p.to_string()),
            ]
        })
        .collect();
    table(out, &["VIEW", "VERSION", "STATE", "PROCESSED", "REMAINING", "CHECKPOINT"], &rows)?;
    Ok(())
}

/// The checkpoints a stopped app's views left in its store, and its automations' queues.
/// What is left to apply is unknown without the views' queries.
async fn stored(local: &Local, args: &ProgressArgs, out: &mut dyn Write) -> Result<()> {
    let state = local.state();
    let (views, automations) = (state.views().await?, state.automations().await?);
    if args.json {
        let views: Vec<Value> = views
            .iter()
            .flat_map(|view| {
                view.versions.iter().map(|version| {
                    json!({
                        "name": view.name,
                        "version": version.version,
                        "active": view.active == Some(version.version),
                        "checkpoint": version.checkpoint.map(|p| p.to_string()),
                        "processed": version.processed,
                    })
                })
            })
            .collect();
        let automations: Vec<Value> = automations
            .iter()
            .map(|a| json!({ "name": a.name, "pending": a.pending, "dead_letters": a.dead_letters }))
            .collect();
        json_line(out, &json!({ "views": views, "automations": automations }))?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = views
        .iter()
        .flat_map(|view| {
            view.versions.iter().map(|version| {
                vec![
                    view.name.clone(),
                    version.version.to_string(),
                    if view.active == Some(version.version) { "active" } else { "building" }.to_owned(),
                    version.processed.to_string(),
                    version.checkpoint.map_or_else(|| "-".into(), |p| p.to_string()),
                ]
            })
        })
        .collect();
    if rows.is_empty() {
        writeln!(out, "the store holds no views")?;
    } else {
        table(out, &["VIEW", "VERSION", "STATE", "PROCESSED", "CHECKPOINT"], &rows)?;
    }
    if !automations.is_empty() {
        writeln!(out)?;
        let rows: Vec<Vec<String>> = automations
            .iter()
            .map(|a| vec![a.name.clone(), a.pending.to_string(), a.dead_letters.to_string()])
            .collect();
        table(out, &["AUTOMATION", "PENDING", "DEAD LETTERS"], &rows)?;
    }
    Ok(())
}

/// Shows a bar per view, refreshed until none has events left to apply; returns the last
/// progress seen.
async fn watch(client: &Client, mut views: Vec<ViewProgress>) -> Result<Vec<ViewProgress>> {
    let target =
        if std::io::stderr().is_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
    let multi = MultiProgress::with_draw_target(target);
    let style = ProgressStyle::with_template("{prefix:>24} [{bar:40}] {pos}/{len} {msg}")
        .expect("valid template")
        .progress_chars("=> ");
    let mut bars: BTreeMap<String, ProgressBar> = BTreeMap::new();
    loop {
        for view in &views {
            let bar = bars.entry(view.name.clone()).or_insert_with(|| {
                let bar = multi.add(ProgressBar::new(view.total));
                bar.set_style(style.clone());
                bar.set_prefix(format!("{} v{}", view.name, view.version));
                bar
            });
            bar.set_length(view.total);
            bar.set_position(view.processed);
            bar.set_message(if view.remaining == 0 {
                "caught up".to_owned()
            } else {
                format!("{} to go", view.remaining)
            });
        }
        if views.iter().all(|view| view.remaining == 0) {
            break;
        }
        tokio::time::sleep(WATCH_EVERY).await;
        views = fetch(client).await?.1;
    }
    for bar in bars.values() {
        bar.finish();
    }
    Ok(views)
}
