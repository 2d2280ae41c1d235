//! Media streams: the WebSockets Exotel and Twilio open to dialtone when a call placed with
//! an agent is answered, and the per-call driver ([`session`]) that runs dialtone's own
//! voice pipeline on them (docs/voice.md, "Media streams and the driver").
//!
//! Routes:
//! - `GET /media/exotel/{token}?call_id=call_…`: Exotel's bidirectional stream (the
//!   `StreamUrl` dialtone places the call with). `token` is
//!   `dialtone_providers::media::stream_token(media secret, call id)`; a wrong one is 401
//!   before the upgrade.
//! - `GET /media/exotel/voicebot/{callback_token}?CallSid=…&CustomField=call_…`: for
//!   users who route the call through an App Bazaar flow, the Voicebot applet's https URL.
//!   It answers `{"url": "wss://{public_url}/media/exotel/{token}?call_id=…"}`; the call
//!   is found by `CustomField` (dialtone places every Exotel call with `CustomField` = its
//!   call id, and Exotel passes it to the applet's request). `callback_token` is the
//!   account's `exotel_callback_token`, as on `/webhooks/exotel/{token}`.
//! - `GET /media/twilio`: Twilio's `<Connect><Stream>`. The upgrade's
//!   `X-Twilio-Signature` is checked against `wss://{public_url host}/media/twilio`; the call
//!   then comes from `start.customParameters.dialtone_call_id` and `token`.

pub mod audio;
pub mod greeting;
pub mod jitter;
pub mod playout;
pub mod session;
pub mod stt_feed;
pub mod wire;

use crate::api::ApiError;
use crate::app::AppState;
use async_trait::async_trait;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use dialtone_core::{Agent, AgentId, CallId, TranscriptTurn};
use dialtone_voice::speech::{Llm, SpeechError, Stt, Tts};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wire::Dialect;

/// The speech services one agent uses.
#[derive(Clone)]
pub struct SpeechSet {
    pub stt: Arc<dyn Stt>,
    pub llm: Arc<dyn Llm>,
    pub tts: Arc<dyn Tts>,
}

/// Builds an agent's speech services from its `stt`/`llm`/`tts` settings.
pub trait SpeechFactory: Send + Sync + 'static {
    /// Errors: a provider this server does not know or has no key for.
    fn for_agent(&self, agent: &Agent) -> Result<SpeechSet, SpeechError>;
}

/// Where the driver reads a call's agent and writes what the conversation left.
#[async_trait]
pub trait CallRecords: Send + Sync + 'static {
    /// The agent of call `call`; `None` when the call is unknown or has no agent.
    async fn agent_for_call(&self, call: &CallId) -> anyhow::Result<Option<Agent>>;
    /// Stores the transcript and whether a voicemail message was left on the call.
    async fn save_conversation(&self, call: &CallId, transcript: &[TranscriptTurn], voicemail_left: bool) -> anyhow::Result<()>;
}

/// Settings of the media streams.
#[derive(Clone)]
pub struct MediaConfig {
    /// Signs stream tokens (`media_secret`).
    pub secret: SecretString,
    /// `public_url` (https://…); the streams' wss:// address is made from it.
    pub public_url: String,
    /// Checks `X-Twilio-Signature` on `/media/twilio`; `None`: that route refuses all.
    pub twilio_auth_token: Option<SecretString>,
    /// Guards the Voicebot applet endpoint; `None`: it refuses all.
    pub exotel_callback_token: Option<SecretString>,
    /// How far ahead of real time audio is sent (300 ms).
    pub send_ahead: Duration,
    /// Longest real wait between two looks at the engine's clock: deadlines are on that
    /// clock, which a test may move by hand (1 s; tests use less).
    pub max_tick: Duration,
    /// How long a socket may take to send `start` after opening (10 s).
    pub start_timeout: Duration,
    /// Cached lines kept (greetings etc.); 0: no cache, every line is synthesised when said.
    pub cache_entries: usize,
}

