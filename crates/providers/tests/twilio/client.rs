use crate::fake::{canned, pairs, refused_base_url, serve, Canned, Seen};
use dialtone_core::{CallId, CallStatus, CampaignId, EventKind, Outcome, ProviderKind};
use dialtone_providers::twilio::{TwilioConfig, TwilioProvider};
use dialtone_providers::{ErrorClass, PlaceCall, Placed, Provider, ProviderError};
use secrecy::SecretString;
use serde_json::json;
use std::sync::{Arc, Mutex};

const SID: &str = "AC0123456789abcdef";
const TOKEN: &str = "twilio-auth-token";

fn config(base: &str) -> TwilioConfig {
    let mut c = TwilioConfig::new(SID, SecretString::from(TOKEN), "https://dialer.example.com");
    // A base with a path, like the real one: the version segment must survive.
    c.base_url = format!("{base}/2010-04-01");
    c.twiml_url = Some("https://dialer.example.com/twiml/agent".into());
    c
}

async fn fake_twilio(script: Vec<Canned>) -> (TwilioProvider, Arc<Mutex<Vec<Seen>>>) {
    let (base, seen) = serve(script).await;
    (TwilioProvider::new(config(&base)), seen)
}

fn a_call() -> PlaceCall {
    PlaceCall {
        call_id: CallId::new(),
        campaign_id: CampaignId::new(),
        assistant_id: String::new(),
        phone_number_id: "+15005550006".into(),
        customer_number: "+14155551234".into(),
        extension: None,
        customer_name: Some("Ana".into()),
        variables: Default::default(),
        media: None,
    }
}

async fn place_err(c: Canned) -> ProviderError {
    let (p, _) = fake_twilio(vec![c]).await;
    p.place_call(&a_call()).await.expect_err("should fail")
}

#[tokio::test]
async fn place_call_posts_the_documented_form_with_basic_auth() {
    let (p, seen) = fake_twilio(vec![canned(201, json!({"sid": "CA42", "status": "queued"}))]).await;
    assert_eq!(p.kind(), ProviderKind::Twilio);
    let call = a_call();
    assert_eq!(p.place_call(&call).await.unwrap(), Placed { provider_call_id: "CA42".into() });

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "one request, no retries");
    let req = &seen[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, format!("/2010-04-01/Accounts/{SID}/Calls.json"));
    assert_eq!(req.basic_auth().as_deref(), Some(format!("{SID}:{TOKEN}").as_str()));
    assert_eq!(req.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
    let callback = format!("https://dialer.example.com/webhooks/twilio?dialtone_call_id={}", call.call_id);
    assert_eq!(
        req.form(),
        pairs(&[
            ("To", "+14155551234"),
            ("From", "+15005550006"),
            ("Url", "https://dialer.example.com/twiml/agent"),
            ("StatusCallback", &callback),
            ("StatusCallbackMethod", "POST"),
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "completed"),
            ("Timeout", "30"),
        ])
    );
}

#[tokio::test]
async fn inline_twiml_and_machine_detection() {
    let (base, seen) = serve(vec![canned(201, json!({"sid": "CA42"}))]).await;
    let mut c = config(&base);
    c.twiml_url = None;
    c.twiml = Some("<Response><Connect><Stream url=\"wss://bot/ws\"/></Connect></Response>".into());
    c.machine_detection = true;
    c.ring_timeout_secs = 25;
    let call = a_call();
    TwilioProvider::new(c).place_call(&call).await.unwrap();

    let form = seen.lock().unwrap()[0].form();
    let get = |k: &str| form.iter().filter(|(n, _)| n == k).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
    assert_eq!(get("Twiml"), ["<Response><Connect><Stream url=\"wss://bot/ws\"/></Connect></Response>"]);
    assert!(get("Url").is_empty());
    assert_eq!(get("Timeout"), ["25"]);
    assert_eq!(get("MachineDetection"), ["Enable"]);
    assert_eq!(get("AsyncAmd"), ["true"]);
    let callback = format!("https://dialer.example.com/webhooks/twilio?dialtone_call_id={}", call.call_id);
    assert_eq!(get("AsyncAmdStatusCallback"), [callback.as_str()]);
}

