//! The HTTP handlers.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use fairway_dcb::Position;
use tracing::{error, warn};

use super::Shared;
use super::error::ApiError;
use super::idempotency::{Claim, ClaimError, Settlement, StoredResponse};
use super::params::{NoParams, Params};
use super::replies::{AutomationStatus, AutomationsReply, ProgressReply, Purged, Replayed, ViewProgress};
use crate::command::{AppendStep, CommandRunner};
use crate::registry::{DynAutomation, DynView};

/// Header naming a request's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Response header set when a stored response is replayed.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// How many events `/progress` counts ahead of a checkpoint, at most.
const REMAINING_CAP: usize = 1_000_000;

pub(super) fn router(shared: Arc<Shared>, layers: &[super::RouterLayer]) -> Router {
    let public = Router::new()
        .route("/health", get(health))
        .route("/slices", get(list_slices))
        .route("/progress", get(progress))
        .route("/commands/{name}", post(run_command))
        .route("/views/{name}", get(list_view))
        .route("/views/{name}/{key}", get(get_view))
        .route("/automations", get(list_automations))
        .route("/metrics", get(super::metrics::render))
        .merge(super::page::routes());
    // Everything that reads raw events or changes queues.
    let admin = Router::new()
        .route("/automations/{name}/dead-letters", get(dead_letters).delete(purge_dead_letters))
        .route("/automations/{name}/dead-letters/{position}/replay", post(replay_dead_letter))
        .route("/admin/api/events", get(super::admin::events))
        .route("/admin/api/events/follow", get(super::admin::follow))
        .route("/admin/api/stats", get(super::admin::stats))
        .route("/admin/api/progress", get(progress))
        .route("/admin/api/automations", get(list_automations))
        .route("/admin/api/views/{name}", get(list_view))
        .route("/admin/api/views/{name}/{key}", get(get_view))
        .route("/admin/api/automations/{name}/dead-letters", get(dead_letters).delete(purge_dead_letters))
        .route("/admin/api/automations/{name}/dead-letters/{position}/replay", post(replay_dead_letter))
        .route_layer(middleware::from_fn_with_state(shared.admin.clone(), super::security::require_admin));
    let routes = public
        .merge(admin)
        .layer(middleware::from_fn(super::error::log_server_failures))
        .layer(middleware::from_fn(super::metrics::track))
        .with_state(shared);
    let routes = layers.iter().fold(routes, |router, layer| layer(router));
    super::answers::json_answers(routes)
}

fn failure(error: ApiError) -> Response {
    error.into_response()
}

async fn run_command(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    _: NoParams,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !shared.slices.commands.contains_key(name.as_str()) {
        return failure(ApiError::NotFound(format!("unknown command {name:?}")));
    }
    let Some(key) = headers.get(IDEMPOTENCY_KEY) else {
        return stored_response(execute(&shared, &name, &body, None).await);
    };
    let Ok(key) = key.to_str() else {
        return failure(ApiError::bad_request("Idempotency-Key must be visible ASCII"));
    };
    let ticket = match shared.idempotency.claim(&name, key, &body).await {
        Ok(Claim::Run(ticket)) => ticket,
        Ok(Claim::Replay(stored)) => return replayed(stored),
        Ok(Claim::InProgress) => {
            return failure(ApiError::conflict(format!("a request with Idempotency-Key {key:?} is in progress")));
        }
        Ok(Claim::Mismatch) => return mismatch(key),
        Err(err @ ClaimError::BadKey(_)) => return failure(ApiError::BadRequest(Box::new(err))),
        Err(err) => return failure(ApiError::Internal(Box::new(err))),
    };
    let stored = execute(&shared, &name, &body, Some(ticket.append_step())).await;
    match ticket.finish(stored).await {
        Ok(Settlement::Respond(stored)) => stored_response(stored),
        Ok(Settlement::Replay(stored)) => replayed(stored),
        Ok(Settlement::Mismatch) => mismatch(key),
        Err(err) => {
            warn!(command = name, %err, "the response could not be stored for its Idempotency-Key");
            let message = format!("the command appended nothing, but its response could not be stored: {err}");
            failure(ApiError::internal(message))
        }
    }
}

fn replayed(stored: StoredResponse) -> Response {
    let mut response = stored_response(stored);
    response.headers_mut().insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}

fn mismatch(key: &str) -> Response {
    failure(ApiError::IdempotencyKeyReused { key: key.to_owned() })
}

fn stored_response(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(axum::http::header::CONTENT_TYPE, "application/json")], stored.body).into_response()
}

/// Runs command `name` on `body` (appending through `append_step` if given); the
/// response as status and JSON body.
async fn execute(shared: &Shared, name: &str, body: &[u8], append_step: Option<Arc<dyn AppendStep>>) -> StoredResponse {
    let respond = |error: ApiError| {
        if error.status().is_server_error() {
            error!(command = name, %error, "command failed on the server side");
        }
        StoredResponse {
            status: error.status().as_u16(),
            body: serde_json::to_vec(&error.body()).expect("JSON encodes"),
        }
    };
    let slice = shared.slices.commands[name];
    let body: serde_json::Value = match serde_json::from_slice(body) {
        Ok(body) => body,
        Err(err) => return respond(ApiError::bad_request(format!("body is not JSON: {err}"))),
    };
    let mut runner = CommandRunner::new(shared.events.clone()).with_snapshots(shared.snapshots.clone());
    if let Some(step) = append_step {
        runner = runner.with_append_step(step);
    }
    match (slice.handler)(runner, body).await {
        Ok(reply) => StoredResponse::reply(&reply),
        Err(failure) => respond(failure.into()),
    }
}

