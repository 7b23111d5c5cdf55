//! Helpers the integration tests share: waiting for a condition, and HTTP calls that
//! answer with their status and JSON body. Slices stay in each test's own file: a slice
//! registers itself in every binary that compiles it.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::Value;

/// Polls `check` every 10 ms until it holds; fails the test naming `what` after `timeout`.
pub async fn eventually(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends `request`; its status and JSON body.
pub async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let (status, body, _) = send_noting_replay(request).await;
    (status, body)
}

/// Sends `request`; its status, JSON body, and whether it was an idempotent replay.
pub async fn send_noting_replay(request: reqwest::RequestBuilder) -> (u16, Value, bool) {
    let response = request.send().await.expect("the request is sent");
    let replayed = response.headers().get(fairway::app::IDEMPOTENT_REPLAYED).is_some();
    let status = response.status().as_u16();
    (status, response.json().await.expect("the answer is JSON"), replayed)
}
