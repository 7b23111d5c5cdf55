//! `GET /metrics` in the Prometheus text format.
//!
#![doc = include_str!("metrics.md")]
//!
//! Gauges of views, automations and the store are read when `/metrics` is scraped.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fairway_dcb::metrics::GROUP_TRANSACTIONS;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::{Instrument, debug, info_span, warn};

use super::Shared;
use super::error::ApiError;
use super::params::NoParams;

/// Bounds of the duration histograms, in seconds.
const DURATION_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Bounds of the group-commit size histogram, in transactions.
const GROUP_BUCKETS: [f64; 11] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];

/// Events counted ahead of a projector, at most.
const LAG_CAP: usize = 1_000_000;

/// Counters of the embedded store's committer: commits, transactions, journal microseconds.
pub(super) type StoreCounters = Arc<dyn Fn() -> [u64; 3] + Send + Sync>;

/// The process's Prometheus recorder: installed once, shared by every app of the process.
/// `None` when another recorder was installed first (its own exporter serves the metrics).
fn recorder() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &DURATION_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(GROUP_TRANSACTIONS.into()), &GROUP_BUCKETS))
                .expect("non-empty buckets");
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(err) => {
                    warn!(%err, "another metrics recorder is installed; /metrics stays empty");
                    None
                }
            }
        })
        .as_ref()
}

/// Installs the recorder (before the first command runs) and gives every metric its help
/// text, from the table of `metrics.md` (the one the documentation shows).
pub(super) fn install() {
    static DESCRIBED: OnceLock<()> = OnceLock::new();
    if recorder().is_some() {
        DESCRIBED.get_or_init(|| {
            for (name, help) in described(include_str!("metrics.md")) {
                metrics::describe_counter!(name, help);
            }
        });
    }
}

/// The `(metric, what)` rows of a markdown table whose first column is a metric's name in
/// backquotes and whose third says what it is.
fn described(table: &str) -> Vec<(String, String)> {
    table
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((name.to_owned(), cells.get(3)?.replace('`', "")))
        })
        .collect()
}

/// `GET /metrics`.
pub(super) async fn render(State(shared): State<Arc<Shared>>, _: NoParams) -> Result<Response, ApiError> {
    for view in shared.views.values() {
        let (progress, lag) = (view.progress().await?, view.remaining(LAG_CAP).await?);
        gauge!("fairway_view_lag_events", "view" => view.name()).set(lag as f64);
        gauge!("fairway_view_processed_events", "view" => view.name()).set(progress.processed as f64);
    }
    for automation in shared.automations.values() {
        let (pending, dead) = (automation.pending().await?, automation.dead_letters().await?.len());
        let leased = automation.leased().await?;
        gauge!("fairway_automation_pending_jobs", "automation" => automation.name()).set(pending as f64);
        gauge!("fairway_automation_leased_jobs", "automation" => automation.name()).set(leased as f64);
        gauge!("fairway_automation_dead_letters", "automation" => automation.name()).set(dead as f64);
    }
    gauge!("fairway_store_events").set(shared.events.count().await? as f64);
    if let Some(store) = &shared.store_counters {
        let [commits, transactions, journal_micros] = store();
        counter!("fairway_store_commits_total").absolute(commits);
        counter!("fairway_store_transactions_total").absolute(transactions);
        counter!("fairway_store_journal_microseconds_total").absolute(journal_micros);
    }
    let text = recorder().map(PrometheusHandle::render).unwrap_or_default();
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// Middleware counting requests by route template and status, and running each in a
/// `request` span that names the slice the route is about (`slice`, empty for others).
pub(super) async fn track(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let method = request.method().to_string();
    let slice = slice_named(&route, request.uri().path()).unwrap_or_default();
    let span = info_span!("request", %method, %route, slice);
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16().to_string();
    debug!(parent: &span, %status, elapsed_ms = started.elapsed().as_millis() as u64, "answered");
    counter!("fairway_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    histogram!("fairway_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The slice a request is about: the path segment in the place of `{name}` in its route
/// template (`/commands/{name}`, `/views/{name}/{key}`, ...).
fn slice_named<'a>(route: &str, path: &'a str) -> Option<&'a str> {
    let at = route.split('/').position(|segment| segment == "{name}")?;
    path.split('/').nth(at)
}

#[cfg(test)]
mod tests {
    use super::slice_named;

    #[test]
    fn every_documented_metric_gets_its_help_text() {
        let rows = super::described(include_str!("metrics.md"));
        assert!(rows.len() >= 17, "{rows:?}");
        let commands = rows.iter().find(|(name, _)| name == "fairway_commands_total").unwrap();
        assert!(commands.1.starts_with("commands run: accepted"), "{commands:?}");
        assert!(rows.iter().all(|(name, help)| name.starts_with("fairway_") && !help.is_empty()));
    }

    #[test]
    fn the_slice_is_the_segment_in_the_place_of_name() {
        assert_eq!(slice_named("/commands/{name}", "/commands/take-note"), Some("take-note"));
        assert_eq!(slice_named("/views/{name}/{key}", "/views/notes/n1"), Some("notes"));
        let replay = "/admin/api/automations/{name}/dead-letters/{position}/replay";
        assert_eq!(slice_named(replay, "/admin/api/automations/ack/dead-letters/00/replay"), Some("ack"));
        assert_eq!(slice_named("/health", "/health"), None);
        assert_eq!(slice_named("unmatched", "/nowhere"), None);
    }
}
