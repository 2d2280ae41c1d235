//! ElevenLabs streaming text-to-speech (WebSocket `stream-input`).
//!
//! Protocol (elevenlabs.io/docs/api-reference/websocket): connect to
//! `{url}/v1/text-to-speech/{voice_id}/stream-input?model_id=…&output_format=pcm_8000` with
//! header `xi-api-key`; send `{"text":" "}` (opens the stream), then `{"text":"<text> ",
//! "flush":true}`, then `{"text":""}` (ends it); receive `{"audio": base64, "isFinal": …}`
//! messages, the last with `isFinal: true`. `pcm_<rate>` is 16-bit little-endian PCM mono,
//! so no decoding is needed; rates ElevenLabs makes: 8000, 16000, 22050, 24000, 44100 Hz.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use dialtone_voice::speech::{SpeechError, Tts, TtsOptions};
use futures::stream::BoxStream;
use futures::{SinkExt, StreamExt};
use secrecy::{ExposeSecret, SecretString};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use super::{error, ws_base, ws_error};

const SERVICE: &str = "elevenlabs";
/// Voice when neither the request nor the agent names one (ElevenLabs' premade "Rachel").
pub const DEFAULT_VOICE: &str = "21m00Tcm4TlvDq8ikWAM";
/// Model when neither the request nor the agent names one (low latency).
pub const DEFAULT_MODEL: &str = "eleven_flash_v2_5";
/// PCM rates ElevenLabs makes (Hz).
pub const RATES: [u32; 5] = [8000, 16000, 22050, 24000, 44100];
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An ElevenLabs (or ElevenLabs-compatible: the simulator's) streaming TTS client.
#[derive(Clone)]
pub struct ElevenLabsTts {
    url: String,
    key: Option<SecretString>,
    voice: Option<String>,
    model: Option<String>,
}

impl ElevenLabsTts {
    /// `url`: the service's address without a path, `wss://api.elevenlabs.io`.
    pub fn new(url: &str, key: Option<SecretString>) -> Self {
        Self { url: ws_base(url), key, voice: None, model: None }
    }

    /// Voice id when the request names none (else [`DEFAULT_VOICE`]).
    pub fn with_voice(mut self, voice: Option<String>) -> Self {
        self.voice = voice;
        self
    }

    /// Model id when the request names none (else [`DEFAULT_MODEL`]).
    pub fn with_model(mut self, model: Option<String>) -> Self {
        self.model = model;
        self
    }
}

#[async_trait]
impl Tts for ElevenLabsTts {
    /// Errors: a sample rate ElevenLabs does not make (see [`RATES`]), the service refused
    /// the upgrade (401 for a wrong key) or could not be reached; later errors (an error
    /// message, a stream closed before `isFinal`) are items of the stream.
    async fn synthesize(&self, text: &str, options: &TtsOptions) -> Result<BoxStream<'static, Result<Vec<i16>, SpeechError>>, SpeechError> {
        if !RATES.contains(&options.sample_rate) {
            return Err(error(SERVICE, format!("sample_rate: {} Hz is not one ElevenLabs makes ({RATES:?})", options.sample_rate), false));
        }
        let voice = options.voice.as_deref().or(self.voice.as_deref()).unwrap_or(DEFAULT_VOICE);
        let model = options.model.as_deref().or(self.model.as_deref()).unwrap_or(DEFAULT_MODEL);
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("model_id", model)
            .append_pair("output_format", &format!("pcm_{}", options.sample_rate))
            .finish();
        let voice_path: String = form_urlencoded::byte_serialize(voice.as_bytes()).collect();
        let url = format!("{}/v1/text-to-speech/{voice_path}/stream-input?{query}", self.url);
        let mut request = url.into_client_request().map_err(|e| error(SERVICE, format!("bad URL {}: {e}", self.url), false))?;
        if let Some(key) = &self.key {
            let value = HeaderValue::from_str(key.expose_secret()).map_err(|_| error(SERVICE, "the API key is not a valid header value", false))?;
            request.headers_mut().insert("xi-api-key", value);
        }
        let (mut socket, _) = tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(request))
            .await
            .map_err(|_| error(SERVICE, format!("no connection to {} within {CONNECT_TIMEOUT:?}", self.url), true))?
            .map_err(|e| ws_error(SERVICE, e))?;
        // ElevenLabs wants each text chunk to end with a space.
        let text = format!("{} ", text.trim_end());
        let messages = [serde_json::json!({"text": " "}), serde_json::json!({"text": text, "flush": true}), serde_json::json!({"text": ""})];
        for message in messages {
            socket.send(Message::Text(message.to_string().into())).await.map_err(|e| error(SERVICE, format!("sending: {e}"), true))?;
        }
        let state = Reader { socket, carry: None, done: false };
        Ok(Box::pin(futures::stream::unfold(state, |mut state| async move {
            let item = state.next().await?;
            Some((item, state))
        })))
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Reader {
    socket: Socket,
    /// A sample's first byte when a message ended mid-sample.
    carry: Option<u8>,
    done: bool,
}

impl Reader {
    async fn next(&mut self) -> Option<Result<Vec<i16>, SpeechError>> {
        while !self.done {
            let message = match self.socket.next().await {
                Some(Ok(message)) => message,
                Some(Err(e)) => return self.fail(format!("receiving: {e}"), true),
                None => return self.fail("the stream ended before the last audio (isFinal)".into(), true),
            };
            let text = match message {
                Message::Text(text) => text,
                Message::Close(frame) => {
                    // 1008 (policy violation): a wrong key or a bad message, which a retry will not mend.
                    let policy = frame.as_ref().is_some_and(|f| u16::from(f.code) == 1008);
                    let why = frame.map(|f| format!("{} {}", u16::from(f.code), f.reason)).unwrap_or_default();
                    return self.fail(format!("the service closed the stream before the last audio: {why}"), !policy);
                }
                _ => continue,
            };
            let value: serde_json::Value = match serde_json::from_str(text.as_str()) {
                Ok(value) => value,
                Err(e) => return self.fail(format!("a message that is not JSON: {e}"), false),
            };
            if value.get("error").is_some() || (value.get("message").is_some() && value.get("audio").is_none()) {
                let message = value["message"].as_str().or(value["error"].as_str()).unwrap_or("unknown error").to_owned();
                return self.fail(message, false);
            }
            if value["isFinal"].as_bool() == Some(true) {
                self.done = true;
                let _ = self.socket.close(None).await;
            }
            let Some(audio) = value["audio"].as_str().filter(|a| !a.is_empty()) else { continue };
            let bytes = match base64::engine::general_purpose::STANDARD.decode(audio) {
                Ok(bytes) => bytes,
                Err(e) => return self.fail(format!("audio that is not base64: {e}"), false),
            };
            let mut data: Vec<u8> = self.carry.take().into_iter().collect();
            data.extend_from_slice(&bytes);
            if data.len() % 2 == 1 {
                self.carry = data.pop();
            }
            let samples: Vec<i16> = data.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
            if !samples.is_empty() {
                return Some(Ok(samples));
            }
        }
        None
    }

    fn fail(&mut self, message: String, retryable: bool) -> Option<Result<Vec<i16>, SpeechError>> {
        self.done = true;
        Some(Err(error(SERVICE, message, retryable)))
    }
}
