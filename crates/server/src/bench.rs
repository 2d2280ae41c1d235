//! `dialtone bench`: the speed figures of BENCHMARKS.md, printed as one JSON object.
//! - ingest: authentic Vapi webhooks POSTed concurrently to a running server (SQLite in a
//!   temp dir), each answered only after its group commit: events/s and latency percentiles;
//! - dispatch: a demo run with fast simulated calls: calls placed per second under a cap,
//!   with one node, and on PostgreSQL also with several (`--dispatch-nodes`).
//! - `dialtone bench voice`: the voice pipeline against the simulator (see [`voice`]).

use crate::app;
use crate::config::Config;
use crate::demo::{self, DemoArgs};
use clap::Args;
use dialtone_core::{CampaignStatus, Mode, ProviderKind, RetryPolicy, SystemClock};
use dialtone_store::NewCampaign;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// `stats`: time the `/stats` query on a database of N calls instead (see
    /// `bench_stats`); `voice`: the voice pipeline's figures. Without a subcommand: the
    /// ingest and dispatch figures.
    #[command(subcommand)]
    pub what: Option<BenchWhat>,
    /// Calls whose lifecycles are sent as webhooks (4 events each).
    #[arg(long, default_value_t = 5000)]
    pub calls: usize,
    /// Webhook requests in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Contacts for the dispatch run.
    #[arg(long, default_value_t = 2000)]
    pub dispatch_contacts: usize,
    /// Cap for the dispatch run.
    #[arg(long, default_value_t = 50)]
    pub dispatch_cap: u32,
    /// On PostgreSQL, also run the dispatch with this many nodes (engines with their own
    /// pools and node ids on the one database).
    #[arg(long, default_value_t = 3)]
    pub dispatch_nodes: usize,
    /// Database for the runs (default: SQLite in a temp dir; give a fresh PostgreSQL
    /// database to measure PostgreSQL).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Also measure the dispatcher's tick with this many running campaigns …
    #[arg(long, default_value_t = 0)]
    pub tick_campaigns: usize,
    /// … of this many contacts each (1,000 × 1,000 = the 1,000,000-contact figure).
    #[arg(long, default_value_t = 1000)]
    pub tick_contacts: usize,
    /// Ingest with this many webhook endpoints subscribed to every outbound event (issue 13:
    /// "ingest figures unchanged with 3 endpoints, one of them down"): all but the last are
    /// receivers on loopback answering 204 (in this process, on a thread at the lowest
    /// priority: they stand for other machines), the last refuses connections (a port bound,
    /// then closed). The report adds what the receivers got during the run and
    /// after it (until their counts stay still for 5 s), and the delivery rate after it.
    #[arg(long, default_value_t = 0)]
    pub webhook_endpoints: usize,
    /// With `--webhook-endpoints`: the delivery worker does not run (its first pass would be
    /// an hour away), to tell the cost of the outbox writes in the ingest's transactions from
    /// the cost of the worker sending alongside.
    #[arg(long)]
    pub no_delivery_worker: bool,
    /// Drop the stats rollup's triggers (migration 0022) before the ingest run, to measure
    /// what they cost it (compare a run without this flag). For benchmark databases only:
    /// `/stats` reads a stale rollup afterwards.
    #[arg(long)]
    pub drop_stats_triggers: bool,
    /// Measure ingest only (no dispatch or tick run).
    #[arg(long)]
    pub ingest_only: bool,
}

