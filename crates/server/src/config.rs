//! Configuration: built-in defaults, then a TOML file (`dialtone.toml` or `--config`),
//! then `DIALTONE_*` environment variables (`DIALTONE_VAPI_API_KEY` sets `vapi_api_key`).
//! Validated once at start.

use dialtone_core::ProviderKind;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};
use std::path::Path;
use std::time::Duration;

/// How log lines are written: `text` (human) or `json` (one object per line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Every secret (API keys, tokens, webhook secrets, the database URL, which may hold a
/// password) is a [`SecretString`]: `{:?}` of a config shows `[REDACTED]`, and a secret is
/// exposed only where it is sent. Serializing exposes them (figment reads the defaults
/// back through serde); never log a serialized config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `sqlite://path/to/file.db` (created if missing) or `postgres://user:password@host/db`.
    #[serde(serialize_with = "expose")]
    pub database_url: SecretString,
    /// Address the HTTP server (API, webhooks, metrics) listens on.
    pub listen: String,
    /// Dispatcher tick in milliseconds; notifications wake it sooner.
    pub tick_ms: u64,
    /// A call with no event for this long is reconciled with the provider.
    pub stuck_timeout_secs: u64,
    /// A call still live this long after the provider accepted it is hung up and ends as
    /// `timeout` (a campaign's own `max_call_duration_secs` overrides it). Default one hour.
    pub max_call_duration_secs: u64,
    pub reaper_interval_secs: u64,
    /// Delays between placement tries on 429/503/504/timeouts.
    pub placement_backoff_ms: Vec<u64>,
    pub vapi_base_url: String,
    #[serde(serialize_with = "expose_option")]
    pub vapi_api_key: Option<SecretString>,
    pub vapi_timeout_ms: u64,
    /// Shared secret Vapi sends (`Authorization: Bearer` or `X-Vapi-Secret`).
    #[serde(serialize_with = "expose_option")]
    pub vapi_webhook_secret: Option<SecretString>,
    /// HMAC mode instead: `x-signature` over `"{x-timestamp}.{body}"` (HMAC-SHA256, hex).
    #[serde(serialize_with = "expose_option")]
    pub vapi_webhook_hmac_secret: Option<SecretString>,
    /// Where campaigns with `provider = "sim"` are placed (`dialtone sim`).
    pub sim_base_url: String,
    #[serde(serialize_with = "expose")]
    pub sim_api_key: SecretString,
    /// Log format: `text` or `json`.
    pub log_format: LogFormat,
    /// Our public base URL, as providers reach us (callbacks, Twilio signatures behind a
    /// proxy). Default: `http://{listen}`.
    pub public_url: Option<String>,
    /// Calls per second placed on the Vapi account (all campaigns together); none = unlimited.
    pub vapi_rate_per_sec: Option<f64>,
    /// Concurrent calls on the whole Vapi account, inbound included (Vapi's default is 10).
    pub vapi_max_concurrent: Option<u32>,
    pub sim_rate_per_sec: Option<f64>,
    pub sim_max_concurrent: Option<u32>,
    pub twilio_account_sid: Option<String>,
    #[serde(serialize_with = "expose_option")]
    pub twilio_auth_token: Option<SecretString>,
    pub twilio_base_url: String,
    /// TwiML the answered call runs: a URL (`twilio_twiml_url`) or inline (`twilio_twiml`);
    /// with both, the URL wins.
    pub twilio_twiml_url: Option<String>,
    pub twilio_twiml: Option<String>,
    /// Answering-machine detection (machine → outcome voicemail).
    pub twilio_machine_detection: bool,
    pub twilio_rate_per_sec: f64,
    pub twilio_max_concurrent: Option<u32>,
    pub exotel_sid: Option<String>,
    #[serde(serialize_with = "expose_option")]
    pub exotel_api_key: Option<SecretString>,
    #[serde(serialize_with = "expose_option")]
    pub exotel_api_token: Option<SecretString>,
    /// `https://api.exotel.com`, or the Mumbai cluster `https://api.in.exotel.com`.
    pub exotel_base_url: String,
    /// A flow/applet URL (`exotel_flow_url`) or a voice-bot WebSocket (`exotel_stream_url`).
    pub exotel_flow_url: Option<String>,
    pub exotel_stream_url: Option<String>,
    /// Secret path segment of our Exotel callback URL (Exotel signs nothing).
    #[serde(serialize_with = "expose_option")]
    pub exotel_callback_token: Option<SecretString>,
    /// If set, Exotel callbacks are accepted only from these addresses.
    pub exotel_ip_allowlist: Vec<String>,
    pub exotel_rate_per_min: u32,
    pub exotel_max_concurrent: Option<u32>,
    /// The key of the media-stream tokens: the address an agent call's provider opens
    /// (`/media/exotel/{token}`, Twilio's `token` parameter) carries HMAC-SHA256(key, call
    /// id). Unset: a random key per process (see [`Config::media_secret`]), which is right
    /// for one node; several nodes behind one public URL must all set the same one
    /// (`DIALTONE_MEDIA_SECRET`), or a stream that lands on another node, or on a restarted
    /// one, is refused.
    #[serde(serialize_with = "expose_option")]
    pub media_secret: Option<SecretString>,
    /// Added: agents' fixed lines (greeting, prompt, goodbye, voicemail message) kept as
    /// synthesised audio, so a greeting starts without a TTS round trip (1,024 lines, the
    /// oldest dropped first). 0 turns the cache off: every line is synthesised when said
    /// (`dialtone bench voice` measures the cold greeting so).
    pub greeting_cache_entries: usize,
    /// Consecutive provider failures that open an account's circuit breaker, and for how long.
    pub breaker_failures: u32,
    pub breaker_open_secs: u64,
    /// How long placement pauses on an account the provider says is at capacity.
    pub capacity_cooldown_ms: u64,
    /// A client must send a request's headers within this many seconds of the server
    /// waiting for them (a new or an idle keep-alive connection), else it is disconnected.
    pub header_read_timeout_secs: u64,
    /// The longest pause, in seconds, while a request body is being sent; then 408.
    pub body_read_timeout_secs: u64,
    /// Largest contact upload accepted, in bytes (the whole body; more gets 413).
    pub max_upload_bytes: u64,
    /// Contact imports running at once on this node; one more gets 429 (uploads are
    /// spooled to a temporary file, so each costs disk up to `max_upload_bytes`, not memory).
    pub max_concurrent_imports: u32,
    /// Days to keep webhook events for calls dialtone never placed (a Vapi org-wide
    /// Server URL sends every call's events); the reaper purges older ones.
    pub unknown_event_retention_days: u32,
    /// Failure-rate alerts: a campaign's or provider account's share of failed calls over
    /// the last hour above this (0..=1) raises an alert …
    pub alert_failure_threshold: f64,
    /// … when at least this many of its calls ended in that hour.
    pub alert_min_calls: u64,
    /// How often the alerts are evaluated, in seconds.
    pub alert_interval_secs: u64,
    /// The master key secrets are stored under (provider accounts' credentials, webhook
    /// endpoints' signing secrets; XChaCha20-Poly1305, see `dialtone_store::secrets`): 32
    /// bytes, base64 (`openssl rand -base64 32`); also `DIALTONE_MASTER_KEY`. Unset:
    /// provider accounts cannot be created (400 `master_key_missing`) and webhook-endpoint
    /// secrets are stored as given. Losing it loses every stored secret.
    #[serde(serialize_with = "expose_option")]
    pub master_key: Option<SecretString>,
    /// Master keys replaced by `master_key`: secrets sealed under them still open, and at
    /// start (or `dialtone secrets rotate`) they are re-sealed under `master_key`, after
    /// which these may be removed. Environment: `DIALTONE_PREVIOUS_MASTER_KEYS='["…","…"]'`.
    #[serde(serialize_with = "expose_all")]
    pub previous_master_keys: Vec<SecretString>,
    /// Whether every workspace may call through this file's provider accounts. Off (the
    /// default): they are the default workspace's, and another workspace calls only
    /// through its own (`account_id`, `/api/v1/provider-accounts`) — a tenant cannot bill
    /// the operator's Vapi, Twilio or Exotel account. The simulator is shared either way.
    /// Environment: `DIALTONE_SHARE_CONFIG_ACCOUNTS=true`.
    pub share_config_accounts: bool,
    /// `[speech]`: keys and addresses of the speech services agents use.
    #[serde(default)]
    pub speech: SpeechConfig,
}

