//! The router: every provider's API, plus the sim's own `/sim/*` routes, and
//! helpers the provider modules share.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;

use crate::{exotel, inbound, speech, twilio, vapi, Shared};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(vapi::routes())
        .merge(twilio::routes())
        .merge(exotel::routes())
        .merge(inbound::routes())
        .merge(speech::routes())
        .route("/sim/stats", get(stats))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(shared)
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    let stats = shared.lock().stats();
    Json(stats).into_response()
}

/// The latency fault, applied to every provider API request.
pub(crate) async fn latency(shared: &Shared) {
    let latency = shared.lock().latency(shared.config.faults.latency_ms);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
}

/// `(user, password)` from `Authorization: Basic …`.
pub(crate) fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Constant-time enough for a simulator, but still not a short-circuit compare.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `http://{Host}` of the request, for URLs the sim hands out.
pub(crate) fn base_url(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("sim.invalid");
    format!("http://{host}")
}

/// Form fields in order, repeated names kept.
pub(crate) fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

pub(crate) fn form_get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.trim().is_empty())
}

/// A query parameter of a URL (e.g. `dialtone_call_id` in a StatusCallback).
pub(crate) fn query_param(url: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    let value = url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    value.filter(|v| !v.is_empty())
}

/// An absolute http(s) URL, normalized as it will be requested.
pub(crate) fn http_url(raw: &str) -> Option<String> {
    let url = url::Url::parse(raw).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.to_string())
}

pub(crate) fn looks_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else { return false };
    number.len() <= 40 && (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `"{path}.json"` → `path`.
pub(crate) fn strip_json(segment: &str) -> Option<&str> {
    segment.strip_suffix(".json").filter(|s| !s.is_empty())
}

/// `Retry-After` for a 429: one second of simulated time. Everything the simulator does runs
/// on its time scale, so a fast-forwarded run is told to wait a fast-forwarded second
/// (fractional seconds below 1; a plain `1` in real time).
pub(crate) fn retry_after(time_scale: f64) -> axum::http::HeaderValue {
    let secs = time_scale.clamp(0.001, 1.0);
    let text = if secs >= 1.0 { "1".to_string() } else { format!("{}", (secs * 1000.0).round() / 1000.0) };
    axum::http::HeaderValue::from_str(&text).expect("a number is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_shape() {
        assert!(looks_e164("+14155551234"));
        assert!(looks_e164("+12345678"));
        assert!(!looks_e164("14155551234"));
        assert!(!looks_e164("+1234567"));
        assert!(!looks_e164("+1234567890123456"));
        assert!(!looks_e164("+1415555 1234"));
    }

    #[test]
    fn basic_auth_and_query_params() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Basic QUMxOnRvaw==".parse().unwrap());
        assert_eq!(basic_auth(&headers), Some(("AC1".into(), "tok".into())));
        headers.insert(header::AUTHORIZATION, "Bearer QUMxOnRvaw==".parse().unwrap());
        assert_eq!(basic_auth(&headers), None);
        let url = "https://x.test/hook?dialtone_call_id=call_1&dialtone_campaign_id=cmp%201";
        assert_eq!(query_param(url, "dialtone_call_id").as_deref(), Some("call_1"));
        assert_eq!(query_param(url, "dialtone_campaign_id").as_deref(), Some("cmp 1"));
        assert_eq!(query_param(url, "other"), None);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
        assert_eq!(strip_json("CA12.json"), Some("CA12"));
        assert_eq!(strip_json("CA12"), None);
    }
}
