//! One provider account shared by several campaigns: its concurrency limit and its call
//! rate hold for all of them together, and the campaigns take turns rather than queue.

use crate::support::*;
use jiff::Timestamp;
use serde_json::{json, Value};

/// Creates and imports `n` campaigns of `contacts` each (distinct numbers), then starts them all.
async fn start_campaigns(app: &TestApp, n: usize, contacts: usize, cap: u32) -> Vec<String> {
    let all = numbers(n * contacts);
    let mut ids = vec![];
    for chunk in all.chunks(contacts) {
        let id = app.create_campaign(json!({"max_concurrent": cap})).await;
        let csv = std::iter::once("name,phone".to_string()).chain(chunk.iter().map(|p| format!("x,{p}"))).collect::<Vec<_>>().join("\n");
        let report = app.import_csv(&id, &csv).await;
        assert_eq!(report["imported"], contacts as u64, "{report}");
        ids.push(id);
    }
    for id in &ids {
        app.act(id, "start").await;
    }
    ids
}

fn created(calls: &[Value]) -> Vec<Timestamp> {
    let mut at: Vec<Timestamp> = calls.iter().map(|c| ts(&c["created_at"])).collect();
    at.sort();
    at
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_sharing_an_account_stay_within_its_limit_together_and_all_make_progress_side_by_side() {
    let (limit, cap, contacts) = (10u64, 8, 24);
    let mut options = Options { sim_max_concurrent: Some(limit as u32), ..Options::default() };
    // Calls of 0.15–0.6 s: long enough that all ten of the account's slots are live at the
    // provider at once even on a loaded machine (the sim sees a slot free a webhook's
    // latency before we do, so calls of a few ms would rarely show the full ten there).
    options.sim.time_scale = 0.006;
    let app = TestApp::with(options).await;
    let ids = start_campaigns(&app, 3, contacts, cap).await;
    let mut done = vec![];
    for id in &ids {
        done.push(app.wait_for_status(id, "completed", secs(12)).await);
    }

    let sim = app.sim_stats();
    assert_eq!(sim.dials, 3 * contacts as u64, "{sim:?}");
    assert_eq!(sim.duplicate_dials, 0, "{:?}", sim.duplicate_dial_ids);
    let peak = sim.peak_concurrent_by_provider.get("vapi").copied().unwrap_or(0);
    assert!(peak <= limit, "the account had {peak} calls at once, above its limit of {limit}");
    assert_eq!(peak, limit, "24 wanted slots fill the account's 10: {sim:?}");
    for (id, c) in ids.iter().zip(&done) {
        assert_eq!(total(&c["counts"]["outcomes"]), contacts as u64, "{id}: {}", c["counts"]);
        let own = sim.peak_concurrent_by_campaign.get(id).copied().unwrap_or(0);
        assert!(own <= cap as u64, "{id} peaked at {own}, above its cap of {cap}");
    }

    // Side by side, not one after another: every campaign was dialling before any finished,
    // and each placed a fair part of its calls while all three were running.
    let first_done = done.iter().map(|c| ts(&c["completed_at"])).min().unwrap();
    let mut created_by = vec![];
    for id in &ids {
        created_by.push(created(&app.all_calls(&[("campaign_id", id.as_str())], 100).await));
    }
    let all_running = created_by.iter().map(|c| c[0]).max().unwrap();
    for (id, at) in ids.iter().zip(&created_by) {
        assert!(at[0] < first_done, "{id} made its first call at {} only after a campaign completed at {first_done}", at[0]);
        let together = at.iter().filter(|t| **t >= all_running && **t < first_done).count();
        assert!(together >= contacts / 4, "{id} placed only {together} of {contacts} calls while all three campaigns ran ({all_running} – {first_done})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accounts_call_rate_holds_across_its_campaigns() {
    let (rate, burst, campaigns, contacts) = (20u64, 20u64, 3usize, 20usize);
    let app = TestApp::with(Options { sim_rate_per_sec: Some(rate as f64), ..Options::default() }).await;
    let ids = start_campaigns(&app, campaigns, contacts, 20).await;
    for id in &ids {
        app.wait_for_status(id, "completed", secs(12)).await;
    }
    let sim = app.sim_stats();
    let dials = (campaigns * contacts) as u64;
    assert_eq!(sim.dials, dials, "{sim:?}");
    let first = sim.first_dial_at_ms.expect("a first dial");

    // `dialed_at` is stamped after the provider accepted, so it is never before the sim's own time.
    let mut dialed: Vec<i64> = vec![];
    for id in &ids {
        dialed.extend(app.all_calls(&[("campaign_id", id.as_str())], 100).await.iter().map(|c| ts(&c["dialed_at"]).as_millisecond()));
    }
    assert_eq!(dialed.len() as u64, dials);
    let last = *dialed.iter().max().unwrap();
    // After the burst, one dial per 1/rate s: the 60th can come no sooner than (60 − 20) / 20 = 2 s in.
    let least_ms = ((dials - burst) * 1000 / rate) as i64;
    assert!(last - first >= least_ms - 50, "{dials} dials took {} ms; at {rate}/s after a burst of {burst} they need {least_ms} ms", last - first);
    let first_second = dialed.iter().filter(|t| **t < first + 1000).count() as u64;
    assert!(first_second <= burst + rate + 1, "{first_second} dials in the first second, above a burst of {burst} plus {rate}/s");
}