/// The `[speech]` section: keys and addresses of the speech services dialtone's own voice
/// pipeline uses (see `crate::speech`). Each key is also read from
/// `DIALTONE_SPEECH_<KEY>` (see [`speech_env_name`]), e.g. `DIALTONE_SPEECH_DEEPGRAM_API_KEY`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpeechConfig {
    /// Deepgram API key, sent as `Authorization: Token <key>`.
    #[serde(serialize_with = "expose_option")]
    pub deepgram_api_key: Option<SecretString>,
    /// Deepgram's address (default `wss://api.deepgram.com`; `https://` works too).
    pub deepgram_url: String,
    /// OpenAI API key, sent as `Authorization: Bearer <key>`; leave unset for a local
    /// OpenAI-compatible server (Ollama, llama.cpp) that needs none.
    #[serde(serialize_with = "expose_option")]
    pub openai_api_key: Option<SecretString>,
    /// OpenAI-compatible API base, up to and including `/v1` (default
    /// `https://api.openai.com/v1`; Ollama `http://127.0.0.1:11434/v1`, llama.cpp's
    /// `llama-server` `http://127.0.0.1:8080/v1`). An agent's `base_url` overrides it.
    pub openai_base_url: String,
    /// ElevenLabs API key, sent as `xi-api-key`.
    #[serde(serialize_with = "expose_option")]
    pub elevenlabs_api_key: Option<SecretString>,
    /// ElevenLabs' address (default `wss://api.elevenlabs.io`).
    pub elevenlabs_url: String,
    /// The simulator serving the speech services of provider `sim` (default
    /// `http://127.0.0.1:8090`, where `dialtone sim` listens).
    pub sim_url: String,
    /// Key sent to the simulator's speech services; unset sends `sim` (a simulator started
    /// without a speech key accepts any).
    #[serde(serialize_with = "expose_option")]
    pub sim_api_key: Option<SecretString>,
    /// The `flite` program for provider `flite` (default `flite`, looked up on `PATH`).
    pub flite_path: String,
}

