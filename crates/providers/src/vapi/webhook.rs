//! Vapi server-URL webhooks: authenticity first (shared secret or HMAC), then the body
//! as core events. Only lifecycle messages become events; the rest are acknowledged so
//! Vapi does not count them as failures.

use super::{dialtone_call_id, duration_ms, ended_kind, parse_time, status_kind, HmacAlgorithm, HmacConfig, SigEncoding, VapiConfig};
use crate::{ParsedWebhook, WebhookError, WebhookRequest};
use base64::Engine as _;
use dialtone_core::{CallReport, CallStatus, EventKind, ProviderEvent, RawJson, Speaker, TranscriptTurn};
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use sha2::Digest;
use subtle::ConstantTimeEq;

pub(super) fn verify(config: &VapiConfig, req: &WebhookRequest<'_>, now: Timestamp) -> Result<(), WebhookError> {
    if let Some(hmac) = &config.webhook_hmac {
        verify_hmac(hmac, req, now)
    } else if let Some(secret) = &config.webhook_secret {
        verify_secret(secret.expose_secret(), req)
    } else {
        Err(unauthorized("no webhook secret configured"))
    }
}

fn verify_secret(secret: &str, req: &WebhookRequest<'_>) -> Result<(), WebhookError> {
    let bearer = header(req, "authorization").and_then(|v| {
        let (scheme, token) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    let legacy = header(req, "x-vapi-secret").map(str::trim);
    if bearer.is_none() && legacy.is_none() {
        return Err(unauthorized("missing Authorization bearer or X-Vapi-Secret header"));
    }
    // Both are checked so that a wrong value in one header cannot mask a right one in the
    // other, and without short-circuiting to keep the timing flat.
    let ok = [bearer, legacy].into_iter().flatten().fold(subtle::Choice::from(0), |acc, given| acc | given.as_bytes().ct_eq(secret.as_bytes()));
    if bool::from(ok) {
        Ok(())
    } else {
        Err(unauthorized("webhook secret does not match"))
    }
}

fn verify_hmac(cfg: &HmacConfig, req: &WebhookRequest<'_>, now: Timestamp) -> Result<(), WebhookError> {
    let ts_text = header(req, "x-timestamp").ok_or_else(|| unauthorized("missing x-timestamp header"))?.trim();
    let sig_text = header(req, "x-signature").ok_or_else(|| unauthorized("missing x-signature header"))?.trim();

    if ts_text.is_empty() || !ts_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(unauthorized("x-timestamp is not a unix time"));
    }
    let n: i64 = ts_text.parse().map_err(|_| unauthorized("x-timestamp is not a unix time"))?;
    // Ten digits or fewer is seconds: milliseconds that short would be 1970.
    let ts_ms = if ts_text.len() <= 10 { n.saturating_mul(1000) } else { n };
    let skew_ms = now.as_millisecond().saturating_sub(ts_ms).unsigned_abs();
    if u128::from(skew_ms) > cfg.max_skew.as_millis() {
        return Err(unauthorized("x-timestamp is outside the replay window"));
    }

    let encoded = match &cfg.prefix {
        Some(prefix) => match sig_text.get(..prefix.len()) {
            Some(head) if head.eq_ignore_ascii_case(prefix) => &sig_text[prefix.len()..],
            _ => return Err(unauthorized("x-signature lacks the configured prefix")),
        },
        None => sig_text,
    };
    let given = match cfg.encoding {
        SigEncoding::Hex => hex::decode(encoded).ok(),
        SigEncoding::Base64 => {
            base64::engine::general_purpose::STANDARD.decode(encoded).or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded)).ok()
        }
    }
    .ok_or_else(|| unauthorized("x-signature is not validly encoded"))?;

    let mut signed = Vec::with_capacity(ts_text.len() + 1 + req.body.len());
    signed.extend_from_slice(ts_text.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(req.body);
    let expected = sign(cfg.algorithm, cfg.secret.expose_secret().as_bytes(), &signed);
    if bool::from(given.ct_eq(&expected)) {
        Ok(())
    } else {
        Err(unauthorized("x-signature does not match"))
    }
}

