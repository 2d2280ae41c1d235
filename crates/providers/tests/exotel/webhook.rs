use dialtone_core::{CallId, CallStatus, EventKind, Outcome, ProviderEvent};
use dialtone_providers::exotel::{ExotelConfig, ExotelProvider, PEER_IP_HEADER};
use dialtone_providers::{Provider, WebhookError, WebhookRequest};
use http::HeaderMap;
use secrecy::SecretString;
use serde_json::json;
use std::net::IpAddr;

const CALLBACK_TOKEN: &str = "cb_9f8e7d6c5b4a";

fn provider(allow: &[&str]) -> ExotelProvider {
    let mut c = ExotelConfig::new("acme1", "key", SecretString::from("tok"), "https://dialer.example.com", SecretString::from(CALLBACK_TOKEN));
    c.ip_allowlist = allow.iter().map(|ip| ip.parse::<IpAddr>().unwrap()).collect();
    ExotelProvider::new(c)
}

fn verify(p: &ExotelProvider, url: &str, peer: Option<&str>) -> Result<(), WebhookError> {
    let mut h = HeaderMap::new();
    if let Some(ip) = peer {
        h.insert(PEER_IP_HEADER, ip.parse().unwrap());
    }
    p.verify_webhook(&WebhookRequest { headers: &h, body: b"{}", url }, jiff::Timestamp::now())
}

fn is_unauthorized(r: Result<(), WebhookError>) -> bool {
    matches!(r, Err(WebhookError::Unauthorized(_)))
}

// ---- token and allow-list ----

#[test]
fn the_right_token_in_the_path_is_accepted() {
    let p = provider(&[]);
    assert_eq!(verify(&p, &format!("/webhooks/exotel/{CALLBACK_TOKEN}"), None), Ok(()));
    assert_eq!(verify(&p, &format!("https://dialer.example.com/webhooks/exotel/{CALLBACK_TOKEN}?x=1"), None), Ok(()));
}

#[test]
fn a_wrong_or_missing_token_is_refused() {
    let p = provider(&[]);
    assert!(is_unauthorized(verify(&p, "/webhooks/exotel/cb_9f8e7d6c5b4b", None)));
    assert!(is_unauthorized(verify(&p, &format!("/webhooks/exotel/{CALLBACK_TOKEN}x"), None)));
    assert!(is_unauthorized(verify(&p, "/webhooks/exotel/cb_9f8e", None)), "a prefix is not the token");
    assert!(is_unauthorized(verify(&p, "/webhooks/exotel", None)));
    assert!(is_unauthorized(verify(&p, "/webhooks/exotel/", None)));
    assert!(is_unauthorized(verify(&p, &format!("/webhooks/exotel?token={CALLBACK_TOKEN}"), None)), "only the path counts");
}

#[test]
fn an_empty_configured_token_refuses_everything() {
    let c = ExotelConfig::new("a", "k", SecretString::from("t"), "https://d", SecretString::from(""));
    let p = ExotelProvider::new(c);
    assert!(is_unauthorized(verify(&p, "/webhooks/exotel/", None)));
}

#[test]
fn the_allow_list_admits_only_listed_callers() {
    let p = provider(&["203.0.113.7", "2001:db8::1"]);
    let url = format!("/webhooks/exotel/{CALLBACK_TOKEN}");
    assert_eq!(verify(&p, &url, Some("203.0.113.7")), Ok(()));
    assert_eq!(verify(&p, &url, Some("2001:db8::1")), Ok(()));
    assert_eq!(verify(&p, &url, Some("::ffff:203.0.113.7")), Ok(()), "IPv4 seen through a dual-stack socket");
    assert!(is_unauthorized(verify(&p, &url, Some("198.51.100.9"))));
    assert!(is_unauthorized(verify(&p, &url, None)), "no peer address, no entry");
    assert!(is_unauthorized(verify(&p, &url, Some("not-an-ip"))));
    // The allow-list adds to the token; it does not replace it.
    assert!(is_unauthorized(verify(&p, "/webhooks/exotel/wrong", Some("203.0.113.7"))));
}

// ---- parsing ----

fn parse_with(body: &[u8]) -> Result<ProviderEvent, WebhookError> {
    let h = HeaderMap::new();
    let url = format!("/webhooks/exotel/{CALLBACK_TOKEN}");
    let mut parsed = provider(&[]).parse_webhook(&WebhookRequest { headers: &h, body, url: &url })?;
    assert_eq!(parsed.events.len(), 1);
    assert!(parsed.reply.is_none());
    Ok(parsed.events.remove(0))
}

