//! `/webhooks/{provider}`: verify first, then parse, then a durable write, then 2xx.
//! A workspace's own provider account has its own routes (`/webhooks/vapi/{account}`,
//! `/webhooks/twilio/{account}`, `/webhooks/exotel/{account}/{token}`), checked with that
//! account's secrets alone; their events change only calls placed on that account.
//! A forged request gets a 401 and touches nothing; a malformed one a 400; a write that
//! cannot be committed a 503 so the provider may retry. An inbound call's
//! `assistant-request` is answered with the assistant for the dialled number.

use super::ApiError;
use crate::app::AppState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Request, State};
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
        .route("/webhooks/vapi/{account}", post(|s, Path(account): Path<String>, r| handle_account(s, ProviderKind::Vapi, account, r)))
        .route("/webhooks/twilio/{account}", post(|s, Path(account): Path<String>, r| handle_account(s, ProviderKind::Twilio, account, r)))
        .route(
            "/webhooks/exotel/{account}/{token}",
            post(|s, Path((account, _token)): Path<(String, String)>, r| handle_account(s, ProviderKind::Exotel, account, r)),
        )
}

/// A workspace account's webhook: verified with that account's secrets (even while the
/// account is disabled: its calls under way still report), its events marked with the
/// account so that they change only its own calls. An unknown account (or one of another
/// provider) is 404, as an unconfigured provider is.
#[tracing::instrument(skip_all, fields(provider = %kind))]
async fn handle_account(State(app): State<Arc<AppState>>, kind: ProviderKind, account: String, request: Request) -> Response {
    let not_found =
        || ApiError::new(StatusCode::NOT_FOUND, "not_configured", format!("no {kind} account with this id is registered on this server")).into_response();
    let Some(id) = dialtone_core::ProviderAccountId::parse(&account) else { return not_found() };
    let provider = match crate::accounts::webhook_client(&app, kind, &id).await {
        Ok(Some(p)) => p,
        Ok(None) => return not_found(),
        Err(e) => return ApiError::unavailable(format!("the account could not be read, retry later: {e}")).into_response(),
    };
    let route = dialtone_core::WebhookRoute { account_id: Some(id) };
    process(app, kind, provider, Some(route), request).await
}

/// `body` with every U+0000 it would carry once parsed — a JSON `\u0000` escape (Vapi), a
/// form's `%00` (Twilio, Exotel) or a raw NUL byte — replaced by U+FFFD; `None` when it
/// has none (the usual case: one scan, no copy). PostgreSQL text cannot hold U+0000, and an
/// authentic event must be stored, not refused: the provider would retry it for ever.
pub fn without_nul(body: &[u8]) -> Option<Bytes> {
    const SWAPS: [(&[u8], &[u8]); 3] = [(b"\\u0000", b"\\ufffd"), (b"%00", b"%EF%BF%BD"), (b"\0", "\u{fffd}".as_bytes())];
    let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    if !SWAPS.iter().any(|(from, _)| has(from)) {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() + 16);
    let mut i = 0;
    'bytes: while i < body.len() {
        for (from, to) in SWAPS {
            if body[i..].starts_with(from) {
                out.extend_from_slice(to);
                i += from.len();
                continue 'bytes;
            }
        }
        out.push(body[i]);
        i += 1;
    }
    Some(Bytes::from(out))
}

/// Webhook bodies are small; a megabyte is generous.
const MAX_BODY: usize = 1024 * 1024;

#[tracing::instrument(skip_all, fields(provider = %kind))]
async fn handle(State(app): State<Arc<AppState>>, kind: ProviderKind, request: Request) -> Response {
    let Some(provider) = app.webhooks.get(&kind).cloned() else {
        return ApiError::new(StatusCode::NOT_FOUND, "not_configured", format!("no {kind} account is configured on this server")).into_response();
    };
    process(app, kind, provider, Some(dialtone_core::WebhookRoute { account_id: None }), request).await
}

/// Verifies with `provider`, parses, stores (each event marked with the `route` it came by)
/// and answers.
async fn process(
    app: Arc<AppState>,
    kind: ProviderKind,
    provider: Arc<dyn dialtone_providers::Provider>,
    route: Option<dialtone_core::WebhookRoute>,
    request: Request,
) -> Response {
    let started = Instant::now();
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
    let checked = provider.verify_webhook(&req, app.now());
    // Checked on the body as sent; parsed without U+0000, which PostgreSQL cannot store.
    let clean = without_nul(&body);
    let req = WebhookRequest { body: clean.as_ref().unwrap_or(&body), ..req };
    let (result, response) = match checked.and_then(|()| provider.parse_webhook(&req)) {
        Err(WebhookError::Unauthorized(m)) => {
            tracing::warn!(reason = %m, "webhook refused: not authentic");
            ("unauthorized", ApiError::unauthorized("webhook authentication failed").into_response())
        }
        Err(WebhookError::Malformed(m)) => ("malformed", ApiError::new(StatusCode::BAD_REQUEST, "malformed_webhook", m).into_response()),
        Ok(mut parsed) => {
            app.webhooks_received.fetch_add(1, Ordering::Relaxed);
            for e in &mut parsed.events {
                // A workspace account's events are its own: the same event sent on
                // another account's route (by whoever holds that account's secret) is
                // another event, so it can never pass for this one's duplicate.
                if let Some(id) = route.as_ref().and_then(|r| r.account_id.as_ref()) {
                    e.dedupe_key = format!("{id}:{}", e.dedupe_key);
                }
                e.webhook = route.clone();
            }
            let own_account = route.as_ref().is_some_and(|r| r.account_id.is_some());
            if let (Some(_), true) = (&parsed.assistant_request, own_account) {
                // Numbers (`/phone-numbers`) are answered on the server's accounts only.
                let answer = serde_json::json!({ "error": "inbound calls are answered on the server's configured account, not on a workspace's own account" });
                ("inbound_unknown_number", (StatusCode::OK, axum::Json(answer)).into_response())
            } else if let Some(ask) = parsed.assistant_request {
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

#[cfg(test)]
mod tests {
    use super::without_nul;

    #[test]
    fn a_nul_in_any_encoding_becomes_the_replacement_character() {
        assert_eq!(without_nul(br#"{"a":"plain"}"#), None, "nothing to do: no copy");
        assert_eq!(without_nul(br#"{"a":"x\u0000y"}"#).unwrap().as_ref(), br#"{"a":"x\ufffdy"}"#);
        assert_eq!(without_nul(b"CallSid=CA1%00&Status=completed").unwrap().as_ref(), b"CallSid=CA1%EF%BF%BD&Status=completed");
        assert_eq!(without_nul(b"a\0b").unwrap().as_ref(), "a\u{fffd}b".as_bytes());
        let parsed: serde_json::Value = serde_json::from_slice(&without_nul(br#"{"a":"x\u0000"}"#).unwrap()).unwrap();
        assert_eq!(parsed["a"], "x\u{fffd}");
    }
}
