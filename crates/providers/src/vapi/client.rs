//! Vapi's REST API: one request per call, no retries (the placer owns the schedule),
//! every failure classified so the placer knows whether another try can help.

use super::{dialtone_call_id, duration_ms, parse_time, status_kind, VapiConfig};
use crate::rest::{final_error, retry_after, truncate};
use crate::{ErrorClass, PlaceCall, Placed, ProviderError, RemoteCall};
use dialtone_core::{CallId, EventKind, ProviderEvent};
use jiff::Timestamp;
use reqwest::{header::HeaderMap, Method, StatusCode, Url};
use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};

/// Longest provider text copied into an error message: enough for a reason, not a page.
const MAX_RAW_REASON: usize = 300;

pub(super) async fn place_call(http: &reqwest::Client, config: &VapiConfig, call: &PlaceCall) -> Result<Placed, ProviderError> {
    let body = create_call_body(call);
    let (status, text) = send(http, config, Method::POST, &["call"], &[], Some(&body)).await?;
    let call_obj: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    match call_obj.get("id").and_then(Value::as_str) {
        Some(id) => {
            tracing::debug!(provider_call_id = id, "vapi accepted the call");
            Ok(Placed { provider_call_id: id.to_string() })
        }
        // Final, not retryable: Vapi said yes, so the call may be ringing right now and a
        // second attempt could dial the same person twice.
        None => Err(final_error(Some(status.as_u16()), format!("vapi {}: accepted the call but the response has no call id", status.as_u16()))),
    }
}

pub(super) async fn get_call(http: &reqwest::Client, config: &VapiConfig, provider_call_id: &str) -> Result<RemoteCall, ProviderError> {
    let (status, text) = send(http, config, Method::GET, &["call", provider_call_id], &[], None).await?;
    let call: Value =
        serde_json::from_str(&text).map_err(|e| final_error(Some(status.as_u16()), format!("vapi {}: call is not JSON: {e}", status.as_u16())))?;
    remote_call(call, Some(provider_call_id))
        .ok_or_else(|| final_error(Some(status.as_u16()), format!("vapi {}: response is not a call object", status.as_u16())))
}

pub(super) async fn find_call(http: &reqwest::Client, config: &VapiConfig, call_id: &CallId, since: Timestamp) -> Result<Option<RemoteCall>, ProviderError> {
    let query = [("createdAtGe", since.to_string()), ("limit", "1000".to_string())];
    let (status, text) = send(http, config, Method::GET, &["call"], &query, None).await?;
    let list: Value =
        serde_json::from_str(&text).map_err(|e| final_error(Some(status.as_u16()), format!("vapi {}: call list is not JSON: {e}", status.as_u16())))?;
    // `GET /call` answers with a bare array; the paginated form wraps it in `results`.
    let calls = list.as_array().or_else(|| list.get("results").and_then(Value::as_array));
    let Some(calls) = calls else {
        return Err(final_error(Some(status.as_u16()), format!("vapi {}: response is not a call list", status.as_u16())));
    };
    Ok(calls.iter().find(|c| dialtone_call_id(c).as_ref() == Some(call_id)).and_then(|c| remote_call(c.clone(), None)))
}

/// Live Call Control: the call's `monitor.controlUrl` takes `{"type":"end-call"}`.
pub(super) async fn hang_up(http: &reqwest::Client, config: &VapiConfig, provider_call_id: &str) -> Result<(), ProviderError> {
    let (status, text) = send(http, config, Method::GET, &["call", provider_call_id], &[], None).await?;
    let status = status.as_u16();
    let call: Value = serde_json::from_str(&text).map_err(|e| final_error(Some(status), format!("vapi {status}: call is not JSON: {e}")))?;
    if call.get("status").and_then(Value::as_str) == Some("ended") {
        // "Hung up" would record the wrong outcome; the real one comes by webhook or reconcile.
        return Err(final_error(None, format!("vapi call {provider_call_id} has already ended")));
    }
    let control_url = call
        .pointer("/monitor/controlUrl")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| final_error(Some(status), format!("vapi call {provider_call_id} has no monitor.controlUrl: it cannot be controlled live")))?;
    let url = Url::parse(control_url).map_err(|e| final_error(Some(status), format!("vapi call {provider_call_id} has an invalid monitor.controlUrl: {e}")))?;
    // No bearer: the control URL is its own credential, and the API key is not sent to a
    // host that a response named.
    let resp = http
        .post(url)
        .timeout(config.request_timeout)
        .json(&json!({"type": "end-call"}))
        .send()
        .await
        .map_err(|e| crate::rest::transport_error(dialtone_core::ProviderKind::Vapi.as_str(), e))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.map_err(|e| crate::rest::transport_error(dialtone_core::ProviderKind::Vapi.as_str(), e))?;
    if status.is_success() {
        Ok(())
    } else {
        let err = status_error(status.as_u16(), &headers, &text);
        tracing::warn!(status = status.as_u16(), retryable = err.is_retryable(), message = %err.message, "vapi refused to end the call");
        Err(err)
    }
}

