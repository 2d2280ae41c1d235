//! The simulator, started on port 0, driven over HTTP like the engine drives Vapi.

mod exotel;
mod media;
mod speech;
mod support;
mod twilio;
mod vapi_more;

use std::collections::HashMap;

use dialtone_sim::{Faults, SimOutcome};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use support::*;

const ANA: &str = "+14155550001";
const BOB: &str = "+14155550002";

fn outcomes(pairs: &[(&str, SimOutcome)]) -> HashMap<String, SimOutcome> {
    pairs.iter().map(|(n, o)| (n.to_string(), *o)).collect()
}

#[tokio::test]
async fn create_rejects_invalid_bodies_naming_the_field() {
    let sim = spawn(fast(None)).await;
    let client = Client::new(&sim);

    let mut body = dial_body(ANA, Some("call_1"), "pn_a", "cmp_1");
    body.as_object_mut().unwrap().remove("assistantId");
    let response = client.post_call(&body).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert!(error["message"].as_str().unwrap().contains("assistantId"), "{error}");
    assert_eq!(error["statusCode"], 400);
    assert_eq!(error["error"], "Bad Request");

    let response = client.post_call(&dial_body("4155550001", Some("call_1"), "pn_a", "cmp_1")).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert!(error["message"].as_str().unwrap().contains("customer.number"), "{error}");

    let mut body = dial_body(ANA, None, "pn_a", "cmp_1");
    body.as_object_mut().unwrap().remove("phoneNumberId");
    let error: Value = client.post_call(&body).await.json().await.unwrap();
    assert!(error["message"].as_str().unwrap().contains("phoneNumberId"), "{error}");

    let response = client.http.post(format!("{}/call", client.base)).header("content-type", "application/json").body("{not json").send().await.unwrap();
    assert_eq!(response.status(), 400);

    let stats = sim.stats();
    assert_eq!(stats.rejected_400, 4);
    assert_eq!(stats.dials, 0);
    assert_eq!(stats.active, 0);
}

#[tokio::test]
async fn call_routes_require_the_api_key_when_one_is_set() {
    let sim = spawn(dialtone_sim::SimConfig { api_key: Some("sk_right".into()), ..fast(None) }).await;
    let body = dial_body(ANA, Some("call_1"), "pn_a", "cmp_1");

    let response = Client::new(&sim).with_key("sk_wrong").post_call(&body).await;
    assert_eq!(response.status(), 401);
    assert_eq!(Client::new(&sim).post_call(&body).await.status(), 401);
    assert_eq!(Client::new(&sim).list("").await.0, 401);

    let client = Client::new(&sim).with_key("sk_right");
    let call = client.dial(&body).await;
    assert_eq!(client.get_call(call["id"].as_str().unwrap()).await.0, 200);

    let stats = sim.stats();
    assert_eq!(stats.unauthorized, 3);
    assert_eq!(stats.dials, 1);
}

