//! Speech services, from the provider's side, for dialtone's real clients to talk to on
//! loopback: Deepgram-compatible streaming speech-to-text (WS `/v1/listen`), OpenAI-compatible
//! chat (`POST /v1/chat/completions`, SSE or not) and transcription
//! (`POST /v1/audio/transcriptions`), ElevenLabs-compatible streaming text-to-speech
//! (WS `/v1/text-to-speech/{voice}/stream-input`).
//!
//! The speech-to-text recognises the project's own callee clips (`fixtures/voice`) by
//! fingerprint; the chat answers from a small rule table ([`scripted_reply`]); the
//! text-to-speech makes deterministic voiced tone bursts, 60 ms per character.

mod clips;
mod deepgram;
mod elevenlabs;
mod openai;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Json, Router};
use serde::Serialize;

use crate::Shared;

/// How long the fake text-to-speech makes each character (ms): audio for `text` is
/// `text.trim().chars().count() * 60` ms.
pub use elevenlabs::MS_PER_CHAR as TTS_MS_PER_CHAR;
pub use openai::scripted_reply;

/// Requests the speech services saw (`GET /sim/stats` does not show them; [`crate::Sim::speech_stats`] does).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    deepgram_sessions: AtomicU64,
    deepgram_keepalives: AtomicU64,
    deepgram_finalizes: AtomicU64,
    deepgram_close_streams: AtomicU64,
    chat_requests: AtomicU64,
    transcriptions: AtomicU64,
    tts_sessions: AtomicU64,
    unauthorized: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Counts of what the simulator's speech services were asked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SpeechStats {
    /// Deepgram `/v1/listen` sessions opened.
    pub deepgram_sessions: u64,
    /// `{"type":"KeepAlive"}` messages received.
    pub deepgram_keepalives: u64,
    /// `{"type":"Finalize"}` messages received.
    pub deepgram_finalizes: u64,
    /// `{"type":"CloseStream"}` messages received.
    pub deepgram_close_streams: u64,
    /// `POST /v1/chat/completions` answered.
    pub chat_requests: u64,
    /// `POST /v1/audio/transcriptions` answered.
    pub transcriptions: u64,
    /// ElevenLabs `stream-input` sessions opened.
    pub tts_sessions: u64,
    /// Requests refused for a missing or wrong key.
    pub unauthorized: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> SpeechStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SpeechStats {
            deepgram_sessions: get(&self.deepgram_sessions),
            deepgram_keepalives: get(&self.deepgram_keepalives),
            deepgram_finalizes: get(&self.deepgram_finalizes),
            deepgram_close_streams: get(&self.deepgram_close_streams),
            chat_requests: get(&self.chat_requests),
            transcriptions: get(&self.transcriptions),
            tts_sessions: get(&self.tts_sessions),
            unauthorized: get(&self.unauthorized),
        }
    }
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/listen", any(deepgram::listen))
        .route("/v1/chat/completions", post(openai::chat))
        .route("/v1/audio/transcriptions", post(openai::transcription))
        .route("/v1/text-to-speech/{voice}/stream-input", any(elevenlabs::stream_input))
}

/// The next message of a speech session's socket, as `socket.recv()` gives it; `None` when
/// the session is over: the simulator stopped, or nothing came for `idle`, in which case the
/// service's own close frame (`code`, `reason`: what the real service sends on an idle
/// stream) was sent first.
async fn recv_or_idle<F: std::future::Future<Output = ()>>(
    socket: &mut WebSocket,
    stopped: std::pin::Pin<&mut F>,
    idle: std::time::Duration,
    (code, reason): (u16, &'static str),
) -> Option<Result<Message, axum::Error>> {
    tokio::select! {
        message = socket.recv() => message,
        _ = tokio::time::sleep(idle) => {
            let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
            None
        }
        _ = stopped => None,
    }
}

/// Whether `presented` is the configured speech key; no key configured accepts anything.
fn key_ok(shared: &Shared, presented: Option<&str>) -> bool {
    match &shared.config.speech_api_key {
        None => true,
        Some(key) => presented.is_some_and(|p| crate::api::same(p, key)),
    }
}

/// The value of `header` after `scheme ` (e.g. `Token`, `Bearer`), case-insensitive scheme.
fn scheme_value<'h>(headers: &'h HeaderMap, header: &str, scheme: &str) -> Option<&'h str> {
    let value = headers.get(header)?.to_str().ok()?;
    let (s, rest) = value.split_once(' ')?;
    s.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

fn refuse(shared: &Shared, body: serde_json::Value) -> Response {
    bump(&shared.speech.unauthorized);
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}
