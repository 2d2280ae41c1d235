//! The HTTP surface: `/api/v1` (bearer API keys), `/webhooks/{provider}`, `/healthz`,
//! `/readyz`, `/metrics`. One router per resource, merged here.
//!
//! Each resource module returns an [`OpenApiRouter`] built with `routes!()` from handlers
//! annotated with `#[utoipa::path]`: a route cannot be mounted without its operation in
//! the OpenAPI document (`GET /api/v1/openapi.json`, described in [`openapi`]). A new
//! resource adds its router to [`api`] and nothing else.

mod agents;
mod batches;
mod callers;
mod calls;
mod campaigns;
mod contacts;
mod dnc;
mod docs;
pub(crate) mod error;
pub mod events;
mod idempotency;
mod instant;
mod keys;
pub mod openapi;
mod patch;
mod phone_numbers;
mod provider_accounts;
mod query;
mod single_calls;
mod stats;
mod steer;
pub(crate) mod webhook_endpoints;
mod webhooks;
mod workspaces;

pub use error::{ApiError, Json, Path, Query, CODES};

use crate::app::AppState;
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use dialtone_core::WorkspaceId;
use dialtone_store::KeyGrant;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;

/// The `/api/v1` routes that take query parameters (each reads them with [`Query`], which
/// checks its own keys). Every other API route takes none, and a query string sent to one
/// is refused rather than ignored.
const QUERY_ROUTES: &[(Method, &str)] = &[
    (Method::GET, "/api/v1/campaigns"),
    (Method::GET, "/api/v1/agents"),
    (Method::GET, "/api/v1/webhook-endpoints"),
    (Method::GET, "/api/v1/provider-accounts"),
    (Method::GET, "/api/v1/webhook-endpoints/{id}/deliveries"),
    (Method::GET, "/api/v1/calls"),
    (Method::GET, "/api/v1/batches"),
    (Method::GET, "/api/v1/batches/{id}/calls"),
    (Method::GET, "/api/v1/dnc"),
    (Method::GET, "/api/v1/dnc/check"),
    (Method::GET, "/api/v1/campaigns/{id}/dnc"),
    (Method::GET, "/api/v1/campaigns/{id}/contacts"),
    // `?campaign_id=&from=&to=&preset=`.
    (Method::GET, "/api/v1/stats"),
    // `?region=`: the region national numbers in the request are read in.
    (Method::POST, "/api/v1/dnc"),
    (Method::POST, "/api/v1/campaigns/{id}/dnc"),
    (Method::DELETE, "/api/v1/dnc/{phone}"),
    (Method::DELETE, "/api/v1/campaigns/{id}/dnc/{phone}"),
    // `?workspace_id=`: another workspace's keys (an operator's admin key only).
    (Method::GET, "/api/v1/keys"),
];

/// Every `/api/v1` route with its OpenAPI operation, paths relative to `/api/v1`.
fn api() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .merge(campaigns::router())
        .merge(calls::router())
        .merge(batches::router())
        .merge(dnc::router())
        .merge(contacts::router())
        .merge(single_calls::router())
        .merge(phone_numbers::router())
        .merge(agents::router())
        .merge(webhook_endpoints::router())
        .merge(provider_accounts::router())
        .merge(stats::router())
        .merge(openapi::router())
        .merge(events::router())
        .merge(workspaces::router())
        .merge(keys::router())
}

/// The `/api/v1` routes and the OpenAPI document that describes exactly them.
fn api_v1() -> (Router<Arc<AppState>>, utoipa::openapi::OpenApi) {
    let (router, spec) = OpenApiRouter::with_openapi(openapi::base()).nest("/api/v1", api()).split_for_parts();
    (router, openapi::finish(spec))
}

/// The OpenAPI 3.1 document of `/api/v1`, as `GET /api/v1/openapi.json` serves it.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    api_v1().1
}

