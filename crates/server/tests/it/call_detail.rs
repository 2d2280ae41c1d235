//! Call detail (issue 11): what each provider reports of a call reaches `GET /calls` as the
//! provider sent it through the simulator's webhooks, `null` where it reports nothing; and
//! the list's filters (several statuses or outcomes, date ranges, sort).

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const CONTACTS: usize = 12;

/// A finished campaign of `CONTACTS` on `provider` (dialled through `caller`), its calls.
async fn finished_calls(provider: &str, caller: &str) -> (TestApp, String, Vec<Value>) {
    let app = TestApp::with(Options { provider_accounts: true, ..Options::default() }).await;
    let id = app.create_campaign(json!({"provider": provider, "phone_number_id": caller, "max_concurrent": 4})).await;
    let report = app.import_csv(&id, &contacts_csv(CONTACTS)).await;
    assert_eq!(report["imported"], CONTACTS as u64, "{report}");
    app.act(&id, "start").await;
    app.wait_for_status(&id, "completed", secs(12)).await;
    let calls = app.all_calls(&[("campaign_id", id.as_str())], 100).await;
    assert_eq!(calls.len(), CONTACTS, "{calls:?}");
    (app, id, calls)
}

/// Fields every provider fills: the contact's name and variables, the ended reason, and
/// for a call that was answered its duration in seconds (the milliseconds / 1000).
fn common_fields(calls: &[Value]) {
    for c in calls {
        assert!(c["name"].as_str().is_some_and(|n| n.starts_with("Contact ")), "the contact's name: {c}");
        assert!(c["variables"]["plan"].is_string(), "the contact's variables: {c}");
        assert!(c["ended_reason"].is_string(), "{c}");
        for key in ["duration_secs", "cost", "answered_by", "transcript", "summary", "recording_url"] {
            assert!(c.get(key).is_some(), "`{key}` is always present (null when not reported): {c}");
        }
    }
    let answered: Vec<&Value> = calls.iter().filter(|c| c["outcome"] == "completed").collect();
    assert!(!answered.is_empty(), "the sim answered some calls: {calls:?}");
    for c in answered {
        let secs = c["duration_secs"].as_f64().unwrap_or_else(|| panic!("an answered call has a duration: {c}"));
        assert!(secs >= 0.0, "{c}");
        assert_eq!(Some(secs), c["duration_ms"].as_i64().map(|ms| ms as f64 / 1000.0), "{c}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vapi_call_carries_cost_summary_recording_and_transcript_from_the_end_of_call_report() {
    let (app, id, calls) = finished_calls("sim", PHONE_NUMBER_ID).await;
    common_fields(&calls);

    // The export shows each contact's last call's duration and summary.
    let text = app.api(reqwest::Method::GET, &format!("/campaigns/{id}/export.csv")).send().await.unwrap().text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    for c in &calls {
        let row = records.iter().find(|r| r[0] == *c["phone"].as_str().unwrap()).unwrap_or_else(|| panic!("{c} not exported: {text}"));
        assert_eq!(&row[7], c["summary"].as_str().unwrap_or_default(), "{text}");
        assert_eq!(row[6].parse::<f64>().ok(), c["duration_secs"].as_f64(), "{text}");
    }

    for c in calls.iter().filter(|c| c["outcome"] == "completed") {
        assert!(c["cost"].as_f64().is_some_and(|x| x > 0.0), "Vapi reports a cost: {c}");
        assert!(c["summary"].as_str().is_some_and(|s| !s.is_empty()), "analysis.summary: {c}");
        let id = c["provider_call_id"].as_str().unwrap();
        assert_eq!(c["recording_url"], format!("https://sim.invalid/rec/{id}.wav"), "artifact.recordingUrl: {c}");
        let turns = c["transcript"].as_array().unwrap_or_else(|| panic!("artifact.messages as turns: {c}"));
        assert_eq!(turns.len(), 3, "{c}");
        assert_eq!((turns[0]["speaker"].as_str(), turns[1]["speaker"].as_str()), (Some("agent"), Some("callee")), "{c}");
        assert!(turns[0]["text"].as_str().unwrap().contains(c["name"].as_str().unwrap()), "the sim greets the contact by name: {c}");
        assert!(c["answered_by"].is_null(), "Vapi has no AMD verdict of its own: {c}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twilio_call_carries_its_duration_and_amd_verdict_and_no_cost_or_summary() {
    let (_app, _id, calls) = finished_calls("twilio", TWILIO_CALLER).await;
    common_fields(&calls);
    for c in &calls {
        assert!(c["cost"].is_null() && c["summary"].is_null() && c["transcript"].is_null(), "Twilio's callbacks carry none of these: {c}");
        assert!(c["recording_url"].is_null(), "nothing was recorded: {c}");
    }
    for c in calls.iter().filter(|c| c["outcome"] == "voicemail") {
        assert_eq!(c["answered_by"], "machine", "AMD decided the voicemail: {c}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exotel_call_carries_its_duration_and_no_cost_summary_or_verdict() {
    let (_app, _id, calls) = finished_calls("exotel", EXOTEL_CALLER).await;
    common_fields(&calls);
    for c in &calls {
        assert!(c["cost"].is_null() && c["summary"].is_null() && c["answered_by"].is_null() && c["recording_url"].is_null(), "{c}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_filter_by_several_statuses_or_outcomes_by_dates_and_sort_both_ways() {
    let (app, id, calls) = finished_calls("sim", PHONE_NUMBER_ID).await;
    let q = |extra: &[(&str, &str)]| {
        let mut v: Vec<(String, String)> = vec![("campaign_id".into(), id.clone())];
        v.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        v
    };
    let count = |outcomes: &[&str]| calls.iter().filter(|c| outcomes.contains(&c["outcome"].as_str().unwrap_or_default())).count();

    let pair: Vec<&str> = {
        let mut seen: Vec<&str> = calls.iter().filter_map(|c| c["outcome"].as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        seen.into_iter().take(2).collect()
    };
    let joined = pair.join(",");
    let both = app.all_calls(&borrowed(&q(&[("outcome", &joined)])), 100).await;
    assert_eq!(both.len(), count(&pair), "outcome={joined}");
    let ended = app.all_calls(&borrowed(&q(&[("status", "ended,failed")])), 100).await;
    assert_eq!(ended.len(), calls.iter().filter(|c| c["status"] == "ended" || c["status"] == "failed").count());

    // Date ranges: everything was created and ended before now, nothing after.
    let now = jiff::Timestamp::now().to_string();
    assert_eq!(app.all_calls(&borrowed(&q(&[("created_to", &now), ("ended_to", &now)])), 100).await.len(), CONTACTS);
    assert!(app.all_calls(&borrowed(&q(&[("ended_from", &now)])), 100).await.is_empty());
    // The earliest by time, not by text: RFC 3339 drops a zero fraction ("…:18Z" is earlier
    // than "…:18.050Z" but sorts after it as text).
    let first_end = calls.iter().filter_map(|c| c["ended_at"].as_str()).map(|t| t.parse::<jiff::Timestamp>().unwrap()).min().unwrap().to_string();
    let from_first = app.all_calls(&borrowed(&q(&[("ended_from", &first_end)])), 100).await;
    assert_eq!(from_first.len(), calls.iter().filter(|c| c["ended_at"].is_string()).count(), "the bound is inclusive");

    // Sort: newest first by default, oldest first on request, paging either way.
    let newest = app.all_calls(&borrowed(&q(&[])), 5).await;
    let oldest = app.all_calls(&borrowed(&q(&[("sort", "created_at")])), 5).await;
    let ids = |v: &[Value]| v.iter().map(|c| c["id"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let mut reversed = ids(&newest);
    reversed.reverse();
    assert_eq!(ids(&oldest), reversed);
    assert_eq!(oldest.len(), CONTACTS);

    for (key, value) in [("status", "ended,sleeping"), ("outcome", "won"), ("created_from", "yesterday"), ("sort", "cost")] {
        let (status, body) = app.get(&format!("/calls?{key}={value}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{key}={value}: {body}");
        assert_eq!(body["error"]["details"]["field"], key, "{body}");
    }
}

fn borrowed(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}