fn sign(algorithm: HmacAlgorithm, key: &[u8], msg: &[u8]) -> Vec<u8> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(msg);
        mac.finalize().into_bytes().to_vec()
    }
    match algorithm {
        HmacAlgorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, msg),
        HmacAlgorithm::Sha512 => run::<Hmac<sha2::Sha512>>(key, msg),
        HmacAlgorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, msg),
    }
}

fn header<'a>(req: &WebhookRequest<'a>, name: &str) -> Option<&'a str> {
    req.headers.get(name)?.to_str().ok()
}

fn unauthorized(why: &str) -> WebhookError {
    WebhookError::Unauthorized(why.to_string())
}

fn malformed(why: impl Into<String>) -> WebhookError {
    WebhookError::Malformed(why.into())
}

pub(super) fn parse(req: &WebhookRequest<'_>) -> Result<ParsedWebhook, WebhookError> {
    let body: Value = serde_json::from_slice(req.body).map_err(|e| malformed(format!("body is not JSON: {e}")))?;
    let message = body.get("message").and_then(Value::as_object).ok_or_else(|| malformed("missing object `message`"))?;
    let msg_type = message.get("type").and_then(Value::as_str).ok_or_else(|| malformed("missing string `message.type`"))?;

    let event = match msg_type {
        "status-update" => {
            let status = message.get("status").and_then(Value::as_str).ok_or_else(|| malformed("status-update without string `message.status`"))?;
            let reason = str_field(message, "endedReason");
            let mut key_tail = format!("status-update:{status}");
            if status == "ended" {
                if let Some(r) = reason {
                    key_tail = format!("{key_tail}:{r}");
                }
            }
            // An unknown status is kept as `Info`: stored for the record, moves nothing.
            let kind = status_kind(status, reason).unwrap_or(EventKind::Info);
            event(msg_type, message, req.body, kind, key_tail)?
        }
        "end-of-call-report" => {
            let call = message.get("call");
            // The report carries these at the top of `message`; older payloads only in `call`.
            let field = |k: &str| message.get(k).filter(|v| !v.is_null()).or_else(|| call?.get(k));
            let reason = field("endedReason").and_then(Value::as_str);
            let mut ev = event(msg_type, message, req.body, ended_kind(reason), msg_type.to_string())?;
            ev.cost = field("cost").and_then(Value::as_f64);
            ev.duration_ms = duration_ms(field("startedAt"), field("endedAt"));
            ev.report = Some(Box::new(report(message))).filter(|r| !r.is_empty());
            ev
        }
        "hang" => {
            let tail = match message.get("timestamp").filter(|v| !v.is_null()) {
                Some(Value::String(s)) => s.clone(),
                Some(ts) => ts.to_string(),
                None => hex::encode(sha2::Sha256::digest(req.body)),
            };
            event(msg_type, message, req.body, EventKind::Progress(CallStatus::InProgress), format!("hang:{tail}"))?
        }
        "assistant-request" => {
            let call = message.get("call").and_then(Value::as_object);
            let provider_call_id =
                call.and_then(|c| c.get("id")).and_then(Value::as_str).ok_or_else(|| malformed("assistant-request without `message.call.id`"))?;
            // The dialled number and the caller sit on the message, or on its call.
            let number = |key: &str| message.get(key).or_else(|| call?.get(key)).and_then(|v| v.get("number")).and_then(Value::as_str).map(str::to_string);
            return Ok(ParsedWebhook {
                assistant_request: Some(crate::AssistantRequest {
                    provider_call_id: provider_call_id.to_string(),
                    to: number("phoneNumber"),
                    from: number("customer"),
                }),
                ..ParsedWebhook::default()
            });
        }
        // Transcripts, tool calls and the rest carry nothing the engine acts on.
        other => {
            tracing::debug!(message_type = other, "vapi webhook acknowledged and ignored");
            return Ok(ParsedWebhook::default());
        }
    };
    Ok(ParsedWebhook { events: vec![event], ..ParsedWebhook::default() })
}

