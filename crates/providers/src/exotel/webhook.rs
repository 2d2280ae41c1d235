//! Exotel status callbacks. Exotel signs nothing, so authenticity is the secret last
//! segment of the callback URL (compared in constant time) plus, optionally, the
//! caller's address. The body is JSON (we ask for it), or a form from older setups.

use super::{status_kind, ExotelConfig, PEER_IP_HEADER};
use crate::rest::{form_pairs, pairs_to_json, path_and_query, seconds_to_ms, text_field};
use crate::{ParsedWebhook, WebhookError, WebhookRequest};
use dialtone_core::{CallId, CallReport, CallStatus, EventKind, ProviderEvent};
use secrecy::ExposeSecret;
use serde_json::Value;
use std::net::IpAddr;
use subtle::ConstantTimeEq;

pub(super) fn verify(config: &ExotelConfig, req: &WebhookRequest<'_>) -> Result<(), WebhookError> {
    let token = config.callback_token.expose_secret();
    if token.is_empty() {
        return Err(unauthorized("no Exotel callback token configured"));
    }
    let path = path_and_query(req.url).split('?').next().unwrap_or_default();
    let given = path.rsplit('/').next().unwrap_or_default();
    if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
        return Err(unauthorized("missing or wrong callback token in the URL path"));
    }
    if !config.ip_allowlist.is_empty() {
        // Our server writes this header from the socket address and drops any copy the
        // client sent, so it cannot be forged from outside. Missing = refused.
        let peer = req
            .headers
            .get(PEER_IP_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
            .ok_or_else(|| unauthorized("caller address unknown and an IP allow-list is set"))?;
        // `::ffff:1.2.3.4` from a dual-stack socket is 1.2.3.4.
        let peer = peer.to_canonical();
        if !config.ip_allowlist.iter().any(|ip| ip.to_canonical() == peer) {
            return Err(unauthorized(&format!("caller {peer} is not in the IP allow-list")));
        }
    }
    Ok(())
}

pub(super) fn parse(req: &WebhookRequest<'_>) -> Result<ParsedWebhook, WebhookError> {
    let raw = match serde_json::from_slice::<Value>(req.body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return Err(malformed("JSON body is not an object")),
        // `CallSid=…&Status=…` is not JSON; anything else that is not will lack CallSid.
        Err(_) => pairs_to_json(&form_pairs(req.body)),
    };
    let obj = raw.as_object().expect("checked above");
    let sid = text_field(obj, "CallSid").ok_or_else(|| malformed("body without `CallSid`"))?;
    let status = text_field(obj, "Status");
    let event_type = text_field(obj, "EventType");

    let kind = match (event_type.as_deref(), status.as_deref()) {
        (Some("answered"), _) => EventKind::Progress(CallStatus::InProgress),
        (_, Some(s)) => status_kind(s).unwrap_or(EventKind::Info),
        (_, None) => EventKind::Info,
    };
    let duration_ms = match kind {
        EventKind::Ended { .. } => text_field(obj, "ConversationDuration").and_then(|d| seconds_to_ms(&d)),
        _ => None,
    };
    // Set when the call was recorded (`Record=true`), `null` otherwise.
    let report = text_field(obj, "RecordingUrl").map(|url| Box::new(CallReport { recording_url: Some(url), ..CallReport::default() }));
    let event_type = event_type.unwrap_or_else(|| "terminal".to_string());
    let event = ProviderEvent {
        provider_type: event_type.clone(),
        provider_call_id: Some(sid.clone()),
        call_id: text_field(obj, "CustomField").and_then(|c| CallId::parse(&c)),
        kind,
        dedupe_key: format!("exotel:{sid}:{event_type}:{}", status.as_deref().unwrap_or("none")),
        // `DateUpdated` has no zone (account-local): not guessed.
        occurred_at: None,
        cost: None,
        duration_ms,
        report,
        raw: raw.into(),
        webhook: None,
    };
    Ok(ParsedWebhook { events: vec![event], ..ParsedWebhook::default() })
}

fn unauthorized(why: &str) -> WebhookError {
    WebhookError::Unauthorized(why.to_string())
}

fn malformed(why: &str) -> WebhookError {
    WebhookError::Malformed(why.to_string())
}