/// Documents per page of `GET /views/<name>` when `limit` is not given.
pub const DEFAULT_PAGE_LIMIT: usize = 100;
/// Most documents per page of `GET /views/<name>`.
pub const MAX_PAGE_LIMIT: usize = 1_000;

/// `GET /views/<name>/<key>?after=<position>`; any other parameter is a 400.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct After {
    after: Option<String>,
}

/// `GET /views/<name>?after=<position>&prefix=<key prefix>&cursor=<key>&limit=<n>`; any
/// other parameter is a 400.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    after: Option<String>,
    #[serde(default)]
    prefix: String,
    cursor: Option<String>,
    limit: Option<usize>,
}

async fn view_after(shared: &Shared, name: &str, after: Option<String>) -> Result<Arc<dyn DynView>, ApiError> {
    let view = shared.views.get(name).ok_or_else(|| ApiError::NotFound(format!("unknown view {name:?}")))?;
    if let Some(after) = after {
        let position: Position = after.parse().map_err(|e| ApiError::bad_request(format!("after: {e}")))?;
        view.wait_for(position, super::READ_YOUR_WRITES_TIMEOUT).await?;
    }
    Ok(view.clone())
}

async fn list_view(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Params(query): Params<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE_LIMIT);
    if !(1..=MAX_PAGE_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit: is {limit}; it must be 1 to {MAX_PAGE_LIMIT}")));
    }
    let view = view_after(&shared, &name, query.after).await?;
    Ok(Json(view.page(query.prefix, query.cursor, limit).await?).into_response())
}

async fn get_view(
    State(shared): State<Arc<Shared>>,
    Path((name, key)): Path<(String, String)>,
    Params(after): Params<After>,
) -> Result<Response, ApiError> {
    match view_after(&shared, &name, after.after).await?.get(key.clone()).await? {
        Some(doc) => Ok(Json(doc).into_response()),
        None => Err(ApiError::NotFound(format!("view {name:?} has no document {key:?}"))),
    }
}

/// `/health`: 200 with every background task; 503 naming what is wrong (the store
/// refusing writes, each failing task and why).
async fn health(State(shared): State<Arc<Shared>>, _: NoParams) -> Response {
    let report = shared.health.report();
    let status = if report.healthy() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(report)).into_response()
}

async fn list_slices(State(shared): State<Arc<Shared>>, _: NoParams) -> Response {
    Json(shared.slices.describe()).into_response()
}

/// Every view's projector: checkpoint, events applied, events still to apply, the instance
/// projecting it.
async fn progress(State(shared): State<Arc<Shared>>, _: NoParams) -> Result<Response, ApiError> {
    let mut views = Vec::new();
    for view in shared.views.values() {
        let (progress, remaining) = (view.progress().await?, view.remaining(REMAINING_CAP).await?);
        views.push(ViewProgress {
            name: view.name().to_owned(),
            version: view.version(),
            active: progress.active,
            checkpoint: progress.checkpoint,
            processed: progress.processed,
            remaining: remaining as u64,
            remaining_capped: remaining >= REMAINING_CAP,
            total: progress.processed + remaining as u64,
            holder: progress.holder,
        });
    }
    Ok(Json(ProgressReply { views }).into_response())
}

fn automation<'a>(shared: &'a Shared, name: &str) -> Result<&'a Arc<dyn DynAutomation>, ApiError> {
    shared.automations.get(name).ok_or_else(|| ApiError::NotFound(format!("unknown automation {name:?}")))
}

async fn list_automations(State(shared): State<Arc<Shared>>, _: NoParams) -> Result<Response, ApiError> {
    let mut automations = Vec::new();
    for automation in shared.automations.values() {
        let (pending, dead) = (automation.pending().await?, automation.dead_letters().await?.len());
        automations.push(AutomationStatus {
            name: automation.name().to_owned(),
            workers: automation.workers(),
            pending,
            leased: automation.leased().await?,
            dead_letters: dead,
        });
    }
    Ok(Json(AutomationsReply { automations }).into_response())
}

async fn dead_letters(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    _: NoParams,
) -> Result<Response, ApiError> {
    Ok(Json(automation(&shared, &name)?.dead_letters().await?).into_response())
}

async fn replay_dead_letter(
    State(shared): State<Arc<Shared>>,
    Path((name, position)): Path<(String, String)>,
    _: NoParams,
) -> Result<Response, ApiError> {
    let automation = automation(&shared, &name)?;
    let position: Position = position.parse().map_err(|e| ApiError::BadRequest(Box::new(e)))?;
    if !automation.replay(position).await? {
        return Err(ApiError::NotFound(format!("automation {name:?} has no dead letter at {position}")));
    }
    Ok(Json(Replayed { replayed: position }).into_response())
}

async fn purge_dead_letters(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    _: NoParams,
) -> Result<Response, ApiError> {
    Ok(Json(Purged { purged: automation(&shared, &name)?.purge().await? }).into_response())
}
