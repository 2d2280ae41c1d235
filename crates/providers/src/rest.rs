//! What the form-encoded REST providers (Twilio, Exotel) share: building URLs, sending
//! one request, classifying transport failures, and reading form bodies and query strings.
//! Each provider still classifies its own error bodies: their shapes differ.

use crate::{ErrorClass, ProviderError};
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, Url};
use serde_json::{Map, Value};
use std::time::Duration;

/// Longest provider text copied into an error message: enough for a reason, not a page.
pub(crate) const MAX_RAW_REASON: usize = 300;

/// A response that came back, whatever its status.
pub(crate) struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

/// Sends one request; only the transport can fail here (status is the caller's to judge).
pub(crate) async fn send(provider: &str, req: RequestBuilder) -> Result<Response, ProviderError> {
    let resp = req.send().await.map_err(|e| transport_error(provider, e))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.map_err(|e| transport_error(provider, e))?;
    Ok(Response { status, headers, text })
}

/// Joins path segments onto the base URL, percent-encoding each one, so an odd provider
/// id cannot reach another endpoint.
pub(crate) fn endpoint(provider: &str, base: &str, path: &[&str]) -> Result<Url, ProviderError> {
    let mut url = Url::parse(base).map_err(|e| final_error(None, format!("{provider} base_url {base:?} is invalid: {e}")))?;
    url.path_segments_mut().map_err(|_| final_error(None, format!("{provider} base_url {base:?} cannot take a path")))?.pop_if_empty().extend(path);
    Ok(url)
}

pub(crate) fn transport_error(provider: &str, e: reqwest::Error) -> ProviderError {
    // A builder error is our own bug and will not heal; everything else (timeout, refused,
    // reset, cut-off body) is the network and may.
    let class = if e.is_builder() { ErrorClass::Final } else { ErrorClass::Retryable };
    // Sent, or partly sent, and no answer: the provider may have acted on it. A failure to
    // connect never reached it.
    let unanswered = !e.is_connect() && !e.is_builder();
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // `without_url`: the URL carries the account sid, and the error text ends up in logs
    // and API responses.
    ProviderError { class, status: None, message: format!("{provider} {what}: {}", e.without_url()), retry_after: None, concurrency_limited: false, unanswered }
}

/// Seconds only: an HTTP date would need a clock we do not have here.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    let secs: f64 = v.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

pub(crate) fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

pub(crate) fn final_error(status: Option<u16>, message: String) -> ProviderError {
    ProviderError { class: ErrorClass::Final, status, message, retry_after: None, concurrency_limited: false, unanswered: false }
}

/// `application/x-www-form-urlencoded` pairs, decoded, in body order.
pub(crate) fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// Pairs as a JSON object for `raw`; a name that repeats keeps all its values as an array.
pub(crate) fn pairs_to_json(pairs: &[(String, String)]) -> Value {
    let mut map = Map::new();
    for (k, v) in pairs {
        match map.get_mut(k) {
            None => {
                map.insert(k.clone(), Value::String(v.clone()));
            }
            Some(Value::Array(items)) => items.push(Value::String(v.clone())),
            Some(first) => *first = Value::Array(vec![first.take(), Value::String(v.clone())]),
        }
    }
    Value::Object(map)
}

/// The path and query of a request URL, whether it came as `/p?q` (what axum's
/// `OriginalUri` gives) or absolute (`https://host/p?q`). The fragment never reaches a server.
pub(crate) fn path_and_query(url: &str) -> &str {
    let url = url.split('#').next().unwrap_or_default();
    match url.split_once("://") {
        Some((_, rest)) => match rest.find(['/', '?']) {
            Some(i) => &rest[i..],
            None => "",
        },
        None => url,
    }
}

/// The first value of a query parameter, decoded.
pub(crate) fn query_param(url: &str, name: &str) -> Option<String> {
    let query = path_and_query(url).split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// A string field, or a number written as one: form bodies and some JSON senders disagree.
pub(crate) fn text_field(obj: &Map<String, Value>, key: &str) -> Option<String> {
    match obj.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whole or fractional seconds (`"15"`, `15`, `"15.5"`) as milliseconds.
pub(crate) fn seconds_to_ms(text: &str) -> Option<i64> {
    let secs: f64 = text.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| (secs * 1000.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn truncate_counts_characters_not_bytes() {
        assert_eq!(truncate("ошибка сервера", 6), "ошибка…");
        assert_eq!(truncate("☎☎", 5), "☎☎");
    }

    #[test]
    fn urls_with_multi_byte_text_are_split_on_character_boundaries() {
        assert_eq!(path_and_query("https://dïaler.example/ホ?x=ü"), "/ホ?x=ü");
        assert_eq!(query_param("/webhooks/twilio?dialtone_call_id=ü☎", "dialtone_call_id").as_deref(), Some("ü☎"));
    }

    proptest::proptest! {
        /// Provider error bodies and webhook URLs come from outside: any text is cut and
        /// split without a panic, and a cut keeps at most `max` characters.
        #[test]
        fn outside_text_is_cut_and_split_without_panicking(s in "\\PC{0,60}", max in 0usize..20) {
            let cut = truncate(&s, max);
            proptest::prop_assert!(cut.chars().count() <= max + 1);
            let _ = path_and_query(&s);
            let _ = query_param(&s, "dialtone_call_id");
            let _ = path_and_query(&format!("https://{s}"));
        }
    }

    #[tokio::test]
    async fn a_request_that_could_not_connect_is_not_unanswered_but_one_that_timed_out_is() {
        let http = reqwest::Client::builder().timeout(Duration::from_millis(200)).build().unwrap();
        // Nobody listens on a port we just closed: refused before anything was sent.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let refused = send("test", http.post(format!("http://{closed}/call"))).await.err().unwrap();
        assert!(refused.is_retryable() && !refused.unanswered, "{refused:?}");
        // A server that takes the request and never answers: it may have acted on it.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let (conn, _) = silent.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(conn);
        });
        let timed_out = send("test", http.post(format!("http://{addr}/call")).body("{}")).await.err().unwrap();
        assert!(timed_out.is_retryable() && timed_out.unanswered, "{timed_out:?}");
        hold.abort();
    }

    #[test]
    fn path_and_query_of_relative_and_absolute_urls() {
        assert_eq!(path_and_query("/webhooks/twilio?a=1"), "/webhooks/twilio?a=1");
        assert_eq!(path_and_query("https://x.example:8443/webhooks/twilio?a=1#f"), "/webhooks/twilio?a=1");
        assert_eq!(path_and_query("https://x.example?a=1"), "?a=1");
        assert_eq!(path_and_query("https://x.example"), "");
    }

    #[test]
    fn query_param_is_decoded() {
        assert_eq!(query_param("/w?x=1&dialtone_call_id=call_ab%43", "dialtone_call_id").as_deref(), Some("call_abC"));
        assert_eq!(query_param("/w", "x"), None);
    }

    #[test]
    fn repeated_form_names_become_arrays() {
        let pairs = form_pairs(b"A=1&B=two+words&A=3");
        assert_eq!(pairs_to_json(&pairs), json!({"A": ["1", "3"], "B": "two words"}));
    }

    #[test]
    fn seconds_parse_to_milliseconds() {
        assert_eq!(seconds_to_ms("15"), Some(15_000));
        assert_eq!(seconds_to_ms("1.5"), Some(1_500));
        assert_eq!(seconds_to_ms("-1"), None);
        assert_eq!(seconds_to_ms("abc"), None);
    }
}
