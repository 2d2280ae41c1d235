//! The cross-workspace suite (issue 13): generated from the OpenAPI document, it calls
//! every operation with workspace B's key and workspace A's ids in the path (and query),
//! and requires a 404 from every route that names one of A's objects (never a 403, which
//! would confirm it exists, never a 2xx), A's state unchanged afterwards, and nothing of A
//! in anything B can read: lists, `/stats`, the first snapshot of `GET /events`. The
//! dashboard reads only these `/api/v1` routes, so its data is covered with them. A route
//! added to the API is called by construction; one whose path parameter or body the suite
//! cannot fill makes it fail until it is taught here.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;

struct Client<'a> {
    app: &'a TestApp,
    key: String,
}

impl Client<'_> {
    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.app.http.request(method, self.app.url(&format!("/api/v1{path}"))).bearer_auth(&self.key)
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
    async fn text(&self, path: &str) -> String {
        let res = self.req(Method::GET, path).send().await.unwrap();
        assert!(res.status().is_success(), "GET {path}: {}", res.status());
        res.text().await.unwrap()
    }
}

async fn workspace(app: &TestApp, name: &str) -> (String, String, String) {
    let (status, body) = app.post_json("/workspaces", &json!({ "name": name, "key": {"name": format!("{name}-key")} })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (body["workspace"]["id"].as_str().unwrap().into(), body["key"]["key"].as_str().unwrap().into(), body["key"]["id"].as_str().unwrap().into())
}

fn in_ms(ms: i64) -> String {
    (jiff::Timestamp::now() + jiff::SignedDuration::from_millis(ms)).to_string()
}

/// Workspace A's objects, by kind, and the strings that must never show to B.
struct World {
    ws: String,
    key_id: String,
    campaign: String,
    calls: Vec<String>,
    scheduled_call: String,
    contact: String,
    agent: String,
    dnc_phones: Vec<String>,
    number: String,
    idempotent: (Value, Value),
    stats_window: String,
    /// A batch held until later (its state does not move during the suite).
    batch: String,
    /// A webhook endpoint of A's, and one message in its outbox.
    endpoint: String,
    message: String,
    /// A provider account of A's (its name and its token's last four are markers too).
    provider_account: String,
}

impl World {
    fn markers(&self) -> Vec<String> {
        let mut m = vec![
            self.ws.clone(),
            self.key_id.clone(),
            self.campaign.clone(),
            self.contact.clone(),
            self.agent.clone(),
            self.number.clone(),
            self.batch.clone(),
            self.endpoint.clone(),
            self.message.clone(),
            self.provider_account.clone(),
        ];
        m.extend(self.calls.iter().cloned());
        m.extend(self.dnc_phones.iter().cloned());
        m.extend([
            "asst_workspace_a".to_string(),
            "Campaign of A".to_string(),
            "Agent of A".to_string(),
            "Twilio of A".to_string(),
            "ACworkspaceA".to_string(),
        ]);
        m
    }

    /// The values the suite puts in a path parameter of `path`.
    fn path_values(&self, path: &str, param: &str) -> Vec<String> {
        let resource = path.trim_start_matches("/api/v1/").split('/').next().unwrap_or("");
        match (resource, param) {
            ("campaigns", "id") => vec![self.campaign.clone()],
            ("calls", "id") => self.calls.iter().cloned().chain([self.scheduled_call.clone()]).collect(),
            ("contacts", "id") => vec![self.contact.clone()],
            ("agents", "id") => vec![self.agent.clone()],
            ("workspaces", "id") => vec![self.ws.clone()],
            ("keys", "id") => vec![self.key_id.clone()],
            ("batches", "id") => vec![self.batch.clone()],
            ("webhook-endpoints", "id") => vec![self.endpoint.clone()],
            ("webhook-endpoints", "message_id") => vec![self.message.clone()],
            ("provider-accounts", "id") => vec![self.provider_account.clone()],
            ("campaigns" | "dnc", "phone") => self.dnc_phones.clone(),
            ("phone-numbers", "number") => vec![self.number.clone()],
            _ => panic!("the isolation suite cannot fill {{{param}}} of {path}: teach World::path_values which of A's ids it takes"),
        }
    }

    /// A's value for a query parameter named `name`, if it names one of A's objects.
    fn query_value(&self, name: &str) -> Option<String> {
        match name {
            "campaign_id" => Some(self.campaign.clone()),
            "phone" => Some(self.dnc_phones[0].clone()),
            "workspace_id" => Some(self.ws.clone()),
            _ => None,
        }
    }
}

/// A body the route would accept from A, so that only the workspace can make B's request fail.
fn body_for(method: &str, path: &str) -> Option<(&'static str, String)> {
    let j = |v: Value| Some(("application/json", v.to_string()));
    match (method, path) {
        ("patch", "/api/v1/campaigns/{id}") => j(json!({"name": "hijacked", "max_concurrent": 1})),
        ("post", "/api/v1/campaigns/{id}/contacts") => Some(("text/csv", "phone\n+14155550123\n".to_string())),
        ("post", "/api/v1/campaigns/{id}/dnc") => j(json!({"numbers": ["+14155550124"]})),
        ("put", "/api/v1/calls/{id}") => j(json!({"scheduled_for": in_ms(7_200_000)})),
        ("patch", "/api/v1/agents/{id}") => j(json!({"name": "hijacked"})),
        ("patch", "/api/v1/workspaces/{id}") => j(json!({"name": "hijacked", "disabled": true})),
        ("patch", "/api/v1/webhook-endpoints/{id}") => j(json!({"url": "https://hijacked.example/hook", "enabled": false})),
        ("patch", "/api/v1/provider-accounts/{id}") => j(json!({"name": "hijacked", "credentials": {"auth_token": "hijacked-token-0000"}, "enabled": false})),
        _ => None,
    }
}

async fn build_a(a: &Client<'_>, ws: String, key_id: String) -> World {
    // An endpoint whose name never resolves (.invalid): its deliveries fail and wait in the outbox.
    let endpoint = a.ok(Method::POST, "/webhook-endpoints", Some(json!({"url": "https://hooks.example.invalid/a", "events": ["campaign.started"]}))).await
        ["id"]
        .as_str()
        .unwrap()
        .to_string();
    a.ok(Method::POST, "/assistants", Some(json!({"id": "asst_workspace_a", "provider": "sim", "phone_number_id": "pn_workspace_a"}))).await;
    let campaign = a
        .ok(
            Method::POST,
            "/campaigns",
            Some(json!({"name": "Campaign of A", "provider": "sim", "assistant_id": "asst_workspace_a", "phone_number_id": PHONE_NUMBER_ID,
                "max_concurrent": 5, "max_attempts": 1, "calling_hours": {"start": "00:00", "end": "00:00"}})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let res = a.req(Method::POST, &format!("/campaigns/{campaign}/contacts")).header("content-type", "text/csv").body(contacts_csv(3)).send().await.unwrap();
    assert!(res.status().is_success());
    a.ok(Method::POST, &format!("/campaigns/{campaign}/start"), None).await;
    let single =
        a.ok(Method::POST, "/calls", Some(json!({"assistant_id": "asst_workspace_a", "phone": "+14155550131"}))).await["id"].as_str().unwrap().to_string();
    let scheduled =
        a.ok(Method::POST, "/calls", Some(json!({"assistant_id": "asst_workspace_a", "phone": "+14155550132", "scheduled_for": in_ms(3_600_000)}))).await["id"]
            .as_str()
            .unwrap()
            .to_string();
    eventually(
        || async {
            let c = a.ok(Method::GET, &format!("/campaigns/{campaign}"), None).await;
            let s = a.ok(Method::GET, &format!("/calls/{single}"), None).await;
            let done = c["status"] == "completed" && s["status"] == "ended";
            if done {
                Ok(())
            } else {
                Err(format!("{} / {}", c["status"], s["status"]))
            }
        },
        secs(30),
    )
    .await;
    let calls_page = a.ok(Method::GET, &format!("/calls?campaign_id={campaign}&limit=500"), None).await;
    let mut calls: Vec<String> = calls_page["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect();
    assert!(!calls.is_empty(), "A's campaign placed calls");
    calls.push(single);
    let contact = a.ok(Method::GET, &format!("/campaigns/{campaign}/contacts"), None).await["data"][0]["id"].as_str().unwrap().to_string();
    let agent = a
        .ok(
            Method::POST,
            "/agents",
            Some(json!({"name": "Agent of A", "greeting": "Hello.", "system_prompt": "Be brief.", "goodbye": "Bye.",
                "stt": {"provider": "sim"}, "llm": {"provider": "sim"}, "tts": {"provider": "sim"}})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    a.ok(Method::POST, "/phone-numbers", Some(json!({"number": "+14155550141", "provider": "sim", "assistant_id": "asst_workspace_a"}))).await;
    let req = a.req(Method::POST, "/dnc").header("idempotency-key", "isolation-key").json(&json!({"numbers": ["+14155550151"]}));
    let (status, first) = send(req).await;
    assert!(status.is_success(), "{first}");
    a.ok(Method::POST, &format!("/campaigns/{campaign}/dnc"), Some(json!({"numbers": ["+14155550152"]}))).await;
    let batch = a
        .ok(
            Method::POST,
            "/batches",
            Some(json!({"name": "Batch of A", "provider": "sim", "assistant_id": "asst_workspace_a", "phone_number_id": PHONE_NUMBER_ID,
                "start_at": in_ms(7_200_000), "calls": [{"phone": "+14155550161"}]})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let provider_account = a
        .ok(
            Method::POST,
            "/provider-accounts",
            Some(json!({"provider": "twilio", "name": "Twilio of A", "credentials": {"account_sid": "ACworkspaceA", "auth_token": "token-of-workspace-a-1234",
                "twiml_url": "https://example.com/twiml"}, "max_concurrent": 2})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deliveries = a.ok(Method::GET, &format!("/webhook-endpoints/{endpoint}/deliveries"), None).await;
    let message = deliveries["data"][0]["message_id"].as_str().unwrap_or_else(|| panic!("A's endpoint has a message: {deliveries}")).to_string();
    let now = jiff::Timestamp::now();
    let stats_window = format!("from={}&to={}", now - jiff::SignedDuration::from_hours(1), now + jiff::SignedDuration::from_hours(1));
    World {
        ws,
        key_id,
        campaign,
        calls,
        scheduled_call: scheduled,
        contact,
        agent,
        dnc_phones: vec!["+14155550151".into(), "+14155550152".into()],
        number: "+14155550141".into(),
        idempotent: (json!({"numbers": ["+14155550151"]}), first),
        stats_window,
        batch,
        endpoint,
        message,
        provider_account,
    }
}

/// Removes the fields that move with the clock alone: a key's last use, a campaign's next
/// open time (computed from now), an endpoint's first failure (the delivery worker's).
fn drop_moving(v: &mut Value) {
    match v {
        Value::Object(o) => {
            o.remove("last_used_at");
            o.remove("next_open_at");
            // An endpoint's: set by the delivery worker's first failed try, whenever it runs.
            o.remove("failing_since");
            o.values_mut().for_each(drop_moving);
        }
        Value::Array(a) => a.iter_mut().for_each(drop_moving),
        _ => {}
    }
}

/// Everything A can read of itself, less the fields that move with the clock alone.
async fn snapshot(a: &Client<'_>, w: &World) -> BTreeMap<String, Value> {
    let mut paths = vec![
        format!("/campaigns/{}", w.campaign),
        format!("/campaigns/{}/contacts?limit=500", w.campaign),
        format!("/campaigns/{}/dnc", w.campaign),
        "/calls?limit=500".to_string(),
        format!("/contacts/{}", w.contact),
        "/dnc".to_string(),
        "/agents".to_string(),
        format!("/agents/{}", w.agent),
        "/phone-numbers".to_string(),
        "/assistants".to_string(),
        format!("/workspaces/{}", w.ws),
        "/keys".to_string(),
        format!("/stats?{}", w.stats_window),
        format!("/batches/{}", w.batch),
        "/batches".to_string(),
        "/webhook-endpoints".to_string(),
        "/provider-accounts".to_string(),
        format!("/provider-accounts/{}", w.provider_account),
    ];
    paths.extend(w.calls.iter().chain([&w.scheduled_call]).map(|c| format!("/calls/{c}")));
    let mut out = BTreeMap::new();
    for p in paths {
        let mut v = a.ok(Method::GET, &p, None).await;
        drop_moving(&mut v);
        out.insert(p, v);
    }
    let export = a.text(&format!("/campaigns/{}/export.csv", w.campaign)).await;
    out.insert("export.csv".into(), Value::String(export));
    out
}

/// What `GET /api/v1/events` sends B up to and including its first snapshot's event of
/// B's own campaign `own` (a workspace with nothing to show gets only heartbeats).
async fn first_snapshot(b: &Client<'_>, own: &str) -> String {
    let mut res = b.req(Method::GET, "/events").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + secs(10);
    while !String::from_utf8_lossy(&buf).split_once(own).is_some_and(|(_, rest)| rest.contains("\n\n")) {
        match tokio::time::timeout_at(deadline, res.chunk()).await {
            Ok(Ok(Some(chunk))) => buf.extend_from_slice(&chunk),
            other => panic!("no first event from /events: {other:?}"),
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_b_reaches_nothing_of_workspace_a_on_any_route_of_the_document() {
    let app = TestApp::start().await;
    let (ws_a, key_a, key_a_id) = workspace(&app, "A").await;
    let (_, key_b, _) = workspace(&app, "B").await;
    let (_, key_c, _) = workspace(&app, "C (empty)").await;
    let a = Client { app: &app, key: key_a };
    let b = Client { app: &app, key: key_b };
    let c = Client { app: &app, key: key_c };
    let w = build_a(&a, ws_a, key_a_id).await;
    let markers = w.markers();
    let b_campaign = b
        .ok(Method::POST, "/campaigns", Some(json!({"name": "Campaign of B", "provider": "sim", "assistant_id": "asst_b", "phone_number_id": PHONE_NUMBER_ID})))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = snapshot(&a, &w).await;
    let leaks = |what: &str, text: &str| {
        for m in &markers {
            assert!(!text.contains(m.as_str()), "{what} shows A's {m} to B: {text}");
        }
    };

    let doc = serde_json::to_value(dialtone_server::api::openapi_document()).unwrap();
    let mut called = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("responses").is_none() {
                continue;
            }
            if path == "/api/v1/events" {
                leaks("the first snapshot of GET /events", &first_snapshot(&b, &b_campaign).await);
                called += 1;
                continue;
            }
            // Every path parameter filled with each of A's values for it.
            let params: Vec<String> = path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).map(str::to_string).collect();
            let mut urls = vec![path.trim_start_matches("/api/v1").to_string()];
            for p in &params {
                let values = w.path_values(path, p);
                urls = urls
                    .iter()
                    .flat_map(|u| {
                        values.iter().map(move |v| u.replace(&format!("{{{p}}}"), &url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()))
                    })
                    .collect();
            }
            let query: Vec<(String, String)> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str().and_then(|n| w.query_value(n).map(|v| (n.to_string(), v))))
                .collect();
            let has_body = op.get("requestBody").is_some();
            let body = body_for(method, path);
            if has_body && body.is_none() && !params.is_empty() {
                panic!("the isolation suite has no body for {method} {path}: add one A would be accepted with to body_for");
            }
            for url in urls {
                let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let mut req = b.req(m, &url).query(&query);
                if has_body {
                    let (ct, text) = body.clone().unwrap_or(("application/json", "{}".into()));
                    req = req.header("content-type", ct).body(text);
                }
                let res = req.send().await.unwrap();
                let status = res.status();
                let text = res.text().await.unwrap();
                called += 1;
                assert_ne!(status, StatusCode::FORBIDDEN, "{method} {url} with B's key: a 403 confirms A's object exists: {text}");
                assert!(!status.is_server_error(), "{method} {url}: {status} {text}");
                if !params.is_empty() {
                    assert_eq!(status, StatusCode::NOT_FOUND, "{method} {url} with B's key and A's id: {text}");
                    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["error"]["code"], "not_found", "{method} {url}: {text}");
                } else if status.is_success() {
                    leaks(&format!("{method} {url}"), &text);
                }
            }
        }
    }
    assert!(called >= 45, "the suite called {called} operations");

    // B's statistics are those of an empty workspace; B's Idempotency-Key space is its own.
    let window = format!("/stats?{}", w.stats_window);
    assert_eq!(b.ok(Method::GET, &window, None).await, c.ok(Method::GET, &window, None).await, "B's /stats count A's calls");
    let (status, body) = send(b.req(Method::POST, "/dnc").header("idempotency-key", "isolation-key").json(&json!({"numbers": ["+14155550199"]}))).await;
    assert_eq!(status, StatusCode::OK, "A's Idempotency-Key is not B's: {body}");
    let (status, replay) = send(a.req(Method::POST, "/dnc").header("idempotency-key", "isolation-key").json(&w.idempotent.0)).await;
    assert_eq!((status, &replay), (StatusCode::OK, &w.idempotent.1), "A's idempotency record is intact");

    let after = snapshot(&a, &w).await;
    for (k, v) in &before {
        assert_eq!(Some(v), after.get(k), "A's {k} changed while B called every route");
    }
}