/// What `dialtone bench` measures besides ingest and dispatch.
#[derive(Debug, clap::Subcommand)]
pub enum BenchWhat {
    /// The `/stats` query on N synthetic calls, per backend: `dialtone bench stats --calls 1000000`.
    Stats(crate::bench_stats::StatsBenchArgs),
    /// The voice pipeline's figures (issue 12): greeting latency p50/p95, reply latency after
    /// the end of the callee's speech, barge-in → `clear`, and a load run of concurrent media
    /// calls (the simulator's virtual speaker running dry mid-speech, CPU).
    Voice(VoiceBenchArgs),
    /// The CSV export of a large campaign (issue 11): a SQLite campaign of `--contacts`
    /// contacts (filled in one statement) exported once: time, rows/s, keyset pages and the
    /// process's peak memory growth.
    Export(ExportBenchArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ExportBenchArgs {
    /// Contacts in the campaign (1,000,000 = the figure).
    #[arg(long, default_value_t = 1_000_000)]
    pub contacts: u64,
}

#[derive(Debug, Clone, Args)]
pub struct VoiceBenchArgs {
    /// Concurrent media calls in the load run (the goal is 600 on two cores); 0 skips it.
    #[arg(long, default_value_t = 600)]
    pub calls: usize,
    /// Contacts in the latency run, cycling through every scripted callee kind.
    #[arg(long, default_value_t = 27)]
    pub latency_contacts: usize,
    /// Human callees in the cold-greeting run (no line cache: the greeting is synthesised
    /// after `start`; 3 at a time); 0 skips it.
    #[arg(long, default_value_t = 12)]
    pub cold_contacts: usize,
    /// `exotel` or `twilio`.
    #[arg(long, value_enum, default_value = "exotel")]
    pub provider: demo::DemoProvider,
    /// Give up on a run after this many seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout_secs: u64,
    /// The simulator thread's nice value (0–19). The default, 19, gives it only the CPU
    /// dialtone leaves, as if the provider ran elsewhere: the send jitter is then dialtone's
    /// own. 0 shares the cores evenly (both figures are in BENCHMARKS.md).
    #[arg(long, default_value_t = 19, value_parser = clap::value_parser!(i32).range(0..=19))]
    pub sim_nice: i32,
    /// The agent's text-to-speech in every run: `sim` or `flite` (local; with
    /// `--cold-contacts` it measures a cold greeting synthesised by flite).
    #[arg(long, value_enum, default_value = "sim")]
    pub tts: demo::DemoTts,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match &args.what {
        Some(BenchWhat::Voice(voice_args)) => {
            let report = voice(voice_args).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            return Ok(());
        }
        Some(BenchWhat::Stats(stats)) => return crate::bench_stats::run(stats.clone()).await,
        Some(BenchWhat::Export(export_args)) => {
            let report = json!({ "export": crate::export::bench(export_args.contacts).await? });
            println!("{}", serde_json::to_string_pretty(&report)?);
            return Ok(());
        }
        None => {}
    }
    let ingest = ingest(&args).await?;
    if args.ingest_only {
        println!("{}", serde_json::to_string_pretty(&json!({ "ingest": ingest }))?);
        return Ok(());
    }
    let one_node = dispatch(&args, 1).await?;
    let mut report = json!({ "ingest": ingest, "dispatch": one_node });
    let postgres = args.database_url.as_deref().is_some_and(|u| u.starts_with("postgres"));
    if postgres && args.dispatch_nodes > 1 {
        report["dispatch_nodes"] = dispatch(&args, args.dispatch_nodes).await?;
    }
    if args.tick_campaigns > 0 {
        report["tick"] = crate::bench_tick::tick(args.database_url.as_deref(), args.tick_campaigns, args.tick_contacts).await?;
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

async fn ingest(args: &BenchArgs) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir()?;
    let secret = crate::keys::generate();
    let config = Config {
        database_url: args.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display())).into(),
        vapi_webhook_secret: Some(secret.clone().into()),
        ..Config::default()
    };
    let mut engine = config.engine();
    if args.no_delivery_worker {
        engine.webhook_interval = Duration::from_secs(3600);
    }
    let state = app::build(&config, engine, Arc::new(SystemClock)).await?;
    let store = state.store.clone();
    let now = jiff::Timestamp::now();
    let ws = store.default_workspace().await?;
    if args.drop_stats_triggers {
        drop_stats_triggers(config.database_url.expose_secret()).await?;
    }
    let receivers = webhook_receivers(&store, &ws, args.webhook_endpoints, now).await?;

    // Calls to receive events for: claimed through the normal path, then accepted.
    let campaign = store
        .create_campaign(
            NewCampaign {
                workspace_id: ws.clone(),
                name: "bench".into(),
                provider: ProviderKind::Sim,
                assistant_id: "asst_bench".into(),
                phone_number_id: "pn_bench".into(),
                mode: Mode::Continuous,
                max_concurrent: args.calls as u32,
                max_attempts: 1,
                retry: RetryPolicy::default(),
                default_region: "US".into(),
                schedule: dialtone_core::schedule::Schedule::always("UTC"),
                calling_hours: all_day(),
                recurrence: dialtone_core::frequency::Recurrence::new(dialtone_core::frequency::Frequency::Once),
                max_call_duration_secs: None,
                assume_campaign_timezone_for_ambiguous: false,
                agent_id: None,
                caller_pool: Default::default(),
                calls_per_minute: None,
                account_id: None,
            },
            now,
        )
        .await?;
    let csv = demo::synthetic_csv(args.calls);
    let mut rows = crate::import::CsvContacts::new(csv.as_bytes(), "US", "UTC")?;
    let mut report = crate::import::ImportReport::default();
    while let Some(chunk) = rows.next_chunk(1000, &mut report)? {
        store.insert_contacts(&ws, &campaign.id, &chunk, now).await?;
    }
    store.transition_campaign(&ws, &campaign.id, &[CampaignStatus::Draft], CampaignStatus::Starting, now).await?;
    let mut provider_ids = Vec::with_capacity(args.calls);
    while provider_ids.len() < args.calls {
        let dials = store.claim(&campaign.id, "bench", now).await?;
        anyhow::ensure!(!dials.is_empty(), "could not claim bench calls");
        for d in dials {
            let pid = format!("bench-{}", provider_ids.len());
            store.mark_dialed(&d.call_id, &pid, now).await?;
            provider_ids.push(pid);
        }
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/webhooks/vapi", listener.local_addr()?);
    let cancel = CancellationToken::new();
    let server = tokio::spawn(app::serve(state.clone(), listener, cancel.clone()));

    let mut bodies = Vec::with_capacity(args.calls * 4);
    for pid in &provider_ids {
        let call = json!({ "id": pid });
        bodies.push(json!({"message": {"type": "status-update", "status": "ringing", "call": call}}));
        bodies.push(json!({"message": {"type": "status-update", "status": "in-progress", "call": call}}));
        bodies.push(json!({"message": {"type": "status-update", "status": "ended", "endedReason": "customer-ended-call", "call": call}}));
        bodies.push(json!({"message": {"type": "end-of-call-report", "endedReason": "customer-ended-call", "cost": 0.02, "call": call}}));
    }
    // Interleave calls so concurrent requests hit different calls, as real traffic does.
    let n = bodies.len();
    let order: Vec<usize> = (0..4).flat_map(|step| (0..args.calls).map(move |c| c * 4 + step)).collect();
    let bodies: Arc<Vec<String>> = Arc::new(order.into_iter().map(|i| bodies[i].to_string()).collect());

    let http = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build()?;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = vec![];
    for _ in 0..args.concurrency {
        let (http, url, secret, bodies, next) = (http.clone(), url.clone(), secret.clone(), bodies.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = vec![];
            let mut failures = 0u64;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= bodies.len() {
                    break;
                }
                let t = Instant::now();
                let ok = http
                    .post(&url)
                    .bearer_auth(&secret)
                    .header("content-type", "application/json")
                    .body(bodies[i].clone())
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                latencies.push(t.elapsed());
                failures += u64::from(!ok);
            }
            (latencies, failures)
        }));
    }
    let mut latencies: Vec<Duration> = vec![];
    let mut failures = 0;
    for w in workers {
        let (l, f) = w.await?;
        latencies.extend(l);
        failures += f;
    }
    let wall = started.elapsed();
    let delivered: Vec<u64> = receivers.iter().map(|r| r.load(std::sync::atomic::Ordering::Relaxed)).collect();
    // With endpoints: how long the worker takes to deliver the rest once the load is over
    // (until the receivers' counts stay still for 5 s, at most 300 s: the worker resumes
    // only once the ingest has been calm for 1 s, and its first claim fans out a backlog).
    let drain = if receivers.is_empty() || args.no_delivery_worker { None } else { Some(drain(&receivers).await) };
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_secs_f64() * 1000.0;
    let ended = store.campaign_counts(&campaign.id).await?.calls.get("ended").copied().unwrap_or(0);
    cancel.cancel();
    let _ = server.await;
    anyhow::ensure!(failures == 0, "{failures} webhooks were not acknowledged");
    anyhow::ensure!(ended == args.calls as u64, "only {ended} of {} calls ended", args.calls);
    Ok(json!({
        "backend": config.database_url.expose_secret().split(':').next(),
        "events": n,
        "concurrency": args.concurrency,
        "wall_ms": wall.as_millis() as u64,
        "events_per_sec": (n as f64 / wall.as_secs_f64()).round(),
        "latency_ms": { "p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": pct(1.0) },
        "stats_triggers": !args.drop_stats_triggers,
        "webhook_endpoints": args.webhook_endpoints,
        "delivery_worker": !args.no_delivery_worker,
        "deliveries_received_during_run": delivered,
        "deliveries_received_total": drain.map(|(total, _)| total),
        "deliveries_drained_ms_after_run": drain.map(|(_, after)| after.as_millis() as u64),
        "deliveries_per_sec_after_run": drain.map(|(total, after)| {
            let during: u64 = delivered.iter().sum();
            ((total - during) as f64 / after.as_secs_f64().max(0.001)).round()
        }),
    }))
}

