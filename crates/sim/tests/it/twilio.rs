//! Twilio's Calls API and signed status callbacks, from a client's side.

use dialtone_sim::{twilio_signature, Faults, SimConfig, SimOutcome};
use serde_json::Value;

use crate::support::*;
use crate::{outcomes, ANA, BOB};

const LINE: &str = "+14155550100";
const HANG: &str = "+14155550999";

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

fn assert_signed(hit: &Received) {
    let presented = hit.headers["x-twilio-signature"].to_str().unwrap();
    assert_eq!(presented, twilio_signature(TWILIO_TOKEN, &hit.url, &hit.form), "signature over {}", hit.url);
    // The check can fail: a changed value or URL no longer verifies.
    let mut tampered = hit.form.clone();
    tampered[0].1.push('x');
    assert_ne!(presented, twilio_signature(TWILIO_TOKEN, &hit.url, &tampered));
    assert_ne!(presented, twilio_signature(TWILIO_TOKEN, &format!("{}&x=1", hit.url), &hit.form));
}

#[tokio::test]
async fn twilio_create_requires_basic_auth_and_a_valid_form() {
    let sim = spawn(all_providers(None)).await;
    let ok = [("To", ANA), ("From", LINE), ("Url", "https://example.test/twiml")];

    let mut wrong = FormClient::twilio(&sim);
    wrong.password = "nope".into();
    let (status, body, _) = wrong.post("/Calls.json", &ok).await;
    assert_eq!(status, 401);
    assert_eq!((body["code"].as_u64(), body["message"].as_str(), body["status"].as_u64()), (Some(20003), Some("Authenticate"), Some(401)));

    let client = FormClient::twilio(&sim);
    let (status, body, _) = client.post("/Calls.json", &[("From", LINE), ("Url", "https://example.test/twiml")]).await;
    assert_eq!((status, body["code"].as_u64()), (400, Some(21201)), "{body}");
    let (status, body, _) = client.post("/Calls.json", &[("To", ANA), ("From", LINE)]).await;
    assert_eq!((status, body["code"].as_u64()), (400, Some(21205)), "{body}");
    let (status, body, _) = client.post("/Calls.json", &[("To", "4155550001"), ("From", LINE), ("Twiml", "<Response/>")]).await;
    assert_eq!((status, body["code"].as_u64(), body["status"].as_u64()), (400, Some(21211), Some(400)), "{body}");
    let (status, body) = client.get("/Calls/CA00000000000000000000000000000000.json").await;
    assert_eq!((status, body["code"].as_u64()), (404, Some(20404)));

    // Another account's path with our credentials, and a sim with no Twilio account.
    let other = FormClient::new(&sim, TWILIO_SID, TWILIO_TOKEN, "/2010-04-01/Accounts/ACother");
    assert_eq!(other.post("/Calls.json", &ok).await.0, 404);
    let bare = spawn(fast(None)).await;
    assert_eq!(FormClient::twilio(&bare).post("/Calls.json", &ok).await.0, 404);

    let stats = sim.stats();
    assert_eq!((stats.unauthorized, stats.rejected_400, stats.dials), (1, 3, 0));
}

