//! Inbound calls to a Vapi number with no fixed assistant: `POST /sim/inbound`
//! rings them in, and for each Vapi asks the server URL which assistant to use
//! (`assistant-request`, answered within 7.5 s), then plays the call.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::api::{base_url, looks_e164};
use crate::config::SimOutcome;
use crate::lifecycle;
use crate::state::{random_hex32, uuid_v7_like, Admission, Detail, Ending, Final, InboundAnswer, NewCall, Plan};
use crate::vapi::{error, now_ms, VapiCall};
use crate::webhooks::vapi_request;
use crate::Shared;

/// Vapi's deadline for an assistant-request answer (real time, never scaled).
pub(crate) const ASSISTANT_REQUEST_TIMEOUT: Duration = Duration::from_millis(7_500);
const MAX_COUNT: u32 = 1000;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/sim/inbound", post(inbound))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InboundRequest {
    to: String,
    from: String,
    #[serde(default = "one")]
    count: u32,
    outcome: Option<SimOutcome>,
}

fn one() -> u32 {
    1
}

/// Rings `count` calls in at once and answers, once every assistant-request
/// has been answered or timed out, `201 {"ids": [...], "calls": [{"id",
/// "answer": "assistant"|"error"|"timeout"|"invalid", "assistantId"?, "error"?}]}`.
async fn inbound(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let request: InboundRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body must be {{to, from, count?, outcome?}}: {e}")),
    };
    if !looks_e164(&request.to) || !looks_e164(&request.from) {
        return error(StatusCode::BAD_REQUEST, "to and from must be E.164 numbers");
    }
    if !(1..=MAX_COUNT).contains(&request.count) {
        return error(StatusCode::BAD_REQUEST, format!("count must be from 1 to {MAX_COUNT}"));
    }
    let Some(url) = shared.config.webhook_url.clone() else {
        return error(StatusCode::BAD_REQUEST, "no webhook_url is configured to send assistant-requests to");
    };
    let outcome = request.outcome.or_else(|| shared.config.number_outcomes.get(&request.from).copied()).unwrap_or(SimOutcome::Answered);
    let base = base_url(&headers);

    let mut rung = Vec::new();
    {
        let mut state = shared.lock();
        for _ in 0..request.count {
            let new = NewCall {
                number: request.from.clone(),
                line: request.to.clone(),
                campaign_id: None,
                dialtone_call_id: None,
                inbound: true,
                digits: None,
                detail: Detail::Vapi(VapiCall {
                    inbound: true,
                    assistant_id: None,
                    assistant: Value::Null,
                    phone_number_id: None,
                    phone_number: Some(request.to.clone()),
                    customer: json!({ "number": request.from }),
                    assistant_overrides: Value::Null,
                    name: None,
                    base_url: base.clone(),
                    provider_call_id: format!("CA{}", random_hex32()),
                }),
            };
            let id = uuid_v7_like(Timestamp::now());
            if let Admission::Accepted { id, call, plan } = state.admit_inbound(&shared.config, id, new, outcome) {
                rung.push((id, call, plan));
            }
        }
    }

    let mut tasks = JoinSet::new();
    for (index, (id, call, plan)) in rung.into_iter().enumerate() {
        let (shared, url) = (Arc::clone(&shared), url.clone());
        let (to, from) = (request.to.clone(), request.from.clone());
        tasks.spawn(async move { (index, ask(shared, &url, id, call, plan, &to, &from).await) });
    }
    let mut results = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok(result) = done {
            results.push(result);
        }
    }
    results.sort_by_key(|(index, _)| *index);
    let calls: Vec<Value> = results.into_iter().map(|(_, v)| v).collect();
    let ids: Vec<Value> = calls.iter().map(|c| c["id"].clone()).collect();
    (StatusCode::CREATED, Json(json!({ "ids": ids, "calls": calls }))).into_response()
}

enum Answer {
    Assistant { id: Option<String>, inline: Value },
    Error(String),
    Timeout,
    Invalid(String),
}

