//! Exotel's Calls API (v1) as seen by a client, and its status callbacks.
//! Exotel does not sign callbacks: the client puts a secret in the callback
//! URL it chooses, so there is nothing for the sim to add.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use serde_json::{json, Map, Value};

use crate::api::{basic_auth, form_get, form_pairs, http_url, latency, looks_e164, query_param, same, strip_json};
use crate::lifecycle;
use crate::media::{exotel_custom_parameters, StreamSpec, Wire};
use crate::state::{random_hex32, Admission, CallRecord, CallStatus, Detail, Final, NewCall, Provider, Step};
use crate::webhooks::{Kind, Outgoing, Payload};
use crate::Shared;

const MAX_CUSTOM_FIELD: usize = 128;

/// The Exotel-specific part of a call.
pub(crate) struct ExotelCall {
    pub account_sid: String,
    /// The contact, called first.
    pub from: String,
    /// `To` if given, else the ExoPhone (`CallerId`), as Exotel reports flow calls.
    pub to: String,
    pub caller_id: String,
    pub custom_field: Option<String>,
    pub status_callback: Option<String>,
    /// `StatusCallbackEvents[n]=answered` was given.
    pub answered_event: bool,
    /// Any `StatusCallbackEvents` were given: callbacks carry `EventType`,
    /// `CustomField`, times and `Legs`.
    pub events: bool,
    /// `StatusCallbackContentType=application/json`; otherwise form posts.
    pub json: bool,
    /// `StreamUrl`: the voicebot WebSocket the sim opens once the call is answered.
    pub stream: Option<StreamSpec>,
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/v1/Accounts/{account}/Calls/connect.json", post(connect)).route("/v1/Accounts/{account}/Calls/{sid}", get(get_call))
}

/// Exotel's error shape.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({"RestException": {"Status": status.as_u16(), "Message": message.into(), "Code": status.as_u16()}});
    (status, Json(body)).into_response()
}

/// Latency fault, then the account and Basic auth checks.
async fn gate(shared: &Shared, headers: &HeaderMap, account: &str) -> Result<(), Response> {
    latency(shared).await;
    let config = &shared.config;
    let (Some(sid), Some(key), Some(token)) = (&config.exotel_sid, &config.exotel_api_key, &config.exotel_api_token) else {
        return Err(error(StatusCode::NOT_FOUND, "Not Found"));
    };
    let authorized = basic_auth(headers).is_some_and(|(user, password)| same(&user, key) && same(&password, token));
    if !authorized {
        shared.lock().count_unauthorized();
        let body = json!({"RestException": {"Status": 401, "Message": "Authentication failed"}});
        return Err((StatusCode::UNAUTHORIZED, Json(body)).into_response());
    }
    if account != sid {
        return Err(error(StatusCode::NOT_FOUND, format!("Account {account} not found")));
    }
    Ok(())
}

async fn connect(State(shared): State<Arc<Shared>>, Path(account): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(response) = gate(&shared, &headers, &account).await {
        return response;
    }
    let new = match parse_new_call(&account, &form_pairs(&body)) {
        Ok(new) => new,
        Err(message) => {
            shared.lock().count_bad_request();
            return error(StatusCode::BAD_REQUEST, message);
        }
    };
    let id = random_hex32();
    let admission = shared.lock().admit(&shared.config, id, new);
    match admission {
        Admission::Rejected429 => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
            response.headers_mut().insert(header::RETRY_AFTER, crate::api::retry_after(shared.config.time_scale));
            response
        }
        Admission::Rejected503 => error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
        Admission::Accepted { id, mut call, plan } => {
            lifecycle::spawn(Arc::clone(&shared), id, plan);
            // Exotel answers a connect with the call already "in-progress".
            call["Call"]["Status"] = json!("in-progress");
            Json(call).into_response()
        }
    }
}

