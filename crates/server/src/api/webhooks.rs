//! `/webhooks/{provider}`: verify first, then parse, then a durable write, then 2xx.
//! A forged request gets a 401 and touches nothing; a malformed one a 400; a write that
//! cannot be committed a 503 so the provider may retry. An inbound call's
//! `assistant-request` is answered with the assistant for the dialled number.

use super::ApiError;
use crate::app::AppState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use dialtone_core::ProviderKind;
use dialtone_providers::{exotel, WebhookError, WebhookRequest};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/webhooks/vapi", post(|s, r| handle(s, ProviderKind::Vapi, r)))
        .route("/webhooks/twilio", post(|s, r| handle(s, ProviderKind::Twilio, r)))
        .route("/webhooks/exotel/{token}", post(|s, r| handle(s, ProviderKind::Exotel, r)))
}

/// Webhook bodies are small; a megabyte is generous.
const MAX_BODY: usize = 1024 * 1024;

#[tracing::instrument(skip_all, fields(provider = %kind))]
async fn handle(State(app): State<Arc<AppState>>, kind: ProviderKind, request: Request) -> Response {
    let started = Instant::now();
    let Some(provider) = app.webhooks.get(&kind).cloned() else {
        return ApiError::new(StatusCode::NOT_FOUND, "not_configured", format!("no {kind} account is configured on this server")).into_response();
    };
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let (mut parts, body) = request.into_parts();
    // Always ours, never the client's: the Exotel allow-list reads it.
    parts.headers.remove(exotel::PEER_IP_HEADER);
    if let Some(ip) = peer.and_then(|ip| HeaderValue::from_str(&ip.to_string()).ok()) {
        parts.headers.insert(exotel::PEER_IP_HEADER, ip);
    }
    let body: Bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => return ApiError::body(&e).into_response(),
    };
    let url = parts.uri.to_string();
    let req = WebhookRequest { headers: &parts.headers, body: &body, url: &url };
    let (result, response) = match provider.verify_webhook(&req, app.now()).and_then(|()| provider.parse_webhook(&req)) {
        Err(WebhookError::Unauthorized(m)) => {
            tracing::warn!(reason = %m, "webhook refused: not authentic");
            ("unauthorized", ApiError::unauthorized("webhook authentication failed").into_response())
        }
        Err(WebhookError::Malformed(m)) => ("malformed", ApiError::new(StatusCode::BAD_REQUEST, "malformed_webhook", m).into_response()),
        Ok(parsed) => {
            app.webhooks_received.fetch_add(1, Ordering::Relaxed);
            if let Some(ask) = parsed.assistant_request {
                let (result, answer) = crate::inbound::answer(&app, kind, &ask).await;
                (result, (StatusCode::OK, axum::Json(answer)).into_response())
            } else {
                // Twilio's AsyncAmd verdict also goes to the call's conversation, if one
                // is under way on a media stream (it agrees or overrides: docs/voice.md).
                let verdicts: Vec<_> = parsed
                    .events
                    .iter()
                    .filter_map(|e| match (&e.call_id, &e.kind) {
                        (Some(call), dialtone_core::EventKind::Amd { answered_by }) => Some((call.clone(), *answered_by)),
                        _ => None,
                    })
                    .collect();
                match app.engine.ingest(parsed.events).await {
                    Ok(applied) => {
                        for (call, verdict) in verdicts {
                            app.media.notify(&call, dialtone_voice::conversation::Input::ProviderAmd(verdict));
                        }
                        let dups = applied.iter().filter(|a| a.duplicate).count() as u64;
                        let unknown = applied.iter().filter(|a| a.unknown()).count() as u64;
                        app.engine.metrics.unknown_events(kind.as_str(), unknown);
                        app.duplicate_events.fetch_add(dups, Ordering::Relaxed);
                        let body = parsed.reply.unwrap_or_else(|| serde_json::json!({ "ok": true }));
                        (if dups > 0 { "duplicate" } else { "accepted" }, (StatusCode::OK, axum::Json(body)).into_response())
                    }
                    Err(e) => ("failed", ApiError::unavailable(format!("event not stored, retry later: {e}")).into_response()),
                }
            }
        }
    };
    app.engine.metrics.webhook(kind.as_str(), result, started.elapsed());
    response
}