impl Default for SpeechConfig {
    fn default() -> Self {
        Self {
            deepgram_api_key: None,
            deepgram_url: "wss://api.deepgram.com".into(),
            openai_api_key: None,
            openai_base_url: "https://api.openai.com/v1".into(),
            elevenlabs_api_key: None,
            elevenlabs_url: "wss://api.elevenlabs.io".into(),
            sim_url: "http://127.0.0.1:8090".into(),
            sim_api_key: None,
            flite_path: "flite".into(),
        }
    }
}

/// The environment variable that sets `[speech]` key `name`:
/// `deepgram_api_key` → `DIALTONE_SPEECH_DEEPGRAM_API_KEY`.
pub fn speech_env_name(name: &str) -> String {
    format!("DIALTONE_SPEECH_{}", name.to_ascii_uppercase())
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "sqlite://dialtone.db".into(),
            listen: "127.0.0.1:8080".into(),
            tick_ms: 1000,
            stuck_timeout_secs: 600,
            max_call_duration_secs: 3600,
            reaper_interval_secs: 30,
            placement_backoff_ms: vec![1000, 4000, 10000],
            vapi_base_url: "https://api.vapi.ai".into(),
            vapi_api_key: None,
            vapi_timeout_ms: 10_000,
            vapi_webhook_secret: None,
            vapi_webhook_hmac_secret: None,
            sim_base_url: "http://127.0.0.1:8090".into(),
            sim_api_key: "sim".into(),
            log_format: LogFormat::Text,
            public_url: None,
            vapi_rate_per_sec: None,
            vapi_max_concurrent: Some(10),
            sim_rate_per_sec: None,
            sim_max_concurrent: None,
            twilio_account_sid: None,
            twilio_auth_token: None,
            twilio_base_url: "https://api.twilio.com/2010-04-01".into(),
            twilio_twiml_url: None,
            twilio_twiml: None,
            twilio_machine_detection: false,
            twilio_rate_per_sec: 1.0,
            twilio_max_concurrent: None,
            exotel_sid: None,
            exotel_api_key: None,
            exotel_api_token: None,
            exotel_base_url: "https://api.exotel.com".into(),
            exotel_flow_url: None,
            exotel_stream_url: None,
            exotel_callback_token: None,
            exotel_ip_allowlist: vec![],
            exotel_rate_per_min: 200,
            exotel_max_concurrent: None,
            media_secret: None,
            greeting_cache_entries: 1024,
            breaker_failures: 5,
            breaker_open_secs: 60,
            capacity_cooldown_ms: 5000,
            header_read_timeout_secs: 30,
            body_read_timeout_secs: 30,
            max_upload_bytes: 256 * 1024 * 1024,
            max_concurrent_imports: 4,
            unknown_event_retention_days: 7,
            speech: SpeechConfig::default(),
            alert_failure_threshold: 0.2,
            alert_min_calls: 20,
            alert_interval_secs: 30,
            master_key: None,
            previous_master_keys: vec![],
            share_config_accounts: false,
        }
    }
}

