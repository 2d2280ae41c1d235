//! `Idempotency-Key` on every `POST` and `PATCH` of `/api/v1` (draft-ietf-httpapi-
//! idempotency-key-header; the behaviour Stripe's API made familiar). A client that retries
//! a create after a timeout sends the same key and gets the first answer, instead of a
//! second campaign or a second call.
//!
//! - The first request with a key (per workspace) runs; its answer (status, content type,
//!   body) is stored with the SHA-256 of its body, and the same key with the same method,
//!   path, query and body replays that answer for 24 h, with `Idempotent-Replayed: true`.
//! - The same key with another body, method, path or query: 422 `idempotency_key_reused`.
//! - The same key while the first request is still running: 409 `idempotency_key_in_use`
//!   with `Retry-After: 1`.
//! - A 5xx answer, or one given before the body was read to its end (a refusal that changed
//!   nothing: a 401, a 415, an unknown campaign), is not stored: the retry runs afresh.
//! - The record is in the database, so all of this holds across nodes. A node that dies
//!   mid-request leaves the key in progress for 1 h (`IDEMPOTENCY_STALE`), then free.
//!
//! Bodies are hashed as they stream through, so a 256 MiB contact upload is never held in
//! memory; only the answer is kept.
//!
//! An answer that shows a secret once ([`ShownOnce`]: a new API key, a webhook signing
//! secret) is kept only sealed under the master key, as every secret at rest is; a server
//! without a master key does not keep it (the key is freed, as after a 5xx: a retry runs
//! afresh and makes another key or secret).

use super::{ApiError, Auth};
use crate::app::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dialtone_store::{Begun, StoredResponse};
use futures::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Set on a replayed answer.
pub const REPLAYED: &str = "idempotent-replayed";
/// Longest key accepted (a UUID is 36; Stripe allows 255).
pub const MAX_KEY_LEN: usize = 255;
/// Largest answer stored for replay; a larger one is not stored (the key is freed).
const MAX_STORED_BYTES: usize = 4 * 1024 * 1024;

/// A JSON answer that shows a secret once (`POST /keys`, `POST /workspaces` with a key,
/// `POST /webhook-endpoints`, `…/rotate-secret`): marked so that [`layer`] stores it for
/// replay only sealed under the master key, and not at all without one.
pub struct ShownOnce<T>(pub T);

/// The response extension [`ShownOnce`] sets.
#[derive(Debug, Clone, Copy)]
struct ShowsSecret;

impl<T: serde::Serialize> IntoResponse for ShownOnce<T> {
    fn into_response(self) -> Response {
        let mut r = axum::Json(self.0).into_response();
        r.extensions_mut().insert(ShowsSecret);
        r
    }
}

fn bad_key(message: &str) -> Response {
    ApiError::invalid("Idempotency-Key", message).into_response()
}