impl MediaConfig {
    pub fn new(secret: SecretString, public_url: impl Into<String>) -> Self {
        Self {
            secret,
            public_url: public_url.into(),
            twilio_auth_token: None,
            exotel_callback_token: None,
            send_ahead: Duration::from_millis(300),
            max_tick: Duration::from_secs(1),
            start_timeout: Duration::from_secs(10),
            cache_entries: 1024,
        }
    }

    /// `wss://host/…` for `https://host/…` (and `ws://` for `http://`); another scheme is
    /// kept as it is.
    pub fn ws_base(&self) -> String {
        dialtone_providers::media::websocket_base(&self.public_url).unwrap_or_else(|| self.public_url.trim_end_matches('/').to_string())
    }

    /// The Exotel `StreamUrl` for `call` (what the Exotel client places agent calls with).
    pub fn exotel_stream_url(&self, call: &CallId) -> String {
        let token = dialtone_providers::media::stream_token(self.secret.expose_secret().as_bytes(), call);
        format!("{}/media/exotel/{token}?call_id={call}", self.ws_base())
    }

    fn token_ok(&self, call: &CallId, token: &str) -> bool {
        dialtone_providers::media::verify_stream_token(self.secret.expose_secret().as_bytes(), call, token)
    }
}

/// The media streams' shared state: config, speech services, the line cache, and a count
/// of sessions running (each session holds one [`SessionGuard`]).
pub struct Media {
    pub config: MediaConfig,
    pub speech: Arc<dyn SpeechFactory>,
    pub records: Arc<dyn CallRecords>,
    pub cache: greeting::GreetingCache,
    running: AtomicUsize,
    finished: tokio::sync::Notify,
    /// Inbound frames the sessions have fully handled (their actions carried out): a test
    /// on a manual clock waits for it before moving the clock on.
    pub frames_handled: std::sync::atomic::AtomicU64,
    /// Callee audio samples shed because an STT session stalled past its backlog bound
    /// (`stt_feed::MAX_BACKLOG_SAMPLES`); 0 unless a speech service stalls for a minute.
    pub stt_audio_shed_samples: std::sync::atomic::AtomicU64,
    /// Every outbound audio chunk's send lateness (actual − scheduled send time).
    pub send_jitter: Arc<jitter::SendJitter>,
    /// The thread that paces every session's outbound audio ([`playout`]), started with
    /// the first session; `None` inside when the OS refused the thread.
    playout: std::sync::OnceLock<Option<playout::Playout>>,
    /// The running sessions by call: what reaches a call from outside its socket (Twilio's
    /// AsyncAmd verdict, which comes by webhook).
    live: std::sync::Mutex<std::collections::HashMap<CallId, tokio::sync::mpsc::Sender<dialtone_voice::conversation::Input>>>,
    /// Dial-time warm-ups ([`Media::warm_for_call`]): agents being warmed, and when each was
    /// last seen cached.
    warming: std::sync::Mutex<Warming>,
    /// Dial-time warm-ups running at most ([`WARM_CONCURRENCY`]).
    warm_slots: Arc<tokio::sync::Semaphore>,
    /// Set once the start-up warm-up ([`Media::warm_in_use`]) has gone through every agent.
    pub warmed_at_start: std::sync::atomic::AtomicBool,
}

/// Dial-time greeting warm-ups running at once, at most.
pub const WARM_CONCURRENCY: usize = 4;
/// An agent whose greeting was seen cached this recently is not read again at dial time
/// (an edit made on this node warms at once; one made on another node is seen within this).
pub const WARM_RECHECK: Duration = Duration::from_secs(60);
/// Agents the start-up warm-up ([`Media::warm_in_use`]) covers, at most.
pub const WARM_AT_START: u32 = 64;

#[derive(Default)]
struct Warming {
    busy: std::collections::HashSet<AgentId>,
    checked: std::collections::HashMap<AgentId, (greeting::Key, std::time::Instant)>,
}

