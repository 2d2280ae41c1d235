//! Twilio's Calls resource: one request per call, no retries (the placer owns the
//! schedule), every failure classified so the placer knows whether another try can help.

use super::{parse_rfc2822, status_kind, TwilioConfig};
use crate::rest::{self, final_error, seconds_to_ms, text_field, truncate, MAX_RAW_REASON};
use crate::{ErrorClass, PlaceCall, Placed, ProviderError, RemoteCall};
use dialtone_core::{EventKind, ProviderEvent};
use reqwest::header::HeaderMap;
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::Value;

const NAME: &str = dialtone_core::ProviderKind::Twilio.as_str();

pub(super) async fn place_call(http: &reqwest::Client, config: &TwilioConfig, call: &PlaceCall) -> Result<Placed, ProviderError> {
    let form = create_call_form(config, call)?;
    let (status, call_obj) = send(http, config, Method::POST, None, Some(&form)).await?;
    match call_obj.get("sid").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        Some(sid) => {
            tracing::debug!(provider_call_id = sid, "twilio accepted the call");
            Ok(Placed { provider_call_id: sid.to_string() })
        }
        // Final, not retryable: Twilio said yes, so the phone may be ringing right now and
        // a second attempt could dial the same person twice.
        None => Err(final_error(Some(status), format!("twilio {status}: accepted the call but the response has no sid"))),
    }
}

pub(super) async fn get_call(http: &reqwest::Client, config: &TwilioConfig, sid: &str) -> Result<RemoteCall, ProviderError> {
    let (status, call) = send(http, config, Method::GET, Some(sid), None).await?;
    remote_call(call, sid).ok_or_else(|| final_error(Some(status), format!("twilio {status}: response is not a call")))
}

/// `Status=completed` ends an answered call; a call not yet answered has to be
/// `canceled` instead (Twilio refuses the other way round), so the call is read first.
pub(super) async fn hang_up(http: &reqwest::Client, config: &TwilioConfig, sid: &str) -> Result<(), ProviderError> {
    let (_, call) = send(http, config, Method::GET, Some(sid), None).await?;
    let current = call.get("status").and_then(Value::as_str).unwrap_or_default();
    let target = match current {
        "queued" | "initiated" | "ringing" => "canceled",
        "in-progress" | "" => "completed",
        // Already over: "hung up" would record the wrong outcome; the real one comes by
        // webhook or reconcile.
        ended => return Err(final_error(None, format!("twilio call {sid} has already ended ({ended})"))),
    };
    send(http, config, Method::POST, Some(sid), Some(&[("Status", target.to_string())])).await?;
    Ok(())
}

/// Twilio's `SendDigits` for an extension: keys pressed once the call is answered, `w`
/// being a half-second wait (Twilio's Calls API: digits, `#`, `*` and `w`, at most 32).
/// Two seconds first, so an auto-attendant has started listening before the digits come.
pub fn send_digits(extension: &dialtone_core::Extension) -> String {
    format!("wwww{extension}")
}

/// The form of `POST /Accounts/{sid}/Calls.json`, in the order it is sent.
pub(super) fn create_call_form(config: &TwilioConfig, call: &PlaceCall) -> Result<Vec<(&'static str, String)>, ProviderError> {
    let mut form = vec![("To", call.customer_number.clone()), ("From", call.phone_number_id.clone())];
    if let Some(media) = &call.media {
        // dialtone's own pipeline: inline TwiML that connects the call to our stream,
        // whatever TwiML is configured; the call id and its token travel as <Parameter>s.
        let secret = config.media_secret.as_ref().ok_or_else(|| final_error(None, "twilio: media_secret is not configured".into()))?;
        let twiml = crate::media::twilio_stream_twiml(&config.public_base_url, &config.media_path, secret.expose_secret().as_bytes(), &call.call_id)
            .ok_or_else(|| final_error(None, format!("twilio: public URL {:?} is not http(s)", config.public_base_url)))?;
        form.push(("Twiml", twiml));
        form.push(("TimeLimit", media.time_limit_secs().to_string()));
    } else {
        match (&config.twiml_url, &config.twiml) {
            (Some(url), _) => form.push(("Url", url.clone())),
            (None, Some(twiml)) => form.push(("Twiml", twiml.clone())),
            (None, None) => return Err(final_error(None, "twilio: neither twiml_url nor twiml is configured".into())),
        }
    }
    form.push(("StatusCallback", status_callback_url(config, call)));
    form.push(("StatusCallbackMethod", "POST".into()));
    for event in ["initiated", "ringing", "answered", "completed"] {
        form.push(("StatusCallbackEvent", event.into()));
    }
    form.push(("Timeout", config.ring_timeout_secs.to_string()));
    if let Some(ext) = &call.extension {
        form.push(("SendDigits", send_digits(ext)));
    }
    if config.machine_detection {
        form.push(("MachineDetection", "Enable".into()));
        form.push(("AsyncAmd", "true".into()));
        // Without it Twilio has nowhere to send the verdict (warning 21262); it arrives as
        // an `Info` event and in the call resource, and `AnsweredBy` on the completed
        // callback decides voicemail.
        form.push(("AsyncAmdStatusCallback", status_callback_url(config, call)));
        form.push(("AsyncAmdStatusCallbackMethod", "POST".into()));
    }
    Ok(form)
}

