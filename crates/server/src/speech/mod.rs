//! Speech-service clients behind `dialtone_voice`'s traits ([`Stt`], [`Llm`], [`Tts`]):
//! Deepgram streaming speech-to-text, any OpenAI-compatible chat endpoint (OpenAI, Ollama,
//! llama.cpp, vLLM…) and OpenAI-compatible transcription, ElevenLabs streaming
//! text-to-speech, local text-to-speech through Debian's `flite`, and the simulator's
//! services reached through the same clients (`sim`).
//!
//! [`SpeechClients`] builds a client for an agent's [`SpeechService`] from the `[speech]`
//! config section ([`SpeechConfig`]).

pub mod deepgram;
pub mod elevenlabs;
pub mod flite;
pub mod openai;

use std::sync::Arc;
use std::time::Duration;

use dialtone_core::SpeechService;
use dialtone_voice::speech::{Llm, SpeechError, Stt, Tts};
use secrecy::SecretString;

pub use crate::config::SpeechConfig;

/// Builds speech clients for agents. Cheap to clone; one HTTP connection pool for all.
#[derive(Clone)]
pub struct SpeechClients {
    config: SpeechConfig,
    http: reqwest::Client,
}

/// Key the simulator's speech services are sent when `speech.sim_api_key` is unset (the
/// simulator accepts any key unless it was started with one).
const SIM_DEFAULT_KEY: &str = "sim";

impl SpeechClients {
    /// Errors: the HTTP client cannot be built (no TLS backend).
    pub fn new(config: &SpeechConfig) -> Result<Self, SpeechError> {
        // No overall timeout: replies stream. A stalled stream is caught by the read timeout.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| error("speech", format!("cannot build the HTTP client: {e}"), false))?;
        Ok(Self { config: config.clone(), http })
    }

    fn sim_key(&self) -> SecretString {
        self.config.sim_api_key.clone().unwrap_or_else(|| SIM_DEFAULT_KEY.into())
    }

    /// The speech-to-text client for `service.provider`: `deepgram` (needs
    /// `speech.deepgram_api_key`), `openai` (OpenAI-compatible transcription at
    /// `service.base_url` or `speech.openai_base_url`), `sim` (the simulator's Deepgram-compatible
    /// service at `speech.sim_url`). Errors (not retryable): an unknown provider or a missing key.
    pub fn stt(&self, service: &SpeechService) -> Result<Arc<dyn Stt>, SpeechError> {
        let c = &self.config;
        match service.provider.as_str() {
            "deepgram" => {
                let key = c.deepgram_api_key.clone().ok_or_else(|| missing("deepgram", "deepgram_api_key"))?;
                let url = service.base_url.as_deref().unwrap_or(&c.deepgram_url);
                Ok(Arc::new(deepgram::DeepgramStt::new(url, Some(key)).with_model(service.model.clone())))
            }
            "openai" => {
                let base = service.base_url.as_deref().unwrap_or(&c.openai_base_url);
                let key = self.openai_key(base)?;
                Ok(Arc::new(openai::OpenAiTranscription::new(self.http.clone(), base, key).with_model(service.model.clone())))
            }
            "sim" => {
                let url = service.base_url.as_deref().unwrap_or(&c.sim_url);
                Ok(Arc::new(deepgram::DeepgramStt::new(url, Some(self.sim_key())).with_model(service.model.clone())))
            }
            other => Err(unknown("stt", other, "deepgram, openai, sim")),
        }
    }

    /// The language model for `service.provider`: `openai` (any OpenAI-compatible chat
    /// endpoint at `service.base_url` or `speech.openai_base_url`; the key may be absent for a
    /// local server), `sim` (the simulator's scripted model at `speech.sim_url` + `/v1`).
    pub fn llm(&self, service: &SpeechService) -> Result<Arc<dyn Llm>, SpeechError> {
        let c = &self.config;
        match service.provider.as_str() {
            "openai" => {
                let base = service.base_url.as_deref().unwrap_or(&c.openai_base_url);
                let key = self.openai_key(base)?;
                Ok(Arc::new(openai::OpenAiChat::new(self.http.clone(), base, key).with_model(service.model.clone())))
            }
            "sim" => {
                let base = match &service.base_url {
                    Some(base) => base.clone(),
                    None => format!("{}/v1", c.sim_url.trim_end_matches('/')),
                };
                Ok(Arc::new(openai::OpenAiChat::new(self.http.clone(), &base, Some(self.sim_key())).with_model(service.model.clone())))
            }
            other => Err(unknown("llm", other, "openai, sim")),
        }
    }

