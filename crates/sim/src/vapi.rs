//! Vapi's HTTP API as seen by a client, and the webhooks Vapi sends.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use serde_json::{json, Value};

use crate::api::{base_url, latency, looks_e164};
use crate::config::SimConfig;
use crate::lifecycle;
use crate::state::{rfc3339_ms, uuid_v7_like, Admission, CallRecord, CallStatus, Detail, Ending, Final, NewCall, Provider, Step};
use crate::webhooks::{Kind, Outgoing, Payload};
use crate::Shared;

const DEFAULT_LIST_LIMIT: usize = 100;
const MAX_LIST_LIMIT: usize = 1000;

/// The Vapi-specific part of a call.
pub(crate) struct VapiCall {
    pub inbound: bool,
    pub assistant_id: Option<String>,
    /// An inline assistant from an assistant-request answer; `Null` if none.
    pub assistant: Value,
    pub phone_number_id: Option<String>,
    /// Inbound: our number that was called.
    pub phone_number: Option<String>,
    pub customer: Value,
    pub assistant_overrides: Value,
    pub name: Option<String>,
    /// `http://{Host}` the call was created through, for its monitor URLs.
    pub base_url: String,
    pub provider_call_id: String,
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/call", get(list_calls).post(create_call)).route("/call/{id}", get(get_call)).route("/call/{id}/control", post(control))
}

/// Vapi's (NestJS) error shape.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({
        "message": message.into(),
        "error": status.canonical_reason().unwrap_or("Error"),
        "statusCode": status.as_u16(),
    });
    (status, Json(body)).into_response()
}

/// Latency fault, then the API key check shared by every `/call` route.
async fn gate(shared: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    latency(shared).await;
    let Some(key) = &shared.config.api_key else { return Ok(()) };
    let presented = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if presented == Some(key.as_str()) {
        Ok(())
    } else {
        shared.lock().count_unauthorized();
        Err(error(StatusCode::UNAUTHORIZED, "Invalid Key. Hot tip, make sure you're using the private key."))
    }
}

async fn create_call(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(response) = gate(&shared, &headers).await {
        return response;
    }
    let new = match parse_new_call(&body, base_url(&headers)) {
        Ok(new) => new,
        Err(message) => {
            shared.lock().count_bad_request();
            return error(StatusCode::BAD_REQUEST, message);
        }
    };
    let id = uuid_v7_like(Timestamp::now());
    let admission = shared.lock().admit(&shared.config, id, new);
    match admission {
        Admission::Rejected429 => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "Too many requests, please slow down.");
            response.headers_mut().insert(header::RETRY_AFTER, crate::api::retry_after(shared.config.time_scale));
            response
        }
        Admission::Rejected503 => error(StatusCode::SERVICE_UNAVAILABLE, "Service temporarily unavailable."),
        Admission::Accepted { id, call, plan } => {
            lifecycle::spawn(Arc::clone(&shared), id, plan);
            (StatusCode::CREATED, Json(call)).into_response()
        }
    }
}

/// Parses the create body; errors name the offending field, as Vapi's do.
fn parse_new_call(body: &[u8], base_url: String) -> Result<NewCall, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("body must be a JSON object: {e}"))?;
    let Value::Object(body) = value else {
        return Err("body must be a JSON object".into());
    };
    let required = |field: &str| -> Result<String, String> {
        match body.get(field) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            Some(Value::String(_)) => Err(format!("{field} should not be empty")),
            None | Some(Value::Null) => Err(format!("{field} is required")),
            Some(_) => Err(format!("{field} must be a string")),
        }
    };
    let assistant_id = required("assistantId")?;
    let phone_number_id = required("phoneNumberId")?;

    let customer = match body.get("customer") {
        Some(Value::Object(c)) => Value::Object(c.clone()),
        None | Some(Value::Null) => return Err("customer is required".into()),
        Some(_) => return Err("customer must be an object".into()),
    };
    let customer_number = match customer.get("number") {
        Some(Value::String(n)) => n.clone(),
        None | Some(Value::Null) => return Err("customer.number is required".into()),
        Some(_) => return Err("customer.number must be a string".into()),
    };
    if !looks_e164(&customer_number) {
        return Err("customer.number must be a valid phone number in the E.164 format (+ and 8-15 digits)".into());
    }
    if let Some(name) = customer.get("name") {
        if !name.is_string() && !name.is_null() {
            return Err("customer.name must be a string".into());
        }
    }
    // Kept in `customer` and shown by GET /call, so tests can check what was sent.
    match customer.get("extension") {
        None | Some(Value::Null) => {}
        Some(Value::String(e)) if !e.is_empty() && e.len() <= 20 && e.bytes().all(|b| b.is_ascii_digit()) => {}
        Some(_) => return Err("customer.extension must be a string of 1 to 20 digits".into()),
    }

    let assistant_overrides = match body.get("assistantOverrides") {
        None | Some(Value::Null) => Value::Null,
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err("assistantOverrides must be an object".into()),
    };
    let metadata = &assistant_overrides["metadata"];
    if !metadata.is_null() && !metadata.is_object() {
        return Err("assistantOverrides.metadata must be an object".into());
    }
    let metadata_string = |field: &str| -> Result<Option<String>, String> {
        match &metadata[field] {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(format!("assistantOverrides.metadata.{field} must be a string")),
        }
    };
    let name = match body.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("name must be a string".into()),
    };

    Ok(NewCall {
        number: customer_number,
        line: phone_number_id.clone(),
        dialtone_call_id: metadata_string("dialtoneCallId")?,
        campaign_id: metadata_string("campaignId")?,
        inbound: false,
        digits: customer.get("extension").and_then(Value::as_str).map(str::to_string),
        detail: Detail::Vapi(VapiCall {
            inbound: false,
            assistant_id: Some(assistant_id),
            assistant: Value::Null,
            phone_number_id: Some(phone_number_id),
            phone_number: None,
            customer,
            assistant_overrides,
            name,
            base_url,
            provider_call_id: format!("CA{}", crate::state::random_hex32()),
        }),
    })
}