/// Waits until the receivers' counts have not moved for 5 s (at most 300 s): their total and
/// when the last delivery came, counted from the call.
async fn drain(receivers: &[Arc<std::sync::atomic::AtomicU64>]) -> (u64, Duration) {
    let started = Instant::now();
    let total = || receivers.iter().map(|r| r.load(std::sync::atomic::Ordering::Relaxed)).sum::<u64>();
    let (mut last, mut last_change) = (total(), Duration::ZERO);
    while started.elapsed() - last_change < Duration::from_secs(5) && started.elapsed() < Duration::from_secs(300) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = total();
        if now != last {
            (last, last_change) = (now, started.elapsed());
        }
    }
    (last, last_change)
}

/// The stats rollup's triggers (migration 0022), per backend: SQLite has one per
/// operation, PostgreSQL one for insert and delete and one for update per table.
async fn drop_stats_triggers(url: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await?;
        for (trigger, table) in [
            ("stats_calls_insert_delete", "calls"),
            ("stats_calls_update", "calls"),
            ("stats_events_insert_delete", "call_events"),
            ("stats_events_update", "call_events"),
        ] {
            sqlx::raw_sql(&format!("DROP TRIGGER IF EXISTS {trigger} ON {table}")).execute(&mut c).await?;
        }
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await?;
        for trigger in ["stats_calls_insert", "stats_calls_delete", "stats_calls_update", "stats_events_insert", "stats_events_delete", "stats_events_update"] {
            sqlx::raw_sql(&format!("DROP TRIGGER IF EXISTS {trigger}")).execute(&mut c).await?;
        }
    }
    Ok(())
}

