//! The API's edges: authentication, the error shape, contact import.

use crate::support::*;
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Every `/api/v1` route, with a body where it takes one.
fn routes(campaign: &str) -> Vec<(Method, String, Option<Value>)> {
    let c = |tail: &str| format!("/campaigns/{campaign}{tail}");
    vec![
        (Method::POST, "/campaigns".into(), Some(json!({"name": "x", "provider": "sim", "assistant_id": "a", "phone_number_id": "p"}))),
        (Method::GET, "/campaigns".into(), None),
        (Method::GET, c(""), None),
        (Method::POST, c("/contacts"), Some(json!([{"phone": "+14155552671"}]))),
        (Method::POST, c("/start"), None),
        (Method::POST, c("/pause"), None),
        (Method::POST, c("/resume"), None),
        (Method::POST, c("/cancel"), None),
        (Method::GET, "/calls".into(), None),
        (Method::GET, "/calls/call_01jz0000000000000000000000".into(), None),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_route_answers_401_in_our_error_shape_without_a_valid_bearer_key() {
    let app = TestApp::start().await;
    let campaign = app.create_campaign(json!({})).await;
    let stored_hash = dialtone_server::keys::hash(&app.key);

    for (method, path, body) in routes(&campaign) {
        let url = app.url(&format!("/api/v1{path}"));
        let attempts: [(&str, Option<String>); 5] = [
            ("no Authorization header", None),
            ("a wrong key", Some("Bearer dt_notarealkey0000000000000000000000".into())),
            ("an empty bearer", Some("Bearer ".into())),
            ("another scheme", Some(format!("Basic {}", app.key))),
            ("the stored hash instead of the key", Some(format!("Bearer {stored_hash}"))),
        ];
        for (what, header) in attempts {
            let mut req = app.http.request(method.clone(), &url);
            if let Some(h) = header {
                req = req.header("authorization", h);
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            let (status, resp) = send(req).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} with {what}: {resp}");
            assert_error(status, &resp, StatusCode::UNAUTHORIZED, "unauthorized");
        }
    }

    // Nothing the refused requests asked for happened.
    let c = app.campaign(&campaign).await;
    assert_eq!(c["status"], "draft", "an unauthenticated start/cancel must not act: {c}");
    assert_eq!(total(&c["counts"]["contacts"]), 0, "an unauthenticated import must not add contacts: {c}");
    let (_, list) = app.get("/campaigns").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "an unauthenticated create must not create: {list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_created_in_the_store_authenticates_and_sees_its_workspace() {
    let app = TestApp::start().await;
    let campaign = app.create_campaign(json!({"name": "visible"})).await;

    let ws = app.state.store.default_workspace().await.unwrap();
    let key = dialtone_server::keys::generate();
    app.state.store.create_api_key(&ws, "second", &dialtone_server::keys::hash(&key), app.state.now()).await.unwrap();

    let (status, body) = send(app.http.get(app.url(&format!("/api/v1/campaigns/{campaign}"))).bearer_auth(&key)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "visible");
    let (status, body) = send(app.http.get(app.url("/api/v1/campaigns")).bearer_auth(&key)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"][0]["id"], campaign.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_answered_in_our_error_shape_naming_what_is_wrong() {
    let app = TestApp::start().await;

    // Broken JSON: a 400 in our shape, not axum's plain text.
    let req = app.api(Method::POST, "/campaigns").header("content-type", "application/json").body(r#"{"name": "x", "provider": "#);
    let (status, body) = send(req).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_json");

    // A missing field is named.
    let (status, body) = app.post_json("/campaigns", &json!({"name": "x", "provider": "sim", "phone_number_id": "pn"})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_json");
    assert!(body["error"]["message"].as_str().unwrap().contains("assistant_id"), "message should name the field: {body}");

    // A value out of range names its field in details.
    let (status, body) =
        app.post_json("/campaigns", &json!({"name": "x", "provider": "sim", "assistant_id": "a", "phone_number_id": "p", "max_concurrent": 0})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(body["error"]["details"]["field"], "max_concurrent", "{body}");

    let (status, body) = app.post_json("/campaigns", &json!({"name": "x", "provider": "twilio-ish", "assistant_id": "a", "phone_number_id": "p"})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(body["error"]["details"]["field"], "provider", "{body}");
    let (_, list) = app.get("/campaigns").await;
    assert_eq!(list["data"], json!([]), "no refused create may leave a campaign behind");

    // Unknown ids: well-formed or not, a 404 in our shape.
    for path in ["/campaigns/cmp_01jz0000000000000000000000", "/campaigns/not-an-id", "/calls/call_01jz0000000000000000000000"] {
        let (status, body) = app.get(path).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    }
    let (status, body) = app.post("/campaigns/cmp_01jz0000000000000000000000/start").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    // An unknown route too.
    let (status, body) = send(app.http.get(app.url("/api/v2/nothing"))).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    // Query strings: a bad one is a 400 in our shape too, and a good `limit` is read as a number.
    let (status, body) = app.get("/calls?limit=abc").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_query");
    for (path, field) in
        [("/calls?limit=0", "limit"), ("/campaigns?limit=501", "limit"), ("/calls?status=bogus", "status"), ("/calls?campaign_id=nope", "campaign_id")]
    {
        let (status, body) = app.get(path).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(body["error"]["details"]["field"], field, "{path}: {body}");
    }
    for path in ["/calls?limit=10", "/campaigns?limit=10", "/calls?limit=10&status=ended&outcome=busy"] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }

    // Starting twice: the second is a conflict that says where the campaign stands.
    let id = app.create_campaign(json!({})).await;
    app.import_csv(&id, &contacts_csv(2)).await;
    let first = app.act(&id, "start").await;
    assert_eq!(first["status"], "starting", "{first}");
    let (status, body) = app.post(&format!("/campaigns/{id}/start")).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    assert!(body["error"]["details"]["status"].is_string(), "{body}");
    // Resuming what is not paused is a conflict as well.
    let (status, body) = app.post(&format!("/campaigns/{id}/resume")).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
}

/// Three valid numbers around an invalid one, an empty row and a duplicate of line 2.
const MIXED_CSV: &str = "name,phone,plan\n\
Ana,+14155552671,gold\n\
Bad,12,silver\n\
,,\n\
Bo,(415) 555-2672,bronze\n\
Ana again,415-555-2671,gold\n\
Cy,+442079460018,gold\n";

fn assert_mixed_report(report: &Value) {
    assert_eq!(report["rows"], 6, "{report}");
    assert_eq!(report["imported"], 3, "{report}");
    assert_eq!(report["rejected_count"], 3, "{report}");
    let rejected = report["rejected"].as_array().unwrap();
    let reason = |line: u64| -> String {
        rejected.iter().find(|r| r["line"] == line).unwrap_or_else(|| panic!("line {line} should be rejected: {report}"))["reason"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(reason(3).contains("invalid phone number"), "{report}");
    assert_eq!(reason(4), "empty row", "{report}");
    assert!(reason(6).contains("duplicate") && reason(6).contains("+14155552671"), "{report}");
    assert_eq!(rejected.len(), 3, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_import_from_multipart_csv_body_and_json_reporting_bad_rows_by_line() {
    let app = TestApp::start().await;

    // multipart/form-data, field `file`
    let multipart = app.create_campaign(json!({})).await;
    let form = Form::new().part("file", Part::text(MIXED_CSV).file_name("contacts.csv").mime_str("text/csv").unwrap());
    let (status, report) = send(app.api(Method::POST, &format!("/campaigns/{multipart}/contacts")).multipart(form)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_mixed_report(&report);
    assert_eq!(app.campaign(&multipart).await["counts"]["contacts"]["pending"], 3);

    // text/csv body
    let body = app.create_campaign(json!({})).await;
    let report = app.import_csv(&body, MIXED_CSV).await;
    assert_mixed_report(&report);
    assert_eq!(app.campaign(&body).await["counts"]["contacts"]["pending"], 3);

    // A second import reports numbers already in the campaign by their new line.
    let again = app.import_csv(&body, "phone\n+14155552672\n+14155552673\n").await;
    assert_eq!(again["imported"], 1, "{again}");
    assert_eq!(again["rejected"][0]["line"], 2, "{again}");
    assert!(again["rejected"][0]["reason"].as_str().unwrap().contains("duplicate"), "{again}");

    // A JSON array: lines are 1-based positions.
    let array = app.create_campaign(json!({})).await;
    let contacts = json!([
        {"phone": "+14155552671", "name": "Ana", "variables": {"plan": "gold"}},
        {"phone": "12"},
        {},
        {"number": "4155552672", "name": "Bo"},
        {"phone": "+1 415 555 2671"},
        {"name": "no phone"},
    ]);
    let (status, report) = app.post_json(&format!("/campaigns/{array}/contacts"), &contacts).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["imported"], 2, "{report}");
    let rejected: Vec<(u64, String)> =
        report["rejected"].as_array().unwrap().iter().map(|r| (r["line"].as_u64().unwrap(), r["reason"].as_str().unwrap().to_string())).collect();
    let lines: Vec<u64> = {
        let mut l: Vec<u64> = rejected.iter().map(|r| r.0).collect();
        l.sort();
        l
    };
    assert_eq!(lines, vec![2, 3, 5, 6], "{report}");
    let reason = |line: u64| rejected.iter().find(|r| r.0 == line).unwrap().1.clone();
    assert!(reason(2).contains("invalid phone number"), "{report}");
    assert_eq!(reason(3), "empty row");
    assert!(reason(5).contains("duplicate"), "{report}");
    assert!(reason(6).contains("phone"), "{report}");
    assert_eq!(app.campaign(&array).await["counts"]["contacts"]["pending"], 2);

    // A CSV with no phone column is refused whole.
    let req = app.api(Method::POST, &format!("/campaigns/{array}/contacts")).header("content-type", "text/csv").body("name,email\nAna,a@example.com\n");
    let (status, body) = send(req).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(body["error"]["message"].as_str().unwrap().contains("phone"), "{body}");
    // So is a multipart upload without a `file` field.
    let form = Form::new().text("other", "phone\n+14155552679\n");
    let (status, body) = send(app.api(Method::POST, &format!("/campaigns/{array}/contacts")).multipart(form)).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(body["error"]["details"]["field"], "file", "{body}");
    assert_eq!(app.campaign(&array).await["counts"]["contacts"]["pending"], 2, "refused uploads add nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_without_a_key() {
    let app = TestApp::start().await;
    let (status, body) = send(app.http.get(app.url("/healthz"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send(app.http.get(app.url("/readyz"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