/// `body`: the webhook's JSON text (already parsed into a `Value` by the caller), kept as
/// the event's payload as it came.
fn event(msg_type: &str, message: &Map<String, Value>, body: &[u8], kind: EventKind, key_tail: String) -> Result<ProviderEvent, WebhookError> {
    let call = message.get("call").ok_or_else(|| malformed(format!("{msg_type} without object `message.call`")))?;
    let call_id =
        call.get("id").and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or_else(|| malformed(format!("{msg_type} without string `message.call.id`")))?;
    Ok(ProviderEvent {
        provider_type: msg_type.to_string(),
        provider_call_id: Some(call_id.to_string()),
        call_id: dialtone_call_id(call),
        kind,
        dedupe_key: format!("vapi:{call_id}:{key_tail}"),
        occurred_at: message.get("timestamp").and_then(parse_time),
        cost: None,
        duration_ms: None,
        report: None,
        raw: RawJson::parse(body).map_err(|e| malformed(format!("body is not JSON: {e}")))?,
        webhook: None,
    })
}

/// The content an end-of-call-report carries: `analysis.summary`, `artifact.recordingUrl`
/// and the turns of `artifact.messages` (each `{role, message, time, endTime}`, times in
/// unix ms; `bot`/`assistant` turns are the agent's, `user` turns the callee's, system and
/// tool messages are left out). Older payloads have `summary` and `recordingUrl` at the top
/// of `message`. Vapi's plain-text `artifact.transcript` is not read: it has no times.
fn report(message: &Map<String, Value>) -> CallReport {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    let artifact = message.get("artifact");
    let summary = text(message.get("analysis").and_then(|a| a.get("summary"))).or_else(|| text(message.get("summary")));
    let recording_url = text(artifact.and_then(|a| a.get("recordingUrl"))).or_else(|| text(message.get("recordingUrl")));
    let transcript = artifact.and_then(|a| a.get("messages")).and_then(Value::as_array).map(|messages| {
        messages
            .iter()
            .filter_map(|m| {
                let speaker = match m.get("role").and_then(Value::as_str)? {
                    "bot" | "assistant" => Speaker::Agent,
                    "user" => Speaker::Callee,
                    _ => return None,
                };
                let started_at = m.get("time").and_then(parse_time)?;
                let ended_at = m.get("endTime").and_then(parse_time).unwrap_or(started_at);
                Some(TranscriptTurn { speaker, text: text(m.get("message"))?, started_at, ended_at, interrupted: false })
            })
            .collect::<Vec<_>>()
    });
    CallReport { summary, recording_url, transcript: transcript.filter(|t| !t.is_empty()) }
}

fn str_field<'a>(message: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    message.get(key).and_then(Value::as_str)
}

#[cfg(test)]
mod assistant_request_tests {
    use super::*;

    fn parse_body(body: &str) -> Result<ParsedWebhook, WebhookError> {
        let headers = http::HeaderMap::new();
        parse(&WebhookRequest { headers: &headers, body: body.as_bytes(), url: "/webhooks/vapi" })
    }

    #[test]
    fn an_assistant_request_names_the_call_our_number_and_the_caller() {
        let p = parse_body(
            r#"{"message":{"type":"assistant-request","call":{"id":"c1","type":"inboundPhoneCall"},
            "phoneNumber":{"number":"+14155550100"},"customer":{"number":"+14155552671"}}}"#,
        )
        .unwrap();
        let r = p.assistant_request.unwrap();
        assert_eq!((r.provider_call_id.as_str(), r.to.as_deref(), r.from.as_deref()), ("c1", Some("+14155550100"), Some("+14155552671")));
        assert!(p.events.is_empty());
    }

    #[test]
    fn an_assistant_request_without_a_call_id_is_malformed() {
        assert!(matches!(parse_body(r#"{"message":{"type":"assistant-request"}}"#), Err(WebhookError::Malformed(_))));
    }
}
