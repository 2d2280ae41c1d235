//! Exotel's Calls API: one request per call, no retries (the placer owns the schedule),
//! every failure classified so the placer knows whether another try can help.

use super::{status_kind, ExotelConfig};
use crate::rest::{self, final_error, seconds_to_ms, text_field, truncate, MAX_RAW_REASON};
use crate::{ErrorClass, PlaceCall, Placed, ProviderError, RemoteCall};
use dialtone_core::{CallId, EventKind, ProviderEvent};
use reqwest::header::HeaderMap;
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::Value;

const NAME: &str = dialtone_core::ProviderKind::Exotel.as_str();

pub(super) async fn place_call(http: &reqwest::Client, config: &ExotelConfig, call: &PlaceCall) -> Result<Placed, ProviderError> {
    let form = connect_form(config, call)?;
    let (status, body) = send(http, config, Method::POST, "connect.json", Some(&form)).await?;
    match body.pointer("/Call/Sid").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        Some(sid) => {
            tracing::debug!(provider_call_id = sid, "exotel accepted the call");
            Ok(Placed { provider_call_id: sid.to_string() })
        }
        // Final, not retryable: Exotel said yes, so the phone may be ringing right now and
        // a second attempt could dial the same person twice.
        None => Err(final_error(Some(status), format!("exotel {status}: accepted the call but the response has no Call.Sid"))),
    }
}

pub(super) async fn get_call(http: &reqwest::Client, config: &ExotelConfig, sid: &str) -> Result<RemoteCall, ProviderError> {
    let (status, body) = send(http, config, Method::GET, &format!("{sid}.json"), None).await?;
    remote_call(body, sid).ok_or_else(|| final_error(Some(status), format!("exotel {status}: response is not a call")))
}

/// The form of `POST /v1/Accounts/{sid}/Calls/connect.json`, in the order it is sent.
/// The callback URL holds the secret token: this form is never logged.
pub(super) fn connect_form(config: &ExotelConfig, call: &PlaceCall) -> Result<Vec<(&'static str, String)>, ProviderError> {
    // Exotel's connect API has no parameter for digits after the answer: a call that needs
    // an extension is refused rather than placed to the switchboard without it. Imports and
    // single calls refuse such contacts on Exotel campaigns already; this is the last guard.
    if call.extension.is_some() {
        return Err(final_error(None, "exotel cannot dial an extension after connecting; this contact has one".into()));
    }
    let mut form = vec![("From", call.customer_number.clone()), ("CallerId", call.phone_number_id.clone())];
    if let Some(media) = &call.media {
        // dialtone's own pipeline: a bidirectional stream to us, whatever flow is configured.
        // The call id rides in the query (Exotel echoes it in `custom_parameters`), the token
        // in the path binds the address to this call.
        let secret = config.media_secret.as_ref().ok_or_else(|| final_error(None, "exotel: media_secret is not configured".into()))?;
        let url = crate::media::exotel_stream_url(&config.public_base_url, secret.expose_secret().as_bytes(), &call.call_id)
            .ok_or_else(|| final_error(None, format!("exotel: public URL {:?} is not http(s)", config.public_base_url)))?;
        crate::media::check_exotel_stream_url(&url).map_err(|e| final_error(None, format!("exotel: {e}")))?;
        form.push(("StreamUrl", url));
        form.push(("StreamType", "bidirectional".into()));
        form.push(("TimeLimit", media.time_limit_secs().to_string()));
    } else {
        match (&config.flow_url, &config.stream_url) {
            (Some(flow), _) => form.push(("Url", flow.clone())),
            (None, Some(stream)) => {
                crate::media::check_exotel_stream_url(stream).map_err(|e| final_error(None, format!("exotel: {e}")))?;
                form.push(("StreamUrl", stream.clone()));
                form.push(("StreamType", "bidirectional".into()));
            }
            (None, None) => return Err(final_error(None, "exotel: neither flow_url nor stream_url is configured".into())),
        }
    }
    form.push(("CustomField", call.call_id.to_string()));
    form.push(("StatusCallback", format!("{}{}/{}", config.public_base_url.trim_end_matches('/'), config.webhook_path, config.callback_token.expose_secret())));
    form.push(("StatusCallbackEvents[0]", "terminal".into()));
    form.push(("StatusCallbackEvents[1]", "answered".into()));
    form.push(("StatusCallbackContentType", "application/json".into()));
    Ok(form)
}

