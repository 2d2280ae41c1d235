//! The dashboard at `/`: one HTML page, a stylesheet and a script, embedded in the binary
//! (no CDN, no build step). The page talks only to the public `/api/v1` API with the
//! user's API key, and reads live changes from `GET /api/v1/events`.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("../assets/dashboard/index.html");
const CSS: &str = include_str!("../assets/dashboard/dashboard.css");
const JS_SOURCE: &str = include_str!("../assets/dashboard/dashboard.js");
/// Where the script takes the event types an endpoint can subscribe to.
const EVENT_TYPES_SLOT: &str = "/* WEBHOOK_EVENT_TYPES */[]";

/// The script, with the store's event types written into [`EVENT_TYPES_SLOT`]: the list
/// the API checks `events` against, so the form can offer no other.
static JS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    assert!(JS_SOURCE.contains(EVENT_TYPES_SLOT), "dashboard.js has its event types slot");
    JS_SOURCE.replace(EVENT_TYPES_SLOT, &serde_json::to_string(&dialtone_store::WEBHOOK_EVENT_TYPES).expect("strings serialize"))
});

/// `GET /` (the page), `/dashboard/dashboard.css`, `/dashboard/dashboard.js`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX) }))
        .route("/dashboard/dashboard.css", get(|| async { asset("text/css; charset=utf-8", CSS) }))
        .route("/dashboard/dashboard.js", get(|| async { asset("text/javascript; charset=utf-8", JS.as_str()) }))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_offers_exactly_the_event_types_the_api_takes() {
        let line = JS.lines().find(|l| l.starts_with("const WEBHOOK_EVENTS = ")).expect("the list");
        let list: Vec<String> = serde_json::from_str(line.trim_start_matches("const WEBHOOK_EVENTS = ").trim_end_matches(';')).unwrap();
        assert_eq!(list, dialtone_store::WEBHOOK_EVENT_TYPES);
    }
}
