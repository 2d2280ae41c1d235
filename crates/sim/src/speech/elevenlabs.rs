//! ElevenLabs-compatible streaming text-to-speech: WS
//! `/v1/text-to-speech/{voice}/stream-input?model_id=…&output_format=pcm_8000|ulaw_8000|pcm_16000|…`,
//! key in the `xi-api-key` header (or `xi_api_key` in the first message).
//!
//! Shapes from elevenlabs.io/docs/api-reference/websocket: the first message is
//! `{"text":" ", voice_settings?, generation_config?}`, then `{"text":"… ", "flush"?:true}`,
//! then `{"text":""}` to end; the service answers `{"audio": base64, "isFinal": null,
//! "normalizedAlignment", "alignment"}` and finally `{"isFinal": true}`, and closes after 20 s
//! without a message. The audio here is deterministic voiced tone bursts, 60 ms per character
//! of the trimmed text (spaces and punctuation silent), not speech.

use std::collections::HashMap;
use std::f64::consts::PI;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde_json::json;

use super::{bump, key_ok, recv_or_idle, refuse};
use crate::Shared;

/// ElevenLabs' default `inactivity_timeout`.
const IDLE: Duration = Duration::from_secs(20);
/// Each character lasts this long (ms).
pub const MS_PER_CHAR: u32 = 60;
/// Without a flush, text is synthesised once this many characters are buffered.
const CHUNK_CHARS: usize = 120;

pub(super) async fn stream_input(
    State(shared): State<Arc<Shared>>,
    // Any voice id is accepted: the tone bursts are the same for all.
    Path(_voice): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let presented = headers.get("xi-api-key").and_then(|v| v.to_str().ok());
    if presented.is_some() && !key_ok(&shared, presented) {
        return refuse(&shared, json!({"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}));
    }
    let format = params.get("output_format").cloned().unwrap_or_else(|| "mp3_44100_128".into());
    let Some(output) = Output::parse(&format) else {
        let body = json!({"detail": {"status": "invalid_output_format", "message": format!("output_format: {format} is not one the simulator makes (pcm_8000|16000|22050|24000|44100, ulaw_8000)")}});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    };
    let header_ok = presented.is_some();
    ws.on_upgrade(move |socket| session(shared, socket, output, header_ok))
}

#[derive(Clone, Copy)]
struct Output {
    rate: u32,
    ulaw: bool,
}

impl Output {
    fn parse(format: &str) -> Option<Self> {
        match format {
            "ulaw_8000" => Some(Self { rate: 8000, ulaw: true }),
            "pcm_8000" | "pcm_16000" | "pcm_22050" | "pcm_24000" | "pcm_44100" => Some(Self { rate: format[4..].parse().ok()?, ulaw: false }),
            _ => None,
        }
    }
}

async fn session(shared: Arc<Shared>, mut socket: WebSocket, output: Output, mut authorized: bool) {
    let mut buffer = String::new();
    let mut first = true;
    let stopped = shared.stopped();
    tokio::pin!(stopped);
    loop {
        let idle_close = (1008, "Have not received a new text input within the timeout of 20 seconds.");
        let message = recv_or_idle(&mut socket, stopped.as_mut(), IDLE, idle_close).await;
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
            Some(Ok(_)) => continue,
        };
        let Ok(value) = serde_json::from_str::<serde_json::Value>(text.as_str()) else {
            let _ =
                send(&mut socket, json!({"message": "Invalid message: expected JSON with a \"text\" field", "error": "invalid_message", "code": 1008})).await;
            return;
        };
        if first {
            first = false;
            if !authorized {
                let presented = value["xi_api_key"].as_str();
                if presented.is_none() || !key_ok(&shared, presented) {
                    bump(&shared.speech.unauthorized);
                    let frame = CloseFrame { code: 1008, reason: "Invalid API key".into() };
                    let _ = socket.send(Message::Close(Some(frame))).await;
                    return;
                }
                authorized = true;
            }
            bump(&shared.speech.tts_sessions);
            // The opening message is `{"text":" "}`: it carries settings, not speech.
            if value["text"].as_str().is_some_and(|t| t.trim().is_empty()) {
                continue;
            }
        }
        let Some(chunk) = value["text"].as_str() else {
            let _ = send(&mut socket, json!({"message": "Invalid message: \"text\" is required", "error": "invalid_message", "code": 1008})).await;
            return;
        };
        let end = chunk.is_empty();
        buffer.push_str(chunk);
        let flush = end || value["flush"].as_bool() == Some(true) || buffer.len() >= CHUNK_CHARS;
        if flush && !buffer.trim().is_empty() {
            let samples = synthesize(buffer.trim(), output.rate);
            buffer.clear();
            // Quarter-second messages, as a streaming service sends them.
            for part in samples.chunks((output.rate / 4) as usize) {
                let bytes: Vec<u8> = if output.ulaw {
                    part.iter().map(|&s| audio_codec_algorithms::encode_ulaw(s)).collect()
                } else {
                    part.iter().flat_map(|s| s.to_le_bytes()).collect()
                };
                let audio = base64::engine::general_purpose::STANDARD.encode(bytes);
                if !send(&mut socket, json!({"audio": audio, "isFinal": null, "normalizedAlignment": null, "alignment": null})).await {
                    return;
                }
            }
        }
        if end {
            let _ = send(&mut socket, json!({"isFinal": true})).await;
            let _ = socket.send(Message::Close(Some(CloseFrame { code: 1000, reason: "".into() }))).await;
            return;
        }
    }
}

async fn send(socket: &mut WebSocket, value: serde_json::Value) -> bool {
    socket.send(Message::Text(value.to_string().into())).await.is_ok()
}

/// `text` as tone bursts: each character `MS_PER_CHAR` ms at `rate` Hz; letters and digits a
/// voiced burst (fundamental 110–180 Hz by character, two harmonics, a sine envelope), the
/// rest silence.
pub(crate) fn synthesize(text: &str, rate: u32) -> Vec<i16> {
    let per_char = (rate * MS_PER_CHAR / 1000) as usize;
    let mut out = Vec::with_capacity(text.chars().count() * per_char);
    for c in text.chars() {
        if !c.is_alphanumeric() {
            out.extend(std::iter::repeat_n(0i16, per_char));
            continue;
        }
        let f0 = 110.0 + f64::from(u32::from(c) % 8) * 10.0;
        for n in 0..per_char {
            let t = n as f64 / f64::from(rate);
            let envelope = (PI * n as f64 / per_char as f64).sin();
            let wave = (2.0 * PI * f0 * t).sin() + 0.5 * (4.0 * PI * f0 * t).sin() + 0.25 * (6.0 * PI * f0 * t).sin();
            out.push((6000.0 * envelope * wave) as i16);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tone_bursts_last_sixty_ms_a_character_at_any_rate() {
        assert_eq!(synthesize("Hi there", 8000).len(), 8 * 480);
        assert_eq!(synthesize("Hi", 16000).len(), 2 * 960);
        let audio = synthesize("a b", 8000);
        assert!(audio[..480].iter().any(|&s| s.abs() > 1000), "letters are voiced");
        assert!(audio[480..960].iter().all(|&s| s == 0), "spaces are silent");
        assert_eq!(synthesize("a b", 8000), audio, "deterministic");
    }
}
