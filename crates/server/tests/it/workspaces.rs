//! Workspaces and scoped API keys (issue 13): management by an admin key, scopes by
//! method (403 `insufficient_scope`), revocation and disabled workspaces answered with 401
//! at once on every node, and the cross-workspace suite: every route of the OpenAPI
//! document called with workspace B's key and workspace A's ids answers 404, changes
//! nothing of A and shows nothing of A.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

/// Requests with one key.
struct Client<'a> {
    app: &'a TestApp,
    key: String,
}

impl Client<'_> {
    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.app.http.request(method, self.app.url(&format!("/api/v1{path}"))).bearer_auth(&self.key)
    }
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        send(self.req(Method::GET, path)).await
    }
    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        send(self.req(Method::POST, path).json(body)).await
    }
    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let req = self.req(method.clone(), path);
        let (status, v) = send(match body {
            Some(b) => req.json(&b),
            None => req,
        })
        .await;
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v
    }
}

/// Creates a workspace with the operator's key; its id and its first key (all scopes unless given).
async fn workspace(app: &TestApp, name: &str, scopes: Option<&[&str]>) -> (String, String, String) {
    let mut key = json!({ "name": format!("{name}-admin") });
    if let Some(s) = scopes {
        key["scopes"] = json!(s);
    }
    let (status, body) = app.post_json("/workspaces", &json!({ "name": name, "key": key })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body["key"]["key"].as_str().unwrap().starts_with("dt_"), "{body}");
    (body["workspace"]["id"].as_str().unwrap().into(), body["key"]["key"].as_str().unwrap().into(), body["key"]["id"].as_str().unwrap().into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_admin_manages_workspaces_and_a_tenant_admin_only_its_own() {
    let app = TestApp::start().await;
    let (status, body) = app.get("/workspaces").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(body["data"][0]["is_default"], true);
    let default_id = body["data"][0]["id"].as_str().unwrap().to_string();

    let (a, key_a, _) = workspace(&app, "Acme", None).await;
    let (b, _, _) = workspace(&app, "Beta", None).await;
    let (_, body) = app.get("/workspaces").await;
    assert_eq!(body["data"].as_array().unwrap().len(), 3, "the operator sees every workspace: {body}");

    let tenant = Client { app: &app, key: key_a.clone() };
    let (_, mine) = tenant.get("/workspaces").await;
    let ids: Vec<&str> = mine["data"].as_array().unwrap().iter().map(|w| w["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![a.as_str()], "a tenant admin sees only its own workspace");
    for other in [&b, &default_id] {
        let (status, body) = tenant.get(&format!("/workspaces/{other}")).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
        let (status, body) = send(tenant.req(Method::PATCH, &format!("/workspaces/{other}")).json(&json!({"name": "taken"}))).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    }
    let renamed = tenant.ok(Method::PATCH, &format!("/workspaces/{a}"), Some(json!({"name": "Acme Ltd"}))).await;
    assert_eq!(renamed["name"], "Acme Ltd");
    let (status, body) = send(tenant.req(Method::PATCH, &format!("/workspaces/{a}")).json(&json!({"disabled": true}))).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "insufficient_scope");
    let (status, body) = tenant.post("/workspaces", &json!({"name": "mine too"})).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "insufficient_scope");

    let (status, body) = send(app.api(Method::PATCH, &format!("/workspaces/{default_id}")).json(&json!({"disabled": true}))).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let (status, body) = app.post_json("/workspaces", &json!({"name": "  "})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(body["error"]["details"]["field"], "name");
    let (status, body) = app.post_json("/workspaces", &json!({"name": "x", "key": {"name": "k", "scopes": ["root"]}})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(body["error"]["details"]["field"], "key.scopes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_gate_reads_writes_and_management() {
    let app = TestApp::start().await;
    let make = |scopes: Value| {
        let app = &app;
        async move {
            let (status, body) = app.post_json("/keys", &json!({"name": "scoped", "scopes": scopes})).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            assert!(body["key"].as_str().unwrap().starts_with(body["prefix"].as_str().unwrap()));
            Client { app, key: body["key"].as_str().unwrap().into() }
        }
    };
    let reader = make(json!(["read"])).await;
    let writer = make(json!(["write"])).await;
    let admin = make(json!(["admin"])).await;

    assert_eq!(reader.get("/campaigns").await.0, StatusCode::OK);
    let (status, body) = reader.post("/dnc", &json!({"numbers": ["+14155550100"]})).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "insufficient_scope");
    assert_eq!(body["error"]["details"]["required_scope"], "write");
    let (status, body) = send(reader.req(Method::DELETE, "/dnc/+14155550100")).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "insufficient_scope");
    let (status, body) = reader.get("/keys").await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "insufficient_scope");
    assert_eq!(body["error"]["details"]["required_scope"], "admin");

    let (status, body) = writer.get("/campaigns").await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "insufficient_scope");
    assert_eq!(writer.post("/dnc", &json!({"numbers": ["+14155550100"]})).await.0, StatusCode::OK);
    let (status, body) = writer.post("/keys", &json!({"name": "escalate", "scopes": ["admin"]})).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "insufficient_scope");

    let (status, body) = admin.get("/campaigns").await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "insufficient_scope");
    let (_, keys) = admin.get("/keys").await;
    let listed = keys["data"].as_array().unwrap();
    assert_eq!(listed.len(), 4, "the harness's key and the three: {keys}");
    for k in listed {
        assert!(k.get("key").is_none() && k.get("key_hash").is_none(), "a listed key shows no secret: {k}");
        assert_eq!(k["prefix"].as_str().map_or(8, str::len), 8, "{k}");
    }
    let scopes: Vec<&Value> = listed.iter().map(|k| &k["scopes"]).collect();
    assert!(scopes.contains(&&json!(["read", "write", "admin"])), "the harness's key (made like the first-start key) has every scope: {scopes:?}");
    assert!(scopes.contains(&&json!(["read"])));
    let (status, body) = app.post_json("/keys", &json!({"name": "x", "scope": ["read"]})).await;
    assert!(status == StatusCode::BAD_REQUEST, "an unknown field is refused: {body}");
    let (status, body) = send(app.api(Method::GET, "/keys?workspace_id=ws_nothing")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

/// A second server on the same database: what one node revokes or disables, the other
/// refuses at once (each request reads the key and its workspace from the database).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_or_a_disabled_workspace_gets_401_at_once_on_every_node() {
    let app = TestApp::start().await;
    let config = dialtone_server::config::Config {
        database_url: app.database_url.clone().into(),
        sim_base_url: app.sim_base.clone(),
        sim_api_key: SIM_KEY.into(),
        ..dialtone_server::config::Config::default()
    };
    let state = dialtone_server::app::build(&config, dialtone_engine::EngineConfig::default(), Arc::new(dialtone_core::SystemClock)).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = format!("http://{}", listener.local_addr().unwrap());
    let cancel = tokio_util::sync::CancellationToken::new();
    let _stop = cancel.clone().drop_guard();
    tokio::spawn(dialtone_server::app::serve(state, listener, cancel));
    let on_other = |key: &str| app.http.get(format!("{other}/api/v1/campaigns")).bearer_auth(key.to_string());

    let (ws, key, key_id) = workspace(&app, "Acme", None).await;
    let (_, second, _) = workspace(&app, "Acme two", None).await;
    let _ = second;
    let (_, k2) = app.post_json("/keys", &json!({"name": "spare", "workspace_id": ws})).await;
    let spare = k2["key"].as_str().unwrap().to_string();
    assert_eq!(send(on_other(&key)).await.0, StatusCode::OK);
    assert_eq!(send(on_other(&spare)).await.0, StatusCode::OK);

    // Revoked through node 1 (the operator's key may revoke any workspace's key).
    assert_eq!(send(app.api(Method::DELETE, &format!("/keys/{key_id}"))).await.0, StatusCode::NO_CONTENT);
    let (status, body) = send(on_other(&key)).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(send(on_other(&spare)).await.0, StatusCode::OK, "the workspace's other key still works");
    let (status, _) = send(app.api(Method::DELETE, &format!("/keys/{key_id}"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "revoked already");

    // Disabled through node 1: every key of it is refused by node 2 at once; enabled again, accepted.
    let w = app.http.patch(app.url(&format!("/api/v1/workspaces/{ws}"))).bearer_auth(&app.key).json(&json!({"disabled": true}));
    let (status, w) = send(w).await;
    assert_eq!(status, StatusCode::OK, "{w}");
    assert!(w["disabled_at"].is_string(), "{w}");
    let (status, body) = send(on_other(&spare)).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let w = app.http.patch(app.url(&format!("/api/v1/workspaces/{ws}"))).bearer_auth(&app.key).json(&json!({"disabled": false}));
    assert_eq!(send(w).await.0, StatusCode::OK);
    assert_eq!(send(on_other(&spare)).await.0, StatusCode::OK);
}

/// The config file's provider accounts are the default workspace's: another workspace calls
/// a real provider only through its own account (`account_id`), whatever it creates —
/// campaign, batch, single call, inbound number — and is not told the server's settings.
/// The simulator is shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_own_provider_accounts_are_the_default_workspaces() {
    let app = TestApp::with(Options { provider_accounts: true, ..Options::default() }).await;
    let (_, key, _) = workspace(&app, "Tenant", None).await;
    let tenant = Client { app: &app, key };
    let hours = json!({"start": "00:00", "end": "00:00"});
    let twilio = json!({"name": "t", "provider": "twilio", "assistant_id": "asst_t", "phone_number_id": TWILIO_CALLER, "calling_hours": hours});
    let (status, body) = app.post_json("/campaigns", &twilio).await;
    assert_eq!(status, StatusCode::CREATED, "the default workspace uses the server's account: {body}");

    let refused = |status: StatusCode, body: &Value, field: &str| {
        assert_error(status, body, StatusCode::UNPROCESSABLE_ENTITY, "invalid_account");
        assert_eq!(body["error"]["details"]["field"], field, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(if field == "account_id" { "/provider-accounts" } else { "default workspace" }), "{message}");
        assert!(!message.contains("DIALTONE_") && !message.contains("Configured providers"), "a tenant is not told the server's settings: {message}");
    };
    let (status, body) = tenant.post("/campaigns", &twilio).await;
    refused(status, &body, "account_id");
    let batch = json!({"provider": "twilio", "assistant_id": "asst_t", "phone_number_id": TWILIO_CALLER, "calls": [{"phone": numbers(1)[0]}]});
    let (status, body) = tenant.post("/batches", &batch).await;
    refused(status, &body, "account_id");
    // An assistant may be registered (its calls will name the workspace's account)...
    let (status, body) = tenant.post("/assistants", &json!({"id": "asst_t", "provider": "twilio", "phone_number_id": TWILIO_CALLER})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // ... but a call on the server's account is refused, and so is an inbound number on it.
    let (status, body) = tenant.post("/calls", &json!({"assistant_id": "asst_t", "phone": numbers(1)[0]})).await;
    refused(status, &body, "account_id");
    let (status, body) = tenant.post("/phone-numbers", &json!({"number": "+14155550166", "provider": "twilio", "assistant_id": "asst_t"})).await;
    refused(status, &body, "provider");
    let (_, numbers_listed) = tenant.get("/phone-numbers").await;
    assert_eq!(numbers_listed["data"], json!([]), "nothing stored: {numbers_listed}");

    // Through its own account, the same campaign is accepted; on the simulator, too.
    // (Twilio's own address: a tenant's account may not point at a private one such as the
    // simulator's, and this campaign is not started.)
    let own = json!({"provider": "twilio", "name": "Own", "credentials": {"account_sid": TWILIO_SID, "auth_token": app.provider_token,
        "twiml_url": "https://it.invalid/twiml"}});
    let account = tenant.ok(Method::POST, "/provider-accounts", Some(own)).await;
    let mut with_account = twilio.clone();
    with_account["account_id"] = account["id"].clone();
    let (status, body) = tenant.post("/campaigns", &with_account).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let sim = json!({"name": "s", "provider": "sim", "assistant_id": "asst_s", "phone_number_id": PHONE_NUMBER_ID});
    let (status, body) = tenant.post("/campaigns", &sim).await;
    assert_eq!(status, StatusCode::CREATED, "the simulator is shared: {body}");
}

/// `share_config_accounts = true`: every workspace may use the server's accounts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_may_share_the_servers_provider_accounts_with_every_workspace() {
    let app = TestApp::with(Options { provider_accounts: true, configure: |c| c.share_config_accounts = true, ..Options::default() }).await;
    let (_, key, _) = workspace(&app, "Tenant", None).await;
    let tenant = Client { app: &app, key };
    let twilio = json!({"name": "t", "provider": "twilio", "assistant_id": "asst_t", "phone_number_id": TWILIO_CALLER});
    let (status, body) = tenant.post("/campaigns", &twilio).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// Disabling a workspace stops its dialling, not only its keys: its campaigns place no new
/// call (the call under way finishes), and go on where they were once it is enabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_workspaces_campaigns_dial_nothing_new_until_it_is_enabled() {
    let mut options = Options::default();
    options.sim.number_outcomes = numbers(3).into_iter().map(|n| (n, dialtone_sim::SimOutcome::Hang)).collect();
    // The test plays the provider's side; nobody reconciles behind its back.
    options.sim_webhooks = false;
    options.engine.stuck_timeout = secs(600);
    let app = TestApp::with(options).await;
    let (ws, key, _) = workspace(&app, "Tenant", None).await;
    let tenant = Client { app: &app, key };
    let body = json!({"name": "t", "provider": "sim", "assistant_id": "asst_it", "phone_number_id": PHONE_NUMBER_ID,
        "max_concurrent": 1, "max_attempts": 1, "calling_hours": {"start": "00:00", "end": "00:00"}});
    let campaign = tenant.ok(Method::POST, "/campaigns", Some(body)).await["id"].as_str().unwrap().to_string();
    let import = tenant.req(Method::POST, &format!("/campaigns/{campaign}/contacts")).header("content-type", "text/csv").body(contacts_csv(3));
    let (status, report) = send(import).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    tenant.ok(Method::POST, &format!("/campaigns/{campaign}/start"), None).await;
    let (call, pid) = eventually(
        || async {
            let (_, calls) = tenant.get(&format!("/calls?campaign_id={campaign}")).await;
            match calls["data"].as_array().and_then(|c| c.first()) {
                Some(c) if c["provider_call_id"].is_string() => {
                    Ok((c["id"].as_str().unwrap().to_string(), c["provider_call_id"].as_str().unwrap().to_string()))
                }
                _ => Err(format!("{calls}")),
            }
        },
        secs(10),
    )
    .await;

    let operator = Client { app: &app, key: app.key.clone() };
    operator.ok(Method::PATCH, &format!("/workspaces/{ws}"), Some(json!({"disabled": true}))).await;
    // The held call ends at the provider: its slot is free, two contacts are due.
    let (status, body) = app.webhook(json!({"type": "end-of-call-report", "endedReason": "customer-ended-call", "call": {"id": pid}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let store = &app.state.store;
    let (ws_id, call_id) = (dialtone_core::WorkspaceId::from_db(ws.clone()), dialtone_core::CallId::parse(&call).unwrap());
    eventually(
        || async {
            match store.get_call(&ws_id, &call_id).await.unwrap() {
                Some(c) if c.status == dialtone_core::CallStatus::Ended => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
        secs(10),
    )
    .await;
    let campaign_id = dialtone_core::CampaignId::parse(&campaign).unwrap();
    let runnable = store.runnable_campaigns(jiff::Timestamp::now()).await.unwrap();
    assert!(!runnable.contains(&campaign_id), "the dispatcher does not look at a disabled workspace's campaign");
    assert_eq!(app.sim_stats().dials, 1, "no new call was placed after the workspace was disabled");

    operator.ok(Method::PATCH, &format!("/workspaces/{ws}"), Some(json!({"disabled": false}))).await;
    eventually(
        || async {
            match app.sim_stats().dials {
                2 => Ok(()),
                n => Err(format!("{n} dials")),
            }
        },
        secs(10),
    )
    .await;
}