fn status_callback_url(config: &TwilioConfig, call: &PlaceCall) -> String {
    // Call ids are `call_` + base32: nothing to escape.
    format!("{}{}?dialtone_call_id={}", config.public_base_url.trim_end_matches('/'), config.webhook_path, call.call_id)
}

/// A call resource as an event, for the same path webhooks take. `None` without a status.
pub(super) fn remote_call(call: Value, fallback_sid: &str) -> Option<RemoteCall> {
    let obj = call.as_object()?;
    let sid = text_field(obj, "sid").unwrap_or_else(|| fallback_sid.to_string());
    let status = text_field(obj, "status")?;
    let answered_by = text_field(obj, "answered_by");
    let kind = status_kind(&status, answered_by.as_deref()).unwrap_or(EventKind::Info);
    let ended = matches!(kind, EventKind::Ended { .. });
    let occurred_at = if ended { text_field(obj, "end_time") } else { None }.or_else(|| text_field(obj, "date_updated")).and_then(|t| parse_rfc2822(&t));
    let event = ProviderEvent {
        provider_type: "call".to_string(),
        provider_call_id: Some(sid.clone()),
        // Twilio does not echo ours; the call is matched by its sid.
        call_id: None,
        kind,
        dedupe_key: format!("reconcile:twilio:{sid}:{status}"),
        occurred_at,
        // `price` is in `price_unit` and often set minutes after the end: left in `raw`.
        cost: None,
        duration_ms: if ended { text_field(obj, "duration").and_then(|d| seconds_to_ms(&d)) } else { None },
        report: None,
        raw: call.into(),
        webhook: None,
    };
    Some(RemoteCall { provider_call_id: sid, call_id: None, event })
}

