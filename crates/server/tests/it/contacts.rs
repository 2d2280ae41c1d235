//! A contact's attempt history, and a manual retry past its limits, through the API.

use crate::support::*;
use dialtone_sim::SimOutcome;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_shows_its_attempts_and_can_be_retried_by_hand() {
    let nums = numbers(2);
    let mut options = Options::default();
    options.sim.number_outcomes.insert(nums[0].clone(), SimOutcome::NoAnswer);
    // The second contact's call never ends, so the campaign stays open.
    options.sim.number_outcomes.insert(nums[1].clone(), SimOutcome::Hang);
    let app = TestApp::with(options).await;
    let id = app.create_campaign(json!({"max_concurrent": 2, "max_attempts": 1})).await;
    app.import_csv(&id, &contacts_csv(2)).await;
    app.act(&id, "start").await;

    let first = eventually(
        || async {
            let calls = app.all_calls(&[("campaign_id", id.as_str()), ("phone", nums[0].as_str()), ("status", "ended")], 10).await;
            calls.first().cloned().ok_or_else(|| "no ended call yet".to_string())
        },
        secs(10),
    )
    .await;
    let contact = first["contact_id"].as_str().unwrap().to_string();
    let (status, c) = app.get(&format!("/contacts/{contact}")).await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["status"], "exhausted", "{c}");
    assert_eq!(c["attempt_history"].as_array().unwrap().len(), 1);

    let (status, c) = app.post(&format!("/contacts/{contact}/retry")).await;
    assert_eq!(status, StatusCode::OK, "{c}");
    let c = eventually(
        || async {
            let (_, c) = app.get(&format!("/contacts/{contact}")).await;
            if c["attempt_history"].as_array().map_or(0, |a| a.len()) == 2 && c["status"] == "exhausted" {
                Ok(c)
            } else {
                Err(c.to_string())
            }
        },
        secs(10),
    )
    .await;
    assert_eq!(c["attempt_history"][1]["attempt"], 2, "{c}");

    let (status, body) = app.post(&format!("/contacts/{contact}/cancel")).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let (status, body) = app.get("/contacts/ct_nope").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}
