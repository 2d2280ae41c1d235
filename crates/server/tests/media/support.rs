//! The harness: the real server on port 0 over a fresh SQLite file, on a manual clock,
//! with scripted speech services; the test plays Exotel or Twilio with a WebSocket client.

use async_trait::async_trait;
use base64::Engine as _;
use dialtone_core::{Agent, AgentId, CallId, Clock, ManualClock, SpeechService};
use dialtone_server::app::{self, AppState, VoiceParts};
use dialtone_server::config::Config;
use dialtone_server::media::{MediaConfig, SpeechFactory, SpeechSet};
use dialtone_voice::speech::{ChatRequest, Llm, SpeechError, Stt, SttEvent, SttInput, SttOptions, SttSession, Tts, TtsOptions};
use futures::stream::BoxStream;
use futures::{SinkExt, StreamExt};
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

pub const TWILIO_TOKEN: &str = "media-it-twilio-token";
pub const REPLY: &str = "Your appointment is at ten tomorrow.";
/// What the scripted STT hears in any utterance.
pub const HEARD: &str = "What time is my appointment tomorrow?";

pub fn agent() -> Agent {
    let now = Timestamp::UNIX_EPOCH;
    Agent {
        id: AgentId::new(),
        workspace_id: dialtone_core::WorkspaceId::new(),
        name: "Reminder".into(),
        greeting: "Hi, this is the clinic calling about your appointment.".into(),
        system_prompt: "You remind people of appointments.".into(),
        no_response_prompt: "Hello? Are you there?".into(),
        goodbye: "Goodbye.".into(),
        voicemail_message: Some("Please call the clinic back.".into()),
        max_duration_secs: 600,
        language: "en-US".into(),
        stt: SpeechService { provider: "sim".into(), ..Default::default() },
        llm: SpeechService { provider: "sim".into(), ..Default::default() },
        tts: SpeechService { provider: "sim".into(), ..Default::default() },
        created_at: now,
        updated_at: now,
    }
}

/// Scripted services. TTS: 30 ms of a 440 Hz tone per character of text (so sizes are
/// predictable), in 50 ms pieces. STT: `HEARD` as the final text once audio came and the
/// turn is finalized. LLM: `REPLY` in two deltas. `live` counts the LLM/TTS streams not
/// yet dropped: none may outlive the session.
#[derive(Clone, Default)]
pub struct Scripted {
    pub live: Arc<std::sync::atomic::AtomicUsize>,
    pub tts_calls: Arc<Mutex<Vec<String>>>,
    pub llm_calls: Arc<Mutex<Vec<ChatRequest>>>,
    /// What the STT hears in the next utterances (set by the test before it speaks a clip);
    /// `None`: `HEARD`.
    pub says: Arc<Mutex<Option<String>>>,
}

impl Scripted {
    /// LLM/TTS streams still alive (held by a task).
    pub fn live_streams(&self) -> usize {
        self.live.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn guard(&self) -> Live {
        self.live.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Live(self.live.clone())
    }
}

/// Counts one LLM/TTS stream as alive until dropped.
pub struct Live(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

pub fn tts_samples(text: &str) -> usize {
    text.chars().count() * 30 * 8
}

#[async_trait]
impl Tts for Scripted {
    async fn synthesize(&self, text: &str, options: &TtsOptions) -> Result<BoxStream<'static, Result<Vec<i16>, SpeechError>>, SpeechError> {
        assert_eq!(options.sample_rate, 8000);
        self.tts_calls.lock().unwrap().push(text.to_string());
        let n = tts_samples(text);
        let pcm: Vec<i16> = (0..n).map(|i| ((i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 8000.0).sin() * 8000.0) as i16).collect();
        let pieces: Vec<Result<Vec<i16>, SpeechError>> = pcm.chunks(400).map(|c| Ok(c.to_vec())).collect();
        let guard = self.guard();
        Ok(futures::stream::iter(pieces)
            .map(move |p| {
                let _ = &guard;
                p
            })
            .boxed())
    }
}

#[async_trait]
impl Llm for Scripted {
    async fn reply(&self, request: &ChatRequest) -> Result<BoxStream<'static, Result<String, SpeechError>>, SpeechError> {
        self.llm_calls.lock().unwrap().push(request.clone());
        let guard = self.guard();
        let (a, b) = REPLY.split_at(10);
        Ok(futures::stream::iter(vec![Ok(a.to_string()), Ok(b.to_string())])
            .map(move |p| {
                let _ = &guard;
                p
            })
            .boxed())
    }
}

