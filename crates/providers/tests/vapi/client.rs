use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::IntoResponse,
    Router,
};
use dialtone_core::{CallId, CallStatus, CampaignId, EventKind, Outcome, ProviderKind};
use dialtone_providers::vapi::{VapiConfig, VapiProvider};
use dialtone_providers::{ErrorClass, PlaceCall, Placed, Provider, ProviderError};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const API_KEY: &str = "vapi-private-key";

/// What the fake Vapi answers, every time.
#[derive(Clone)]
struct Canned {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: String,
    delay: Duration,
}

fn canned(status: u16, body: Value) -> Canned {
    Canned { status, headers: vec![], body: body.to_string(), delay: Duration::ZERO }
}

#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: Option<String>,
    authorization: Option<String>,
    body: Option<Value>,
}

#[derive(Clone)]
struct Fake {
    canned: Canned,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn answer(State(fake): State<Fake>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    fake.seen.lock().unwrap().push(Seen {
        method,
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        authorization: headers.get("authorization").map(|v| v.to_str().unwrap().to_string()),
        body: serde_json::from_slice(&body).ok(),
    });
    tokio::time::sleep(fake.canned.delay).await;
    let mut out = HeaderMap::new();
    out.insert("content-type", "application/json".parse().unwrap());
    for (k, v) in &fake.canned.headers {
        out.insert(*k, v.parse().unwrap());
    }
    (StatusCode::from_u16(fake.canned.status).unwrap(), out, fake.canned.body.clone())
}

/// A fake Vapi on 127.0.0.1:0: its base URL and what it has seen.
async fn serve(canned: Canned) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new().fallback(answer).with_state(Fake { canned, seen: seen.clone() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

async fn fake_vapi(canned: Canned) -> (VapiProvider, Arc<Mutex<Vec<Seen>>>) {
    let (base, seen) = serve(canned).await;
    (provider(base, Duration::from_secs(5)), seen)
}

fn provider(base_url: String, request_timeout: Duration) -> VapiProvider {
    VapiProvider::new(VapiConfig {
        base_url,
        api_key: SecretString::from(API_KEY),
        request_timeout,
        webhook_secret: None,
        webhook_hmac: None,
        kind: ProviderKind::Sim,
    })
}

fn a_call() -> PlaceCall {
    PlaceCall {
        call_id: CallId::new(),
        campaign_id: CampaignId::new(),
        assistant_id: "asst_123".into(),
        phone_number_id: "pn_456".into(),
        customer_number: "+14155551234".into(),
        extension: None,
        customer_name: Some("Ana".into()),
        variables: json!({"plan": "gold"}).as_object().unwrap().clone(),
        media: None,
    }
}

async fn place_err(c: Canned) -> ProviderError {
    let (p, _) = fake_vapi(c).await;
    p.place_call(&a_call()).await.expect_err("should fail")
}

#[tokio::test]
async fn place_call_sends_exactly_the_documented_body_with_bearer_auth() {
    let (p, seen) = fake_vapi(canned(201, json!({"id": "019a-call", "status": "queued"}))).await;
    let call = a_call();
    let placed = p.place_call(&call).await.unwrap();
    assert_eq!(placed, Placed { provider_call_id: "019a-call".into() });

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "one request, no retries");
    let req = &seen[0];
    assert_eq!(req.method, Method::POST);
    assert_eq!(req.path, "/call");
    assert_eq!(req.authorization.as_deref(), Some(format!("Bearer {API_KEY}").as_str()));
    assert_eq!(
        req.body.as_ref().unwrap(),
        &json!({
            "assistantId": "asst_123",
            "phoneNumberId": "pn_456",
            "customer": {"number": "+14155551234", "name": "Ana"},
            "assistantOverrides": {
                "variableValues": {"name": "Ana", "plan": "gold"},
                "metadata": {"dialtoneCallId": call.call_id.as_str(), "campaignId": call.campaign_id.as_str()}
            }
        })
    );
}

#[tokio::test]
async fn rate_limited_is_retryable_after_the_given_seconds() {
    let mut c = canned(429, json!({"message": "Too Many Requests"}));
    c.headers.push(("retry-after", "2"));
    let e = place_err(c).await;
    assert_eq!(e.class, ErrorClass::Retryable);
    assert_eq!(e.status, Some(429));
    assert_eq!(e.retry_after, Some(Duration::from_secs(2)));
}

#[tokio::test]
async fn validation_error_is_final_with_vapis_reason() {
    let e = place_err(canned(400, json!({"message": ["assistantId must be a string"], "error": "Bad Request", "statusCode": 400}))).await;
    assert_eq!(e.class, ErrorClass::Final);
    assert_eq!(e.message, "vapi 400: assistantId must be a string");
    assert!(!e.concurrency_limited);
}

#[tokio::test]
async fn auth_error_is_final() {
    let e = place_err(canned(401, json!({"message": "Invalid Key. Hot tip, you may be using the public key instead of the private key."}))).await;
    assert_eq!(e.class, ErrorClass::Final);
    assert!(e.message.starts_with("vapi 401: Invalid Key"), "{}", e.message);
}

#[tokio::test]
async fn unavailable_is_retryable() {
    let e = place_err(Canned { status: 503, headers: vec![], body: "upstream down".into(), delay: Duration::ZERO }).await;
    assert_eq!(e.class, ErrorClass::Retryable);
    assert_eq!(e.message, "vapi 503: upstream down");
}

#[tokio::test]
async fn concurrency_limit_is_retryable_and_flagged() {
    let e = place_err(canned(400, json!({"message": "call.start.error-subscription-concurrency-limit-reached"}))).await;
    assert_eq!(e.class, ErrorClass::Retryable);
    assert!(e.concurrency_limited);
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    // Bind and drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let p = provider(format!("http://127.0.0.1:{port}"), Duration::from_secs(5));
    let e = p.place_call(&a_call()).await.expect_err("nobody listens");
    assert_eq!(e.class, ErrorClass::Retryable);
    assert_eq!(e.status, None);
}

#[tokio::test]
async fn slow_provider_times_out_as_retryable() {
    let (base, _) = serve(Canned { delay: Duration::from_secs(3), ..canned(201, json!({"id": "late"})) }).await;
    let p = provider(base, Duration::from_millis(200));
    let started = Instant::now();
    let e = p.place_call(&a_call()).await.expect_err("times out");
    assert_eq!(e.class, ErrorClass::Retryable);
    assert!(e.message.contains("timed out"), "{}", e.message);
    assert!(started.elapsed() < Duration::from_secs(2), "gave up at the timeout, not at the answer");
}

#[tokio::test]
async fn get_call_maps_an_ended_call_to_its_outcome() {
    let id = CallId::new();
    let (p, seen) = fake_vapi(canned(
        200,
        json!({
            "id": "019a", "orgId": "org", "type": "outboundPhoneCall", "status": "ended",
            "createdAt": "2026-01-01T10:00:00.000Z", "startedAt": "2026-01-01T10:00:01.000Z",
            "endedAt": "2026-01-01T10:00:31.000Z", "endedReason": "customer-did-not-answer", "cost": 0.01,
            "customer": {"number": "+14155551234"},
            "assistantOverrides": {"metadata": {"dialtoneCallId": id.as_str(), "campaignId": "cmp_x"}}
        }),
    ))
    .await;
    let rc = p.get_call("019a").await.unwrap();
    assert_eq!(rc.provider_call_id, "019a");
    assert_eq!(rc.call_id, Some(id.clone()));
    assert_eq!(rc.event.call_id, Some(id));
    assert_eq!(rc.event.kind, EventKind::Ended { outcome: Outcome::NoAnswer, reason: Some("customer-did-not-answer".into()) });
    assert_eq!(rc.event.dedupe_key, "reconcile:vapi:019a:ended:customer-did-not-answer");
    assert_eq!(rc.event.duration_ms, Some(30_000));
    assert_eq!(rc.event.cost, Some(0.01));
    assert_eq!(rc.event.raw.value().unwrap()["id"], "019a");

    let seen = seen.lock().unwrap();
    assert_eq!((seen[0].method.clone(), seen[0].path.as_str()), (Method::GET, "/call/019a"));
    assert_eq!(seen[0].authorization.as_deref(), Some(format!("Bearer {API_KEY}").as_str()));
}

#[tokio::test]
async fn get_call_of_a_live_call_is_progress() {
    let (p, _) = fake_vapi(canned(200, json!({"id": "019a", "status": "in-progress"}))).await;
    let rc = p.get_call("019a").await.unwrap();
    assert_eq!(rc.event.kind, EventKind::Progress(CallStatus::InProgress));
    assert_eq!(rc.event.dedupe_key, "reconcile:vapi:019a:in-progress");
    assert_eq!(rc.call_id, None);
}

#[tokio::test]
async fn get_call_not_found_is_final() {
    let (p, _) = fake_vapi(canned(404, json!({"message": "Not Found"}))).await;
    let e = p.get_call("nope").await.expect_err("404");
    assert_eq!(e.class, ErrorClass::Final);
    assert_eq!(e.message, "vapi 404: Not Found");
}

#[tokio::test]
async fn find_call_looks_through_calls_since_for_our_id() {
    let ours = CallId::new();
    let since: jiff::Timestamp = "2026-01-01T10:00:00Z".parse().unwrap();
    let (p, seen) = fake_vapi(canned(
        200,
        json!([
            {"id": "other", "status": "ended", "endedReason": "voicemail",
             "assistantOverrides": {"metadata": {"dialtoneCallId": CallId::new().as_str()}}},
            {"id": "mine", "status": "ringing", "assistantOverrides": {"metadata": {"dialtoneCallId": ours.as_str()}}},
        ]),
    ))
    .await;
    let found = p.find_call(&ours, since).await.unwrap().expect("found");
    assert_eq!(found.provider_call_id, "mine");
    assert_eq!(found.event.kind, EventKind::Progress(CallStatus::Ringing));
    assert_eq!(p.find_call(&CallId::new(), since).await.unwrap().map(|r| r.provider_call_id), None);

    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].path, "/call");
    assert_eq!(seen[0].query.as_deref(), Some("createdAtGe=2026-01-01T10%3A00%3A00Z&limit=1000"));
}

