//! Campaigns on a workspace's own provider account (`account_id`, issue 13): the calls go
//! through that account (its credentials, its concurrency limit), its webhooks arrive on
//! its own route and are checked with its own secret, and no other account's webhook
//! (nor the config's) changes its calls.

use crate::support::*;
use dialtone_sim::SimOutcome;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn create_account(app: &TestApp, body: Value) -> String {
    let (status, a) = app.post_json("/provider-accounts", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    a["id"].as_str().unwrap().to_string()
}

fn vapi_account(app: &TestApp, name: &str, secret: &str) -> Value {
    json!({"provider": "vapi", "name": name, "credentials": {"api_key": SIM_KEY, "webhook_secret": secret, "base_url": app.sim_base}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_on_a_workspace_twilio_account_dials_through_it_within_its_limit_and_hears_its_own_callbacks() {
    let app = TestApp::with(Options { provider_accounts: true, ..Options::default() }).await;
    let twilio = json!({"provider": "twilio", "name": "Sub-account", "max_concurrent": 2, "calls_per_second": 500,
        "credentials": {"account_sid": TWILIO_SID, "auth_token": app.provider_token, "base_url": format!("{}/2010-04-01", app.sim_base),
            "twiml_url": "https://it.invalid/twiml"}});
    let account = create_account(&app, twilio).await;
    let campaign = app.create_campaign(json!({"provider": "twilio", "account_id": account, "phone_number_id": "+14155550100", "max_concurrent": 5})).await;
    assert_eq!(app.campaign(&campaign).await["account_id"], account.as_str());
    app.import_csv(&campaign, &contacts_csv(12)).await;
    app.act(&campaign, "start").await;
    let done = app.wait_for_status(&campaign, "completed", secs(60)).await;
    assert_eq!(total(&done["counts"]["contacts"]), 12, "{done}");

    let calls = app.all_calls(&[("campaign_id", campaign.as_str())], 100).await;
    assert!(calls.len() >= 12, "{calls:?}");
    for c in &calls {
        assert_eq!(c["account_id"], account.as_str(), "every call records the account it went through: {c}");
        // Ended by the provider's callbacks on the account's own route, not by the reaper.
        assert_ne!(c["outcome"], "timeout", "{c}");
    }
    // The account's limit (2), not the campaign's cap (5), bounded what the provider saw.
    let stats = app.sim_stats();
    assert_eq!(stats.peak_concurrent, 2, "{stats:?}");
    assert_eq!(stats.duplicate_dials, 0, "{stats:?}");
}

/// A Vapi call on workspace account A, held open by the provider and moved only by the
/// test's own webhooks.
async fn held_call_on(app: &TestApp, account: &str) -> (String, String) {
    let campaign = app.create_campaign(json!({"provider": "vapi", "account_id": account})).await;
    app.import_csv(&campaign, &contacts_csv(1)).await;
    app.act(&campaign, "start").await;
    app.dialed_call(&campaign).await
}

async fn post_vapi(app: &TestApp, path: &str, secret: &str, message: Value) -> (StatusCode, Value) {
    let body = json!({ "message": message }).to_string();
    send(app.http.post(app.url(path)).header("content-type", "application/json").bearer_auth(secret).body(body)).await
}

fn status_update(pid: &str, status: &str) -> Value {
    json!({"type": "status-update", "status": status, "call": {"id": pid}, "timestamp": jiff::Timestamp::now().as_millisecond()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_accounts_webhooks_are_checked_with_its_own_secret_and_change_only_its_own_calls() {
    let mut options = Options::default();
    options.sim.number_outcomes = numbers(1).into_iter().map(|n| (n, SimOutcome::Hang)).collect();
    options.sim_webhooks = false;
    // Nobody reconciles behind the test's back.
    options.engine.stuck_timeout = secs(600);
    let app = TestApp::with(options).await;
    let a = create_account(&app, vapi_account(&app, "A", "secret-of-account-a")).await;
    let b = create_account(&app, vapi_account(&app, "B", "secret-of-account-b")).await;
    let (call, pid) = held_call_on(&app, &a).await;
    assert_eq!(app.call(&call).await["account_id"], a.as_str());

    // Account A's route with B's secret (or the config's): 401, nothing stored.
    for secret in ["secret-of-account-b", app.webhook_secret.as_str()] {
        let (status, body) = post_vapi(&app, &format!("/webhooks/vapi/{a}"), secret, status_update(&pid, "in-progress")).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // An account that does not exist, or is not a Vapi account: 404.
    for path in ["/webhooks/vapi/pa_01jz0000000000000000000000", "/webhooks/vapi/not-an-id", &format!("/webhooks/twilio/{a}")] {
        let (status, body) = post_vapi(&app, path, "secret-of-account-a", status_update(&pid, "in-progress")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    assert_eq!(app.call(&call).await["events"].as_array().unwrap().len(), 0, "a refused webhook stores nothing");

    // B's own route and secret: authentic, stored, but A's call does not move.
    let (status, body) = post_vapi(&app, &format!("/webhooks/vapi/{b}"), "secret-of-account-b", status_update(&pid, "in-progress")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The config's route and secret: the same.
    let ended = json!({"type": "end-of-call-report", "endedReason": "customer-ended-call", "call": {"id": pid}});
    let (status, body) = app.webhook(ended.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let c = app.call(&call).await;
    assert_eq!(c["status"], "dialing", "another account's webhooks change nothing: {c}");
    let events = c["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "both stored with the call: {c}");
    assert!(events.iter().all(|e| e["applied"] == false), "{c}");

    // A's own route and secret: applied.
    let (status, _) = post_vapi(&app, &format!("/webhooks/vapi/{a}"), "secret-of-account-a", status_update(&pid, "in-progress")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.call(&call).await["status"], "in_progress");

    // A new webhook secret takes effect at once on this node (the account's client is
    // cached for webhooks, and dropped when the account changes): the old one is refused.
    let patch = json!({"credentials": {"webhook_secret": "new-secret-of-account-a"}});
    let (status, body) = send(app.api(Method::PATCH, &format!("/provider-accounts/{a}")).json(&patch)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = post_vapi(&app, &format!("/webhooks/vapi/{a}"), "secret-of-account-a", status_update(&pid, "in-progress")).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");

    // The call is hung up through its own account (the voice pipeline knows only the
    // call's id), not the config's client of its provider; also once A is disabled.
    let engine = &app.state.engine;
    let own = |p: Option<std::sync::Arc<dyn dialtone_providers::Provider>>| {
        let config = engine.provider(dialtone_core::ProviderKind::Vapi);
        p.is_some_and(|p| config.is_none_or(|c| !std::sync::Arc::ptr_eq(&p, c)))
    };
    let call_id = dialtone_core::CallId::parse(&call).unwrap();
    assert!(own(engine.provider_for_call_id(&call_id).await), "the call's own account's client");

    // Disabled, its calls under way still report on its route.
    let res = app.api(Method::DELETE, &format!("/provider-accounts/{a}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(own(engine.provider_for_call_id(&call_id).await), "a call under way on a disabled account is still hung up through it");
    let (status, _) = post_vapi(&app, &format!("/webhooks/vapi/{a}"), "new-secret-of-account-a", ended).await;
    assert_eq!(status, StatusCode::OK);
    let c = app.call(&call).await;
    assert_eq!((c["status"].as_str(), c["outcome"].as_str()), (Some("ended"), Some("completed")), "{c}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_id_must_be_the_workspaces_own_enabled_account_of_the_campaigns_provider() {
    let app = TestApp::start().await;
    let a = create_account(&app, vapi_account(&app, "A", "secret-of-account-a")).await;
    let body = |extra: Value| {
        let mut b = json!({"name": "x", "provider": "vapi", "assistant_id": "asst", "phone_number_id": "+14155550100"});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    // Another provider's, unknown, not an id: 422 naming account_id.
    for (extra, says) in [
        (json!({"provider": "twilio", "account_id": a}), "is a vapi account"),
        (json!({"account_id": "pa_01jz0000000000000000000000"}), "no provider account"),
        (json!({"account_id": "nope"}), "not a provider account id"),
    ] {
        let (status, err) = app.post_json("/campaigns", &body(extra)).await;
        assert_error(status, &err, StatusCode::UNPROCESSABLE_ENTITY, "invalid_account");
        assert_eq!(err["error"]["details"]["field"], "account_id", "{err}");
        assert!(err["error"]["message"].as_str().unwrap().contains(says), "{err}");
    }
    // Another workspace's: the same answer as an unknown one (it is not named as existing).
    let (status, made) = app.post_json("/workspaces", &json!({"name": "other", "key": {"name": "other-key"}})).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let other = made["key"]["key"].as_str().unwrap();
    let req = app.http.post(app.url("/api/v1/campaigns")).bearer_auth(other).json(&body(json!({"account_id": a})));
    let (status, err) = send(req).await;
    assert_error(status, &err, StatusCode::UNPROCESSABLE_ENTITY, "invalid_account");
    assert!(err["error"]["message"].as_str().unwrap().contains("no provider account"), "{err}");
    // Without a Vapi account configured, the workspace's own one is enough.
    let (status, created) = app.post_json("/campaigns", &body(json!({"account_id": a}))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    // Disabled: refused at create and at start.
    let res = app.api(Method::DELETE, &format!("/provider-accounts/{a}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (status, err) = app.post_json("/campaigns", &body(json!({"account_id": a}))).await;
    assert_error(status, &err, StatusCode::UNPROCESSABLE_ENTITY, "invalid_account");
    let (status, err) = app.post(&format!("/campaigns/{}/start", created["id"].as_str().unwrap())).await;
    assert_error(status, &err, StatusCode::UNPROCESSABLE_ENTITY, "invalid_account");
    assert!(err["error"]["message"].as_str().unwrap().contains("disabled"), "{err}");
}
