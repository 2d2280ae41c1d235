use crate::fake::{canned, pairs, refused_base_url, serve, Canned, Seen};
use dialtone_core::{CallId, CampaignId, EventKind, Outcome, ProviderKind};
use dialtone_providers::exotel::{ExotelConfig, ExotelProvider};
use dialtone_providers::{ErrorClass, PlaceCall, Placed, Provider, ProviderError};
use secrecy::SecretString;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SID: &str = "acme1";
const KEY: &str = "exo-api-key";
const TOKEN: &str = "exo-api-token";
const CALLBACK_TOKEN: &str = "cb_9f8e7d6c5b4a";

fn config(base: &str) -> ExotelConfig {
    let mut c = ExotelConfig::new(SID, KEY, SecretString::from(TOKEN), "https://dialer.example.com", SecretString::from(CALLBACK_TOKEN));
    c.base_url = base.to_string();
    c.stream_url = Some("wss://bot.example.com/exotel".into());
    c
}

async fn fake_exotel(script: Vec<Canned>) -> (ExotelProvider, Arc<Mutex<Vec<Seen>>>) {
    let (base, seen) = serve(script).await;
    (ExotelProvider::new(config(&base)), seen)
}

fn a_call() -> PlaceCall {
    PlaceCall {
        call_id: CallId::new(),
        campaign_id: CampaignId::new(),
        assistant_id: String::new(),
        phone_number_id: "08047112233".into(),
        customer_number: "+919876543210".into(),
        extension: None,
        customer_name: None,
        variables: Default::default(),
        media: None,
    }
}

async fn place_err(c: Canned) -> ProviderError {
    let (p, _) = fake_exotel(vec![c]).await;
    p.place_call(&a_call()).await.expect_err("should fail")
}

fn connect_ok() -> Canned {
    canned(200, json!({"Call": {"Sid": "80bf3a", "Status": "in-progress", "Direction": "outbound-api", "RecordingUrl": null}}))
}

#[tokio::test]
async fn place_call_posts_the_documented_form_with_basic_auth() {
    let (p, seen) = fake_exotel(vec![connect_ok()]).await;
    assert_eq!(p.kind(), ProviderKind::Exotel);
    let call = a_call();
    assert_eq!(p.place_call(&call).await.unwrap(), Placed { provider_call_id: "80bf3a".into() });

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "one request, no retries");
    let req = &seen[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, format!("/v1/Accounts/{SID}/Calls/connect.json"));
    assert_eq!(req.basic_auth().as_deref(), Some(format!("{KEY}:{TOKEN}").as_str()));
    assert_eq!(req.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
    let callback = format!("https://dialer.example.com/webhooks/exotel/{CALLBACK_TOKEN}");
    assert_eq!(
        req.form(),
        pairs(&[
            ("From", "+919876543210"),
            ("CallerId", "08047112233"),
            ("StreamUrl", "wss://bot.example.com/exotel"),
            ("StreamType", "bidirectional"),
            ("CustomField", call.call_id.as_str()),
            ("StatusCallback", &callback),
            ("StatusCallbackEvents[0]", "terminal"),
            ("StatusCallbackEvents[1]", "answered"),
            ("StatusCallbackContentType", "application/json"),
        ])
    );
}

#[tokio::test]
async fn a_flow_url_is_sent_as_url() {
    let (base, seen) = serve(vec![connect_ok()]).await;
    let mut c = config(&base);
    c.flow_url = Some("http://my.exotel.com/acme1/exoml/start_voice/12345".into());
    c.stream_url = None;
    ExotelProvider::new(c).place_call(&a_call()).await.unwrap();
    let form = seen.lock().unwrap()[0].form();
    assert_eq!(form[2], ("Url".to_string(), "http://my.exotel.com/acme1/exoml/start_voice/12345".to_string()));
    assert!(!form.iter().any(|(k, _)| k == "StreamUrl" || k == "StreamType"));
}