async fn get_call(State(shared): State<Arc<Shared>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(response) = gate(&shared, &headers).await {
        return response;
    }
    let call = shared.lock().get(&id, Provider::Vapi).map(CallRecord::to_json);
    match call {
        Some(call) => Json(call).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("Couldn't find call {id}")),
    }
}

/// `GET /call?createdAtGe=<RFC3339>&limit=<n>`: newest first.
async fn list_calls(State(shared): State<Arc<Shared>>, headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Response {
    if let Err(response) = gate(&shared, &headers).await {
        return response;
    }
    let since = match query.get("createdAtGe").map(|s| s.parse::<Timestamp>()) {
        None => None,
        Some(Ok(ts)) => Some(ts),
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, format!("createdAtGe must be an ISO 8601 date: {e}")),
    };
    let limit = match query.get("limit").map(|s| s.parse::<usize>()) {
        None => DEFAULT_LIST_LIMIT,
        Some(Ok(n)) if n <= MAX_LIST_LIMIT => n,
        Some(_) => return error(StatusCode::BAD_REQUEST, format!("limit must be a number from 0 to {MAX_LIST_LIMIT}")),
    };
    let calls = shared.lock().list_vapi(since, limit);
    Json(calls).into_response()
}

/// `POST /call/{id}/control` (the call's `monitor.controlUrl`). Like Vapi's,
/// it takes no API key: the unguessable URL is the credential.
/// `{"type":"end-call"}` ends the call (`manually-canceled`); `say`,
/// `add-message`, `control` and `transfer` are accepted and ignored.
async fn control(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Response {
    latency(&shared).await;
    if shared.lock().get(&id, Provider::Vapi).is_none() {
        return error(StatusCode::NOT_FOUND, format!("Couldn't find call {id}"));
    }
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body must be a JSON object: {e}")),
    };
    match value["type"].as_str() {
        Some("end-call") => {
            let ending = Ending { fin: Final::Canceled, reason: "manually-canceled".into(), cost: None, talk_secs: None, hangup: true };
            // Ending an ended call changes nothing and still answers OK.
            lifecycle::finish(&shared, &id, ending);
            (StatusCode::OK, "OK").into_response()
        }
        Some("say" | "add-message" | "control" | "transfer") => (StatusCode::OK, "OK").into_response(),
        Some(other) => error(StatusCode::BAD_REQUEST, format!("type must be one of end-call, say, add-message, control, transfer; got {other}")),
        None => error(StatusCode::BAD_REQUEST, "type is required"),
    }
}

fn status_str(status: CallStatus) -> &'static str {
    match status {
        CallStatus::Queued => "queued",
        CallStatus::Ringing => "ringing",
        CallStatus::InProgress => "in-progress",
        CallStatus::Ended => "ended",
    }
}