#[async_trait]
impl Stt for Scripted {
    async fn open(&self, _options: &SttOptions) -> Result<SttSession, SpeechError> {
        let says = self.says.clone();
        let (audio, mut rx) = tokio::sync::mpsc::channel::<SttInput>(1024);
        let (tx, events) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            let mut heard = 0usize;
            while let Some(input) = rx.recv().await {
                match input {
                    SttInput::Audio(pcm) => heard += pcm.len(),
                    SttInput::Finalize if heard > 0 => {
                        heard = 0;
                        let text = says.lock().unwrap().clone().unwrap_or_else(|| HEARD.into());
                        if tx.send(Ok(SttEvent::Final { text, speech_final: true })).await.is_err() {
                            return;
                        }
                    }
                    SttInput::Finalize => {}
                }
            }
        });
        Ok(SttSession { audio, events })
    }
}

impl SpeechFactory for Scripted {
    fn for_agent(&self, _agent: &Agent) -> Result<SpeechSet, SpeechError> {
        Ok(SpeechSet { stt: Arc::new(self.clone()), llm: Arc::new(self.clone()), tts: Arc::new(self.clone()) })
    }
}

pub struct MediaApp {
    pub base: String,
    pub state: Arc<AppState>,
    pub clock: ManualClock,
    pub speech: Scripted,
    cancel: CancellationToken,
    dir: Option<tempfile::TempDir>,
}

impl Drop for MediaApp {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl MediaApp {
    pub async fn start() -> Self {
        Self::start_in(tempfile::tempdir().unwrap()).await
    }

    /// Stops this server and starts a new process state (a new `AppState`: empty caches,
    /// fresh scripted speech services) over the same database.
    pub async fn restart(mut self) -> Self {
        let dir = self.dir.take().unwrap();
        drop(self);
        Self::start_in(dir).await
    }

    /// The server over the database in `dir` (made if new).
    pub async fn start_in(dir: tempfile::TempDir) -> Self {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "off".into());
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let config = Config {
            database_url: format!("sqlite://{}", dir.path().join("media.db").display()).into(),
            public_url: Some(base.clone()),
            twilio_auth_token: Some(TWILIO_TOKEN.to_string().into()),
            exotel_callback_token: Some("exotel-cb-token".to_string().into()),
            ..Config::default()
        };
        let clock = ManualClock::new("2026-12-01T09:00:00Z".parse().unwrap());
        let speech = Scripted::default();
        let parts =
            VoiceParts { speech: Some(Arc::new(speech.clone())), records: None, configure: Some(|c: &mut MediaConfig| c.max_tick = Duration::from_millis(5)) };
        let state = app::build_with(&config, config.engine(), Arc::new(clock.clone()), parts).await.unwrap();
        let cancel = CancellationToken::new();
        tokio::spawn(app::serve(state.clone(), listener, cancel.clone()));
        Self { base, state, clock, speech, cancel, dir: Some(dir) }
    }

    /// A call in progress whose agent is `agent` (stored in the default workspace).
    pub async fn call(&self, mut agent: Agent) -> CallId {
        let store = &self.state.store;
        let ws = store.default_workspace().await.unwrap();
        agent.workspace_id = ws.clone();
        store.create_agent(&agent).await.unwrap();
        self.another_call(&agent.id).await
    }

    /// Another call in progress for agent `agent_id` (stored already).
    pub async fn another_call(&self, agent_id: &AgentId) -> CallId {
        use dialtone_store::{Assistant, NewSingleCall};
        let store = &self.state.store;
        let ws = store.default_workspace().await.unwrap();
        let new = NewSingleCall {
            workspace_id: ws,
            agent_id: Some(agent_id.clone()),
            assistant: Assistant { id: "agent".into(), provider: dialtone_core::ProviderKind::Sim, phone_number_id: "pn".into(), name: None },
            phone: dialtone_core::PhoneNumber::parse("+14155552671", "US").unwrap(),
            extension: None,
            name: None,
            variables: Default::default(),
            timezone: dialtone_core::ContactZone::single("UTC", dialtone_core::TzSource::Explicit),
            // Far ahead, so the engine leaves it alone: the test plays the provider.
            scheduled_for: self.clock.now() + SignedDuration::from_hours(240),
            recurrence: None,
            respect_business_hours: false,
            max_attempts: 1,
            retry: dialtone_core::RetryPolicy::default(),
            account_id: None,
        };
        let call = store.create_single_call(new, self.clock.now()).await.unwrap();
        self.progress(&call.id, dialtone_core::CallStatus::InProgress).await;
        call.id
    }

    pub async fn progress(&self, call: &CallId, status: dialtone_core::CallStatus) {
        self.ingest(call, dialtone_core::EventKind::Progress(status), &format!("progress:{status}")).await;
    }