/// The middleware (a route layer of `/api/v1`).
pub async fn layer(State(app): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if !matches!(*request.method(), Method::POST | Method::PATCH) {
        return next.run(request).await;
    }
    let Some(value) = request.headers().get(HEADER) else { return next.run(request).await };
    // Two keys on one request: which one the client meant is not ours to guess.
    if request.headers().get_all(HEADER).iter().nth(1).is_some() {
        return bad_key("given more than once; send one key per request");
    }
    let key = match value.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= MAX_KEY_LEN && k.bytes().all(|b| b.is_ascii_graphic()) => k.to_owned(),
        _ => return bad_key(&format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters (a UUID is a good key)")),
    };
    let (mut parts, body) = request.into_parts();
    // A request with no body (an action: start, rotate-secret) is read to its end by
    // definition; its handler never reads one.
    let no_body = match parts.headers.get(header::CONTENT_LENGTH) {
        Some(n) => n.to_str().ok().and_then(|n| n.trim().parse::<u64>().ok()) == Some(0),
        None => parts.headers.get(header::TRANSFER_ENCODING).is_none(),
    };
    let ws = match Auth::remembered(&mut parts, &app).await {
        Ok(ws) => ws,
        Err(e) => return e.into_response(),
    };
    let target = format!("{} {}", parts.method, parts.uri.path_and_query().map_or(parts.uri.path(), |p| p.as_str()));
    let begun = match app.store.begin_idempotent(&ws, &key, &target, app.now()).await {
        Ok(b) => b,
        Err(e) => return ApiError::from(e).into_response(),
    };
    match begun {
        Begun::InProgress => {
            let mut r = ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_in_use",
                "a request with this Idempotency-Key is still running; send it again when it has answered",
            )
            .with_details(json!({ "field": "Idempotency-Key" }))
            .into_response();
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        Begun::Done { request: first, body_sha256, response } => {
            let mut hashed = Hashed::new(body);
            while let Some(chunk) = hashed.stream.next().await {
                if let Err(e) = chunk {
                    return ApiError::body(&e).into_response();
                }
            }
            if first != target || hashed.hex() != body_sha256 {
                return ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    format!("this Idempotency-Key was first used for another request ({first}, or another body); use a new key for a new request"),
                )
                .with_details(json!({ "field": "Idempotency-Key" }))
                .into_response();
            }
            replay(response)
        }
        Begun::Owner => {
            let hashed = Hashed::new(body);
            let state = hashed.state.clone();
            let response = next.run(Request::from_parts(parts, Body::from_stream(hashed.stream))).await;
            // Two statements: a lock guard taken in a tuple lives to the end of the statement,
            // and `hashed_hex` locks again (a std mutex is not reentrant).
            let ended = no_body || state.lock().expect("hash state lock").ended;
            let digest = hashed_hex(&state);
            let secret = response.extensions().get::<ShowsSecret>().is_some();
            // Without a master key a secret would sit in the table in plaintext for 24 h.
            if response.status().is_server_error() || !ended || (secret && app.store.keyring().is_none()) {
                abandon(&app, &ws, &key).await;
                return response;
            }
            let (parts, body) = response.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, MAX_STORED_BYTES).await else {
                abandon(&app, &ws, &key).await;
                return ApiError::internal("an answer too large to keep for Idempotency-Key replays").into_response();
            };
            match std::str::from_utf8(&bytes) {
                Ok(text) => {
                    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
                    let location = parts.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
                    let stored = StoredResponse { status: parts.status.as_u16(), content_type, location, body: text.to_owned(), secret };
                    if let Err(e) = app.store.finish_idempotent(&ws, &key, &digest, &stored).await {
                        tracing::warn!(error = %e, "could not store an Idempotency-Key answer; the key is freed");
                        abandon(&app, &ws, &key).await;
                    }
                }
                Err(_) => abandon(&app, &ws, &key).await,
            }
            Response::from_parts(parts, Body::from(bytes))
        }
    }
}

async fn abandon(app: &AppState, ws: &dialtone_core::WorkspaceId, key: &str) {
    if let Err(e) = app.store.abandon_idempotent(ws, key).await {
        tracing::warn!(error = %e, "could not free an Idempotency-Key; it frees itself when stale");
    }
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = (status, stored.body).into_response();
    if let Some(ct) = stored.content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    // A create's replay names what the first answer made, as the first answer did.
    if let Some(location) = stored.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        r.headers_mut().insert(header::LOCATION, location);
    }
    r.headers_mut().insert(REPLAYED, HeaderValue::from_static("true"));
    r
}

struct HashState {
    hasher: Sha256,
    /// The body was read to its end.
    ended: bool,
}

/// A request body that hashes itself as it is read.
struct Hashed {
    state: Arc<Mutex<HashState>>,
    stream: futures::stream::BoxStream<'static, Result<axum::body::Bytes, axum::Error>>,
}

impl Hashed {
    fn new(body: Body) -> Self {
        let state = Arc::new(Mutex::new(HashState { hasher: Sha256::new(), ended: false }));
        let (each, end) = (state.clone(), state.clone());
        let stream = body
            .into_data_stream()
            .inspect(move |chunk| {
                if let Ok(bytes) = chunk {
                    each.lock().expect("hash state lock").hasher.update(bytes);
                }
            })
            .map(Some)
            .chain(futures::stream::once(async move {
                end.lock().expect("hash state lock").ended = true;
                None
            }))
            .filter_map(|item| async move { item })
            .boxed();
        Self { state, stream }
    }

    fn hex(&self) -> String {
        hashed_hex(&self.state)
    }
}

/// The SHA-256 of what was read so far, hex.
fn hashed_hex(state: &Mutex<HashState>) -> String {
    hex::encode(state.lock().expect("hash state lock").hasher.clone().finalize())
}