#[tokio::test]
async fn without_flow_or_stream_nothing_is_sent_and_the_error_is_final() {
    let (base, seen) = serve(vec![connect_ok()]).await;
    let mut c = config(&base);
    c.stream_url = None;
    let e = ExotelProvider::new(c).place_call(&a_call()).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Final);
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn rest_exception_400_is_final_with_exotels_reason() {
    let e = place_err(canned(400, json!({"RestException": {"Status": 400, "Message": "From number is not valid", "Code": 34001}}))).await;
    assert_eq!(e.class, ErrorClass::Final);
    assert_eq!(e.status, Some(400));
    assert_eq!(e.message, "exotel 400 (34001): From number is not valid");
}

#[tokio::test]
async fn rate_limited_is_retryable_after_the_given_seconds() {
    let mut c = canned(429, json!({"RestException": {"Status": 429, "Message": "Too many requests"}}));
    c.headers.push(("retry-after", "7"));
    let e = place_err(c).await;
    assert_eq!(e.class, ErrorClass::Retryable);
    assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(e.message, "exotel 429: Too many requests");
}

#[tokio::test]
async fn unavailable_is_retryable() {
    let e = place_err(Canned { status: 503, headers: vec![], body: "Service Temporarily Unavailable".into() }).await;
    assert_eq!(e.class, ErrorClass::Retryable);
    assert_eq!(e.message, "exotel 503: Service Temporarily Unavailable");
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    let p = ExotelProvider::new(config(&refused_base_url()));
    let e = p.place_call(&a_call()).await.expect_err("nobody listens");
    assert_eq!(e.class, ErrorClass::Retryable);
    assert_eq!(e.status, None);
    assert!(e.message.starts_with("exotel connection failed"), "{}", e.message);
}

#[tokio::test]
async fn accepted_without_a_sid_is_final_so_nobody_is_dialled_twice() {
    let e = place_err(canned(200, json!({"Call": {"Status": "in-progress"}}))).await;
    assert_eq!(e.class, ErrorClass::Final);
}

#[tokio::test]
async fn get_call_reads_the_call_resource() {
    let (p, seen) = fake_exotel(vec![canned(
        200,
        json!({"Call": {
            "Sid": "80bf3a", "Status": "busy", "DateCreated": "2017-03-03 12:30:24", "Duration": "0"
        }}),
    )])
    .await;
    let rc = p.get_call("80bf3a").await.unwrap();
    assert_eq!(rc.provider_call_id, "80bf3a");
    assert_eq!(rc.event.kind, EventKind::Ended { outcome: Outcome::Busy, reason: Some("busy".into()) });
    assert_eq!(rc.event.dedupe_key, "reconcile:exotel:80bf3a:busy");

    let seen = seen.lock().unwrap();
    assert_eq!((seen[0].method.as_str(), seen[0].path.as_str()), ("GET", format!("/v1/Accounts/{SID}/Calls/80bf3a.json").as_str()));
    assert_eq!(seen[0].basic_auth().as_deref(), Some(format!("{KEY}:{TOKEN}").as_str()));
}

#[tokio::test]
async fn find_call_and_hang_up_are_refused_without_a_request() {
    let (p, seen) = fake_exotel(vec![connect_ok()]).await;
    let e = p.find_call(&CallId::new(), jiff::Timestamp::now()).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Final);
    assert_eq!(e.message, "exotel cannot find a call by dialtone id");
    let e = p.hang_up("80bf3a").await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Final);
    assert!(e.message.contains("hang up"), "{}", e.message);
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_extension_is_refused_not_dropped_since_exotel_cannot_dial_one() {
    let (p, seen) = fake_exotel(vec![connect_ok()]).await;
    let call = PlaceCall { extension: Some(dialtone_core::Extension::parse("22").unwrap().unwrap()), ..a_call() };
    let e = p.place_call(&call).await.expect_err("placed without its extension");
    assert_eq!(e.class, ErrorClass::Final);
    assert!(e.message.contains("extension"), "{e}");
    assert!(seen.lock().unwrap().is_empty(), "nothing may be sent");
}