// ---- hang-up (Live Call Control) ----

/// A fake Vapi whose `GET /call/{id}` answers with `call` (the string `{base}` replaced
/// by its own URL), and whose `/control/...` records what it gets and answers `control_status`.
async fn fake_with_control(call: Value, control_status: u16) -> (VapiProvider, Arc<Mutex<Vec<Seen>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let call_body = call.to_string().replace("{base}", &base);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = seen.clone();
    let app = Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let seen = recorder.clone();
        let call_body = call_body.clone();
        async move {
            seen.lock().unwrap().push(Seen {
                method: method.clone(),
                path: uri.path().to_string(),
                query: uri.query().map(str::to_string),
                authorization: headers.get("authorization").map(|v| v.to_str().unwrap().to_string()),
                body: serde_json::from_slice(&body).ok(),
            });
            if uri.path().starts_with("/control/") {
                (StatusCode::from_u16(control_status).unwrap(), r#"{"message":"control says no"}"#.to_string())
            } else {
                (StatusCode::OK, call_body)
            }
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (provider(base, Duration::from_secs(5)), seen)
}

#[tokio::test]
async fn hang_up_posts_end_call_to_the_control_url_without_our_key() {
    let (p, seen) =
        fake_with_control(json!({"id": "019a", "status": "in-progress", "monitor": {"listenUrl": "wss://x", "controlUrl": "{base}/control/019a-secret"}}), 200)
            .await;
    p.hang_up("019a").await.unwrap();

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!((seen[0].method.clone(), seen[0].path.as_str()), (Method::GET, "/call/019a"));
    assert_eq!(seen[0].authorization.as_deref(), Some(format!("Bearer {API_KEY}").as_str()));
    assert_eq!((seen[1].method.clone(), seen[1].path.as_str()), (Method::POST, "/control/019a-secret"));
    assert_eq!(seen[1].body, Some(json!({"type": "end-call"})));
    assert_eq!(seen[1].authorization, None, "the API key is not sent to the control URL");
}

#[tokio::test]
async fn hang_up_without_a_control_url_is_final_and_says_why() {
    let (p, seen) = fake_with_control(json!({"id": "019a", "status": "ringing", "monitor": {}}), 200).await;
    let e = p.hang_up("019a").await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Final);
    assert!(e.message.contains("monitor.controlUrl"), "{}", e.message);
    assert_eq!(seen.lock().unwrap().len(), 1, "nothing posted");

    let (p, _) = fake_with_control(json!({"id": "019a", "status": "ringing"}), 200).await;
    assert_eq!(p.hang_up("019a").await.unwrap_err().class, ErrorClass::Final);
}

#[tokio::test]
async fn hang_up_of_an_ended_call_is_final() {
    let (p, seen) = fake_with_control(json!({"id": "019a", "status": "ended", "monitor": {"controlUrl": "{base}/control/x"}}), 200).await;
    let e = p.hang_up("019a").await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Final);
    assert!(e.message.contains("already ended"), "{}", e.message);
    assert_eq!(seen.lock().unwrap().len(), 1, "nothing posted");
}

