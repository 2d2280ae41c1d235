use base64::Engine as _;
use dialtone_core::{CallId, CallStatus, EventKind, Outcome, ProviderKind};
use dialtone_providers::vapi::{HmacAlgorithm, HmacConfig, SigEncoding, VapiConfig, VapiProvider};
use dialtone_providers::{ParsedWebhook, Provider, WebhookError, WebhookRequest};
use hmac::{Hmac, Mac};
use http::HeaderMap;
use jiff::Timestamp;
use secrecy::SecretString;
use serde_json::json;

const SECRET: &str = "whsec-test-1";
const NOW_MS: i64 = 1_735_689_600_000;

fn now() -> Timestamp {
    Timestamp::from_millisecond(NOW_MS).unwrap()
}

fn provider(secret: Option<&str>, hmac: Option<HmacConfig>) -> VapiProvider {
    let mut cfg = VapiConfig::new(SecretString::from("key"));
    cfg.webhook_secret = secret.map(SecretString::from);
    cfg.webhook_hmac = hmac;
    cfg.kind = ProviderKind::Sim;
    VapiProvider::new(cfg)
}

fn headers(pairs: &[(&str, String)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
    }
    h
}

fn verify(p: &VapiProvider, h: &HeaderMap, body: &[u8]) -> Result<(), WebhookError> {
    p.verify_webhook(&WebhookRequest { headers: h, body, url: "http://localhost/webhooks/vapi" }, now())
}

fn parse(body: &serde_json::Value) -> Result<ParsedWebhook, WebhookError> {
    let bytes = serde_json::to_vec(body).unwrap();
    parse_bytes(&bytes)
}

fn parse_bytes(body: &[u8]) -> Result<ParsedWebhook, WebhookError> {
    let h = HeaderMap::new();
    provider(Some(SECRET), None).parse_webhook(&WebhookRequest { headers: &h, body, url: "http://localhost/" })
}

fn is_unauthorized(r: Result<(), WebhookError>) -> bool {
    matches!(r, Err(WebhookError::Unauthorized(_)))
}

// ---- shared secret ----

#[test]
fn right_bearer_is_accepted() {
    let p = provider(Some(SECRET), None);
    assert_eq!(verify(&p, &headers(&[("authorization", format!("Bearer {SECRET}"))]), b"{}"), Ok(()));
}

#[test]
fn right_legacy_x_vapi_secret_is_accepted() {
    let p = provider(Some(SECRET), None);
    assert_eq!(verify(&p, &headers(&[("x-vapi-secret", SECRET.to_string())]), b"{}"), Ok(()));
}

#[test]
fn wrong_secret_is_refused() {
    let p = provider(Some(SECRET), None);
    assert!(is_unauthorized(verify(&p, &headers(&[("authorization", "Bearer nope".into())]), b"{}")));
    assert!(is_unauthorized(verify(&p, &headers(&[("x-vapi-secret", format!("{SECRET}x"))]), b"{}")));
    // Either header may carry it; a stale value in the other does not hide a right one.
    let both = headers(&[("authorization", "Bearer nope".into()), ("x-vapi-secret", SECRET.into())]);
    assert_eq!(verify(&p, &both, b"{}"), Ok(()));
}

#[test]
fn missing_credentials_are_refused() {
    let p = provider(Some(SECRET), None);
    assert!(is_unauthorized(verify(&p, &HeaderMap::new(), b"{}")));
    assert!(is_unauthorized(verify(&p, &headers(&[("authorization", SECRET.into())]), b"{}")));
}

#[test]
fn nothing_configured_refuses_everything() {
    let p = provider(None, None);
    assert_eq!(
        verify(&p, &headers(&[("authorization", format!("Bearer {SECRET}"))]), b"{}"),
        Err(WebhookError::Unauthorized("no webhook secret configured".into()))
    );
}

// ---- HMAC ----

fn hmac_cfg() -> HmacConfig {
    HmacConfig::new(SecretString::from(SECRET))
}