    pub async fn ingest(&self, call: &CallId, kind: dialtone_core::EventKind, key: &str) {
        let event = dialtone_core::ProviderEvent {
            provider_type: "test".into(),
            provider_call_id: None,
            call_id: Some(call.clone()),
            kind,
            dedupe_key: format!("{call}:{key}"),
            occurred_at: None,
            cost: None,
            duration_ms: None,
            report: None,
            raw: json!({}).into(),
            webhook: None,
        };
        self.state.engine.ingest(vec![event]).await.unwrap();
    }

    pub async fn stored_call(&self, call: &CallId) -> dialtone_store::Call {
        let ws = self.state.store.default_workspace().await.unwrap();
        self.state.store.get_call(&ws, call).await.unwrap().unwrap()
    }

    pub fn ws_base(&self) -> String {
        self.base.replacen("http://", "ws://", 1)
    }

    pub fn advance(&self, ms: i64) {
        self.clock.advance(SignedDuration::from_millis(ms));
    }

    /// Waits (real time, bounded) until `f` holds.
    pub async fn until<F: FnMut() -> bool>(&self, what: &str, mut f: F) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !f() {
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Plays the provider's side of one stream.
pub struct Provider {
    pub ws: Ws,
    pub exotel: bool,
    pub sid: String,
    /// Frames sent after `start` (the server counts those it handled).
    pub sent: u64,
    /// Every frame dialtone sent so far, in order (`next` and `arrived` append).
    pub log: Vec<Got>,
}

/// What the provider received (frames other than media are kept whole).
#[derive(Debug, Clone, PartialEq)]
pub enum Got {
    Media(usize),
    Mark(String),
    Clear,
    Closed,
}

impl Provider {
    pub async fn send(&mut self, v: Value) {
        // A closed socket (dialtone hung up) is for the reads to notice.
        let _ = self.ws.send(Message::Text(v.to_string().into())).await;
        if v["event"] != "connected" && v["event"] != "start" {
            self.sent += 1;
        }
    }

    /// Waits until dialtone has handled every frame sent so far (so the clock may move).
    pub async fn settle(&self, app: &MediaApp) {
        let sent = self.sent;
        let media = &app.state.media;
        app.until("dialtone to handle the frames sent (or to end the call)", || {
            media.frames_handled.load(std::sync::atomic::Ordering::SeqCst) >= sent || media.running_sessions() == 0
        })
        .await;
    }

    fn sid_key(&self) -> &'static str {
        if self.exotel {
            "stream_sid"
        } else {
            "streamSid"
        }
    }

    pub async fn start(&mut self, custom: Value) {
        if self.exotel {
            self.send(json!({"event": "connected"})).await;
            self.send(json!({"event": "start", "sequence_number": "1", "stream_sid": self.sid, "start": {
                "stream_sid": self.sid, "call_sid": "ca_media_it", "account_sid": "acme", "from": "+919876543210", "to": "+918047112233",
                "custom_parameters": custom, "media_format": {"encoding": "audio/x-raw", "sample_rate": "8000", "bit_rate": "16"}}}))
                .await;
        } else {
            self.send(json!({"event": "connected", "protocol": "Call", "version": "1.0.0"})).await;
            self.send(json!({"event": "start", "sequenceNumber": "1", "streamSid": self.sid, "start": {
                "streamSid": self.sid, "accountSid": "AC1", "callSid": "CA_media_it", "tracks": ["inbound"],
                "customParameters": custom, "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))
                .await;
        }
    }

    /// The next frame dialtone sent; checks its stream id and spelling.
    pub async fn next(&mut self) -> Got {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(20), self.ws.next()).await.expect("a frame from dialtone within 20 s");
            let text = match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Got::Closed,
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(_)) => continue,
            };
            let got = self.parse(&text);
            self.log.push(got.clone());
            return got;
        }
    }

    /// Frames dialtone sent that have already arrived, without waiting for more.
    pub fn arrived(&mut self) -> Vec<Got> {
        let mut got = Vec::new();
        while let Some(msg) = futures::FutureExt::now_or_never(self.ws.next()) {
            match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => {
                    got.push(Got::Closed);
                    break;
                }
                Some(Ok(Message::Text(text))) => got.push(self.parse(&text)),
                Some(Ok(_)) => {}
            }
        }
        self.log.extend(got.iter().cloned());
        got
    }

