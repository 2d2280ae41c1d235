//! Guard rails: work on a provider this server has no account for is refused before it
//! can fail; do-not-call lists stop single calls too; a call is ended at its maximum
//! duration; schedules are bounded.

use crate::support::*;
use dialtone_core::{CampaignStatus, Mode, ProviderKind, RetryPolicy};
use dialtone_sim::SimOutcome;
use dialtone_store::{Assistant, NewCampaign};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn campaign_body(fields: Value) -> Value {
    let mut body = json!({"name": "guarded", "provider": "sim", "assistant_id": "asst_g", "phone_number_id": "pn_g"});
    for (k, v) in fields.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// The refusal for a provider without an account: 400, naming every missing setting and
/// its environment variable, and listing the providers that are configured (only `sim` in
/// the default test server).
fn assert_not_configured(status: StatusCode, body: &Value, field: &str, settings: &[&str]) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let e = &body["error"];
    assert_eq!(e["code"], "provider_not_configured", "{body}");
    assert_eq!(e["details"]["field"], field, "{body}");
    assert_eq!(e["details"]["missing_settings"], json!(settings), "{body}");
    assert_eq!(e["details"]["configured"], json!(["sim"]), "{body}");
    let message = e["message"].as_str().unwrap();
    for s in settings {
        assert!(message.contains(s), "{message} names {s}");
        assert!(message.contains(&format!("DIALTONE_{}", s.to_uppercase())), "{message} names the variable for {s}");
    }
    assert!(message.ends_with("Configured providers: sim"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_on_a_provider_without_an_account_is_refused_at_create_in_any_mode() {
    let app = TestApp::start().await;
    let cases: [(&str, &[&str]); 3] = [
        ("twilio", &["twilio_account_sid", "twilio_auth_token", "twilio_twiml_url"]),
        ("exotel", &["exotel_sid", "exotel_api_key", "exotel_api_token", "exotel_flow_url"]),
        ("vapi", &["vapi_api_key"]),
    ];
    for (provider, settings) in cases {
        for mode in ["continuous", "batch"] {
            let (status, body) = app.post_json("/campaigns", &campaign_body(json!({"provider": provider, "mode": mode}))).await;
            assert_not_configured(status, &body, "provider", settings);
        }
    }
    let (_, list) = app.get("/campaigns").await;
    assert_eq!(list["data"], json!([]), "nothing was created");
    let (status, _) = app.post_json("/campaigns", &campaign_body(json!({"mode": "batch"}))).await;
    assert_eq!(status, StatusCode::CREATED, "sim is always configured");
}

/// Credentials alone do not make an account usable: a Twilio account without the TwiML its
/// answered calls run is refused like a missing one, naming only what is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twilio_account_without_twiml_is_refused_naming_the_twiml() {
    let app = TestApp::with(Options {
        configure: |c| {
            c.twilio_account_sid = Some("AC00000000000000000000000000000000".into());
            c.twilio_auth_token = Some("token".into());
            c.twilio_twiml_url = None;
            c.twilio_twiml = None;
        },
        ..Options::default()
    })
    .await;
    let (status, body) = app.post_json("/campaigns", &campaign_body(json!({"provider": "twilio"}))).await;
    assert_not_configured(status, &body, "provider", &["twilio_twiml_url"]);
}

/// An Exotel account with neither `exotel_flow_url` nor `exotel_stream_url` can place only
/// agent calls (their `StreamUrl` is dialtone's own): a campaign without an agent is refused
/// at create, and one stored before is refused at start, naming the flow setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exotel_campaign_without_agent_or_flow_is_refused_at_create_and_start() {
    let app = TestApp::with(Options {
        provider_accounts: true,
        configure: |c| {
            c.exotel_flow_url = None;
            c.exotel_stream_url = None;
        },
        ..Options::default()
    })
    .await;
    let (status, body) = app.post_json("/campaigns", &campaign_body(json!({"provider": "exotel"}))).await;
    assert_not_configured_among(status, &body, "provider", &["exotel_flow_url"]);
    // With an agent the call streams to dialtone: accepted.
    let agent_body = json!({"name": "Dana", "greeting": "Hi.", "system_prompt": "Be brief.", "goodbye": "Bye.",
        "stt": {"provider": "sim"}, "llm": {"provider": "sim"}, "tts": {"provider": "sim"}});
    let (status, agent) = app.post_json("/agents", &agent_body).await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
    let (status, body) =
        app.post_json("/campaigns", &campaign_body(json!({"provider": "exotel", "phone_number_id": EXOTEL_CALLER, "agent_id": agent["id"]}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // One stored without an agent (as if the flow had been configured then) cannot start.
    let ws = app.state.store.default_workspace().await.unwrap();
    let midnight = jiff::civil::Time::midnight();
    let new = NewCampaign {
        workspace_id: ws,
        name: "exotel, flow since removed".into(),
        provider: ProviderKind::Exotel,
        assistant_id: "asst_e".into(),
        phone_number_id: EXOTEL_CALLER.into(),
        mode: Mode::Continuous,
        max_concurrent: 3,
        max_attempts: 3,
        retry: RetryPolicy::default(),
        default_region: "US".into(),
        schedule: dialtone_core::schedule::Schedule::always("UTC"),
        calling_hours: dialtone_core::schedule::LocalHours::new(midnight, midnight),
        recurrence: dialtone_core::frequency::Recurrence::new(dialtone_core::frequency::Frequency::Once),
        max_call_duration_secs: None,
        assume_campaign_timezone_for_ambiguous: false,
        agent_id: None,
        caller_pool: Default::default(),
        calls_per_minute: None,
        account_id: None,
    };
    let cmp = app.state.store.create_campaign(new, app.state.now()).await.unwrap();
    let (status, body) = app.post(&format!("/campaigns/{}/start", cmp.id)).await;
    assert_not_configured_among(status, &body, "provider", &["exotel_flow_url"]);
}

/// Like [`assert_not_configured`] for a server whose other providers are configured too.
fn assert_not_configured_among(status: StatusCode, body: &Value, field: &str, settings: &[&str]) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let e = &body["error"];
    assert_eq!(e["code"], "provider_not_configured", "{body}");
    assert_eq!(e["details"]["field"], field, "{body}");
    assert_eq!(e["details"]["missing_settings"], json!(settings), "{body}");
    let message = e["message"].as_str().unwrap();
    for s in settings {
        assert!(message.contains(s) && message.contains(&format!("DIALTONE_{}", s.to_uppercase())), "{message} names {s}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_provider_list_in_an_error_comes_from_the_one_list_of_providers() {
    let app = TestApp::start().await;
    let requests = [
        ("/campaigns", campaign_body(json!({"provider": "twillio"}))),
        ("/assistants", json!({"id": "asst_x", "provider": "twillio", "phone_number_id": "pn"})),
        ("/phone-numbers", json!({"number": "+14155550100", "provider": "twillio", "assistant_id": "asst_x"})),
    ];
    for (path, body) in &requests {
        let (status, err) = app.post_json(path, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {err}");
        assert_eq!(err["error"]["details"]["field"], "provider", "{path}: {err}");
        let all: Vec<&str> = ProviderKind::ALL.iter().map(|k| k.as_str()).collect();
        let expected = format!("provider: must be one of {} (configured on this server: sim)", all.join(", "));
        assert_eq!(err["error"]["message"], expected.as_str(), "{path}");
        assert!(expected.contains("twilio") && expected.contains("exotel"));
    }
    // A known provider without an account is refused by the assistant and number registries too.
    let (status, body) = app.post_json("/assistants", &json!({"id": "asst_t", "provider": "twilio", "phone_number_id": "pn"})).await;
    assert_not_configured(status, &body, "provider", &["twilio_account_sid", "twilio_auth_token", "twilio_twiml_url"]);
    let (status, body) = app.post_json("/phone-numbers", &json!({"number": "+14155550100", "provider": "exotel", "assistant_id": "asst_x"})).await;
    assert_not_configured(status, &body, "provider", &["exotel_sid", "exotel_api_key", "exotel_api_token", "exotel_flow_url"]);
    // Without `provider` a number is on Vapi, which has no account here either.
    let (status, body) = app.post_json("/phone-numbers", &json!({"number": "+14155550100", "assistant_id": "asst_x"})).await;
    assert_not_configured(status, &body, "provider", &["vapi_api_key"]);
}

/// A campaign stored on Twilio (as if created while the server had a Twilio account).
async fn twilio_campaign(app: &TestApp, mode: Mode) -> String {
    let ws = app.state.store.default_workspace().await.unwrap();
    let midnight = jiff::civil::Time::midnight();
    let cmp = app
        .state
        .store
        .create_campaign(
            NewCampaign {
                workspace_id: ws,
                name: "twilio, account since removed".into(),
                provider: ProviderKind::Twilio,
                assistant_id: "asst_t".into(),
                phone_number_id: TWILIO_CALLER.into(),
                mode,
                max_concurrent: 3,
                max_attempts: 3,
                retry: RetryPolicy::default(),
                default_region: "US".into(),
                schedule: dialtone_core::schedule::Schedule::always("UTC"),
                calling_hours: dialtone_core::schedule::LocalHours::new(midnight, midnight),
                recurrence: dialtone_core::frequency::Recurrence::new(dialtone_core::frequency::Frequency::Once),
                max_call_duration_secs: None,
                assume_campaign_timezone_for_ambiguous: false,
                agent_id: None,
                caller_pool: Default::default(),
                calls_per_minute: None,
                account_id: None,
            },
            app.state.now(),
        )
        .await
        .unwrap();
    cmp.id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_or_resuming_a_campaign_whose_provider_has_no_account_is_refused() {
    let app = TestApp::start().await;
    for mode in [Mode::Continuous, Mode::Batch] {
        let id = twilio_campaign(&app, mode).await;
        app.import_csv(&id, &contacts_csv(3)).await;
        let (status, body) = app.post(&format!("/campaigns/{id}/start")).await;
        assert_not_configured(status, &body, "provider", &["twilio_account_sid", "twilio_auth_token", "twilio_twiml_url"]);
        assert_eq!(app.campaign(&id).await["status"], "draft", "not started");

        // Paused (moved there behind the API's back): resume is refused the same way.
        let ws = app.state.store.default_workspace().await.unwrap();
        let cid = dialtone_core::CampaignId::parse(&id).unwrap();
        for (from, to) in [(CampaignStatus::Draft, CampaignStatus::Starting), (CampaignStatus::Starting, CampaignStatus::Paused)] {
            assert!(app.state.store.transition_campaign(&ws, &cid, &[from], to, app.state.now()).await.unwrap());
        }
        let (status, body) = app.post(&format!("/campaigns/{id}/resume")).await;
        assert_not_configured(status, &body, "provider", &["twilio_account_sid", "twilio_auth_token", "twilio_twiml_url"]);
        assert_eq!(app.campaign(&id).await["status"], "paused");
        // A state the verb does not apply to is still a conflict, whatever the provider.
        let (status, body) = app.post(&format!("/campaigns/{id}/start")).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("conflict")), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_campaign_whose_account_is_gone_waits_without_spending_its_contacts() {
    // Started while a Twilio account existed; this server has none. Before: three failed
    // calls, contacts exhausted, campaign completed. Now: the claims are given back.
    let app = TestApp::start().await;
    let id = twilio_campaign(&app, Mode::Batch).await;
    app.import_csv(&id, &contacts_csv(3)).await;
    let ws = app.state.store.default_workspace().await.unwrap();
    let cid = dialtone_core::CampaignId::parse(&id).unwrap();
    assert!(app.state.store.transition_campaign(&ws, &cid, &[CampaignStatus::Draft], CampaignStatus::Starting, app.state.now()).await.unwrap());
    app.state.engine.wake();
    let c = eventually(
        || async {
            // First a pass that claims nothing: the contacts were claimed already (by this
            // pass or the engine's own), so the engine has seen the campaign's provider.
            let claimed = app.state.engine.dispatch_once().await.unwrap();
            let c = app.campaign(&id).await;
            let waiting = c["waiting_reason"].as_str().is_some_and(|w| w.contains("no twilio provider is configured"));
            let calls = app.all_calls(&[("campaign_id", id.as_str())], 10).await;
            // Claimed, then given back: no call row is left, every contact is pending again.
            if claimed == 0 && waiting && calls.is_empty() && u(&c["counts"]["contacts"]["pending"]) == 3 {
                Ok(c)
            } else {
                Err(format!("{c} {calls:?}"))
            }
        },
        secs(5),
    )
    .await;
    assert_eq!(c["status"], "starting", "{c}");
    // Held back: later passes claim nothing and spend nothing.
    for _ in 0..3 {
        assert_eq!(app.state.engine.dispatch_once().await.unwrap(), 0);
    }
    let c = app.campaign(&id).await;
    assert_eq!((c["status"].as_str(), u(&c["counts"]["contacts"]["pending"])), (Some("starting"), 3), "{c}");
    assert!(c["counts"]["outcomes"].as_object().is_none_or(|o| o.is_empty()), "no call failed: {c}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_call_with_an_assistant_on_a_provider_without_an_account_is_refused() {
    let app = TestApp::start().await;
    let ws = app.state.store.default_workspace().await.unwrap();
    let assistant = Assistant { id: "asst_tw".into(), provider: ProviderKind::Twilio, phone_number_id: TWILIO_CALLER.into(), name: None };
    app.state.store.upsert_assistant(&ws, &assistant, app.state.now()).await.unwrap();
    let (status, body) = app.post_json("/calls", &json!({"assistant_id": "asst_tw", "phone": "+14155552671"})).await;
    assert_not_configured(status, &body, "assistant_id", &["twilio_account_sid", "twilio_auth_token", "twilio_twiml_url"]);
    assert!(app.all_calls(&[], 10).await.is_empty(), "nothing was scheduled");
}

async fn sim_assistant(app: &TestApp) {
    let (status, body) = app.post_json("/assistants", &json!({"id": "asst_s", "provider": "sim", "phone_number_id": "pn_s"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_call_to_a_listed_number_is_refused_with_409_dnc() {
    let app = TestApp::start().await;
    sim_assistant(&app).await;
    let (status, body) = app.post_json("/dnc", &json!({"numbers": ["+14155552671"], "reason": "opted out"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.post_json("/calls", &json!({"assistant_id": "asst_s", "phone": "+14155552671"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "dnc", "{body}");
    assert_eq!(body["error"]["details"]["field"], "phone", "{body}");
    assert_eq!(body["error"]["details"]["matches"][0]["reason"], "opted out", "{body}");
    assert!(app.all_calls(&[], 10).await.is_empty(), "nothing was scheduled");
    assert_eq!(app.sim_stats().dials, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_call_whose_number_is_listed_before_its_time_ends_canceled_dnc() {
    let app = TestApp::start().await;
    sim_assistant(&app).await;
    let soon = (jiff::Timestamp::now() + jiff::SignedDuration::from_millis(1500)).to_string();
    let mut ids = vec![];
    // A one-off call, and a recurring one (its next occurrence must not appear either).
    for (phone, extra) in [("+14155552671", json!({})), ("+14155552672", json!({"recurrence": {"frequency": {"type": "daily"}}}))] {
        let mut body = json!({"assistant_id": "asst_s", "phone": phone, "scheduled_for": soon});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, call) = app.post_json("/calls", &body).await;
        assert_eq!(status, StatusCode::CREATED, "{call}");
        assert_eq!(call["status"], "scheduled");
        ids.push(call["id"].as_str().unwrap().to_string());
    }
    let (status, body) = app.post_json("/dnc", &json!({"numbers": ["+14155552671", "+14155552672"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for id in &ids {
        let call = eventually(
            || async {
                let c = app.call(id).await;
                if c["status"] == "scheduled" {
                    Err(format!("{c}"))
                } else {
                    Ok(c)
                }
            },
            secs(10),
        )
        .await;
        assert_eq!(call["status"], "canceled", "{call}");
        assert_eq!(call["outcome"], "canceled", "{call}");
        assert_eq!(call["ended_reason"], "dnc", "{call}");
        let contact = app.get(&format!("/contacts/{}", call["contact_id"].as_str().unwrap())).await.1;
        assert_eq!(contact["status"], "dnc", "{contact}");
    }
    assert_eq!(app.all_calls(&[], 10).await.len(), 2, "no next occurrence of the recurring call");
    assert_eq!(app.sim_stats().dials, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_the_simulator_keeps_live_is_hung_up_at_the_campaigns_maximum_duration() {
    let hung = numbers(2);
    let mut options = Options::default();
    options.sim.number_outcomes = hung.iter().map(|n| (n.clone(), SimOutcome::Hang)).collect();
    // The simulator vouches for its hanging calls whenever the reaper asks.
    options.engine.stuck_timeout = ms(300);
    let app = TestApp::with(options).await;
    let id = app.create_campaign(json!({"max_concurrent": 1, "max_call_duration_secs": 1})).await;
    assert_eq!(app.campaign(&id).await["max_call_duration_secs"], 1);
    app.import_csv(&id, &contacts_csv(2)).await;
    app.act(&id, "start").await;

    // Cap 1 and two calls that never end by themselves: each is hung up after a second.
    let done = app.wait_for_status(&id, "completed", secs(20)).await;
    assert_eq!(u(&done["counts"]["outcomes"]["timeout"]), 2, "{}", done["counts"]);
    let sim = app.sim_stats();
    assert_eq!((sim.dials, sim.hangups, sim.active), (2, 2, 0), "each was hung up at the provider: {sim:?}");
    for call in app.all_calls(&[("campaign_id", id.as_str())], 10).await {
        assert_eq!((call["status"].as_str(), call["outcome"].as_str()), (Some("ended"), Some("timeout")), "{call}");
        assert!(call["ended_reason"].as_str().unwrap().contains("maximum duration of 1 s"), "{call}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_call_duration_secs_is_bounded() {
    let app = TestApp::start().await;
    for bad in [json!(0), json!(86_401)] {
        let (status, body) = app.post_json("/campaigns", &campaign_body(json!({"max_call_duration_secs": bad}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["details"]["field"], "max_call_duration_secs", "{body}");
    }
    let (status, body) = app.post_json("/campaigns", &campaign_body(json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["max_call_duration_secs"], Value::Null, "the server's default applies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_bounded_and_a_far_blackout_keeps_next_open_at() {
    let app = TestApp::start().await;
    let window = json!({"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "23:00"});
    let dates = |n: usize| -> Vec<String> {
        let first = jiff::civil::date(2027, 1, 1);
        (0..n as i64).map(|i| first.checked_add(jiff::Span::new().days(i)).unwrap().to_string()).collect()
    };
    let cases = [
        (json!({"timezone": "UTC", "windows": vec![window.clone(); 51]}), "schedule.windows"),
        (json!({"timezone": "UTC", "blackout_dates": dates(1001)}), "schedule.blackout_dates"),
        (json!({"timezone": "UTC", "start_date": "2027-01-01", "end_date": "2037-01-10"}), "schedule.end_date"),
        (json!({"timezone": "UTC", "windows": [{"days": ["mon", "mon"], "start": "09:00", "end": "17:00"}]}), "schedule.windows[0].days"),
    ];
    for (schedule, field) in cases {
        let (status, body) = app.post_json("/campaigns", &campaign_body(json!({"schedule": schedule}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {body}");
        assert_eq!(body["error"]["details"]["field"], field, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().starts_with(field), "{body}");
    }
    // The most a schedule may hold is accepted.
    let full = json!({"timezone": "UTC", "windows": vec![window; 50], "blackout_dates": dates(1000)});
    let (status, body) = app.post_json("/campaigns", &campaign_body(json!({"schedule": full}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // A blackout at the end of the calendar: still open now, not "never".
    let far = json!({"timezone": "UTC", "blackout_dates": ["9999-12-31"]});
    let (status, body) = app.post_json("/campaigns", &campaign_body(json!({"schedule": far}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap();
    let c = app.campaign(id).await;
    // A draft is not going to open by itself: no time, and the reason.
    assert!(c["next_open_at"].is_null(), "{c}");
    assert!(c["waiting_reason"].as_str().is_some_and(|w| w.contains("draft")), "{c}");
    // Started, with its one contact where it is 3 at night (outside the calling hours): it stays running.
    let zone = crate::batches::zone_at_local_hour(3);
    app.import_csv(id, &format!("phone,timezone\n{},{zone}\n", numbers(1)[0])).await;
    let (status, body) = app.post(&format!("/campaigns/{id}/start")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let c = app.campaign(id).await;
    assert!(c["next_open_at"].is_string(), "{c}");
}
