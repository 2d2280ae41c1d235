//! Agents over HTTP: created with their defaults, validated field by field, listed, changed
//! and deleted; campaigns and single calls take one only on Exotel or Twilio.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn agent_body() -> Value {
    json!({
        "name": "Reminders",
        "greeting": "Hi, this is Ada from Acme.",
        "system_prompt": "You remind customers of their appointment.",
        "goodbye": "Thanks, goodbye!",
        "stt": {"provider": "openai", "model": "whisper-1", "base_url": "http://127.0.0.1:8000/v1"},
        "llm": {"provider": "openai", "model": "gpt-4o-mini", "base_url": "http://127.0.0.1:11434/v1/"},
        "tts": {"provider": "flite", "voice": "slt"},
    })
}

async fn create_agent(app: &TestApp) -> String {
    let (status, agent) = app.post_json("/agents", &agent_body()).await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
    agent["id"].as_str().unwrap().to_string()
}

/// `agent_body()` with `field` set to `value` (`null` removes it).
fn with(field: &str, value: Value) -> Value {
    let mut body = agent_body();
    if value.is_null() {
        body.as_object_mut().unwrap().remove(field);
    } else {
        body[field] = value;
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_is_created_with_its_defaults_listed_changed_and_deleted() {
    let app = TestApp::start().await;
    let (status, agent) = app.post_json("/agents", &agent_body()).await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
    let id = agent["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("agt_"), "{agent}");
    assert_eq!(agent["no_response_prompt"], "Hello? Are you there?");
    assert_eq!(agent["max_duration_secs"], 600);
    assert_eq!(agent["language"], "en-US");
    assert_eq!(agent["voicemail_message"], Value::Null);
    assert_eq!(agent["llm"], json!({"provider": "openai", "model": "gpt-4o-mini", "base_url": "http://127.0.0.1:11434/v1"}), "trailing / trimmed");
    assert_eq!(agent["tts"], json!({"provider": "flite", "voice": "slt"}));

    let second = create_agent(&app).await;
    let (status, page) = app.get("/agents?limit=1").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["data"][0]["id"], second.as_str(), "newest first");
    let (_, next) = app.get(&format!("/agents?limit=1&before={}", page["next_cursor"].as_str().unwrap())).await;
    assert_eq!(next["data"][0]["id"], id.as_str(), "{next}");
    let (status, shown) = app.get(&format!("/agents/{id}")).await;
    assert_eq!((status, &shown), (StatusCode::OK, &agent));

    let patch = json!({"name": "Renamed", "voicemail_message": "Call us back.", "max_duration_secs": 120, "tts": {"provider": "sim"}});
    let (status, changed) = send(app.api(Method::PATCH, &format!("/agents/{id}")).json(&patch)).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!((&changed["name"], &changed["voicemail_message"], &changed["max_duration_secs"]), (&json!("Renamed"), &json!("Call us back."), &json!(120)));
    assert_eq!(changed["greeting"], agent["greeting"], "absent fields stay");
    assert_eq!(changed["tts"], json!({"provider": "sim"}));
    let (_, cleared) = send(app.api(Method::PATCH, &format!("/agents/{id}")).json(&json!({"voicemail_message": null}))).await;
    assert_eq!((&cleared["voicemail_message"], &cleared["name"]), (&Value::Null, &json!("Renamed")), "null removes the message");
    let (status, body) = send(app.api(Method::PATCH, &format!("/agents/{id}")).json(&json!({"stt": {"provider": "whisper"}}))).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(body["error"]["details"]["field"], "stt.provider");
    assert_eq!(app.get(&format!("/agents/{id}")).await.1["stt"]["provider"], "openai", "a refused PATCH changes nothing");
    for field in ["name", "stt", "max_duration_secs"] {
        let (status, body) = send(app.api(Method::PATCH, &format!("/agents/{id}")).json(&json!({ field: null }))).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_json");
        assert_eq!(body["error"]["details"]["field"], field, "null is refused, not ignored: {body}");
    }

    let (status, _) = send(app.api(Method::DELETE, &format!("/agents/{id}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get(&format!("/agents/{id}")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = send(app.api(Method::DELETE, &format!("/agents/{id}"))).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (_, all) = app.get("/agents").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 1, "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_agent_field_is_a_4xx_naming_it() {
    let app = TestApp::start().await;
    let cases = [
        (with("name", json!("  ")), "name"),
        (with("greeting", json!("")), "greeting"),
        (with("max_duration_secs", json!(5)), "max_duration_secs"),
        (with("max_duration_secs", json!(14_341)), "max_duration_secs"),
        (with("language", json!("en US")), "language"),
        (with("stt", json!({"provider": "elevenlabs"})), "stt.provider"),
        (with("llm", json!({"provider": "deepgram"})), "llm.provider"),
        (with("tts", json!({"provider": "espeak"})), "tts.provider"),
        (with("llm", json!({"provider": "openai", "base_url": "ftp://x"})), "llm.base_url"),
        (with("llm", json!({"provider": "openai", "base_url": "not a url"})), "llm.base_url"),
        (with("tts", json!({"provider": "flite", "voice": ""})), "tts.voice"),
        (with("voicemail_message", json!(" ")), "voicemail_message"),
    ];
    for (body, field) in cases {
        let (status, answer) = app.post_json("/agents", &body).await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(answer["error"]["details"]["field"], field, "{answer}");
    }
    for (body, field) in [
        (with("stt", Value::Null), "stt"),
        (with("voice", json!("x")), "voice"),
        (with("max_duration_secs", json!(-1)), "max_duration_secs"),
        (with("stt", json!({"provider": "sim", "modle": "nova-3"})), "modle"),
        (with("llm", json!({"provider": "openai", "api_key": "sk-x"})), "api_key"),
    ] {
        let (status, answer) = app.post_json("/agents", &body).await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST, "invalid_json");
        assert!(answer["error"]["message"].as_str().unwrap().contains(field), "{answer}");
    }
    let (_, all) = app.get("/agents").await;
    assert_eq!(all["data"], json!([]), "nothing was stored");
    let (status, body) = app.get("/agents/not-an-id").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_and_single_calls_take_an_agent_only_on_exotel_or_twilio() {
    let app = TestApp::with(Options { provider_accounts: true, ..Options::default() }).await;
    let agent = create_agent(&app).await;
    // An agent this server cannot run (Deepgram without a key) is stored, but no campaign
    // or call may use it: its calls would be answered and hung up on at once.
    let (status, keyless) = app.post_json("/agents", &with("stt", json!({"provider": "deepgram", "model": "nova-3"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{keyless}");
    let keyless = keyless["id"].as_str().unwrap().to_string();
    let campaign = |provider: &str, caller: &str, agent_id: &str| json!({"name": "agent campaign", "provider": provider, "assistant_id": "asst_it", "phone_number_id": caller, "agent_id": agent_id});
    for (body, why) in [
        (campaign("sim", PHONE_NUMBER_ID, &agent), "sim cannot stream"),
        (campaign("exotel", EXOTEL_CALLER, "agt_01m8r7zqbpwz8k3r35m6nzc1zy"), "no such agent"),
        (campaign("exotel", EXOTEL_CALLER, "asst_1"), "not an agent id"),
        (campaign("exotel", EXOTEL_CALLER, &keyless), "its STT has no key here"),
    ] {
        let (status, answer) = app.post_json("/campaigns", &body).await;
        assert_error(status, &answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid_agent");
        assert_eq!(answer["error"]["details"]["field"], "agent_id", "{why}: {answer}");
    }
    let (_, answer) = app.post_json("/campaigns", &campaign("twilio", TWILIO_CALLER, &keyless)).await;
    assert!(answer["error"]["message"].as_str().unwrap().contains("deepgram: no API key"), "{answer}");
    let later = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string();
    let (status, answer) = app
        .post_json(
            "/calls",
            &json!({"agent_id": keyless, "provider": "exotel", "phone_number_id": EXOTEL_CALLER, "phone": "+14155550199", "scheduled_for": later}),
        )
        .await;
    assert_error(status, &answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid_agent");
    let (status, exotel) = app.post_json("/campaigns", &campaign("exotel", EXOTEL_CALLER, &agent)).await;
    assert_eq!(status, StatusCode::CREATED, "{exotel}");
    assert_eq!(exotel["agent_id"], agent.as_str());
    let (status, twilio) = app.post_json("/campaigns", &campaign("twilio", TWILIO_CALLER, &agent)).await;
    assert_eq!(status, StatusCode::CREATED, "{twilio}");
    let plain = app.create_campaign(json!({})).await;
    assert_eq!(app.campaign(&plain).await["agent_id"], Value::Null);

    let (status, body) = send(app.api(Method::DELETE, &format!("/agents/{agent}"))).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    assert!(body["error"]["message"].as_str().unwrap().contains(exotel["id"].as_str().unwrap()), "names a campaign that uses it: {body}");

    // A single call: its assistant's provider decides.
    for (id, provider, caller) in [("asst_exo", "exotel", EXOTEL_CALLER), ("asst_sim", "sim", PHONE_NUMBER_ID)] {
        let (status, body) = app.post_json("/assistants", &json!({"id": id, "provider": provider, "phone_number_id": caller})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let later = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string();
    let nums = numbers(2);
    let (status, call) = app.post_json("/calls", &json!({"assistant_id": "asst_exo", "phone": nums[0], "scheduled_for": later, "agent_id": agent})).await;
    assert_eq!(status, StatusCode::CREATED, "{call}");
    assert_eq!((&call["transcript"], &call["voicemail_left"]), (&Value::Null, &json!(false)), "a call shows what its agent left: {call}");
    let (status, body) = app.post_json("/calls", &json!({"assistant_id": "asst_sim", "phone": nums[1], "scheduled_for": later, "agent_id": agent})).await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "invalid_agent");
    assert_eq!(body["error"]["details"]["field"], "agent_id");

    for id in [exotel["id"].as_str().unwrap(), twilio["id"].as_str().unwrap()] {
        app.act(id, "cancel").await;
    }
    let (status, _) = send(app.api(Method::DELETE, &format!("/calls/{}", call["id"].as_str().unwrap()))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = send(app.api(Method::DELETE, &format!("/agents/{agent}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "no unfinished campaign uses it any more: {body}");
}

/// An agent call streams to dialtone instead of running the configured TwiML, so a Twilio
/// account without TwiML takes agent campaigns (and starts them) while it still refuses the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twilio_account_without_twiml_takes_agent_campaigns_only() {
    let app = TestApp::with(Options { provider_accounts: true, configure: |c| c.twilio_twiml_url = None, ..Options::default() }).await;
    let agent = create_agent(&app).await;
    let body = |agent_id: Option<&str>| json!({"name": "twilio", "provider": "twilio", "assistant_id": "asst_it", "phone_number_id": TWILIO_CALLER, "agent_id": agent_id});
    let (status, answer) = app.post_json("/campaigns", &body(None)).await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST, "provider_not_configured");
    assert_eq!(answer["error"]["details"]["missing_settings"], json!(["twilio_twiml_url"]), "{answer}");
    let (status, created) = app.post_json("/campaigns", &body(Some(&agent))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    let (status, started) = app.post(&format!("/campaigns/{id}/start")).await;
    assert_eq!(status, StatusCode::OK, "{started}");
}

/// docs/api.md's agent example: its request, posted as written, answers exactly the answer
/// it shows (the defaults the docs promise are the ones the API fills in); `"…"` in the
/// docs stands for any value (ids, times).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_example_in_docs_api_md_is_what_the_api_answers() {
    let docs = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/api.md")).unwrap();
    let section = &docs[docs.find("`POST /agents`").expect("the agents section")..];
    let blocks: Vec<Value> = section
        .split("```json\n")
        .skip(1)
        .take(2)
        .map(|b| serde_json::from_str(&b[..b.find("```").unwrap()]).unwrap_or_else(|e| panic!("docs/api.md agent example is not JSON: {e}")))
        .collect();
    let (request, documented) = (&blocks[0], &blocks[1]);
    let app = TestApp::start().await;
    let (status, answer) = app.post_json("/agents", request).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let documented = documented.as_object().unwrap();
    let answer = answer.as_object().unwrap();
    assert_eq!(documented.keys().collect::<Vec<_>>(), answer.keys().collect::<Vec<_>>(), "the same fields");
    for (field, shown) in documented {
        if shown != "…" {
            assert_eq!(&answer[field], shown, "{field}");
        }
    }
    assert_eq!(answer["no_response_prompt"], "Hello? Are you there?");
    assert_eq!(answer["max_duration_secs"], 600);
    assert_eq!(answer["language"], "en-US");
}

/// With `agent_id`, the agent is the assistant: a campaign needs no `assistant_id` (its
/// assistant is the agent's id, registered for single calls), and neither does a single call
/// (it takes that registration, or `provider` and `phone_number_id`). Without an agent,
/// `assistant_id` is still required, by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_needs_no_assistant_id_in_campaigns_or_single_calls() {
    let app = TestApp::with(Options { provider_accounts: true, ..Options::default() }).await;
    let agent = create_agent(&app).await;
    let later = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string();
    let nums = numbers(4);
    // A single call before any campaign: provider and caller given.
    let (status, call) = app
        .post_json("/calls", &json!({"agent_id": agent, "provider": "twilio", "phone_number_id": TWILIO_CALLER, "phone": nums[0], "scheduled_for": later}))
        .await;
    assert_eq!((status, &call["provider"]), (StatusCode::CREATED, &json!("twilio")), "{call}");
    // Neither: nothing registered under the agent yet, so `provider` is named.
    let (status, body) = app.post_json("/calls", &json!({"agent_id": agent, "phone": nums[1], "scheduled_for": later})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(body["error"]["details"]["field"], "provider", "{body}");
    let (status, body) = app.post_json("/calls", &json!({"agent_id": agent, "provider": "exotel", "phone": nums[1], "scheduled_for": later})).await;
    assert_eq!(body["error"]["details"]["field"], "phone_number_id", "{status} {body}");
    // The caller on Twilio is a number with its country code (a single call has no region).
    for caller in ["pn_main", "(415) 222-0100"] {
        let (status, body) = app
            .post_json("/calls", &json!({"agent_id": agent, "provider": "twilio", "phone_number_id": caller, "phone": nums[1], "scheduled_for": later}))
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(body["error"]["details"]["field"], "phone_number_id", "{caller}: {body}");
    }

    let (status, campaign) =
        app.post_json("/campaigns", &json!({"name": "agent only", "provider": "exotel", "phone_number_id": EXOTEL_CALLER, "agent_id": agent})).await;
    assert_eq!(status, StatusCode::CREATED, "{campaign}");
    assert_eq!((&campaign["assistant_id"], &campaign["agent_id"]), (&json!(agent), &json!(agent)), "{campaign}");
    // Now the agent is a registered assistant (on the campaign's provider and caller).
    let (status, call) = app.post_json("/calls", &json!({"agent_id": agent, "phone": nums[2], "scheduled_for": later})).await;
    assert_eq!(status, StatusCode::CREATED, "{call}");
    assert_eq!(call["provider"], "exotel", "{call}");

    let (status, body) = app.post_json("/campaigns", &json!({"name": "no one", "provider": "sim", "phone_number_id": PHONE_NUMBER_ID})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_json");
    assert_eq!(body["error"]["details"]["field"], "assistant_id", "{body}");
    let (status, body) = app.post_json("/calls", &json!({"phone": nums[3], "scheduled_for": later})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_json");
    assert_eq!(body["error"]["details"]["field"], "assistant_id", "{body}");
}
