//! The speech-service traits dialtone's voice pipeline talks to. The server implements them
//! (Deepgram, OpenAI-compatible chat and transcription, ElevenLabs, flite, the simulator's
//! services); tests use scripted ones.
//!
//! Audio crossing these traits is always 16-bit signed PCM, mono, little-endian samples as
//! `i16`, at the sample rate the caller asked for (8,000 Hz on phone calls).

use async_trait::async_trait;
use futures::stream::BoxStream;
use tokio::sync::mpsc;

/// A speech service failed. `retryable`: a later request may succeed (timeouts, 429, 5xx).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{service}: {message}")]
pub struct SpeechError {
    /// e.g. `deepgram`, `openai`, `elevenlabs`, `flite`.
    pub service: &'static str,
    pub message: String,
    pub retryable: bool,
}

/// What the speech-to-text session is given.
#[derive(Debug, Clone, PartialEq)]
pub enum SttInput {
    /// Callee audio, 16-bit PCM at the session's sample rate.
    Audio(Vec<i16>),
    /// The callee's turn ended: produce the final text now (Deepgram `Finalize`; a batch
    /// transcription service transcribes what it has buffered).
    Finalize,
}

/// What a speech-to-text session reports.
#[derive(Debug, Clone, PartialEq)]
pub enum SttEvent {
    /// Text so far for the current utterance; may still change.
    Partial { text: String },
    /// Settled text. `speech_final`: the service judged the utterance ended (Deepgram
    /// `speech_final`, or the answer to `Finalize`).
    Final { text: String, speech_final: bool },
}

/// Options for one speech-to-text session (one call).
#[derive(Debug, Clone, PartialEq)]
pub struct SttOptions {
    /// Hz, e.g. 8000.
    pub sample_rate: u32,
    /// BCP 47, e.g. `en-US`.
    pub language: String,
    pub model: Option<String>,
}

/// An open speech-to-text session. Dropping `audio` closes it (Deepgram `CloseStream`);
/// `events` then ends.
pub struct SttSession {
    pub audio: mpsc::Sender<SttInput>,
    pub events: mpsc::Receiver<Result<SttEvent, SpeechError>>,
}

/// Streaming speech-to-text.
#[async_trait]
pub trait Stt: Send + Sync + 'static {
    async fn open(&self, options: &SttOptions) -> Result<SttSession, SpeechError>;
}

/// One message of a chat conversation (OpenAI chat `messages[]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` (the callee) or `assistant` (our agent).
    pub role: String,
    pub content: String,
}

/// A reply request to the language model.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub model: Option<String>,
    /// System prompt first, then the turns so far.
    pub messages: Vec<ChatMessage>,
}

/// A language model that streams its reply as text deltas.
#[async_trait]
pub trait Llm: Send + Sync + 'static {
    /// The reply's text, delta by delta; the stream ends when the reply is complete.
    async fn reply(&self, request: &ChatRequest) -> Result<BoxStream<'static, Result<String, SpeechError>>, SpeechError>;
}

/// Options for one synthesis.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TtsOptions {
    /// Hz, e.g. 8000.
    pub sample_rate: u32,
    pub voice: Option<String>,
    pub model: Option<String>,
    pub language: String,
}

/// Text-to-speech that streams audio as it is made.
#[async_trait]
pub trait Tts: Send + Sync + 'static {
    /// Audio for `text`: 16-bit PCM at `options.sample_rate`, in chunks of any size.
    async fn synthesize(&self, text: &str, options: &TtsOptions) -> Result<BoxStream<'static, Result<Vec<i16>, SpeechError>>, SpeechError>;
}
