//! Caller-ID pools through the API (issue 13): `caller_numbers` and its strategies on
//! `POST`/`PATCH /campaigns`, the number on each call (`caller_number`), the workspace's
//! `caller_number_daily_limit` holding contacts back with a reason and a time, and the
//! `Location` of creates on `Idempotency-Key` replays.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;

const SF: &str = "+14152220100";
const NY: &str = "+12122220100";

async fn default_workspace(app: &TestApp) -> String {
    let (status, body) = app.get("/workspaces").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ws = body["data"].as_array().unwrap().iter().find(|w| w["is_default"] == true).expect("the default workspace");
    ws["id"].as_str().unwrap().to_string()
}

/// Every call of a campaign once it has placed `n`.
async fn calls_of(app: &TestApp, id: &str, n: usize) -> Vec<Value> {
    eventually(
        || async move {
            let calls = app.all_calls(&[("campaign_id", id)], 100).await;
            if calls.len() >= n {
                Ok(calls)
            } else {
                Err(format!("{} calls", calls.len()))
            }
        },
        secs(20),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_campaign_calls_from_its_numbers_and_each_call_shows_its_number() {
    let app = TestApp::start().await;
    // National numbers are read in default_region; phone_number_id defaults to the first.
    let mut body = json!({"name": "pool", "provider": "sim", "assistant_id": "asst_it", "caller_numbers": ["(415) 222-0100", NY],
        "caller_number_strategy": "local_presence", "fallback_strategy": "least_used", "max_concurrent": 4, "max_attempts": 1,
        "calling_hours": {"start": "00:00", "end": "00:00"}});
    let res = app.api(Method::POST, "/campaigns").json(&body).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let created: Value = res.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/api/v1/campaigns/{id}"));
    assert_eq!(created["caller_numbers"], json!([SF, NY]), "{created}");
    assert_eq!((created["caller_number_strategy"].as_str(), created["fallback_strategy"].as_str()), (Some("local_presence"), Some("least_used")));
    assert_eq!(created["phone_number_id"], SF);
    assert_eq!(created["calls_per_minute"], Value::Null);

    let csv = "phone\n+12123337001\n+12123337002\n+14153337003\n";
    app.import_csv(&id, csv).await;
    app.act(&id, "start").await;
    let calls = calls_of(&app, &id, 3).await;
    let by_callee: HashMap<&str, &str> = calls.iter().map(|c| (c["phone"].as_str().unwrap(), c["caller_number"].as_str().unwrap())).collect();
    assert_eq!(by_callee["+12123337001"], NY, "{calls:?}");
    assert_eq!(by_callee["+12123337002"], NY);
    assert_eq!(by_callee["+14153337003"], SF);
    let one = app.call(calls[0]["id"].as_str().unwrap()).await;
    assert!(one["caller_number"].is_string(), "GET /calls/{{id}} shows it: {one}");

    // PATCH: a new pool and strategy; a throttle set and removed.
    let (status, patched) = send(app.api(Method::PATCH, &format!("/campaigns/{id}")).json(&json!({"caller_numbers": [NY], "calls_per_minute": 30}))).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!((patched["caller_numbers"].clone(), patched["calls_per_minute"].clone()), (json!([NY]), json!(30)));
    let (status, patched) = send(app.api(Method::PATCH, &format!("/campaigns/{id}")).json(&json!({"calls_per_minute": null}))).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["calls_per_minute"], Value::Null);
    assert_eq!(patched["caller_numbers"], json!([NY]), "fields not given stay");

    // Refusals name their field.
    body["caller_numbers"] = json!([SF, "415-222-0100"]);
    let (status, e) = app.post_json("/campaigns", &body).await;
    assert_error(status, &e, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(e["error"]["details"]["field"], "caller_numbers", "a number twice: {e}");
    for (field, patch) in [
        ("fallback_strategy", json!({"caller_numbers": [SF], "caller_number_strategy": "local_presence", "fallback_strategy": "local_presence"})),
        ("caller_number_strategy", json!({"caller_numbers": [SF], "caller_number_strategy": "nearest"})),
        ("caller_number_strategy", json!({"caller_numbers": null, "phone_number_id": "pn", "caller_number_strategy": "least_used"})),
        ("phone_number_id", json!({"caller_numbers": null, "caller_number_strategy": null, "fallback_strategy": null})),
        ("calls_per_minute", json!({"caller_numbers": [SF], "calls_per_minute": 0})),
    ] {
        let mut b = body.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                b.as_object_mut().unwrap().remove(k);
            } else {
                b[k] = v.clone();
            }
        }
        let (status, e) = app.post_json("/campaigns", &b).await;
        assert_error(status, &e, StatusCode::BAD_REQUEST, if field == "phone_number_id" { "invalid_json" } else { "invalid_request" });
        assert_eq!(e["error"]["details"]["field"], field, "{b}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_limit_holds_contacts_until_utc_midnight_and_says_so() {
    let app = TestApp::start().await;
    let ws = default_workspace(&app).await;
    let (status, w) = send(app.api(Method::PATCH, &format!("/workspaces/{ws}")).json(&json!({"caller_number_daily_limit": 2}))).await;
    assert_eq!(status, StatusCode::OK, "{w}");
    assert_eq!(w["caller_number_daily_limit"], 2);
    let (status, e) = send(app.api(Method::PATCH, &format!("/workspaces/{ws}")).json(&json!({"caller_number_daily_limit": 0}))).await;
    assert_error(status, &e, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(e["error"]["details"]["field"], "caller_number_daily_limit");

    let id = app.create_campaign(json!({"caller_numbers": [SF, NY], "caller_number_strategy": "round_robin"})).await;
    app.import_csv(&id, &contacts_csv(6)).await;
    app.act(&id, "start").await;
    let calls = calls_of(&app, &id, 4).await;
    let tomorrow = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date().tomorrow().unwrap().to_zoned(jiff::tz::TimeZone::UTC).unwrap().timestamp();
    let waiting = eventually(
        || async {
            let c = app.campaign(&id).await;
            let w = c["waiting"]["caller_number_limit"].clone();
            if w["count"] == 2 {
                Ok(w)
            } else {
                Err(format!("waiting: {} counts: {}", c["waiting"], c["counts"]))
            }
        },
        secs(20),
    )
    .await;
    assert_eq!(ts(&waiting["earliest"]), tomorrow, "until the next midnight, UTC: {waiting}");
    assert_eq!(ts(&waiting["latest"]), tomorrow);
    // Two calls from each number, never more; the other two contacts wait. (The fourth
    // call may still be on its way to the simulator when its row shows: wait for it first.)
    eventually(
        || async {
            match app.sim_stats().dials {
                4 => Ok(()),
                n => Err(format!("{n} dials")),
            }
        },
        secs(10),
    )
    .await;
    holds_for(
        || async {
            if app.sim_stats().dials == 4 {
                Ok(())
            } else {
                Err(format!("{} dials", app.sim_stats().dials))
            }
        },
        secs(2),
    )
    .await;
    let mut per: HashMap<String, u32> = HashMap::new();
    for c in app.all_calls(&[("campaign_id", id.as_str())], 100).await {
        *per.entry(c["caller_number"].as_str().unwrap().to_string()).or_default() += 1;
    }
    assert_eq!(per, HashMap::from([(SF.to_string(), 2), (NY.to_string(), 2)]), "{calls:?}");
    let (_, contacts) = app.get(&format!("/campaigns/{id}/contacts?status=pending")).await;
    let held = &contacts["data"][0];
    assert_eq!(held["waiting"]["reason"], "caller_number_limit", "{held}");
    assert_eq!(ts(&held["waiting"]["until"]), tomorrow);

    // Removing the limit frees them at once: the next claim calls them.
    let (status, w) = send(app.api(Method::PATCH, &format!("/workspaces/{ws}")).json(&json!({"caller_number_daily_limit": null}))).await;
    assert_eq!(status, StatusCode::OK, "{w}");
    assert_eq!(w["caller_number_daily_limit"], Value::Null);
    app.wait_for_status(&id, "completed", secs(20)).await;
    assert_eq!(app.sim_stats().dials, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_creates_carry_the_first_answers_location() {
    let app = TestApp::start().await;
    let campaign = json!({"name": "loc", "provider": "sim", "assistant_id": "asst_it", "phone_number_id": PHONE_NUMBER_ID});
    let later = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(3)).to_string();
    let call = json!({"phone": numbers(1)[0], "assistant_id": "asst_it", "scheduled_for": later});
    for (path, body, prefix) in [("/campaigns", campaign, "/api/v1/campaigns/cmp_"), ("/calls", call, "/api/v1/calls/call_")] {
        let mut locations = vec![];
        for replay in [false, true] {
            let r = app.api(Method::POST, path).header("Idempotency-Key", format!("loc-{path}")).json(&body).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::CREATED, "{path}");
            assert_eq!(r.headers().get("idempotent-replayed").is_some(), replay, "{path}");
            let location = r.headers().get("location").unwrap_or_else(|| panic!("{path}: Location (replay {replay})")).to_str().unwrap().to_string();
            let created: Value = r.json().await.unwrap();
            assert!(location.starts_with(prefix), "{location}");
            assert!(location.ends_with(created["id"].as_str().unwrap()), "{location} names {created}");
            locations.push(location);
        }
        assert_eq!(locations[0], locations[1], "{path}: the replay's Location is the first answer's");
    }
}

/// `phone_number_id` is the caller: on Twilio (`From`) and Exotel (`CallerId`) a phone
/// number, E.164 or national in `default_region` (as `caller_numbers` are read), stored in
/// E.164; on Vapi and the simulator a phone-number id of 1–100 characters. Anything else
/// is a 400 naming `phone_number_id`, on campaigns, batches, assistants and single calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_number_id_is_a_number_on_twilio_and_exotel_and_an_id_on_vapi() {
    let app = TestApp::with(Options { provider_accounts: true, ..Options::default() }).await;
    let (longest, too_long) = ("p".repeat(100), "p".repeat(101));
    let campaign = |provider: &str, caller: &str, region: &str| json!({"name": "caller", "provider": provider, "assistant_id": "asst_it", "phone_number_id": caller, "default_region": region});
    for (provider, given, region, stored) in [
        ("twilio", TWILIO_CALLER, "US", TWILIO_CALLER),
        ("twilio", "(415) 222-0100", "US", SF),
        ("exotel", EXOTEL_CALLER, "IN", EXOTEL_CALLER),
        ("exotel", "080 4710 0000", "IN", EXOTEL_CALLER),
        ("sim", PHONE_NUMBER_ID, "US", PHONE_NUMBER_ID),
        ("sim", longest.as_str(), "US", longest.as_str()),
    ] {
        let (status, created) = app.post_json("/campaigns", &campaign(provider, given, region)).await;
        assert_eq!(status, StatusCode::CREATED, "{provider} {given}: {created}");
        assert_eq!(created["phone_number_id"], stored, "{provider} {given}");
    }
    for (provider, given, region) in [
        ("twilio", "pn_main", "US"),
        ("twilio", "+1 415 000 0000", "US"),
        ("exotel", "12345", "IN"),
        ("exotel", "exophone", "IN"),
        ("sim", "   ", "US"),
        ("sim", too_long.as_str(), "US"),
    ] {
        let (status, e) = app.post_json("/campaigns", &campaign(provider, given, region)).await;
        assert_error(status, &e, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(e["error"]["details"]["field"], "phone_number_id", "{provider} {given:?}: {e}");
    }

    // A batch takes the campaign's rules.
    let (status, e) =
        app.post_json("/batches", &json!({"provider": "twilio", "assistant_id": "asst_it", "phone_number_id": "pn_main", "calls": [{"phone": NY}]})).await;
    assert_error(status, &e, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(e["error"]["details"]["field"], "phone_number_id", "{e}");

    // An assistant (and so a single call) has no default region: a number needs its `+`.
    for (given, status_wanted) in [(TWILIO_CALLER, StatusCode::CREATED), ("pn_main", StatusCode::BAD_REQUEST), ("(415) 222-0100", StatusCode::BAD_REQUEST)] {
        let (status, body) = app.post_json("/assistants", &json!({"id": "asst_tw", "provider": "twilio", "phone_number_id": given})).await;
        assert_eq!(status, status_wanted, "{given}: {body}");
        if status_wanted == StatusCode::BAD_REQUEST {
            assert_eq!(body["error"]["details"]["field"], "phone_number_id", "{given}: {body}");
        }
    }
    let (status, body) = app.post_json("/assistants", &json!({"id": "asst_vapi", "provider": "sim", "phone_number_id": "pn_main"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
