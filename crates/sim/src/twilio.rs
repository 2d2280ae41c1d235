//! Twilio's Calls API (2010-04-01) as seen by a client, and the signed status
//! callbacks Twilio sends.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use serde_json::{json, Value};
use sha1::Sha1;

use crate::api::{basic_auth, form_get, form_pairs, http_url, latency, looks_e164, query_param, same, strip_json};
use crate::config::{SimConfig, SimOutcome};
use crate::lifecycle;
use crate::media::{twiml_stream, StreamSpec, Wire};
use crate::state::{random_hex32, Admission, CallRecord, CallStatus, Detail, Ending, Final, NewCall, Provider, Step};
use crate::webhooks::{Kind, Outgoing, Payload};
use crate::Shared;

const API: &str = "2010-04-01";

/// The Twilio-specific part of a call.
pub(crate) struct TwilioCall {
    pub account_sid: String,
    pub to: String,
    pub from: String,
    /// Normalized as it will be requested (and signed).
    pub status_callback: Option<String>,
    pub events: Events,
    pub machine_detection: bool,
    /// `AsyncAmd=true`: the verdict goes to `amd_callback` on its own, and no status
    /// callback carries `AnsweredBy`.
    pub async_amd: bool,
    /// `AsyncAmdStatusCallback`, normalized as it will be requested (and signed).
    pub amd_callback: Option<String>,
    pub answered_by: Option<&'static str>,
    /// `SendDigits` as requested (an extension), shown in the call as `send_digits` (the
    /// simulator's own field: Twilio does not echo it) so tests can check what was sent.
    pub send_digits: Option<String>,
    /// `<Connect><Stream url=…>` in `Twiml`: the media stream the sim opens once answered.
    pub stream: Option<StreamSpec>,
}

/// `StatusCallbackEvent` subscriptions; Twilio's default is `completed` only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Events {
    pub initiated: bool,
    pub ringing: bool,
    pub answered: bool,
    pub completed: bool,
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/2010-04-01/Accounts/{account}/Calls.json", post(create_call))
        .route("/2010-04-01/Accounts/{account}/Calls/{sid}", get(get_call).post(update_call))
}

