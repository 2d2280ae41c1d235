//! What providers send in the odd cases (issue 9), end to end: Twilio's asynchronous AMD
//! verdict played by the simulator, our numbers however a side writes them, a dialled
//! "number" that is not one, and events for calls we never placed.

use crate::support::*;
use dialtone_sim::{Faults, OutcomeMix};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The value of the Prometheus sample whose line starts with `prefix`.
fn sample(metrics: &str, prefix: &str) -> u64 {
    metrics.lines().filter(|l| l.starts_with(prefix)).filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok()).sum()
}

async fn voicemails_from_async_amd(faults: Faults) {
    let mut options = Options { provider_accounts: true, ..Options::default() };
    options.sim.outcomes = OutcomeMix { answered: 1, no_answer: 0, busy: 0, voicemail: 1, failed: 0 };
    options.sim.faults = faults;
    let app = TestApp::with(options).await;
    let id = app.create_campaign(json!({"provider": "twilio", "phone_number_id": TWILIO_CALLER, "max_concurrent": 4})).await;
    app.import_csv(&id, &contacts_csv(16)).await;
    app.act(&id, "start").await;
    app.wait_for_status(&id, "completed", secs(12)).await;
    let sim = app.sim_stats();
    assert!(sim.outcomes.voicemail > 0 && sim.outcomes.answered > 0, "the mix played both: {sim:?}");
    // A verdict held back past `completed` may land just after the campaign completed.
    eventually(
        || async {
            let outcomes = app.campaign(&id).await["counts"]["outcomes"].clone();
            let (vm, done) = (outcomes["voicemail"].as_u64().unwrap_or(0), outcomes["completed"].as_u64().unwrap_or(0));
            if (vm, done) == (sim.outcomes.voicemail, sim.outcomes.answered) {
                Ok(())
            } else {
                Err(format!("ours {outcomes}, the provider's: {} voicemail, {} answered", sim.outcomes.voicemail, sim.outcomes.answered))
            }
        },
        secs(5),
    )
    .await;
    let calls = app.all_calls(&[("campaign_id", id.as_str()), ("outcome", "voicemail")], 100).await;
    assert!(calls.iter().all(|c| c["answered_by"] == "machine" && c["ended_reason"] == "completed"), "{calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twilio_machine_verdict_in_its_own_callback_makes_the_completed_call_a_voicemail() {
    voicemails_from_async_amd(Faults::none()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twilio_machine_verdict_after_completed_and_twice_still_makes_a_voicemail() {
    // Every call's progress callbacks (the AMD verdict among them) go out after its end,
    // and every webhook is sent twice.
    voicemails_from_async_amd(Faults { out_of_order: 1.0, duplicate_webhooks: 1.0, ..Faults::none() }).await;
}

async fn ask_for(app: &TestApp, call_id: &str, number: &str) -> (StatusCode, Value) {
    app.webhook(json!({"type": "assistant-request", "call": {"id": call_id, "type": "inboundPhoneCall"},
        "phoneNumber": {"number": number}, "customer": {"number": "+14155552671"}}))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assistant_request_finds_our_number_written_with_or_without_plus() {
    let app = TestApp::start().await;
    // Registered in E.164, asked for as a BYO number (digits, no `+`).
    let (status, body) = app.post_json("/phone-numbers", &json!({"number": "+14155550102", "provider": "sim", "assistant_id": "asst_a"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, answer) = ask_for(&app, "inb-1", "14155550102").await;
    assert_eq!((status, &answer), (StatusCode::OK, &json!({"assistantId": "asst_a"})));
    // Registered without `+`, asked for in E.164.
    let (status, body) = app.post_json("/phone-numbers", &json!({"number": "14155550103", "provider": "sim", "assistant_id": "asst_b"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["number"], "+14155550103", "stored in E.164: {body}");
    let (status, answer) = ask_for(&app, "inb-2", "+14155550103").await;
    assert_eq!((status, &answer), (StatusCode::OK, &json!({"assistantId": "asst_b"})));
    // The same number either way is one number.
    let (status, body) = app.post_json("/phone-numbers", &json!({"number": "14155550102", "provider": "sim", "assistant_id": "asst_c"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let inbound: Vec<Value> = app.all_calls(&[], 100).await.into_iter().filter(|c| c["direction"] == "inbound").collect();
    assert_eq!(inbound.len(), 2, "both calls recorded: {inbound:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assistant_request_for_text_that_is_no_number_gets_an_answer() {
    let app = TestApp::start().await;
    for (i, junk) in ["номер телефона", "☎☎☎☎☎☎☎☎☎", "電話番号です", "+1 415 ☎ 555"].into_iter().enumerate() {
        let (status, answer) = ask_for(&app, &format!("inb-junk-{i}"), junk).await;
        assert_eq!(status, StatusCode::OK, "{junk}: {answer}");
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "{junk}: {answer}");
    }
    // The server is still serving.
    assert_eq!(app.get("/campaigns").await.0, StatusCode::OK);
    let metrics = app.metrics().await;
    assert_eq!(sample(&metrics, r#"dialtone_webhooks_total{provider="vapi",result="inbound_unknown_number"}"#), 4, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_for_calls_never_placed_are_stored_and_counted() {
    let app = TestApp::start().await;
    for status in ["ringing", "in-progress"] {
        let (code, body) = app.webhook(json!({"type": "status-update", "status": status, "call": {"id": "org-wide-call"}})).await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }
    // A replay is not counted twice.
    app.webhook(json!({"type": "status-update", "status": "ringing", "call": {"id": "org-wide-call"}})).await;
    let metrics = app.metrics().await;
    assert_eq!(sample(&metrics, r#"dialtone_webhook_events_unknown_total{provider="vapi"}"#), 2, "{metrics}");
    assert!(metrics.contains("dialtone_webhook_events_unknown_purged_total 0"), "{metrics}");
}