    /// The text-to-speech client for `service.provider`: `elevenlabs` (needs
    /// `speech.elevenlabs_api_key`; `service.voice` is the voice id), `flite` (local, the
    /// program at `speech.flite_path`; `service.voice` e.g. `slt`, `kal`), `sim` (the
    /// simulator's ElevenLabs-compatible service at `speech.sim_url`).
    pub fn tts(&self, service: &SpeechService) -> Result<Arc<dyn Tts>, SpeechError> {
        let c = &self.config;
        match service.provider.as_str() {
            "elevenlabs" => {
                let key = c.elevenlabs_api_key.clone().ok_or_else(|| missing("elevenlabs", "elevenlabs_api_key"))?;
                let url = service.base_url.as_deref().unwrap_or(&c.elevenlabs_url);
                Ok(Arc::new(elevenlabs::ElevenLabsTts::new(url, Some(key)).with_voice(service.voice.clone()).with_model(service.model.clone())))
            }
            "flite" => Ok(Arc::new(flite::FliteTts::new(&c.flite_path).with_voice(service.voice.clone()))),
            "sim" => {
                let url = service.base_url.as_deref().unwrap_or(&c.sim_url);
                Ok(Arc::new(elevenlabs::ElevenLabsTts::new(url, Some(self.sim_key())).with_voice(service.voice.clone()).with_model(service.model.clone())))
            }
            other => Err(unknown("tts", other, "elevenlabs, flite, sim")),
        }
    }

    /// OpenAI's own API needs a key; a local compatible server usually does not.
    fn openai_key(&self, base: &str) -> Result<Option<SecretString>, SpeechError> {
        match &self.config.openai_api_key {
            Some(key) => Ok(Some(key.clone())),
            None if base.contains("api.openai.com") => Err(missing("openai", "openai_api_key")),
            None => Ok(None),
        }
    }
}

pub(crate) fn error(service: &'static str, message: impl Into<String>, retryable: bool) -> SpeechError {
    SpeechError { service, message: message.into(), retryable }
}

fn missing(service: &'static str, key: &str) -> SpeechError {
    error(service, format!("no API key: set speech.{key} in the config or {}", crate::config::speech_env_name(key)), false)
}

fn unknown(kind: &str, provider: &str, known: &str) -> SpeechError {
    error("speech", format!("{kind}.provider: `{provider}` is not one of {known}"), false)
}

/// Whether an HTTP status is worth retrying later (429, 5xx).
pub(crate) fn retryable_status(status: u16) -> bool {
    status == 429 || status >= 500
}

/// `http(s)://` → `ws(s)://`; `ws(s)://` stays.
pub(crate) fn ws_base(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if let Some(rest) = url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        url.to_owned()
    }
}

/// A WebSocket handshake failure as a [`SpeechError`]: the HTTP status and body when the
/// service refused the upgrade (401 on a wrong key), else the I/O error (retryable).
pub(crate) fn ws_error(service: &'static str, e: tokio_tungstenite::tungstenite::Error) -> SpeechError {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        Error::Http(response) => {
            let status = response.status();
            let body = response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default().chars().take(300).collect::<String>();
            error(service, format!("the service refused the connection: HTTP {status} {body}"), retryable_status(status.as_u16()))
        }
        other => error(service, format!("WebSocket: {other}"), true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(provider: &str) -> SpeechService {
        SpeechService { provider: provider.into(), ..SpeechService::default() }
    }

    #[test]
    fn the_factory_names_unknown_providers_and_missing_keys() {
        let clients = SpeechClients::new(&SpeechConfig::default()).unwrap();
        assert!(clients.stt(&service("sim")).is_ok() && clients.llm(&service("sim")).is_ok() && clients.tts(&service("sim")).is_ok());
        assert!(clients.tts(&service("flite")).is_ok());
        let e = clients.stt(&service("deepgram")).err().unwrap();
        assert!(e.message.contains("DIALTONE_SPEECH_DEEPGRAM_API_KEY") && !e.retryable, "{e}");
        let e = clients.llm(&service("openai")).err().unwrap();
        assert!(e.message.contains("openai_api_key"), "OpenAI's own API needs a key: {e}");
        let local = SpeechService { base_url: Some("http://127.0.0.1:11434/v1".into()), ..service("openai") };
        assert!(clients.llm(&local).is_ok(), "a local server needs none");
        let e = clients.tts(&service("polly")).err().unwrap();
        assert!(e.message.contains("polly") && e.message.contains("elevenlabs, flite, sim"), "{e}");
        assert!(clients.tts(&service("elevenlabs")).is_err());
        assert_eq!(ws_base("https://api.deepgram.com/"), "wss://api.deepgram.com");
        assert_eq!(ws_base("http://127.0.0.1:8090"), "ws://127.0.0.1:8090");
    }
}
