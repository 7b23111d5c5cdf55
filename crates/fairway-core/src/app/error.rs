//! [`ApiError`]: every failure the app answers, mapped to its HTTP status in one place.

use axum::Json;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fairway_dcb::{Error as StoreError, StorageError};
use serde_json::json;
use tracing::error;

use crate::BoxError;
use crate::automation::AutomationError;
use crate::command::CommandError;
use crate::event::EventError;
use crate::registry::{CommandFailure, Refusal};
use crate::view::ViewError;

/// A failure answered as `{"error": "<message>"}` with the status of its kind. Each variant
/// keeps the error it stands for as its [`source`](std::error::Error::source); conversions
/// from the runtime's errors (`?` in a handler) decide the kind.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The request is malformed: its body does not decode (the message names the field),
    /// or a value it carries breaks a rule of the store (400).
    #[error("{0}")]
    BadRequest(#[source] BoxError),
    /// An admin route was called without credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// An admin route was called with the wrong token (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such command, view, document, automation or dead letter (404).
    #[error("{0}")]
    NotFound(String),
    /// The boundary kept changing, or another request with the same idempotency key is in
    /// progress or was answered first (409).
    #[error("{0}")]
    Conflict(#[source] BoxError),
    /// The command refused: the source is the command's own error (422).
    #[error("{0}")]
    Rejected(#[source] BoxError),
    /// An `Idempotency-Key` came back with another body than its first request's (422,
    /// as the IETF draft on the header asks): a key stands for one request.
    #[error(
        "Idempotency-Key {key:?} was used with another body: a key stands for one request; send a new key with a new body"
    )]
    IdempotencyKeyReused {
        /// The key.
        key: String,
    },
    /// A fault of the server: a stored event does not decode, a decided event does not
    /// encode, or the store failed (500).
    #[error("{0}")]
    Internal(#[source] BoxError),
    /// The request cannot be served now and may be later: this instance's view version is
    /// superseded by a newer active one (another instance serves it), or the store was busy
    /// or out of reach (a transaction past its time limit or its retries) (503, with
    /// `Retry-After: 1`).
    #[error("{0}")]
    Unavailable(#[source] BoxError),
    /// A wait for read-your-writes ran out (504).
    #[error("{0}")]
    Timeout(#[source] BoxError),
    /// The disk holding the store is full: nothing was written (507).
    #[error("{0}")]
    InsufficientStorage(#[source] StorageError),
}

/// A request body that does not decode into the command.
#[derive(Debug, thiserror::Error)]
#[error("invalid command body: {0}")]
pub struct InvalidBody(#[source] pub BoxError);

impl ApiError {
    // ANCHOR: statuses
    /// The HTTP status of this failure.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Rejected(_) | ApiError::IdempotencyKeyReused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
        }
    }
    // ANCHOR_END: statuses

    /// A 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest(message.into().into())
    }

    /// A 409 with `message`.
    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::Conflict(message.into().into())
    }

    /// A 500 with `message`.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::Internal(message.into().into())
    }

    /// The JSON body: `{"error": "<message>"}`.
    pub fn body(&self) -> serde_json::Value {
        json!({ "error": self.to_string() })
    }
}

/// The message of a failure on the server side, carried by its response (as an extension)
/// to [`log_server_failures`]: turning an [`ApiError`] into a response has no side effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerFailure(pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, Json(self.body())).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        }
        if status.is_server_error() {
            response.extensions_mut().insert(ServerFailure(self.to_string()));
        }
        response
    }
}

/// Logs every answer that carries a [`ServerFailure`], with its route, at `error` level.
/// The app's router has this layer; a router of your own that answers with [`ApiError`]
/// adds it with `axum::middleware::from_fn(log_server_failures)`.
pub async fn log_server_failures(request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let response = next.run(request).await;
    if let Some(ServerFailure(error)) = response.extensions().get::<ServerFailure>() {
        error!(%method, path, status = response.status().as_u16(), error, "request failed on the server side");
    }
    response
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::InvalidInput(e) => ApiError::BadRequest(Box::new(e)),
            StoreError::Storage(e @ StorageError::DiskFull { .. }) => ApiError::InsufficientStorage(e),
            // Busy or out of reach (timeouts, conflicts past every retry): try again later.
            StoreError::Storage(e) if e.is_transient() => ApiError::Unavailable(Box::new(e)),
            // An earlier request wrote the append's receipt: nothing was written this time.
            e @ StoreError::ReceiptStands { .. } => ApiError::Conflict(Box::new(e)),
            other => ApiError::Internal(Box::new(other)),
        }
    }
}