/// Twilio's REST error shape.
fn error(status: StatusCode, code: u32, message: impl Into<String>) -> Response {
    let body = json!({
        "code": code,
        "message": message.into(),
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, Json(body)).into_response()
}

fn not_found(path: &str) -> Response {
    error(StatusCode::NOT_FOUND, 20404, format!("The requested resource {path} was not found"))
}

/// Latency fault, then the account and Basic auth checks.
async fn gate(shared: &Shared, headers: &HeaderMap, account: &str, path: &str) -> Result<(), Response> {
    latency(shared).await;
    let config = &shared.config;
    let (Some(sid), Some(token)) = (&config.twilio_account_sid, &config.twilio_auth_token) else {
        return Err(not_found(path));
    };
    let authorized = basic_auth(headers).is_some_and(|(user, password)| same(&user, sid) && same(&password, token));
    if !authorized {
        shared.lock().count_unauthorized();
        return Err(error(StatusCode::UNAUTHORIZED, 20003, "Authenticate"));
    }
    if account != sid {
        return Err(not_found(path));
    }
    Ok(())
}

async fn create_call(State(shared): State<Arc<Shared>>, Path(account): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let path = format!("/{API}/Accounts/{account}/Calls.json");
    if let Err(response) = gate(&shared, &headers, &account, &path).await {
        return response;
    }
    let new = match parse_new_call(&account, &form_pairs(&body)) {
        Ok(new) => new,
        Err((code, message)) => {
            shared.lock().count_bad_request();
            return error(StatusCode::BAD_REQUEST, code, message);
        }
    };
    let id = format!("CA{}", random_hex32());
    let admission = shared.lock().admit(&shared.config, id, new);
    match admission {
        Admission::Rejected429 => error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests"),
        Admission::Rejected503 => error(StatusCode::SERVICE_UNAVAILABLE, 20503, "Service Unavailable"),
        Admission::Accepted { id, call, plan } => {
            lifecycle::spawn(Arc::clone(&shared), id, plan);
            (StatusCode::CREATED, Json(call)).into_response()
        }
    }
}

fn parse_new_call(account: &str, form: &[(String, String)]) -> Result<NewCall, (u32, String)> {
    let to = form_get(form, "To").ok_or((21201, "No 'To' number is specified".to_string()))?;
    if !looks_e164(to) {
        return Err((21211, format!("Invalid 'To' Phone Number: {to}")));
    }
    let from = form_get(form, "From").ok_or((21213, "No 'From' number is specified".to_string()))?;
    match (form_get(form, "Url"), form_get(form, "Twiml"), form_get(form, "ApplicationSid")) {
        (None, None, None) => return Err((21205, "Url parameter is required (or Twiml, or ApplicationSid)".into())),
        (Some(url), _, _) if http_url(url).is_none() => return Err((21205, format!("Url is not a valid URL: {url}"))),
        _ => {}
    }
    let status_callback = match form_get(form, "StatusCallback") {
        None => None,
        Some(raw) => Some(http_url(raw).ok_or((21609, format!("StatusCallback is not a valid URL: {raw}")))?),
    };
    let mut events = Events::default();
    let mut any_event = false;
    for (_, value) in form.iter().filter(|(k, _)| k == "StatusCallbackEvent") {
        for event in value.split(|c: char| c.is_whitespace() || c == ',').filter(|e| !e.is_empty()) {
            any_event = true;
            match event.to_ascii_lowercase().as_str() {
                "initiated" => events.initiated = true,
                "ringing" => events.ringing = true,
                "answered" => events.answered = true,
                "completed" => events.completed = true,
                other => return Err((21626, format!("Invalid StatusCallbackEvent: {other}"))),
            }
        }
    }
    if !any_event {
        events.completed = true;
    }
    let machine_detection = match form_get(form, "MachineDetection") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("Enable") || v.eq_ignore_ascii_case("DetectMessageEnd") => true,
        Some(v) => return Err((21626, format!("MachineDetection must be Enable or DetectMessageEnd, not {v}"))),
    };
    // Twilio: digits, `#`, `*` and `w` (a half-second wait), at most 32 (error 21206).
    let send_digits = match form_get(form, "SendDigits") {
        None => None,
        Some(d) if (1..=32).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'#' | b'*' | b'w')) => Some(d.to_string()),
        Some(d) => return Err((21206, format!("Invalid SendDigits: {d}"))),
    };
    let async_amd = machine_detection && form_get(form, "AsyncAmd").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let amd_callback = match form_get(form, "AsyncAmdStatusCallback").filter(|_| async_amd) {
        None => None,
        Some(raw) => Some(http_url(raw).ok_or((21609, format!("AsyncAmdStatusCallback is not a valid URL: {raw}")))?),
    };
    let param = |name: &str| status_callback.as_deref().and_then(|url| query_param(url, name));
    let stream = form_get(form, "Twiml").and_then(twiml_stream).map(|(url, custom_parameters)| StreamSpec {
        wire: Wire::Twilio,
        url,
        custom_parameters,
        account_sid: account.to_string(),
        number: to.to_string(),
        caller: from.to_string(),
    });
    Ok(NewCall {
        number: to.to_string(),
        line: from.to_string(),
        campaign_id: param("dialtone_campaign_id"),
        dialtone_call_id: param("dialtone_call_id"),
        inbound: false,
        digits: send_digits.clone(),
        detail: Detail::Twilio(TwilioCall {
            account_sid: account.to_string(),
            to: to.to_string(),
            from: from.to_string(),
            status_callback,
            events,
            machine_detection,
            async_amd,
            amd_callback,
            answered_by: None,
            send_digits,
            stream,
        }),
    })
}