fn sha256_hex(ts: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn signed(ts: &str, sig: String) -> HeaderMap {
    headers(&[("x-timestamp", ts.to_string()), ("x-signature", sig)])
}

#[test]
fn hmac_right_signature_is_accepted() {
    let p = provider(None, Some(hmac_cfg()));
    let body = br#"{"message":{"type":"hang"}}"#;
    let ts = (NOW_MS - 1_000).to_string();
    assert_eq!(verify(&p, &signed(&ts, sha256_hex(&ts, body)), body), Ok(()));
}

#[test]
fn hmac_takes_precedence_over_shared_secret() {
    let p = provider(Some(SECRET), Some(hmac_cfg()));
    assert!(is_unauthorized(verify(&p, &headers(&[("authorization", format!("Bearer {SECRET}"))]), b"{}")));
}

#[test]
fn hmac_tampered_body_is_refused() {
    let p = provider(None, Some(hmac_cfg()));
    let ts = NOW_MS.to_string();
    let sig = sha256_hex(&ts, br#"{"message":{"type":"hang"}}"#);
    assert!(is_unauthorized(verify(&p, &signed(&ts, sig), br#"{"message":{"type":"hangs"}}"#)));
}

#[test]
fn hmac_stale_or_future_timestamp_is_refused() {
    let p = provider(None, Some(hmac_cfg()));
    let body = b"{}";
    for ts in [NOW_MS - 5 * 60_000 - 1, NOW_MS + 5 * 60_000 + 1] {
        let ts = ts.to_string();
        assert!(is_unauthorized(verify(&p, &signed(&ts, sha256_hex(&ts, body)), body)), "{ts}");
    }
    // Inside the window by a hair.
    let ts = (NOW_MS - 5 * 60_000).to_string();
    assert_eq!(verify(&p, &signed(&ts, sha256_hex(&ts, body)), body), Ok(()));
}

#[test]
fn hmac_timestamp_in_seconds_is_accepted() {
    let p = provider(None, Some(hmac_cfg()));
    let body = b"{}";
    let ts = (NOW_MS / 1000).to_string();
    assert_eq!(ts.len(), 10);
    assert_eq!(verify(&p, &signed(&ts, sha256_hex(&ts, body)), body), Ok(()));
}

#[test]
fn hmac_missing_headers_are_refused() {
    let p = provider(None, Some(hmac_cfg()));
    let ts = NOW_MS.to_string();
    assert!(is_unauthorized(verify(&p, &headers(&[("x-timestamp", ts.clone())]), b"{}")));
    assert!(is_unauthorized(verify(&p, &headers(&[("x-signature", sha256_hex(&ts, b"{}"))]), b"{}")));
}

#[test]
fn hmac_prefix_and_base64_sha512_variant() {
    let cfg = HmacConfig { algorithm: HmacAlgorithm::Sha512, encoding: SigEncoding::Base64, prefix: Some("sha512=".into()), ..hmac_cfg() };
    let p = provider(None, Some(cfg));
    let body = br#"{"message":{"type":"status-update"}}"#;
    let ts = NOW_MS.to_string();
    let mut mac = Hmac::<sha2::Sha512>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(body);
    let b64 = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());

    assert_eq!(verify(&p, &signed(&ts, format!("sha512={b64}")), body), Ok(()));
    assert!(is_unauthorized(verify(&p, &signed(&ts, b64.clone()), body)), "prefix is required");
    assert!(is_unauthorized(verify(&p, &signed(&ts, format!("sha512={b64}")), b"{}")), "tampered");
}

#[test]
fn hmac_sha1_hex_with_prefix() {
    let cfg = HmacConfig { algorithm: HmacAlgorithm::Sha1, prefix: Some("sha1=".into()), ..hmac_cfg() };
    let p = provider(None, Some(cfg));
    let body = b"{}";
    let ts = NOW_MS.to_string();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}.{{}}").as_bytes());
    let sig = hex::encode(mac.finalize().into_bytes());
    assert_eq!(verify(&p, &signed(&ts, format!("sha1={sig}")), body), Ok(()));
    // A SHA-256 signature is not accepted where SHA-1 is configured.
    assert!(is_unauthorized(verify(&p, &signed(&ts, format!("sha1={}", sha256_hex(&ts, body))), body)));
}

#[test]
fn a_multi_byte_prefix_or_signature_is_refused_not_a_panic() {
    // The prefix is compared on a char boundary: a prefix whose byte length falls inside
    // a character of the signature must not slice it apart.
    let cfg = HmacConfig { prefix: Some("sĥa=".into()), ..hmac_cfg() };
    let p = provider(None, Some(cfg));
    let ts = NOW_MS.to_string();
    assert!(is_unauthorized(verify(&p, &signed(&ts, "shaXYZ".into()), b"{}")));
    let p = provider(None, Some(HmacConfig { prefix: Some("s=".into()), ..hmac_cfg() }));
    let mut h = signed(&ts, "x".into());
    h.insert("x-signature", http::HeaderValue::from_bytes("é=abcd".as_bytes()).unwrap());
    assert!(is_unauthorized(verify(&p, &h, b"{}")));
}

#[test]
fn an_assistant_request_for_a_number_that_is_not_a_number_still_parses() {
    let parsed = parse(&json!({"message": {"type": "assistant-request", "call": {"id": "c1"},
        "phoneNumber": {"number": "номер ☎ 電話"}, "customer": {"number": "🙂"}}}))
    .unwrap();
    let ask = parsed.assistant_request.unwrap();
    assert_eq!((ask.to.as_deref(), ask.from.as_deref()), (Some("номер ☎ 電話"), Some("🙂")));
}

// ---- parsing ----

fn one(body: serde_json::Value) -> dialtone_core::ProviderEvent {
    let mut parsed = parse(&body).expect("parses");
    assert_eq!(parsed.events.len(), 1, "{body}");
    assert!(parsed.reply.is_none());
    parsed.events.remove(0)
}

#[test]
fn status_update_in_progress_example() {
    let body = json!({"message":{"type":"status-update","status":"in-progress","call":{"id":"019a"},"timestamp":1735689600000_i64}});
    let ev = one(body.clone());
    assert_eq!(ev.provider_type, "status-update");
    assert_eq!(ev.provider_call_id.as_deref(), Some("019a"));
    assert_eq!(ev.kind, EventKind::Progress(CallStatus::InProgress));
    assert_eq!(ev.dedupe_key, "vapi:019a:status-update:in-progress");
    assert_eq!(ev.occurred_at, Some(now()));
    assert_eq!(ev.raw.value().unwrap(), body);
    assert_eq!(ev.call_id, None);
}

#[test]
fn status_update_ended_example() {
    let ev = one(json!({"message":{"type":"status-update","status":"ended","endedReason":"customer-busy","call":{"id":"019a"}}}));
    assert_eq!(ev.kind, EventKind::Ended { outcome: Outcome::Busy, reason: Some("customer-busy".into()) });
    assert_eq!(ev.dedupe_key, "vapi:019a:status-update:ended:customer-busy");
    assert_eq!(ev.occurred_at, None);
}

#[test]
fn other_statuses_map_to_our_states() {
    let kind = |s: &str| one(json!({"message":{"type":"status-update","status":s,"call":{"id":"c"}}})).kind;
    assert_eq!(kind("queued"), EventKind::Progress(CallStatus::Dialing));
    assert_eq!(kind("scheduled"), EventKind::Progress(CallStatus::Dialing));
    assert_eq!(kind("ringing"), EventKind::Progress(CallStatus::Ringing));
    assert_eq!(kind("forwarding"), EventKind::Progress(CallStatus::InProgress));
    assert_eq!(kind("something-new"), EventKind::Info);
}

#[test]
fn end_of_call_report_example() {
    let ev = one(json!({"message":{"type":"end-of-call-report","endedReason":"customer-ended-call","cost":0.02,
        "startedAt":"2026-01-01T10:00:00.000Z","endedAt":"2026-01-01T10:02:03.000Z",
        "artifact":{"transcript":"hi","recordingUrl":"https://example.com/r.wav"},
        "analysis":{"summary":"ok","successEvaluation":"true"},"call":{"id":"019a"}}}));
    assert_eq!(ev.provider_type, "end-of-call-report");
    assert_eq!(ev.kind, EventKind::Ended { outcome: Outcome::Completed, reason: Some("customer-ended-call".into()) });
    assert_eq!(ev.dedupe_key, "vapi:019a:end-of-call-report");
    assert_eq!(ev.cost, Some(0.02));
    assert_eq!(ev.duration_ms, Some(123_000));
}

#[test]
fn our_call_id_is_read_from_the_metadata_we_sent() {
    let id = CallId::new();
    let ev = one(json!({"message":{"type":"status-update","status":"ringing",
        "call":{"id":"019a","assistantOverrides":{"metadata":{"dialtoneCallId":id.as_str(),"campaignId":"cmp_x"}}}}}));
    assert_eq!(ev.call_id, Some(id.clone()));
    let ev = one(json!({"message":{"type":"status-update","status":"ringing",
        "call":{"id":"019a","metadata":{"dialtoneCallId":id.as_str()}}}}));
    assert_eq!(ev.call_id, Some(id));
}

#[test]
fn hang_is_a_live_call() {
    let ev = one(json!({"message":{"type":"hang","call":{"id":"019a"},"timestamp":1735689600000_i64}}));
    assert_eq!(ev.kind, EventKind::Progress(CallStatus::InProgress));
    assert_eq!(ev.dedupe_key, "vapi:019a:hang:1735689600000");

    let a = one(json!({"message":{"type":"hang","call":{"id":"019a"}}}));
    let b = one(json!({"message":{"type":"hang","call":{"id":"019a"},"x":1}}));
    assert!(a.dedupe_key.starts_with("vapi:019a:hang:"));
    assert_eq!(a.dedupe_key.len(), "vapi:019a:hang:".len() + 64, "sha256 hex of the body");
    assert_ne!(a.dedupe_key, b.dedupe_key);
}

#[test]
fn duplicate_has_the_same_key_different_status_a_different_one() {
    let ringing = json!({"message":{"type":"status-update","status":"ringing","call":{"id":"019a"},"timestamp":1_i64}});
    let replay = json!({"message":{"type":"status-update","status":"ringing","call":{"id":"019a"},"timestamp":2_i64}});
    let live = json!({"message":{"type":"status-update","status":"in-progress","call":{"id":"019a"}}});
    let ended_a = json!({"message":{"type":"status-update","status":"ended","endedReason":"voicemail","call":{"id":"019a"}}});
    let ended_b = json!({"message":{"type":"status-update","status":"ended","endedReason":"customer-busy","call":{"id":"019a"}}});
    let other_call = json!({"message":{"type":"status-update","status":"ringing","call":{"id":"019b"}}});
    assert_eq!(one(ringing.clone()).dedupe_key, one(replay).dedupe_key);
    let keys: std::collections::HashSet<_> = [ringing, live, ended_a, ended_b, other_call].into_iter().map(|b| one(b).dedupe_key).collect();
    assert_eq!(keys.len(), 5);
}

fn malformed_message(r: Result<ParsedWebhook, WebhookError>) -> String {
    match r {
        Err(WebhookError::Malformed(m)) => m,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn malformed_bodies_say_what_is_missing() {
    assert!(malformed_message(parse_bytes(b"not json")).contains("not JSON"));
    assert!(malformed_message(parse(&json!({"type":"status-update"}))).contains("`message`"));
    assert!(malformed_message(parse(&json!({"message":"status-update"}))).contains("`message`"));
    assert!(malformed_message(parse(&json!({"message":{"status":"ended"}}))).contains("`message.type`"));
    assert!(malformed_message(parse(&json!({"message":{"type":7}}))).contains("`message.type`"));
    assert!(malformed_message(parse(&json!({"message":{"type":"status-update","call":{"id":"c"}}}))).contains("`message.status`"));
}

#[test]
fn known_event_without_call_id_is_malformed() {
    for body in [
        json!({"message":{"type":"status-update","status":"ringing"}}),
        json!({"message":{"type":"status-update","status":"ringing","call":{}}}),
        json!({"message":{"type":"end-of-call-report","endedReason":"voicemail","call":{"id":null}}}),
        json!({"message":{"type":"hang","call":{"id":""}}}),
    ] {
        assert!(malformed_message(parse(&body)).contains("`message.call"), "{body}");
    }
}

#[test]
fn other_types_are_acknowledged_and_ignored() {
    for t in ["transcript", "conversation-update", "speech-update", "tool-calls", "assistant-request", "brand-new-type"] {
        let parsed = parse(&json!({"message":{"type":t,"call":{"id":"019a"}}})).expect(t);
        assert!(parsed.events.is_empty() && parsed.reply.is_none(), "{t}");
    }
    // Ignored types need no call at all.
    assert!(parse(&json!({"message":{"type":"transcript"}})).unwrap().events.is_empty());
}

#[test]
fn kind_is_what_was_configured() {
    assert_eq!(provider(None, None).kind(), ProviderKind::Sim);
    assert_eq!(VapiProvider::new(VapiConfig::new(SecretString::from("k"))).kind(), ProviderKind::Vapi);
}

#[test]
fn an_end_of_call_report_carries_summary_recording_and_the_turns_of_its_messages() {
    let p = parse(&json!({"message": {
        "type": "end-of-call-report", "endedReason": "customer-ended-call", "cost": 0.02,
        "startedAt": "2026-01-01T10:00:00.000Z", "endedAt": "2026-01-01T10:00:30.000Z",
        "artifact": {"transcript": "AI: Hi\nUser: Hello\n", "recordingUrl": "https://storage.vapi.ai/rec.wav", "messages": [
            {"role": "system", "message": "You are a bot", "time": 1767261600000i64},
            {"role": "bot", "message": "Hi", "time": 1767261600000i64, "endTime": 1767261601500i64, "secondsFromStart": 0},
            {"role": "tool_calls", "toolCalls": []},
            {"role": "user", "message": " Hello ", "time": 1767261602000i64, "endTime": 1767261603000i64},
            {"role": "user", "message": "no time"}
        ]},
        "analysis": {"summary": "A short greeting.", "successEvaluation": "true"},
        "call": {"id": "c1"}
    }}))
    .unwrap();
    let ev = &p.events[0];
    assert_eq!((ev.cost, ev.duration_ms), (Some(0.02), Some(30_000)));
    let r = ev.report.as_deref().expect("a report");
    assert_eq!(r.summary.as_deref(), Some("A short greeting."));
    assert_eq!(r.recording_url.as_deref(), Some("https://storage.vapi.ai/rec.wav"));
    let turns = r.transcript.as_ref().unwrap();
    let said: Vec<(String, &str)> = turns.iter().map(|t| (t.speaker.to_string(), t.text.as_str())).collect();
    assert_eq!(said, [("agent".to_string(), "Hi"), ("callee".to_string(), "Hello")], "system, tool and untimed messages left out");
    assert_eq!(turns[0].started_at, Timestamp::from_millisecond(1_767_261_600_000).unwrap());
    assert_eq!(turns[0].ended_at, Timestamp::from_millisecond(1_767_261_601_500).unwrap());

    // Older payloads: summary and recording at the top of `message`; nothing at all: no report.
    let p = parse(&json!({"message": {"type": "end-of-call-report", "summary": "old", "recordingUrl": "https://r", "call": {"id": "c2"}}})).unwrap();
    let r = p.events[0].report.as_deref().unwrap();
    assert_eq!((r.summary.as_deref(), r.recording_url.as_deref(), r.transcript.as_ref()), (Some("old"), Some("https://r"), None));
    let p = parse(&json!({"message": {"type": "end-of-call-report", "analysis": {"summary": "  "}, "call": {"id": "c3"}}})).unwrap();
    assert!(p.events[0].report.is_none());
}
