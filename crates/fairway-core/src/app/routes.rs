//! The HTTP handlers.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use fairway_dcb::Position;
use serde_json::json;
use tracing::{error, warn};

use super::Shared;
use super::idempotency::{Claim, ClaimError, Outcome, StoredResponse};
use crate::command::{AppendStep, CommandRunner};
use crate::registry::{CommandEnv, DynView};
use crate::view::ViewError;

/// Header naming a request's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Response header set when a stored response is replayed.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// How many events `/progress` counts ahead of a checkpoint, at most.
const REMAINING_CAP: usize = 1_000_000;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    let routes = Router::new()
        .route("/health", get(health))
        .route("/slices", get(list_slices))
        .route("/progress", get(progress))
        .route("/commands/{name}", post(run_command))
        .route("/views/{name}", get(list_view))
        .route("/views/{name}/{key}", get(get_view))
        .route("/automations", get(list_automations))
        .route("/automations/{name}/dead-letters", get(dead_letters))
        .route("/automations/{name}/dead-letters", delete(purge_dead_letters))
        .route("/automations/{name}/dead-letters/{position}/replay", post(replay_dead_letter))
        .with_state(shared);
    super::answers::json_answers(routes)
}

fn failure(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, axum::Json(json!({ "error": message.to_string() }))).into_response()
}

async fn run_command(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !shared.slices.commands.contains_key(name.as_str()) {
        return failure(StatusCode::NOT_FOUND, format!("unknown command {name:?}"));
    }
    let Some(key) = headers.get(IDEMPOTENCY_KEY) else {
        return stored_response(execute(&shared, &name, &body, None).await);
    };
    let Ok(key) = key.to_str() else {
        return failure(StatusCode::BAD_REQUEST, "Idempotency-Key must be visible ASCII");
    };
    let ticket = match shared.idempotency.claim(&name, key, &body).await {
        Ok(Claim::Run(ticket)) => ticket,
        Ok(Claim::Replay(stored)) => return replayed(stored),
        Ok(Claim::InProgress) => {
            return failure(StatusCode::CONFLICT, format!("a request with Idempotency-Key {key:?} is in progress"));
        }
        Ok(Claim::Mismatch) => return mismatch(key),
        Err(err @ ClaimError::BadKey(_)) => return failure(StatusCode::BAD_REQUEST, err),
        Err(err) => return failure(StatusCode::INTERNAL_SERVER_ERROR, err),
    };
    let stored = execute(&shared, &name, &body, Some(ticket.append_step())).await;
    match ticket.finish(stored).await {
        Ok(Outcome::Respond(stored)) => stored_response(stored),
        Ok(Outcome::Replay(stored)) => replayed(stored),
        Ok(Outcome::Mismatch) => mismatch(key),
        Err(err) => {
            warn!(command = name, %err, "the response could not be stored for its Idempotency-Key");
            let message = format!("the command appended nothing, but its response could not be stored: {err}");
            failure(StatusCode::INTERNAL_SERVER_ERROR, message)
        }
    }
}

fn replayed(stored: StoredResponse) -> Response {
    let mut response = stored_response(stored);
    response.headers_mut().insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}

fn mismatch(key: &str) -> Response {
    failure(StatusCode::UNPROCESSABLE_ENTITY, format!("Idempotency-Key {key:?} was used with another body"))
}

fn stored_response(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(axum::http::header::CONTENT_TYPE, "application/json")], stored.body).into_response()
}

/// Runs command `name` on `body` (appending through `append_step` if given); the
/// response as status and JSON body.
async fn execute(shared: &Shared, name: &str, body: &[u8], append_step: Option<Arc<dyn AppendStep>>) -> StoredResponse {
    let respond = |status: StatusCode, body: serde_json::Value| StoredResponse {
        status: status.as_u16(),
        body: serde_json::to_vec(&body).expect("JSON encodes"),
    };
    let slice = shared.slices.commands[name];
    let body: serde_json::Value = match serde_json::from_slice(body) {
        Ok(body) => body,
        Err(err) => return respond(StatusCode::BAD_REQUEST, json!({ "error": format!("body is not JSON: {err}") })),
    };
    let mut runner = CommandRunner::new(shared.events.clone());
    if let Some(step) = append_step {
        runner = runner.with_append_step(step);
    }
    let env = CommandEnv { runner, snapshots: shared.snapshots.clone() };
    match (slice.handler)(env, body).await {
        Ok(reply) => StoredResponse::reply(&reply),
        Err(err) => {
            let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if status.is_server_error() {
                error!(command = name, error = %err, "command failed on the server side");
            }
            respond(status, json!({ "error": err.to_string() }))
        }
    }
}

/// `?after=<position>`.
#[derive(serde::Deserialize)]
struct After {
    after: Option<String>,
}