fn parse_new_call(account: &str, form: &[(String, String)]) -> Result<NewCall, String> {
    let from = form_get(form, "From").ok_or("Missing parameter From")?;
    if !looks_e164(from) {
        return Err(format!("From is not a valid phone number in E.164 format: {from}"));
    }
    let caller_id = form_get(form, "CallerId").ok_or("Missing parameter CallerId")?;
    match (form_get(form, "Url"), form_get(form, "StreamUrl")) {
        (None, None) => return Err("Missing parameter Url (or StreamUrl)".into()),
        (Some(url), _) if http_url(url).is_none() => return Err(format!("Url is not a valid URL: {url}")),
        (_, Some(stream)) if !(stream.starts_with("ws://") || stream.starts_with("wss://")) => {
            return Err(format!("StreamUrl must be a ws:// or wss:// URL: {stream}"));
        }
        _ => {}
    }
    let custom_field = form_get(form, "CustomField").map(String::from);
    if custom_field.as_ref().is_some_and(|c| c.chars().count() > MAX_CUSTOM_FIELD) {
        return Err(format!("CustomField must be at most {MAX_CUSTOM_FIELD} characters"));
    }
    let status_callback = match form_get(form, "StatusCallback") {
        None => None,
        Some(raw) => Some(http_url(raw).ok_or(format!("StatusCallback is not a valid URL: {raw}"))?),
    };
    let (mut events, mut answered_event) = (false, false);
    for (_, value) in form.iter().filter(|(k, _)| k.starts_with("StatusCallbackEvents")) {
        events = true;
        match value.trim() {
            "answered" => answered_event = true,
            "terminal" => {}
            other => return Err(format!("StatusCallbackEvents must be terminal or answered, not {other}")),
        }
    }
    let json = form_get(form, "StatusCallbackContentType").is_some_and(|t| t.eq_ignore_ascii_case("application/json"));
    let param = |name: &str| status_callback.as_deref().and_then(|url| query_param(url, name));
    let stream = form_get(form, "StreamUrl").map(|url| StreamSpec {
        wire: Wire::Exotel,
        url: url.to_string(),
        custom_parameters: exotel_custom_parameters(url),
        account_sid: account.to_string(),
        number: from.to_string(),
        caller: caller_id.to_string(),
    });
    Ok(NewCall {
        number: from.to_string(),
        line: caller_id.to_string(),
        campaign_id: param("dialtone_campaign_id"),
        dialtone_call_id: custom_field.clone().or_else(|| param("dialtone_call_id")),
        inbound: false,
        digits: None,
        detail: Detail::Exotel(ExotelCall {
            account_sid: account.to_string(),
            from: from.to_string(),
            to: form_get(form, "To").unwrap_or(caller_id).to_string(),
            caller_id: caller_id.to_string(),
            custom_field,
            status_callback,
            answered_event,
            events,
            json,
            stream,
        }),
    })
}

async fn get_call(State(shared): State<Arc<Shared>>, Path((account, file)): Path<(String, String)>, headers: HeaderMap) -> Response {
    if let Err(response) = gate(&shared, &headers, &account).await {
        return response;
    }
    let call = strip_json(&file).and_then(|sid| shared.lock().get(sid, Provider::Exotel).map(CallRecord::to_json));
    match call {
        Some(call) => Json(call).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("Call {file} not found")),
    }
}

/// `YYYY-MM-DD HH:mm:ss` in India time, as Exotel writes dates.
pub(crate) fn exotel_time(ts: Timestamp) -> String {
    match ts.in_tz("Asia/Kolkata") {
        Ok(zoned) => zoned.strftime("%Y-%m-%d %H:%M:%S").to_string(),
        Err(_) => ts.strftime("%Y-%m-%d %H:%M:%S").to_string(),
    }
}

fn status_str(call: &CallRecord) -> &'static str {
    match call.status {
        CallStatus::Queued => "queued",
        CallStatus::Ringing => "ringing",
        CallStatus::InProgress => "in-progress",
        CallStatus::Ended => call.fin.map_or("completed", Final::terminal_status),
    }
}

/// `{"Call": {…}}`, as `GET …/Calls/{Sid}.json` answers.
pub(crate) fn render(call: &CallRecord, e: &ExotelCall) -> Value {
    let ended = call.is_ended();
    json!({"Call": {
        "Sid": call.id,
        "ParentCallSid": null,
        "DateCreated": exotel_time(call.created_at),
        "DateUpdated": exotel_time(call.ended_at.or(call.started_at).unwrap_or(call.created_at)),
        "AccountSid": e.account_sid,
        "To": e.to,
        "From": e.from,
        "PhoneNumberSid": e.caller_id,
        "Status": status_str(call),
        "StartTime": exotel_time(call.created_at),
        "EndTime": call.ended_at.map(exotel_time),
        "Duration": ended.then(|| call.talk_secs.round() as u64),
        "Price": null,
        "Direction": "outbound-api",
        "AnsweredBy": null,
        "ForwardedFrom": null,
        "CallerName": null,
        "Uri": format!("/v1/Accounts/{}/Calls/{}.json", e.account_sid, call.id),
        "RecordingUrl": null,
    }})
}

