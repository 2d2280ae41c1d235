//! The dispatcher's tick with many running campaigns and a million contacts: how long one
//! pass takes when it claims for every campaign, when every campaign is at its cap, and when
//! a tenth of them have one slot free (five rounds). The provider accepts every call at once, so only the
//! engine and the database are measured.

use dialtone_core::frequency::{Frequency, Recurrence};
use dialtone_core::schedule::{LocalHours, Schedule};
use dialtone_core::{CallStatus, CampaignStatus, Mode, Outcome, ProviderKind, RetryPolicy, SystemClock};
use dialtone_engine::testing::ScriptedProvider;
use dialtone_engine::{Account, Engine, EngineConfig, Providers};
use dialtone_store::{CallFilter, NewCampaign, Page};
use jiff::Timestamp;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CAP: u32 = 8;

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

async fn time_tick(engine: &Arc<Engine>) -> anyhow::Result<(usize, Duration)> {
    let t = Instant::now();
    let n = engine.dispatch_once().await?;
    Ok((n, t.elapsed()))
}

pub async fn tick(database_url: Option<&str>, campaigns: usize, contacts: usize) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir()?;
    let url = database_url.map(str::to_string).unwrap_or_else(|| format!("sqlite://{}", dir.path().join("tick.db").display()));
    let store = dialtone_store::connect(&url).await?;
    let ws = store.default_workspace().await?;
    let now = Timestamp::now();
    let csv = crate::demo::synthetic_csv(contacts);
    let mut rows = crate::import::CsvContacts::new(csv.as_bytes(), "US", "UTC")?;
    let mut report = crate::import::ImportReport::default();
    let mut batch = vec![];
    while let Some(chunk) = rows.next_chunk(1000, &mut report)? {
        batch.push(chunk);
    }
    let midnight = jiff::civil::Time::midnight();
    let loading = Instant::now();
    let mut ids = vec![];
    for i in 0..campaigns {
        let c = store
            .create_campaign(
                NewCampaign {
                    workspace_id: ws.clone(),
                    name: format!("tick {i}"),
                    provider: ProviderKind::Sim,
                    assistant_id: "asst_tick".into(),
                    phone_number_id: format!("pn_tick_{i}"),
                    mode: Mode::Continuous,
                    max_concurrent: CAP,
                    max_attempts: 1,
                    retry: RetryPolicy::default(),
                    default_region: "US".into(),
                    schedule: Schedule::always("UTC"),
                    calling_hours: LocalHours::new(midnight, midnight),
                    recurrence: Recurrence::new(Frequency::Once),
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
        for chunk in &batch {
            store.insert_contacts(&ws, &c.id, chunk, now).await?;
        }
        store.transition_campaign(&ws, &c.id, &[CampaignStatus::Draft], CampaignStatus::Starting, now).await?;
        ids.push(c.id);
    }
    let load_ms = loading.elapsed().as_millis() as u64;

    let mut providers = Providers::new();
    // The provider accepts every call at once.
    providers.insert(ProviderKind::Sim, Arc::new(Account::new(Arc::new(ScriptedProvider::new()))));
    let engine = Engine::new(store.clone(), providers, Arc::new(SystemClock), EngineConfig::default());
    // The engine's own loop analyses grown tables every second (`Store::analyze_grown`); it
    // is not running here, so the passes below would be timed with stale statistics (with
    // autovacuum off: 3.9 s a steady pass instead of 15 ms, BENCHMARKS.md).
    store.analyze_grown().await?;

    // 1. Every campaign has room: one pass claims CAP calls for each.
    let (claimed_first, first) = time_tick(&engine).await?;
    // Let the placements finish (the provider accepts at once).
    engine.settle().await;
    store.analyze_grown().await?;
    let queued = CallFilter { status: Some(CallStatus::Queued), ..Default::default() };
    anyhow::ensure!(store.list_calls(&ws, &queued, &Page { limit: 1, before: None }).await?.is_empty(), "placements left calls queued");
    // 2. Steady state: every campaign at its cap, nothing to claim.
    let mut steady = vec![];
    for _ in 0..5 {
        let (n, d) = time_tick(&engine).await?;
        anyhow::ensure!(n == 0, "a campaign at its cap claimed {n}");
        steady.push(d);
    }
    steady.sort();
    // 3. A tenth of the campaigns get one slot back, five times over (a different tenth
    // each time).
    let dialing = CallFilter { status: Some(CallStatus::Dialing), ..Default::default() };
    let (mut freed, mut claimed_partial, mut partial) = (0, 0, vec![]);
    for round in 0..5 {
        for id in ids.iter().skip(round).step_by(10) {
            let filter = CallFilter { campaign_id: Some(id.clone()), ..dialing.clone() };
            if let Some(call) = store.list_calls(&ws, &filter, &Page { limit: 1, before: None }).await?.pop() {
                store.end_call(&call.id, Outcome::Completed, "bench", Timestamp::now()).await?;
                freed += 1;
            }
        }
        let (n, d) = time_tick(&engine).await?;
        claimed_partial += n;
        partial.push(d);
    }
    partial.sort();
    Ok(json!({
        "backend": url.split(':').next(),
        "campaigns": campaigns,
        "contacts": campaigns * contacts,
        "load_ms": load_ms,
        "first_tick": { "claimed": claimed_first, "ms": ms(first) },
        "steady_tick_ms": { "median": ms(steady[2]), "max": ms(steady[4]) },
        "tick_with_free_slots": { "rounds": 5, "freed": freed, "claimed": claimed_partial,
            "ms": { "median": ms(partial[2]), "max": ms(partial[4]) } },
    }))
}
