//! Inbound calls to our numbers: Vapi asks which assistant answers (`assistant-request`),
//! we answer from `/phone-numbers`, record the call, and follow it to its end like any other.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const OUR_NUMBER: &str = "+14155550100";
const CALLER: &str = "+14155552671";
const ASSISTANT: &str = "asst_inbound";

async fn register_number(app: &TestApp) {
    let (status, body) = app.post_json("/phone-numbers", &json!({"number": OUR_NUMBER, "provider": "sim", "assistant_id": ASSISTANT})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn inbound_calls(app: &TestApp) -> Vec<Value> {
    app.all_calls(&[], 100).await.into_iter().filter(|c| c["direction"] == "inbound").collect()
}

/// The value of the `dialtone_webhooks` counter whose labels include `label`.
fn webhook_count(metrics: &str, label: &str) -> u64 {
    metrics.lines().filter(|l| l.starts_with("dialtone_webhooks_total{") && l.contains(label)).filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_call_to_our_number_is_answered_with_its_assistant_recorded_and_followed_to_its_end() {
    let app = TestApp::start().await;
    register_number(&app).await;
    let rung = app.ring_inbound(OUR_NUMBER, CALLER, 1).await;
    let answer = &rung["calls"][0];
    assert_eq!(answer["answer"], "assistant", "{rung}");
    assert_eq!(answer["assistantId"], ASSISTANT, "{rung}");
    let provider_call_id = answer["id"].as_str().unwrap();

    let call = eventually(
        || async {
            let calls = inbound_calls(&app).await;
            match calls.as_slice() {
                [c] if c["status"] == "ended" => Ok(c.clone()),
                _ => Err(format!("inbound calls: {calls:?}")),
            }
        },
        secs(5),
    )
    .await;
    assert_eq!(call["provider_call_id"], provider_call_id, "{call}");
    assert_eq!(call["phone"], CALLER, "{call}");
    assert_eq!(call["provider"], "sim", "{call}");
    assert_eq!(call["outcome"], "completed", "the caller talked to the assistant: {call}");
    assert!(call["answered_at"].is_string() && call["ended_at"].is_string(), "{call}");
    app.call_with_report(call["id"].as_str().unwrap()).await;

    let sim = app.sim_stats();
    assert_eq!((sim.inbound_requests, sim.inbound_answered, sim.inbound_errors), (1, 1, 0), "{sim:?}");
    assert_eq!(sim.dials, 0, "an inbound call is not a dial");
    assert_eq!(webhook_count(&app.metrics().await, r#"result="inbound_answered""#), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_call_to_an_unknown_number_is_refused_explicitly_recorded_nowhere_and_counted() {
    let app = TestApp::start().await;
    register_number(&app).await;
    let rung = app.ring_inbound("+14155550199", CALLER, 1).await;
    assert_eq!(rung["calls"][0]["answer"], "error", "{rung}");
    assert!(rung["calls"][0]["error"].as_str().is_some_and(|e| !e.is_empty()), "{rung}");

    let sim = app.sim_stats();
    assert_eq!((sim.inbound_requests, sim.inbound_answered, sim.inbound_errors), (1, 0, 1), "{sim:?}");
    assert!(app.all_calls(&[], 100).await.is_empty(), "no call is recorded for a number we do not have");
    let metrics = app.metrics().await;
    assert_eq!(webhook_count(&metrics, r#"result="inbound_unknown_number""#), 1, "{metrics}");
    assert_eq!(webhook_count(&metrics, r#"result="inbound_answered""#), 0, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_events_that_arrive_before_the_assistant_request_are_applied_to_the_inbound_call() {
    // The test plays Vapi; no reaper asks the sim about a call it never saw.
    let mut options = Options { sim_webhooks: false, ..Options::default() };
    options.engine.stuck_timeout = secs(600);
    let app = TestApp::with(options).await;
    register_number(&app).await;
    let pid = "019a0000-early-events-0000-000000000001";
    let now = jiff::Timestamp::now().as_millisecond();
    let status = |status: &str, at: i64, extra: Value| {
        let mut m = json!({"type": "status-update", "status": status, "call": {"id": pid, "type": "inboundPhoneCall"}, "timestamp": at});
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        m
    };
    for message in [
        status("ringing", now - 3000, json!({})),
        status("in-progress", now - 2000, json!({})),
        status("ended", now - 1000, json!({"endedReason": "customer-ended-call"})),
    ] {
        let (code, body) = app.webhook(message).await;
        assert_eq!(code, StatusCode::OK, "an early event is stored, not refused: {body}");
    }
    assert!(inbound_calls(&app).await.is_empty(), "no call exists before the assistant-request");

    let (code, answer) = app
        .webhook(json!({"type": "assistant-request", "call": {"id": pid, "type": "inboundPhoneCall"},
            "phoneNumber": {"number": OUR_NUMBER}, "customer": {"number": CALLER}, "timestamp": now}))
        .await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"assistantId": ASSISTANT}));

    // The answer is sent once the call is recorded, early events included.
    let calls = inbound_calls(&app).await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = app.call(calls[0]["id"].as_str().unwrap()).await;
    assert_eq!(call["provider_call_id"], pid);
    assert_eq!(call["status"], "ended", "{call}");
    assert_eq!(call["outcome"], "completed", "{call}");
    assert_eq!(call["ended_reason"], "customer-ended-call", "{call}");
    assert!(call["answered_at"].is_string() && call["ended_at"].is_string(), "{call}");
    let events = call["events"].as_array().unwrap();
    let statuses: Vec<&Value> = events.iter().filter(|e| e["provider_type"] == "status-update").collect();
    assert_eq!(statuses.len(), 3, "every early event belongs to the call: {events:?}");

    // A late replay of the assistant-request does not record the call twice.
    let (code, again) =
        app.webhook(json!({"type": "assistant-request", "call": {"id": pid}, "phoneNumber": {"number": OUR_NUMBER}, "customer": {"number": CALLER}})).await;
    assert_eq!(code, StatusCode::OK, "{again}");
    assert_eq!(inbound_calls(&app).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_inbound_calls_at_once_are_all_answered_recorded_and_ended() {
    const N: usize = 200;
    let app = TestApp::start().await;
    register_number(&app).await;
    let rung = app.ring_inbound(OUR_NUMBER, CALLER, N as u32).await;
    let answers = rung["calls"].as_array().unwrap();
    assert_eq!(answers.len(), N);
    let refused: Vec<&Value> = answers.iter().filter(|a| a["answer"] != "assistant").collect();
    assert!(refused.is_empty(), "{} of {N} were not answered with an assistant, e.g. {:?}", refused.len(), refused.first());
    let sim = app.sim_stats();
    assert_eq!((sim.inbound_requests, sim.inbound_answered), (N as u64, N as u64), "{sim:?}");
    assert_eq!(sim.inbound_errors + sim.inbound_timeouts + sim.inbound_invalid, 0, "{sim:?}");

    let calls = eventually(
        || async {
            let calls = inbound_calls(&app).await;
            let ended = calls.iter().filter(|c| c["status"] == "ended").count();
            if calls.len() == N && ended == N {
                Ok(calls)
            } else {
                Err(format!("{} recorded, {ended} ended", calls.len()))
            }
        },
        secs(10),
    )
    .await;
    let mut pids: Vec<&str> = calls.iter().map(|c| c["provider_call_id"].as_str().unwrap()).collect();
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), N, "each inbound call recorded once");
    assert!(calls.iter().all(|c| c["outcome"].is_string()), "every call ended with an outcome");
    assert_eq!(app.sim_stats().ended, N as u64);
}
