//! Deepgram streaming speech-to-text (live transcription over WebSocket).
//!
//! Protocol (developers.deepgram.com: live streaming, endpointing, keep-alive, finalize,
//! close stream): connect to `{url}/v1/listen?model=…&language=…&encoding=linear16&
//! sample_rate=8000&interim_results=true&endpointing=300&utterance_end_ms=1000&
//! vad_events=true` with `Authorization: Token <key>`; send audio as binary frames of 16-bit
//! little-endian PCM, `{"type":"KeepAlive"}` when no audio was sent for a while (Deepgram
//! closes a stream after 10 s without either, NET-0001), `{"type":"Finalize"}` to flush the
//! utterance, `{"type":"CloseStream"}` to end. It answers `Results` messages: `is_final:
//! false` → [`SttEvent::Partial`], `is_final: true` → [`SttEvent::Final`] with `speech_final`
//! (endpointing judged the utterance over) or `from_finalize` (the answer to `Finalize`).
//! `SpeechStarted`, `UtteranceEnd` and `Metadata` are not reported.

use std::time::Duration;

use async_trait::async_trait;
use dialtone_voice::speech::{SpeechError, Stt, SttEvent, SttInput, SttOptions, SttSession};
use futures::{SinkExt, StreamExt};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use super::{error, ws_base, ws_error};

const SERVICE: &str = "deepgram";
/// Model when neither the session nor the agent names one.
pub const DEFAULT_MODEL: &str = "nova-3";
/// KeepAlive after this long without audio (Deepgram advises every 3–5 s; it closes at 10 s).
pub const KEEPALIVE: Duration = Duration::from_secs(4);
/// Endpointing: silence (ms) after speech before Deepgram reports `speech_final`.
pub const ENDPOINTING_MS: u32 = 300;
/// `utterance_end_ms`: gap between words (ms) that ends an utterance, for noisy lines.
pub const UTTERANCE_END_MS: u32 = 1000;
/// How long to wait for Deepgram's last results after `CloseStream`.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A Deepgram (or Deepgram-compatible: the simulator's) live-transcription client.
#[derive(Clone)]
pub struct DeepgramStt {
    url: String,
    key: Option<SecretString>,
    model: Option<String>,
    keepalive: Duration,
}

impl DeepgramStt {
    /// `url`: the service's address without a path, `wss://api.deepgram.com` (http(s) is
    /// turned into ws(s)). `key`: `None` sends no `Authorization` (a private deployment).
    pub fn new(url: &str, key: Option<SecretString>) -> Self {
        Self { url: ws_base(url), key, model: None, keepalive: KEEPALIVE }
    }

    /// The model when the session's options name none (else [`DEFAULT_MODEL`]).
    pub fn with_model(mut self, model: Option<String>) -> Self {
        self.model = model;
        self
    }

    /// How long without audio before a KeepAlive is sent (default [`KEEPALIVE`]).
    pub fn with_keepalive(mut self, every: Duration) -> Self {
        self.keepalive = every;
        self
    }

    fn listen_url(&self, options: &SttOptions) -> String {
        let model = options.model.as_deref().or(self.model.as_deref()).unwrap_or(DEFAULT_MODEL);
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("model", model)
            .append_pair("language", &options.language)
            .append_pair("encoding", "linear16")
            .append_pair("sample_rate", &options.sample_rate.to_string())
            .append_pair("channels", "1")
            .append_pair("interim_results", "true")
            .append_pair("endpointing", &ENDPOINTING_MS.to_string())
            .append_pair("utterance_end_ms", &UTTERANCE_END_MS.to_string())
            .append_pair("vad_events", "true")
            .append_pair("punctuate", "true")
            .finish();
        format!("{}/v1/listen?{query}", self.url)
    }
}