/// The greeting's cache keys, Exotel's then Twilio's.
fn greeting_keys(agent: &Agent) -> [greeting::Key; 2] {
    [Dialect::Exotel, Dialect::Twilio].map(|d| greeting::key(agent, d.as_str(), audio::SAMPLE_RATE, &agent.greeting))
}

/// The engine's placement hook: warms the greeting of each agent call placed
/// ([`Media::warm_for_call`]).
pub struct WarmOnPlacement(pub Arc<Media>);

impl dialtone_engine::PlacementObserver for WarmOnPlacement {
    fn placing_agent_call(&self, call: &CallId, agent: &AgentId) {
        self.0.warm_for_call(call, agent);
    }
}

impl Media {
    pub fn new(config: MediaConfig, speech: Arc<dyn SpeechFactory>, records: Arc<dyn CallRecords>) -> Arc<Self> {
        let cache = greeting::GreetingCache::new(config.cache_entries);
        Arc::new(Self {
            config,
            speech,
            records,
            cache,
            running: AtomicUsize::new(0),
            finished: tokio::sync::Notify::new(),
            frames_handled: Default::default(),
            stt_audio_shed_samples: Default::default(),
            send_jitter: Default::default(),
            playout: std::sync::OnceLock::new(),
            live: Default::default(),
            warming: Default::default(),
            warm_slots: Arc::new(tokio::sync::Semaphore::new(WARM_CONCURRENCY)),
            warmed_at_start: Default::default(),
        })
    }

