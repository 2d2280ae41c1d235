//! `POST /api/v1/batches`: a batch of calls runs to the end against the simulator as a
//! campaign does (counts, progress, its calls paged); DNC and calling hours apply; cancel;
//! bad items are listed by their 1-based line and nothing is created; over 10,000 calls is
//! refused; a batch starting later is `scheduled` and echoes `start_at`; `calls_per_minute`
//! throttles it; `Idempotency-Key` replays a batch, `Location` included.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A `sim` batch of `calls` with the settings tests use (hours open round the clock).
fn batch(calls: Vec<Value>, fields: Value) -> Value {
    let mut body = json!({
        "provider": "sim",
        "assistant_id": "asst_it",
        "phone_number_id": PHONE_NUMBER_ID,
        "max_concurrent": 5,
        "max_attempts": 1,
        "calling_hours": {"start": "00:00", "end": "00:00"},
        "calls": calls,
    });
    for (k, v) in fields.as_object().expect("fields is an object") {
        body[k] = v.clone();
    }
    body
}

fn items(n: usize) -> Vec<Value> {
    numbers(n).into_iter().enumerate().map(|(i, p)| json!({"phone": p, "name": format!("Callee {i}"), "variables": {"n": i}})).collect()
}

async fn wait_batch(app: &TestApp, id: &str, status: &str) -> Value {
    eventually(
        || async move {
            let (code, b) = app.get(&format!("/batches/{id}")).await;
            assert_eq!(code, StatusCode::OK, "{b}");
            if b["status"] == status {
                Ok(b)
            } else {
                Err(format!("batch is {} with progress {}", b["status"], b["progress"]))
            }
        },
        secs(30),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_runs_to_the_end_with_its_counts_progress_and_calls_and_skips_dnc_numbers() {
    let app = TestApp::start().await;
    let calls = items(30);
    let listed = calls[7]["phone"].as_str().unwrap().to_string();
    let (status, added) = app.post_json("/dnc", &json!({"numbers": [listed]})).await;
    assert_eq!(status, StatusCode::OK, "{added}");

    let res = app.api(Method::POST, "/batches").json(&batch(calls, json!({"name": "it batch"}))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let created: Value = res.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("cmp_"), "a batch's id is its campaign's: {id}");
    assert_eq!(location, format!("/api/v1/batches/{id}"));
    assert_eq!(created["batch"], true);
    assert_eq!(created["name"], "it batch");
    assert_eq!(created["progress"]["total"], 30, "{created}");

    let done = wait_batch(&app, &id, "completed").await;
    assert_eq!(done["progress"], json!({"total": 30, "finished": 30, "remaining": 0, "percent_done": 100.0}), "{done}");
    assert!(done["finished_at"].is_string() && done["started_at"].is_string() && done["created_at"].is_string(), "{done}");
    assert_eq!(done["counts"]["contacts"]["dnc"], 1, "{}", done["counts"]);
    assert_eq!(total(&done["counts"]["contacts"]), 30);
    let placed = total(&done["counts"]["calls"]);
    assert_eq!(placed, 29, "every number but the listed one was called once: {}", done["counts"]);
    assert_eq!(total(&done["counts"]["outcomes"]), 29, "{}", done["counts"]);
    assert_eq!(app.sim_stats().dials, 29, "the listed number never reached the provider");

    // Its calls, paged by cursor, are exactly the batch's; filters work as on /calls.
    let mut seen = vec![];
    let mut before: Option<String> = None;
    loop {
        let mut req = app.api(Method::GET, &format!("/batches/{id}/calls")).query(&[("limit", "7")]);
        if let Some(b) = &before {
            req = req.query(&[("before", b)]);
        }
        let (status, page) = send(req).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for c in page["data"].as_array().unwrap() {
            assert_eq!(c["campaign_id"], id.as_str());
            assert_ne!(c["phone"], listed.as_str());
            seen.push(c["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => before = Some(c.to_string()),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len() as u64, placed);
    let completed = done["counts"]["outcomes"]["completed"].as_u64().unwrap_or(0);
    let (status, page) = app.get(&format!("/batches/{id}/calls?outcome=completed&limit=500")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["data"].as_array().unwrap().len() as u64, completed);
    let (status, e) = app.get(&format!("/batches/{id}/calls?campaign_id={id}")).await;
    assert_error(status, &e, StatusCode::BAD_REQUEST, "invalid_query");

    // Listed under /batches, not /campaigns; a campaign id is not a batch.
    let (_, batches) = app.get("/batches").await;
    assert_eq!(batches["data"].as_array().unwrap().len(), 1, "{batches}");
    assert_eq!(batches["data"][0]["id"], id.as_str());
    assert_eq!(batches["data"][0]["progress"]["percent_done"], 100.0);
    let (_, campaigns) = app.get("/campaigns").await;
    assert!(campaigns["data"].as_array().unwrap().iter().all(|c| c["id"] != id.as_str()), "{campaigns}");
    let campaign = app.create_campaign(json!({})).await;
    let (status, e) = app.get(&format!("/batches/{campaign}")).await;
    assert_error(status, &e, StatusCode::NOT_FOUND, "not_found");
    let (status, e) = app.post(&format!("/batches/{id}/cancel")).await;
    assert_error(status, &e, StatusCode::CONFLICT, "conflict");
}

/// The UTC offset zone (`Etc/GMT…`) where the local hour is `hour` now.
pub fn zone_at_local_hour(hour: i64) -> String {
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    let mut offset = (hour - now.hour() as i64).rem_euclid(24);
    if offset > 12 {
        offset -= 24;
    }
    if offset == 0 {
        "Etc/UTC".to_string()
    } else {
        // Etc/GMT signs are inverted: Etc/GMT-3 is three hours ahead of UTC.
        format!("Etc/GMT{:+}", -offset)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calling_hours_hold_a_batchs_callee_until_cancel_ends_the_batch() {
    let app = TestApp::start().await;
    // 09:00–12:00 in each callee's zone: one callee is at 10 o'clock, the other at 22.
    let open = numbers(2)[0].clone();
    let closed = numbers(2)[1].clone();
    let calls = vec![json!({"phone": open, "timezone": zone_at_local_hour(10)}), json!({"phone": closed, "timezone": zone_at_local_hour(22)})];
    let (status, created) = app.post_json("/batches", &batch(calls, json!({"calling_hours": {"start": "09:00", "end": "12:00"}}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();

    let halfway = eventually(
        || async {
            let (_, b) = app.get(&format!("/batches/{id}")).await;
            if b["progress"]["finished"] == 1 {
                Ok(b)
            } else {
                Err(b.to_string())
            }
        },
        secs(20),
    )
    .await;
    assert_eq!(halfway["progress"]["percent_done"], 50.0, "{halfway}");
    assert_eq!(halfway["counts"]["contacts"]["pending"], 1, "{halfway}");
    let calls = app.all_calls(&[("campaign_id", id.as_str())], 50).await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["phone"], open.as_str(), "only the callee inside the hours was called");
    let (_, campaign) = app.get(&format!("/campaigns/{id}")).await;
    assert_eq!(campaign["waiting"]["calling_hours"]["count"], 1, "the other waits for its hours: {campaign}");

    let (status, canceled) = app.post(&format!("/batches/{id}/cancel")).await;
    assert_eq!(status, StatusCode::OK, "{canceled}");
    assert_eq!(canceled["status"], "canceled");
    assert!(canceled["finished_at"].is_string(), "{canceled}");
    assert_eq!(canceled["counts"]["contacts"]["canceled"], 1, "{canceled}");
    assert_eq!(canceled["progress"]["percent_done"], 100.0, "{canceled}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_items_are_listed_by_their_line_and_nothing_is_created() {
    let app = TestApp::start().await;
    let good = numbers(3);
    let calls = vec![
        json!({"phone": good[0]}),
        json!({"phone": "not a number"}),
        json!({"name": "no phone"}),
        json!({"phone": good[1], "timezone": "Mars/Olympus"}),
        json!({"phone": good[0]}),
        json!({"phone": good[2], "variables": 3}),
        json!("+14155550100"),
    ];
    let (status, e) = app.post_json("/batches", &batch(calls, json!({}))).await;
    assert_error(status, &e, StatusCode::UNPROCESSABLE_ENTITY, "invalid_calls");
    assert_eq!(e["error"]["details"]["field"], "calls");
    let bad = e["error"]["details"]["items"].as_array().unwrap();
    // 1-based positions in `calls`, as a JSON contact import and the DNC list number rows.
    let lines: Vec<u64> = bad.iter().map(|b| b["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, vec![2, 3, 4, 5, 6, 7], "{e}");
    assert!(bad.iter().all(|b| b.get("index").is_none()), "no 0-based index: {e}");
    assert!(bad[3]["reason"].as_str().unwrap().contains("item 1"), "a repeat names the first: {e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("first: item 2"), "{e}");
    assert!(bad.iter().all(|b| !b["reason"].as_str().unwrap().is_empty()));
    let (_, batches) = app.get("/batches").await;
    assert_eq!(batches["data"], json!([]), "nothing was created");

    let (status, e) = app.post_json("/batches", &batch(items(10_001), json!({}))).await;
    assert_error(status, &e, StatusCode::UNPROCESSABLE_ENTITY, "too_many_calls");
    assert_eq!(e["error"]["details"], json!({"field": "calls", "limit": 10_000, "count": 10_001}));
    let (status, e) = app.post_json("/batches", &batch(vec![], json!({}))).await;
    assert_error(status, &e, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, e) = app.post_json("/batches", &batch(items(1), json!({"max_concurrent": 0}))).await;
    assert_error(status, &e, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(e["error"]["details"]["field"], "max_concurrent");
    let (_, batches) = app.get("/batches").await;
    assert_eq!(batches["data"], json!([]), "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_calls_are_accepted_and_start_at_holds_them() {
    let app = TestApp::start().await;
    let start_at = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2);
    // Each call with a 300-byte variable: a body of over 3 MiB, past axum's default 2 MiB.
    let calls: Vec<Value> = items(10_000)
        .into_iter()
        .map(|mut c| {
            c["variables"]["note"] = json!("n".repeat(300));
            c
        })
        .collect();
    let body = batch(calls, json!({"start_at": start_at.to_string()}));
    assert!(body.to_string().len() > 3 << 20, "the body is over 3 MiB");
    let (status, created) = app.post_json("/batches", &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    assert_eq!(created["progress"]["total"], 10_000);
    assert_eq!(created["progress"]["percent_done"], 0.0);
    // Not started until start_at: `scheduled`, and start_at echoed.
    assert_eq!(created["status"], "scheduled", "{}", created["status"]);
    assert_eq!(ts(&created["start_at"]).as_millisecond(), start_at.as_millisecond(), "{}", created["start_at"]);
    let id = created["id"].as_str().unwrap();
    let (_, shown) = app.get(&format!("/batches/{id}")).await;
    assert_eq!((shown["status"].as_str(), ts(&shown["start_at"]).as_millisecond()), (Some("scheduled"), start_at.as_millisecond()));
    let (_, listed) = app.get("/batches").await;
    assert_eq!(listed["data"][0]["status"], "scheduled", "{}", listed["data"][0]["status"]);
    let (status, contacts) = app.get(&format!("/campaigns/{id}/contacts?limit=5")).await;
    assert_eq!(status, StatusCode::OK, "{contacts}");
    for c in contacts["data"].as_array().unwrap() {
        assert_eq!(ts(&c["next_attempt_at"]).as_millisecond(), start_at.as_millisecond(), "due at start_at: {c}");
    }
    let (status, canceled) = app.post(&format!("/batches/{id}/cancel")).await;
    assert_eq!(status, StatusCode::OK, "{canceled}");
    assert_eq!(canceled["counts"]["contacts"]["canceled"], 10_000);
    assert_eq!(app.sim_stats().dials, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_replays_the_batch_and_refuses_another_body() {
    let app = TestApp::start().await;
    let body = batch(items(3), json!({"name": "idem"}));
    let send_keyed = |body: Value| {
        let req = app.api(Method::POST, "/batches").header("Idempotency-Key", "batch-key-1").json(&body);
        async move {
            let r = req.send().await.unwrap();
            let replayed = r.headers().get("idempotent-replayed").is_some();
            let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_string());
            (r.status(), replayed, location, r.json::<Value>().await.unwrap())
        }
    };
    let (s1, replayed1, location1, first) = send_keyed(body.clone()).await;
    assert_eq!((s1, replayed1), (StatusCode::ACCEPTED, false), "{first}");
    assert_eq!(location1, Some(format!("/api/v1/batches/{}", first["id"].as_str().unwrap())));
    let (s2, replayed2, location2, second) = send_keyed(body.clone()).await;
    assert_eq!((s2, replayed2), (StatusCode::ACCEPTED, true), "{second}");
    assert_eq!(second["id"], first["id"]);
    assert_eq!(location2, location1, "the replay names the batch as the first answer did");
    let (s3, _, _, other) = send_keyed(batch(items(4), json!({"name": "idem"}))).await;
    assert_error(s3, &other, StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused");
    let (_, batches) = app.get("/batches").await;
    assert_eq!(batches["data"].as_array().unwrap().len(), 1, "one batch: {batches}");
}

/// `calls_per_minute` holds a batch to that many calls per rolling minute, whatever its
/// cap: with the simulator answering at once, a batch of 8 with a cap of 8 and a throttle of
/// 3 places 3 calls and waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_per_minute_throttles_a_batch() {
    let app = TestApp::start().await;
    let (status, created) = app.post_json("/batches", &batch(items(8), json!({"max_concurrent": 8, "calls_per_minute": 3}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    assert_eq!(created["calls_per_minute"], 3, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    eventually(
        || async {
            let dials = app.sim_stats().dials;
            if dials >= 3 {
                Ok(())
            } else {
                Err(format!("{dials} dials"))
            }
        },
        secs(20),
    )
    .await;
    // Well inside the minute nothing more is placed, though five slots stay free.
    holds_for(
        || async {
            if app.sim_stats().dials == 3 {
                Ok(())
            } else {
                Err(format!("{} dials within the minute", app.sim_stats().dials))
            }
        },
        secs(5),
    )
    .await;
    let (_, shown) = app.get(&format!("/batches/{id}")).await;
    assert_eq!(total(&shown["counts"]["calls"]), 3, "{}", shown["counts"]);

    for bad in [json!(0), json!(10_001)] {
        let (status, e) = app.post_json("/batches", &batch(items(1), json!({"calls_per_minute": bad}))).await;
        assert_error(status, &e, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(e["error"]["details"]["field"], "calls_per_minute", "{e}");
    }
}