impl Config {
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                anyhow::ensure!(path.exists(), "config file {} does not exist", path.display());
                fig = fig.merge(Toml::file(path));
            }
            None => fig = fig.merge(Toml::file("dialtone.toml")),
        }
        // Only DIALTONE_* variables that name a setting: others (DIALTONE_LOG, test URLs)
        // belong to someone else. Typos in the file are still refused.
        let known: Vec<String> = match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            _ => vec![],
        };
        let env = Env::prefixed("DIALTONE_").filter(move |k| known.iter().any(|f| k.as_str().eq_ignore_ascii_case(f)));
        // `[speech]` keys: DIALTONE_SPEECH_DEEPGRAM_API_KEY sets speech.deepgram_api_key.
        let speech_known: Vec<String> = match serde_json::to_value(SpeechConfig::default()) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            _ => vec![],
        };
        let speech_env = Env::prefixed("DIALTONE_SPEECH_")
            .filter(move |k| speech_known.iter().any(|f| k.as_str().eq_ignore_ascii_case(f)))
            .map(|k| format!("speech.{}", k.as_str().to_ascii_lowercase()).into());
        let config: Config = fig.merge(env).merge(speech_env).extract()?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.tick_ms > 0, "tick_ms must be above 0");
        self.check_exotel_stream_url()?;
        if let Some(token) = &self.exotel_callback_token {
            use secrecy::ExposeSecret;
            dialtone_providers::exotel::check_callback_token(token.expose_secret()).map_err(|e| anyhow::anyhow!("exotel_callback_token {e}"))?;
        }
        anyhow::ensure!(self.stuck_timeout_secs > 0, "stuck_timeout_secs must be above 0");
        anyhow::ensure!(self.max_call_duration_secs > 0, "max_call_duration_secs must be above 0");
        anyhow::ensure!(self.reaper_interval_secs > 0, "reaper_interval_secs must be above 0");
        anyhow::ensure!(self.header_read_timeout_secs > 0, "header_read_timeout_secs must be above 0");
        anyhow::ensure!(self.body_read_timeout_secs > 0, "body_read_timeout_secs must be above 0");
        anyhow::ensure!(self.max_upload_bytes > 0, "max_upload_bytes must be above 0");
        anyhow::ensure!(self.max_concurrent_imports > 0, "max_concurrent_imports must be above 0");
        anyhow::ensure!(self.unknown_event_retention_days > 0, "unknown_event_retention_days must be above 0");
        anyhow::ensure!((0.0..1.0).contains(&self.alert_failure_threshold), "alert_failure_threshold must be at least 0 and below 1 (0.2 = 20 %)");
        anyhow::ensure!(self.alert_min_calls > 0, "alert_min_calls must be above 0");
        anyhow::ensure!(self.alert_interval_secs > 0, "alert_interval_secs must be above 0");
        self.keyring()?;
        Ok(())
    }

    /// With an Exotel account: the `StreamUrl`s dialtone will send must fit Exotel's 600
    /// characters ([`dialtone_providers::media::EXOTEL_STREAM_URL_MAX`]): an agent call's
    /// (`{public_url}` as wss + `/media/exotel/{token}?call_id={id}`) and `exotel_stream_url`.
    fn check_exotel_stream_url(&self) -> anyhow::Result<()> {
        use dialtone_providers::media::{check_exotel_stream_url, exotel_stream_url_len, EXOTEL_STREAM_URL_MAX};
        if self.exotel_sid.is_none() {
            return Ok(());
        }
        if let Some(len) = self.public_url.as_deref().and_then(exotel_stream_url_len) {
            anyhow::ensure!(
                len <= EXOTEL_STREAM_URL_MAX,
                "public_url is too long for Exotel: an agent call's StreamUrl under it would be {len} characters, over Exotel's limit of {EXOTEL_STREAM_URL_MAX} (the URL adds {} to public_url)",
                len - self.public_url.as_deref().unwrap_or("").trim_end_matches('/').len()
            );
        }
        if let Some(stream) = &self.exotel_stream_url {
            check_exotel_stream_url(stream).map_err(|e| anyhow::anyhow!("exotel_stream_url is too long: {e}"))?;
        }
        Ok(())
    }

    /// The settings an account on `kind` needs that are not set (empty: the account is
    /// configured; `sim` always is). Setting names as in the config file; each is also
    /// `DIALTONE_<NAME>` (see [`env_name`]). Mirrors what [`crate::app::providers`] requires.
    pub fn missing_provider_settings(&self, kind: ProviderKind) -> Vec<&'static str> {
        let need: Vec<(&'static str, bool)> = match kind {
            ProviderKind::Sim => vec![],
            ProviderKind::Vapi => vec![("vapi_api_key", self.vapi_api_key.is_some())],
            ProviderKind::Twilio => vec![
                ("twilio_account_sid", self.twilio_account_sid.is_some()),
                ("twilio_auth_token", self.twilio_auth_token.is_some()),
                // What the answered call runs; without it every call would fail at placement.
                ("twilio_twiml_url", self.twilio_twiml_url.is_some() || self.twilio_twiml.is_some()),
            ],
            ProviderKind::Exotel => vec![
                ("exotel_sid", self.exotel_sid.is_some()),
                ("exotel_api_key", self.exotel_api_key.is_some()),
                ("exotel_api_token", self.exotel_api_token.is_some()),
                // What the answered call runs when no agent does (PROVIDERS.md: Exotel's
                // connect API needs a flow `Url` or a `StreamUrl`); without it every call
                // without an agent would fail at placement.
                ("exotel_flow_url", self.exotel_flow_url.is_some() || self.exotel_stream_url.is_some()),
            ],
        };
        need.into_iter().filter(|(_, set)| !set).map(|(name, _)| name).collect()
    }

    /// The database URL with its password replaced by `***`, for messages to the operator.
    pub fn database_shown(&self) -> String {
        let url = self.database_url.expose_secret();
        let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
        let authority_end = rest.find('/').unwrap_or(rest.len());
        match rest[..authority_end].rfind('@').and_then(|at| rest[..at].find(':').map(|colon| (colon, at))) {
            Some((colon, at)) => format!("{scheme}://{}:***{}", &rest[..colon], &rest[at..]),
            None => url.to_string(),
        }
    }

    /// The media-stream token key: `media_secret`, or when it is unset a random 256-bit
    /// key made once per process (every call of this process signs and checks with it).
    pub fn media_secret(&self) -> SecretString {
        static GENERATED: std::sync::OnceLock<SecretString> = std::sync::OnceLock::new();
        match &self.media_secret {
            Some(secret) => secret.clone(),
            None => GENERATED
                .get_or_init(|| {
                    use rand::RngCore;
                    let mut key = [0u8; 32];
                    rand::rngs::OsRng.fill_bytes(&mut key);
                    SecretString::from(hex::encode(key))
                })
                .clone(),
        }
    }

    /// The keys secrets are sealed and opened with: `master_key` seals, it and
    /// `previous_master_keys` open; `None` without a `master_key`. Errors: a key that is
    /// not 32 bytes of base64 (naming the setting), or previous keys without a current one.
    pub fn keyring(&self) -> anyhow::Result<Option<dialtone_store::secrets::Keyring>> {
        use dialtone_store::secrets::{Keyring, MasterKey};
        let Some(current) = &self.master_key else {
            anyhow::ensure!(
                self.previous_master_keys.is_empty(),
                "previous_master_keys is set but master_key is not: set master_key (DIALTONE_MASTER_KEY) to the new key"
            );
            return Ok(None);
        };
        let current = MasterKey::from_base64(current.expose_secret()).map_err(|e| anyhow::anyhow!("master_key: {e}"))?;
        let previous = self
            .previous_master_keys
            .iter()
            .enumerate()
            .map(|(i, k)| MasterKey::from_base64(k.expose_secret()).map_err(|e| anyhow::anyhow!("previous_master_keys[{i}]: {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Some(Keyring::new(current, previous)))
    }

    pub fn public_url(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.listen)).trim_end_matches('/').to_string()
    }

    pub fn engine(&self) -> dialtone_engine::EngineConfig {
        dialtone_engine::EngineConfig {
            tick: Duration::from_millis(self.tick_ms),
            stuck_timeout: Duration::from_secs(self.stuck_timeout_secs),
            max_call_duration: Duration::from_secs(self.max_call_duration_secs),
            reaper_interval: Duration::from_secs(self.reaper_interval_secs),
            placement_backoff: self.placement_backoff_ms.iter().map(|ms| Duration::from_millis(*ms)).collect(),
            capacity_cooldown: Duration::from_millis(self.capacity_cooldown_ms),
            unknown_event_retention: Duration::from_secs(u64::from(self.unknown_event_retention_days) * 24 * 3600),
            alert_threshold: self.alert_failure_threshold,
            alert_min_calls: self.alert_min_calls,
            alert_interval: Duration::from_secs(self.alert_interval_secs),
            ..Default::default()
        }
    }
}

