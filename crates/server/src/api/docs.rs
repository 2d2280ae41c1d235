//! `GET /docs`: the API's docs page, Swagger UI on `/api/v1/openapi.json`. Its assets are
//! vendored in `crates/server/assets/docs/` (npm `swagger-ui-dist`, see the README there)
//! and embedded in the binary: the page needs no internet and no API key.

use crate::app::AppState;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// Every asset of the page: its name under `/docs/`, its content type and its bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("swagger-ui-bundle.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/docs/swagger-ui-bundle.js")),
    ("swagger-ui.css", "text/css; charset=utf-8", include_bytes!("../../assets/docs/swagger-ui.css")),
    ("docs.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/docs/docs.js")),
    ("favicon-32x32.png", "image/png", include_bytes!("../../assets/docs/favicon-32x32.png")),
];

const INDEX: &str = include_str!("../../assets/docs/index.html");

/// `GET /docs` (the page), `/docs/` (redirected there) and `/docs/{asset}`.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/docs", get(|| async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX) }))
        .route("/docs/", get(|| async { Redirect::permanent("/docs") }))
        .route("/docs/{asset}", get(asset))
}

async fn asset(super::Path(name): super::Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        // The bytes change only with the binary: a day in the browser's cache is safe.
        Some((_, content_type, bytes)) => ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "public, max-age=86400")], *bytes).into_response(),
        None => super::ApiError::not_found("docs asset").into_response(),
    }
}
