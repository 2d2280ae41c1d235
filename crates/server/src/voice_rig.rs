//! The voice pipeline against the simulator, for `dialtone demo --voice` and `dialtone bench
//! voice`: the real server (media routes, conversation driver, speech clients) with the
//! simulator in-process playing both the provider (it answers, opens the media WebSocket and
//! plays a scripted callee) and the speech services (its Deepgram-, OpenAI- and
//! ElevenLabs-compatible fakes, through the real clients). Everything the figures come from is
//! the simulator's own record ([`dialtone_sim::MediaCallRecord`]).
//!
//! Calls are placed by asking the simulator's Exotel/Twilio API directly with the call's
//! stream address, as dialtone's provider client would: the calls exist in the store (far in
//! the future, so the engine leaves them alone) and are marked in progress.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dialtone_core::{Agent, AgentId, CallId, SpeechService, SystemClock, TranscriptTurn};
use dialtone_sim::{Callee, MediaCallRecord, OutcomeMix, SimConfig};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::app::{self, AppState, VoiceParts};
use crate::config::{Config, SpeechConfig};
use crate::demo::{DemoProvider, SimThread};

const TWILIO_SID: &str = "ACvoice0000000000000000000000000";
const EXOTEL_SID: &str = "dialtone-voice";
const EXOTEL_KEY: &str = "voice-exotel-key";
const EXOPHONE: &str = "+918047100000";
const TWILIO_FROM: &str = "+15005550006";

/// One agent for every call; transcripts are counted, not kept.
struct RigRecords {
    agent: Agent,
    saved: AtomicU64,
    voicemails: AtomicU64,
}

#[async_trait]
impl crate::media::CallRecords for RigRecords {
    async fn agent_for_call(&self, _call: &CallId) -> anyhow::Result<Option<Agent>> {
        Ok(Some(self.agent.clone()))
    }

    async fn save_conversation(&self, _call: &CallId, _transcript: &[TranscriptTurn], voicemail_left: bool) -> anyhow::Result<()> {
        self.saved.fetch_add(1, Ordering::Relaxed);
        self.voicemails.fetch_add(u64::from(voicemail_left), Ordering::Relaxed);
        Ok(())
    }
}

/// The demo's agent: an appointment reminder on the simulator's speech services.
pub fn demo_agent() -> Agent {
    let now = jiff::Timestamp::now();
    let sim = SpeechService { provider: "sim".into(), ..Default::default() };
    Agent {
        id: AgentId::new(),
        workspace_id: dialtone_core::WorkspaceId::new(),
        name: "Appointment reminder".into(),
        greeting: "Hi, this is the clinic calling about your appointment tomorrow.".into(),
        system_prompt: "You remind people of their appointment and answer questions about it briefly.".into(),
        no_response_prompt: dialtone_core::agent::DEFAULT_NO_RESPONSE_PROMPT.into(),
        goodbye: "Thank you, goodbye.".into(),
        voicemail_message: Some("Hi, this is the clinic. Please call us back about your appointment tomorrow.".into()),
        max_duration_secs: 120,
        language: "en-US".into(),
        stt: sim.clone(),
        llm: sim.clone(),
        tts: sim,
        created_at: now,
        updated_at: now,
    }
}

