//! Outbound events (issue 13): a campaign run against the simulator reaches a local
//! receiver, every message signed per Standard Webhooks (checked with the `standardwebhooks`
//! crate's verifier); a failing receiver is retried on the schedule, driven by an injected
//! clock (no sleeps); the delivery log and replay through the API.

use crate::support::*;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use dialtone_core::ManualClock;
use dialtone_engine::{Engine, EngineConfig};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A local webhook receiver answering `status`; what it got, in order.
type Got = Arc<Mutex<Vec<(HeaderMap, String)>>>;

async fn receiver(status: StatusCode) -> (String, Got) {
    let got: Got = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let g = g.clone();
            async move {
                g.lock().unwrap().push((headers, String::from_utf8_lossy(&body).into_owned()));
                (status, "receiver says hi")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

async fn create_endpoint(app: &TestApp, url: &str, events: &[&str]) -> (String, String) {
    let (status, ep) = app.post_json("/webhook-endpoints", &json!({ "url": url, "events": events, "enabled": true })).await;
    assert_eq!(status, StatusCode::CREATED, "{ep}");
    let secret = ep["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    (ep["id"].as_str().unwrap().to_string(), secret)
}

#[tokio::test]
async fn a_campaign_run_reaches_the_receiver_every_event_signed() {
    let app = TestApp::with(Options { engine: EngineConfig { webhook_interval: ms(50), ..Options::default().engine }, ..Options::default() }).await;
    let (url, got) = receiver(StatusCode::NO_CONTENT).await;
    let (endpoint, secret) = create_endpoint(&app, &url, &dialtone_store::WEBHOOK_EVENT_TYPES).await;

    let cmp = app.create_campaign(json!({})).await;
    app.import_csv(&cmp, &contacts_csv(4)).await;
    app.act(&cmp, "start").await;
    app.wait_for_status(&cmp, "completed", secs(30)).await;
    let calls = app.all_calls(&[("campaign_id", &cmp)], 100).await;
    let answered = calls.iter().filter(|c| !c["answered_at"].is_null()).count();

    let want = 2 + calls.len() + answered + 4; // started + completed, call.ended, call.started, contact.finished
    let events = eventually(
        || {
            let got = got.clone();
            async move {
                let n = got.lock().unwrap().len();
                if n >= want {
                    Ok(got.lock().unwrap().clone())
                } else {
                    Err(format!("{n} of {want} events"))
                }
            }
        },
        secs(20),
    )
    .await;
    let verifier = standardwebhooks::Webhook::new(&secret).unwrap();
    let mut types: HashMap<String, usize> = HashMap::new();
    for (headers, body) in &events {
        verifier.verify(body.as_bytes(), headers).unwrap_or_else(|e| panic!("signature of {body}: {e}"));
        assert!(headers["webhook-id"].to_str().unwrap().starts_with("msg_"));
        let v: Value = serde_json::from_str(body).unwrap();
        *types.entry(v["type"].as_str().unwrap().to_string()).or_default() += 1;
        if v["type"] == "call.ended" {
            assert_eq!(v["data"]["campaign_id"], cmp.as_str());
            assert!(v["data"]["outcome"].is_string() && v["data"].get("duration_ms").is_some() && v["data"].get("cost").is_some());
            // The simulator's end-of-call report comes after its `ended` status (as Vapi's
            // does): the event waited for it, and carries its cost and summary.
            assert!(v["data"]["cost"].is_number() && v["data"]["transcript_summary"].is_string(), "{body}");
        }
        // The call events are written with only what the call's row does not say and
        // completed from it at fan-out: every field is there, and says what the API says of
        // the call.
        let data = &v["data"];
        let call_id = match v["type"].as_str().unwrap() {
            "call.started" | "call.ended" => &data["call_id"],
            "contact.finished" => &data["last_call_id"],
            _ => continue,
        };
        let call = calls.iter().find(|c| c["id"] == *call_id).unwrap_or_else(|| panic!("{body}: no such call"));
        let fields: &[&str] = match v["type"].as_str().unwrap() {
            "call.started" => &["campaign_id", "contact_id", "attempt", "phone", "answered_at"],
            "call.ended" => &["campaign_id", "contact_id", "attempt", "phone", "answered_at", "ended_at", "ended_reason", "outcome"],
            _ => &["campaign_id", "contact_id"],
        };
        for field in fields {
            assert!(!call[*field].is_null() || *field == "answered_at", "the API's call has no {field}: {call}");
            assert_eq!(data[*field], call[*field], "{field} of {body} against {call}");
        }
        let provider = &data["provider"];
        assert!(v["type"] == "contact.finished" || provider == "sim", "{body}");
        if v["type"] == "contact.finished" {
            assert_eq!(data["attempts"], call["attempt"], "{body}");
            assert!(data["status"].is_string() && data["last_outcome"] == call["outcome"], "{body} against {call}");
        }
    }
    assert_eq!(types.get("campaign.started"), Some(&1), "{types:?}");
    assert_eq!(types.get("campaign.completed"), Some(&1), "{types:?}");
    assert_eq!(types.get("call.ended").copied().unwrap_or(0), calls.len(), "{types:?}");
    assert_eq!(types.get("call.started").copied().unwrap_or(0), answered, "{types:?}");
    assert_eq!(types.get("contact.finished").copied().unwrap_or(0), 4, "{types:?}");

    // The log shows each as delivered, with its try (recorded just after the receiver answered).
    let path = format!("/webhook-endpoints/{endpoint}/deliveries?limit=500");
    eventually(
        || async {
            let (status, log) = app.get(&path).await;
            let data = log["data"].as_array().cloned().unwrap_or_default();
            let ok = status == StatusCode::OK
                && data.len() == want
                && data.iter().all(|d| d["status"] == "delivered" && d["tries"][0]["status_code"] == 204 && d["tries"][0]["latency_ms"].is_u64());
            if ok {
                Ok(())
            } else {
                Err(format!("{status} {log}"))
            }
        },
        secs(10),
    )
    .await;
}

#[tokio::test]
async fn a_failing_receiver_is_retried_on_the_schedule_then_replayed() {
    // The app's own worker waits an hour between passes: the test's engine, on a manual
    // clock, makes every try.
    let app = TestApp::with(Options { engine: EngineConfig { webhook_interval: secs(3600), ..Options::default().engine }, ..Options::default() }).await;
    let (url, got) = receiver(StatusCode::SERVICE_UNAVAILABLE).await;
    let (endpoint, _) = create_endpoint(&app, &url, &["campaign.paused"]).await;
    let cmp = app.create_campaign(json!({})).await;
    app.import_csv(&cmp, &contacts_csv(1)).await;
    app.act(&cmp, "start").await;
    app.act(&cmp, "pause").await;

    let clock = ManualClock::new(jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_secs(1)).unwrap());
    let engine = Engine::new(app.state.store.clone(), HashMap::new(), Arc::new(clock.clone()), EngineConfig::default());
    let client = dialtone_engine::outbox::client(std::time::Duration::from_secs(10));
    for (i, wait) in dialtone_store::WEBHOOK_RETRY_SCHEDULE.iter().enumerate() {
        if i > 0 {
            clock.advance(*wait - jiff::SignedDuration::from_millis(1));
            assert_eq!(engine.deliver_webhooks(&client).await.unwrap(), 0, "try {} waits {wait:?}", i + 1);
            clock.advance(jiff::SignedDuration::from_millis(1));
        }
        assert_eq!(engine.deliver_webhooks(&client).await.unwrap(), 1, "try {} is made after {wait:?}", i + 1);
        assert_eq!(got.lock().unwrap().len(), i + 1);
    }
    clock.advance(jiff::SignedDuration::from_hours(48));
    assert_eq!(engine.deliver_webhooks(&client).await.unwrap(), 0, "eight tries, then it is failed");
    // The same message id on every try.
    let ids: std::collections::HashSet<String> = got.lock().unwrap().iter().map(|(h, _)| h["webhook-id"].to_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 1);

    let (status, log) = app.get(&format!("/webhook-endpoints/{endpoint}/deliveries")).await;
    assert_eq!(status, StatusCode::OK);
    let d = &log["data"][0];
    assert_eq!(d["status"], "failed");
    assert_eq!(d["tries"].as_array().unwrap().len(), 8);
    assert_eq!(d["tries"][7]["status_code"], 503);
    assert_eq!(d["tries"][7]["response_excerpt"], "receiver says hi");

    let message = d["message_id"].as_str().unwrap();
    let (status, _) = send(app.api(Method::POST, &format!("/webhook-endpoints/{endpoint}/deliveries/{message}/replay"))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(engine.deliver_webhooks(&client).await.unwrap(), 1, "a replay is sent at once");
    assert_eq!(got.lock().unwrap().len(), 9);
    // The log numbers the replay's try after the eight before it, and `attempts` counts
    // them all; the replay's retry schedule starts over (its second try after the first wait).
    let (_, log) = app.get(&format!("/webhook-endpoints/{endpoint}/deliveries")).await;
    let d = &log["data"][0];
    let numbers: Vec<u64> = d["tries"].as_array().unwrap().iter().map(|t| t["attempt"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (1..=9).collect::<Vec<u64>>(), "{d}");
    assert_eq!((d["attempts"].as_u64(), d["status"].as_str()), (Some(9), Some("pending")), "{d}");
    clock.advance(dialtone_store::WEBHOOK_RETRY_SCHEDULE[1]);
    assert_eq!(engine.deliver_webhooks(&client).await.unwrap(), 1, "the replay is retried on the schedule");
    let (_, log) = app.get(&format!("/webhook-endpoints/{endpoint}/deliveries")).await;
    assert_eq!((log["data"][0]["attempts"].as_u64(), log["data"][0]["tries"][9]["attempt"].as_u64()), (Some(10), Some(10)), "{log}");

    // Bad fields are refused naming them; another id is 404.
    let (status, body) = app.post_json("/webhook-endpoints", &json!({ "url": "ftp://x", "events": ["call.ended"] })).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(body["error"]["details"]["field"], "url");
    let (status, body) = app.post_json("/webhook-endpoints", &json!({ "url": "https://x.test/h", "events": ["call.ringing"] })).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(body["error"]["details"]["field"], "events");
    let (status, _) = app.get("/webhook-endpoints/ep_01JZZZZZZZZZZZZZZZZZZZZZZZ").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rotation_signs_with_both_secrets() {
    let app = TestApp::with(Options { engine: EngineConfig { webhook_interval: ms(50), ..Options::default().engine }, ..Options::default() }).await;
    let (url, got) = receiver(StatusCode::OK).await;
    let (endpoint, old) = create_endpoint(&app, &url, &["campaign.paused"]).await;
    let (status, rotated) = app.post(&format!("/webhook-endpoints/{endpoint}/rotate-secret")).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert!(!rotated["previous_secret_expires_at"].is_null());
    let (_, shown) = app.get(&format!("/webhook-endpoints/{endpoint}")).await;
    assert!(shown.get("secret").is_none(), "the secret is shown only once");

    let cmp = app.create_campaign(json!({})).await;
    app.import_csv(&cmp, &contacts_csv(1)).await;
    app.act(&cmp, "start").await;
    app.act(&cmp, "pause").await;
    let (headers, body) = eventually(
        || {
            let got = got.clone();
            async move { got.lock().unwrap().first().cloned().ok_or_else(|| "nothing yet".to_string()) }
        },
        secs(10),
    )
    .await;
    assert_eq!(headers["webhook-signature"].to_str().unwrap().split(' ').count(), 2, "two signatures during a rotation");
    for secret in [&old, &new] {
        standardwebhooks::Webhook::new(secret).unwrap().verify(body.as_bytes(), &headers).expect("each secret verifies");
    }

    // A second rotation within the overlap keeps one previous secret: the one it replaced,
    // for 24 h from now (its `previous_secret_expires_at`); the original stops at once.
    let (_, again) = app.post(&format!("/webhook-endpoints/{endpoint}/rotate-secret")).await;
    let newest = again["secret"].as_str().unwrap().to_string();
    let until = |v: &serde_json::Value| v["previous_secret_expires_at"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    assert!(until(&again) > until(&rotated), "{again} {rotated}");
    let second = app.create_campaign(json!({})).await;
    app.import_csv(&second, &contacts_csv(1)).await;
    app.act(&second, "start").await;
    app.act(&second, "pause").await;
    let (headers, body) = eventually(
        || {
            let got = got.clone();
            async move { got.lock().unwrap().get(1).cloned().ok_or_else(|| "nothing yet".to_string()) }
        },
        secs(10),
    )
    .await;
    assert_eq!(headers["webhook-signature"].to_str().unwrap().split(' ').count(), 2, "never three signatures");
    for secret in [&new, &newest] {
        standardwebhooks::Webhook::new(secret).unwrap().verify(body.as_bytes(), &headers).expect("the current and the one just replaced verify");
    }
    assert!(standardwebhooks::Webhook::new(&old).unwrap().verify(body.as_bytes(), &headers).is_err(), "the original no longer signs");
}

#[tokio::test]
async fn a_tenants_endpoint_reaches_public_addresses_only() {
    let app = TestApp::with(Options { engine: EngineConfig { webhook_interval: secs(3600), ..Options::default().engine }, ..Options::default() }).await;
    let (status, t) = app.post_json("/workspaces", &json!({"name": "Tenant", "key": {"name": "tenant-admin"}})).await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let (ws, key) = (dialtone_core::WorkspaceId::from_db(t["workspace"]["id"].as_str().unwrap().to_string()), t["key"]["key"].as_str().unwrap().to_string());
    let as_tenant = |method: Method, path: &str| app.http.request(method, app.url(&format!("/api/v1{path}"))).bearer_auth(&key);

    // The API refuses a local, private or metadata address from a tenant, naming `url`.
    for url in ["http://127.0.0.1:9/hook", "http://169.254.169.254/latest/meta-data", "http://localhost:8080/", "http://[::1]/x", "http://10.0.0.5/"] {
        let (status, body) = send(as_tenant(Method::POST, "/webhook-endpoints").json(&json!({"url": url, "events": ["campaign.started"]}))).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(body["error"]["details"]["field"], "url", "{url}: {body}");
    }
    let (status, ep) =
        send(as_tenant(Method::POST, "/webhook-endpoints").json(&json!({"url": "https://hooks.example.invalid/t", "events": ["campaign.started"]}))).await;
    assert_eq!(status, StatusCode::CREATED, "{ep}");
    let (status, body) =
        send(as_tenant(Method::PATCH, &format!("/webhook-endpoints/{}", ep["id"].as_str().unwrap())).json(&json!({"url": "http://192.168.1.1/"}))).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");

    // An endpoint that names a local address anyway (written before this rule, straight
    // into the store) gets nothing: the worker refuses the try and logs why.
    let (url, got) = receiver(StatusCode::NO_CONTENT).await;
    let new = dialtone_store::NewWebhookEndpoint { url, events: vec!["campaign.started".into()], enabled: true, description: None };
    let local = app.state.store.create_webhook_endpoint(&ws, &new, &"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(), jiff::Timestamp::now()).await.unwrap();
    let (status, cmp) =
        send(as_tenant(Method::POST, "/campaigns").json(&json!({"name": "t", "provider": "sim", "assistant_id": "a", "phone_number_id": PHONE_NUMBER_ID})))
            .await;
    assert_eq!(status, StatusCode::CREATED, "{cmp}");
    let cmp = cmp["id"].as_str().unwrap().to_string();
    let res = as_tenant(Method::POST, &format!("/campaigns/{cmp}/contacts")).header("content-type", "text/csv").body(contacts_csv(1)).send().await.unwrap();
    assert!(res.status().is_success());
    let (status, _) = send(as_tenant(Method::POST, &format!("/campaigns/{cmp}/start"))).await;
    assert!(status.is_success());
    let engine = Engine::new(app.state.store.clone(), HashMap::new(), Arc::new(dialtone_core::SystemClock), EngineConfig::default());
    let clients = dialtone_engine::outbox::client(std::time::Duration::from_secs(2));
    assert!(engine.deliver_webhooks(&clients).await.unwrap() >= 1);
    assert!(got.lock().unwrap().is_empty(), "the local receiver was never called");
    let (status, log) = send(as_tenant(Method::GET, &format!("/webhook-endpoints/{}/deliveries", local.id))).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let error = log["data"][0]["tries"][0]["error"].as_str().unwrap_or_default().to_string();
    assert!(error.starts_with("refused: 127.0.0.1 is not a public address"), "{log}");
}

/// A receiver that never answers holds at most `PER_ENDPOINT` of the worker's slots: another
/// endpoint gets every one of 150 messages (more than the worker's slots and than one claim)
/// while the stuck endpoint's first tries still wait for their 10 s timeout. Before, a pass
/// waited for all its tries, so the stuck endpoint set everyone's pace.
#[tokio::test]
async fn a_receiver_that_never_answers_does_not_hold_up_another_endpoint() {
    let app = TestApp::with(Options { engine: EngineConfig { webhook_interval: ms(50), ..Options::default().engine }, ..Options::default() }).await;
    let stuck_hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hits = stuck_hits.clone();
    let stuck = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            std::future::pending::<StatusCode>()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stuck_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, stuck).await.unwrap() });
    let (fast_url, got) = receiver(StatusCode::NO_CONTENT).await;
    create_endpoint(&app, &stuck_url, &["campaign.paused"]).await;
    create_endpoint(&app, &fast_url, &["campaign.paused"]).await;

    let ws = app.state.store.default_workspace().await.unwrap();
    let events: Vec<dialtone_store::OutboxEvent> =
        (0..150).map(|n| dialtone_store::OutboxEvent::new(ws.as_str(), "campaign.paused", json!({ "n": n }))).collect();
    let started = std::time::Instant::now();
    app.state.store.emit_events(&events, jiff::Timestamp::now()).await.unwrap();
    eventually(
        || async {
            let n = got.lock().unwrap().len();
            if n == 150 {
                Ok(())
            } else {
                Err(format!("the answering endpoint got {n} of 150"))
            }
        },
        secs(9),
    )
    .await;
    assert!(started.elapsed() < secs(10), "all before the stuck endpoint's first timeout");
    let stuck_tries = stuck_hits.load(std::sync::atomic::Ordering::Relaxed);
    assert!((1..=dialtone_engine::outbox::PER_ENDPOINT).contains(&stuck_tries), "the stuck endpoint holds {stuck_tries} tries");
}