    /// One text frame from dialtone; checks its stream id and spelling.
    fn parse(&self, text: &str) -> Got {
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(v[self.sid_key()], self.sid, "{text}");
        match v["event"].as_str().unwrap() {
            "media" => Got::Media(base64::engine::general_purpose::STANDARD.decode(v["media"]["payload"].as_str().unwrap()).unwrap().len()),
            "mark" => Got::Mark(v["mark"]["name"].as_str().unwrap().to_string()),
            "clear" => Got::Clear,
            other => panic!("unexpected event {other}: {text}"),
        }
    }

    /// Reads until dialtone closes the stream, echoing marks; the frames read.
    pub async fn drain(&mut self, app: &MediaApp) -> Vec<Got> {
        let mut got = Vec::new();
        loop {
            let g = self.next().await;
            got.push(g.clone());
            match g {
                Got::Closed => return got,
                Got::Mark(m) => self.mark(app, &m).await,
                _ => {}
            }
        }
    }

    /// Checks the size of every media frame dialtone sent ([`Provider::log`]): Twilio exactly
    /// 160 B (20 ms of μ-law); Exotel a multiple of 320 B (20 ms of PCM16) and at least 3,200 B
    /// (100 ms), except the last before a mark, a clear or the end (PROVIDERS.md,
    /// docs/sim-voice.md).
    pub fn check_frame_sizes(&self) {
        let log = &self.log;
        assert!(log.iter().any(|g| matches!(g, Got::Media(_))), "dialtone sent no media");
        for (i, got) in log.iter().enumerate() {
            let Got::Media(n) = *got else { continue };
            if !self.exotel {
                assert_eq!(n, 160, "Twilio frame {i} is {n} B: {log:?}");
                continue;
            }
            let last = !matches!(log.get(i + 1), Some(Got::Media(_)));
            assert!(n > 0 && n % 320 == 0, "Exotel frame {i} is {n} B: {log:?}");
            assert!(last || n >= 3200, "Exotel frame {i} is {n} B (< 3,200 B, not the last of a turn): {log:?}");
        }
    }

    /// Media sizes up to the next mark (returned with them).
    pub async fn turn(&mut self) -> (Vec<usize>, String) {
        let mut sizes = Vec::new();
        loop {
            match self.next().await {
                Got::Media(n) => sizes.push(n),
                Got::Mark(m) => return (sizes, m),
                other => panic!("expected media or a mark, got {other:?} after {sizes:?}"),
            }
        }
    }

    pub async fn mark(&mut self, app: &MediaApp, name: &str) {
        let key = self.sid_key();
        self.send(json!({"event": "mark", key: self.sid, "mark": {"name": name}})).await;
        self.settle(app).await;
    }

    /// Sends `ulaw` (8 kHz μ-law) as the callee's audio, in the provider's framing
    /// (Exotel 100 ms of 16-bit PCM, Twilio 20 ms of μ-law), moving the clock along.
    pub async fn speak(&mut self, app: &MediaApp, ulaw: &[u8]) {
        let frame = if self.exotel { 800 } else { 160 };
        let key = self.sid_key();
        for (i, chunk) in ulaw.chunks(frame).enumerate() {
            let bytes: Vec<u8> = if self.exotel { dialtone_voice::codec::pcm_to_le_bytes(&dialtone_voice::codec::ulaw_to_pcm(chunk)) } else { chunk.to_vec() };
            let payload = base64::engine::general_purpose::STANDARD.encode(bytes);
            let media = if self.exotel {
                json!({"chunk": i.to_string(), "timestamp": "0", "payload": payload})
            } else {
                json!({"track": "inbound", "chunk": i.to_string(), "timestamp": "0", "payload": payload})
            };
            self.send(json!({"event": "media", key: self.sid, "media": media})).await;
            self.settle(app).await;
            app.advance((chunk.len() / 8) as i64);
        }
    }

    /// Silence for `ms`, as the callee's line sends it.
    pub async fn silence(&mut self, app: &MediaApp, ms: usize) {
        self.speak(app, &vec![0xFFu8; ms * 8]).await;
    }

    pub async fn stop(&mut self) {
        let key = self.sid_key();
        let stop = if self.exotel {
            json!({"call_sid": "ca_media_it", "account_sid": "acme", "reason": "callended"})
        } else {
            json!({"accountSid": "AC1", "callSid": "CA_media_it"})
        };
        self.send(json!({"event": "stop", key: self.sid, "stop": stop})).await;
    }
}

/// A clip's text from `fixtures/voice/clips.json`.
pub fn clip_text(name: &str) -> String {
    dialtone_sim::fixtures::text(name).unwrap_or_else(|| panic!("no clip {name}")).to_owned()
}

/// A clip's μ-law bytes.
pub fn fixture(name: &str) -> Vec<u8> {
    dialtone_sim::fixtures::ulaw(name).to_vec()
}