pub struct VoiceRig {
    pub provider: DemoProvider,
    pub state: Arc<AppState>,
    sim: SimThread,
    records: Arc<RigRecords>,
    http: reqwest::Client,
    cancel: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl VoiceRig {
    /// Starts the simulator (every call answered after a short ring) and the server.
    pub async fn start(provider: DemoProvider) -> anyhow::Result<Self> {
        anyhow::ensure!(provider != DemoProvider::Vapi, "voice calls run on Exotel or Twilio media streams");
        let dir = tempfile::tempdir()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let secret = crate::keys::generate();
        let sim_config = SimConfig {
            twilio_account_sid: Some(TWILIO_SID.into()),
            twilio_auth_token: Some(secret.clone()),
            exotel_sid: Some(EXOTEL_SID.into()),
            exotel_api_key: Some(EXOTEL_KEY.into()),
            exotel_api_token: Some(secret.clone()),
            outcomes: OutcomeMix::parse("answered=1").map_err(anyhow::Error::msg)?,
            // Ring 0.2–0.5 s; the media itself always runs in real time.
            time_scale: 0.1,
            ring_secs: (2.0, 5.0),
            ..SimConfig::default()
        };
        let sim = SimThread::start(sim_config).await?;
        let config = Config {
            database_url: format!("sqlite://{}", dir.path().join("voice.db").display()).into(),
            public_url: Some(base.clone()),
            twilio_auth_token: Some(secret.clone().into()),
            speech: SpeechConfig { sim_url: sim.handle.base_url(), ..SpeechConfig::default() },
            ..Config::default()
        };
        let records = Arc::new(RigRecords { agent: demo_agent(), saved: AtomicU64::new(0), voicemails: AtomicU64::new(0) });
        let parts = VoiceParts { speech: None, records: Some(records.clone()), configure: None };
        let state = app::build_with(&config, config.engine(), Arc::new(SystemClock), parts).await?;
        let cancel = CancellationToken::new();
        let server = tokio::spawn(app::serve(state.clone(), listener, cancel.clone()));
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        Ok(Self { provider, state, sim, records, http, cancel, server, _dir: dir })
    }

    /// A number that the simulator's callee rule maps to `callee` (its last digit), the
    /// `n`th of its kind.
    pub fn number_for(callee: Callee, n: usize) -> String {
        callee.number_with_prefix(&format!("+1415{}{:03}", 201 + (n / 1_000) % 700, n % 1_000))
    }

    /// Places a call to `number` with the agent: a call in the store, in progress, and the
    /// simulator asked to connect it to the call's media stream.
    pub async fn dial(&self, number: &str) -> anyhow::Result<CallId> {
        let call = self.stored_call(number).await?;
        let media = &self.state.media.config;
        let sim = self.sim.handle.base_url();
        let secret = self.sim.handle.sim().config().twilio_auth_token.clone().unwrap_or_default();
        let response = match self.provider {
            DemoProvider::Exotel => {
                let stream = media.exotel_stream_url(&call);
                let form = [("From", number), ("CallerId", EXOPHONE), ("StreamUrl", &stream), ("StreamType", "bidirectional"), ("CustomField", call.as_str())];
                self.http.post(format!("{sim}/v1/Accounts/{EXOTEL_SID}/Calls/connect.json")).basic_auth(EXOTEL_KEY, Some(&secret)).form(&form).send().await?
            }
            _ => {
                let token = dialtone_providers::media::stream_token(media.secret.expose_secret().as_bytes(), &call);
                let twiml = format!(
                    r#"<Response><Connect><Stream url="{}/media/twilio"><Parameter name="dialtone_call_id" value="{call}"/><Parameter name="token" value="{token}"/></Stream></Connect></Response>"#,
                    media.ws_base()
                );
                let form = [("To", number), ("From", TWILIO_FROM), ("Twiml", &twiml)];
                self.http.post(format!("{sim}/2010-04-01/Accounts/{TWILIO_SID}/Calls.json")).basic_auth(TWILIO_SID, Some(&secret)).form(&form).send().await?
            }
        };
        let status = response.status();
        anyhow::ensure!(status.is_success(), "the simulator refused the call: {status} {}", response.text().await.unwrap_or_default());
        Ok(call)
    }

    async fn stored_call(&self, number: &str) -> anyhow::Result<CallId> {
        use dialtone_store::{Assistant, NewSingleCall};
        let store = &self.state.store;
        let now = jiff::Timestamp::now();
        let new = NewSingleCall {
            workspace_id: store.default_workspace().await?,
            assistant: Assistant { id: "voice".into(), provider: self.provider.campaign_provider(), phone_number_id: self.provider.caller().into(), name: None },
            phone: dialtone_core::PhoneNumber::parse(number, "US").map_err(|e| anyhow::anyhow!("{number}: {e}"))?,
            extension: None,
            name: None,
            variables: Default::default(),
            timezone: dialtone_core::ContactZone::single("UTC", dialtone_core::TzSource::Explicit),
            // Far ahead, so the engine leaves it alone: the rig places it itself.
            scheduled_for: now + jiff::SignedDuration::from_hours(24 * 30),
            recurrence: None,
            respect_business_hours: false,
            max_attempts: 1,
            retry: dialtone_core::RetryPolicy::default(),
            agent_id: None,
        };
        let call = store.create_single_call(new, now).await?;
        let event = dialtone_core::ProviderEvent {
            provider_type: "voice-rig".into(),
            provider_call_id: None,
            call_id: Some(call.id.clone()),
            kind: dialtone_core::EventKind::Progress(dialtone_core::CallStatus::InProgress),
            dedupe_key: format!("{}:rig-in-progress", call.id),
            occurred_at: None,
            cost: None,
            duration_ms: None,
            raw: json!({}),
        };
        self.state.engine.ingest(vec![event]).await?;
        Ok(call.id)
    }

    /// Waits until the simulator has a record for `n` media calls (or `timeout` passes).
    pub async fn records(&self, n: usize, timeout: Duration) -> Vec<MediaCallRecord> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let records = self.sim.handle.sim().media_records();
            if records.len() >= n || tokio::time::Instant::now() >= deadline {
                return records;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// CPU time the simulator's thread has used so far.
    pub async fn sim_cpu(&self) -> Duration {
        self.sim.cpu().await
    }

    pub fn transcripts_saved(&self) -> u64 {
        self.records.saved.load(Ordering::Relaxed)
    }

    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.server.await;
        self.sim.shutdown();
    }
}

/// `p`-quantile (0..=1) of `values`, nearest rank; `None` when empty.
pub fn percentile(values: &[u64], p: f64) -> Option<u64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied()
}

