//! OpenAI-compatible chat completions (streamed) and transcription.
//!
//! Any server that speaks OpenAI's API works: OpenAI itself, Ollama
//! (`http://127.0.0.1:11434/v1`), llama.cpp's `llama-server` (`http://127.0.0.1:8080/v1`),
//! vLLM, the simulator. Shapes from the OpenAI API reference:
//! - chat: `POST {base}/chat/completions` `{model, messages, stream: true}` → server-sent
//!   events, each `data: {"choices":[{"delta":{"content":"…"},"finish_reason":…}]}`, ending
//!   `data: [DONE]`; a server that ignores `stream` and answers one `chat.completion` JSON is
//!   read as a single delta.
//! - transcription: `POST {base}/audio/transcriptions`, multipart `file` (here a 16-bit PCM
//!   mono WAV), `model`, `language` (ISO 639-1), `response_format=json` → `{"text"}`.
//!
//! `Authorization: Bearer <key>` when a key is set. Errors carry the service's
//! `error.message`; 429 and 5xx are retryable.

use std::collections::VecDeque;

use async_trait::async_trait;
use dialtone_voice::speech::{ChatRequest, Llm, SpeechError, Stt, SttEvent, SttInput, SttOptions, SttSession};
use futures::stream::BoxStream;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::mpsc;

use super::{error, retryable_status};

const SERVICE: &str = "openai";
/// Chat model when neither the request nor the agent names one.
pub const DEFAULT_CHAT_MODEL: &str = "gpt-4o-mini";
/// Transcription model when neither the session nor the agent names one.
pub const DEFAULT_TRANSCRIPTION_MODEL: &str = "whisper-1";
/// Audio buffered for one transcription at most (s); older audio is dropped.
pub const MAX_BUFFER_SECS: usize = 120;

fn authorize(request: reqwest::RequestBuilder, key: &Option<SecretString>) -> reqwest::RequestBuilder {
    match key {
        Some(key) => request.bearer_auth(key.expose_secret()),
        None => request,
    }
}

fn transport(e: reqwest::Error) -> SpeechError {
    error(SERVICE, format!("request failed: {e}"), true)
}

/// A non-2xx answer as an error, with the service's `error.message` when it sent one.
async fn refused(response: reqwest::Response) -> SpeechError {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().or(v["error"].as_str()).map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(300).collect());
    error(SERVICE, format!("HTTP {status}: {message}"), retryable_status(status.as_u16()))
}

/// Streaming chat against an OpenAI-compatible endpoint.
#[derive(Clone)]
pub struct OpenAiChat {
    http: reqwest::Client,
    base: String,
    key: Option<SecretString>,
    model: Option<String>,
}

impl OpenAiChat {
    /// `base`: the API base up to and including `/v1`, e.g. `https://api.openai.com/v1`.
    /// `key`: `None` sends no `Authorization` (local servers).
    pub fn new(http: reqwest::Client, base: &str, key: Option<SecretString>) -> Self {
        Self { http, base: base.trim_end_matches('/').to_owned(), key, model: None }
    }

    /// The model when the request names none (else [`DEFAULT_CHAT_MODEL`]).
    pub fn with_model(mut self, model: Option<String>) -> Self {
        self.model = model;
        self
    }
}

#[async_trait]
impl Llm for OpenAiChat {
    /// Errors: the service could not be reached (retryable), refused the request (its
    /// `error.message`; 429/5xx retryable), or broke the stream (an item of the stream).
    async fn reply(&self, request: &ChatRequest) -> Result<BoxStream<'static, Result<String, SpeechError>>, SpeechError> {
        let model = request.model.as_deref().or(self.model.as_deref()).unwrap_or(DEFAULT_CHAT_MODEL);
        let body = serde_json::json!({"model": model, "messages": request.messages, "stream": true});
        let response = authorize(self.http.post(format!("{}/chat/completions", self.base)), &self.key).json(&body).send().await.map_err(transport)?;
        if !response.status().is_success() {
            return Err(refused(response).await);
        }
        let is_json = response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json"));
        if is_json {
            let value: serde_json::Value = response.json().await.map_err(|e| error(SERVICE, format!("a reply that is not JSON: {e}"), false))?;
            let content = value["choices"][0]["message"]["content"].as_str().unwrap_or("").to_owned();
            return Ok(Box::pin(futures::stream::iter([Ok(content)])));
        }
        let state = Sse { response, buffer: Vec::new(), queue: VecDeque::new(), eof: false, done: false };
        Ok(Box::pin(futures::stream::unfold(state, |mut state| async move {
            let item = state.next().await?;
            Some((item, state))
        })))
    }
}

/// Server-sent events of a streamed chat completion, read chunk by chunk.
struct Sse {
    response: reqwest::Response,
    buffer: Vec<u8>,
    queue: VecDeque<Result<String, SpeechError>>,
    eof: bool,
    done: bool,
}