#[tokio::test]
async fn twilio_answered_call_sends_signed_progress_callbacks_in_sequence() {
    let (receiver, url) = Receiver::start().await;
    let sim = spawn(SimConfig { number_outcomes: outcomes(&[(ANA, SimOutcome::Answered)]), ..all_providers(None) }).await;
    receiver.watch(&sim);
    let callback = format!("{url}/twilio?dialtone_call_id=call_t1&dialtone_campaign_id=cmp_t");
    let client = FormClient::twilio(&sim);
    let (status, created, _) = client
        .post(
            "/Calls.json",
            &[
                ("To", ANA),
                ("From", LINE),
                ("Url", "https://example.test/twiml"),
                ("StatusCallback", &callback),
                ("StatusCallbackEvent", "initiated"),
                ("StatusCallbackEvent", "ringing"),
                ("StatusCallbackEvent", "answered"),
                ("StatusCallbackEvent", "completed"),
                ("MachineDetection", "Enable"),
            ],
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let sid = created["sid"].as_str().unwrap().to_string();
    assert!(sid.len() == 34 && sid.starts_with("CA") && is_hex(&sid[2..]), "{sid}");
    assert_eq!(created["status"], "queued");
    assert_eq!(created["direction"], "outbound-api");
    assert_eq!((created["to"].as_str(), created["from"].as_str()), (Some(ANA), Some(LINE)));
    assert_eq!(created["account_sid"], TWILIO_SID);

    let hits = receiver.wait_for_count(4).await;
    let statuses: Vec<_> = hits.iter().map(|h| h.field("CallStatus").unwrap_or("?").to_string()).collect();
    assert_eq!(statuses, ["initiated", "ringing", "in-progress", "completed"]);
    for (n, hit) in hits.iter().enumerate() {
        assert_signed(hit);
        assert_eq!(hit.url, callback);
        assert!(hit.headers["content-type"].to_str().unwrap().starts_with("application/x-www-form-urlencoded"));
        assert_eq!(hit.field("SequenceNumber"), Some(n.to_string().as_str()));
        assert_eq!(hit.field("CallSid"), Some(sid.as_str()));
        assert_eq!(hit.field("AccountSid"), Some(TWILIO_SID));
        assert_eq!((hit.field("From"), hit.field("To")), (Some(LINE), Some(ANA)));
        assert_eq!(hit.field("Direction"), Some("outbound-api"));
        assert_eq!(hit.field("CallbackSource"), Some("call-progress-events"));
        let stamp = hit.field("Timestamp").unwrap();
        assert!(jiff::fmt::rfc2822::parse(stamp).is_ok(), "{stamp}");
        assert_eq!(hit.field("CallDuration").is_some(), n == 3, "duration only on completion");
        assert_eq!(hit.field("Duration").is_some(), n == 3);
        assert_eq!(hit.field("AnsweredBy"), if n >= 2 { Some("human") } else { None });
    }
    // Ended bookkeeping happened before the completed callback went out.
    assert_eq!((hits[2].sim_active, hits[3].sim_active), (Some(1), Some(0)));
    let talk: u64 = hits[3].field("CallDuration").unwrap().parse().unwrap();
    assert!(talk >= 20, "simulated talk seconds: {talk}");

    let (status, call) = client.get(&format!("/Calls/{sid}.json")).await;
    assert_eq!(status, 200);
    assert_eq!(call["status"], "completed");
    assert_eq!(call["answered_by"], "human");
    assert_eq!(call["duration"], talk.to_string().as_str());
    assert!(call["end_time"].as_str().is_some_and(|t| jiff::fmt::rfc2822::parse(t).is_ok()), "{call}");

    let stats = wait_for_stats(&sim, "4 deliveries", |s| s.webhooks_sent == 4).await;
    assert_eq!((stats.dials, stats.dials_by_provider["twilio"], stats.outcomes.answered), (1, 1, 1));
    assert_eq!(stats.peak_concurrent_by_phone_number[LINE], 1);
    assert_eq!(stats.peak_concurrent_by_campaign["cmp_t"], 1);
    assert_eq!(stats.peak_concurrent_by_provider["twilio"], 1);
    assert_eq!(stats.dials_without_dialtone_id, 0);
}

#[tokio::test]
async fn twilio_default_subscription_is_completed_only_with_machine_detection() {
    let (receiver, url) = Receiver::start().await;
    let sim = spawn(SimConfig { number_outcomes: outcomes(&[(ANA, SimOutcome::Voicemail), (BOB, SimOutcome::Busy)]), ..all_providers(None) }).await;
    let client = FormClient::twilio(&sim);
    let callback = format!("{url}/twilio?dialtone_call_id=call_vm");
    let form = [("To", ANA), ("From", LINE), ("Twiml", "<Response/>"), ("StatusCallback", &callback), ("MachineDetection", "DetectMessageEnd")];
    assert_eq!(client.post("/Calls.json", &form).await.0, 201);
    let hits = receiver.wait_for_count(1).await;
    assert_eq!(hits[0].field("CallStatus"), Some("completed"));
    assert_eq!(hits[0].field("AnsweredBy"), Some("machine_end_beep"));
    assert_eq!(hits[0].field("SequenceNumber"), Some("0"));
    assert_signed(&hits[0]);

    let callback = format!("{url}/twilio?dialtone_call_id=call_busy");
    let (_, created, _) = client.post("/Calls.json", &[("To", BOB), ("From", LINE), ("Twiml", "<Response/>"), ("StatusCallback", &callback)]).await;
    let hits = receiver.wait_for_count(2).await;
    assert_eq!(hits[1].field("CallStatus"), Some("busy"));
    assert_eq!(hits[1].field("AnsweredBy"), None, "no AnsweredBy without MachineDetection");
    assert_eq!(hits[1].field("CallDuration"), Some("0"));
    let (_, call) = client.get(&format!("/Calls/{}.json", created["sid"].as_str().unwrap())).await;
    assert_eq!(call["status"], "busy");
    let stats = sim.stats();
    assert_eq!((stats.outcomes.voicemail, stats.outcomes.busy), (1, 1));
}

#[tokio::test]
async fn twilio_async_amd_sends_its_verdict_on_its_own_and_no_status_callback_carries_it() {
    let (receiver, url) = Receiver::start().await;
    let sim = spawn(SimConfig { number_outcomes: outcomes(&[(ANA, SimOutcome::Voicemail)]), ..all_providers(None) }).await;
    let client = FormClient::twilio(&sim);
    let callback = format!("{url}/twilio?dialtone_call_id=call_amd");
    let amd = format!("{url}/amd?dialtone_call_id=call_amd");
    let form = [
        ("To", ANA),
        ("From", LINE),
        ("Twiml", "<Response/>"),
        ("StatusCallback", &callback),
        ("MachineDetection", "Enable"),
        ("AsyncAmd", "true"),
        ("AsyncAmdStatusCallback", &amd),
        ("StatusCallbackEvent", "answered"),
        ("StatusCallbackEvent", "completed"),
    ];
    assert_eq!(client.post("/Calls.json", &form).await.0, 201);
    let hits = receiver.wait_for_count(3).await;
    let verdicts: Vec<_> = hits.iter().filter(|h| h.url.contains("/amd?")).collect();
    assert_eq!(verdicts.len(), 1, "one verdict: {:?}", hits.iter().map(|h| &h.url).collect::<Vec<_>>());
    let v = verdicts[0];
    assert_eq!((v.field("AnsweredBy"), v.field("CallStatus")), (Some("machine_end_beep"), None));
    assert!(v.field("CallSid").is_some_and(|s| s.starts_with("CA")) && v.field("AccountSid").is_some());
    assert_signed(v);
    for h in hits.iter().filter(|h| !h.url.contains("/amd?")) {
        assert!(h.field("CallStatus").is_some());
        assert_eq!(h.field("AnsweredBy"), None, "async AMD: status callbacks carry no AnsweredBy");
    }
    assert!(hits.iter().any(|h| h.field("CallStatus") == Some("completed")));
}

#[tokio::test]
async fn twilio_hang_up_completes_an_answered_call_and_cancels_a_ringing_one() {
    let (receiver, url) = Receiver::start().await;
    let sim = spawn(SimConfig { number_outcomes: outcomes(&[(HANG, SimOutcome::Hang)]), ..all_providers(None) }).await;
    receiver.watch(&sim);
    let client = FormClient::twilio(&sim);
    let callback = format!("{url}/twilio?dialtone_call_id=call_h");
    let (_, created, _) = client
        .post(
            "/Calls.json",
            &[("To", HANG), ("From", LINE), ("Twiml", "<Response/>"), ("StatusCallback", &callback), ("StatusCallbackEvent", "answered completed")],
        )
        .await;
    let sid = created["sid"].as_str().unwrap().to_string();
    receiver.wait_for_count(1).await;
    let path = format!("/Calls/{sid}.json");
    assert_eq!(client.get(&path).await.1["status"], "in-progress");

    // canceled leaves an answered call alone; completed hangs it up.
    let (status, call, _) = client.post(&path, &[("Status", "canceled")]).await;
    assert_eq!((status, call["status"].as_str()), (200, Some("in-progress")));
    let (status, call, _) = client.post(&path, &[("Status", "completed")]).await;
    assert_eq!((status, call["status"].as_str()), (200, Some("completed")), "{call}");
    assert_eq!(sim.stats().active, 0, "the books closed before the answer");
    let hits = receiver.wait_for_count(2).await;
    assert_eq!((hits[1].field("CallStatus"), hits[1].field("SequenceNumber")), (Some("completed"), Some("1")));
    assert_eq!(hits[1].sim_active, Some(0));
    assert_signed(&hits[1]);
    // Hanging up again changes nothing.
    let (status, call, _) = client.post(&path, &[("Status", "completed")]).await;
    assert_eq!((status, call["status"].as_str()), (200, Some("completed")));
    let (status, body, _) = client.post(&path, &[("Status", "paused")]).await;
    assert_eq!((status, body["code"].as_u64()), (400, Some(21218)));

    // A call still ringing (for 1000 s of real time) is canceled.
    let slow = spawn(SimConfig { ring_secs: (1e6, 1e6), ..all_providers(None) }).await;
    let slow_client = FormClient::twilio(&slow);
    let (_, created, _) = slow_client.post("/Calls.json", &[("To", ANA), ("From", LINE), ("Twiml", "<Response/>")]).await;
    let path = format!("/Calls/{}.json", created["sid"].as_str().unwrap());
    wait_until("ringing", || slow.stats().active == 1).await;
    let (status, call, _) = slow_client.post(&path, &[("Status", "canceled")]).await;
    assert_eq!((status, call["status"].as_str()), (200, Some("canceled")), "{call}");
    assert_eq!(slow_client.get(&path).await.1["status"], "canceled");

    let (a, b) = (sim.stats(), slow.stats());
    assert_eq!((a.hangups, a.outcomes.answered, a.active, a.ended), (1, 1, 0, 1));
    assert_eq!((b.hangups, b.outcomes.canceled, b.active), (1, 1, 0));
}

#[tokio::test]
async fn twilio_faults_answer_twilio_shaped_429_and_503() {
    let sim = spawn(SimConfig { faults: Faults { rate_429: 1.0, ..Faults::none() }, ..all_providers(None) }).await;
    let form = [("To", ANA), ("From", LINE), ("Twiml", "<Response/>")];
    let (status, body, _) = FormClient::twilio(&sim).post("/Calls.json", &form).await;
    assert_eq!(status, 429);
    assert_eq!((body["code"].as_u64(), body["message"].as_str(), body["status"].as_u64()), (Some(20429), Some("Too Many Requests"), Some(429)));

    let sim503 = spawn(SimConfig { faults: Faults { rate_503: 1.0, ..Faults::none() }, ..all_providers(None) }).await;
    let (status, body, _): (u16, Value, _) = FormClient::twilio(&sim503).post("/Calls.json", &form).await;
    assert_eq!((status, body["status"].as_u64()), (503, Some(503)));
    assert_eq!((sim.stats().rejected_429, sim503.stats().rejected_503, sim.stats().dials), (1, 1, 0));
}