/// `{"Call": {…}}` as an event, for the same path webhooks take. `None` without a status.
pub(super) fn remote_call(body: Value, fallback_sid: &str) -> Option<RemoteCall> {
    let call = body.get("Call")?.as_object()?;
    let sid = text_field(call, "Sid").unwrap_or_else(|| fallback_sid.to_string());
    let status = text_field(call, "Status")?;
    let kind = status_kind(&status).unwrap_or(EventKind::Info);
    let ended = matches!(kind, EventKind::Ended { .. });
    // Echoed only by some API versions; the call is matched by its sid either way.
    let call_id = text_field(call, "CustomField").and_then(|c| CallId::parse(&c));
    let event = ProviderEvent {
        provider_type: "call".to_string(),
        provider_call_id: Some(sid.clone()),
        call_id: call_id.clone(),
        kind,
        dedupe_key: format!("reconcile:exotel:{sid}:{status}"),
        // Exotel's dates carry no zone (`2017-03-03 12:30:24`, account-local): not guessed.
        occurred_at: None,
        cost: None,
        duration_ms: if ended { text_field(call, "Duration").and_then(|d| seconds_to_ms(&d)) } else { None },
        report: None,
        raw: body.into(),
        webhook: None,
    };
    Some(RemoteCall { provider_call_id: sid, call_id, event })
}