/// The JSON of `POST /call`, exactly as PROVIDERS.md describes it.
pub(super) fn create_call_body(call: &PlaceCall) -> Value {
    let mut customer = Map::new();
    customer.insert("number".into(), json!(call.customer_number));
    if let Some(name) = &call.customer_name {
        customer.insert("name".into(), json!(name));
    }
    if let Some(ext) = &call.extension {
        customer.insert("extension".into(), json!(ext.as_str()));
    }
    let mut variables = call.variables.clone();
    // Assistants greet by `{{name}}`; fill it from the contact unless the user set it.
    if let Some(name) = &call.customer_name {
        variables.entry("name").or_insert_with(|| json!(name));
    }
    json!({
        "assistantId": call.assistant_id,
        "phoneNumberId": call.phone_number_id,
        "customer": customer,
        "assistantOverrides": {
            "variableValues": variables,
            "metadata": {
                "dialtoneCallId": call.call_id.as_str(),
                "campaignId": call.campaign_id.as_str(),
            },
        },
    })
}

/// A Call object as an event, for the same path webhooks take. `None` without an id.
pub(super) fn remote_call(call: Value, fallback_id: Option<&str>) -> Option<RemoteCall> {
    let id = call.get("id").and_then(Value::as_str).or(fallback_id)?.to_string();
    let status = call.get("status").and_then(Value::as_str).unwrap_or("unknown").to_string();
    let ended_reason = call.get("endedReason").and_then(Value::as_str).map(str::to_string);
    let kind = status_kind(&status, ended_reason.as_deref()).unwrap_or(EventKind::Info);
    let mut dedupe_key = format!("reconcile:vapi:{id}:{status}");
    if status == "ended" {
        if let Some(reason) = &ended_reason {
            dedupe_key.push(':');
            dedupe_key.push_str(reason);
        }
    }
    let ended_at = if status == "ended" { call.get("endedAt").and_then(parse_time) } else { None };
    let occurred_at = ended_at.or_else(|| call.get("updatedAt").and_then(parse_time));
    let call_id = dialtone_call_id(&call);
    let event = ProviderEvent {
        provider_type: "call".to_string(),
        provider_call_id: Some(id.clone()),
        call_id: call_id.clone(),
        kind,
        dedupe_key,
        occurred_at,
        cost: call.get("cost").and_then(Value::as_f64),
        duration_ms: duration_ms(call.get("startedAt"), call.get("endedAt")),
        report: None,
        raw: call.into(),
        webhook: None,
    };
    Some(RemoteCall { provider_call_id: id, call_id, event })
}

/// Sends one request; a 2xx comes back as (status, body text), anything else as a
/// classified error.
async fn send(
    http: &reqwest::Client,
    config: &VapiConfig,
    method: Method,
    path: &[&str],
    query: &[(&str, String)],
    body: Option<&Value>,
) -> Result<(StatusCode, String), ProviderError> {
    let url = endpoint(&config.base_url, path)?;
    let mut req = http.request(method, url).bearer_auth(config.api_key.expose_secret()).timeout(config.request_timeout);
    if !query.is_empty() {
        req = req.query(query);
    }
    if let Some(body) = body {
        req = req.json(body);
    }
    let resp = req.send().await.map_err(|e| crate::rest::transport_error(dialtone_core::ProviderKind::Vapi.as_str(), e))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.map_err(|e| crate::rest::transport_error(dialtone_core::ProviderKind::Vapi.as_str(), e))?;
    if status.is_success() {
        Ok((status, text))
    } else {
        let err = status_error(status.as_u16(), &headers, &text);
        tracing::warn!(status = status.as_u16(), retryable = err.is_retryable(), message = %err.message, "vapi refused the request");
        Err(err)
    }
}

