//! The dashboard at `/`: one HTML page, a stylesheet and a script, embedded in the binary
//! (no CDN, no build step). The page talks only to the public `/api/v1` API with the
//! user's API key, and reads live changes from `GET /api/v1/events`.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("../assets/dashboard/index.html");
const CSS: &str = include_str!("../assets/dashboard/dashboard.css");
const JS: &str = include_str!("../assets/dashboard/dashboard.js");

/// `GET /` (the page), `/dashboard/dashboard.css`, `/dashboard/dashboard.js`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX) }))
        .route("/dashboard/dashboard.css", get(|| async { asset("text/css; charset=utf-8", CSS) }))
        .route("/dashboard/dashboard.js", get(|| async { asset("text/javascript; charset=utf-8", JS) }))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // The page holds an API key: no framing by other sites, no stale script after an upgrade.
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'self'; img-src 'self' data: blob:; media-src *; frame-ancestors 'none'"),
        ],
        body,
    )
}