impl From<ViewError> for ApiError {
    fn from(err: ViewError) -> Self {
        match err {
            e @ ViewError::Timeout { .. } => ApiError::Timeout(Box::new(e)),
            e @ ViewError::Superseded { .. } => ApiError::Unavailable(Box::new(e)),
            ViewError::Store(store) => store.into(),
            other => ApiError::Internal(Box::new(other)),
        }
    }
}

impl From<AutomationError> for ApiError {
    fn from(err: AutomationError) -> Self {
        match err.into_inner().downcast::<StoreError>() {
            Ok(store) => (*store).into(),
            Err(other) => ApiError::Internal(other),
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<CommandError<E>> for ApiError {
    fn from(err: CommandError<E>) -> Self {
        match err {
            CommandError::Rejected(e) => ApiError::Rejected(Box::new(e)),
            e @ CommandError::Conflict { .. } => ApiError::Conflict(Box::new(e)),
            // A tag value of a decided event comes from the request.
            CommandError::Event(e @ EventError::Tag(_)) => ApiError::BadRequest(Box::new(InvalidBody(Box::new(e)))),
            CommandError::Store(StoreError::InvalidInput(e)) => {
                ApiError::BadRequest(Box::new(InvalidBody(Box::new(e))))
            }
            CommandError::Store(store) => store.into(),
            // Undecodable stored events, unencodable decided events.
            other => ApiError::Internal(Box::new(other)),
        }
    }
}

impl From<CommandFailure> for ApiError {
    fn from(failure: CommandFailure) -> Self {
        match failure {
            CommandFailure::InvalidBody(err) => ApiError::BadRequest(Box::new(InvalidBody(Box::new(err)))),
            // The command's own error stays the source.
            CommandFailure::Command(CommandError::Rejected(Refusal(refusal))) => ApiError::Rejected(refusal),
            CommandFailure::Command(other) => other.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("course c1 is full")]
    struct Full;

    #[test]
    fn every_failure_has_its_status() {
        let disk_full =
            StorageError::DiskFull { dir: "d".into(), filesystem: "/".into(), available: 0, needed: 16 << 20 };
        let cases: Vec<(ApiError, u16)> = vec![
            (ApiError::from(CommandError::Rejected(Full)), 422),
            (CommandError::<Full>::Conflict { attempts: 3 }.into(), 409),
            (CommandError::<Full>::Store(StoreError::ReceiptStands { value: vec![1] }).into(), 409),
            (CommandError::<Full>::Store(StoreError::Storage(disk_full)).into(), 507),
            (
                ViewError::Timeout { view: "v", position: fairway_dcb::Position::ZERO, timeout: Default::default() }
                    .into(),
                504,
            ),
            (ViewError::Superseded { view: "v", version: 1, active: 2 }.into(), 503),
            (StoreError::Storage(StorageError::TimedOut { attempts: 8, limit_ms: 5_000 }).into(), 503),
            (StoreError::Storage(StorageError::RetriesExhausted { attempts: 20, last: "conflict".into() }).into(), 503),
            (StoreError::Storage(StorageError::Fdb { code: 1007, message: "too old".into() }).into(), 503),
            (StoreError::Storage(StorageError::Fdb { code: 2101, message: "too large".into() }).into(), 500),
            (StoreError::Storage(StorageError::Corrupt("bad".into())).into(), 500),
            (ApiError::NotFound("unknown view \"x\"".into()), 404),
            (ApiError::bad_request("no"), 400),
            (ApiError::Unauthorized("token".into()), 401),
            (ApiError::Forbidden("token".into()), 403),
        ];
        for (error, status) in cases {
            assert_eq!(error.status().as_u16(), status, "{error}");
            assert_eq!(error.body()["error"], error.to_string());
            let message = error.to_string();
            let response = error.into_response();
            let carried = response.extensions().get::<ServerFailure>().map(|failure| failure.0.clone());
            let expected = (status >= 500).then_some(message);
            assert_eq!(carried, expected, "only failures on the server side are carried to the log");
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(retry_after, (status == 503).then(|| "1".to_owned()), "a 503 says when to try again");
        }
    }
}