/// Joins path segments onto the base URL, percent-encoding each one, so an odd provider
/// id cannot reach another endpoint.
fn endpoint(base: &str, path: &[&str]) -> Result<Url, ProviderError> {
    let mut url = Url::parse(base).map_err(|e| final_error(None, format!("vapi base_url {base:?} is invalid: {e}")))?;
    url.path_segments_mut().map_err(|_| final_error(None, format!("vapi base_url {base:?} cannot take a path")))?.pop_if_empty().extend(path);
    Ok(url)
}

/// Classifies a non-2xx answer. Pure, so the table is tested without a server.
pub(super) fn status_error(status: u16, headers: &HeaderMap, body: &str) -> ProviderError {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let reason = json.as_ref().and_then(reason_from_json).unwrap_or_else(|| truncate(body.trim(), MAX_RAW_REASON));
    let concurrency_limited = body.contains("concurrency-limit-reached")
        || reason.contains("concurrencyBlocked")
        || match &json {
            // A Call-shaped body always carries `concurrencyBlocked`; only `true` means it.
            Some(v) => any_true(v, "concurrencyBlocked"),
            None => body.contains("concurrencyBlocked"),
        };
    let class = match status {
        _ if concurrency_limited => ErrorClass::Retryable,
        429 | 500 | 502 | 503 | 504 => ErrorClass::Retryable,
        _ => ErrorClass::Final,
    };
    let message = if reason.is_empty() { format!("vapi {status}") } else { format!("vapi {status}: {reason}") };
    ProviderError::from_status(class, status, message, retry_after(headers), concurrency_limited)
}

/// Vapi's errors say why in `message` (a string, or a list of validation failures),
/// sometimes only in `error`.
fn reason_from_json(v: &Value) -> Option<String> {
    let text = |v: &Value| match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Array(items) if !items.is_empty() => {
            Some(items.iter().map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string)).collect::<Vec<_>>().join("; "))
        }
        _ => None,
    };
    v.get("message").and_then(text).or_else(|| v.get("error").and_then(text))
}