impl Sse {
    async fn next(&mut self) -> Option<Result<String, SpeechError>> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            if let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                self.line(String::from_utf8_lossy(&line).trim());
                continue;
            }
            if self.eof {
                // The stream ended without `[DONE]`: what came is the reply.
                self.done = true;
                continue;
            }
            match self.response.chunk().await {
                Ok(Some(bytes)) => self.buffer.extend_from_slice(&bytes),
                Ok(None) => {
                    self.eof = true;
                    if !self.buffer.is_empty() {
                        self.buffer.push(b'\n');
                    }
                }
                Err(e) => {
                    self.queue.push_back(Err(error(SERVICE, format!("the reply stream broke: {e}"), true)));
                    self.done = true;
                }
            }
        }
    }

    /// One SSE line: `data: {...}` carries a chunk, `data: [DONE]` ends; comments, `event:`
    /// and blank lines carry nothing here.
    fn line(&mut self, line: &str) {
        let Some(data) = line.strip_prefix("data:").map(str::trim) else { return };
        if data == "[DONE]" {
            self.done = true;
            return;
        }
        match serde_json::from_str::<serde_json::Value>(data) {
            Ok(value) if value.get("error").is_some() => {
                let message = value["error"]["message"].as_str().or(value["error"].as_str()).unwrap_or("unknown error").to_owned();
                self.queue.push_back(Err(error(SERVICE, message, false)));
                self.done = true;
            }
            Ok(value) => {
                if let Some(content) = value["choices"][0]["delta"]["content"].as_str().filter(|c| !c.is_empty()) {
                    self.queue.push_back(Ok(content.to_owned()));
                }
            }
            Err(e) => {
                self.queue.push_back(Err(error(SERVICE, format!("an event that is not JSON: {e}"), false)));
                self.done = true;
            }
        }
    }
}

/// Speech-to-text through an OpenAI-compatible transcription endpoint: a batch service, so
/// audio is buffered and sent on [`SttInput::Finalize`], answered by one
/// `Final { speech_final: true }`; no partial results.
#[derive(Clone)]
pub struct OpenAiTranscription {
    http: reqwest::Client,
    base: String,
    key: Option<SecretString>,
    model: Option<String>,
}

impl OpenAiTranscription {
    /// `base` and `key` as for [`OpenAiChat::new`].
    pub fn new(http: reqwest::Client, base: &str, key: Option<SecretString>) -> Self {
        Self { http, base: base.trim_end_matches('/').to_owned(), key, model: None }
    }

    /// The model when the session names none (else [`DEFAULT_TRANSCRIPTION_MODEL`]).
    pub fn with_model(mut self, model: Option<String>) -> Self {
        self.model = model;
        self
    }

    async fn transcribe(&self, samples: &[i16], options: &SttOptions, model: &str) -> Result<String, SpeechError> {
        let wav = wav(samples, options.sample_rate)?;
        let file = reqwest::multipart::Part::bytes(wav).file_name("audio.wav").mime_str("audio/wav").map_err(|e| error(SERVICE, e.to_string(), false))?;
        let mut form = reqwest::multipart::Form::new().part("file", file).text("model", model.to_owned()).text("response_format", "json");
        // ISO 639-1 from the BCP 47 tag: `en-US` → `en`.
        if let Some(language) = options.language.split(['-', '_']).next().filter(|l| !l.is_empty()) {
            form = form.text("language", language.to_ascii_lowercase());
        }
        let response = authorize(self.http.post(format!("{}/audio/transcriptions", self.base)), &self.key).multipart(form).send().await.map_err(transport)?;
        if !response.status().is_success() {
            return Err(refused(response).await);
        }
        let value: serde_json::Value = response.json().await.map_err(|e| error(SERVICE, format!("a transcription that is not JSON: {e}"), false))?;
        value["text"].as_str().map(|t| t.trim().to_owned()).ok_or_else(|| error(SERVICE, "the transcription has no `text`", false))
    }
}

/// 16-bit PCM mono WAV (RIFF) of `samples` at `rate` Hz.
fn wav(samples: &[i16], rate: u32) -> Result<Vec<u8>, SpeechError> {
    let spec = hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut out = std::io::Cursor::new(Vec::with_capacity(44 + samples.len() * 2));
    let fail = |e: hound::Error| error(SERVICE, format!("cannot write WAV: {e}"), false);
    let mut writer = hound::WavWriter::new(&mut out, spec).map_err(fail)?;
    for &s in samples {
        writer.write_sample(s).map_err(fail)?;
    }
    writer.finalize().map_err(fail)?;
    Ok(out.into_inner())
}

#[async_trait]
impl Stt for OpenAiTranscription {
    /// Opens nothing remote: the session is local until the first `Finalize`. Transcription
    /// errors arrive as events.
    async fn open(&self, options: &SttOptions) -> Result<SttSession, SpeechError> {
        let (audio_tx, mut audio_rx) = mpsc::channel::<SttInput>(64);
        let (event_tx, event_rx) = mpsc::channel(16);
        let client = self.clone();
        let options = options.clone();
        let model = options.model.clone().or_else(|| self.model.clone()).unwrap_or_else(|| DEFAULT_TRANSCRIPTION_MODEL.to_owned());
        let cap = MAX_BUFFER_SECS * options.sample_rate as usize;
        tokio::spawn(async move {
            let mut buffer: Vec<i16> = Vec::new();
            while let Some(input) = audio_rx.recv().await {
                match input {
                    SttInput::Audio(samples) => {
                        buffer.extend_from_slice(&samples);
                        if buffer.len() > cap {
                            buffer.drain(..buffer.len() - cap);
                        }
                    }
                    SttInput::Finalize => {
                        let event = if buffer.is_empty() {
                            Ok(SttEvent::Final { text: String::new(), speech_final: true })
                        } else {
                            client.transcribe(&buffer, &options, &model).await.map(|text| SttEvent::Final { text, speech_final: true })
                        };
                        buffer.clear();
                        if event_tx.send(event).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Ok(SttSession { audio: audio_tx, events: event_rx })
    }
}
