//! Steering a campaign through the API: its contacts filtered, searched and paged with what
//! each waits for, the campaign's `waiting` breakdown, PATCH, archive and the CSV export.

use crate::support::*;
use dialtone_sim::SimOutcome;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn contacts(app: &TestApp, id: &str, query: &str) -> Value {
    let (status, body) = app.get(&format!("/campaigns/{id}/contacts?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body
}

fn names(page: &Value) -> Vec<String> {
    let mut n: Vec<String> = page["data"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap_or("").to_string()).collect();
    n.sort();
    n
}

fn field(body: &Value) -> &str {
    body["error"]["details"]["field"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_are_filtered_searched_paged_and_say_what_they_wait_for() {
    let app = TestApp::start().await;
    let nums = numbers(3);
    // The campaign's schedule opens in 2099: once started, every contact waits for it.
    let id = app.create_campaign(json!({"schedule": {"timezone": "UTC", "start_date": "2099-01-01"}})).await;
    let csv = format!("name,phone,plan\nAda Lovelace,{},gold\nBob Smith,{},silver\nCarol 50%,{},bronze\n", nums[0], nums[1], nums[2]);
    app.import_csv(&id, &csv).await;

    let all = contacts(&app, &id, "").await;
    assert_eq!(names(&all), ["Ada Lovelace", "Bob Smith", "Carol 50%"]);
    for c in all["data"].as_array().unwrap() {
        assert_eq!(c["waiting_for"], Value::Null, "a draft campaign's contacts wait for nothing yet: {c}");
        assert_eq!(c["attempts"], 0);
        assert!(c["timezones"].as_array().is_some_and(|z| !z.is_empty()), "{c}");
    }
    assert_eq!(names(&contacts(&app, &id, "status=pending").await).len(), 3);
    assert_eq!(names(&contacts(&app, &id, "status=done,canceled").await).len(), 0);
    let (status, body) = app.get(&format!("/campaigns/{id}/contacts?status=pending,nope")).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_query");
    assert_eq!(field(&body), "status");

    // Search: by name (any case), by digits of the number (separators ignored), and `%`
    // matched literally.
    assert_eq!(names(&contacts(&app, &id, "q=lovelace").await), ["Ada Lovelace"]);
    let digits = &nums[1][5..]; // the seven digits after +1 and the area code
    let spaced = format!("{}-{}", &digits[..3], &digits[3..]);
    let found = contacts(&app, &id, &format!("q={spaced}")).await;
    assert!(names(&found).contains(&"Bob Smith".to_string()), "{found}");
    for c in found["data"].as_array().unwrap() {
        assert!(c["phone"].as_str().unwrap().contains(digits), "{c}");
    }
    assert_eq!(names(&contacts(&app, &id, "q=%25").await), ["Carol 50%"]);

    // Pages of two, newest first; the cursor runs out.
    let first = contacts(&app, &id, "limit=2").await;
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().expect("a cursor").to_string();
    let second = contacts(&app, &id, &format!("limit=2&before={cursor}")).await;
    assert_eq!(second["data"].as_array().unwrap().len(), 1);
    assert_eq!(second["next_cursor"], Value::Null);
    let (status, body) = app.get(&format!("/campaigns/{id}/contacts?before=cmp_nope")).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_query");

    // Started: every contact waits for the campaign's schedule, until it opens.
    app.act(&id, "start").await;
    for c in contacts(&app, &id, "").await["data"].as_array().unwrap() {
        assert_eq!(c["waiting_for"], "campaign_schedule", "{c}");
        assert_eq!(c["until"], "2099-01-01T00:00:00Z", "{c}");
    }
    let campaign = app.campaign(&id).await;
    assert_eq!(
        campaign["waiting"],
        json!({"campaign_schedule": {"count": 3, "earliest": "2099-01-01T00:00:00Z", "latest": "2099-01-01T00:00:00Z"}}),
        "{campaign}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_takes_effect_at_the_next_claim_and_refuses_bad_fields_and_delete_waits_for_calls() {
    let nums = numbers(4);
    let mut options = Options::default();
    for n in &nums {
        // Calls never end by themselves: the cap stays full.
        options.sim.number_outcomes.insert(n.clone(), SimOutcome::Hang);
    }
    let app = TestApp::with(options).await;
    let id = app.create_campaign(json!({"max_concurrent": 1})).await;
    app.import_csv(&id, &contacts_csv(4)).await;
    app.act(&id, "start").await;
    let active = |n: u64| {
        let app = &app;
        let id = id.clone();
        async move {
            let c = app.campaign(&id).await;
            if u(&c["counts"]["active_calls"]) == n {
                Ok(c)
            } else {
                Err(c.to_string())
            }
        }
    };
    let c = eventually(|| active(1), secs(10)).await;
    // Three due contacts held back by the campaign's own cap.
    assert_eq!(c["waiting"], json!({"campaign_cap": {"count": 3, "earliest": null, "latest": null}}), "{c}");
    let page = contacts(&app, &id, "status=pending").await;
    for ct in page["data"].as_array().unwrap() {
        assert_eq!(ct["waiting_for"], "campaign_cap", "{ct}");
    }

    let patch = |body: Value| {
        let app = &app;
        let id = id.clone();
        async move { send(app.api(Method::PATCH, &format!("/campaigns/{id}")).json(&body)).await }
    };
    for (body, want) in [
        (json!({"max_concurrent": 0}), "max_concurrent"),
        (json!({"max_attempts": 101}), "max_attempts"),
        (json!({"mode": "sometimes"}), "mode"),
        (json!({"name": "  "}), "name"),
        (json!({"retry": {"jitter": 7.0}}), "retry"),
    ] {
        let (status, err) = patch(body.clone()).await;
        assert_error(status, &err, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(field(&err), want, "{body}: {err}");
    }
    let (status, err) = patch(json!({"schedule": {"timezone": "Mars/Olympus"}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(field(&err).starts_with("schedule."), "{err}");
    let (status, err) = patch(json!({"cap": 3})).await;
    assert!(status.is_client_error(), "{err}");
    assert_eq!(u(&app.campaign(&id).await["max_concurrent"]), 1, "refused patches change nothing");

    let (status, c) = patch(json!({"max_concurrent": 3, "name": "renamed"})).await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["name"], "renamed");
    assert_eq!(c["max_concurrent"], 3);
    // The dispatcher reads the new cap at its next claim.
    eventually(|| active(3), secs(10)).await;

    let (status, err) = send(app.api(Method::DELETE, &format!("/campaigns/{id}"))).await;
    assert_error(status, &err, StatusCode::CONFLICT, "conflict");
    assert_eq!(err["error"]["details"]["active_calls"], 3, "{err}");
    assert_eq!(app.campaign(&id).await["archived_at"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archived_campaign_is_canceled_and_listed_only_on_request() {
    let app = TestApp::start().await;
    let kept = app.create_campaign(json!({})).await;
    let id = app.create_campaign(json!({})).await;
    app.import_csv(&id, &contacts_csv(2)).await;
    let (status, c) = send(app.api(Method::DELETE, &format!("/campaigns/{id}"))).await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert!(c["archived_at"].is_string(), "{c}");
    assert_eq!(c["status"], "canceled");
    assert_eq!(c["counts"]["contacts"]["canceled"], 2, "{c}");

    let ids = |page: Value| page["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let (_, default) = app.get("/campaigns").await;
    assert_eq!(ids(default), [kept.as_str()]);
    let (_, archived) = app.get("/campaigns?archived=true").await;
    assert_eq!(ids(archived), [id.as_str()]);
    let (status, body) = app.get("/campaigns?archived=maybe").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_query");

    // Archived is final: no edits; archiving again changes nothing.
    let (status, body) = send(app.api(Method::PATCH, &format!("/campaigns/{id}")).json(&json!({"name": "again"}))).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let (status, again) = send(app.api(Method::DELETE, &format!("/campaigns/{id}"))).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["archived_at"], c["archived_at"]);
    let (status, body) = send(app.api(Method::DELETE, "/campaigns/cmp_nope")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_has_one_quoted_row_per_contact_with_its_last_call_and_every_variable() {
    let nums = numbers(3);
    let mut options = Options::default();
    for n in &nums {
        options.sim.number_outcomes.insert(n.clone(), SimOutcome::Answered);
    }
    let app = TestApp::with(options).await;
    let id = app.create_campaign(json!({})).await;
    let rows = json!([
        {"phone": nums[0], "name": "Doe, \"Jo\"", "variables": {"plan": "gold", "note": "line one\nline two"}},
        {"phone": nums[1], "variables": {"score": 3}},
        {"phone": nums[2], "name": "Plain"},
    ]);
    let (status, report) = app.post_json(&format!("/campaigns/{id}/contacts"), &rows).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    app.act(&id, "start").await;
    app.wait_for_status(&id, "completed", secs(20)).await;

    let res = app.api(Method::GET, &format!("/campaigns/{id}/export.csv")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = res.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(header, ["phone", "name", "status", "outcome", "attempts", "last_call_at", "duration_secs", "summary", "note", "plan", "score"]);
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 3, "{text}");
    let row = |phone: &str| records.iter().find(|r| &r[0] == phone).unwrap_or_else(|| panic!("{phone} missing: {text}")).clone();
    let first = row(&nums[0]);
    assert_eq!(&first[1], "Doe, \"Jo\"");
    assert_eq!(&first[2], "done");
    assert_eq!(&first[3], "completed");
    assert_eq!(&first[4], "1");
    assert!(first[5].parse::<jiff::Timestamp>().is_ok(), "{text}");
    assert_eq!((&first[8], &first[9], &first[10]), ("line one\nline two", "gold", ""));
    let second = row(&nums[1]);
    assert_eq!((&second[1], &second[8], &second[9], &second[10]), ("", "", "", "3"));
    assert_eq!(&row(&nums[2])[1], "Plain");

    let (status, body) = app.get("/campaigns/cmp_nope/export.csv").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

/// The contacts' `waiting.until`, once every one of them waits for its calling hours and
/// all wait until the same moment `want` (or any, with `None`).
async fn all_wait_until(app: &TestApp, id: &str, want: Option<jiff::Timestamp>) -> jiff::Timestamp {
    eventually(
        || async {
            let page = contacts(app, id, "limit=10").await;
            let untils: Vec<Option<jiff::Timestamp>> = page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| (c["waiting"]["reason"] == "calling_hours").then(|| c["waiting"]["until"].as_str().and_then(|t| t.parse().ok())).flatten())
                .collect();
            match untils.first().copied().flatten() {
                Some(t) if untils.iter().all(|u| *u == Some(t)) && want.is_none_or(|w| w == t) => Ok(t),
                _ => Err(format!("want all waiting until {want:?}: {page}")),
            }
        },
        secs(10),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_calling_hours_move_the_contacts_waiting_for_the_old_ones_either_way() {
    let app = TestApp::start().await;
    // San Francisco numbers: the contacts' zone is America/Los_Angeles.
    let zone = jiff::tz::TimeZone::get("America/Los_Angeles").unwrap();
    let now = jiff::Timestamp::now().to_zoned(zone.clone());
    let hour = |ahead: i8| (now.hour() + ahead) % 24;
    let hours = |start: i8, end: i8| json!({"calling_hours": {"start": format!("{start:02}:00"), "end": format!("{end:02}:00")}});
    // The next moment it is `h`:00 in Los Angeles.
    let next = |h: i8| {
        let at = now.with().hour(h).minute(0).second(0).subsec_nanosecond(0).build().unwrap();
        let at = if at <= now { at.checked_add(jiff::Span::new().days(1)).unwrap() } else { at };
        at.timestamp()
    };
    let id = app.create_campaign(hours(hour(3), hour(6))).await;
    app.import_csv(&id, "phone\n+14155550101\n+14155550102\n+14155550103\n").await;
    app.act(&id, "start").await;
    all_wait_until(&app, &id, Some(next(hour(3)))).await;

    // Earlier hours: the waiting contacts are due at the new opening, not the old one.
    let (status, body) = send(app.api(Method::PATCH, &format!("/campaigns/{id}")).json(&hours(hour(2), hour(6)))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    all_wait_until(&app, &id, Some(next(hour(2)))).await;

    // Later hours: never earlier than the new rules allow.
    let (status, body) = send(app.api(Method::PATCH, &format!("/campaigns/{id}")).json(&hours(hour(4), hour(6)))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    all_wait_until(&app, &id, Some(next(hour(4)))).await;
    assert_eq!(app.sim_stats().dials, 0, "nobody was called outside the hours");

    // Hours that hold now: they are called at once.
    let (status, body) = send(app.api(Method::PATCH, &format!("/campaigns/{id}")).json(&hours(hour(0), hour(3)))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.wait_for_status(&id, "completed", secs(10)).await;
    assert_eq!(app.sim_stats().dials, 3);
}