async fn view_after(shared: &Shared, name: &str, after: After) -> Result<Arc<dyn DynView>, Response> {
    let view =
        shared.views.get(name).ok_or_else(|| failure(StatusCode::NOT_FOUND, format!("unknown view {name:?}")))?;
    if let Some(after) = after.after {
        let position: Position = after.parse().map_err(|e| failure(StatusCode::BAD_REQUEST, e))?;
        view.wait_for(position, super::READ_YOUR_WRITES_TIMEOUT).await.map_err(|e| match e {
            ViewError::Timeout { .. } => failure(StatusCode::GATEWAY_TIMEOUT, e),
            other => failure(StatusCode::INTERNAL_SERVER_ERROR, other),
        })?;
    }
    Ok(view.clone())
}

async fn list_view(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(after): Query<After>,
) -> Response {
    let view = match view_after(&shared, &name, after).await {
        Ok(view) => view,
        Err(response) => return response,
    };
    match view.list().await {
        Ok(docs) => {
            axum::Json(docs.into_iter().map(|(k, v)| json!({ "key": k, "doc": v })).collect::<Vec<_>>()).into_response()
        }
        Err(err) => failure(StatusCode::INTERNAL_SERVER_ERROR, err),
    }
}

async fn get_view(
    State(shared): State<Arc<Shared>>,
    Path((name, key)): Path<(String, String)>,
    Query(after): Query<After>,
) -> Response {
    let view = match view_after(&shared, &name, after).await {
        Ok(view) => view,
        Err(response) => return response,
    };
    match view.get(key.clone()).await {
        Ok(Some(doc)) => axum::Json(doc).into_response(),
        Ok(None) => failure(StatusCode::NOT_FOUND, format!("view {name:?} has no document {key:?}")),
        Err(err) => failure(StatusCode::INTERNAL_SERVER_ERROR, err),
    }
}

/// `/health`: 200 with every background task; 503 naming what is wrong (the store
/// refusing writes, each failing task and why).
async fn health(State(shared): State<Arc<Shared>>) -> Response {
    let report = shared.health.report();
    let status = if report.healthy() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(report)).into_response()
}

async fn list_slices(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.slices.describe()).into_response()
}

/// Every view's projector: checkpoint, events applied, events still to apply.
async fn progress(State(shared): State<Arc<Shared>>) -> Response {
    let mut views = Vec::new();
    for view in shared.views.values() {
        let (progress, remaining) = match (view.progress().await, view.remaining(REMAINING_CAP).await) {
            (Ok(progress), Ok(remaining)) => (progress, remaining),
            (Err(err), _) | (_, Err(err)) => return failure(StatusCode::INTERNAL_SERVER_ERROR, err),
        };
        views.push(json!({
            "name": view.name(),
            "version": view.version(),
            "active": progress.active,
            "checkpoint": progress.checkpoint.map(|p| p.to_string()),
            "processed": progress.processed,
            "remaining": remaining,
            "remaining_capped": remaining >= REMAINING_CAP,
            "total": progress.processed + remaining as u64,
        }));
    }
    axum::Json(json!({ "views": views })).into_response()
}

fn unknown_automation(name: &str) -> Response {
    failure(StatusCode::NOT_FOUND, format!("unknown automation {name:?}"))
}

async fn list_automations(State(shared): State<Arc<Shared>>) -> Response {
    let mut automations = Vec::new();
    for automation in shared.automations.values() {
        let (pending, dead) = match (automation.pending().await, automation.dead_letters().await) {
            (Ok(pending), Ok(dead)) => (pending, dead.len()),
            (Err(err), _) | (_, Err(err)) => return failure(StatusCode::INTERNAL_SERVER_ERROR, err),
        };
        automations.push(json!({
            "name": automation.name(),
            "workers": automation.workers(),
            "pending": pending,
            "dead_letters": dead,
        }));
    }
    axum::Json(json!({ "automations": automations })).into_response()
}

async fn dead_letters(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    let Some(automation) = shared.automations.get(name.as_str()) else { return unknown_automation(&name) };
    match automation.dead_letters().await {
        Ok(dead) => axum::Json(dead).into_response(),
        Err(err) => failure(StatusCode::INTERNAL_SERVER_ERROR, err),
    }
}

async fn replay_dead_letter(
    State(shared): State<Arc<Shared>>,
    Path((name, position)): Path<(String, String)>,
) -> Response {
    let Some(automation) = shared.automations.get(name.as_str()) else { return unknown_automation(&name) };
    let position: Position = match position.parse() {
        Ok(position) => position,
        Err(err) => return failure(StatusCode::BAD_REQUEST, err),
    };
    match automation.replay(position).await {
        Ok(true) => axum::Json(json!({ "replayed": position.to_string() })).into_response(),
        Ok(false) => failure(StatusCode::NOT_FOUND, format!("automation {name:?} has no dead letter at {position}")),
        Err(err) => failure(StatusCode::INTERNAL_SERVER_ERROR, err),
    }
}

async fn purge_dead_letters(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    let Some(automation) = shared.automations.get(name.as_str()) else { return unknown_automation(&name) };
    match automation.purge().await {
        Ok(purged) => axum::Json(json!({ "purged": purged })).into_response(),
        Err(err) => failure(StatusCode::INTERNAL_SERVER_ERROR, err),
    }
}
