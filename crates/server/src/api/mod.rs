//! The HTTP surface: `/api/v1` (bearer API keys), `/webhooks/{provider}`, `/healthz`,
//! `/readyz`, `/metrics`. One router per resource, merged here.

mod calls;
mod campaigns;
mod contacts;
mod dnc;
mod phone_numbers;
mod single_calls;
mod error;
mod webhooks;

pub use error::{ApiError, Json, Query};

use crate::app::AppState;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use dialtone_core::WorkspaceId;
use serde::Deserialize;
use std::sync::Arc;

pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new().merge(campaigns::router()).merge(calls::router()).merge(dnc::router()).merge(contacts::router()).merge(single_calls::router()).merge(phone_numbers::router());
    Router::new()
        .nest("/api/v1", api)
        .merge(webhooks::router())
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::not_found("route") })
        .with_state(state)
}

async fn readyz(State(app): State<Arc<AppState>>) -> impl IntoResponse {
    match app.store.active_calls().await {
        Ok(_) => (StatusCode::OK, "ready").into_response(),
        Err(e) => ApiError::unavailable(format!("database unreachable: {e}")).into_response(),
    }
}

async fn metrics(State(app): State<Arc<AppState>>) -> Result<impl IntoResponse, ApiError> {
    let active = app.store.active_calls().await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], app.engine.metrics.render(active, &app.engine.breaker_states())))
}

/// The workspace of the API key in `Authorization: Bearer …`.
pub struct Auth(pub WorkspaceId);

impl FromRequestParts<Arc<AppState>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<AppState>) -> Result<Self, ApiError> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let key = header
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| ApiError::unauthorized("missing API key: send Authorization: Bearer <key>"))?;
        match app.store.find_api_key(&crate::keys::hash(key)).await? {
            Some((_, ws)) => Ok(Auth(ws)),
            None => Err(ApiError::unauthorized("unknown or revoked API key")),
        }
    }
}

/// `?limit=&before=` on list endpoints: newest first, `before` = the previous page's `next_cursor`.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    pub limit: Option<u32>,
    pub before: Option<String>,
}

impl PageQuery {
    pub fn page(&self) -> Result<dialtone_store::Page, ApiError> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=500).contains(&limit) {
            return Err(ApiError::invalid("limit", "must be between 1 and 500"));
        }
        Ok(dialtone_store::Page { limit, before: self.before.clone() })
    }
}

/// A page of items with the cursor for the next one (`null` on the last page).
pub fn paged<T: serde::Serialize>(items: Vec<T>, limit: u32, cursor: impl Fn(&T) -> String) -> serde_json::Value {
    let next = (items.len() as u32 == limit).then(|| items.last().map(&cursor)).flatten();
    serde_json::json!({ "data": items, "next_cursor": next })
}
