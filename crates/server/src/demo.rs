//! `dialtone demo`: the whole product with zero set-up. A fresh SQLite file in a temp dir,
//! the simulator in-process, a campaign driven through the real HTTP API, a live progress
//! bar and a summary. The dialling figures come from the simulator's own record, not ours.

use crate::app::{self, AppState};
use crate::config::Config;
use clap::{Args, ValueEnum};
use dialtone_core::{PhoneNumber, ProviderKind, SystemClock};
use dialtone_engine::EngineConfig;
use dialtone_sim::{Faults, Sim, SimConfig, SimStats};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const EXAMPLE_CSV: &str = include_str!("../../../examples/contacts.csv");
/// The demo's voice provider: each is played by the simulator in its own wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoProvider {
    Vapi,
    Twilio,
    Exotel,
}

/// The demo agent's text-to-speech: the simulator's ElevenLabs-compatible service, or the
/// local `flite` program (Debian `flite`; no network, see `speech::flite`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DemoTts {
    #[default]
    Sim,
    Flite,
}

impl DemoTts {
    /// The agent's `tts.provider`.
    pub fn provider(self) -> &'static str {
        match self {
            Self::Sim => "sim",
            Self::Flite => "flite",
        }
    }
}

impl DemoProvider {
    /// The campaign's `provider` (Vapi's format is dialled through the `sim` account).
    pub(crate) fn campaign_provider(self) -> ProviderKind {
        match self {
            Self::Vapi => ProviderKind::Sim,
            Self::Twilio => ProviderKind::Twilio,
            Self::Exotel => ProviderKind::Exotel,
        }
    }

    /// Vapi dials from a phone number id; Twilio and Exotel from a caller number.
    pub(crate) fn caller(self) -> &'static str {
        match self {
            Self::Vapi => "pn_demo",
            Self::Twilio => "+15005550006",
            Self::Exotel => "+918047100000",
        }
    }
}

const SIM_KEY: &str = "demo-sim-key";
const TWILIO_SID: &str = "ACdemo00000000000000000000000000";
const EXOTEL_SID: &str = "dialtone-demo";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Generate N synthetic contacts instead of using examples/contacts.csv.
    #[arg(long)]
    pub contacts: Option<usize>,
    /// The campaign's concurrency cap (max_concurrent).
    #[arg(long, default_value_t = 8)]
    pub cap: u32,
    /// continuous | batch
    #[arg(long, default_value = "continuous")]
    pub mode: String,
    /// Simulated time per real second: 0.005 plays a 60 s call in 0.3 s.
    #[arg(long, default_value_t = 0.005)]
    pub time_scale: f64,
    /// Turn the simulator's fault mix on: 429s, 503s, latency, duplicate, out-of-order and dropped webhooks.
    #[arg(long)]
    pub faults: bool,
    /// Print one JSON object with the figures instead of the table.
    #[arg(long)]
    pub json: bool,
    #[arg(long, default_value_t = 3)]
    pub max_attempts: u32,
    /// Seed for the simulator's outcomes and faults.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Which provider's wire format the simulator plays.
    #[arg(long, value_enum, default_value = "vapi")]
    pub provider: DemoProvider,
    /// Use this database instead of a fresh SQLite file in a temp dir.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout_secs: u64,
    /// Run this many engines on the database, as that many `dialtone serve` nodes would
    /// (PostgreSQL only). All of them claim and place calls; webhooks go to the first.
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
    /// Whole conversations (Exotel or Twilio only): an agent on the simulator's speech
    /// services, contacts answered by the simulator's scripted callees over media streams,
    /// and the simulator's record of what it heard. Contacts default to 18; media runs in
    /// real time (`--time-scale` still shortens ringing).
    #[arg(long)]
    pub voice: bool,
    /// With `--voice`: the callees the contacts cycle through, e.g. `human,barge_in`
    /// (human, talks_first, silent, voicemail, barge_in, hangs_up_early; default four humans to
    /// one of each other kind).
    #[arg(long)]
    pub callees: Option<String>,
    /// With `--voice`: the share of calls (percent) the simulator leaves unanswered (no answer
    /// or busy), to be retried.
    #[arg(long, default_value_t = 10)]
    pub unanswered_percent: u32,
    /// With `--voice`: no line cache (`greeting_cache_entries = 0`): every greeting is
    /// synthesised after `start`, to see the cold greeting latency.
    #[arg(long)]
    pub no_greeting_cache: bool,
    /// The simulator thread's nice value (0–19, Linux). At 19 the simulator (the provider and
    /// its callees) gets only the CPU dialtone leaves, as if it ran on machines of its own:
    /// `bench voice` uses it to judge dialtone's own send jitter on a shared 2-core machine.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i32).range(0..=19))]
    pub sim_nice: i32,
    /// With `--voice`: the agent's text-to-speech, `sim` (the simulator's ElevenLabs-compatible
    /// service) or `flite` (local, needs Debian's `flite` on `PATH`).
    #[arg(long, value_enum, default_value = "sim")]
    pub tts: DemoTts,
}