#[tokio::test]
async fn hang_up_refused_by_the_control_url_is_classified() {
    let call = json!({"id": "019a", "status": "in-progress", "monitor": {"controlUrl": "{base}/control/x"}});
    let (p, _) = fake_with_control(call.clone(), 503).await;
    assert_eq!(p.hang_up("019a").await.unwrap_err().class, ErrorClass::Retryable);
    let (p, _) = fake_with_control(call, 404).await;
    let e = p.hang_up("019a").await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Final);
    assert_eq!(e.message, "vapi 404: control says no");
}

#[tokio::test]
async fn hang_up_of_an_unknown_call_is_final() {
    let (p, _) = fake_vapi(canned(404, json!({"message": "Not Found"}))).await;
    let e = p.hang_up("nope").await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Final);
    assert_eq!(e.message, "vapi 404: Not Found");
}

#[tokio::test]
async fn an_extension_is_sent_as_customer_extension() {
    let (p, seen) = fake_vapi(canned(201, json!({"id": "019a-call", "status": "queued"}))).await;
    let call = PlaceCall { extension: Some(dialtone_core::Extension::parse("ext. 22").unwrap().unwrap()), ..a_call() };
    p.place_call(&call).await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].body.as_ref().unwrap()["customer"], json!({"number": "+14155551234", "name": "Ana", "extension": "22"}));
}