/// Registers `n` webhook endpoints in `ws`, subscribed to every event type: `n - 1`
/// receivers on loopback answering 204 (each counting what it got), and one address that
/// refuses connections (a port bound, then closed). Returns the counters.
///
/// The receivers stand for the users' systems, which run on other machines: they are served
/// by a thread and runtime of their own at nice [`RECEIVER_NICE`], so that on this 2-core
/// machine the CPU they spend answering is taken from idle time, not from the ingest being
/// measured (on the ingest's own runtime they cost it a share of both cores). The thread
/// lives until the process ends.
async fn webhook_receivers(
    store: &Arc<dyn dialtone_store::Store>,
    ws: &dialtone_core::WorkspaceId,
    n: usize,
    now: jiff::Timestamp,
) -> anyhow::Result<Vec<Arc<std::sync::atomic::AtomicU64>>> {
    let mut counters = vec![];
    let mut live = vec![];
    for i in 0..n {
        let url = if i + 1 < n {
            let got = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            listener.set_nonblocking(true)?;
            let url = format!("http://{}/hook", listener.local_addr()?);
            live.push((listener, got.clone()));
            counters.push(got);
            url
        } else {
            let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
            format!("http://{closed}/hook")
        };
        let new = dialtone_store::NewWebhookEndpoint {
            url,
            events: dialtone_store::WEBHOOK_EVENT_TYPES.iter().map(|t| t.to_string()).collect(),
            enabled: true,
            description: Some(format!("bench endpoint {i}")),
        };
        store.create_webhook_endpoint(ws, &new, &crate::api::webhook_endpoints::new_secret(), now).await?;
    }
    if !live.is_empty() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        std::thread::Builder::new().name("bench-receivers".into()).spawn(move || {
            if let Err(e) = crate::cpu::set_thread_nice(RECEIVER_NICE) {
                tracing::warn!(error = %e, "could not lower the bench receivers' priority");
            }
            runtime.block_on(async move {
                let mut servers = tokio::task::JoinSet::new();
                for (listener, got) in live {
                    let app = axum::Router::new().route(
                        "/hook",
                        axum::routing::post(move || {
                            got.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            async { axum::http::StatusCode::NO_CONTENT }
                        }),
                    );
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { continue };
                    servers.spawn(async move { axum::serve(listener, app).await });
                }
                while servers.join_next().await.is_some() {}
            });
        })?;
    }
    Ok(counters)
}