/// `count` distinct, valid US numbers, the same for the same count.
pub fn synthetic_csv(count: usize) -> String {
    const AREAS: [u32; 16] = [201, 212, 213, 305, 312, 404, 415, 512, 617, 646, 702, 718, 773, 808, 917, 971];
    const PLANS: [&str; 3] = ["gold", "silver", "bronze"];
    let mut out = String::from("name,phone,plan\n");
    let (mut n, mut written) = (0usize, 0usize);
    while written < count {
        let area = AREAS[n % AREAS.len()];
        let rest = n / AREAS.len();
        let number = format!("+1{area}{}{:04}", 201 + rest % 700, (rest / 700) % 10_000);
        n += 1;
        if PhoneNumber::parse(&number, "US").is_ok() {
            let _ = writeln!(out, "Contact {written},{number},{}", PLANS[written % 3]);
            written += 1;
        }
    }
    out
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.mode == "continuous" || args.mode == "batch", "--mode must be continuous or batch");
    anyhow::ensure!(args.time_scale > 0.0, "--time-scale must be above 0");
    anyhow::ensure!(args.nodes >= 1, "--nodes must be at least 1");
    anyhow::ensure!(args.unanswered_percent < 100, "--unanswered-percent must be below 100");
    anyhow::ensure!(!args.voice || args.provider != DemoProvider::Vapi, "--voice needs --provider exotel or twilio (media streams)");
    if let Some(mix) = &args.callees {
        crate::demo_voice::parse_mix(mix).map_err(|e| anyhow::anyhow!("--callees: {e}"))?;
    }
    anyhow::ensure!(
        args.nodes == 1 || args.database_url.as_deref().is_some_and(|u| u.starts_with("postgres")),
        "--nodes above 1 needs --database-url postgres://… (several nodes share one PostgreSQL database)"
    );
    let report = execute(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

/// Runs the demo and returns its figures (the `--json` object).
pub async fn execute(args: &DemoArgs) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir()?;
    let database_url = args.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", dir.path().join("demo.db").display()));
    let webhook_secret = crate::keys::generate();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);

    let secret = crate::keys::generate();
    let sim_config = SimConfig {
        webhook_url: Some(format!("{base}/webhooks/vapi")),
        webhook_secret: Some(webhook_secret.clone()),
        api_key: Some(SIM_KEY.into()),
        twilio_account_sid: Some(TWILIO_SID.into()),
        twilio_auth_token: Some(secret.clone()),
        exotel_sid: Some(EXOTEL_SID.into()),
        exotel_api_key: Some("demo-exotel-key".into()),
        exotel_api_token: Some(secret.clone()),
        time_scale: args.time_scale,
        faults: if args.faults { Faults::demo_mix() } else { Faults::none() },
        seed: args.seed,
        // Voice: the callee kind decides the conversation; a few calls still go unanswered.
        outcomes: if args.voice { voice_mix(args.unanswered_percent) } else { Default::default() },
        ..SimConfig::default()
    };
    let mut longest_call = (sim_config.ring_secs.1 + sim_config.talk_secs.1 + 2.0) * args.time_scale;
    if args.voice {
        // Media runs in real time: the agent's 120 s cap, plus ringing.
        longest_call = longest_call.max(130.0);
    }
    let sim = SimThread::start(sim_config, args.sim_nice).await?;

    let config = Config {
        database_url: database_url.into(),
        public_url: Some(base.clone()),
        sim_base_url: sim.handle.base_url(),
        sim_api_key: SIM_KEY.into(),
        vapi_webhook_secret: Some(webhook_secret.into()),
        twilio_account_sid: Some(TWILIO_SID.into()),
        twilio_auth_token: Some(secret.clone().into()),
        twilio_base_url: format!("{}/2010-04-01", sim.handle.base_url()),
        // Agent calls send inline <Connect><Stream> TwiML whatever is configured here.
        twilio_twiml_url: Some("https://demo.invalid/twiml".into()),
        // The demo's calls are simulated: Twilio's 1 call/s default would make it crawl.
        twilio_rate_per_sec: 200.0,
        exotel_sid: Some(EXOTEL_SID.into()),
        exotel_api_key: Some("demo-exotel-key".into()),
        exotel_api_token: Some(secret.clone().into()),
        exotel_base_url: sim.handle.base_url(),
        exotel_flow_url: Some("https://demo.invalid/flow".into()),
        exotel_callback_token: Some(secret.into()),
        exotel_rate_per_min: 60_000,
        speech: crate::config::SpeechConfig { sim_url: sim.handle.base_url(), ..Default::default() },
        // An ephemeral master key: the demo's secrets live as long as its database does.
        master_key: Some(dialtone_store::secrets::MasterKey::generate().1),
        greeting_cache_entries: if args.no_greeting_cache { 0 } else { Config::default().greeting_cache_entries },
        ..Config::default()
    };
    // Everything in the demo runs on simulated time, so the engine's patience is scaled
    // too: a dropped webhook is reconciled within seconds, not ten minutes.
    // A quiet call is looked up soon: a call whose end webhook was dropped (a `--faults`
    // fault) should not hold its slot long after the provider ended it. A live call is
    // simply confirmed by the provider and kept.
    let stuck = Duration::from_secs_f64((longest_call * 1.5).max(0.5));
    let engine_config = EngineConfig {
        stuck_timeout: stuck,
        reaper_interval: stuck / 3,
        placement_backoff: vec![Duration::from_millis(100), Duration::from_millis(400), Duration::from_millis(1000)],
        capacity_cooldown: Duration::from_millis(200),
        ..config.engine()
    };
    let state = app::build(&config, engine_config.clone(), Arc::new(SystemClock)).await?;
    let cancel = CancellationToken::new();
    let server = tokio::spawn(app::serve(state.clone(), listener, cancel.clone()));
    // The other nodes: an engine each, with its own connection pool and node id.
    let mut others = vec![];
    for _ in 1..args.nodes {
        let node = app::build(&config, engine_config.clone(), Arc::new(SystemClock)).await?;
        others.push(tokio::spawn(node.engine.clone().run(cancel.clone())));
    }

    let result = drive(args, &state, &base, &sim).await;
    cancel.cancel();
    let _ = server.await;
    for node in others {
        let _ = node.await;
    }
    sim.shutdown();
    result
}

