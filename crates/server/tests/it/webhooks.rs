//! `/webhooks/vapi` with the test playing the provider: the sim holds two calls open and
//! sends nothing, and every webhook here is written by hand.

use crate::support::*;
use dialtone_sim::SimOutcome;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

struct Held {
    id: String,
    provider_call_id: String,
}

/// Two calls of a campaign, accepted by the provider and left at `dialing`.
async fn two_held_calls() -> (TestApp, String, Held, Held) {
    let mut options = Options::default();
    options.sim.number_outcomes = numbers(2).into_iter().map(|n| (n, SimOutcome::Hang)).collect();
    options.sim_webhooks = false;
    // Nobody reconciles behind the test's back.
    options.engine.stuck_timeout = secs(600);
    let app = TestApp::with(options).await;
    let campaign = app.create_campaign(json!({"max_concurrent": 2})).await;
    app.import_csv(&campaign, &contacts_csv(2)).await;
    app.act(&campaign, "start").await;
    let calls = eventually(
        || async {
            let calls = app.all_calls(&[("campaign_id", campaign.as_str())], 10).await;
            if calls.len() == 2 && calls.iter().all(|c| c["status"] == "dialing") {
                Ok(calls)
            } else {
                Err(format!("{calls:?}"))
            }
        },
        secs(5),
    )
    .await;
    let held = |c: &Value| Held { id: c["id"].as_str().unwrap().into(), provider_call_id: c["provider_call_id"].as_str().unwrap().into() };
    let (a, b) = (held(&calls[0]), held(&calls[1]));
    (app, campaign, a, b)
}

fn status_update(provider_call_id: &str, status: &str, extra: Value) -> Value {
    let mut m = json!({
        "type": "status-update",
        "status": status,
        "call": {"id": provider_call_id},
        "timestamp": jiff::Timestamp::now().as_millisecond(),
    });
    for (k, v) in extra.as_object().unwrap() {
        m[k] = v.clone();
    }
    m
}

fn events(call: &Value) -> usize {
    call["events"].as_array().expect("events").len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_authenticated_parsed_deduplicated_and_never_move_a_call_back() {
    let (app, campaign, a, b) = two_held_calls().await;
    let before = app.call(&a.id).await;
    let ended = json!({ "message": status_update(&a.provider_call_id, "ended", json!({"endedReason": "customer-busy"})) }).to_string();

    // Not authentic: 401 in our shape, nothing written.
    for auth in [None, Some("wrong-secret"), Some("")] {
        let (status, body) = app.webhook_raw(&ended, auth).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let req = app.http.post(app.url("/webhooks/vapi")).header("x-vapi-secret", "wrong-secret").body(ended.clone());
    let (status, body) = send(req).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(app.call(&a.id).await, before, "a forged webhook touches nothing");
    assert_eq!(app.state.webhooks_received.load(Ordering::Relaxed), 0);

    // Authentic but malformed: 400 in our shape.
    for body in [r#"{"message": {"type": "status-update", "#, r#"{"nomessage": true}"#, r#"{"message": {"type": "status-update", "call": {"id": "x"}}}"#] {
        let (status, resp) = app.webhook_raw(body, Some(&app.webhook_secret)).await;
        assert_error(status, &resp, StatusCode::BAD_REQUEST, "malformed_webhook");
    }

    // A message type we do not act on: acknowledged, nothing stored.
    let (status, _) = app.webhook(json!({"type": "transcript", "transcript": "hello", "call": {"id": a.provider_call_id}})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.call(&a.id).await, before, "an ignored message stores nothing");

    // The real end: stored and applied.
    let (status, _) = app.webhook_raw(&ended, Some(&app.webhook_secret)).await;
    assert_eq!(status, StatusCode::OK);
    let after_end = app.call(&a.id).await;
    assert_eq!(after_end["status"], "ended", "{after_end}");
    assert_eq!(after_end["outcome"], "busy");
    assert_eq!(after_end["ended_reason"], "customer-busy");
    assert_eq!(events(&after_end), events(&before) + 1);
    let stored = after_end["events"].as_array().unwrap().iter().find(|e| e["provider_type"] == "status-update").unwrap();
    assert_eq!(stored["payload"], serde_json::from_str::<Value>(&ended).unwrap(), "the raw payload is kept");
    assert_eq!(stored["applied"], true);

    // The same webhook again: acknowledged, stored once, changes nothing.
    let duplicates = app.state.duplicate_events.load(Ordering::Relaxed);
    let (status, _) = app.webhook_raw(&ended, Some(&app.webhook_secret)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.call(&a.id).await, after_end, "a replay changes nothing");
    assert_eq!(app.state.duplicate_events.load(Ordering::Relaxed), duplicates + 1);

    // A late `ringing` (never seen before, so not a duplicate) is kept but moves nothing back.
    let (status, _) = app.webhook(status_update(&a.provider_call_id, "ringing", json!({}))).await;
    assert_eq!(status, StatusCode::OK);
    let late = app.call(&a.id).await;
    assert_eq!(late["status"], "ended", "{late}");
    assert_eq!(late["outcome"], "busy");
    assert_eq!(late["ended_at"], after_end["ended_at"]);
    assert_eq!(events(&late), events(&after_end) + 1, "the late event is on record");
    let ringing = late["events"].as_array().unwrap().iter().find(|e| e["payload"]["message"]["status"] == "ringing").unwrap();
    assert_eq!(ringing["applied"], false, "{ringing}");

    // Matched by our id alone: the provider id in the payload is one we never stored.
    let b_before = app.call(&b.id).await;
    let by_metadata = |status: &str, extra: Value| {
        let mut m = status_update("provider-id-we-never-saw", status, extra);
        m["call"]["assistantOverrides"] = json!({"metadata": {"dialtoneCallId": b.id, "campaignId": campaign}});
        m
    };
    let (status, _) = app.webhook(by_metadata("in-progress", json!({}))).await;
    assert_eq!(status, StatusCode::OK);
    let b_now = app.call(&b.id).await;
    assert_eq!(b_now["status"], "in_progress", "{b_now}");
    assert!(b_now["answered_at"].is_string(), "{b_now}");
    assert_eq!(events(&b_now), events(&b_before) + 1);
    assert_eq!(b_now["provider_call_id"], b.provider_call_id.as_str(), "the stored provider id stays");

    // An event for a call nobody knows moves no call.
    let (status, _) = app.webhook(status_update("provider-id-of-nobody", "ended", json!({"endedReason": "customer-ended-call"}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.call(&b.id).await, b_now);
    assert_eq!(app.call(&a.id).await, late);

    // The legacy header works too; B ends and the campaign can finish.
    let report = json!({"message": {"type": "end-of-call-report", "endedReason": "customer-ended-call", "cost": 0.05,
        "startedAt": "2026-01-01T10:00:00.000Z", "endedAt": "2026-01-01T10:00:42.000Z",
        "artifact": {"transcript": "AI: hi"}, "call": {"id": b.provider_call_id}}});
    let req = app.http.post(app.url("/webhooks/vapi")).header("x-vapi-secret", &app.webhook_secret).body(report.to_string());
    let (status, body) = send(req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let b_end = app.call(&b.id).await;
    assert_eq!(b_end["status"], "ended", "{b_end}");
    assert_eq!(b_end["outcome"], "completed");
    assert_eq!(b_end["duration_ms"], 42_000);
    assert_eq!(b_end["cost"], 0.05);
    let done = app.wait_for_status(&campaign, "completed", secs(5)).await;
    assert_eq!(done["counts"]["outcomes"], json!({"busy": 1, "completed": 1}));
}
