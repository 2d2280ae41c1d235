//! Calls that go quiet: the reaper asks the provider, and ends what nobody can vouch for.

use crate::support::*;
use dialtone_sim::{Faults, SimOutcome};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_whose_end_webhooks_never_arrive_completes_from_the_providers_answers() {
    let mut options = Options::default();
    options.sim.faults = Faults { drop_webhooks: 1.0, ..Faults::none() };
    options.engine.stuck_timeout = secs(1);
    let app = TestApp::with(options).await;
    let id = app.create_campaign(json!({"max_concurrent": 3})).await;
    app.import_csv(&id, &contacts_csv(6)).await;
    app.act(&id, "start").await;

    let done = app.wait_for_status(&id, "completed", secs(20)).await;
    let sim = app.sim_stats();
    assert_eq!(sim.dials, 6);
    assert_eq!(sim.webhooks_dropped, 12, "every end and report was withheld: {sim:?}");
    let counts = &done["counts"];
    assert_eq!(total(&counts["outcomes"]), 6, "{counts}");
    assert!(counts["outcomes"].get("timeout").is_none(), "the provider knew how each call ended: {counts}");
    assert_eq!(u(&counts["outcomes"]["completed"]), sim.outcomes.answered, "{counts}");

    for call in app.all_calls(&[("campaign_id", id.as_str())], 100).await {
        assert_eq!(call["status"], "ended", "{call}");
        let detail = app.call(call["id"].as_str().unwrap()).await;
        let events = detail["events"].as_array().unwrap();
        assert!(!events.iter().any(|e| e["provider_type"] == "end-of-call-report"), "no report was delivered: {events:?}");
        let reconciled = events.iter().find(|e| e["provider_type"] == "call" && e["applied"] == true);
        let reconciled = reconciled.unwrap_or_else(|| panic!("the end came from GET /call: {events:?}"));
        assert_eq!(reconciled["payload"]["status"], "ended", "{reconciled}");
        assert_eq!(reconciled["payload"]["id"], detail["provider_call_id"]);
    }
}

/// Fewer than the tries of one placement (1 + `placement_backoff.len()`): see below.
const BREAKER_FAILURES: u32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_the_provider_can_no_longer_answer_for_end_as_timeout_and_free_their_slots() {
    let hung = numbers(4);
    let mut options = Options::default();
    options.sim.number_outcomes = hung.iter().map(|n| (n.clone(), SimOutcome::Hang)).collect();
    options.engine.stuck_timeout = secs(1);
    // Before the breaker opens, a placement that runs out of tries ends `failed` and spends its
    // attempt (by design: tests/it/breaker.rs in the engine). The hung calls are reaped one by
    // one, so their contacts' placements need not overlap: with the default 5 failures to open,
    // a lone placement's 4 tries could all fail with the breaker still closed. Opening it within
    // one placement's retries makes every placement meet the open breaker while it still has a
    // try left, however the placements interleave.
    options.configure = |c| c.breaker_failures = BREAKER_FAILURES;
    assert!(BREAKER_FAILURES as usize <= options.engine.placement_backoff.len(), "the breaker opens before a placement's last try");
    let mut app = TestApp::with(options).await;
    let id = app.create_campaign(json!({"max_concurrent": 2})).await;
    app.import_csv(&id, &contacts_csv(4)).await;
    app.act(&id, "start").await;

    // Two calls are up and talking, holding both slots; nothing else is dialled.
    eventually(
        || async {
            let c = app.campaign(&id).await;
            if c["counts"]["calls"]["in_progress"] == 2 {
                Ok(())
            } else {
                Err(format!("{}", c["counts"]))
            }
        },
        secs(5),
    )
    .await;
    assert_eq!(app.sim_stats().dials, 2, "the cap holds while calls hang");
    app.shutdown_sim();

    // The hung calls end as timeout and free their slots; the other two contacts are then
    // claimed against a provider that is gone: the connection is refused (nothing was sent),
    // the breaker opens after three failures, and every claim meets it with a try to spare
    // and is given back unspent (or, once it is open, is not claimed at all).
    let c = eventually(
        || async {
            let c = app.campaign(&id).await;
            let breaker_open = c["waiting_reason"].as_str().is_some_and(|w| w.contains("circuit breaker"));
            if u(&c["counts"]["outcomes"]["timeout"]) == 2 && c["counts"]["active_calls"] == 0 && breaker_open {
                Ok(c)
            } else {
                Err(format!("{} {}", c["counts"], c["waiting_reason"]))
            }
        },
        secs(20),
    )
    .await;
    let counts = &c["counts"];
    let timed_out = app.all_calls(&[("campaign_id", id.as_str()), ("outcome", "timeout")], 10).await;
    assert_eq!(timed_out.len(), 2);
    for call in &timed_out {
        assert_eq!(call["status"], "ended", "{call}");
        assert!(call["ended_reason"].as_str().is_some_and(|r| r.contains("provider could not say")), "{call}");
    }
    assert_eq!(u(&counts["contacts"]["pending"]), 2, "a refused connection spends no attempt: {counts}");
    assert_eq!(u(&counts["outcomes"]["failed"]), 0, "{counts}");
}
