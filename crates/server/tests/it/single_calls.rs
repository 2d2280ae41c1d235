//! Scheduled single calls: validated, listed, moved, canceled, placed on time, recurring.

use crate::support::*;
use dialtone_sim::SimOutcome;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn register(app: &TestApp) {
    let (status, body) = app.post_json("/assistants", &json!({"id": "asst_single", "provider": "sim", "phone_number_id": "pn_single"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

fn in_ms(ms: i64) -> String {
    (jiff::Timestamp::now() + jiff::SignedDuration::from_millis(ms)).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_call_request_is_validated_field_by_field() {
    let app = TestApp::start().await;
    let nums = numbers(1);
    let (status, body) = app.post_json("/calls", &json!({"assistant_id": "asst_nobody", "phone": nums[0]})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(body["error"]["details"]["field"], "assistant_id");
    register(&app).await;
    let (status, body) = app.post_json("/calls", &json!({"assistant_id": "asst_single", "phone": "(415) 555-2671"})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(body["error"]["details"]["field"], "phone");
    let (status, body) = app.post_json("/calls", &json!({"assistant_id": "asst_single", "phone": nums[0], "scheduled_for": in_ms(-60_000)})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(body["error"]["details"]["field"], "scheduled_for");
    // With its country code a number may be written as people write it: libphonenumber reads it.
    let (status, body) = app.post_json("/calls", &json!({"assistant_id": "asst_single", "phone": "+91 91880 97679", "scheduled_for": in_ms(3_600_000)})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["phone"], "+919188097679", "{body}");
    // An extension written after the number is kept, never dropped; it must agree with the field.
    let (status, body) =
        app.post_json("/calls", &json!({"assistant_id": "asst_single", "phone": "+91 91880 97679 ext. 22", "scheduled_for": in_ms(3_600_000)})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, contact) = app.get(&format!("/contacts/{}", body["contact_id"].as_str().unwrap())).await;
    assert_eq!(contact["extension"], "22", "{contact}");
    let (status, body) = app
        .post_json("/calls", &json!({"assistant_id": "asst_single", "phone": "+91 91880 97679 ext. 22", "extension": "23", "scheduled_for": in_ms(3_600_000)}))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(body["error"]["details"]["field"], "extension");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_call_is_listed_moved_and_placed_within_a_second_of_its_time() {
    let app = TestApp::start().await;
    register(&app).await;
    let nums = numbers(3);
    let (status, call) = app.post_json("/calls", &json!({"assistant_id": "asst_single", "phone": nums[0], "scheduled_for": in_ms(60_000)})).await;
    assert_eq!(status, StatusCode::CREATED, "{call}");
    assert_eq!(call["status"], "scheduled");
    let id = call["id"].as_str().unwrap().to_string();
    let listed = app.all_calls(&[("status", "scheduled")], 10).await;
    assert!(listed.iter().any(|c| c["id"] == id.as_str()), "{listed:?}");

    // Move it to 1.5 s from now; it is placed then, not before, and not much after.
    let at = in_ms(1500);
    let resp = app.api(Method::PUT, &format!("/calls/{id}")).json(&json!({"scheduled_for": at})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let at: jiff::Timestamp = at.parse().unwrap();
    eventually(
        || async {
            if app.sim_stats().dials == 1 {
                Ok(())
            } else {
                Err("not placed yet".to_string())
            }
        },
        secs(10),
    )
    .await;
    let dialled = app.sim_stats().first_dial_at_ms.unwrap();
    let late = dialled - at.as_millisecond();
    assert!((0..1000).contains(&late), "placed {late} ms after its time");
    let placed = app.call(&id).await;
    assert_ne!(placed["status"], "scheduled");
    assert_eq!(
        app.api(Method::PUT, &format!("/calls/{id}")).json(&json!({"scheduled_for": in_ms(60_000)})).send().await.unwrap().status(),
        StatusCode::CONFLICT,
        "a call that started cannot be moved"
    );

    // Canceled before its time: never placed, still visible as canceled.
    let (_, other) = app.post_json("/calls", &json!({"assistant_id": "asst_single", "phone": nums[1], "scheduled_for": in_ms(1000)})).await;
    let other_id = other["id"].as_str().unwrap().to_string();
    let resp = app.api(Method::DELETE, &format!("/calls/{other_id}")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Canceled twice (a double click): the second is a 409 that names the status it has now.
    let again = app.api(Method::DELETE, &format!("/calls/{other_id}")).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let again: serde_json::Value = again.json().await.unwrap();
    let message = again["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(message, "the call is canceled; only a scheduled call can be canceled", "{again}");
    holds_for(
        || async {
            if app.sim_stats().dials == 1 {
                Ok(())
            } else {
                Err("the canceled call was placed".to_string())
            }
        },
        ms(1500),
    )
    .await;
    assert_eq!(app.call(&other_id).await["status"], "canceled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_hours_and_recurrence_move_and_repeat_a_call() {
    let nums = numbers(2);
    let mut options = Options::default();
    options.sim.number_outcomes.insert(nums[0].clone(), SimOutcome::Answered);
    let app = TestApp::with(options).await;
    register(&app).await;
    // 03:00 in Tokyo is outside business hours: moved to 08:00 local.
    let (status, call) = app
        .post_json(
            "/calls",
            &json!({"assistant_id": "asst_single", "phone": nums[1], "timezone": "Asia/Tokyo",
        "scheduled_for": "2099-01-05T18:00:00Z", "respect_business_hours": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{call}");
    assert_eq!(call["scheduled_for"], "2099-01-05T23:00:00Z", "03:00 JST becomes 08:00 JST");

    // A daily call, now: once it ends, the next occurrence is scheduled for the next local midnight.
    let (status, call) = app
        .post_json(
            "/calls",
            &json!({"assistant_id": "asst_single", "phone": nums[0], "timezone": "UTC",
        "recurrence": {"frequency": {"type": "daily"}, "max_occurrences": 3}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{call}");
    let contact = call["contact_id"].as_str().unwrap().to_string();
    let next = eventually(
        || async {
            let calls = app.all_calls(&[("contact_id", contact.as_str()), ("status", "scheduled")], 10).await;
            calls.into_iter().find(|c| c["attempt"] == 2).ok_or_else(|| "no next occurrence yet".to_string())
        },
        secs(10),
    )
    .await;
    let tomorrow = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date().tomorrow().unwrap();
    assert_eq!(next["scheduled_for"], format!("{tomorrow}T00:00:00Z"), "{next}");
    assert_eq!(next["attempt"], 2);
}