/// The bench receivers' scheduling priority (nice, 0–19): the lowest, see
/// [`webhook_receivers`].
const RECEIVER_NICE: i32 = 19;

/// Recipient hours that never close, so a benchmark runs whatever the time of day.
fn all_day() -> dialtone_core::schedule::LocalHours {
    let midnight = jiff::civil::Time::midnight();
    dialtone_core::schedule::LocalHours::new(midnight, midnight)
}

async fn dispatch(args: &BenchArgs, nodes: usize) -> anyhow::Result<Value> {
    let demo_args = DemoArgs {
        contacts: Some(args.dispatch_contacts),
        cap: args.dispatch_cap,
        mode: "continuous".into(),
        time_scale: 0.0005,
        faults: false,
        json: true,
        max_attempts: 1,
        seed: Some(1),
        database_url: args.database_url.clone(),
        timeout_secs: 600,
        provider: demo::DemoProvider::Vapi,
        nodes,
        voice: false,
        callees: None,
        unanswered_percent: 10,
        no_greeting_cache: false,
        sim_nice: 0,
        tts: Default::default(),
    };
    let r = demo::execute(&demo_args).await?;
    let wall = r["wall_ms"].as_f64().unwrap_or(1.0).max(1.0);
    Ok(json!({
        "nodes": nodes,
        "contacts": r["contacts"],
        "cap": r["cap"],
        "calls_placed": r["calls_placed"],
        "wall_ms": r["wall_ms"],
        "calls_per_sec": (r["calls_placed"].as_f64().unwrap_or(0.0) / wall * 1000.0).round(),
        "max_concurrent_observed": r["max_concurrent_observed"],
        "duplicate_dials": r["duplicate_dials"],
        "time_to_first_call_ms": r["time_to_first_call_ms"],
        "occupancy": r["occupancy"],
        "webhook_timing": r["webhook_timing"],
        "cpu": r["cpu"],
    }))
}

/// The first three fields of `/proc/loadavg` (Linux); `None` elsewhere.
fn loadavg() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

