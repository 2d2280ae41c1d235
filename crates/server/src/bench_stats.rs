//! `dialtone bench stats --calls N`: fills a fresh database with N synthetic calls (bulk
//! SQL, see `dialtone_store::bench_fill`) spread evenly over the last 30 days, then times
//! the `/stats` query (`Store::stats`, what the route runs: the hourly rollup, migration
//! 0022) for each range, and prints one JSON object: per backend, the fill time, the time
//! of the first rollup refresh (every filled hour recomputed), and per range the query's
//! p50/p95/p99 in ms, with and without the rollup (`Store::stats_raw`, the query before it).
//! It fails if the two answers differ.
//! SQLite always (a temp dir); PostgreSQL too with `--postgres-url` (a fresh, empty database:
//! the bench adds a million rows to it).

use clap::Args;
use dialtone_core::{Mode, ProviderKind, RetryPolicy};
use dialtone_store::{NewCampaign, StatsQuery, Store};
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone, Args)]
pub struct StatsBenchArgs {
    /// Calls to fill the database with (the figure is 1,000,000).
    #[arg(long, default_value_t = 1_000_000)]
    pub calls: u64,
    /// Times each query is run (after one warm-up run).
    #[arg(long, default_value_t = 50)]
    pub runs: usize,
    /// Also measure PostgreSQL, in this fresh database.
    #[arg(long)]
    pub postgres_url: Option<String>,
}

pub async fn run(args: StatsBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.calls > 0 && args.runs > 0, "--calls and --runs must be at least 1");
    let dir = tempfile::tempdir()?;
    let sqlite_url = format!("sqlite://{}", dir.path().join("stats-bench.db").display());
    let mut report = json!({ "calls": args.calls, "runs": args.runs, "sqlite": backend(&sqlite_url, &args).await? });
    if let Some(url) = &args.postgres_url {
        report["postgres"] = backend(url, &args).await?;
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

async fn backend(url: &str, args: &StatsBenchArgs) -> anyhow::Result<Value> {
    let store = dialtone_store::connect(url).await?;
    let ws = store.default_workspace().await?;
    let now = Timestamp::now();
    let campaign = store.create_campaign(campaign(&ws), now).await?;
    let span = SignedDuration::from_hours(24 * 30);
    // Calls are created over [start, start + span): with start 1 ms after now − 30 days,
    // the oldest is inside `month_all` (from = now + 1 ms − 30 days) and the newest is not
    // after now, so that range counts every call.
    let start = now - span + SignedDuration::from_millis(1);
    let filled = Instant::now();
    dialtone_store::bench_fill::fill_calls(url, &ws, &campaign.id, args.calls, start, span.as_millis() as i64).await?;
    let fill_secs = filled.elapsed().as_secs_f64();
    let refreshed = Instant::now();
    let hours = store.refresh_stats().await?;
    let refresh_secs = refreshed.elapsed().as_secs_f64();

    let day = SignedDuration::from_hours(24);
    let end = now + SignedDuration::from_millis(1);
    let midnight = now.to_zoned(jiff::tz::TimeZone::UTC).start_of_day()?.timestamp();
    // An arbitrary range: 12 days, neither end on an hour (17 min 23.456 s past).
    let odd = SignedDuration::from_millis(1_043_456);
    let (odd_from, odd_to) = (end - day * 20 + odd, end - day * 8 + odd);
    let c = || Some(campaign.id.clone());
    let ranges = [
        ("today_24h", None, end - day, end),
        ("today_since_midnight", None, midnight, end),
        ("week", None, end - day * 7, end),
        ("month_all", None, end - day * 30, end),
        ("arbitrary_12_days", None, odd_from, odd_to),
        ("campaign_today_24h", c(), end - day, end),
        ("campaign_week", c(), end - day * 7, end),
        ("campaign_month_all", c(), end - day * 30, end),
        ("campaign_arbitrary_12_days", c(), odd_from, odd_to),
    ];
    let mut queries = serde_json::Map::new();
    for (name, campaign_id, from, to) in ranges {
        let q = StatsQuery { workspace_id: ws.clone(), campaign_id, from, to, now };
        anyhow::ensure!(store.stats(&q).await? == store.stats_raw(&q).await?, "{name}: the rollup's answer differs from the raw query's");
        let rollup = time(&store, &q, args.runs, false).await?;
        let raw = time(&store, &q, args.runs.min(5), true).await?;
        queries.insert(name.into(), json!({ "rollup": rollup, "raw": raw }));
    }
    let round = |v: f64| (v * 10.0).round() / 10.0;
    Ok(json!({ "fill_secs": round(fill_secs), "first_refresh": { "hours": hours, "secs": round(refresh_secs) }, "queries": queries }))
}

/// Runs `q` once to warm up, then `runs` times: p50, p95 and p99 in ms (nearest rank), and the calls it
/// counted. `raw`: without the rollup (`Store::stats_raw`).
async fn time(store: &Arc<dyn Store>, q: &StatsQuery, runs: usize, raw: bool) -> anyhow::Result<Value> {
    let run = || async {
        if raw {
            store.stats_raw(q).await
        } else {
            store.stats(q).await
        }
    };
    let counted = run().await?.total_calls;
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        run().await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    let at = |p: usize| ms[((p * ms.len()).div_ceil(100)).clamp(1, ms.len()) - 1];
    let round = |v: f64| (v * 10.0).round() / 10.0;
    Ok(json!({ "calls_in_range": counted, "p50_ms": round(at(50)), "p95_ms": round(at(95)), "p99_ms": round(at(99)) }))
}

fn campaign(ws: &dialtone_core::WorkspaceId) -> NewCampaign {
    let midnight = jiff::civil::Time::midnight();
    NewCampaign {
        workspace_id: ws.clone(),
        name: "stats bench".into(),
        provider: ProviderKind::Sim,
        assistant_id: "asst_bench".into(),
        phone_number_id: "pn_bench".into(),
        mode: Mode::Continuous,
        max_concurrent: 1,
        max_attempts: 3,
        retry: RetryPolicy::default(),
        default_region: "US".into(),
        schedule: dialtone_core::schedule::Schedule::always("UTC"),
        calling_hours: dialtone_core::schedule::LocalHours::new(midnight, midnight),
        recurrence: dialtone_core::frequency::Recurrence::new(dialtone_core::frequency::Frequency::Once),
        max_call_duration_secs: None,
        assume_campaign_timezone_for_ambiguous: false,
        agent_id: None,
        caller_pool: Default::default(),
        calls_per_minute: None,
        account_id: None,
    }
}