pub fn router(state: Arc<AppState>) -> Router {
    let (api, _) = api_v1();
    // Route layers run last-added first: a stray query is refused before a key is claimed.
    let api = api.route_layer(middleware::from_fn_with_state(state.clone(), idempotency::layer)).route_layer(middleware::from_fn(no_stray_query));
    Router::new()
        .merge(api)
        .merge(docs::router())
        .merge(crate::dashboard::router())
        .merge(webhooks::router())
        .merge(crate::media::router())
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::not_found("route") })
        .with_state(state)
}

/// Refuses a query string on an API route that reads none (`?dry_run=1` on a start must
/// not look accepted), before the handler can act.
async fn no_stray_query(route: MatchedPath, request: Request, next: Next) -> Response {
    let takes_query = QUERY_ROUTES.iter().any(|(m, r)| m == request.method() && *r == route.as_str());
    if !takes_query {
        if let Err(e) = error::check_query_keys(request.uri().query().unwrap_or(""), Some(&[])) {
            return e.into_response();
        }
    }
    next.run(request).await
}

/// The safety net around the whole router: an error answered without our shape by
/// something below the handlers (axum's 405, a rejection of an extractor used directly, a
/// tower layer) is rewritten into `{"error": {"code", "message", "details"}}` with its
/// status kept, so no client ever has to parse text/plain or an empty body. Outside the
/// router, not a `Router::layer`: axum adds a 405's `Allow` header after route layers run.
pub async fn error_shape(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let error = if status == StatusCode::METHOD_NOT_ALLOWED {
        let allow: Vec<&str> =
            parts.headers.get(header::ALLOW).and_then(|v| v.to_str().ok()).map(|a| a.split(',').map(str::trim).collect()).unwrap_or_default();
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", format!("{method} is not allowed on this route; it takes {}", allow.join(", ")))
            .with_details(serde_json::json!({ "allow": allow }))
    } else if status.is_server_error() {
        let text = axum::body::to_bytes(body, 16 * 1024).await.unwrap_or_default();
        ApiError::internal(format!("{status}: {}", String::from_utf8_lossy(&text)))
    } else {
        let text = axum::body::to_bytes(body, 16 * 1024).await.unwrap_or_default();
        let text = String::from_utf8_lossy(&text).trim().to_string();
        let message = if text.is_empty() { status.canonical_reason().unwrap_or("refused").to_string() } else { text };
        ApiError::new(status, error::code_for(status), message)
    };
    let mut shaped = error.into_response();
    *shaped.status_mut() = status;
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(v) = parts.headers.get(&name) {
            shaped.headers_mut().insert(name, v.clone());
        }
    }
    shaped
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

/// The workspace of the API key in `Authorization: Bearer …`, once the key was found to
/// carry the scope the route needs ([`required_scope`]).
pub struct Auth(pub WorkspaceId);

/// The whole grant of the request's API key (workspace, scopes, whether it is the
/// operator's), for the workspace and key management routes; checked like [`Auth`].
pub struct Grant(pub KeyGrant);

/// A request extension: the grant a layer found for the request's API key, so the
/// handler's [`Auth`] does not look the key up a second time.
#[derive(Clone)]
struct Authenticated(KeyGrant);

/// The scope a route needs (issue 13): `admin` for workspace and key management, `read`
/// for any other `GET`/`HEAD`, `write` for everything else (`POST`, `PUT`, `PATCH`, `DELETE`).
pub fn required_scope(method: &Method, route: &str) -> &'static str {
    let admin = ["/api/v1/workspaces", "/api/v1/keys"].iter().any(|p| route == *p || route.strip_prefix(p).is_some_and(|r| r.starts_with('/')));
    if admin {
        "admin"
    } else if method == Method::GET || method == Method::HEAD {
        "read"
    } else {
        "write"
    }
}

impl Auth {
    /// Authenticates `parts` and leaves the answer in its extensions for the handler.
    async fn remembered(parts: &mut Parts, app: &Arc<AppState>) -> Result<WorkspaceId, ApiError> {
        let Grant(grant) = Grant::from_request_parts(parts, app).await?;
        let ws = grant.workspace_id.clone();
        parts.extensions.insert(Authenticated(grant));
        Ok(ws)
    }
}