fn voice_demo_args(args: &VoiceBenchArgs, contacts: usize, cap: u32, callees: Option<String>, no_greeting_cache: bool) -> DemoArgs {
    DemoArgs {
        contacts: Some(contacts),
        cap,
        mode: "continuous".into(),
        // Ringing only: media runs in real time.
        time_scale: 0.1,
        faults: false,
        json: true,
        max_attempts: 1,
        seed: Some(12),
        database_url: None,
        timeout_secs: args.timeout_secs,
        provider: args.provider,
        nodes: 1,
        voice: true,
        callees,
        // Every call streams: the figures are about conversations, not retries.
        unanswered_percent: 0,
        no_greeting_cache,
        sim_nice: args.sim_nice,
        tts: args.tts,
    }
}

/// `dialtone bench voice`: demo runs with `--voice`. The latency run cycles through every
/// callee kind at a small cap; the cold run greets without the line cache; the load run holds
/// `calls` human conversations at once. The figures are the simulator's (what it heard,
/// when), dialtone's send jitter (actual − scheduled send time of every audio chunk), plus
/// the process's CPU.
pub async fn voice(args: &VoiceBenchArgs) -> anyhow::Result<Value> {
    anyhow::ensure!(args.provider != demo::DemoProvider::Vapi, "--provider must be exotel or twilio");
    let latency = demo::execute(&voice_demo_args(args, args.latency_contacts, 9, None, false)).await?;
    let mut report = json!({
        "provider": latency["provider"],
        "latency_run": {
            "contacts": latency["contacts"],
            "outcomes": latency["outcomes"],
            "voice": latency["voice"],
        },
    });
    if args.cold_contacts > 0 {
        // No line cache: each greeting is synthesised by the agent's TTS (`--tts`) after `start`.
        let cold = demo::execute(&voice_demo_args(args, args.cold_contacts, 3, Some("human".into()), true)).await?;
        report["cold_greeting_run"] = json!({
            "tts": args.tts.provider(),
            "contacts": cold["contacts"],
            "outcomes": cold["outcomes"],
            "greeting_latency": cold["voice"]["greeting_latency"],
            "send_jitter": cold["voice"]["send_jitter"],
        });
    }
    if args.calls > 0 {
        let cap = u32::try_from(args.calls).unwrap_or(u32::MAX);
        let loadavg_before = loadavg();
        // A baseline for the send jitter: how late a bare 20 ms timer on the same runtime
        // wakes during the run. When it is as late as the sends, the lateness is the
        // machine's (CPU taken by others), not the pacing's.
        let probe = std::sync::Arc::new(crate::media::jitter::SendJitter::default());
        let probe_task = {
            let probe = probe.clone();
            tokio::spawn(async move {
                loop {
                    let at = tokio::time::Instant::now() + std::time::Duration::from_millis(20);
                    tokio::time::sleep_until(at).await;
                    probe.record(tokio::time::Instant::now() - at);
                }
            })
        };
        let load = demo::execute(&voice_demo_args(args, args.calls, cap, Some("human".into()), false)).await;
        probe_task.abort();
        let load = load?;
        let wall_ms = load["wall_ms"].as_f64().unwrap_or(1.0).max(1.0);
        let cores = |ms: &Value| ms.as_f64().unwrap_or(0.0) / wall_ms;
        report["load_run"] = json!({
            "calls": args.calls,
            "sim_nice": args.sim_nice,
            "max_concurrent_observed": load["max_concurrent_observed"],
            "wall_ms": load["wall_ms"],
            "outcomes": load["outcomes"],
            "voice": load["voice"],
            // CPU over the run, in cores (1.0 = one core busy): the whole process, the
            // simulator's thread, and dialtone's part (the rest).
            "cpu_cores": {
                "process": cores(&load["cpu"]["process_ms"]),
                "sim": cores(&load["cpu"]["sim_ms"]),
                "dialtone": cores(&load["cpu"]["dialtone_ms"]),
            },
            "cpu": load["cpu"],
            // How busy the machine was (1, 5, 15-minute load averages, `/proc/loadavg`):
            // the bench shares it with whatever else runs.
            "machine_loadavg": {"before": loadavg_before, "after": loadavg()},
            "timer_probe_lateness": probe.summary(),
        });
    }
    Ok(report)
}