/// The `answered` callback, when subscribed.
pub(crate) fn progress(call: &mut CallRecord, step: Step) -> Vec<Outgoing> {
    let Detail::Exotel(e) = &call.detail else { return Vec::new() };
    if step != Step::InProgress || !e.answered_event {
        return Vec::new();
    }
    let body = json!({
        "CallSid": call.id,
        "EventType": "answered",
        "Status": "in-progress",
        "CustomField": e.custom_field,
        "DateUpdated": exotel_time(Timestamp::now()),
        "StartTime": exotel_time(call.created_at),
        "From": e.from,
        "To": e.to,
        "Direction": "outbound-api",
    });
    outgoing(e, Kind::Progress, body)
}

/// The terminal callback: always sent to a StatusCallback; the full shape when
/// events were subscribed.
pub(crate) fn ended(call: &mut CallRecord) -> Vec<Outgoing> {
    let Detail::Exotel(e) = &call.detail else { return Vec::new() };
    let now = call.ended_at.unwrap_or_else(Timestamp::now);
    let body = if e.events {
        json!({
            "CallSid": call.id,
            "EventType": "terminal",
            "Status": status_str(call),
            "CustomField": e.custom_field,
            "DateUpdated": exotel_time(now),
            "StartTime": exotel_time(call.created_at),
            "EndTime": exotel_time(now),
            "ConversationDuration": call.talk_secs.round() as u64,
            "RecordingUrl": null,
            "Legs": [],
            "From": e.from,
            "To": e.to,
            "Direction": "outbound-api",
        })
    } else {
        json!({
            "CallSid": call.id,
            "Status": status_str(call),
            "DateUpdated": exotel_time(now),
            "RecordingUrl": null,
        })
    };
    outgoing(e, Kind::Ended, body)
}

fn outgoing(e: &ExotelCall, kind: Kind, body: Value) -> Vec<Outgoing> {
    let Some(url) = e.status_callback.clone() else { return Vec::new() };
    let payload = if e.json { Payload::Json(body) } else { Payload::Form { params: form_params(body), signature: None } };
    vec![Outgoing { kind, url, payload }]
}

/// Flat form fields from a flat JSON object: null as empty, arrays left out.
fn form_params(body: Value) -> Vec<(String, String)> {
    let Value::Object(map) = body else { return Vec::new() };
    let map: Map<String, Value> = map;
    map.into_iter()
        .filter_map(|(k, v)| match v {
            Value::Null => Some((k, String::new())),
            Value::String(s) => Some((k, s)),
            Value::Array(_) | Value::Object(_) => None,
            other => Some((k, other.to_string())),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn connect_validation_and_ids() {
        let ok = form(&[
            ("From", "+919876543210"),
            ("CallerId", "08047112233"),
            ("StreamUrl", "wss://bot.test/ws"),
            ("CustomField", "call_1"),
            ("StatusCallback", "https://x.test/cb/secret?dialtone_campaign_id=cmp_1"),
            ("StatusCallbackEvents[0]", "terminal"),
            ("StatusCallbackEvents[1]", "answered"),
            ("StatusCallbackContentType", "application/json"),
        ]);
        let new = parse_new_call("acc", &ok).unwrap();
        assert_eq!((new.dialtone_call_id.as_deref(), new.campaign_id.as_deref()), (Some("call_1"), Some("cmp_1")));
        assert_eq!(new.line, "08047112233");
        let Detail::Exotel(e) = &new.detail else { panic!() };
        assert!(e.json && e.events && e.answered_event);
        assert_eq!(e.to, "08047112233");

        assert!(parse_new_call("acc", &ok[1..]).err().unwrap().contains("From"));
        assert!(parse_new_call("acc", &form(&[("From", "+919876543210"), ("CallerId", "x")])).err().unwrap().contains("Url"));
        let long = "x".repeat(129);
        let mut too_long = ok.clone();
        too_long[3].1 = long;
        assert!(parse_new_call("acc", &too_long).err().unwrap().contains("CustomField"));
    }

    #[test]
    fn dates_are_in_india_time() {
        let ts: Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
        assert_eq!(exotel_time(ts), "2026-01-02 08:34:05");
    }

    #[test]
    fn form_flattening() {
        let params = form_params(json!({"A": "x", "B": null, "C": 3, "Legs": []}));
        assert_eq!(params, form(&[("A", "x"), ("B", ""), ("C", "3")]));
    }
}
