//! Bad input gets a clear error and loses nothing: NUL characters (which PostgreSQL's text
//! cannot hold) refused the same on both databases through every kind of input, body
//! errors that name their field first, the engine's own rate rule at the API, and headers
//! and URLs that must not be guessed at or echoed.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const NUL: &str = "must not contain a NUL character (U+0000)";

/// A 400 with `code`, naming `field` in `details.field` and first in the message.
fn assert_names(status: StatusCode, body: &Value, code: &str, field: &str) {
    assert_error(status, body, StatusCode::BAD_REQUEST, code);
    assert_eq!(body["error"]["details"]["field"], field, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with(&format!("{field}: ")), "the message names {field} first: {body}");
}

fn twilio(name: &str) -> Value {
    json!({"provider": "twilio", "name": name, "credentials": {"account_sid": "AC0123", "auth_token": "twilio-token-0123456789-wxyz", "twiml_url": "https://example.com/twiml"}})
}

async fn count(app: &TestApp, path: &str) -> usize {
    let (status, list) = app.get(path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {list}");
    list["data"].as_array().unwrap_or_else(|| panic!("{path} lists data: {list}")).len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_character_is_refused_through_every_kind_of_input_and_nothing_is_stored() {
    let app = TestApp::start().await;
    let campaign = app.create_campaign(json!({"name": "kept"})).await;
    let (campaigns, workspaces, keys, endpoints, batches, accounts) = (
        count(&app, "/campaigns").await,
        count(&app, "/workspaces").await,
        count(&app, "/keys").await,
        count(&app, "/webhook-endpoints").await,
        count(&app, "/batches").await,
        count(&app, "/provider-accounts").await,
    );
    let phone = "+14155550100";
    let call = |name: &str| json!({"phone": phone, "name": name});
    let bodies: Vec<(&str, Value, &str)> = vec![
        ("/campaigns", json!({"name": "c\u{0}", "provider": "sim", "assistant_id": "a", "phone_number_id": "p"}), "name"),
        ("/workspaces", json!({"name": "a\u{0}b"}), "name"),
        ("/keys", json!({"name": "k\u{0}"}), "name"),
        ("/webhook-endpoints", json!({"url": "https://hooks.example.com/a", "events": ["campaign.started"], "description": "d\u{0}"}), "description"),
        ("/dnc", json!({"numbers": [phone], "reason": "r\u{0}"}), "reason"),
        ("/provider-accounts", twilio("p\u{0}"), "name"),
        (
            "/batches",
            json!({"provider": "sim", "assistant_id": "a", "phone_number_id": "p", "calls": [call("a"), call("b"), call("c"), call("d\u{0}")]}),
            "calls[3].name",
        ),
        // Nested values and object keys, at any depth.
        (
            "/batches",
            json!({"provider": "sim", "assistant_id": "a", "phone_number_id": "p", "calls": [{"phone": phone, "variables": {"x": ["ok", "\u{0}"]}}]}),
            "calls[0].variables.x[1]",
        ),
        (
            "/batches",
            json!({"provider": "sim", "assistant_id": "a", "phone_number_id": "p", "calls": [{"phone": phone, "variables": {"a\u{0}": 1}}]}),
            "calls[0].variables.a\\u0000",
        ),
        (&*Box::leak(format!("/campaigns/{campaign}/dnc").into_boxed_str()), json!({"numbers": [phone], "reason": "\u{0}"}), "reason"),
    ];
    for (path, body, field) in bodies {
        let (status, answer) = app.post_json(path, &body).await;
        assert_names(status, &answer, "invalid_json", field);
        assert_eq!(answer["error"]["message"], format!("{field}: {NUL}"), "{path}");
    }
    // A PATCH body too.
    let (status, answer) = send(app.api(Method::PATCH, &format!("/campaigns/{campaign}")).json(&json!({"name": "x\u{0}"}))).await;
    assert_names(status, &answer, "invalid_json", "name");

    // Query parameters and path segments reach SQL as text as well.
    let (status, answer) = app.get("/calls?phone=%2B1415%00").await;
    assert_names(status, &answer, "invalid_query", "phone");
    let (status, answer) = app.get("/dnc/check?phone=%00").await;
    assert_names(status, &answer, "invalid_query", "phone");
    let (status, answer) = app.get("/campaigns/cmp_%00").await;
    assert_names(status, &answer, "invalid_path", "id");

    // A CSV cell with a NUL is a bad row, reported with its line; the other rows are imported.
    let csv = "phone,name\n+14155550100,\"a\u{0}b\"\n+14155550101,ok\n";
    let report = app.import_csv(&campaign, csv).await;
    assert_eq!((report["imported"].as_u64(), report["rejected_count"].as_u64()), (Some(1), Some(1)), "{report}");
    assert_eq!(report["rejected"][0]["line"], 2, "{report}");
    assert_eq!(report["rejected"][0]["reason"], format!("name: {NUL}"), "{report}");
    // So is a JSON contact with one.
    let req = app
        .api(Method::POST, &format!("/campaigns/{campaign}/contacts"))
        .json(&json!([{"phone": "+14155550102", "city": "x\u{0}"}, {"phone": "+14155550103"}]));
    let (status, report) = send(req).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!((report["imported"].as_u64(), report["rejected_count"].as_u64()), (Some(1), Some(1)), "{report}");
    assert_eq!(report["rejected"][0]["reason"], format!("city: {NUL}"), "{report}");
    // A header with one refuses the file: its column would be a variable's name.
    let req = app.api(Method::POST, &format!("/campaigns/{campaign}/contacts")).header("content-type", "text/csv").body("phone,ci\u{0}ty\n+14155550104,x\n");
    let (status, answer) = send(req).await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(answer["error"]["message"].as_str().unwrap().contains(NUL), "{answer}");

    assert_eq!(count(&app, "/campaigns").await, campaigns);
    assert_eq!(count(&app, "/workspaces").await, workspaces);
    assert_eq!(count(&app, "/keys").await, keys);
    assert_eq!(count(&app, "/webhook-endpoints").await, endpoints);
    assert_eq!(count(&app, "/batches").await, batches);
    assert_eq!(count(&app, "/provider-accounts").await, accounts);
    assert_eq!(count(&app, &format!("/campaigns/{campaign}/contacts?limit=500")).await, 2, "the two good rows only");
    let (_, kept) = app.get(&format!("/campaigns/{campaign}")).await;
    assert_eq!(kept["name"], "kept");
    let (_, listed) = app.get("/dnc").await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(0), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_body_error_names_its_field_first_in_plain_words() {
    let app = TestApp::start().await;
    // A wrong type, through what was a flattened struct.
    let (status, body) = app.post_json("/keys", &json!({"name": "x", "scopes": "read"})).await;
    assert_names(status, &body, "invalid_json", "scopes");
    // A field required only in some cases.
    let (status, body) = app.post_json("/campaigns", &json!({"name": "x", "provider": "sim", "assistant_id": "a"})).await;
    assert_names(status, &body, "invalid_json", "phone_number_id");
    assert_eq!(body["error"]["message"], "phone_number_id: missing (required unless caller_numbers is given)");

    // Every instant a request gives shares one message, not the parser's.
    let instant = "not an RFC 3339 instant (e.g. 2026-12-01T09:00:00Z)";
    let batch = json!({"provider": "sim", "assistant_id": "a", "phone_number_id": "p", "start_at": "yesterday", "calls": [{"phone": "+14155550100"}]});
    let (status, body) = app.post_json("/batches", &batch).await;
    assert_names(status, &body, "invalid_json", "start_at");
    assert_eq!(body["error"]["message"], format!("start_at: {instant}"));
    let (status, body) = app.post_json("/calls", &json!({"assistant_id": "a", "phone": "+14155550100", "scheduled_for": "tomorrow"})).await;
    assert_eq!(body["error"]["message"], format!("scheduled_for: {instant}"), "{status} {body}");
    for query in ["/calls?created_from=yesterday", "/stats?from=yesterday", "/calls?ended_to=soon"] {
        let (status, body) = app.get(query).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_query");
        assert!(body["error"]["message"].as_str().unwrap().ends_with(instant), "{query}: {body}");
    }

    // A number's range is the field's own, never its type's (0 is refused for max_concurrent).
    let mut account = twilio("a");
    account["max_concurrent"] = json!(-1);
    let (status, body) = app.post_json("/provider-accounts", &account).await;
    assert_names(status, &body, "invalid_json", "max_concurrent");
    assert_eq!(body["error"]["message"], "max_concurrent: must be a whole number, not -1");
    account["max_concurrent"] = json!(0);
    let (status, body) = app.post_json("/provider-accounts", &account).await;
    assert_names(status, &body, "invalid_request", "max_concurrent");
    let (status, body) =
        app.post_json("/campaigns", &json!({"name": "x", "provider": "sim", "assistant_id": "a", "phone_number_id": "p", "max_attempts": -1})).await;
    assert_eq!(body["error"]["message"], "max_attempts: must be a whole number, not -1", "{status}");
    // Too large for its type: said so, in the body and in a query.
    let (status, body) = app
        .post_json("/campaigns", &json!({"name": "x", "provider": "sim", "assistant_id": "a", "phone_number_id": "p", "max_attempts": 99_999_999_999u64}))
        .await;
    assert_eq!(body["error"]["message"], "max_attempts: is too large, not 99999999999", "{status}");
    for (query, message) in [("/calls?limit=99999999999", "limit: is too large"), ("/calls?limit=ten", "limit: must be a whole number")] {
        let (status, body) = app.get(query).await;
        assert_names(status, &body, "invalid_query", "limit");
        assert_eq!(body["error"]["message"], message, "{query}");
    }

    // A URL that is not one says what it must be.
    let mut account = twilio("a");
    account["credentials"]["base_url"] = json!("not-a-url");
    let (status, body) = app.post_json("/provider-accounts", &account).await;
    assert_names(status, &body, "invalid_request", "credentials.base_url");
    assert!(body["error"]["message"].as_str().unwrap().starts_with("credentials.base_url: must be an absolute http(s) URL"), "{body}");
    let (status, body) = app.post_json("/webhook-endpoints", &json!({"url": "/relative", "events": ["campaign.started"]})).await;
    assert_names(status, &body, "invalid_request", "url");
    assert!(body["error"]["message"].as_str().unwrap().starts_with("url: must be an absolute http(s) URL"), "{body}");
    // What the URL parser would forgive and then call as something else than is stored.
    for bad in [
        "http:///path",
        "http:example.com/x",
        "http:/example.com/x",
        "http://@example.com/x",
        "https://example.com/a b",
        "https://example.com/hook\r\nX-Injected: 1",
    ] {
        let (status, body) = app.post_json("/webhook-endpoints", &json!({"url": bad, "events": ["campaign.started"]})).await;
        assert_names(status, &body, "invalid_request", "url");
        let mut account = twilio("a");
        account["credentials"]["base_url"] = json!(bad);
        let (status, body) = app.post_json("/provider-accounts", &account).await;
        assert_names(status, &body, "invalid_request", "credentials.base_url");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_rate_the_engine_cannot_use_is_refused_at_create_and_patch() {
    let app = TestApp::start().await;
    for rate in [json!(1e-300), json!(0), json!(-1), json!(1001)] {
        let mut account = twilio("slow");
        account["calls_per_second"] = rate.clone();
        let (status, body) = app.post_json("/provider-accounts", &account).await;
        assert_names(status, &body, "invalid_request", "calls_per_second");
    }
    assert_eq!(count(&app, "/provider-accounts").await, 0, "nothing stored");
    let (status, created) = app.post_json("/provider-accounts", &twilio("ok")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    let (status, body) = send(app.api(Method::PATCH, &format!("/provider-accounts/{id}")).json(&json!({"calls_per_second": 1e-300}))).await;
    assert_names(status, &body, "invalid_request", "calls_per_second");
    let (_, kept) = app.get(&format!("/provider-accounts/{id}")).await;
    assert_eq!(kept["calls_per_second"], Value::Null, "{kept}");
    // The slowest rate the limiter can time is still taken.
    let (status, body) = send(app.api(Method::PATCH, &format!("/provider-accounts/{id}")).json(&json!({"calls_per_second": 0.001}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_idempotency_keys_and_a_webhook_url_with_credentials_are_refused() {
    let app = TestApp::start().await;
    let req = app.api(Method::POST, "/workspaces").header("Idempotency-Key", "k1").header("Idempotency-Key", "k2").json(&json!({"name": "twice"}));
    let (status, body) = send(req).await;
    assert_names(status, &body, "invalid_request", "Idempotency-Key");
    let (_, list) = app.get("/workspaces").await;
    assert!(!list["data"].as_array().unwrap().iter().any(|w| w["name"] == "twice"), "nothing made: {list}");

    let credentials = "must not carry credentials (user:password@): put a token in the path or use the signature";
    let (status, body) = app.post_json("/webhook-endpoints", &json!({"url": "http://user:pass@hooks.example.com/a", "events": ["campaign.started"]})).await;
    assert_names(status, &body, "invalid_request", "url");
    assert_eq!(body["error"]["message"], format!("url: {credentials}"));
    let (status, created) = app.post_json("/webhook-endpoints", &json!({"url": "https://hooks.example.com/a", "events": ["campaign.started"]})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    let (status, body) = send(app.api(Method::PATCH, &format!("/webhook-endpoints/{id}")).json(&json!({"url": "https://token@hooks.example.com/b"}))).await;
    assert_names(status, &body, "invalid_request", "url");
    let (_, kept) = app.get(&format!("/webhook-endpoints/{id}")).await;
    assert_eq!(kept["url"], "https://hooks.example.com/a");
}

/// An authentic provider webhook is stored even with a NUL in it (PostgreSQL text cannot
/// hold U+0000; refusing it would make the provider retry for ever and the call never
/// end): the NUL is stored as U+FFFD, on both backends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authentic_webhook_with_a_nul_is_stored_and_ends_its_call() {
    let mut options = Options::default();
    options.sim.number_outcomes = numbers(1).into_iter().map(|n| (n, dialtone_sim::SimOutcome::Hang)).collect();
    options.sim_webhooks = false;
    options.engine.stuck_timeout = secs(600);
    let app = TestApp::with(options).await;
    let campaign = app.create_campaign(serde_json::json!({})).await;
    app.import_csv(&campaign, &contacts_csv(1)).await;
    app.act(&campaign, "start").await;
    let (call, pid) = app.dialed_call(&campaign).await;
    let ended = serde_json::json!({"type": "end-of-call-report", "endedReason": "customer-ended-call",
        "analysis": {"summary": "said \u{0}hello"}, "call": {"id": pid}});
    let (status, body) = app.webhook(ended).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let c = app.call(&call).await;
    assert_eq!((c["status"].as_str(), c["outcome"].as_str()), (Some("ended"), Some("completed")), "{c}");
    assert!(c.to_string().contains("said \u{fffd}hello"), "stored with U+FFFD: {c}");
}
