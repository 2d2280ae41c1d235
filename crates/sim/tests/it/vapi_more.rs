//! Vapi's control URL, inbound assistant-requests, and books kept across providers.

use dialtone_sim::{SimConfig, SimOutcome};
use serde_json::{json, Value};

use crate::support::*;
use crate::{outcomes, ANA, BOB};

const HANG: &str = "+14155550999";
const OURS: &str = "+14155550500";
const UNKNOWN: &str = "+14155550501";

#[tokio::test]
async fn control_url_end_call_cancels_a_live_call() {
    let (receiver, url) = Receiver::start().await;
    let sim = spawn(SimConfig { api_key: Some("sk".into()), number_outcomes: outcomes(&[(HANG, SimOutcome::Hang)]), ..fast(Some(&url)) }).await;
    receiver.watch(&sim);
    let client = Client::new(&sim).with_key("sk");
    let created = client.dial(&dial_body(HANG, Some("call_c"), "pn_a", "cmp_1")).await;
    let id = created["id"].as_str().unwrap();
    let control = format!("{}/call/{id}/control", sim.base_url());
    assert_eq!(created["monitor"]["controlUrl"], control.as_str());
    let listen = created["monitor"]["listenUrl"].as_str().unwrap();
    assert!(listen.starts_with(&format!("ws://{}", sim.addr())) && listen.contains(id), "{listen}");

    receiver.wait_for_count(2).await;
    assert_eq!(client.get_call(id).await.1["status"], "in-progress");

    let http = reqwest::Client::new();
    let bad = http.post(&control).json(&json!({"type": "explode"})).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let missing = http.post(format!("{}/call/nope/control", sim.base_url())).json(&json!({"type": "end-call"})).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    // No API key: the control URL itself is the credential.
    let ended = http.post(&control).json(&json!({"type": "end-call"})).send().await.unwrap();
    assert_eq!(ended.status(), 200);
    assert_eq!(sim.stats().active, 0);

    let hits = receiver.wait_for_count(4).await;
    assert_eq!(receiver.labels(), ["status-update:ringing", "status-update:in-progress", "status-update:ended", "end-of-call-report"]);
    assert_eq!(hits[2].message()["endedReason"], "manually-canceled");
    assert_eq!(hits[3].message()["endedReason"], "manually-canceled");
    assert_eq!((hits[2].sim_active, hits[2].sim_status.as_deref()), (Some(0), None), "status needs the key; active does not");
    assert_eq!(hits[3].message()["call"]["monitor"]["controlUrl"], control.as_str());
    let call = client.wait_ended(id).await;
    assert_eq!(call["endedReason"], "manually-canceled");

    // Again: nothing more happens.
    assert_eq!(http.post(&control).json(&json!({"type": "end-call"})).send().await.unwrap().status(), 200);
    let stats = sim.stats();
    assert_eq!((stats.outcomes.canceled, stats.hangups, stats.ended, stats.active), (1, 1, 1, 0));
}

#[tokio::test]
async fn inbound_assistant_request_round_trip() {
    let (receiver, url) = Receiver::start().await;
    receiver.answer(OURS, Answer::Reply(json!({"assistantId": "asst_x"})));
    receiver.answer(UNKNOWN, Answer::Reply(json!({"error": "unknown number"})));
    let sim = spawn(SimConfig { webhook_secret: Some("whsec".into()), ..fast(Some(&url)) }).await;
    let http = reqwest::Client::new();
    let inbound = format!("{}/sim/inbound", sim.base_url());

    let response = http.post(&inbound).json(&json!({"to": OURS, "from": ANA, "count": 2})).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let answered: Value = response.json().await.unwrap();
    let ids: Vec<String> = answered["ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    for call in answered["calls"].as_array().unwrap() {
        assert_eq!((call["answer"].as_str(), call["assistantId"].as_str()), (Some("assistant"), Some("asst_x")), "{answered}");
    }
    wait_for_stats(&sim, "the answered calls ended", |s| s.ended == 2).await;
    let refused: Value = http.post(&inbound).json(&json!({"to": UNKNOWN, "from": BOB})).send().await.unwrap().json().await.unwrap();
    assert_eq!(refused["calls"][0]["answer"], "error", "{refused}");
    assert_eq!(refused["calls"][0]["error"], "unknown number");
    let refused_id = refused["ids"][0].as_str().unwrap();

    // 3 assistant-requests, then 4 lifecycle webhooks for each answered call.
    let hits = receiver.wait_for_count(11).await;
    let requests: Vec<_> = hits.iter().filter(|h| h.message()["type"] == "assistant-request").collect();
    assert_eq!(requests.len(), 3);
    for hit in &requests {
        let m = hit.message();
        assert_eq!(hit.headers["authorization"], "Bearer whsec");
        assert_eq!(m["call"]["type"], "inboundPhoneCall");
        assert_eq!(m["phoneNumber"]["number"], m["call"]["phoneNumber"]["number"]);
        assert_eq!(m["customer"]["number"], m["call"]["customer"]["number"]);
        assert!(m["timestamp"].as_i64().unwrap() > 1_600_000_000_000);
    }
    assert!(requests.iter().any(|h| h.message()["call"]["id"] == refused_id && h.message()["customer"]["number"] == BOB));

    for id in &ids {
        let played: Vec<_> = hits.iter().filter(|h| h.message()["call"]["id"] == id.as_str() && h.message()["type"] != "assistant-request").collect();
        let labels: Vec<_> = played.iter().map(|h| h.label()).collect();
        assert_eq!(labels, ["status-update:ringing", "status-update:in-progress", "status-update:ended", "end-of-call-report"], "{id}");
        for hit in played {
            assert_eq!(hit.message()["call"]["type"], "inboundPhoneCall");
            assert_eq!(hit.message()["call"]["assistantId"], "asst_x");
            assert_eq!(hit.message()["call"]["phoneNumber"]["number"], OURS);
        }
    }
    assert!(!hits.iter().any(|h| h.message()["call"]["id"] == refused_id && h.message()["type"] != "assistant-request"));
    let (status, call) = Client::new(&sim).get_call(refused_id).await;
    assert_eq!((status, call["status"].as_str()), (200, Some("ended")));
    assert_eq!(call["endedReason"], "assistant-request-returned-error");

    let stats = wait_for_stats(&sim, "all ended", |s| s.ended == 3).await;
    assert_eq!((stats.inbound_requests, stats.inbound_answered, stats.inbound_errors, stats.inbound_timeouts), (3, 2, 1, 0));
    assert_eq!((stats.dials, stats.active), (0, 0), "inbound calls are not dials");
    assert_eq!(stats.peak_concurrent, 2, "both answered calls rang in at once, the refused one later");
    assert_eq!(stats.peak_concurrent_by_phone_number[OURS], 2);
    assert_eq!(stats.peak_concurrent_by_provider["vapi"], 2);
    assert_eq!((stats.outcomes.answered, stats.outcomes.failed), (2, 1));
}