    /// The playout thread, started on first use; `None` when it could not be started
    /// (logged; the session then closes its stream).
    pub fn playout(&self) -> Option<&playout::Playout> {
        self.playout
            .get_or_init(|| match playout::Playout::start() {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::error!(error = %e, "could not start the playout thread: media streams are refused");
                    None
                }
            })
            .as_ref()
    }

    /// Sessions whose task is still running.
    pub fn running_sessions(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Waits until no session runs (or `timeout` passes); returns whether none runs.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.finished.notified();
            if self.running_sessions() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.running_sessions() == 0;
            }
        }
    }

    /// Synthesises `agent`'s greeting into the line cache for both providers' streams, in
    /// the background, unless it is there already: called when an agent is created or
    /// changed, so the first call's greeting starts without a TTS round trip. (A greeting
    /// not yet cached is synthesised on first use and cached then.) Errors are logged.
    pub fn warm(self: &Arc<Self>, agent: &Agent) {
        if !self.cache.enabled() || self.greeting_cached(agent) {
            return;
        }
        let (media, agent) = (self.clone(), agent.clone());
        tokio::spawn(async move { media.warm_now(&agent).await });
    }

    /// Whether `agent`'s greeting is cached for both providers' streams (or it has none).
    pub fn greeting_cached(&self, agent: &Agent) -> bool {
        agent.greeting.trim().is_empty() || greeting_keys(agent).iter().all(|k| self.cache.get(k).is_some())
    }

    /// Synthesises `agent`'s greeting into the cache unless it is there; returns when done.
    /// Errors (no speech services, TTS failed) are logged; nothing is cached then.
    pub async fn warm_now(&self, agent: &Agent) {
        if !self.cache.enabled() || self.greeting_cached(agent) {
            return;
        }
        let keys = greeting_keys(agent);
        let tts = match self.speech.for_agent(agent) {
            Ok(s) => s.tts,
            Err(e) => {
                tracing::warn!(agent_id = %agent.id, error = %e, "cannot warm the greeting: the agent's speech services are not available");
                return;
            }
        };
        let options = dialtone_voice::speech::TtsOptions {
            sample_rate: audio::SAMPLE_RATE,
            voice: agent.tts.voice.clone(),
            model: agent.tts.model.clone(),
            language: agent.language.clone(),
        };
        // The audio is the same for both streams (chunking comes later): made once.
        match self.cache.warm(keys[0], tts.as_ref(), &agent.greeting, &options).await {
            Ok(pcm) => self.cache.put(keys[1], pcm.as_ref().clone()),
            Err(e) => tracing::warn!(agent_id = %agent.id, error = %e, "could not warm the greeting"),
        }
    }

    /// Dial time: call `call` is being placed for agent `agent_id`, so its greeting is
    /// synthesised while the phone rings (the engine's [`dialtone_engine::PlacementObserver`]
    /// hook). Returns at once: the work runs on a spawned task, at most
    /// [`WARM_CONCURRENCY`] at a time and one per agent (a campaign placing 50 calls at once
    /// asks for one synthesis); when all slots are busy the call is skipped (its greeting is
    /// made at `start` if still missing). The agent is read by call, as the stream reads it;
    /// an agent seen cached within [`WARM_RECHECK`] is not read again. Errors are logged.
    pub fn warm_for_call(self: &Arc<Self>, call: &CallId, agent_id: &AgentId) {
        if !self.cache.enabled() {
            return;
        }
        {
            let warming = self.warming.lock().unwrap_or_else(|e| e.into_inner());
            if warming.busy.contains(agent_id) {
                return;
            }
            if let Some((key, at)) = warming.checked.get(agent_id) {
                if at.elapsed() < WARM_RECHECK && self.cache.get(key).is_some() {
                    return;
                }
            }
        }
        let Ok(permit) = self.warm_slots.clone().try_acquire_owned() else {
            tracing::debug!(%call, %agent_id, "greeting warm-up skipped: every warm-up slot is busy");
            return;
        };
        if !self.warming.lock().unwrap_or_else(|e| e.into_inner()).busy.insert(agent_id.clone()) {
            return;
        }
        let (media, call, agent_id) = (self.clone(), call.clone(), agent_id.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let agent = media.records.agent_for_call(&call).await;
            match agent {
                Ok(Some(agent)) => {
                    media.warm_now(&agent).await;
                    if media.greeting_cached(&agent) {
                        let key = greeting_keys(&agent)[0];
                        media.warming.lock().unwrap_or_else(|e| e.into_inner()).checked.insert(agent_id.clone(), (key, std::time::Instant::now()));
                    }
                }
                Ok(None) => tracing::debug!(%call, "greeting warm-up: the call has no agent"),
                Err(e) => tracing::warn!(%call, error = %e, "greeting warm-up: could not read the call's agent"),
            }
            media.warming.lock().unwrap_or_else(|e| e.into_inner()).busy.remove(&agent_id);
        });
    }

    /// Server start: warms the greetings of the agents of campaigns that are dialling
    /// (at most `limit` agents, one synthesis at a time, in the background), so the first
    /// calls after a restart, or on a node that just joined, greet from the cache.
    pub fn warm_in_use(self: &Arc<Self>, store: Arc<dyn dialtone_store::Store>, limit: u32) {
        let media = self.clone();
        tokio::spawn(async move {
            match store.agents_in_use(limit).await {
                Ok(agents) => {
                    for agent in &agents {
                        media.warm_now(agent).await;
                    }
                    media.warmed_at_start.store(true, Ordering::SeqCst);
                    tracing::info!(agents = agents.len(), "greetings of the agents in use warmed");
                }
                Err(e) => tracing::warn!(error = %e, "could not list the agents in use to warm their greetings"),
            }
        });
    }

    /// Passes `input` to call `call`'s running session, if there is one (dropped if its
    /// queue is full). Returns whether a session took it.
    pub fn notify(&self, call: &CallId, input: dialtone_voice::conversation::Input) -> bool {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.get(call).is_some_and(|tx| tx.try_send(input).is_ok())
    }

    /// Registers a session for `call` until the returned guard drops. `None` when a
    /// session of this call is already running here: one call has one conversation, and a
    /// second stream for it (a reconnect, a flow that opens its own) is refused.
    fn register(self: &Arc<Self>, call: &CallId) -> Option<(LiveGuard, tokio::sync::mpsc::Receiver<dialtone_voice::conversation::Input>)> {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        match self.live.lock().unwrap_or_else(|e| e.into_inner()).entry(call.clone()) {
            std::collections::hash_map::Entry::Occupied(_) => return None,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(tx);
            }
        }
        Some((LiveGuard(self.clone(), call.clone()), rx))
    }

    fn enter(self: &Arc<Self>) -> SessionGuard {
        self.running.fetch_add(1, Ordering::SeqCst);
        SessionGuard(self.clone())
    }
}