#[tokio::test]
async fn without_twiml_nothing_is_sent_and_the_error_is_final() {
    let (base, seen) = serve(vec![canned(201, json!({"sid": "CA42"}))]).await;
    let mut c = config(&base);
    c.twiml_url = None;
    let e = TwilioProvider::new(c).place_call(&a_call()).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Final);
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn too_many_requests_20429_is_retryable_and_concurrency_limited() {
    let mut c = canned(429, json!({"code": 20429, "message": "Too Many Requests", "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429}));
    c.headers.push(("retry-after", "1"));
    let e = place_err(c).await;
    assert_eq!(e.class, ErrorClass::Retryable);
    assert!(e.concurrency_limited);
    assert_eq!(e.status, Some(429));
    assert_eq!(e.message, "twilio 429 (20429): Too Many Requests");
    assert_eq!(e.retry_after, Some(std::time::Duration::from_secs(1)));
}

#[tokio::test]
async fn invalid_number_is_final_with_twilios_reason() {
    let e = place_err(canned(400, json!({"code": 21211, "message": "Invalid 'To' Phone Number: +1415555", "status": 400}))).await;
    assert_eq!(e.class, ErrorClass::Final);
    assert!(!e.concurrency_limited);
    assert_eq!(e.message, "twilio 400 (21211): Invalid 'To' Phone Number: +1415555");
}

#[tokio::test]
async fn auth_failure_is_final() {
    let e = place_err(canned(401, json!({"code": 20003, "message": "Authenticate", "status": 401}))).await;
    assert_eq!(e.class, ErrorClass::Final);
    assert_eq!(e.message, "twilio 401 (20003): Authenticate");
}

#[tokio::test]
async fn unavailable_is_retryable() {
    let e = place_err(Canned { status: 503, headers: vec![], body: "Service Unavailable".into() }).await;
    assert_eq!(e.class, ErrorClass::Retryable);
    assert!(!e.concurrency_limited);
    assert_eq!(e.message, "twilio 503: Service Unavailable");
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    let p = TwilioProvider::new(config(&refused_base_url()));
    let e = p.place_call(&a_call()).await.expect_err("nobody listens");
    assert_eq!(e.class, ErrorClass::Retryable);
    assert_eq!(e.status, None);
    assert!(e.message.starts_with("twilio connection failed"), "{}", e.message);
}

#[tokio::test]
async fn accepted_without_a_sid_is_final_so_nobody_is_dialled_twice() {
    let e = place_err(canned(201, json!({"status": "queued"}))).await;
    assert_eq!(e.class, ErrorClass::Final);
}

#[tokio::test]
async fn get_call_reads_the_call_resource() {
    let (p, seen) = fake_twilio(vec![canned(
        200,
        json!({
            "sid": "CA42", "status": "no-answer", "duration": "0", "answered_by": null,
            "end_time": "Tue, 31 Aug 2010 20:36:44 +0000"
        }),
    )])
    .await;
    let rc = p.get_call("CA42").await.unwrap();
    assert_eq!(rc.provider_call_id, "CA42");
    assert_eq!(rc.call_id, None, "Twilio does not echo our id");
    assert_eq!(rc.event.kind, EventKind::Ended { outcome: Outcome::NoAnswer, reason: Some("no-answer".into()) });
    assert_eq!(rc.event.dedupe_key, "reconcile:twilio:CA42:no-answer");
    assert_eq!(rc.event.provider_call_id.as_deref(), Some("CA42"));

    let seen = seen.lock().unwrap();
    assert_eq!((seen[0].method.as_str(), seen[0].path.as_str()), ("GET", format!("/2010-04-01/Accounts/{SID}/Calls/CA42.json").as_str()));
    assert_eq!(seen[0].basic_auth().as_deref(), Some(format!("{SID}:{TOKEN}").as_str()));
}

#[tokio::test]
async fn get_call_in_progress_is_progress() {
    let (p, _) = fake_twilio(vec![canned(200, json!({"sid": "CA42", "status": "in-progress"}))]).await;
    let rc = p.get_call("CA42").await.unwrap();
    assert_eq!(rc.event.kind, EventKind::Progress(CallStatus::InProgress));
    assert_eq!(rc.event.dedupe_key, "reconcile:twilio:CA42:in-progress");
}

#[tokio::test]
async fn get_call_not_found_is_final() {
    let (p, _) = fake_twilio(vec![canned(404, json!({"code": 20404, "message": "The requested resource was not found", "status": 404}))]).await;
    let e = p.get_call("CAnope").await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Final);
    assert_eq!(e.message, "twilio 404 (20404): The requested resource was not found");
}

#[tokio::test]
async fn find_call_is_refused_so_the_reaper_does_not_redial() {
    let (p, seen) = fake_twilio(vec![canned(200, json!({}))]).await;
    let e = p.find_call(&CallId::new(), jiff::Timestamp::now()).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Final);
    assert_eq!(e.message, "twilio cannot find a call by dialtone id");
    assert!(seen.lock().unwrap().is_empty());
}

async fn hang_up_with_status(current: &str) -> (Result<(), ProviderError>, Vec<Seen>) {
    let (p, seen) = fake_twilio(vec![canned(200, json!({"sid": "CA42", "status": current})), canned(200, json!({"sid": "CA42", "status": "completed"}))]).await;
    let r = p.hang_up("CA42").await;
    let seen = seen.lock().unwrap().clone();
    (r, seen)
}

#[tokio::test]
async fn hang_up_completes_an_answered_call() {
    let (r, seen) = hang_up_with_status("in-progress").await;
    r.unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!((seen[0].method.as_str(), seen[1].method.as_str()), ("GET", "POST"));
    assert_eq!(seen[1].path, format!("/2010-04-01/Accounts/{SID}/Calls/CA42.json"));
    assert_eq!(seen[1].form(), pairs(&[("Status", "completed")]));
    assert_eq!(seen[1].basic_auth().as_deref(), Some(format!("{SID}:{TOKEN}").as_str()));
}

#[tokio::test]
async fn hang_up_cancels_a_call_not_yet_answered() {
    for current in ["queued", "ringing"] {
        let (r, seen) = hang_up_with_status(current).await;
        r.unwrap();
        assert_eq!(seen[1].form(), pairs(&[("Status", "canceled")]), "{current}");
    }
}

#[tokio::test]
async fn hang_up_of_an_ended_call_is_final_and_sends_nothing() {
    let (r, seen) = hang_up_with_status("busy").await;
    let e = r.unwrap_err();
    assert_eq!(e.class, ErrorClass::Final);
    assert!(e.message.contains("already ended"), "{}", e.message);
    assert_eq!(seen.len(), 1, "only the GET");
}

#[tokio::test]
async fn an_extension_is_sent_as_send_digits_after_a_pause() {
    let (p, seen) = fake_twilio(vec![canned(201, json!({"sid": "CA43", "status": "queued"}))]).await;
    let call = PlaceCall { extension: Some(dialtone_core::Extension::parse("22").unwrap().unwrap()), ..a_call() };
    p.place_call(&call).await.unwrap();
    let form = seen.lock().unwrap()[0].form();
    let digits: Vec<&(String, String)> = form.iter().filter(|(k, _)| k == "SendDigits").collect();
    assert_eq!(digits, [&("SendDigits".to_string(), "wwww22".to_string())]);
    // Without an extension nothing is pressed.
    let (p, seen) = fake_twilio(vec![canned(201, json!({"sid": "CA44", "status": "queued"}))]).await;
    p.place_call(&a_call()).await.unwrap();
    assert!(!seen.lock().unwrap()[0].form().iter().any(|(k, _)| k == "SendDigits"));
}