#[tokio::test]
async fn answered_call_plays_through_with_bearer_webhooks_in_order() {
    let (receiver, url) = Receiver::start().await;
    let sim =
        spawn(dialtone_sim::SimConfig { webhook_secret: Some("whsec".into()), number_outcomes: outcomes(&[(ANA, SimOutcome::Answered)]), ..fast(Some(&url)) })
            .await;
    receiver.watch(&sim);
    let client = Client::new(&sim);

    let created = client.dial(&dial_body(ANA, Some("call_1"), "pn_a", "cmp_1")).await;
    assert_eq!(created["status"], "queued");
    assert_eq!(created["type"], "outboundPhoneCall");
    assert_eq!(created["customer"]["number"], ANA);
    assert_eq!(created["assistantOverrides"]["metadata"]["dialtoneCallId"], "call_1");
    assert!(created["phoneCallProviderId"].as_str().unwrap().starts_with("CA"));
    assert!(created["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(created["startedAt"].is_null() && created["endedReason"].is_null());
    let id = created["id"].as_str().unwrap();

    let hits = receiver.wait_for_count(4).await;
    let labels: Vec<_> = hits.iter().map(Received::label).collect();
    assert_eq!(labels, ["status-update:ringing", "status-update:in-progress", "status-update:ended", "end-of-call-report"]);
    for hit in &hits {
        assert_eq!(hit.headers["authorization"], "Bearer whsec");
        assert!(hit.headers.get("x-vapi-secret").is_none());
        assert_eq!(hit.message()["call"]["id"], id);
        assert_eq!(hit.message()["call"]["assistantOverrides"]["metadata"]["campaignId"], "cmp_1");
        assert!(hit.message()["timestamp"].as_i64().unwrap() > 1_600_000_000_000);
    }
    // The sim closed its books before telling anyone the call ended.
    assert_eq!(hits[2].sim_active, Some(0));
    assert_eq!(hits[2].sim_status.as_deref(), Some("ended"));
    assert_eq!(hits[1].sim_active, Some(1));

    let reason = hits[2].message()["endedReason"].as_str().unwrap().to_string();
    assert!(["customer-ended-call", "assistant-ended-call"].contains(&reason.as_str()), "{reason}");
    let report = hits[3].message();
    assert_eq!(report["endedReason"], reason.as_str());
    assert!(report["cost"].as_f64().unwrap() > 0.0);
    assert!(report["startedAt"].is_string() && report["endedAt"].is_string());
    assert_eq!(report["artifact"]["recordingUrl"], format!("https://sim.invalid/rec/{id}.wav"));
    assert_eq!(report["analysis"]["successEvaluation"], "true");

    let (status, call) = client.get_call(id).await;
    assert_eq!(status, 200);
    assert_eq!(call["status"], "ended");
    assert_eq!(call["endedReason"], reason.as_str());

    let stats = wait_for_stats(&sim, "4 deliveries", |s| s.webhooks_sent == 4).await;
    assert_eq!((stats.dials, stats.ended, stats.active, stats.outcomes.answered), (1, 1, 0, 1));
    assert_eq!(stats.webhooks_failed, 0);
    // Each delivery's answer time, and each ended webhook's wait behind the call's earlier ones.
    assert_eq!(stats.webhook_ack_us.n, 4);
    assert_eq!(stats.ended_webhook_wait_us.n, 2, "the ended status-update and the end-of-call report");
}

#[tokio::test]
async fn hmac_mode_signs_timestamp_dot_raw_body() {
    let (receiver, url) = Receiver::start().await;
    let sim = spawn(dialtone_sim::SimConfig {
        hmac_secret: Some("hmac-key".into()),
        webhook_secret: Some("ignored-in-hmac-mode".into()),
        number_outcomes: outcomes(&[(ANA, SimOutcome::Busy)]),
        ..fast(Some(&url))
    })
    .await;
    Client::new(&sim).dial(&dial_body(ANA, Some("call_1"), "pn_a", "cmp_1")).await;

    let hits = receiver.wait_for_count(3).await;
    let now_ms = jiff::Timestamp::now().as_millisecond();
    for hit in &hits {
        let timestamp = hit.headers["x-timestamp"].to_str().unwrap();
        assert!((now_ms - timestamp.parse::<i64>().unwrap()).abs() < 60_000);
        let mut mac = Hmac::<Sha256>::new_from_slice(b"hmac-key").unwrap();
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(&hit.raw);
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(hit.headers["x-signature"].to_str().unwrap(), expected);
        assert!(hit.headers.get("authorization").is_none());
    }
}

#[tokio::test]
async fn legacy_mode_sends_x_vapi_secret_instead_of_bearer() {
    let (receiver, url) = Receiver::start().await;
    let sim = spawn(dialtone_sim::SimConfig {
        webhook_secret: Some("whsec".into()),
        legacy_secret_header: true,
        number_outcomes: outcomes(&[(ANA, SimOutcome::Failed)]),
        ..fast(Some(&url))
    })
    .await;
    Client::new(&sim).dial(&dial_body(ANA, Some("call_1"), "pn_a", "cmp_1")).await;

    let hits = receiver.wait_for_count(2).await;
    // Failed calls never ring.
    assert_eq!(receiver.labels(), ["status-update:ended", "end-of-call-report"]);
    assert_eq!(hits[0].message()["endedReason"], "twilio-failed-to-connect-call");
    for hit in &hits {
        assert_eq!(hit.headers["x-vapi-secret"], "whsec");
        assert!(hit.headers.get("authorization").is_none());
    }
}

#[tokio::test]
async fn number_outcome_busy_never_goes_in_progress() {
    let (receiver, url) = Receiver::start().await;
    let sim = spawn(dialtone_sim::SimConfig { number_outcomes: outcomes(&[(BOB, SimOutcome::Busy)]), ..fast(Some(&url)) }).await;
    let client = Client::new(&sim);
    let call = client.dial(&dial_body(BOB, Some("call_1"), "pn_a", "cmp_1")).await;

    let hits = receiver.wait_for_count(3).await;
    assert_eq!(receiver.labels(), ["status-update:ringing", "status-update:ended", "end-of-call-report"]);
    assert_eq!(hits[1].message()["endedReason"], "customer-busy");
    let ended = client.wait_ended(call["id"].as_str().unwrap()).await;
    assert_eq!(ended["endedReason"], "customer-busy");
    assert!(ended["startedAt"].is_null(), "a busy call never started: {ended}");
    assert_eq!(sim.stats().outcomes.busy, 1);
}

#[tokio::test]
async fn repeated_dialtone_call_id_counts_as_duplicate_dial() {
    let sim = spawn(fast(None)).await;
    let client = Client::new(&sim);
    client.dial(&dial_body(ANA, Some("call_same"), "pn_a", "cmp_1")).await;
    client.dial(&dial_body(BOB, Some("call_other"), "pn_a", "cmp_1")).await;
    client.dial(&dial_body(ANA, Some("call_same"), "pn_a", "cmp_1")).await;
    client.dial(&dial_body(ANA, None, "pn_a", "cmp_1")).await;

    let stats = sim.stats();
    assert_eq!(stats.dials, 4);
    assert_eq!(stats.duplicate_dials, 1);
    assert_eq!(stats.duplicate_dial_ids, ["call_same"]);
    assert_eq!(stats.dials_without_dialtone_id, 1);
    assert!(stats.first_dial_at_ms.is_some());
}

#[tokio::test]
async fn peak_concurrency_is_counted_per_phone_number_and_campaign() {
    let hang = "+14155550999";
    let sim = spawn(dialtone_sim::SimConfig { number_outcomes: outcomes(&[(ANA, SimOutcome::Answered), (hang, SimOutcome::Hang)]), ..fast(None) }).await;
    let client = Client::new(&sim);

    // Three short calls at once on pn_a / cmp_1, then they all end.
    let mut ids = Vec::new();
    for i in 0..3 {
        let call = client.dial(&dial_body(ANA, Some(&format!("call_a{i}")), "pn_a", "cmp_1")).await;
        ids.push(call["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        client.wait_ended(id).await;
    }
    assert_eq!(sim.stats().active, 0);

    // Then two hanging calls on pn_b / cmp_2 and one on pn_a / cmp_1.
    client.dial(&dial_body(hang, Some("call_b0"), "pn_b", "cmp_2")).await;
    client.dial(&dial_body(hang, Some("call_b1"), "pn_b", "cmp_2")).await;
    client.dial(&dial_body(hang, Some("call_a3"), "pn_a", "cmp_1")).await;

    let stats = sim.stats();
    assert_eq!(stats.active, 3, "hanging calls stay active");
    assert_eq!(stats.peak_concurrent, 3);
    assert_eq!(stats.peak_concurrent_by_phone_number["pn_a"], 3);
    assert_eq!(stats.peak_concurrent_by_phone_number["pn_b"], 2);
    assert_eq!(stats.peak_concurrent_by_campaign["cmp_1"], 3);
    assert_eq!(stats.peak_concurrent_by_campaign["cmp_2"], 2);
    assert_eq!(stats.hanging, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_accounting_is_exact_under_parallel_dials() {
    let hang = "+14155550999";
    let sim = spawn(dialtone_sim::SimConfig { number_outcomes: outcomes(&[(hang, SimOutcome::Hang)]), ..fast(None) }).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..60 {
        let client = Client::new(&sim);
        tasks.spawn(async move {
            client.dial(&dial_body(hang, Some(&format!("call_{i}")), &format!("pn_{}", i % 2), "cmp_1")).await;
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let stats = sim.stats();
    assert_eq!((stats.dials, stats.active, stats.peak_concurrent), (60, 60, 60));
    assert_eq!(stats.peak_concurrent_by_phone_number["pn_0"], 30);
    assert_eq!(stats.peak_concurrent_by_campaign["cmp_1"], 60);
}

#[tokio::test]
async fn dropped_webhooks_leave_the_call_ended_in_get_call() {
    let (receiver, url) = Receiver::start().await;
    let sim = spawn(dialtone_sim::SimConfig {
        faults: Faults { drop_webhooks: 1.0, ..Faults::none() },
        number_outcomes: outcomes(&[(ANA, SimOutcome::Answered)]),
        ..fast(Some(&url))
    })
    .await;
    let client = Client::new(&sim);
    let call = client.dial(&dial_body(ANA, Some("call_1"), "pn_a", "cmp_1")).await;

    let ended = client.wait_ended(call["id"].as_str().unwrap()).await;
    assert!(ended["endedReason"].is_string());
    // The sender counts the drops as it handles them, after the earlier deliveries.
    let stats = wait_for_stats(&sim, "both ended webhooks dropped", |s| s.webhooks_dropped == 2).await;
    assert_eq!(receiver.labels(), ["status-update:ringing", "status-update:in-progress"]);
    assert_eq!((stats.ended, stats.active, stats.webhooks_sent), (1, 0, 2));
    assert_eq!(stats.ended_webhook_wait_us.n, 0, "a dropped webhook is never sent, so it has no wait");
}

#[tokio::test]
async fn out_of_order_sends_progress_after_ended_and_duplicates_repeat() {
    let (receiver, url) = Receiver::start().await;
    let sim = spawn(dialtone_sim::SimConfig {
        faults: Faults { out_of_order: 1.0, duplicate_webhooks: 1.0, ..Faults::none() },
        number_outcomes: outcomes(&[(ANA, SimOutcome::Answered)]),
        ..fast(Some(&url))
    })
    .await;
    Client::new(&sim).dial(&dial_body(ANA, Some("call_1"), "pn_a", "cmp_1")).await;

    receiver.wait_for_count(8).await;
    assert_eq!(
        receiver.labels(),
        [
            "status-update:ended",
            "status-update:ended",
            "end-of-call-report",
            "end-of-call-report",
            "status-update:ringing",
            "status-update:ringing",
            "status-update:in-progress",
            "status-update:in-progress",
        ]
    );
    let stats = wait_for_stats(&sim, "8 deliveries", |s| s.webhooks_sent == 8).await;
    assert_eq!((stats.webhooks_duplicated, stats.calls_reordered), (4, 1));
}

#[tokio::test]
async fn rate_limit_fault_returns_429_and_creates_nothing() {
    let sim = spawn(dialtone_sim::SimConfig { faults: Faults { rate_429: 1.0, ..Faults::none() }, ..fast(None) }).await;
    let client = Client::new(&sim);
    let response = client.post_call(&dial_body(ANA, Some("call_1"), "pn_a", "cmp_1")).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "0.001", "one simulated second at time scale 0.001");
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["statusCode"], 429);

    assert_eq!(client.list("").await.1, json!([]));
    let stats = sim.stats();
    assert_eq!((stats.dials, stats.rejected_429, stats.active, stats.peak_concurrent), (0, 1, 0, 0));
    assert_eq!(stats.first_dial_at_ms, None);
}

#[tokio::test]
async fn unavailable_fault_returns_503_and_creates_nothing() {
    let sim = spawn(dialtone_sim::SimConfig { faults: Faults { rate_503: 1.0, ..Faults::none() }, ..fast(None) }).await;
    let client = Client::new(&sim);
    let response = client.post_call(&dial_body(ANA, Some("call_1"), "pn_a", "cmp_1")).await;
    assert_eq!(response.status(), 503);
    assert_eq!(client.list("").await.1, json!([]));
    assert_eq!((sim.stats().dials, sim.stats().rejected_503), (0, 1));
}

#[tokio::test]
async fn list_filters_by_created_at_newest_first() {
    let sim = spawn(fast(None)).await;
    let client = Client::new(&sim);
    let before = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1);
    let first = client.dial(&dial_body(ANA, Some("call_1"), "pn_a", "cmp_1")).await;
    let second = client.dial(&dial_body(BOB, Some("call_2"), "pn_a", "cmp_1")).await;

    let (status, calls) = client.list(&format!("createdAtGe={before}&limit=10")).await;
    assert_eq!(status, 200);
    let ids: Vec<_> = calls.as_array().unwrap().iter().map(|c| c["id"].clone()).collect();
    assert_eq!(ids, [second["id"].clone(), first["id"].clone()]);
    assert_eq!(calls[1]["assistantOverrides"]["metadata"]["dialtoneCallId"], "call_1");

    let (_, limited) = client.list(&format!("createdAtGe={before}&limit=1")).await;
    assert_eq!(limited.as_array().unwrap().len(), 1);

    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(60);
    assert_eq!(client.list(&format!("createdAtGe={later}")).await.1, json!([]));
    assert_eq!(client.list("createdAtGe=yesterday").await.0, 400);

    let (status, missing) = client.get_call("no-such-call").await;
    assert_eq!(status, 404);
    assert_eq!(missing["statusCode"], 404);
}

#[tokio::test]
async fn stats_and_health_routes_answer() {
    let sim = spawn(fast(None)).await;
    let http = reqwest::Client::new();
    let health = http.get(format!("{}/healthz", sim.base_url())).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");
    Client::new(&sim).dial(&dial_body(ANA, Some("call_1"), "pn_a", "cmp_1")).await;
    let stats: Value = http.get(format!("{}/sim/stats", sim.base_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["dials"], 1);
    assert!(stats["outcomes"]["no_answer"].is_u64());
    assert!(stats["peak_concurrent_by_phone_number"]["pn_a"].is_u64());
    sim.shutdown();
}