fn expose<S: Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose_secret())
}

fn expose_option<S: Serializer>(secret: &Option<SecretString>, serializer: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => serializer.serialize_some(secret.expose_secret()),
        None => serializer.serialize_none(),
    }
}

fn expose_all<S: Serializer>(secrets: &[SecretString], serializer: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = serializer.serialize_seq(Some(secrets.len()))?;
    for s in secrets {
        seq.serialize_element(s.expose_secret())?;
    }
    seq.end()
}

/// The environment variable that sets config field `name`: `DIALTONE_` and the name in
/// upper case (`twilio_account_sid` → `DIALTONE_TWILIO_ACCOUNT_SID`).
pub fn env_name(name: &str) -> String {
    format!("DIALTONE_{}", name.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Held by every test that loads a config: `Config::load` reads `DIALTONE_*` variables,
    /// and two tests set some for a moment. Without it a load in a parallel test could see
    /// `DIALTONE_PREVIOUS_MASTER_KEYS` without `DIALTONE_MASTER_KEY` (between the two
    /// `remove_var`s) and fail validation. A test that panicked poisons it; the next one goes on.
    fn env_lock() -> std::sync::MutexGuard<'static, ()> {
        static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());
        ENV.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[test]
    fn max_call_duration_defaults_to_an_hour_reaches_the_engine_and_must_be_positive() {
        let config = Config::default();
        assert_eq!(config.max_call_duration_secs, 3600);
        assert_eq!(config.engine().max_call_duration, Duration::from_secs(3600));
        let zero = Config { max_call_duration_secs: 0, ..Config::default() };
        assert!(zero.validate().unwrap_err().to_string().contains("max_call_duration_secs"));
    }

    #[test]
    fn an_exotel_public_url_whose_stream_url_passes_600_characters_is_refused() {
        let long = format!("https://{}.example.com", "a".repeat(520));
        let config = Config { public_url: Some(long.clone()), ..Config::default() };
        assert!(config.validate().is_ok(), "without an Exotel account the limit does not apply");
        let exotel = Config { public_url: Some(long), exotel_sid: Some("acme".into()), ..Config::default() };
        let e = exotel.validate().unwrap_err().to_string();
        assert!(e.contains("public_url") && e.contains("600"), "{e}");
        let fine = Config { public_url: Some("https://dialer.example.com".into()), exotel_sid: Some("acme".into()), ..Config::default() };
        assert!(fine.validate().is_ok());
        let stream =
            Config { exotel_stream_url: Some(format!("wss://bot.example.com/{}", "x".repeat(600))), exotel_sid: Some("acme".into()), ..Config::default() };
        assert!(stream.validate().unwrap_err().to_string().contains("exotel_stream_url"));
    }

    #[test]
    fn an_exotel_callback_token_that_is_not_one_path_segment_is_refused() {
        let with = |t: &str| Config { exotel_callback_token: Some(t.to_string().into()), ..Config::default() };
        assert!(with("exotel-callback_4444").validate().is_ok());
        let e = with("a/b").validate().unwrap_err().to_string();
        assert!(e.contains("exotel_callback_token") && e.contains("path segment"), "{e}");
        assert!(with("a?b").validate().is_err());
    }

    #[test]
    fn missing_provider_settings_name_what_each_account_still_needs() {
        let mut config = Config::default();
        assert!(config.missing_provider_settings(ProviderKind::Sim).is_empty(), "the simulator needs nothing");
        assert_eq!(config.missing_provider_settings(ProviderKind::Vapi), ["vapi_api_key"]);
        config.twilio_account_sid = Some("AC1".into());
        assert_eq!(config.missing_provider_settings(ProviderKind::Twilio), ["twilio_auth_token", "twilio_twiml_url"], "only what is missing");
        config.twilio_auth_token = Some("tok".into());
        config.twilio_twiml = Some("<Response/>".into());
        assert!(config.missing_provider_settings(ProviderKind::Twilio).is_empty(), "inline TwiML does as well as a URL");
        assert_eq!(config.missing_provider_settings(ProviderKind::Exotel), ["exotel_sid", "exotel_api_key", "exotel_api_token", "exotel_flow_url"]);
        config.exotel_stream_url = Some("wss://bot.example.com/ws".into());
        assert_eq!(
            config.missing_provider_settings(ProviderKind::Exotel),
            ["exotel_sid", "exotel_api_key", "exotel_api_token"],
            "a stream URL does as well as a flow"
        );
        assert_eq!(env_name("twilio_auth_token"), "DIALTONE_TWILIO_AUTH_TOKEN");
    }

    #[test]
    fn the_media_secret_is_the_configured_one_or_one_random_key_per_process() {
        let set = Config { media_secret: Some(SecretString::from("shared")), ..Config::default() };
        assert_eq!(set.media_secret().expose_secret(), "shared");
        let (a, b) = (Config::default().media_secret(), Config::default().media_secret());
        assert_eq!(a.expose_secret(), b.expose_secret(), "stable within the process");
        assert_eq!(a.expose_secret().len(), 64, "256 bits, hex");
        assert_ne!(a.expose_secret(), "shared");
    }

    #[test]
    fn debug_output_of_a_config_shows_no_secret() {
        let secret = |name: &str| Some(SecretString::from(format!("s3cret-{name}")));
        let config = Config {
            database_url: "postgres://dialtone:s3cret-db@localhost/dialtone".into(),
            vapi_api_key: secret("vapi-key"),
            vapi_webhook_secret: secret("vapi-webhook"),
            vapi_webhook_hmac_secret: secret("vapi-hmac"),
            sim_api_key: "s3cret-sim".into(),
            twilio_auth_token: secret("twilio"),
            exotel_api_key: secret("exotel-key"),
            exotel_api_token: secret("exotel-token"),
            exotel_callback_token: secret("exotel-callback"),
            speech: SpeechConfig {
                deepgram_api_key: secret("deepgram"),
                openai_api_key: secret("openai"),
                elevenlabs_api_key: secret("elevenlabs"),
                sim_api_key: secret("sim-speech"),
                ..SpeechConfig::default()
            },
            media_secret: secret("media"),
            ..Config::default()
        };
        let debug = format!("{config:?} {config:#?}");
        assert_eq!(config.database_shown(), "postgres://dialtone:***@localhost/dialtone");
        assert!(!debug.contains("s3cret"), "a secret leaked into Debug: {debug}");
        assert!(debug.contains("REDACTED"), "{debug}");
    }

    #[test]
    fn secrets_and_the_log_format_still_load_from_the_file_and_the_environment() {
        let _env = env_lock();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dialtone.toml");
        std::fs::write(&path, "vapi_api_key = \"key-from-file\"\nlog_format = \"json\"\n").unwrap();
        let config = Config::load(Some(&path)).unwrap();
        assert_eq!(config.vapi_api_key.as_ref().map(|k| k.expose_secret()), Some("key-from-file"));
        assert_eq!(config.sim_api_key.expose_secret(), "sim", "defaults still apply");
        assert_eq!(config.log_format, LogFormat::Json);
        std::fs::write(&path, "log_format = \"xml\"\n").unwrap();
        assert!(Config::load(Some(&path)).unwrap_err().to_string().contains("xml"));
    }

    #[test]
    fn the_speech_section_loads_from_the_file_and_its_keys_from_the_environment() {
        let _env = env_lock();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dialtone.toml");
        std::fs::write(&path, "[speech]\nopenai_base_url = \"http://127.0.0.1:11434/v1\"\nelevenlabs_api_key = \"xi-from-file\"\n").unwrap();
        let config = Config::load(Some(&path)).unwrap();
        assert_eq!(config.speech.openai_base_url, "http://127.0.0.1:11434/v1");
        assert_eq!(config.speech.elevenlabs_api_key.as_ref().map(|k| k.expose_secret()), Some("xi-from-file"));
        assert_eq!(config.speech.deepgram_url, "wss://api.deepgram.com", "defaults still apply");
        assert_eq!(speech_env_name("deepgram_api_key"), "DIALTONE_SPEECH_DEEPGRAM_API_KEY");
        std::env::set_var(speech_env_name("deepgram_api_key"), "dg-from-env");
        std::env::set_var(speech_env_name("elevenlabs_api_key"), "xi-from-env");
        let loaded = Config::load(Some(&path));
        std::env::remove_var(speech_env_name("deepgram_api_key"));
        std::env::remove_var(speech_env_name("elevenlabs_api_key"));
        let config = loaded.unwrap();
        assert_eq!(config.speech.deepgram_api_key.as_ref().map(|k| k.expose_secret()), Some("dg-from-env"));
        assert_eq!(config.speech.elevenlabs_api_key.as_ref().map(|k| k.expose_secret()), Some("xi-from-env"), "the environment wins over the file");
        assert_eq!(config.speech.openai_base_url, "http://127.0.0.1:11434/v1");
        std::fs::write(&path, "[speech]\ndeepgram_key = \"typo\"\n").unwrap();
        assert!(Config::load(Some(&path)).unwrap_err().to_string().contains("deepgram_key"), "typos are refused");
    }

    #[test]
    fn master_keys_load_from_the_file_and_the_environment_and_a_bad_one_is_refused_by_name() {
        let _env = env_lock();
        use dialtone_store::secrets::MasterKey;
        let (old, old_text) = MasterKey::generate();
        let (new, new_text) = MasterKey::generate();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dialtone.toml");
        std::fs::write(&path, format!("master_key = \"{}\"\n", old_text.expose_secret())).unwrap();
        let ring = Config::load(Some(&path)).unwrap().keyring().unwrap().unwrap();
        assert_eq!(ring.current_id(), old.id());
        std::env::set_var(env_name("master_key"), new_text.expose_secret());
        std::env::set_var(env_name("previous_master_keys"), format!("[\"{}\"]", old_text.expose_secret()));
        let loaded = Config::load(Some(&path));
        std::env::remove_var(env_name("master_key"));
        std::env::remove_var(env_name("previous_master_keys"));
        let ring = loaded.unwrap().keyring().unwrap().unwrap();
        assert_eq!(ring.current_id(), new.id(), "the environment wins over the file");
        let sealed = dialtone_store::secrets::Keyring::new(old, vec![]).encrypt("v", "c");
        assert_eq!(ring.decrypt(&sealed, "c").unwrap().expose_secret(), "v", "the previous key still opens");
        assert!(Config::default().keyring().unwrap().is_none());
        let short = Config { master_key: Some("c2hvcnQ=".into()), ..Config::default() };
        assert!(short.validate().unwrap_err().to_string().contains("master_key: a master key must be 32 bytes"));
        let orphan = Config { previous_master_keys: vec![old_text], ..Config::default() };
        assert!(orphan.validate().unwrap_err().to_string().contains("master_key"));
        let debug = format!("{:?}", Config { master_key: Some(new_text.clone()), ..Config::default() });
        assert!(!debug.contains(new_text.expose_secret()), "the master key leaked into Debug");
    }

    #[test]
    fn unknown_events_are_kept_seven_days_by_default_and_the_key_is_checked() {
        assert_eq!(Config::default().engine().unknown_event_retention, Duration::from_secs(7 * 24 * 3600));
        let two = Config { unknown_event_retention_days: 2, ..Config::default() };
        assert_eq!(two.engine().unknown_event_retention, Duration::from_secs(2 * 24 * 3600));
        let zero = Config { unknown_event_retention_days: 0, ..Config::default() };
        assert!(zero.validate().unwrap_err().to_string().contains("unknown_event_retention_days"));
    }

    #[test]
    fn failure_alerts_default_to_20_percent_of_20_calls_and_the_keys_are_checked() {
        let e = Config::default().engine();
        assert_eq!((e.alert_threshold, e.alert_min_calls, e.alert_interval), (0.2, 20, Duration::from_secs(30)));
        let set = Config { alert_failure_threshold: 0.5, alert_min_calls: 5, ..Config::default() }.engine();
        assert_eq!((set.alert_threshold, set.alert_min_calls), (0.5, 5));
        for (bad, key) in [
            (Config { alert_failure_threshold: 1.0, ..Config::default() }, "alert_failure_threshold"),
            (Config { alert_failure_threshold: -0.1, ..Config::default() }, "alert_failure_threshold"),
            (Config { alert_min_calls: 0, ..Config::default() }, "alert_min_calls"),
            (Config { alert_interval_secs: 0, ..Config::default() }, "alert_interval_secs"),
        ] {
            assert!(bad.validate().unwrap_err().to_string().contains(key), "{key}");
        }
    }
}