/// The simulator on a thread and runtime of its own, so the CPU time it spends (answering
/// dials, sending webhooks) can be told apart from dialtone's, which runs in the same process.
pub(crate) struct SimThread {
    pub(crate) handle: dialtone_sim::SimHandle,
    runtime: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SimThread {
    /// Starts the simulator on its thread, at nice `nice` (0: the default priority).
    pub(crate) async fn start(config: SimConfig, nice: i32) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("sim".into()).spawn(move || {
            if nice != 0 {
                if let Err(e) = crate::cpu::set_thread_nice(nice) {
                    tracing::warn!(nice, error = %e, "could not lower the simulator thread's priority");
                }
            }
            runtime.block_on(async move {
                let spawned = Sim::spawn(config, "127.0.0.1:0").await.map(|h| (h, tokio::runtime::Handle::current()));
                let _ = ready_tx.send(spawned);
                let _ = stopped.await;
            });
        })?;
        let (handle, runtime) = ready.await.map_err(|_| anyhow::anyhow!("the simulator thread ended"))??;
        Ok(Self { handle, runtime, stop: Some(stop), thread: Some(thread) })
    }

    /// CPU time the simulator's thread has used so far.
    pub(crate) async fn cpu(&self) -> Duration {
        self.runtime.spawn(async { crate::cpu::thread() }).await.unwrap_or_default()
    }

