//! The admin page at `/admin`: static files embedded in the binary (no build step) that read
//! the admin API — the event log with filters, views, progress, dead letters with replay
//! and purge. The page holds no data itself; the API behind it is guarded (a token typed
//! into the page is kept for the browser session).

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/admin.js");
const STYLE: &str = include_str!("page/admin.css");

/// The page's routes.
pub(super) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let html = || async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response() };
    Router::new()
        .route("/admin", get(html))
        .route("/admin/", get(html))
        .route(
            "/admin/admin.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT) }),
        )
        .route("/admin/admin.css", get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE) }))
}
