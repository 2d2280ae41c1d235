use base64::Engine as _;
use dialtone_core::{AnsweredBy, CallId, CallStatus, EventKind, Outcome, ProviderEvent};
use dialtone_providers::twilio::{TwilioConfig, TwilioProvider};
use dialtone_providers::{Provider, WebhookError, WebhookRequest};
use hmac::{Hmac, Mac};
use http::HeaderMap;
use secrecy::SecretString;
use sha2::Digest;

const VECTOR_SIG: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
const VECTOR_BODY: &str = "To=%2B18005551212&From=%2B14158675309&Digits=1234&Caller=%2B14158675309&CallSid=CA1234567890ABCDE";

fn provider(token: &str, public_base_url: &str) -> TwilioProvider {
    TwilioProvider::new(TwilioConfig::new("AC1", SecretString::from(token), public_base_url))
}

fn sig_headers(sig: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-twilio-signature", sig.parse().unwrap());
    h
}

fn verify(p: &TwilioProvider, sig: Option<&str>, url: &str, body: &str) -> Result<(), WebhookError> {
    let h = sig.map(sig_headers).unwrap_or_default();
    p.verify_webhook(&WebhookRequest { headers: &h, body: body.as_bytes(), url }, jiff::Timestamp::now())
}

/// What Twilio would send for this full URL and form body.
fn twilio_sign(token: &str, full_url: &str, body: &str) -> String {
    let mut params: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    params.sort();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(full_url.as_bytes());
    for (k, v) in params {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn is_unauthorized(r: Result<(), WebhookError>) -> bool {
    matches!(r, Err(WebhookError::Unauthorized(_)))
}

// ---- signature ----

#[test]
fn the_providers_md_vector_verifies() {
    let p = provider("12345", "https://mycompany.com");
    assert_eq!(verify(&p, Some(VECTOR_SIG), "/myapp.php?foo=1&bar=2", VECTOR_BODY), Ok(()));
    // axum may hand over an absolute URI; only its path and query count.
    assert_eq!(verify(&p, Some(VECTOR_SIG), "http://10.0.0.5:8080/myapp.php?foo=1&bar=2", VECTOR_BODY), Ok(()));
    // A trailing slash in the configured base does not double up.
    let p = provider("12345", "https://mycompany.com/");
    assert_eq!(verify(&p, Some(VECTOR_SIG), "/myapp.php?foo=1&bar=2", VECTOR_BODY), Ok(()));
}

#[test]
fn tampered_url_is_refused() {
    let p = provider("12345", "https://mycompany.com");
    assert!(is_unauthorized(verify(&p, Some(VECTOR_SIG), "/myapp.php?foo=2&bar=2", VECTOR_BODY)));
    assert!(is_unauthorized(verify(&p, Some(VECTOR_SIG), "/other.php?foo=1&bar=2", VECTOR_BODY)));
    assert!(is_unauthorized(verify(&p, Some(VECTOR_SIG), "/myapp.php?foo=1&bar=2&dialtone_call_id=call_x", VECTOR_BODY)));
    let p = provider("12345", "https://evil.example.com");
    assert!(is_unauthorized(verify(&p, Some(VECTOR_SIG), "/myapp.php?foo=1&bar=2", VECTOR_BODY)));
}

#[test]
fn tampered_params_are_refused() {
    let p = provider("12345", "https://mycompany.com");
    let changed = VECTOR_BODY.replace("Digits=1234", "Digits=1235");
    assert!(is_unauthorized(verify(&p, Some(VECTOR_SIG), "/myapp.php?foo=1&bar=2", &changed)));
    let added = format!("{VECTOR_BODY}&CallStatus=completed");
    assert!(is_unauthorized(verify(&p, Some(VECTOR_SIG), "/myapp.php?foo=1&bar=2", &added)));
    let dropped = VECTOR_BODY.replace("&Digits=1234", "");
    assert!(is_unauthorized(verify(&p, Some(VECTOR_SIG), "/myapp.php?foo=1&bar=2", &dropped)));
}

#[test]
fn wrong_token_missing_or_garbled_signature_is_refused() {
    let p = provider("54321", "https://mycompany.com");
    assert!(is_unauthorized(verify(&p, Some(VECTOR_SIG), "/myapp.php?foo=1&bar=2", VECTOR_BODY)));
    let p = provider("12345", "https://mycompany.com");
    assert!(is_unauthorized(verify(&p, None, "/myapp.php?foo=1&bar=2", VECTOR_BODY)));
    assert!(is_unauthorized(verify(&p, Some("not base64!"), "/myapp.php?foo=1&bar=2", VECTOR_BODY)));
    assert!(is_unauthorized(verify(&p, Some(""), "/myapp.php?foo=1&bar=2", VECTOR_BODY)));
}

#[test]
fn default_port_may_be_added_or_dropped_between_twilio_and_us() {
    let body = "CallSid=CA1&CallStatus=ringing";
    let path = "/webhooks/twilio?dialtone_call_id=call_01abc";
    // Twilio signed with :443, we are configured without it.
    let sig = twilio_sign("tok", &format!("https://dialer.example.com:443{path}"), body);
    assert_eq!(verify(&provider("tok", "https://dialer.example.com"), Some(&sig), path, body), Ok(()));
    // Twilio signed without it, we are configured with it.
    let sig = twilio_sign("tok", &format!("https://dialer.example.com{path}"), body);
    assert_eq!(verify(&provider("tok", "https://dialer.example.com:443"), Some(&sig), path, body), Ok(()));
    // Plain http and :80.
    let sig = twilio_sign("tok", &format!("http://dialer.example.com:80{path}"), body);
    assert_eq!(verify(&provider("tok", "http://dialer.example.com"), Some(&sig), path, body), Ok(()));
    // A port that is not the scheme's default is part of the URL, not noise.
    let sig = twilio_sign("tok", &format!("https://dialer.example.com:8443{path}"), body);
    assert!(is_unauthorized(verify(&provider("tok", "https://dialer.example.com"), Some(&sig), path, body)));
    // Nor is :80 on https.
    let sig = twilio_sign("tok", &format!("https://dialer.example.com:80{path}"), body);
    assert!(is_unauthorized(verify(&provider("tok", "https://dialer.example.com"), Some(&sig), path, body)));
}

#[test]
fn json_body_is_vouched_for_by_body_sha256_in_the_url() {
    let body = r#"{"CallSid":"CA1","CallStatus":"completed"}"#;
    let hash = hex::encode(sha2::Sha256::digest(body.as_bytes()));
    let path = format!("/webhooks/twilio?dialtone_call_id=call_01abc&bodySHA256={hash}");
    // Signed over the URL alone: no params for a JSON body.
    let sig = twilio_sign("tok", &format!("https://dialer.example.com{path}"), "");
    let p = provider("tok", "https://dialer.example.com");
    assert_eq!(verify(&p, Some(&sig), &path, body), Ok(()));

    let tampered = body.replace("completed", "busy");
    assert!(is_unauthorized(verify(&p, Some(&sig), &path, &tampered)), "body no longer matches its hash");

    // A hash that matches a swapped body does not help without a new signature.
    let other_hash = hex::encode(sha2::Sha256::digest(tampered.as_bytes()));
    let swapped_path = path.replace(&hash, &other_hash);
    assert!(is_unauthorized(verify(&p, Some(&sig), &swapped_path, &tampered)));
}

// ---- parsing ----

const URL_CALL_ID: &str = "call_01jabcdefghjkmnpqrstvwxyz0";

fn parse(body: &str) -> Result<ProviderEvent, WebhookError> {
    let h = HeaderMap::new();
    let url = format!("/webhooks/twilio?dialtone_call_id={URL_CALL_ID}");
    let mut parsed = provider("tok", "https://dialer.example.com").parse_webhook(&WebhookRequest { headers: &h, body: body.as_bytes(), url: &url })?;
    assert_eq!(parsed.events.len(), 1);
    assert!(parsed.reply.is_none());
    Ok(parsed.events.remove(0))
}

fn callback(status: &str, extra: &str) -> String {
    format!(
        "AccountSid=AC1&CallSid=CA42&CallStatus={status}&Direction=outbound-api&From=%2B15005550006&To=%2B14155551234\
         &SequenceNumber=3&Timestamp=Tue%2C+31+Aug+2010+20%3A36%3A44+%2B0000&CallbackSource=call-progress-events{extra}"
    )
}

#[test]
fn every_status_maps_to_our_state() {
    let ended = |outcome, r: &str| EventKind::Ended { outcome, reason: Some(r.into()) };
    let table = [
        ("queued", EventKind::Progress(CallStatus::Dialing)),
        ("initiated", EventKind::Progress(CallStatus::Dialing)),
        ("ringing", EventKind::Progress(CallStatus::Ringing)),
        ("in-progress", EventKind::Progress(CallStatus::InProgress)),
        ("completed", ended(Outcome::Completed, "completed")),
        ("busy", ended(Outcome::Busy, "busy")),
        ("no-answer", ended(Outcome::NoAnswer, "no-answer")),
        ("failed", ended(Outcome::Failed, "failed")),
        ("canceled", ended(Outcome::Canceled, "canceled")),
    ];
    for (status, want) in table {
        let ev = parse(&callback(status, "")).unwrap();
        assert_eq!(ev.kind, want, "{status}");
        assert_eq!(ev.dedupe_key, format!("twilio:CA42:{status}"));
    }
}

#[test]
fn a_completed_callback_carries_ids_time_duration_and_raw_params() {
    let ev = parse(&callback("completed", "&CallDuration=42&Duration=1&AnsweredBy=human")).unwrap();
    assert_eq!(ev.kind, EventKind::Ended { outcome: Outcome::Completed, reason: Some("completed:human".into()) });
    assert_eq!(ev.provider_call_id.as_deref(), Some("CA42"));
    assert_eq!(ev.call_id, CallId::parse(URL_CALL_ID));
    assert!(ev.call_id.is_some());
    assert_eq!(ev.provider_type, "call-progress-events");
    assert_eq!(ev.occurred_at.unwrap().to_string(), "2010-08-31T20:36:44Z");
    assert_eq!(ev.duration_ms, Some(42_000), "CallDuration is seconds; Duration is billed minutes");
    assert_eq!(ev.raw.value().unwrap()["SequenceNumber"], "3");
    assert_eq!(ev.raw.value().unwrap()["To"], "+14155551234");
    assert_eq!(ev.raw.value().unwrap()["Timestamp"], "Tue, 31 Aug 2010 20:36:44 +0000");
}

#[test]
fn a_machine_or_fax_answer_is_voicemail() {
    let ev = parse(&callback("completed", "&CallDuration=20&AnsweredBy=machine_end_beep")).unwrap();
    assert_eq!(ev.kind, EventKind::Ended { outcome: Outcome::Voicemail, reason: Some("completed:machine_end_beep".into()) });
    let ev = parse(&callback("completed", "&AnsweredBy=fax")).unwrap();
    assert!(matches!(ev.kind, EventKind::Ended { outcome: Outcome::Voicemail, .. }));
    let ev = parse(&callback("completed", "&AnsweredBy=unknown")).unwrap();
    assert!(matches!(ev.kind, EventKind::Ended { outcome: Outcome::Completed, .. }));
}

#[test]
fn an_unknown_status_is_info_keyed_by_sequence_number() {
    let ev = parse(&callback("teleported", "")).unwrap();
    assert_eq!(ev.kind, EventKind::Info);
    assert_eq!(ev.dedupe_key, "twilio:CA42:teleported:3");
    assert_eq!(ev.duration_ms, None);
}

#[test]
fn the_async_amd_verdict_is_an_amd_event_keyed_by_its_verdict() {
    let ev = parse("AccountSid=AC1&CallSid=CA42&AnsweredBy=machine_start&MachineDetectionDuration=2100").unwrap();
    assert_eq!(ev.kind, EventKind::Amd { answered_by: AnsweredBy::Machine });
    assert_eq!(ev.provider_type, "amd");
    assert_eq!(ev.dedupe_key, "twilio:CA42:amd:machine_start");
    assert_eq!(ev.provider_call_id.as_deref(), Some("CA42"));
    for (verdict, a) in [
        ("machine_end_beep", AnsweredBy::Machine),
        ("machine_end_silence", AnsweredBy::Machine),
        ("machine_end_other", AnsweredBy::Machine),
        ("fax", AnsweredBy::Machine),
        ("human", AnsweredBy::Human),
        ("unknown", AnsweredBy::Unknown),
    ] {
        let ev = parse(&format!("AccountSid=AC1&CallSid=CA42&AnsweredBy={verdict}")).unwrap();
        assert_eq!(ev.kind, EventKind::Amd { answered_by: a }, "{verdict}");
    }
}

#[test]
fn replays_share_a_dedupe_key_and_bad_dates_are_dropped() {
    let a = parse(&callback("ringing", "")).unwrap();
    let b = parse(&callback("ringing", "")).unwrap();
    assert_eq!(a.dedupe_key, b.dedupe_key);
    let ev = parse("CallSid=CA42&CallStatus=ringing&Timestamp=yesterday").unwrap();
    assert_eq!(ev.occurred_at, None);
}

#[test]
fn without_call_sid_it_is_malformed() {
    assert!(matches!(parse("CallStatus=completed"), Err(WebhookError::Malformed(_))));
    assert!(matches!(parse("CallSid=&CallStatus=completed"), Err(WebhookError::Malformed(_))));
    assert!(matches!(parse(""), Err(WebhookError::Malformed(_))));
}

#[test]
fn a_foreign_or_missing_call_id_in_the_url_is_none() {
    let h = HeaderMap::new();
    let p = provider("tok", "https://dialer.example.com");
    for url in ["/webhooks/twilio", "/webhooks/twilio?dialtone_call_id=cmp_01abc", "/webhooks/twilio?dialtone_call_id="] {
        let parsed = p.parse_webhook(&WebhookRequest { headers: &h, body: b"CallSid=CA1&CallStatus=busy", url }).unwrap();
        assert_eq!(parsed.events[0].call_id, None, "{url}");
    }
}

#[test]
fn the_recording_callback_carries_the_recording_url_once_completed() {
    let ev = parse(
        "CallSid=CA1&AccountSid=AC1&RecordingSid=RE1&RecordingStatus=completed&RecordingDuration=12&RecordingUrl=https%3A%2F%2Fapi.twilio.com%2Frec%2FRE1",
    )
    .unwrap();
    assert_eq!(ev.kind, EventKind::Info, "moves nothing");
    assert_eq!(ev.provider_type, "recording");
    assert_eq!(ev.dedupe_key, "twilio:CA1:recording:RE1:completed");
    assert_eq!(ev.report.unwrap().recording_url.as_deref(), Some("https://api.twilio.com/rec/RE1"));
    let ev = parse("CallSid=CA1&AccountSid=AC1&RecordingSid=RE1&RecordingStatus=in-progress&RecordingUrl=https%3A%2F%2Fx").unwrap();
    assert!(ev.report.is_none(), "no file yet");
    let ev = parse("CallSid=CA1&CallStatus=completed&CallDuration=7").unwrap();
    assert!(ev.report.is_none());
}