async fn ask(shared: Arc<Shared>, url: &str, id: String, call: Value, plan: Plan, to: &str, from: &str) -> Value {
    let message = json!({"message": {
        "type": "assistant-request",
        "call": call,
        "phoneNumber": { "number": to },
        "customer": { "number": from },
        "timestamp": now_ms(),
    }});
    let raw = serde_json::to_vec(&message).expect("JSON values always serialize");
    let request = vapi_request(&shared, url, raw).timeout(ASSISTANT_REQUEST_TIMEOUT);
    let sent = std::time::Instant::now();
    let answer = match tokio::time::timeout(ASSISTANT_REQUEST_TIMEOUT, read_answer(request)).await {
        Ok(answer) => answer,
        Err(_) => Answer::Timeout,
    };
    shared.lock().webhook_result(matches!(answer, Answer::Assistant { .. } | Answer::Error(_)), sent.elapsed());

    let (kind, reason, report) = match answer {
        Answer::Assistant { id: assistant_id, inline } => {
            {
                let mut state = shared.lock();
                state.inbound_answer(InboundAnswer::Answered);
                if let Some(Detail::Vapi(v)) = state.call_mut(&id).map(|c| &mut c.detail) {
                    v.assistant_id = assistant_id.clone();
                    v.assistant = inline;
                }
            }
            lifecycle::spawn(Arc::clone(&shared), id.clone(), plan);
            return json!({ "id": id, "answer": "assistant", "assistantId": assistant_id });
        }
        Answer::Error(message) => (InboundAnswer::Error, "assistant-request-returned-error", json!({ "id": id, "answer": "error", "error": message })),
        Answer::Timeout => (InboundAnswer::Timeout, "assistant-request-failed", json!({ "id": id, "answer": "timeout" })),
        Answer::Invalid(why) => {
            (InboundAnswer::Invalid, "assistant-request-returned-invalid-assistant", json!({ "id": id, "answer": "invalid", "error": why }))
        }
    };
    shared.lock().inbound_answer(kind);
    // The caller hears a failure; no lifecycle webhooks follow.
    let ending = Ending { fin: Final::Failed, reason: reason.into(), cost: Some(0.0), talk_secs: Some(0.0), hangup: false };
    lifecycle::finish(&shared, &id, ending);
    report
}

async fn read_answer(request: reqwest::RequestBuilder) -> Answer {
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) if e.is_timeout() => return Answer::Timeout,
        Err(e) => return Answer::Invalid(format!("request failed: {e}")),
    };
    let status = response.status();
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(e) if e.is_timeout() => return Answer::Timeout,
        Err(e) => return Answer::Invalid(format!("reading the answer failed: {e}")),
    };
    if !status.is_success() {
        return Answer::Invalid(format!("answered {status}"));
    }
    classify(&body)
}

fn classify(body: &[u8]) -> Answer {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Answer::Invalid("answer is not JSON".into());
    };
    match (&value["error"], &value["assistantId"], &value["assistant"]) {
        (Value::Null, Value::String(id), _) => Answer::Assistant { id: Some(id.clone()), inline: Value::Null },
        (Value::Null, _, inline @ Value::Object(_)) => Answer::Assistant { id: None, inline: inline.clone() },
        (Value::Null, _, _) => Answer::Invalid("answer names no assistantId or assistant".into()),
        (Value::String(message), _, _) => Answer::Error(message.clone()),
        (other, _, _) => Answer::Error(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified() {
        assert!(matches!(classify(br#"{"assistantId":"asst_x"}"#), Answer::Assistant { id: Some(id), .. } if id == "asst_x"));
        assert!(matches!(classify(br#"{"assistant":{"name":"x"}}"#), Answer::Assistant { id: None, .. }));
        assert!(matches!(classify(br#"{"error":"unknown number"}"#), Answer::Error(m) if m == "unknown number"));
        assert!(matches!(classify(br#"{}"#), Answer::Invalid(_)));
        assert!(matches!(classify(b"nope"), Answer::Invalid(_)));
    }
}
