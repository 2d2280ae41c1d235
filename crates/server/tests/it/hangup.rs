//! `POST /calls/{id}/hangup`: a live call is ended through the provider's own hang-up API
//! and recorded as canceled; a call that is over cannot be hung up.

use crate::support::*;
use dialtone_sim::SimOutcome;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Two contacts on `provider` from `caller`: the first is a call that never ends by
/// itself, the second an ordinary answered one. Returns (app, live call, ended call).
async fn a_live_call_and_an_ended_one(provider: &str, caller: &str) -> (TestApp, Value, Value) {
    let nums = numbers(2);
    let mut options = Options { provider_accounts: true, ..Options::default() };
    options.sim.number_outcomes = [(nums[0].clone(), SimOutcome::Hang), (nums[1].clone(), SimOutcome::Answered)].into();
    // A talking call is vouched for by the provider; still, nobody reconciles behind the test's back.
    options.engine.stuck_timeout = secs(600);
    let app = TestApp::with(options).await;
    let id = app.create_campaign(json!({"provider": provider, "phone_number_id": caller, "max_concurrent": 2})).await;
    app.import_csv(&id, &contacts_csv(2)).await;
    app.act(&id, "start").await;
    let (live, ended) = eventually(
        || async {
            let calls = app.all_calls(&[("campaign_id", id.as_str())], 10).await;
            let live = calls.iter().find(|c| c["phone"] == nums[0].as_str() && c["status"] == "in_progress");
            let ended = calls.iter().find(|c| c["phone"] == nums[1].as_str() && c["status"] == "ended");
            match (live, ended) {
                (Some(l), Some(e)) => Ok((l.clone(), e.clone())),
                _ => Err(format!("{calls:?}")),
            }
        },
        secs(5),
    )
    .await;
    (app, live, ended)
}

async fn hanging_up_ends_the_call_as_canceled_at_the_provider_and_here(provider: &str, caller: &str) {
    let (app, live, ended) = a_live_call_and_an_ended_one(provider, caller).await;
    let id = live["id"].as_str().unwrap();
    assert_eq!(app.sim_stats().hangups, 0);

    let (status, body) = app.post(&format!("/calls/{id}/hangup")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "canceled", "{body}");
    assert_eq!(body["outcome"], "canceled", "{body}");
    assert!(body["ended_at"].is_string(), "{body}");

    let sim = app.sim_stats();
    assert_eq!(sim.hangups, 1, "the provider was asked to hang up once: {sim:?}");
    assert_eq!(sim.active, 0, "the provider has nothing live: {sim:?}");
    // Whatever the provider reports afterwards, the call stays as it was hung up.
    holds_for(
        || async {
            let c = app.call(id).await;
            if c["status"] == "canceled" && c["outcome"] == "canceled" {
                Ok(())
            } else {
                Err(format!("{c}"))
            }
        },
        ms(300),
    )
    .await;

    // Over is over: a hung-up call and a call that ended by itself both refuse.
    for over in [id, ended["id"].as_str().unwrap()] {
        let (status, body) = app.post(&format!("/calls/{over}/hangup")).await;
        assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    }
    assert_eq!(app.sim_stats().hangups, 1, "no hang-up is sent for a call that is over");
    assert_eq!(app.call(ended["id"].as_str().unwrap()).await["outcome"], "completed", "a refused hang-up changes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_up_a_live_vapi_call_ends_it_as_canceled_and_an_ended_one_is_a_conflict() {
    hanging_up_ends_the_call_as_canceled_at_the_provider_and_here("sim", PHONE_NUMBER_ID).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_up_a_live_twilio_call_ends_it_as_canceled_and_an_ended_one_is_a_conflict() {
    hanging_up_ends_the_call_as_canceled_at_the_provider_and_here("twilio", TWILIO_CALLER).await;
}