    pub(crate) fn shutdown(mut self) {
        self.handle.sim().stop();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn drive(args: &DemoArgs, state: &Arc<AppState>, base: &str, sim: &SimThread) -> anyhow::Result<Value> {
    let ws = state.store.default_workspace().await?;
    let key = crate::keys::generate();
    state.store.create_api_key(&ws, "demo", &crate::keys::hash(&key), state.now()).await?;
    let http = reqwest::Client::new();
    let api = |path: &str| format!("{base}/api/v1{path}");
    let call = |req: reqwest::RequestBuilder| {
        let key = key.clone();
        async move {
            let resp = req.bearer_auth(key).send().await?;
            let status = resp.status();
            let body: Value = resp.json().await?;
            anyhow::ensure!(status.is_success(), "API answered {status}: {body}");
            Ok::<Value, anyhow::Error>(body)
        }
    };

    let agent_id = if args.voice {
        let agent = call(http.post(api("/agents")).json(&crate::demo_voice::demo_agent_json(args.tts))).await?;
        agent["id"].as_str().map(String::from)
    } else {
        None
    };
    let mut campaign_body = json!({
        "name": "dialtone demo",
        "provider": args.provider.campaign_provider().as_str(),
        "assistant_id": "asst_demo",
        "phone_number_id": args.provider.caller(),
        "mode": args.mode,
        "max_concurrent": args.cap,
        "max_attempts": args.max_attempts,
        // The demo runs at any hour: recipients' calling hours (08:00–21:00 by default)
        // are opened round the clock here, and the simulated calls are not real people.
        "calling_hours": {"start": "00:00", "end": "00:00"},
        "retry": retry_policy(args.time_scale),
    });
    if let Some(agent_id) = &agent_id {
        campaign_body["agent_id"] = json!(agent_id);
    }
    let campaign = call(http.post(api("/campaigns")).json(&campaign_body)).await?;
    let id = campaign["id"].as_str().unwrap_or_default().to_string();

    let csv = match args.contacts {
        _ if args.voice => {
            let mix = args.callees.as_deref().map(crate::demo_voice::parse_mix).transpose().map_err(anyhow::Error::msg)?.unwrap_or_default();
            crate::demo_voice::voice_csv(args.contacts.unwrap_or(18), &mix)
        }
        Some(n) => synthetic_csv(n),
        None => EXAMPLE_CSV.to_string(),
    };
    let imported = call(http.post(api(&format!("/campaigns/{id}/contacts"))).header("content-type", "text/csv").body(csv)).await?;
    let total = imported["imported"].as_u64().unwrap_or(0);

    let bar = if args.json { ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()) } else { ProgressBar::new(total) };
    bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} contacts finished  {msg}")?.progress_chars("=> "));

