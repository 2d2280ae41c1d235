//! A stand-in for Vapi, Twilio and Exotel: their HTTP APIs and webhooks,
//! spoken from the provider's side, with configurable outcomes, a scaled clock
//! and injected faults, and one set of books across all three.
//!
//! Routes: Vapi `POST/GET /call`, `GET /call/{id}`, `POST /call/{id}/control`;
//! Twilio `POST /2010-04-01/Accounts/{sid}/Calls.json`, `GET|POST
//! …/Calls/{CallSid}.json`; Exotel `POST /v1/Accounts/{sid}/Calls/connect.json`,
//! `GET …/Calls/{CallSid}.json`; the sim's own `POST /sim/inbound`,
//! `GET /sim/stats`, `GET /healthz`; speech services (see [`speech`]): Deepgram-compatible
//! WS `/v1/listen`, OpenAI-compatible `POST /v1/chat/completions` and
//! `POST /v1/audio/transcriptions`, ElevenLabs-compatible WS
//! `/v1/text-to-speech/{voice}/stream-input`.
//!
//! Media streams: an answered Exotel call with `StreamUrl`, or Twilio call whose TwiML has
//! `<Connect><Stream url=…>`, gets a WebSocket opened to that URL, played by a scripted
//! [`Callee`]; what the sim heard lands in [`SimStats::media`].
//!
//! It shares no code with dialtone's provider clients on purpose: a
//! misunderstanding of a wire format must not be able to hide in both.

mod api;
mod config;
mod exotel;
pub mod fixtures;
mod ids;
mod inbound;
mod lifecycle;
mod media;
pub mod speech;
mod state;
mod stats;
mod twilio;
mod vapi;
mod webhooks;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{Faults, OutcomeMix, SimConfig, SimOutcome};
pub use media::Callee;
pub use speech::SpeechStats;
pub use stats::{CalleeSummary, Histogram, LiveChange, MediaCallRecord, MediaSummary, Occupancy, OutcomeCounts, SimStats, MEDIA_RECORDS_KEPT};
/// `X-Twilio-Signature`: base64(HMAC-SHA1(auth_token, url + each param's name
/// and value, sorted by name then value)), as the sim signs Twilio callbacks.
pub use twilio::signature as twilio_signature;
/// hex(HMAC-SHA256(secret, "{timestamp}.{raw body}")), as the sim signs webhooks.
pub use webhooks::sign as hmac_signature;

/// The simulator's shared state; clones are handles to the same simulation.
#[derive(Clone)]
pub struct Sim {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    config: SimConfig,
    state: Mutex<state::State>,
    http: reqwest::Client,
    stop: watch::Sender<bool>,
    speech: speech::Counters,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, state::State> {
        // A panic elsewhere must not take the books down with it.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Resolves once `Sim::stop` has been called.
    pub(crate) async fn stopped(&self) {
        let mut rx = self.stop.subscribe();
        let _ = rx.wait_for(|stopped| *stopped).await;
    }
}

impl Sim {
    pub fn new(config: SimConfig) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("the TLS backend initializes");
        let state = state::State::new(&config);
        let (stop, _) = watch::channel(false);
        Self { shared: Arc::new(Shared { config, state: Mutex::new(state), http, stop, speech: speech::Counters::default() }) }
    }

    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    /// All routes, ready to serve.
    pub fn router(&self) -> axum::Router {
        api::router(Arc::clone(&self.shared))
    }

    /// Serves until this future is dropped or aborted.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// Binds `addr` (e.g. `"127.0.0.1:0"`) and serves in the background.
    pub async fn spawn(config: SimConfig, addr: &str) -> std::io::Result<SimHandle> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let sim = Sim::new(config);
        let server = tokio::spawn(sim.clone().serve(listener));
        Ok(SimHandle { addr, sim, server })
    }

    pub fn stats(&self) -> SimStats {
        self.shared.lock().stats()
    }

    /// What the speech services (Deepgram-, OpenAI-, ElevenLabs-compatible) were asked.
    pub fn speech_stats(&self) -> SpeechStats {
        self.shared.speech.snapshot()
    }

    /// Every open and end of a call so far, in the order the books saw them (see
    /// [`Occupancy::of`] for the figures worked out from it).
    pub fn live_log(&self) -> Vec<LiveChange> {
        self.shared.lock().live_log()
    }

    /// What the sim heard on the latest media-stream calls that have ended ([`SimStats::media`], bounded).
    pub fn media_records(&self) -> Vec<MediaCallRecord> {
        self.shared.lock().media_records()
    }

    /// Freezes every call where it is and stops sending webhooks.
    pub fn stop(&self) {
        self.shared.stop.send_replace(true);
    }
}

/// A simulator serving in the background. Dropping the handle leaves it
/// running until the runtime ends; call [`SimHandle::shutdown`] to stop it.
pub struct SimHandle {
    addr: SocketAddr,
    sim: Sim,
    server: JoinHandle<std::io::Result<()>>,
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn sim(&self) -> &Sim {
        &self.sim
    }

    pub fn stats(&self) -> SimStats {
        self.sim.stats()
    }

    pub fn live_log(&self) -> Vec<LiveChange> {
        self.sim.live_log()
    }

    /// Stops serving and stops every call's task and webhook sender.
    pub fn shutdown(self) {
        self.sim.stop();
        self.server.abort();
    }
}