/// One request to `Calls.json` (no sid) or `Calls/{sid}.json`. A 2xx comes back as
/// (status, JSON body); anything else as a classified error.
async fn send(
    http: &reqwest::Client,
    config: &TwilioConfig,
    method: Method,
    sid: Option<&str>,
    form: Option<&[(&'static str, String)]>,
) -> Result<(u16, Value), ProviderError> {
    let resource = sid.map_or_else(|| "Calls.json".to_string(), |sid| format!("{sid}.json"));
    let mut path = vec!["Accounts", config.account_sid.as_str(), resource.as_str()];
    if sid.is_some() {
        path.insert(2, "Calls");
    }
    let url = rest::endpoint(NAME, &config.base_url, &path)?;
    let mut req = http.request(method, url).basic_auth(&config.account_sid, Some(config.auth_token.expose_secret())).timeout(config.request_timeout);
    if let Some(form) = form {
        req = req.form(form);
    }
    let resp = rest::send(NAME, req).await?;
    if !(200..300).contains(&resp.status) {
        let err = status_error(resp.status, &resp.headers, &resp.text);
        tracing::warn!(status = resp.status, retryable = err.is_retryable(), message = %err.message, "twilio refused the request");
        return Err(err);
    }
    let body = serde_json::from_str(&resp.text).map_err(|e| final_error(Some(resp.status), format!("twilio {}: response is not JSON: {e}", resp.status)))?;
    Ok((resp.status, body))
}

/// Classifies a non-2xx answer from `{"code":…,"message":…,"status":…}`. Pure, so the
/// table is tested without a server.
pub(super) fn status_error(status: u16, headers: &HeaderMap, body: &str) -> ProviderError {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let obj = json.as_ref().and_then(Value::as_object);
    let code = obj.and_then(|o| text_field(o, "code"));
    let reason = obj.and_then(|o| text_field(o, "message")).unwrap_or_else(|| truncate(body.trim(), MAX_RAW_REASON));
    // 20429: too many concurrent requests for the account. Safe to resend, and a sign to
    // slow down rather than spend the contact's attempts.
    let concurrency_limited = status == 429 || code.as_deref() == Some("20429");
    let class = if concurrency_limited || (500..600).contains(&status) { ErrorClass::Retryable } else { ErrorClass::Final };
    let message = match (&code, reason.is_empty()) {
        (Some(code), _) => format!("twilio {status} ({code}): {reason}"),
        (None, false) => format!("twilio {status}: {reason}"),
        (None, true) => format!("twilio {status}"),
    };
    ProviderError::from_status(class, status, message, rest::retry_after(headers), concurrency_limited)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dialtone_core::{CallId, CallStatus, CampaignId, Outcome};
    use secrecy::SecretString;
    use serde_json::json;

    fn config() -> TwilioConfig {
        let mut c = TwilioConfig::new("AC123", SecretString::from("tok"), "https://dialer.example.com/");
        c.twiml_url = Some("https://dialer.example.com/twiml".into());
        c
    }

    fn place() -> PlaceCall {
        PlaceCall {
            call_id: CallId::new(),
            campaign_id: CampaignId::new(),
            assistant_id: String::new(),
            phone_number_id: "+15005550006".into(),
            customer_number: "+14155551234".into(),
            extension: None,
            customer_name: None,
            variables: Default::default(),
            media: None,
        }
    }

    #[test]
    fn an_agent_call_connects_to_dialtones_stream_with_its_call_id_and_token() {
        let mut c = config();
        c.media_secret = Some(SecretString::from("media-key"));
        let call = PlaceCall { media: Some(crate::MediaStream { max_duration_secs: 120 }), ..place() };
        let form = create_call_form(&c, &call).unwrap();
        let token = crate::media::stream_token(b"media-key", &call.call_id);
        let twiml = format!(
            "<Response><Connect><Stream url=\"wss://dialer.example.com/media/twilio\"><Parameter name=\"dialtone_call_id\" value=\"{}\"/>\
             <Parameter name=\"token\" value=\"{token}\"/></Stream></Connect></Response>",
            call.call_id
        );
        assert_eq!(form[..4], [("To", "+14155551234".into()), ("From", "+15005550006".into()), ("Twiml", twiml), ("TimeLimit", "180".into())]);
        assert!(!form.iter().any(|(k, _)| *k == "Url"), "the agent's stream replaces the configured TwiML URL");

        c.media_secret = None;
        let e = create_call_form(&c, &call).unwrap_err();
        assert!(e.message.contains("media_secret") && e.class == ErrorClass::Final, "{}", e.message);
    }

    #[test]
    fn twiml_url_wins_over_inline_twiml_and_one_is_required() {
        let mut c = config();
        c.twiml = Some("<Response/>".into());
        let form = create_call_form(&c, &place()).unwrap();
        assert!(form.contains(&("Url", "https://dialer.example.com/twiml".into())));
        assert!(!form.iter().any(|(k, _)| *k == "Twiml"));

        c.twiml_url = None;
        let form = create_call_form(&c, &place()).unwrap();
        assert!(form.contains(&("Twiml", "<Response/>".into())));

        c.twiml = None;
        let e = create_call_form(&c, &place()).unwrap_err();
        assert_eq!(e.class, ErrorClass::Final);
        assert!(e.message.contains("twiml"), "{}", e.message);
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
    fn error_message_carries_status_code_and_reason() {
        let e = status_error(400, &HeaderMap::new(), r#"{"code":21211,"message":"Invalid 'To' Phone Number","status":400}"#);
        assert_eq!(e.message, "twilio 400 (21211): Invalid 'To' Phone Number");
        assert!(!e.concurrency_limited);
        let e = status_error(502, &HeaderMap::new(), "bad gateway");
        assert_eq!(e.message, "twilio 502: bad gateway");
    }

    #[test]
    fn code_20429_is_a_concurrency_limit_whatever_the_status() {
        let e = status_error(400, &HeaderMap::new(), r#"{"code":20429,"message":"Too Many Requests","status":400}"#);
        assert!(e.is_retryable() && e.concurrency_limited);
    }

    #[test]
    fn call_resource_becomes_an_event() {
        let call = json!({"sid": "CA1", "status": "completed", "answered_by": "machine_end_beep", "duration": "42",
            "end_time": "Tue, 31 Aug 2010 20:36:44 +0000", "date_updated": "Tue, 31 Aug 2010 20:36:45 +0000"});
        let rc = remote_call(call, "CA1").unwrap();
        assert_eq!(rc.provider_call_id, "CA1");
        assert_eq!(rc.event.kind, EventKind::Ended { outcome: Outcome::Voicemail, reason: Some("completed:machine_end_beep".into()) });
        assert_eq!(rc.event.dedupe_key, "reconcile:twilio:CA1:completed");
        assert_eq!(rc.event.duration_ms, Some(42_000));
        assert_eq!(rc.event.occurred_at.unwrap().to_string(), "2010-08-31T20:36:44Z");

        let rc = remote_call(json!({"sid": "CA1", "status": "ringing", "duration": null}), "CA1").unwrap();
        assert_eq!(rc.event.kind, EventKind::Progress(CallStatus::Ringing));
        assert_eq!(rc.event.duration_ms, None);
        assert!(remote_call(json!({"sid": "CA1"}), "CA1").is_none());
    }
}