#[async_trait]
impl Stt for DeepgramStt {
    /// Errors: the service refused the upgrade (HTTP status and body; 401 for a wrong key, not
    /// retryable), or could not be reached (retryable).
    async fn open(&self, options: &SttOptions) -> Result<SttSession, SpeechError> {
        let mut request = self.listen_url(options).into_client_request().map_err(|e| error(SERVICE, format!("bad URL {}: {e}", self.url), false))?;
        if let Some(key) = &self.key {
            let value = HeaderValue::from_str(&format!("Token {}", key.expose_secret()))
                .map_err(|_| error(SERVICE, "the API key is not a valid header value", false))?;
            request.headers_mut().insert("authorization", value);
        }
        let (socket, _) = tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(request))
            .await
            .map_err(|_| error(SERVICE, format!("no connection to {} within {CONNECT_TIMEOUT:?}", self.url), true))?
            .map_err(|e| ws_error(SERVICE, e))?;
        let (audio_tx, audio_rx) = mpsc::channel(64);
        let (event_tx, event_rx) = mpsc::channel(64);
        tokio::spawn(run(socket, audio_rx, event_tx, self.keepalive));
        Ok(SttSession { audio: audio_tx, events: event_rx })
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Pumps audio out and results in until Deepgram closes, the audio sender is dropped and the
/// last results are in, or nobody listens to the events any more.
async fn run(socket: Socket, mut audio: mpsc::Receiver<SttInput>, events: mpsc::Sender<Result<SttEvent, SpeechError>>, keepalive: Duration) {
    let (mut sink, mut stream) = socket.split();
    let control = |kind: &str| Message::Text(format!("{{\"type\":\"{kind}\"}}").into());
    let mut closing: Option<Instant> = None;
    let idle = tokio::time::sleep(keepalive);
    tokio::pin!(idle);
    loop {
        let close_wait = async {
            match closing {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            input = audio.recv(), if closing.is_none() => {
                let sent = match input {
                    // An empty binary message would close the stream (Deepgram's legacy CloseStream).
                    Some(SttInput::Audio(samples)) if samples.is_empty() => Ok(()),
                    Some(SttInput::Audio(samples)) => {
                        idle.as_mut().reset(Instant::now() + keepalive);
                        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
                        sink.send(Message::Binary(bytes.into())).await
                    }
                    Some(SttInput::Finalize) => sink.send(control("Finalize")).await,
                    None => {
                        closing = Some(Instant::now() + CLOSE_WAIT);
                        sink.send(control("CloseStream")).await
                    }
                };
                if let Err(e) = sent {
                    let _ = events.send(Err(error(SERVICE, format!("sending: {e}"), true))).await;
                    return;
                }
            }
            _ = &mut idle, if closing.is_none() => {
                idle.as_mut().reset(Instant::now() + keepalive);
                if sink.send(control("KeepAlive")).await.is_err() {
                    // The read side reports why.
                    continue;
                }
            }
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    match parse(text.as_str()) {
                        Ok(Some(event)) => {
                            if events.send(Ok(event)).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            let _ = events.send(Err(e)).await;
                            return;
                        }
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let normal = frame.is_none() || frame.as_ref().is_some_and(|f| u16::from(f.code) == 1000);
                    if closing.is_none() || !normal {
                        let why = frame.map(|f| format!("{} {}", u16::from(f.code), f.reason)).unwrap_or_default();
                        let _ = events.send(Err(error(SERVICE, format!("the service closed the stream: {why}"), true))).await;
                    }
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    if closing.is_none() {
                        let _ = events.send(Err(error(SERVICE, format!("receiving: {e}"), true))).await;
                    }
                    return;
                }
                None => return,
            },
            _ = close_wait => return,
            _ = events.closed() => return,
        }
    }
}

/// One Deepgram message → what to report. `Ok(None)`: nothing (other message types, empty
/// interim results, empty finals that answer nothing). Errors: an `Error` message, or JSON
/// that is not a Deepgram message (not retryable).
fn parse(text: &str) -> Result<Option<SttEvent>, SpeechError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| error(SERVICE, format!("a message that is not JSON: {e}"), false))?;
    match value["type"].as_str() {
        Some("Results") => {
            let transcript = value["channel"]["alternatives"][0]["transcript"].as_str().unwrap_or("").trim().to_owned();
            let is_final = value["is_final"].as_bool().unwrap_or(false);
            let from_finalize = value["from_finalize"].as_bool().unwrap_or(false);
            let speech_final = value["speech_final"].as_bool().unwrap_or(false) || from_finalize;
            if !is_final {
                return Ok((!transcript.is_empty()).then_some(SttEvent::Partial { text: transcript }));
            }
            // An empty final settles nothing, unless it answers our Finalize: "nothing heard".
            if transcript.is_empty() && !from_finalize {
                return Ok(None);
            }
            Ok(Some(SttEvent::Final { text: transcript, speech_final }))
        }
        Some("Error") => {
            let message = value["description"].as_str().or(value["message"].as_str()).unwrap_or("unknown error");
            Err(error(SERVICE, format!("{message} ({})", value["variant"].as_str().unwrap_or("-")), false))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_become_partial_and_final_events_and_the_rest_is_ignored() {
        let results = |text: &str, is_final: bool, speech_final: bool, from_finalize: bool| {
            serde_json::json!({"type": "Results", "is_final": is_final, "speech_final": speech_final, "from_finalize": from_finalize,
                "channel": {"alternatives": [{"transcript": text}]}})
            .to_string()
        };
        assert_eq!(parse(&results("hel", false, false, false)).unwrap(), Some(SttEvent::Partial { text: "hel".into() }));
        assert_eq!(parse(&results("hello", true, true, false)).unwrap(), Some(SttEvent::Final { text: "hello".into(), speech_final: true }));
        assert_eq!(parse(&results("hello", true, false, false)).unwrap(), Some(SttEvent::Final { text: "hello".into(), speech_final: false }));
        assert_eq!(parse(&results("", true, false, true)).unwrap(), Some(SttEvent::Final { text: "".into(), speech_final: true }));
        assert_eq!(parse(&results("", true, true, false)).unwrap(), None);
        assert_eq!(parse(&results("", false, false, false)).unwrap(), None);
        assert_eq!(parse(r#"{"type":"UtteranceEnd"}"#).unwrap(), None);
        assert!(parse(r#"{"type":"Error","description":"bad audio","variant":"DATA-0000"}"#).unwrap_err().message.contains("bad audio"));
        assert!(parse("not json").is_err());
    }
}
