//! Deepgram-compatible live transcription: WS `/v1/listen`, `Authorization: Token <key>`.
//!
//! Shapes from developers.deepgram.com (live streaming, endpointing, keep-alive): the client
//! sends binary audio (`encoding=linear16|mulaw`, `sample_rate=8000`) and text messages
//! `{"type":"KeepAlive"|"Finalize"|"CloseStream"}`; the service answers `Results`
//! (`is_final`, `speech_final`, `from_finalize`, `start`, `duration`,
//! `channel.alternatives[0].transcript`), `SpeechStarted`, `UtteranceEnd`, `Metadata`, and
//! closes after 10 s without audio or KeepAlive (`NET-0001`); an empty binary message closes
//! the stream like CloseStream. A wrong key is refused on the
//! upgrade with 401.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::clips::{Heard, Recogniser};
use super::{bump, key_ok, recv_or_idle, refuse, scheme_value};
use crate::Shared;

/// Deepgram closes a stream that got neither audio nor KeepAlive for this long.
const IDLE: Duration = Duration::from_secs(10);

pub(super) async fn listen(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !key_ok(&shared, scheme_value(&headers, "authorization", "token")) {
        return refuse(&shared, json!({"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials.", "request_id": "sim"}));
    }
    let encoding = params.get("encoding").map(String::as_str).unwrap_or("linear16").to_owned();
    if encoding != "linear16" && encoding != "mulaw" {
        let body = json!({"err_code": "Bad Request", "err_msg": format!("encoding: {encoding} is not supported by the simulator (linear16, mulaw)")});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    let number = |name: &str, default: u64| params.get(name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(default);
    let options = Options {
        mulaw: encoding == "mulaw",
        sample_rate: number("sample_rate", 8000).max(1),
        interim: params.get("interim_results").is_some_and(|v| v == "true"),
        endpointing_ms: match params.get("endpointing").map(String::as_str) {
            Some("false") => None,
            _ => Some(number("endpointing", 10)),
        },
        vad_events: params.get("vad_events").is_some_and(|v| v == "true"),
        utterance_end: params.contains_key("utterance_end_ms"),
    };
    bump(&shared.speech.deepgram_sessions);
    ws.on_upgrade(move |socket| session(shared, socket, options))
}

struct Options {
    mulaw: bool,
    sample_rate: u64,
    interim: bool,
    /// `None`: `endpointing=false`.
    endpointing_ms: Option<u64>,
    vad_events: bool,
    utterance_end: bool,
}

/// An utterance heard to its end, waiting for the endpointing silence.
struct Pending {
    text: String,
    start: u64,
    end: u64,
}

async fn session(shared: Arc<Shared>, mut socket: WebSocket, options: Options) {
    let mut recogniser = Recogniser::new();
    let mut carry: Option<u8> = None;
    let mut pending: Option<Pending> = None;
    let mut speaking = false;
    let stopped = shared.stopped();
    tokio::pin!(stopped);
    loop {
        let idle_close = (1011, "Deepgram did not receive audio data or a text message within the timeout window. (NET-0001)");
        let Some(Ok(message)) = recv_or_idle(&mut socket, stopped.as_mut(), IDLE, idle_close).await else { return };
        let mut out: Vec<serde_json::Value> = Vec::new();
        // An empty binary message is Deepgram's older way of saying CloseStream.
        let message = match message {
            Message::Binary(bytes) if bytes.is_empty() => Message::Text(r#"{"type":"CloseStream"}"#.into()),
            message => message,
        };
        match message {
            Message::Binary(bytes) => {
                let heard = if options.mulaw {
                    recogniser.push_codes(bytes.iter().copied())
                } else {
                    let mut data: Vec<u8> = carry.take().into_iter().collect();
                    data.extend_from_slice(&bytes);
                    if data.len() % 2 == 1 {
                        carry = data.pop();
                    }
                    let samples: Vec<i16> = data.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
                    recogniser.push_samples(&samples)
                };
                for h in heard {
                    if options.vad_events && !speaking {
                        speaking = true;
                        out.push(json!({"type": "SpeechStarted", "channel": [0], "timestamp": secs(recogniser.position(), &options)}));
                    }
                    match h {
                        Heard::Partial { text } if options.interim => out.push(results(&options, &text, 0, recogniser.position(), false, false, false)),
                        Heard::Partial { .. } => {}
                        Heard::Complete { text, start, end } => {
                            if options.interim {
                                out.push(results(&options, &text, start, end, false, false, false));
                            }
                            // A second utterance before the first's endpointing: the first is settled now.
                            if let Some(p) = pending.take() {
                                out.push(results(&options, &p.text, p.start, p.end, true, false, false));
                            }
                            pending = Some(Pending { text, start, end });
                        }
                    }
                }
                if let (Some(p), Some(ms)) = (&pending, options.endpointing_ms) {
                    if recogniser.position() >= p.end + ms * options.sample_rate / 1000 {
                        let p = pending.take().expect("checked above");
                        out.push(results(&options, &p.text, p.start, p.end, true, true, false));
                        speaking = false;
                        if options.utterance_end {
                            out.push(json!({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": secs(p.end, &options)}));
                        }
                    }
                }
            }
            Message::Text(text) => {
                let kind = serde_json::from_str::<serde_json::Value>(text.as_str()).ok().and_then(|v| v["type"].as_str().map(str::to_owned));
                match kind.as_deref() {
                    Some("KeepAlive") => bump(&shared.speech.deepgram_keepalives),
                    Some(kind @ ("Finalize" | "CloseStream")) => {
                        if kind == "Finalize" {
                            bump(&shared.speech.deepgram_finalizes);
                        } else {
                            bump(&shared.speech.deepgram_close_streams);
                        }
                        let settled = pending.take().map(|p| (p.text, p.start, p.end));
                        let flushed =
                            recogniser.flush().and_then(|h| if let Heard::Complete { text, start, end } = h { Some((text, start, end)) } else { None });
                        match (settled, flushed) {
                            (None, None) if kind == "Finalize" => {
                                let at = recogniser.position();
                                out.push(results(&options, "", at, at, true, false, true));
                            }
                            (settled, flushed) => {
                                for (text, start, end) in settled.into_iter().chain(flushed) {
                                    out.push(results(&options, &text, start, end, true, kind == "Finalize", kind == "Finalize"));
                                }
                            }
                        }
                        speaking = false;
                        if kind == "CloseStream" {
                            out.push(json!({"type": "Metadata", "request_id": "sim", "duration": secs(recogniser.position(), &options), "channels": 1}));
                            for value in out {
                                let _ = socket.send(Message::Text(value.to_string().into())).await;
                            }
                            let _ = socket.send(Message::Close(Some(CloseFrame { code: 1000, reason: "".into() }))).await;
                            return;
                        }
                    }
                    _ => {
                        let error = json!({"type": "Error", "description": "Failed to parse the text message: expected {\"type\": \"KeepAlive\"|\"Finalize\"|\"CloseStream\"}", "message": "", "variant": "DATA-0000"});
                        out.push(error);
                    }
                }
            }
            Message::Close(_) => return,
            Message::Ping(_) | Message::Pong(_) => {}
        }
        for value in out {
            if socket.send(Message::Text(value.to_string().into())).await.is_err() {
                return;
            }
        }
    }
}

fn secs(samples: u64, options: &Options) -> f64 {
    samples as f64 / options.sample_rate as f64
}

fn results(options: &Options, text: &str, start: u64, end: u64, is_final: bool, speech_final: bool, from_finalize: bool) -> serde_json::Value {
    let start_s = secs(start, options);
    let words: Vec<serde_json::Value> = text
        .split_whitespace()
        .map(|w| json!({"word": w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase(), "punctuated_word": w, "confidence": 0.99}))
        .collect();
    json!({
        "type": "Results",
        "channel_index": [0, 1],
        "duration": secs(end.saturating_sub(start), options),
        "start": start_s,
        "is_final": is_final,
        "speech_final": speech_final,
        "from_finalize": from_finalize,
        "channel": {"alternatives": [{"transcript": text, "confidence": if text.is_empty() { 0.0 } else { 0.99 }, "words": words}]},
        "metadata": {"request_id": "sim", "model_info": {"name": "sim", "version": "1", "arch": "sim"}},
    })
}