/// Keeps a session reachable by [`Media::notify`] until dropped.
pub struct LiveGuard(Arc<Media>, CallId);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.1);
    }
}

/// Counts a session as running until dropped (however its task ends).
pub struct SessionGuard(Arc<Media>);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
        self.0.finished.notify_waiters();
    }
}

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/media/exotel/voicebot/{token}", get(exotel_voicebot))
        .route("/media/exotel/{token}", get(exotel_stream))
        .route("/media/twilio", get(twilio_stream))
        .route("/media/twilio/{account}", get(twilio_account_stream))
}

#[derive(Deserialize)]
struct ExotelQuery {
    call_id: Option<String>,
}

fn unauthorized(message: &str) -> Response {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response()
}

/// A media route asked for without a WebSocket upgrade (a browser, `curl`, a health check):
/// 426 `upgrade_required` with `Upgrade: websocket` (RFC 9110 §15.5.22), axum's reason in
/// the message.
fn upgrade_required(rejection: &WebSocketUpgradeRejection) -> Response {
    let message = format!("this is a WebSocket media stream; connect with a WebSocket upgrade ({})", rejection.body_text());
    let mut response = ApiError::new(StatusCode::UPGRADE_REQUIRED, "upgrade_required", message).into_response();
    response.headers_mut().insert(axum::http::header::UPGRADE, axum::http::HeaderValue::from_static("websocket"));
    response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("Upgrade"));
    response
}

/// Exotel's stream: the token must be the call's, checked before the upgrade.
async fn exotel_stream(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    Query(q): Query<ExotelQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Some(call) = q.call_id.as_deref().and_then(CallId::parse) else {
        return ApiError::invalid("call_id", "must be the call id the stream URL was made for").into_response();
    };
    let media = state.media.clone();
    if !media.config.token_ok(&call, &token) {
        return unauthorized("the stream token does not match the call");
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return upgrade_required(&rejection),
    };
    let guard = media.enter();
    let engine = state.engine.clone();
    ws.on_upgrade(move |socket| async move {
        session::run(media, engine, Dialect::Exotel, Some(call), socket, guard).await;
    })
}

#[derive(Deserialize)]
struct VoicebotQuery {
    #[serde(rename = "CustomField")]
    custom_field: Option<String>,
}

/// The Voicebot applet's https URL: answers the stream address for the call named in
/// `CustomField`.
async fn exotel_voicebot(State(state): State<Arc<AppState>>, Path(token): Path<String>, Query(q): Query<VoicebotQuery>) -> Response {
    use subtle::ConstantTimeEq;
    let config = &state.media.config;
    let ok = config.exotel_callback_token.as_ref().is_some_and(|t| {
        let t = t.expose_secret().as_bytes();
        t.len() == token.len() && bool::from(t.ct_eq(token.as_bytes()))
    });
    if !ok {
        return unauthorized("the callback token does not match");
    }
    let Some(call) = q.custom_field.as_deref().map(str::trim).and_then(CallId::parse) else {
        return ApiError::invalid("CustomField", "must hold the dialtone call id (dialtone places Exotel calls with CustomField = call id)").into_response();
    };
    axum::Json(serde_json::json!({ "url": config.exotel_stream_url(&call) })).into_response()
}

/// Twilio's stream: the upgrade request must carry Twilio's signature of the wss URL.
async fn twilio_stream(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Some(auth_token) = state.media.config.twilio_auth_token.clone() else {
        return unauthorized("no Twilio auth token is configured");
    };
    twilio_upgrade(state, &auth_token, headers, uri, ws)
}