async fn get_call(State(shared): State<Arc<Shared>>, Path((account, file)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let path = format!("/{API}/Accounts/{account}/Calls/{file}");
    if let Err(response) = gate(&shared, &headers, &account, &path).await {
        return response;
    }
    let Some(sid) = strip_json(&file) else { return not_found(&path) };
    let call = shared.lock().get(sid, Provider::Twilio).map(CallRecord::to_json);
    match call {
        Some(call) => Json(call).into_response(),
        None => not_found(&path),
    }
}

/// `Status=completed` hangs up: an answered call ends `completed`, one not yet
/// answered ends `canceled`. `Status=canceled` cancels a call not yet answered
/// and, as at Twilio, leaves an answered one alone. Either on an ended call
/// answers it unchanged.
async fn update_call(State(shared): State<Arc<Shared>>, Path((account, file)): Path<(String, String)>, headers: HeaderMap, body: Bytes) -> Response {
    let path = format!("/{API}/Accounts/{account}/Calls/{file}");
    if let Err(response) = gate(&shared, &headers, &account, &path).await {
        return response;
    }
    let Some(sid) = strip_json(&file) else { return not_found(&path) };
    let form = form_pairs(&body);
    let (status, planned) = match shared.lock().get(sid, Provider::Twilio) {
        Some(call) => (call.status, call.planned),
        None => return not_found(&path),
    };
    let requested = form_get(&form, "Status");
    if let Some(other) = requested.filter(|s| !matches!(*s, "completed" | "canceled")) {
        shared.lock().count_bad_request();
        return error(StatusCode::BAD_REQUEST, 21218, format!("Status must be completed or canceled, not {other}"));
    }
    let fin = match (requested, status) {
        (_, CallStatus::Ended) => None,
        (Some("completed"), CallStatus::InProgress) if planned == SimOutcome::Voicemail => Some(Final::Voicemail),
        (Some("completed"), CallStatus::InProgress) => Some(Final::Answered),
        (Some("completed" | "canceled"), CallStatus::Queued | CallStatus::Ringing) => Some(Final::Canceled),
        (Some(_), _) => None,
        (None, _) if form_get(&form, "Url").is_some() || form_get(&form, "Twiml").is_some() => None,
        (None, _) => {
            shared.lock().count_bad_request();
            return error(StatusCode::BAD_REQUEST, 21218, "Status, Url or Twiml is required");
        }
    };
    let ended = fin.and_then(|fin| {
        let reason = if fin == Final::Canceled { "canceled" } else { "completed" };
        let ending = Ending { fin, reason: reason.into(), cost: None, talk_secs: None, hangup: true };
        lifecycle::finish(&shared, sid, ending)
    });
    let call = match ended {
        Some(call) => call,
        None => match shared.lock().get(sid, Provider::Twilio) {
            Some(call) => call.to_json(),
            None => return not_found(&path),
        },
    };
    Json(call).into_response()
}

/// RFC 2822, as Twilio writes dates.
pub(crate) fn rfc2822(ts: Timestamp) -> String {
    ts.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

fn status_str(call: &CallRecord) -> &'static str {
    match call.status {
        CallStatus::Queued => "queued",
        CallStatus::Ringing => "ringing",
        CallStatus::InProgress => "in-progress",
        CallStatus::Ended => call.fin.map_or("completed", Final::terminal_status),
    }
}

/// The Call resource.
pub(crate) fn render(call: &CallRecord, t: &TwilioCall) -> Value {
    let ended = call.is_ended();
    let uri = format!("/{API}/Accounts/{}/Calls/{}", t.account_sid, call.id);
    json!({
        "sid": call.id,
        "account_sid": t.account_sid,
        "to": t.to,
        "to_formatted": t.to,
        "from": t.from,
        "from_formatted": t.from,
        "status": status_str(call),
        "direction": "outbound-api",
        "date_created": rfc2822(call.created_at),
        "date_updated": rfc2822(call.ended_at.or(call.started_at).unwrap_or(call.created_at)),
        "start_time": call.started_at.or(ended.then_some(call.created_at)).map(rfc2822),
        "end_time": call.ended_at.map(rfc2822),
        "duration": ended.then(|| (call.talk_secs.round() as u64).to_string()),
        "price": (ended && call.cost > 0.0).then(|| format!("-{:.5}", call.cost)),
        "price_unit": "USD",
        "answered_by": t.answered_by,
        "send_digits": t.send_digits,
        "api_version": API,
        "caller_name": null,
        "forwarded_from": null,
        "group_sid": null,
        "parent_call_sid": null,
        "phone_number_sid": null,
        "queue_time": "0",
        "trunk_sid": null,
        "annotation": null,
        "uri": format!("{uri}.json"),
        "subresource_uris": {
            "notifications": format!("{uri}/Notifications.json"),
            "recordings": format!("{uri}/Recordings.json"),
            "events": format!("{uri}/Events.json"),
        },
    })
}

/// initiated / ringing / answered callbacks, as subscribed.
pub(crate) fn progress(call: &mut CallRecord, step: Step, config: &SimConfig) -> Vec<Outgoing> {
    let Detail::Twilio(t) = &mut call.detail else { return Vec::new() };
    let subscribed = match step {
        Step::Initiated => t.events.initiated,
        Step::Ringing => t.events.ringing,
        Step::InProgress => {
            if t.machine_detection {
                t.answered_by = Some(if call.planned == SimOutcome::Voicemail { "machine_end_beep" } else { "human" });
            }
            t.events.answered
        }
    };
    let status = if step == Step::Initiated { "initiated" } else { status_str(call) };
    let mut out = callback(call, config, subscribed, Kind::Progress, status, false);
    if step == Step::InProgress {
        out.extend(amd_verdict(call, config));
    }
    out
}

/// The asynchronous AMD verdict, on its own, to `AsyncAmdStatusCallback`: `CallSid`,
/// `AccountSid`, `AnsweredBy`, `MachineDetectionDuration`, and no `CallStatus`. Sent after
/// the answered callback (the detection takes a few seconds of the call), so it may well
/// arrive after `completed` when the call is short or webhooks are reordered.
fn amd_verdict(call: &CallRecord, config: &SimConfig) -> Vec<Outgoing> {
    let Detail::Twilio(t) = &call.detail else { return Vec::new() };
    let (Some(url), Some(answered_by)) = (t.amd_callback.clone(), t.answered_by) else { return Vec::new() };
    let params: Vec<(String, String)> =
        [("CallSid", call.id.as_str()), ("AccountSid", t.account_sid.as_str()), ("AnsweredBy", answered_by), ("MachineDetectionDuration", "2100")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let signature = config.twilio_auth_token.as_deref().map(|token| signature(token, &url, &params));
    vec![Outgoing { kind: Kind::Progress, url, payload: Payload::Form { params, signature } }]
}

/// The terminal callback (the `completed` event), whatever the final status.
pub(crate) fn ended(call: &mut CallRecord, config: &SimConfig) -> Vec<Outgoing> {
    let Detail::Twilio(t) = &call.detail else { return Vec::new() };
    let subscribed = t.events.completed;
    let status = status_str(call);
    callback(call, config, subscribed, Kind::Ended, status, true)
}

fn callback(call: &mut CallRecord, config: &SimConfig, subscribed: bool, kind: Kind, status: &str, last: bool) -> Vec<Outgoing> {
    let Detail::Twilio(t) = &call.detail else { return Vec::new() };
    let Some(url) = t.status_callback.clone().filter(|_| subscribed) else { return Vec::new() };
    // With async AMD the verdict has its own callback; status callbacks never carry it.
    let answered_by = t.answered_by.filter(|_| !t.async_amd);
    let (to, from, account) = (t.to.clone(), t.from.clone(), t.account_sid.clone());
    let seq = call.take_seq();
    let mut params: Vec<(String, String)> = [
        ("CallSid", call.id.as_str()),
        ("AccountSid", &account),
        ("From", &from),
        ("Caller", &from),
        ("To", &to),
        ("Called", &to),
        ("CallStatus", status),
        ("Direction", "outbound-api"),
        ("ApiVersion", API),
        ("CallbackSource", "call-progress-events"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    params.push(("SequenceNumber".into(), seq.to_string()));
    params.push(("Timestamp".into(), rfc2822(Timestamp::now())));
    if let Some(answered_by) = answered_by {
        params.push(("AnsweredBy".into(), answered_by.into()));
    }
    if last {
        let secs = call.talk_secs.round() as u64;
        params.push(("CallDuration".into(), secs.to_string()));
        params.push(("Duration".into(), secs.div_ceil(60).to_string()));
        let sip = match call.fin {
            Some(Final::Busy) => "486",
            Some(Final::NoAnswer) => "480",
            Some(Final::Canceled) => "487",
            Some(Final::Failed) => "500",
            _ => "200",
        };
        params.push(("SipResponseCode".into(), sip.into()));
    }
    let signature = config.twilio_auth_token.as_deref().map(|token| signature(token, &url, &params));
    vec![Outgoing { kind, url, payload: Payload::Form { params, signature } }]
}

/// `X-Twilio-Signature`: base64(HMAC-SHA1(auth_token, url + for each param
/// name in sorted order, for each of its values sorted: name + value)).
/// `url` is the full URL as requested, query string included.
pub fn signature<K: AsRef<str>, V: AsRef<str>>(auth_token: &str, url: &str, params: &[(K, V)]) -> String {
    let mut sorted: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    sorted.sort_unstable();
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_twilios_test_vector() {
        let params = [("CallSid", "CA1234567890ABCDE"), ("Caller", "+14158675309"), ("Digits", "1234"), ("From", "+14158675309"), ("To", "+18005551212")];
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(signature("12345", url, &params), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        // Order of the pairs given does not matter; their content does.
        let mut shuffled = params;
        shuffled.reverse();
        assert_eq!(signature("12345", url, &shuffled), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert_ne!(signature("12346", url, &params), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert_ne!(signature("12345", "https://mycompany.com/myapp.php?foo=1", &params), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
    }

    #[test]
    fn repeated_names_sort_by_value() {
        let a = signature("t", "https://x.test/", &[("A", "2"), ("A", "1"), ("B", "0")]);
        let b = signature("t", "https://x.test/", &[("B", "0"), ("A", "1"), ("A", "2")]);
        assert_eq!(a, b);
    }

    #[test]
    fn dates_are_rfc_2822() {
        let ts: Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
        assert_eq!(rfc2822(ts), "Fri, 02 Jan 2026 03:04:05 +0000");
    }

    #[test]
    fn create_form_validation() {
        let form = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let ok = form(&[("To", "+14155550001"), ("From", "+14155550100"), ("Url", "https://x.test/twiml")]);
        let new = parse_new_call("AC1", &ok).unwrap();
        let Detail::Twilio(t) = &new.detail else { panic!() };
        assert_eq!(t.events, Events { completed: true, ..Events::default() });
        assert_eq!(parse_new_call("AC1", &ok[1..]).err().unwrap().0, 21201);
        assert_eq!(parse_new_call("AC1", &ok[..2]).err().unwrap().0, 21205);
        let bad_to = form(&[("To", "4155550001"), ("From", "+1"), ("Twiml", "<Response/>")]);
        assert_eq!(parse_new_call("AC1", &bad_to).err().unwrap().0, 21211);
        let events = form(&[
            ("To", "+14155550001"),
            ("From", "+14155550100"),
            ("Twiml", "<Response/>"),
            ("StatusCallback", "https://x.test/cb?dialtone_call_id=call_9&dialtone_campaign_id=cmp_9"),
            ("StatusCallbackEvent", "initiated ringing"),
            ("StatusCallbackEvent", "answered"),
        ]);
        let new = parse_new_call("AC1", &events).unwrap();
        assert_eq!((new.dialtone_call_id.as_deref(), new.campaign_id.as_deref()), (Some("call_9"), Some("cmp_9")));
        let Detail::Twilio(t) = &new.detail else { panic!() };
        assert_eq!(t.events, Events { initiated: true, ringing: true, answered: true, completed: false });
    }
}
