//! OpenAI-compatible chat completions and transcription, from the provider's side.
//!
//! Shapes from the OpenAI API reference: `POST /v1/chat/completions` {model, messages[],
//! stream} answers `chat.completion` JSON, or with `stream: true` server-sent events
//! `data: {"object":"chat.completion.chunk","choices":[{"delta":{"content"},"finish_reason"}]}`
//! ending `data: [DONE]`; `POST /v1/audio/transcriptions` (multipart `file`, `model`,
//! `language`, `response_format`) answers `{"text"}`. `Authorization: Bearer <key>`; a wrong
//! key gets 401 `{"error":{"message","type":"invalid_request_error","code":"invalid_api_key"}}`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{bump, clips, key_ok, refuse, scheme_value};
use crate::Shared;

/// The scripted language model: the reply to the callee's last words. Rules, first match wins
/// (case-insensitive): contains "appointment" → the appointment answer; "goodbye", "bye" or
/// "thank you" → "Thank you, goodbye!"; anything else → "I see. Could you tell me more?".
pub fn scripted_reply(last_user_text: &str) -> &'static str {
    let text = last_user_text.to_lowercase();
    if text.contains("appointment") {
        "Your appointment is tomorrow at ten a.m. Is there anything else?"
    } else if text.contains("goodbye") || text.contains("bye") || text.contains("thank you") {
        "Thank you, goodbye!"
    } else {
        "I see. Could you tell me more?"
    }
}

fn unauthorized(shared: &Shared) -> Response {
    refuse(shared, json!({"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}))
}

fn bad_request(param: &str, message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": null}});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// A message's text: a string, or the `text` parts of a content array.
fn content_text(content: &serde_json::Value) -> Option<String> {
    match content {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(parts) => Some(parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join(" ")),
        _ => None,
    }
}

pub(super) async fn chat(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if !key_ok(&shared, scheme_value(&headers, "authorization", "bearer")) {
        return unauthorized(&shared);
    }
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return bad_request("body", "We could not parse the JSON body of your request.");
    };
    let Some(messages) = request["messages"].as_array().filter(|m| !m.is_empty()) else {
        return bad_request("messages", "'messages' is a required property and must be a non-empty array");
    };
    let mut last_user = String::new();
    for (i, message) in messages.iter().enumerate() {
        let (Some(role), Some(text)) = (message["role"].as_str(), content_text(&message["content"])) else {
            return bad_request(&format!("messages[{i}]"), "each message needs a 'role' and a 'content'");
        };
        if role == "user" {
            last_user = text;
        }
    }
    bump(&shared.speech.chat_requests);
    let model = request["model"].as_str().unwrap_or("sim").to_owned();
    let reply = scripted_reply(&last_user);
    if request["stream"].as_bool() != Some(true) {
        let body = json!({
            "id": "chatcmpl-sim", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        });
        return Json(body).into_response();
    }
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        let chunk = json!({"id": "chatcmpl-sim", "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {chunk}\n\n")
    };
    let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    // Word by word, each with the space before it, as a tokenizer would split it.
    let mut start = 0;
    for (i, c) in reply.char_indices().skip(1) {
        if c == ' ' {
            events.push(chunk(json!({"content": &reply[start..i]}), None));
            start = i;
        }
    }
    events.push(chunk(json!({"content": &reply[start..]}), None));
    events.push(chunk(json!({}), Some("stop")));
    events.push("data: [DONE]\n\n".to_owned());
    let stream = futures::stream::iter(events.into_iter().map(Ok::<_, std::convert::Infallible>));
    ([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], Body::from_stream(stream)).into_response()
}

pub(super) async fn transcription(State(shared): State<Arc<Shared>>, headers: HeaderMap, mut form: Multipart) -> Response {
    if !key_ok(&shared, scheme_value(&headers, "authorization", "bearer")) {
        return unauthorized(&shared);
    }
    let mut file = None;
    let mut format = "json".to_owned();
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or("").to_owned();
                let Ok(bytes) = field.bytes().await else { return bad_request(&name, "could not read this multipart field") };
                match name.as_str() {
                    "file" => file = Some(bytes),
                    "response_format" => format = String::from_utf8_lossy(&bytes).into_owned(),
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(_) => return bad_request("file", "the body is not valid multipart/form-data"),
        }
    }
    let Some(file) = file else { return bad_request("file", "'file' is a required property") };
    let Ok(reader) = hound::WavReader::new(std::io::Cursor::new(file)) else {
        return bad_request("file", "the simulator reads WAV files only");
    };
    let spec = reader.spec();
    if spec.channels != 1 || spec.bits_per_sample != 16 || spec.sample_format != hound::SampleFormat::Int {
        return bad_request("file", "the simulator reads 16-bit PCM mono WAV only");
    }
    let samples: Vec<i16> = reader.into_samples::<i16>().filter_map(Result::ok).collect();
    bump(&shared.speech.transcriptions);
    // The clips are 8 kHz: other rates are heard as nothing.
    let text = if spec.sample_rate == 8000 { clips::transcribe(&samples) } else { String::new() };
    match format.as_str() {
        "text" => text.into_response(),
        "verbose_json" => {
            Json(json!({"task": "transcribe", "language": "english", "duration": samples.len() as f64 / f64::from(spec.sample_rate), "text": text}))
                .into_response()
        }
        _ => Json(json!({"text": text})).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::scripted_reply;

    #[test]
    fn the_script_answers_the_fixture_phrases() {
        assert_eq!(scripted_reply("What time is my appointment tomorrow?"), "Your appointment is tomorrow at ten a.m. Is there anything else?");
        assert_eq!(scripted_reply("Okay, thank you. Goodbye."), "Thank you, goodbye!");
        assert_eq!(scripted_reply("Yes, this is Sam speaking."), "I see. Could you tell me more?");
    }
}
