//! Campaigns driven end to end against the simulator, judged by the simulator's own record.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};

/// Our outcome names for the sim's outcome counts.
fn sim_outcomes(app: &TestApp) -> BTreeMap<String, u64> {
    let o = app.sim_stats().outcomes;
    [("completed", o.answered), ("no_answer", o.no_answer), ("busy", o.busy), ("voicemail", o.voicemail), ("failed", o.failed)]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (k.to_string(), n))
        .collect()
}

fn outcomes(campaign: &Value) -> BTreeMap<String, u64> {
    serde_json::from_value(campaign["counts"]["outcomes"].clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sim_campaign_dials_everyone_within_its_cap_completes_and_lists_every_call_once() {
    let mut options = Options::default();
    // Every provider request takes 30 ms, so `starting` is observable before the first accept.
    options.sim.faults.latency_ms = (30, 30);
    let app = TestApp::with(options).await;
    let cap = 5;
    let id = app.create_campaign(json!({"max_concurrent": cap, "max_attempts": 2, "retry": {"no_answer": {"max_retries": 3, "delay_secs": 0.02}, "busy": {"max_retries": 3, "delay_secs": 0.02}, "failed": {"max_retries": 3, "delay_secs": 0.02}, "timeout": {"max_retries": 3, "delay_secs": 0.02}, "jitter": 0.0}})).await;
    let report = app.import_csv(&id, &contacts_csv(40)).await;
    assert_eq!(report["imported"], 40, "{report}");
    let draft = app.campaign(&id).await;
    assert_eq!(draft["status"], "draft");
    assert_eq!(app.sim_stats().dials, 0, "a draft campaign dials nobody");

    let started = app.act(&id, "start").await;
    assert_eq!(started["status"], "starting", "{started}");
    assert!(started["started_at"].is_null(), "no call accepted yet: {started}");
    let dialing = app.wait_for_status(&id, "dialing", secs(5)).await;
    let started_at = ts(&dialing["started_at"]);
    assert!(app.sim_stats().dials >= 1, "dialing means the provider accepted a call");

    let done = app.wait_for_status(&id, "completed", secs(30)).await;
    assert_eq!(ts(&done["started_at"]), started_at, "started_at is set once");
    assert!(ts(&done["completed_at"]) >= started_at, "{done}");
    let sim = app.sim_stats();

    // Counts add up, and agree with what the provider saw.
    let counts = &done["counts"];
    assert_eq!(total(&counts["contacts"]), 40, "{counts}");
    assert_eq!(u(&counts["contacts"]["pending"]) + u(&counts["contacts"]["in_call"]), 0, "{counts}");
    assert_eq!(counts["active_calls"], 0, "{counts}");
    let ours = outcomes(&done);
    let ended: u64 = ours.values().sum();
    assert_eq!(ended, sim.dials, "every dial has exactly one outcome: {counts}");
    assert_eq!(total(&counts["calls"]), sim.dials, "{counts}");
    assert_eq!(sim.ended, sim.dials, "the sim ended every call it accepted");
    assert_eq!(ours, sim_outcomes(&app), "our outcomes are the provider's");
    assert_eq!(u(&counts["contacts"]["done"]), ours.get("completed").unwrap_or(&0) + ours.get("voicemail").unwrap_or(&0), "{counts}");
    assert!(sim.dials > 40, "some contacts were retried (max_attempts 2): {} dials", sim.dials);
    assert!(sim.dials <= 80, "at most max_attempts per contact: {} dials", sim.dials);

    // The cap, seen from the provider's side.
    assert_eq!(sim.peak_concurrent_by_phone_number.get(PHONE_NUMBER_ID), Some(&(cap as u64)), "peak at the sim: {sim:?}");
    assert_eq!(sim.peak_concurrent_by_campaign.get(&id), Some(&(cap as u64)), "{sim:?}");
    assert_eq!(sim.duplicate_dials, 0, "no attempt was dialled twice: {:?}", sim.duplicate_dial_ids);
    assert_eq!(sim.dials_without_dialtone_id, 0);

    // Pages of 10, newest first, every ended call exactly once.
    let calls = app.all_calls(&[("campaign_id", id.as_str()), ("status", "ended")], 10).await;
    if calls.len() as u64 != sim.dials {
        // Say which call is missing and how it stands, read without the status filter.
        let all = app.all_calls(&[("campaign_id", id.as_str())], 500).await;
        let listed: HashSet<&str> = calls.iter().filter_map(|c| c["id"].as_str()).collect();
        let missing: Vec<&Value> = all.iter().filter(|c| !listed.contains(c["id"].as_str().unwrap_or_default())).collect();
        panic!("{} of {} ended calls listed; counts {counts}; not listed: {missing:?}", calls.len(), sim.dials);
    }
    let ids: Vec<&str> = calls.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len(), "no call is listed twice");
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert!(calls.iter().all(|c| c["campaign_id"] == id.as_str() && c["status"] == "ended" && c["outcome"].is_string()));
    assert!(calls.iter().all(|c| c["provider_call_id"].is_string() && c["dialed_at"].is_string() && c["ended_at"].is_string()));

    // One call in full: its events keep the raw webhook payloads.
    let answered = calls.iter().find(|c| c["outcome"] == "completed").expect("some call was answered");
    let detail = app.call_with_report(answered["id"].as_str().unwrap()).await;
    let pid = detail["provider_call_id"].as_str().unwrap();
    let events = detail["events"].as_array().expect("events");
    let status_updates: Vec<&Value> = events.iter().filter(|e| e["provider_type"] == "status-update").collect();
    assert!(status_updates.len() >= 3, "ringing, in-progress and ended: {events:?}");
    assert!(status_updates.iter().all(|e| e["payload"]["message"]["call"]["id"] == pid), "raw payloads: {events:?}");
    let report = events.iter().find(|e| e["provider_type"] == "end-of-call-report").expect("an end-of-call report");
    assert!(report["payload"]["message"]["artifact"]["transcript"].as_str().is_some_and(|t| !t.is_empty()), "{report}");
    assert!(detail["cost"].as_f64().is_some_and(|c| c > 0.0), "{detail}");
    assert!(detail["answered_at"].is_string(), "{detail}");

    // Filters: by outcome and by phone.
    for (outcome, n) in &ours {
        let filtered = app.all_calls(&[("campaign_id", id.as_str()), ("outcome", outcome.as_str())], 50).await;
        assert_eq!(filtered.len() as u64, *n, "calls with outcome {outcome}");
        assert!(filtered.iter().all(|c| c["outcome"] == outcome.as_str()));
    }
    let retried = calls.iter().find(|c| c["attempt"] == 2).expect("some contact was called twice");
    let phone = retried["phone"].as_str().unwrap();
    let by_phone = app.all_calls(&[("phone", phone)], 50).await;
    assert_eq!(by_phone.len(), calls.iter().filter(|c| c["phone"] == phone).count(), "calls to {phone}");
    assert_eq!(by_phone.len(), 2, "{by_phone:?}");
    assert!(by_phone.iter().all(|c| c["phone"] == phone));
    let (status, body) = app.get("/calls?phone=not-a-phone").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_mode_creates_the_next_batch_only_after_every_call_of_the_last_has_ended() {
    let app = TestApp::start().await;
    let cap = 4u64;
    let id = app.create_campaign(json!({"mode": "batch", "max_concurrent": cap})).await;
    app.import_csv(&id, &contacts_csv(14)).await;
    app.act(&id, "start").await;
    app.wait_for_status(&id, "completed", secs(20)).await;

    let sim = app.sim_stats();
    assert_eq!(sim.dials, 14);
    assert_eq!(sim.peak_concurrent_by_phone_number.get(PHONE_NUMBER_ID), Some(&cap), "{sim:?}");

    let calls = app.all_calls(&[("campaign_id", id.as_str())], 100).await;
    assert_eq!(calls.len(), 14);
    // A batch is the calls claimed together.
    let mut batches: BTreeMap<jiff::Timestamp, usize> = BTreeMap::new();
    for c in &calls {
        *batches.entry(ts(&c["created_at"])).or_default() += 1;
    }
    assert!(batches.len() >= 4, "14 contacts at 4 a batch take at least 4 batches: {batches:?}");
    assert!(batches.values().all(|n| *n as u64 <= cap), "{batches:?}");
    for a in &calls {
        for b in &calls {
            if ts(&a["created_at"]) < ts(&b["created_at"]) {
                assert!(
                    ts(&a["ended_at"]) <= ts(&b["created_at"]) && ts(&a["ended_at"]) <= ts(&b["dialed_at"]),
                    "call {} of a later batch was created at {} before {} of an earlier one ended at {}",
                    b["id"],
                    b["created_at"],
                    a["id"],
                    a["ended_at"]
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_stops_new_calls_and_resuming_carries_on_to_completion() {
    let mut options = Options::default();
    options.sim.talk_secs = (50.0, 100.0); // 100–200 ms
    let app = TestApp::with(options).await;
    let id = app.create_campaign(json!({"max_concurrent": 3})).await;
    app.import_csv(&id, &contacts_csv(24)).await;
    app.act(&id, "start").await;
    eventually(
        || async {
            if app.sim_stats().dials >= 3 {
                Ok(())
            } else {
                Err(format!("{:?}", app.sim_stats()))
            }
        },
        secs(5),
    )
    .await;

    let paused = app.act(&id, "pause").await;
    assert_eq!(paused["status"], "paused");
    // Calls in flight end and are recorded...
    let idle = eventually(
        || async {
            let c = app.campaign(&id).await;
            if c["counts"]["active_calls"] == 0 {
                Ok(c)
            } else {
                Err(format!("still active: {}", c["counts"]))
            }
        },
        secs(5),
    )
    .await;
    // ...and nothing new is dialled for several ticks.
    let dials = app.sim_stats().dials;
    assert!(dials < 24, "paused before the end: {dials}");
    holds_for(
        || async {
            let now = app.sim_stats().dials;
            if now == dials {
                Ok(())
            } else {
                Err(format!("a paused campaign dialled: {dials} → {now}"))
            }
        },
        ms(600),
    )
    .await;
    let still = app.campaign(&id).await;
    assert_eq!(still["status"], "paused");
    assert_eq!(still["counts"]["contacts"]["pending"], 24 - dials, "{}", idle["counts"]);

    let resumed = app.act(&id, "resume").await;
    assert_eq!(resumed["status"], "dialing", "a started campaign resumes dialing: {resumed}");
    let done = app.wait_for_status(&id, "completed", secs(20)).await;
    let sim = app.sim_stats();
    assert_eq!(sim.dials, 24, "everyone was called once");
    assert_eq!(sim.duplicate_dials, 0);
    assert!(sim.peak_concurrent_by_phone_number[PHONE_NUMBER_ID] <= 3);
    assert_eq!(total(&done["counts"]["outcomes"]), 24, "{}", done["counts"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canceling_cancels_pending_contacts_while_calls_in_flight_still_end_and_are_recorded() {
    let mut options = Options::default();
    options.sim.talk_secs = (150.0, 200.0); // 300–400 ms: long enough to cancel under
    options.sim.outcomes = dialtone_sim::OutcomeMix { answered: 1, no_answer: 0, busy: 0, voicemail: 0, failed: 0 };
    let app = TestApp::with(options).await;
    let id = app.create_campaign(json!({"max_concurrent": 3})).await;
    app.import_csv(&id, &contacts_csv(20)).await;
    app.act(&id, "start").await;
    eventually(
        || async {
            let s = app.sim_stats();
            if s.active >= 2 {
                Ok(())
            } else {
                Err(format!("sim active {}", s.active))
            }
        },
        secs(5),
    )
    .await;

    let canceled = app.act(&id, "cancel").await;
    assert_eq!(canceled["status"], "canceled", "{canceled}");
    assert_eq!(u(&canceled["counts"]["contacts"]["pending"]), 0, "{canceled}");
    assert!(u(&canceled["counts"]["contacts"]["canceled"]) >= 20 - 3 - u(&canceled["counts"]["contacts"]["done"]), "{canceled}");
    assert!(u(&canceled["counts"]["active_calls"]) >= 1, "calls were in flight when canceled: {canceled}");

    let (status, body) = app.post(&format!("/campaigns/{id}/cancel")).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let (status, body) = app.post(&format!("/campaigns/{id}/resume")).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");

    let after = eventually(
        || async {
            let c = app.campaign(&id).await;
            if c["counts"]["active_calls"] == 0 {
                Ok(c)
            } else {
                Err(format!("still active: {}", c["counts"]))
            }
        },
        secs(5),
    )
    .await;
    assert_eq!(after["status"], "canceled", "a canceled campaign never completes: {after}");
    let dials = app.sim_stats().dials;
    holds_for(
        || async {
            if app.sim_stats().dials == dials {
                Ok(())
            } else {
                Err("a canceled campaign dialled".into())
            }
        },
        ms(400),
    )
    .await;

    // The calls in flight ended normally and are on record, answered.
    let calls = app.all_calls(&[("campaign_id", id.as_str())], 100).await;
    assert_eq!(calls.len() as u64, dials, "every dial is on record");
    assert!(calls.iter().all(|c| c["status"] == "ended" && c["outcome"] == "completed" && c["ended_at"].is_string()), "{calls:?}");
    let contacts = &after["counts"]["contacts"];
    assert_eq!(u(&contacts["done"]), dials, "{contacts}");
    assert_eq!(u(&contacts["canceled"]), 20 - dials, "{contacts}");
    assert_eq!(total(contacts), 20, "{contacts}");
    assert_eq!(app.sim_stats().ended, dials, "the provider saw every call end");
}

fn metric(text: &str, name: &str, label: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split(['{', ' ']).next() == Some(name) && l.contains(label))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_placed_calls_and_time_webhooks_after_a_run() {
    let app = TestApp::start().await;
    let id = app.create_campaign(json!({"max_concurrent": 3})).await;
    app.import_csv(&id, &contacts_csv(6)).await;
    app.act(&id, "start").await;
    let done = app.wait_for_status(&id, "completed", secs(20)).await;

    let (status, body) = send(app.http.get(app.url("/metrics"))).await;
    assert_eq!(status, StatusCode::OK);
    let text = body.as_str().expect("Prometheus text");
    assert_eq!(metric(text, "dialtone_calls_placed_total", r#"provider="sim""#), Some(6.0), "{text}");
    let webhooks = metric(text, "dialtone_webhook_seconds_count", r#"provider="vapi""#).unwrap_or(0.0);
    assert!(webhooks >= 12.0, "at least an end and a report per call were timed: {text}");
    assert_eq!(metric(text, "dialtone_webhooks_total", r#"result="unauthorized""#), None, "the sim's webhooks were all authentic");
    let ended: f64 = text.lines().filter(|l| l.starts_with("dialtone_calls_ended_total")).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum();
    assert_eq!(ended as u64, total(&done["counts"]["outcomes"]), "{text}");
    assert_eq!(metric(text, "dialtone_active_calls", ""), Some(0.0), "{text}");

    let (status, body) = send(app.http.get(app.url("/healthz"))).await;
    assert_eq!((status, body), (StatusCode::OK, Value::String("ok".into())));
}