#[tokio::test]
async fn inbound_answer_after_the_deadline_is_a_timeout() {
    let (receiver, url) = Receiver::start().await;
    receiver.answer(OURS, Answer::Stall);
    let sim = spawn(fast(Some(&url))).await;
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    let response: Value =
        http.post(format!("{}/sim/inbound", sim.base_url())).json(&json!({"to": OURS, "from": ANA})).send().await.unwrap().json().await.unwrap();
    let waited = started.elapsed().as_secs_f64();
    // Not (much) before the 7.5 s deadline; not the receiver's 9 s stall either, which the answer
    // shows (a stall waited out would answer with its assistant). No upper bound on the
    // time itself: a loaded runner may be late by any amount.
    assert!(waited >= 7.0, "waited {waited} s");
    assert_eq!(response["calls"][0]["answer"], "timeout", "{response}");
    let stats = sim.stats();
    assert_eq!((stats.inbound_requests, stats.inbound_timeouts, stats.inbound_answered, stats.active), (1, 1, 0, 0));

    let bad = http.post(format!("{}/sim/inbound", sim.base_url())).json(&json!({"to": "555", "from": ANA})).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let nowhere = spawn(fast(None)).await;
    let response = http.post(format!("{}/sim/inbound", nowhere.base_url())).json(&json!({"to": OURS, "from": ANA})).send().await.unwrap();
    assert_eq!(response.status(), 400, "no webhook URL to ask");
}

#[tokio::test]
async fn duplicate_dials_and_peaks_are_counted_across_providers() {
    let sim = spawn(SimConfig { number_outcomes: outcomes(&[(HANG, SimOutcome::Hang)]), ..all_providers(None) }).await;
    let hook = "http://127.0.0.1:9/cb";
    Client::new(&sim).dial(&dial_body(HANG, Some("call_x"), "pn_a", "cmp_1")).await;
    let twilio = FormClient::twilio(&sim);
    let twilio_cb = format!("{hook}?dialtone_call_id=call_x&dialtone_campaign_id=cmp_1");
    let (status, _, _) = twilio.post("/Calls.json", &[("To", HANG), ("From", "pn_a"), ("Twiml", "<Response/>"), ("StatusCallback", &twilio_cb)]).await;
    assert_eq!(status, 201);
    let exotel = FormClient::exotel(&sim);
    let exotel_cb = format!("{hook}?dialtone_campaign_id=cmp_1");
    for id in ["call_x", "call_y"] {
        let form = [("From", HANG), ("CallerId", "pn_a"), ("Url", "http://flow.test/1"), ("CustomField", id), ("StatusCallback", &exotel_cb)];
        assert_eq!(exotel.post("/Calls/connect.json", &form).await.0, 200);
    }
    // Twilio without a dialtone id in its callback URL.
    twilio.post("/Calls.json", &[("To", HANG), ("From", "+14155550100"), ("Twiml", "<Response/>")]).await;

    let stats = sim.stats();
    assert_eq!(stats.dials, 5);
    assert_eq!(stats.dials_by_provider, [("exotel".to_string(), 2), ("twilio".to_string(), 2), ("vapi".to_string(), 1)].into());
    assert_eq!(stats.duplicate_dials, 2);
    assert_eq!(stats.duplicate_dial_ids, ["call_x", "call_x"]);
    assert_eq!(stats.dials_without_dialtone_id, 1);
    assert_eq!((stats.active, stats.peak_concurrent), (5, 5));
    assert_eq!(stats.peak_concurrent_by_phone_number["pn_a"], 4);
    assert_eq!(stats.peak_concurrent_by_campaign["cmp_1"], 4);
    assert_eq!(stats.peak_concurrent_by_provider, [("exotel".to_string(), 2), ("twilio".to_string(), 2), ("vapi".to_string(), 1)].into());
}