/// The voice figures of a set of records: per callee kind (calls, who hung up, clips), and
/// latencies and sizes over all of them.
pub fn summarize(records: &[MediaCallRecord]) -> Value {
    let mut by_callee: BTreeMap<String, Value> = BTreeMap::new();
    for r in records {
        let entry = by_callee.entry(r.callee.clone()).or_insert_with(|| json!({"calls": 0, "hung_up_by": {}, "connect_errors": 0}));
        entry["calls"] = json!(entry["calls"].as_u64().unwrap_or(0) + 1);
        if r.connect_error.is_some() {
            entry["connect_errors"] = json!(entry["connect_errors"].as_u64().unwrap_or(0) + 1);
        }
        let by = r.hung_up_by.clone().unwrap_or_else(|| "-".into());
        let n = entry["hung_up_by"][&by].as_u64().unwrap_or(0) + 1;
        entry["hung_up_by"][&by] = json!(n);
    }
    let greeting: Vec<u64> = records.iter().filter(|r| r.callee != "talks_first").filter_map(|r| r.greeting_latency_ms).collect();
    let reply: Vec<u64> = records.iter().flat_map(|r| r.reply_latencies_ms.iter().copied()).collect();
    let clear: Vec<u64> = records.iter().filter_map(|r| r.clear_latency_ms).collect();
    let gaps: Vec<u64> = records.iter().filter(|r| r.connected).map(|r| r.playout_gap_max_ms).collect();
    let stat = |v: &[u64]| json!({"n": v.len(), "p50_ms": percentile(v, 0.5), "p95_ms": percentile(v, 0.95), "max_ms": v.iter().max()});
    json!({
        "calls": records.len(),
        "by_callee": by_callee,
        "greeting_latency": stat(&greeting),
        "reply_latency": stat(&reply),
        "barge_in_to_clear": stat(&clear),
        "playout_gap_max_per_call": {"p99_ms": percentile(&gaps, 0.99), "max_ms": gaps.iter().max(), "gaps_over_40_ms": records.iter().map(|r| r.playout_gaps).sum::<u64>()},
        "chunk_size_violations": records.iter().map(|r| r.chunk_size_violations).sum::<u64>(),
        "voicemails_left": records.iter().filter(|r| r.voicemail_left == Some(true)).count(),
        "voicemail_calls": records.iter().filter(|r| r.voicemail_left.is_some()).count(),
        "audio_received_s": records.iter().map(|r| r.audio_received_ms).sum::<u64>() as f64 / 1000.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!((percentile(&v, 0.5), percentile(&v, 0.95), percentile(&v, 1.0)), (Some(50), Some(95), Some(100)));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[7], 0.99), Some(7));
    }

    #[test]
    fn numbers_select_their_callee() {
        for callee in Callee::ALL {
            let number = VoiceRig::number_for(callee, 42);
            assert_eq!(Callee::by_last_digit(&number), callee);
            assert!(dialtone_core::PhoneNumber::parse(&number, "US").is_ok(), "{number}");
        }
    }
}
