//! `GET /api/v1/stats`: a campaign run on the simulator is counted as `/calls` lists it;
//! presets and ranges; bad parameters are 400s naming the field. (The numbers themselves
//! are checked against a hand-computed fixture in the store's conformance suite.)

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn stats(app: &TestApp, query: &[(&str, &str)]) -> (StatusCode, Value) {
    send(app.api(Method::GET, "/stats").query(query)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_a_finished_campaign_as_the_call_list_shows_it() {
    let app = TestApp::start().await;
    let id = app.create_campaign(json!({})).await;
    app.import_csv(&id, &contacts_csv(8)).await;
    app.act(&id, "start").await;
    app.wait_for_status(&id, "completed", secs(30)).await;
    let calls = app.all_calls(&[("campaign_id", id.as_str())], 100).await;
    assert!(app.campaign(&id).await["alerts"].is_array(), "the campaign view lists its alerts");

    for query in [vec![("preset", "today")], vec![("campaign_id", id.as_str())], vec![]] {
        let (status, s) = stats(&app, &query).await;
        assert_eq!(status, StatusCode::OK, "{query:?}: {s}");
        assert_eq!(u(&s["total_calls"]), calls.len() as u64, "{query:?}: {s}");
        let by_outcome: u64 = s["by_outcome"].as_object().unwrap().values().map(u).sum();
        assert_eq!(by_outcome, calls.iter().filter(|c| !c["outcome"].is_null()).count() as u64);
        let completed = calls.iter().filter(|c| c["outcome"] == "completed").count() as f64;
        let ended = calls.iter().filter(|c| !c["outcome"].is_null() && c["outcome"] != "canceled").count() as f64;
        assert_eq!(s["success_rate"].as_f64(), Some(completed / ended));
        let dialed = calls.iter().filter(|c| !c["dialed_at"].is_null()).count() as u64;
        assert_eq!(u(&s["latency_ms"]["placement"]["count"]), dialed);
        let placed: u64 = s["hourly"].as_array().unwrap().iter().map(|h| u(&h["placed"])).sum();
        assert_eq!(placed, dialed);
        for key in ["p50", "p95", "p99"] {
            assert!(s["latency_ms"]["webhook_to_commit"][key].is_i64() || s["latency_ms"]["webhook_to_commit"]["count"] == 0, "{s}");
        }
        for key in ["failure_breakdown", "scheduled_next_hour", "scheduled_next_24h", "retries", "avg_duration_secs", "failed_calls", "by_status"] {
            assert!(s.get(key).is_some(), "{key} in {s}");
        }
    }

    // A range that ended before the campaign ran holds none of its calls.
    let (status, s) = stats(&app, &[("from", "2020-01-01T00:00:00Z"), ("to", "2020-01-02T00:00:00Z")]).await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!((u(&s["total_calls"]), s["hourly"].as_array().unwrap().len()), (0, 24));
    assert!(s["success_rate"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_stats_parameters_are_400s_naming_the_field() {
    let app = TestApp::start().await;
    for (query, field) in [
        (vec![("preset", "year")], "preset"),
        (vec![("preset", "today"), ("from", "2030-01-01T00:00:00Z")], "from"),
        (vec![("from", "yesterday")], "from"),
        (vec![("to", "2030-01-01")], "to"),
        (vec![("from", "2030-01-02T00:00:00Z"), ("to", "2030-01-01T00:00:00Z")], "from"),
        (vec![("from", "2020-01-01T00:00:00Z"), ("to", "2021-01-01T00:00:00Z")], "from"),
        (vec![("campaign_id", "nope")], "campaign_id"),
    ] {
        let (status, body) = stats(&app, &query).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_query");
        assert_eq!(body["error"]["details"]["field"], field, "{query:?}: {body}");
    }
    let (status, body) = stats(&app, &[("bogus", "1")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("bogus"), "{body}");
    // A campaign this workspace does not have is not found.
    let (status, body) = stats(&app, &[("campaign_id", "cmp_01jz0000000000000000000000")]).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = send(app.http.get(app.url("/api/v1/stats"))).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
}