/// One request under `/v1/Accounts/{sid}/Calls/`. A 2xx comes back as (status, JSON
/// body); anything else as a classified error.
async fn send(
    http: &reqwest::Client,
    config: &ExotelConfig,
    method: Method,
    resource: &str,
    form: Option<&[(&'static str, String)]>,
) -> Result<(u16, Value), ProviderError> {
    let url = rest::endpoint(NAME, &config.base_url, &["v1", "Accounts", &config.account_sid, "Calls", resource])?;
    let mut req = http.request(method, url).basic_auth(&config.api_key, Some(config.api_token.expose_secret())).timeout(config.request_timeout);
    if let Some(form) = form {
        req = req.form(form);
    }
    let resp = rest::send(NAME, req).await?;
    if !(200..300).contains(&resp.status) {
        let err = status_error(resp.status, &resp.headers, &resp.text);
        tracing::warn!(status = resp.status, retryable = err.is_retryable(), message = %err.message, "exotel refused the request");
        return Err(err);
    }
    let body = serde_json::from_str(&resp.text).map_err(|e| final_error(Some(resp.status), format!("exotel {}: response is not JSON: {e}", resp.status)))?;
    Ok((resp.status, body))
}

/// Classifies a non-2xx answer from `{"RestException":{"Status","Message","Code"}}`.
/// Pure, so the table is tested without a server.
pub(super) fn status_error(status: u16, headers: &HeaderMap, body: &str) -> ProviderError {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let exc = json.as_ref().and_then(|v| v.get("RestException")).and_then(Value::as_object);
    let code = exc.and_then(|e| text_field(e, "Code"));
    let reason = exc.and_then(|e| text_field(e, "Message")).unwrap_or_else(|| truncate(body.trim(), MAX_RAW_REASON));
    // 429 is the per-account request rate (200/min), not call concurrency: retry after
    // the given wait, but it says nothing about how many calls are live.
    let class = if status == 429 || (500..600).contains(&status) { ErrorClass::Retryable } else { ErrorClass::Final };
    let message = match (&code, reason.is_empty()) {
        (Some(code), _) => format!("exotel {status} ({code}): {reason}"),
        (None, false) => format!("exotel {status}: {reason}"),
        (None, true) => format!("exotel {status}"),
    };
    ProviderError::from_status(class, status, message, rest::retry_after(headers), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dialtone_core::{CallStatus, CampaignId, Outcome};
    use secrecy::SecretString;
    use serde_json::json;

    fn config() -> ExotelConfig {
        ExotelConfig::new("acme", "key", SecretString::from("tok"), "https://dialer.example.com/", SecretString::from("cbtok"))
    }

    fn place() -> PlaceCall {
        PlaceCall {
            call_id: CallId::new(),
            campaign_id: CampaignId::new(),
            assistant_id: String::new(),
            phone_number_id: "08030752400".into(),
            customer_number: "+919876543210".into(),
            extension: None,
            customer_name: None,
            variables: Default::default(),
            media: None,
        }
    }

    #[test]
    fn an_agent_call_streams_to_dialtone_with_its_token_and_a_time_limit() {
        let mut c = config();
        c.flow_url = Some("http://my.exotel.com/acme/exoml/start_voice/1".into());
        c.media_secret = Some(SecretString::from("media-key"));
        let call = PlaceCall { media: Some(crate::MediaStream { max_duration_secs: 600 }), ..place() };
        let form = connect_form(&c, &call).unwrap();
        let token = crate::media::stream_token(b"media-key", &call.call_id);
        let keys: Vec<&str> = form.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            [
                "From",
                "CallerId",
                "StreamUrl",
                "StreamType",
                "TimeLimit",
                "CustomField",
                "StatusCallback",
                "StatusCallbackEvents[0]",
                "StatusCallbackEvents[1]",
                "StatusCallbackContentType"
            ],
            "the agent's stream replaces the configured flow"
        );
        assert!(form.contains(&("StreamUrl", format!("wss://dialer.example.com/media/exotel/{token}?call_id={}", call.call_id))));
        assert!(form.contains(&("StreamType", "bidirectional".into())));
        assert!(form.contains(&("TimeLimit", "660".into())), "600 s + 60 s margin");

        let long = PlaceCall { media: Some(crate::MediaStream { max_duration_secs: 20_000 }), ..place() };
        assert!(connect_form(&c, &long).unwrap().contains(&("TimeLimit", "14400".into())), "Exotel's maximum");

        // Over Exotel's 600-character StreamUrl: the placement fails, saying why.
        let base = std::mem::replace(&mut c.public_base_url, format!("https://{}.example.com", "d".repeat(560)));
        let e = connect_form(&c, &call).unwrap_err();
        assert!(e.class == ErrorClass::Final && e.message.contains("StreamUrl") && e.message.contains("600"), "{}", e.message);
        c.public_base_url = base;

        c.media_secret = None;
        let e = connect_form(&c, &call).unwrap_err();
        assert!(e.message.contains("media_secret") && e.class == ErrorClass::Final, "{}", e.message);
    }

    #[test]
    fn flow_wins_over_stream_and_one_is_required() {
        let mut c = config();
        c.flow_url = Some("http://my.exotel.com/acme/exoml/start_voice/1".into());
        c.stream_url = Some("wss://bot.example.com/ws".into());
        let form = connect_form(&c, &place()).unwrap();
        assert!(form.iter().any(|(k, _)| *k == "Url"));
        assert!(!form.iter().any(|(k, _)| *k == "StreamUrl" || *k == "StreamType"));

        c.flow_url = None;
        let form = connect_form(&c, &place()).unwrap();
        assert!(form.contains(&("StreamUrl", "wss://bot.example.com/ws".into())));
        assert!(form.contains(&("StreamType", "bidirectional".into())));
        assert!(form.contains(&("StatusCallback", "https://dialer.example.com/webhooks/exotel/cbtok".into())));

        c.stream_url = None;
        let e = connect_form(&c, &place()).unwrap_err();
        assert_eq!(e.class, ErrorClass::Final);
        assert!(e.message.contains("flow_url"), "{}", e.message);
    }

    #[test]
    fn status_classes() {
        for s in [429, 500, 502, 503, 504] {
            assert_eq!(status_error(s, &HeaderMap::new(), "").class, ErrorClass::Retryable, "{s}");
        }
        for s in [400, 401, 403, 404, 409, 422] {
            assert_eq!(status_error(s, &HeaderMap::new(), "").class, ErrorClass::Final, "{s}");
        }
    }

    #[test]
    fn rest_exception_text_and_codes_of_either_type() {
        let e = status_error(400, &HeaderMap::new(), r#"{"RestException":{"Status":400,"Message":"Invalid From","Code":"34001"}}"#);
        assert_eq!(e.message, "exotel 400 (34001): Invalid From");
        let e = status_error(403, &HeaderMap::new(), r#"{"RestException":{"Status":403,"Message":"Forbidden"}}"#);
        assert_eq!(e.message, "exotel 403: Forbidden");
        let e = status_error(502, &HeaderMap::new(), "<html>bad gateway</html>");
        assert_eq!(e.message, "exotel 502: <html>bad gateway</html>");
    }

    #[test]
    fn call_resource_becomes_an_event() {
        let rc = remote_call(json!({"Call": {"Sid": "80bf", "Status": "no-answer", "Duration": null}}), "80bf").unwrap();
        assert_eq!(rc.event.kind, EventKind::Ended { outcome: Outcome::NoAnswer, reason: Some("no-answer".into()) });
        assert_eq!(rc.event.dedupe_key, "reconcile:exotel:80bf:no-answer");
        assert_eq!(rc.call_id, None);

        let id = CallId::new();
        let rc = remote_call(json!({"Call": {"Sid": "80bf", "Status": "completed", "Duration": "61", "CustomField": id.as_str()}}), "x").unwrap();
        assert_eq!(rc.event.duration_ms, Some(61_000));
        assert_eq!(rc.call_id, Some(id));

        let rc = remote_call(json!({"Call": {"Status": "in-progress"}}), "80bf").unwrap();
        assert_eq!((rc.provider_call_id.as_str(), rc.event.kind), ("80bf", EventKind::Progress(CallStatus::InProgress)));
        assert!(remote_call(json!({"Sid": "80bf"}), "80bf").is_none());
    }
}