/// The stream of a call on a workspace's own Twilio account: signed with that account's
/// auth token (and only that one).
async fn twilio_account_stream(
    State(state): State<Arc<AppState>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let found = match dialtone_core::ProviderAccountId::parse(&account) {
        Some(id) => match state.store.find_provider_account(id.as_str()).await {
            Ok(Some(row)) if row.provider == dialtone_core::ProviderKind::Twilio => state.store.provider_account_secrets(id.as_str()).await,
            Ok(_) => Ok(None),
            Err(e) => Err(e),
        },
        None => Ok(None),
    };
    let auth_token = match found {
        Ok(Some(secrets)) => match secrets.get("auth_token") {
            Some(t) => t.clone(),
            None => return unauthorized("the account has no auth token"),
        },
        Ok(None) => return unauthorized("no such Twilio account"),
        Err(e) => return ApiError::unavailable(format!("the account could not be read: {e}")).into_response(),
    };
    twilio_upgrade(state, &auth_token, headers, uri, ws)
}

fn twilio_upgrade(
    state: Arc<AppState>,
    auth_token: &SecretString,
    headers: HeaderMap,
    uri: axum::http::Uri,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let media = state.media.clone();
    let Some(signature) = headers.get("x-twilio-signature").and_then(|v| v.to_str().ok()) else {
        return unauthorized("missing X-Twilio-Signature header");
    };
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/media/twilio");
    let url = format!("{}{path}", media.config.ws_base());
    if !dialtone_providers::twilio::verify_url_signature(auth_token.expose_secret(), &url, signature) {
        return unauthorized("X-Twilio-Signature does not match");
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return upgrade_required(&rejection),
    };
    let guard = media.enter();
    let engine = state.engine.clone();
    ws.on_upgrade(move |socket| async move {
        session::run(media, engine, Dialect::Twilio, None, socket, guard).await;
    })
}

/// The media streams' settings from the server's config (`media_secret`, `public_url`,
/// `twilio_auth_token`, `exotel_callback_token`).
pub fn media_config(config: &crate::config::Config) -> MediaConfig {
    let mut mc = MediaConfig::new(config.media_secret(), config.public_url());
    mc.twilio_auth_token = config.twilio_auth_token.clone();
    mc.exotel_callback_token = config.exotel_callback_token.clone();
    mc.cache_entries = config.greeting_cache_entries;
    mc
}

/// Speech services from the config's `[speech]` section (`crate::speech::SpeechClients`).
pub fn speech_from_config(config: &crate::config::Config) -> anyhow::Result<Arc<dyn SpeechFactory>> {
    Ok(Arc::new(crate::speech::SpeechClients::new(&config.speech)?))
}

impl SpeechFactory for crate::speech::SpeechClients {
    fn for_agent(&self, agent: &Agent) -> Result<SpeechSet, SpeechError> {
        Ok(SpeechSet { stt: self.stt(&agent.stt)?, llm: self.llm(&agent.llm)?, tts: self.tts(&agent.tts)? })
    }
}

/// [`CallRecords`] on the store: the agent of the call's campaign, the transcript saved
/// on the call (stamped on the engine's clock).
pub struct StoreRecords {
    pub store: Arc<dyn dialtone_store::Store>,
    pub clock: Arc<dyn dialtone_core::Clock>,
}

#[async_trait]
impl CallRecords for StoreRecords {
    async fn agent_for_call(&self, call: &CallId) -> anyhow::Result<Option<Agent>> {
        Ok(self.store.agent_for_call(call).await?)
    }

    async fn save_conversation(&self, call: &CallId, transcript: &[TranscriptTurn], voicemail_left: bool) -> anyhow::Result<()> {
        if !self.store.save_transcript(call, transcript, voicemail_left, self.clock.now()).await? {
            tracing::warn!(call_id = %call, "the transcript's call is not in the store");
        }
        Ok(())
    }
}