impl FromRequestParts<Arc<AppState>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<AppState>) -> Result<Self, ApiError> {
        let Grant(grant) = Grant::from_request_parts(parts, app).await?;
        Ok(Auth(grant.workspace_id))
    }
}

impl FromRequestParts<Arc<AppState>> for Grant {
    type Rejection = ApiError;

    /// 401 without a key, with an unknown or revoked one, or one of a disabled workspace
    /// (looked up in the database on every request, so no node can hide a revocation);
    /// 403 `insufficient_scope` when the key lacks the route's scope.
    async fn from_request_parts(parts: &mut Parts, app: &Arc<AppState>) -> Result<Self, ApiError> {
        // A layer that authenticated the request already (Idempotency-Key) left its answer.
        let grant = match parts.extensions.get::<Authenticated>() {
            Some(Authenticated(grant)) => grant.clone(),
            None => authenticate(parts, app).await?,
        };
        let route = parts.extensions.get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| parts.uri.path().to_string());
        let scope = required_scope(&parts.method, &route);
        if !crate::keys::has_scope(&grant.scopes, scope) {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "insufficient_scope", format!("this API key lacks the `{scope}` scope this request needs"))
                .with_details(serde_json::json!({ "required_scope": scope })));
        }
        Ok(Grant(grant))
    }
}

async fn authenticate(parts: &Parts, app: &Arc<AppState>) -> Result<KeyGrant, ApiError> {
    let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let key = header
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::unauthorized("missing API key: send Authorization: Bearer <key>"))?;
    match app.store.authenticate_api_key(&crate::keys::hash(key)).await? {
        Some(grant) => {
            if crate::keys::due_for_touch(&grant.key_id) {
                // Best effort, off the request's path: a lost write only makes the
                // last-use time a minute older.
                let (store, now, id) = (app.store.clone(), app.now(), grant.key_id.clone());
                tokio::spawn(async move {
                    if let Err(e) = store.touch_api_key(&id, now).await {
                        tracing::debug!(error = %e, "could not note an API key's use");
                    }
                });
            }
            Ok(grant)
        }
        None => Err(ApiError::unauthorized("unknown or revoked API key, or its workspace is disabled")),
    }
}

/// `?limit=&before=` on list endpoints: newest first, `before` = the previous page's `next_cursor`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub before: Option<String>,
}

/// What a list's cursor is: the id of its last item, so it is checked by the id's own parser.
pub type CursorCheck = fn(&str) -> bool;

/// A cursor of a list of suppressions: a [`SuppressionId`](dialtone_core::SuppressionId) whose body is a ULID.
pub fn is_suppression_id(s: &str) -> bool {
    dialtone_core::SuppressionId::parse(s).is_some_and(|id| ulid::Ulid::from_string(&id.as_str()[dialtone_core::SuppressionId::PREFIX.len() + 1..]).is_ok())
}

impl PageQuery {
    /// The page asked for; `cursor` says whether `before` is an id of the listed kind (a
    /// malformed cursor is a 400 naming `before`, not a silently empty or wrong page).
    pub fn page(&self, cursor: CursorCheck) -> Result<dialtone_store::Page, ApiError> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=500).contains(&limit) {
            return Err(ApiError::invalid("limit", "must be between 1 and 500"));
        }
        if let Some(b) = &self.before {
            if !cursor(b) {
                return Err(ApiError::invalid_query("before", "not a cursor of this list: pass the previous page's next_cursor"));
            }
        }
        Ok(dialtone_store::Page { limit, before: self.before.clone() })
    }
}

/// A page of a list: `{"data": [...], "next_cursor"}`, the cursor `null` on the last page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paged<T> {
    pub data: Vec<T>,
    /// Pass as `before` to get the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// A whole list, not paged: `{"data": [...]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Listed<T> {
    pub data: Vec<T>,
}

/// A page of items with the cursor for the next one (`null` on the last page).
pub fn paged<T: serde::Serialize>(items: Vec<T>, limit: u32, cursor: impl Fn(&T) -> String) -> Paged<T> {
    let next_cursor = (items.len() as u32 == limit).then(|| items.last().map(&cursor)).flatten();
    Paged { data: items, next_cursor }
}