/// The Call object.
pub(crate) fn render(call: &CallRecord, v: &VapiCall) -> Value {
    let ws_base = match v.base_url.strip_prefix("https://") {
        Some(host) => format!("wss://{host}"),
        None => format!("ws://{}", v.base_url.trim_start_matches("http://")),
    };
    let mut json = json!({
        "id": call.id,
        "orgId": "sim-org",
        "type": if v.inbound { "inboundPhoneCall" } else { "outboundPhoneCall" },
        "status": status_str(call.status),
        "createdAt": rfc3339_ms(call.created_at),
        "updatedAt": rfc3339_ms(call.ended_at.or(call.started_at).unwrap_or(call.created_at)),
        "startedAt": call.started_at.map(rfc3339_ms),
        "endedAt": call.ended_at.map(rfc3339_ms),
        "endedReason": call.ended_reason,
        "cost": call.cost,
        "customer": v.customer,
        "assistantId": v.assistant_id,
        "phoneNumberId": v.phone_number_id,
        "assistantOverrides": v.assistant_overrides,
        "name": v.name,
        "phoneCallProvider": "twilio",
        "phoneCallProviderId": v.provider_call_id,
        "monitor": {
            "listenUrl": format!("{ws_base}/call/{}/listen", call.id),
            "controlUrl": format!("{}/call/{}/control", v.base_url, call.id),
        },
    });
    if let Some(number) = &v.phone_number {
        json["phoneNumber"] = json!({ "number": number });
    }
    if !v.assistant.is_null() {
        json["assistant"] = v.assistant.clone();
    }
    json
}

fn outgoing(config: &SimConfig, kind: Kind, message: Value) -> Vec<Outgoing> {
    match &config.webhook_url {
        Some(url) => vec![Outgoing { kind, url: url.clone(), payload: Payload::Vapi(json!({ "message": message })) }],
        None => Vec::new(),
    }
}

/// ringing / in-progress status updates.
pub(crate) fn progress(call: &mut CallRecord, step: Step, config: &SimConfig) -> Vec<Outgoing> {
    if step == Step::Initiated {
        return Vec::new();
    }
    let message = json!({
        "type": "status-update",
        "status": status_str(call.status),
        "call": call.to_json(),
        "timestamp": now_ms(),
    });
    outgoing(config, Kind::Progress, message)
}

/// The ended status update and the end-of-call report.
pub(crate) fn ended(call: &mut CallRecord, config: &SimConfig) -> Vec<Outgoing> {
    let Detail::Vapi(v) = &call.detail else { return Vec::new() };
    let json = call.to_json();
    let timestamp = now_ms();
    let reason = call.ended_reason.clone().unwrap_or_default();
    let status = json!({
        "type": "status-update",
        "status": "ended",
        "endedReason": reason,
        "call": json,
        "timestamp": timestamp,
    });
    let name = v.customer.get("name").and_then(Value::as_str).unwrap_or("there");
    let (transcript, summary, success) = match call.fin {
        Some(Final::Answered) => (
            format!("AI: Hi {name}, this is a simulated call.\nUser: Sure, go ahead.\nAI: Thanks, goodbye.\n"),
            "The customer listened and the call ended politely.",
            "true",
        ),
        Some(Final::Voicemail) => (format!("AI: Hi {name}, sorry we missed you. We will call back.\n"), "Reached voicemail and left a message.", "false"),
        Some(Final::Canceled) if call.started_at.is_some() => {
            (format!("AI: Hi {name}, this is a simulated call.\n"), "The call was ended through its control URL.", "false")
        }
        _ => (String::new(), "The call did not connect.", "false"),
    };
    // `artifact.messages`, as Vapi sends them: one per line of the transcript, `bot` or
    // `user`, unix-ms `time`/`endTime`, spread over the talk time.
    let lines: Vec<&str> = transcript.lines().filter(|l| !l.is_empty()).collect();
    let start = call.started_at.map_or(timestamp, |t| t.as_millisecond());
    let step = (call.talk_secs.max(0.0) * 1000.0 / lines.len().max(1) as f64) as i64;
    let messages: Vec<Value> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, line)| {
            let (role, text) = match line.split_once(": ")? {
                ("AI", text) => ("bot", text),
                (_, text) => ("user", text),
            };
            let time = start + step * i as i64;
            Some(json!({"role": role, "message": text, "time": time, "endTime": time + step, "secondsFromStart": (step * i as i64) as f64 / 1000.0}))
        })
        .collect();
    let report = json!({
        "type": "end-of-call-report",
        "endedReason": reason,
        "cost": json["cost"],
        "startedAt": call.started_at.map(rfc3339_ms),
        "endedAt": call.ended_at.map(rfc3339_ms),
        "artifact": {
            "transcript": transcript,
            "messages": messages,
            "recordingUrl": format!("https://sim.invalid/rec/{}.wav", call.id),
        },
        "analysis": {"summary": summary, "successEvaluation": success},
        "call": json,
        "timestamp": timestamp,
    });
    let mut events = outgoing(config, Kind::Ended, status);
    events.extend(outgoing(config, Kind::Ended, report));
    events
}

pub(crate) fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}
