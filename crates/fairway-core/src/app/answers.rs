//! Answers the router gives on its own, as JSON like every other error: unknown routes
//! (404), wrong methods (405), bodies over the limit (413), rejected paths or query
//! strings (400), and panicking handlers (500, logged; the connection stays up).

use std::panic::AssertUnwindSafe;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use futures::FutureExt;
use serde_json::json;
use tracing::error;

/// Largest accepted request body, in bytes.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Largest plain-text error body kept when it is turned into JSON.
const MAX_TEXT_BYTES: usize = 64 * 1024;

/// `router` with the body limit, panics caught and every error answered as JSON.
pub(super) fn json_answers(router: Router) -> Router {
    router
        .layer(middleware::from_fn(catch_panics))
        .layer(middleware::from_fn(errors_as_json))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// Answers a panicking handler with a JSON 500 and logs the panic, instead of dropping
/// the connection.
async fn catch_panics(request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".to_owned());
            error!(%method, path, panic = message, "a request handler panicked");
            let error =
                format!("internal error: the handler of {method} {path} panicked; the server log has the details");
            json_response(StatusCode::INTERNAL_SERVER_ERROR, error)
        }
    }
}

/// Turns error responses that are not JSON (the router's own 404 and 405, extractor
/// rejections such as 413) into `{"error": ...}`, keeping their status and headers.
async fn errors_as_json(request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_TEXT_BYTES)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let error = match status {
        StatusCode::NOT_FOUND => format!("no route for {method} {path}"),
        // The router adds the `Allow` header naming the accepted methods after this layer.
        StatusCode::METHOD_NOT_ALLOWED => {
            format!("{path} does not accept {method} (the Allow header names what it does)")
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            format!("the request body is larger than the limit of {MAX_BODY_BYTES} bytes (2 MiB)")
        }
        _ if text.is_empty() => status.canonical_reason().unwrap_or("error").to_owned(),
        _ => text,
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let body = serde_json::to_vec(&json!({ "error": error })).expect("JSON encodes");
    Response::from_parts(parts, Body::from(body))
}

fn json_response(status: StatusCode, error: String) -> Response {
    let body = serde_json::to_vec(&json!({ "error": error })).expect("JSON encodes");
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