    let started = Instant::now();
    let start_ms = jiff::Timestamp::now().as_millisecond();
    let (process_cpu, sim_cpu) = (crate::cpu::process(), sim.cpu().await);
    call(http.post(api(&format!("/campaigns/{id}/start")))).await?;
    let deadline = started + Duration::from_secs(args.timeout_secs);
    let last = loop {
        let c = call(http.get(api(&format!("/campaigns/{id}")))).await?;
        let finished = finished_contacts(&c);
        bar.set_position(finished);
        bar.set_message(format!("active {} | {}", c["counts"]["active_calls"], outcome_line(&c["counts"]["outcomes"])));
        if c["status"] == "completed" {
            break c;
        }
        anyhow::ensure!(Instant::now() < deadline, "demo did not finish within {} s (campaign is {}, counts {})", args.timeout_secs, c["status"], c["counts"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let wall_ms = started.elapsed().as_millis() as u64;
    let (process_cpu, sim_cpu) = (crate::cpu::process().saturating_sub(process_cpu), sim.cpu().await.saturating_sub(sim_cpu));
    bar.finish();
    let stats = sim.handle.stats();
    let mut r = report(args, total, &last, &stats, state, start_ms, wall_ms);
    let occupancy = dialtone_sim::Occupancy::of(&sim.handle.live_log(), args.provider.caller(), u64::from(args.cap));
    let per_call = |d: Duration| if stats.dials == 0 { 0.0 } else { d.as_secs_f64() * 1000.0 / stats.dials as f64 };
    r["occupancy"] = serde_json::to_value(&occupancy)?;
    r["webhook_timing"] = webhook_timing(&stats);
    if args.voice {
        r["voice"] = crate::demo_voice::summarize(&stats.media_summary);
        r["voice"]["agent_calls"] = agent_calls(state, &id).await?;
        // Every outbound audio chunk: actual − scheduled send time (dialtone's side).
        r["voice"]["send_jitter"] = state.media.send_jitter.summary();
    }
    // From the campaign's start to its completion. The simulator shares the process (on a
    // thread of its own); dialtone's part is the rest: HTTP server, engine, SQLite (an
    // in-process library), provider client and the demo's own polling. A PostgreSQL
    // server's CPU is not in it.
    r["cpu"] = json!({
        "process_ms": process_cpu.as_millis() as u64,
        "sim_ms": sim_cpu.as_millis() as u64,
        "dialtone_ms": process_cpu.saturating_sub(sim_cpu).as_millis() as u64,
        "process_ms_per_call": per_call(process_cpu),
        "dialtone_ms_per_call": per_call(process_cpu.saturating_sub(sim_cpu)),
    });
    Ok(r)
}

/// The campaign's calls as dialtone stored them, with the simulator's callee kind (by the
/// dialled number's last digit): `[{callee, phone, status, outcome, voicemail_left,
/// transcript}]`, oldest first. What tests and readers check the conversations against.
async fn agent_calls(state: &AppState, campaign: &str) -> anyhow::Result<Value> {
    let ws = state.store.default_workspace().await?;
    let filter = dialtone_store::CallFilter { campaign_id: dialtone_core::CampaignId::parse(campaign), ..Default::default() };
    let mut calls = state.store.list_calls(&ws, &filter, &dialtone_store::Page { limit: 1000, before: None }).await?;
    calls.reverse();
    let rows: Vec<Value> = calls
        .iter()
        .filter(|c| c.campaign_id.as_str() == campaign)
        .map(|c| {
            json!({
                "callee": dialtone_sim::Callee::by_last_digit(c.phone.as_str()).as_str(),
                "phone": c.phone.as_str(),
                "status": c.status,
                "outcome": c.outcome,
                "voicemail_left": c.voicemail_left,
                "transcript": c.transcript,
            })
        })
        .collect();
    Ok(Value::Array(rows))
}

/// The demo campaign's retry policy (`retry` of `POST /api/v1/campaigns`): every retried
/// outcome's delay in simulated time (a minute or two at `time_scale`). Each outcome a
/// retry rule exists for is named, `no_response` included (a voice call answered by a
/// silent callee): one left out falls back to the engine's default delay, an hour for
/// `no_response`, and the demo would wait for it long after its timeout.
fn retry_policy(time_scale: f64) -> Value {
    let delay = 60.0 * time_scale;
    json!({
        "no_answer": {"max_retries": 3, "delay_secs": delay},
        "no_response": {"max_retries": 2, "delay_secs": delay},
        "busy": {"max_retries": 3, "delay_secs": delay * 2.0},
        "failed": {"max_retries": 5, "delay_secs": delay / 5.0},
        "voicemail": {"max_retries": 0, "delay_secs": delay},
        "invalid_number": {"max_retries": 0, "delay_secs": 0.0},
        "timeout": {"max_retries": 3, "delay_secs": delay},
        "max_delay_secs": delay * 4.0,
    })
}

/// Voice: every answered call streams (the callee kind decides the conversation); the
/// unanswered share is split 3:2 between no-answer and busy.
fn voice_mix(unanswered_percent: u32) -> dialtone_sim::OutcomeMix {
    let unanswered = unanswered_percent.min(100);
    let busy = unanswered * 2 / 5;
    dialtone_sim::OutcomeMix { answered: 100 - unanswered, no_answer: unanswered - busy, busy, voicemail: 0, failed: 0 }
}

fn finished_contacts(campaign: &Value) -> u64 {
    ["done", "exhausted", "invalid", "dnc", "canceled"].iter().filter_map(|s| campaign["counts"]["contacts"][*s].as_u64()).sum()
}

fn outcome_line(outcomes: &Value) -> String {
    outcomes.as_object().map(|m| m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(" | ")).unwrap_or_default()
}

fn report(args: &DemoArgs, contacts: u64, campaign: &Value, sim: &SimStats, state: &AppState, start_ms: i64, wall_ms: u64) -> Value {
    let outcome = |k: &str| campaign["counts"]["outcomes"][k].as_u64().unwrap_or(0);
    json!({
        "contacts": contacts,
        "calls_placed": sim.dials,
        "contacts_finished": finished_contacts(campaign),
        "cap": args.cap,
        "mode": args.mode,
        "nodes": args.nodes,
        "max_concurrent_observed": sim.peak_concurrent_by_phone_number.get(args.provider.caller()).copied().unwrap_or(0),
        "provider": args.provider.to_possible_value().map(|v| v.get_name().to_string()),
        "duplicate_dials": sim.duplicate_dials,
        "time_to_first_call_ms": sim.first_dial_at_ms.map(|t| (t - start_ms).max(0)),
        "wall_ms": wall_ms,
        "outcomes": {
            "completed": outcome("completed"),
            "no_answer": outcome("no_answer"),
            "busy": outcome("busy"),
            "voicemail": outcome("voicemail"),
            "failed": outcome("failed"),
            "timeout": outcome("timeout"),
            "no_response": outcome("no_response"),
        },
        "webhooks_received": state.webhooks_received.load(Ordering::Relaxed),
        "duplicate_webhooks_ignored": state.duplicate_events.load(Ordering::Relaxed),
        "faults": args.faults,
        "time_scale": args.time_scale,
        "contacts_by_status": campaign["counts"]["contacts"],
        "sim": {
            "rejected_429": sim.rejected_429,
            "rejected_503": sim.rejected_503,
            "webhooks_dropped": sim.webhooks_dropped,
            "webhooks_duplicated": sim.webhooks_duplicated,
            "calls_reordered": sim.calls_reordered,
        },
    })
}

/// Where a freed slot's refill time goes before dialtone can claim (the simulator's
/// record, ms): `ack_*`, each webhook's request → dialtone's answer (the wait for its
/// durable commit); `ended_wait_*`, a call's end → its ended webhook sent, i.e. the wait
/// behind the call's earlier webhooks, sent one at a time.
fn webhook_timing(stats: &dialtone_sim::SimStats) -> Value {
    let ms = |h: &dialtone_sim::Histogram, p: f64| h.quantile(p).map(|us| us as f64 / 1000.0);
    json!({
        "ack_p50_ms": ms(&stats.webhook_ack_us, 0.5),
        "ack_p99_ms": ms(&stats.webhook_ack_us, 0.99),
        "ended_wait_p50_ms": ms(&stats.ended_webhook_wait_us, 0.5),
        "ended_wait_p99_ms": ms(&stats.ended_webhook_wait_us, 0.99),
    })
}

fn print_table(r: &Value) {
    println!();
    println!(
        "dialtone demo — {} contacts, cap {}, {} mode{}{}",
        r["contacts"],
        r["cap"],
        r["mode"].as_str().unwrap_or(""),
        if r["faults"] == true { ", faults on" } else { "" },
        if r["nodes"].as_u64().unwrap_or(1) > 1 { format!(", {} nodes", r["nodes"]) } else { String::new() }
    );
    println!("  {:<28} {}", "contacts finished", r["contacts_finished"]);
    println!("  {:<28} {}", "calls placed", r["calls_placed"]);
    println!("  {:<28} {} (cap {})", "peak concurrent (sim)", r["max_concurrent_observed"], r["cap"]);
    println!("  {:<28} {}", "duplicate dials (sim)", r["duplicate_dials"]);
    println!("  {:<28} {} ms", "time to first call", r["time_to_first_call_ms"]);
    println!("  {:<28} {} ms", "wall time", r["wall_ms"]);
    let o = &r["occupancy"];
    println!(
        "  {:<28} {:.1} average, {:.0} % of the cap (sim)",
        "live calls",
        o["average"].as_f64().unwrap_or(0.0),
        o["average_of_cap"].as_f64().unwrap_or(0.0) * 100.0
    );
    println!(
        "  {:<28} p50 {:.1} ms, p99 {:.1} ms (sim)",
        "call ended → next placed",
        o["refill_p50_ms"].as_f64().unwrap_or(0.0),
        o["refill_p99_ms"].as_f64().unwrap_or(0.0)
    );
    let t = &r["webhook_timing"];
    println!("  {:<28} p50 {:.2} ms, p99 {:.2} ms (sim)", "webhook acked", t["ack_p50_ms"].as_f64().unwrap_or(0.0), t["ack_p99_ms"].as_f64().unwrap_or(0.0));
    println!(
        "  {:<28} p50 {:.2} ms, p99 {:.2} ms (sim)",
        "call ended → ended webhook",
        t["ended_wait_p50_ms"].as_f64().unwrap_or(0.0),
        t["ended_wait_p99_ms"].as_f64().unwrap_or(0.0)
    );
    println!(
        "  {:<28} {:.2} ms (dialtone), {:.2} ms (with the simulator)",
        "CPU per call",
        r["cpu"]["dialtone_ms_per_call"].as_f64().unwrap_or(0.0),
        r["cpu"]["process_ms_per_call"].as_f64().unwrap_or(0.0)
    );
    println!("  outcomes");
    if let Some(m) = r["outcomes"].as_object() {
        for (k, v) in m {
            println!("    {k:<26} {v}");
        }
    }
    if let Some(v) = r.get("voice") {
        print_voice(v);
    }
    println!("  {:<28} {}", "webhooks received", r["webhooks_received"]);
    println!("  {:<28} {}", "duplicate events ignored", r["duplicate_webhooks_ignored"]);
    if r["faults"] == true {
        let s = &r["sim"];
        println!(
            "  faults injected: {} × 429, {} × 503, {} webhooks dropped, {} duplicated, {} calls reordered",
            s["rejected_429"], s["rejected_503"], s["webhooks_dropped"], s["webhooks_duplicated"], s["calls_reordered"]
        );
    }
}

fn print_voice(v: &Value) {
    let ms = |x: &Value| x.as_u64().map_or("-".to_string(), |n| format!("{n} ms"));
    let line = |label: &str, s: &Value| println!("  {label:<28} p50 {}, p95 {} (n = {}, sim)", ms(&s["p50_ms"]), ms(&s["p95_ms"]), s["n"]);
    println!("  voice ({} media calls, as the simulator heard them)", v["calls"]);
    if let Some(by) = v["by_callee"].as_object() {
        for (callee, c) in by {
            let hung: Vec<String> = c["hung_up_by"].as_object().map(|m| m.iter().map(|(k, n)| format!("{k} {n}")).collect()).unwrap_or_default();
            println!("    {callee:<26} {} calls, hung up by: {}", c["calls"], hung.join(", "));
        }
    }
    line("greeting latency", &v["greeting_latency"]);
    line("reply latency", &v["reply_latency"]);
    line("barge-in → clear", &v["barge_in_to_clear"]);
    println!("  {:<28} {}", "chunk-size violations", v["chunk_size_violations"]);
    println!("  {:<28} {} of {}", "voicemails left", v["voicemails_left"], v["voicemail_calls"]);
    if let Some(error) = v["connect_error_example"].as_str() {
        println!("  {:<28} {} (e.g. {error})", "streams not opened", v["connect_errors"]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dialtone_core::{Outcome, RetryPolicy};

    /// A voice demo once stalled: a silent callee's `no_response` fell back to the
    /// default policy's hour-long delay, the campaign stayed `dialing` with nothing
    /// active and the demo timed out. Every retried outcome waits simulated time only.
    #[test]
    fn every_retried_outcome_waits_simulated_time() {
        let time_scale = 0.005;
        let policy: RetryPolicy = serde_json::from_value(retry_policy(time_scale)).unwrap();
        policy.validate().unwrap();
        for &outcome in Outcome::ALL {
            let Some(rule) = policy.rule(outcome) else { continue };
            if rule.max_retries > 0 {
                assert!(rule.delay_secs <= 120.0 * time_scale, "{outcome:?} waits {} s", rule.delay_secs);
            }
        }
        // The longest retry, doubled by its count and jittered, is capped too.
        assert!(policy.max_delay_secs <= 240.0 * time_scale);
        assert!(policy.rule(Outcome::NoResponse).unwrap().max_retries > 0, "a silent callee is called again, as the default policy does");
    }
}