fn any_true(v: &Value, key: &str) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, v)| (k == key && v == &Value::Bool(true)) || any_true(v, key)),
        Value::Array(items) => items.iter().any(|i| any_true(i, key)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dialtone_core::{CallStatus, CampaignId, Outcome};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn place(name: Option<&str>, vars: Value) -> PlaceCall {
        PlaceCall {
            call_id: CallId::new(),
            campaign_id: CampaignId::new(),
            assistant_id: "asst_1".into(),
            phone_number_id: "pn_1".into(),
            customer_number: "+14155551234".into(),
            extension: None,
            customer_name: name.map(str::to_string),
            variables: vars.as_object().unwrap().clone(),
            media: None,
        }
    }

    #[test]
    fn name_is_added_to_variables_only_when_missing() {
        let body = create_call_body(&place(Some("Ana"), json!({"plan": "gold"})));
        assert_eq!(body["assistantOverrides"]["variableValues"], json!({"name": "Ana", "plan": "gold"}));
        assert_eq!(body["customer"], json!({"number": "+14155551234", "name": "Ana"}));

        let body = create_call_body(&place(Some("Ana"), json!({"name": "Señora Ana"})));
        assert_eq!(body["assistantOverrides"]["variableValues"], json!({"name": "Señora Ana"}));
    }

    #[test]
    fn customer_without_name_has_no_name_key() {
        let body = create_call_body(&place(None, json!({})));
        assert_eq!(body["customer"], json!({"number": "+14155551234"}));
        assert_eq!(body["assistantOverrides"]["variableValues"], json!({}));
        assert!(body.get("metadata").is_none(), "Vapi rejects a top-level metadata on create");
    }

    #[test]
    fn status_classes() {
        for s in [429, 500, 502, 503, 504] {
            assert_eq!(status_error(s, &HeaderMap::new(), "").class, ErrorClass::Retryable, "{s}");
        }
        for s in [400, 401, 403, 404, 409, 422] {
            assert_eq!(status_error(s, &HeaderMap::new(), "").class, ErrorClass::Final, "{s}");
        }
        // Only a gateway timeout leaves it open whether Vapi created the call.
        for s in [400, 429, 500, 502, 503, 504] {
            assert_eq!(status_error(s, &HeaderMap::new(), "").unanswered, s == 504, "{s}");
        }
    }

    #[test]
    fn reason_comes_from_message_then_error_then_text() {
        let e = status_error(400, &HeaderMap::new(), r#"{"message":["a must be set","b too"],"error":"Bad Request"}"#);
        assert_eq!(e.message, "vapi 400: a must be set; b too");
        let e = status_error(401, &HeaderMap::new(), r#"{"message":"Invalid Key"}"#);
        assert_eq!(e.message, "vapi 401: Invalid Key");
        let e = status_error(403, &HeaderMap::new(), r#"{"error":"Forbidden"}"#);
        assert_eq!(e.message, "vapi 403: Forbidden");
        let e = status_error(502, &HeaderMap::new(), &"x".repeat(1000));
        assert_eq!(e.message.chars().count(), "vapi 502: ".len() + MAX_RAW_REASON + 1);
    }

    #[test]
    fn concurrency_limit_is_retryable_and_flagged() {
        let e = status_error(400, &HeaderMap::new(), r#"{"message":"call.start.error-subscription-concurrency-limit-reached"}"#);
        assert!(e.concurrency_limited && e.is_retryable());
        let e = status_error(400, &HeaderMap::new(), r#"{"subscriptionLimits":{"concurrencyBlocked":true}}"#);
        assert!(e.concurrency_limited && e.is_retryable());
        let e = status_error(400, &HeaderMap::new(), r#"{"message":"x","subscriptionLimits":{"concurrencyBlocked":false}}"#);
        assert!(!e.concurrency_limited && !e.is_retryable());
    }

    #[test]
    fn retry_after_seconds() {
        let e = status_error(429, &headers(&[("retry-after", "2")]), "");
        assert_eq!(e.retry_after, Some(std::time::Duration::from_secs(2)));
        let e = status_error(429, &headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]), "");
        assert_eq!(e.retry_after, None);
    }

    #[test]
    fn endpoint_encodes_ids_and_keeps_base_path() {
        assert_eq!(endpoint("http://127.0.0.1:9/", &["call", "a/b"]).unwrap().as_str(), "http://127.0.0.1:9/call/a%2Fb");
        assert_eq!(endpoint("https://proxy/vapi", &["call"]).unwrap().as_str(), "https://proxy/vapi/call");
        assert!(endpoint("not a url", &["call"]).is_err());
    }

    #[test]
    fn call_object_becomes_an_event() {
        let id = CallId::new();
        let call = json!({"id": "019a", "status": "ringing", "assistantOverrides": {"metadata": {"dialtoneCallId": id.as_str()}}});
        let rc = remote_call(call, None).unwrap();
        assert_eq!(rc.call_id, Some(id));
        assert_eq!(rc.event.kind, EventKind::Progress(CallStatus::Ringing));
        assert_eq!(rc.event.dedupe_key, "reconcile:vapi:019a:ringing");

        let call = json!({"id": "019a", "status": "ended", "endedReason": "customer-busy", "cost": 0.01,
            "startedAt": "2026-01-01T10:00:00Z", "endedAt": "2026-01-01T10:00:05Z"});
        let rc = remote_call(call, None).unwrap();
        assert_eq!(rc.event.kind, EventKind::Ended { outcome: Outcome::Busy, reason: Some("customer-busy".into()) });
        assert_eq!(rc.event.dedupe_key, "reconcile:vapi:019a:ended:customer-busy");
        assert_eq!(rc.event.duration_ms, Some(5000));
        assert_eq!(rc.event.cost, Some(0.01));
        assert!(rc.event.occurred_at.is_some());
    }
}
