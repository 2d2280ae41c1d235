//! Exotel's connect API and its status callbacks, from a client's side.

use dialtone_sim::{Faults, SimConfig, SimOutcome};
use serde_json::{json, Value};

use crate::support::*;
use crate::{outcomes, ANA, BOB};

const EXOPHONE: &str = "08047112233";

fn exotel_date(s: &str) -> bool {
    jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", s).is_ok()
}

#[tokio::test]
async fn exotel_connect_requires_basic_auth_and_a_valid_form() {
    let sim = spawn(all_providers(None)).await;
    let ok = [("From", ANA), ("CallerId", EXOPHONE), ("Url", "http://my.exotel.com/dialtone1/exoml/start_voice/1")];

    let mut wrong = FormClient::exotel(&sim);
    wrong.password = "nope".into();
    let (status, body, _) = wrong.post("/Calls/connect.json", &ok).await;
    assert_eq!(status, 401);
    assert_eq!(body, json!({"RestException": {"Status": 401, "Message": "Authentication failed"}}));

    let client = FormClient::exotel(&sim);
    let (status, body, _) = client.post("/Calls/connect.json", &ok[1..]).await;
    assert_eq!((status, body["RestException"]["Status"].as_u64()), (400, Some(400)), "{body}");
    assert!(body["RestException"]["Message"].as_str().unwrap().contains("From"), "{body}");
    let (status, _, _) = client.post("/Calls/connect.json", &ok[..2]).await;
    assert_eq!(status, 400, "Url or StreamUrl is required");
    let long = "c".repeat(129);
    let (status, body, _) = client.post("/Calls/connect.json", &[ok[0], ok[1], ok[2], ("CustomField", &long)]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(client.get("/Calls/0123.json").await.0, 404);

    let bare = spawn(fast(None)).await;
    assert_eq!(FormClient::exotel(&bare).post("/Calls/connect.json", &ok).await.0, 404);
    let stats = sim.stats();
    assert_eq!((stats.unauthorized, stats.rejected_400, stats.dials), (1, 3, 0));
}

#[tokio::test]
async fn exotel_json_callbacks_carry_the_custom_field() {
    let (receiver, url) = Receiver::start().await;
    let sim = spawn(SimConfig { number_outcomes: outcomes(&[(ANA, SimOutcome::Answered)]), ..all_providers(None) }).await;
    receiver.watch(&sim);
    let callback = format!("{url}/exotel/s3cret?dialtone_campaign_id=cmp_e");
    let client = FormClient::exotel(&sim);
    let (status, created, _) = client
        .post(
            "/Calls/connect.json",
            &[
                ("From", ANA),
                ("CallerId", EXOPHONE),
                ("StreamUrl", "wss://bot.example.test/exotel"),
                ("StreamType", "bidirectional"),
                ("CustomField", "call_e1"),
                ("StatusCallback", &callback),
                ("StatusCallbackEvents[0]", "terminal"),
                ("StatusCallbackEvents[1]", "answered"),
                ("StatusCallbackContentType", "application/json"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let call = &created["Call"];
    let sid = call["Sid"].as_str().unwrap().to_string();
    assert!(sid.len() == 32 && sid.bytes().all(|b| b.is_ascii_hexdigit()), "{sid}");
    assert_eq!(call["Status"], "in-progress");
    assert_eq!(call["Direction"], "outbound-api");
    assert_eq!((call["From"].as_str(), call["To"].as_str()), (Some(ANA), Some(EXOPHONE)));
    assert!(exotel_date(call["DateCreated"].as_str().unwrap()), "{call}");

    let hits = receiver.wait_for_count(2).await;
    for hit in &hits {
        assert_eq!(hit.headers["content-type"], "application/json");
        assert!(hit.headers.get("x-twilio-signature").is_none() && hit.headers.get("authorization").is_none());
        assert_eq!(hit.url, callback);
        assert_eq!(hit.body["CallSid"], sid.as_str());
        assert_eq!(hit.body["CustomField"], "call_e1");
    }
    let answered = &hits[0].body;
    assert_eq!((answered["EventType"].as_str(), answered["Status"].as_str()), (Some("answered"), Some("in-progress")));
    assert_eq!(hits[0].sim_active, Some(1));
    let terminal = &hits[1].body;
    assert_eq!((terminal["EventType"].as_str(), terminal["Status"].as_str()), (Some("terminal"), Some("completed")));
    assert_eq!(hits[1].sim_active, Some(0), "ended bookkeeping comes first");
    for field in ["DateUpdated", "StartTime", "EndTime"] {
        assert!(exotel_date(terminal[field].as_str().unwrap()), "{field}: {terminal}");
    }
    assert!(terminal["ConversationDuration"].as_u64().unwrap() >= 20, "{terminal}");
    assert_eq!((terminal["RecordingUrl"].clone(), terminal["Legs"].clone()), (Value::Null, json!([])));

    let (status, got) = client.get(&format!("/Calls/{sid}.json")).await;
    assert_eq!(status, 200);
    assert_eq!(got["Call"]["Status"], "completed");
    assert_eq!(got["Call"]["Sid"], sid.as_str());

    let stats = sim.stats();
    assert_eq!((stats.dials, stats.dials_by_provider["exotel"], stats.outcomes.answered), (1, 1, 1));
    assert_eq!(stats.peak_concurrent_by_phone_number[EXOPHONE], 1);
    assert_eq!(stats.peak_concurrent_by_campaign["cmp_e"], 1);
    assert_eq!(stats.peak_concurrent_by_provider["exotel"], 1);
    assert_eq!(stats.dials_without_dialtone_id, 0, "CustomField is the dialtone call id");
}

#[tokio::test]
async fn exotel_without_events_posts_a_plain_terminal_form() {
    let (receiver, url) = Receiver::start().await;
    let sim = spawn(SimConfig { number_outcomes: outcomes(&[(BOB, SimOutcome::NoAnswer)]), ..all_providers(None) }).await;
    let client = FormClient::exotel(&sim);
    let (status, created, _) = client
        .post(
            "/Calls/connect.json",
            &[("From", BOB), ("CallerId", EXOPHONE), ("Url", "http://flow.test/1"), ("CustomField", "call_e2"), ("StatusCallback", &url)],
        )
        .await;
    assert_eq!(status, 200);
    let hits = receiver.wait_for_count(1).await;
    assert_eq!(hits[0].field("CallSid"), created["Call"]["Sid"].as_str());
    assert_eq!(hits[0].field("Status"), Some("no-answer"));
    assert_eq!(hits[0].field("EventType"), None, "EventType only when events are subscribed");
    assert!(exotel_date(hits[0].field("DateUpdated").unwrap()));
    assert_eq!(sim.stats().outcomes.no_answer, 1);
}

#[tokio::test]
async fn exotel_faults_answer_rest_exceptions() {
    let form = [("From", ANA), ("CallerId", EXOPHONE), ("Url", "http://flow.test/1")];
    let sim = spawn(SimConfig { faults: Faults { rate_429: 1.0, ..Faults::none() }, ..all_providers(None) }).await;
    let (status, body, headers) = FormClient::exotel(&sim).post("/Calls/connect.json", &form).await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "0.001", "one simulated second at time scale 0.001");
    assert_eq!(body["RestException"]["Status"], 429);

    let sim503 = spawn(SimConfig { faults: Faults { rate_503: 1.0, ..Faults::none() }, ..all_providers(None) }).await;
    let (status, body, _) = FormClient::exotel(&sim503).post("/Calls/connect.json", &form).await;
    assert_eq!((status, body["RestException"]["Status"].as_u64()), (503, Some(503)));
    assert_eq!((sim.stats().dials, sim503.stats().dials), (0, 0));
}
