//! Numbers that may be in several time zones, through the API: the contact shows every
//! candidate zone and why it waits; a campaign may opt into its own zone; a single call's
//! business hours hold in every candidate zone.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const AU_MOBILE: &str = "+61412345678";

async fn contact_of(app: &TestApp, campaign: &str, phone: &str) -> Value {
    let (status, page) = app.get(&format!("/campaigns/{campaign}/contacts?limit=10")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"].as_array().unwrap().iter().find(|c| c["phone"] == phone).cloned().unwrap_or_else(|| panic!("{phone} in {page}"))
}

/// A fixed-offset zone where it is now between 10:00 and 11:00.
fn zone_at_ten_now() -> String {
    let hour = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).hour() as i32;
    let mut offset = 10 - hour;
    if offset < -12 {
        offset += 24;
    }
    // POSIX-style names: Etc/GMT-10 is UTC+10.
    if offset == 0 {
        "Etc/UTC".to_string()
    } else {
        format!("Etc/GMT{:+}", -offset)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_number_shows_its_zones_and_why_it_is_not_called() {
    let app = TestApp::start().await;
    // Three hours a day: Australia's zones span four and a half, so none is common to all.
    let id = app.create_campaign(json!({"calling_hours": {"start": "09:00", "end": "12:00"}})).await;
    assert_eq!(app.campaign(&id).await["assume_campaign_timezone_for_ambiguous"], false, "never by default");
    app.import_csv(&id, &format!("phone\n{AU_MOBILE}\n")).await;
    app.act(&id, "start").await;

    let c = eventually(
        || async {
            let c = contact_of(&app, &id, AU_MOBILE).await;
            if c["waiting"].is_null() {
                Err(c.to_string())
            } else {
                Ok(c)
            }
        },
        secs(10),
    )
    .await;
    assert_eq!(c["timezone_source"], "ambiguous", "{c}");
    let zones: Vec<&str> = c["timezones"].as_array().unwrap().iter().map(|z| z.as_str().unwrap()).collect();
    for want in ["Australia/Perth", "Australia/Sydney", "Australia/Adelaide", "Australia/Lord_Howe"] {
        assert!(zones.contains(&want), "{want} in {zones:?}");
    }
    assert!(zones.contains(&c["timezone"].as_str().unwrap()), "{c}");
    assert_eq!(c["status"], "pending", "{c}");
    assert_eq!(c["waiting"]["reason"], "no_common_hours", "{c}");
    assert_eq!(c["waiting"]["until"], Value::Null, "{c}");
    assert!(c["waiting"]["message"].as_str().unwrap().contains("Australia/Perth"), "{c}");
    // The same contact by id.
    let (status, by_id) = app.get(&format!("/contacts/{}", c["id"].as_str().unwrap())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_id["waiting"], c["waiting"]);
    assert_eq!(app.sim_stats().dials, 0, "never dialled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_that_opts_in_calls_ambiguous_numbers_in_its_own_zone() {
    let app = TestApp::start().await;
    let id = app
        .create_campaign(json!({
            "calling_hours": {"start": "09:00", "end": "12:00"},
            "schedule": {"timezone": zone_at_ten_now()},
            "assume_campaign_timezone_for_ambiguous": true,
        }))
        .await;
    assert_eq!(app.campaign(&id).await["assume_campaign_timezone_for_ambiguous"], true);
    app.import_csv(&id, &format!("phone\n{AU_MOBILE}\n")).await;
    app.act(&id, "start").await;
    eventually(
        || async {
            let calls = app.all_calls(&[("campaign_id", id.as_str())], 10).await;
            if calls.is_empty() {
                Err("no call yet".to_string())
            } else {
                Ok(())
            }
        },
        secs(10),
    )
    .await;
    let c = contact_of(&app, &id, AU_MOBILE).await;
    assert_eq!(c["timezone_source"], "ambiguous", "the contact still shows its candidates: {c}");
    assert_eq!(c["waiting"], Value::Null, "{c}");

    let (status, body) = app
        .post_json(
            "/campaigns",
            &json!({
                "name": "x", "provider": "sim", "assistant_id": "a", "phone_number_id": "p",
                "assume_campaign_timezone_for_ambiguous": "yes",
            }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_calls_business_hours_hold_in_every_candidate_zone() {
    let app = TestApp::start().await;
    let (status, _) = app.post_json("/assistants", &json!({"id": "asst_z", "provider": "sim", "phone_number_id": PHONE_NUMBER_ID})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, call) = app
        .post_json(
            "/calls",
            &json!({
                "assistant_id": "asst_z", "phone": AU_MOBILE, "respect_business_hours": true,
                "scheduled_for": (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string(),
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{call}");
    let at: jiff::Timestamp = call["scheduled_for"].as_str().unwrap().parse().unwrap();
    let (_, contact) = app.get(&format!("/contacts/{}", call["contact_id"].as_str().unwrap())).await;
    let zones = contact["timezones"].as_array().unwrap();
    assert!(zones.len() > 3, "{contact}");
    for z in zones {
        let local = at.to_zoned(jiff::tz::TimeZone::get(z.as_str().unwrap()).unwrap());
        assert!((8..21).contains(&local.hour()), "{at} is {local} in {z}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recurring_single_call_in_business_hours_recurs_in_business_hours() {
    let app = TestApp::start().await;
    let (status, _) = app.post_json("/assistants", &json!({"id": "asst_z", "provider": "sim", "phone_number_id": PHONE_NUMBER_ID})).await;
    assert_eq!(status, StatusCode::CREATED);
    // Placed now (10:xx in its zone); the next day's occurrence used to be due at local
    // midnight, and was dialled then.
    let zone = zone_at_ten_now();
    let (status, call) = app
        .post_json(
            "/calls",
            &json!({
                "assistant_id": "asst_z", "phone": "+14155550123", "timezone": zone, "respect_business_hours": true,
                "recurrence": {"frequency": {"type": "daily"}, "max_occurrences": 3},
            }),
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
    let tz = jiff::tz::TimeZone::get(&zone).unwrap();
    let tomorrow = jiff::Timestamp::now().to_zoned(tz.clone()).date().tomorrow().unwrap();
    let eight = tomorrow.at(8, 0, 0, 0).to_zoned(tz).unwrap().timestamp();
    assert_eq!(next["scheduled_for"], eight.to_string(), "{next}");
}