fn parse(body: serde_json::Value) -> Result<ProviderEvent, WebhookError> {
    parse_with(&serde_json::to_vec(&body).unwrap())
}

#[test]
fn terminal_statuses_map_to_outcomes() {
    let id = CallId::new();
    for (status, outcome) in [("completed", Outcome::Completed), ("failed", Outcome::Failed), ("busy", Outcome::Busy), ("no-answer", Outcome::NoAnswer)] {
        let ev = parse(json!({"CallSid": "80bf", "EventType": "terminal", "Status": status, "CustomField": id.as_str(),
            "DateUpdated": "2026-01-01 10:00:40", "ConversationDuration": 35}))
        .unwrap();
        assert_eq!(ev.kind, EventKind::Ended { outcome, reason: Some(status.into()) }, "{status}");
        assert_eq!(ev.dedupe_key, format!("exotel:80bf:terminal:{status}"));
        assert_eq!(ev.call_id, Some(id.clone()));
        assert_eq!(ev.provider_call_id.as_deref(), Some("80bf"));
        assert_eq!(ev.duration_ms, Some(35_000));
        assert_eq!(ev.raw.value().unwrap()["DateUpdated"], "2026-01-01 10:00:40");
    }
}

#[test]
fn answered_is_in_progress() {
    let ev = parse(json!({"CallSid": "80bf", "EventType": "answered", "Status": "in-progress", "CustomField": CallId::new().as_str()})).unwrap();
    assert_eq!(ev.kind, EventKind::Progress(CallStatus::InProgress));
    assert_eq!(ev.dedupe_key, "exotel:80bf:answered:in-progress");
    assert_eq!(ev.provider_type, "answered");
}

#[test]
fn without_event_type_it_is_terminal_and_durations_may_be_text() {
    let ev = parse(json!({"CallSid": "80bf", "Status": "completed", "ConversationDuration": "12"})).unwrap();
    assert!(matches!(ev.kind, EventKind::Ended { outcome: Outcome::Completed, .. }));
    assert_eq!(ev.dedupe_key, "exotel:80bf:terminal:completed");
    assert_eq!(ev.duration_ms, Some(12_000));
    assert_eq!(ev.call_id, None);
}

#[test]
fn a_form_body_is_accepted_too() {
    let id = CallId::new();
    let body = format!("CallSid=80bf&Status=no-answer&CustomField={id}&EventType=terminal");
    let ev = parse_with(body.as_bytes()).unwrap();
    assert_eq!(ev.kind, EventKind::Ended { outcome: Outcome::NoAnswer, reason: Some("no-answer".into()) });
    assert_eq!(ev.call_id, Some(id));
    assert_eq!(ev.raw.value().unwrap()["Status"], "no-answer");
}

#[test]
fn an_unknown_status_is_info() {
    let ev = parse(json!({"CallSid": "80bf", "EventType": "terminal", "Status": "evaporated"})).unwrap();
    assert_eq!(ev.kind, EventKind::Info);
    assert_eq!(ev.dedupe_key, "exotel:80bf:terminal:evaporated");
}

#[test]
fn without_call_sid_it_is_malformed() {
    assert!(matches!(parse(json!({"Status": "completed"})), Err(WebhookError::Malformed(_))));
    assert!(matches!(parse(json!(["CallSid"])), Err(WebhookError::Malformed(_))));
    assert!(matches!(parse_with(b"Status=completed"), Err(WebhookError::Malformed(_))));
    assert!(matches!(parse_with(b""), Err(WebhookError::Malformed(_))));
}

#[test]
fn a_recorded_calls_terminal_callback_carries_its_recording_url() {
    let ev = parse(json!({"CallSid": "s1", "Status": "completed", "ConversationDuration": 9, "RecordingUrl": "https://recordings.exotel.com/s1.mp3"})).unwrap();
    assert_eq!(ev.duration_ms, Some(9_000));
    assert_eq!(ev.report.unwrap().recording_url.as_deref(), Some("https://recordings.exotel.com/s1.mp3"));
    assert!(parse(json!({"CallSid": "s1", "Status": "completed", "RecordingUrl": null})).unwrap().report.is_none());
}
