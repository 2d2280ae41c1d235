//! A real webhook receiver on its own port and small helpers around the sim.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use dialtone_sim::{Sim, SimConfig, SimHandle, SimStats};
use serde_json::{json, Value};

#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    /// The full URL as requested: `http://{Host}{path}?{query}`.
    pub url: String,
    pub raw: Bytes,
    /// The JSON body, or `Null` for a form body.
    pub body: Value,
    /// The form fields in order, for a form body.
    pub form: Vec<(String, String)>,
    /// The sim's `active` count at the moment this webhook arrived.
    pub sim_active: Option<u64>,
    /// The call's status per `GET /call/{id}`'s source of truth at arrival.
    pub sim_status: Option<String>,
}

impl Received {
    pub fn message(&self) -> &Value {
        &self.body["message"]
    }

    /// The first value of a form field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// `"status-update:ringing"`, `"end-of-call-report"`, …
    pub fn label(&self) -> String {
        let m = self.message();
        match m["type"].as_str().unwrap_or("?") {
            "status-update" => format!("status-update:{}", m["status"].as_str().unwrap_or("?")),
            other => other.to_string(),
        }
    }
}

/// How the receiver answers an `assistant-request` for a number.
#[derive(Clone, Debug)]
pub enum Answer {
    Reply(Value),
    /// Answers only after 9 s, past Vapi's 7.5 s deadline.
    Stall,
}

#[derive(Clone, Default)]
pub struct Receiver {
    hits: Arc<Mutex<Vec<Received>>>,
    sim: Arc<OnceLock<SimHandleInfo>>,
    /// Keyed by `message.phoneNumber.number`.
    answers: Arc<Mutex<HashMap<String, Answer>>>,
}

#[derive(Clone)]
struct SimHandleInfo {
    sim: Sim,
    base_url: String,
}

impl Receiver {
    /// Starts the receiver; returns it and its webhook URL. Every path is
    /// recorded, so `{url}/twilio?dialtone_call_id=…` works as a callback too.
    pub async fn start() -> (Self, String) {
        let receiver = Receiver::default();
        let app = Router::new().fallback(record).with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    /// Lets the receiver look at the sim's books when a webhook arrives.
    pub fn watch(&self, handle: &SimHandle) {
        let _ = self.sim.set(SimHandleInfo { sim: handle.sim().clone(), base_url: handle.base_url() });
    }

    /// Sets the answer to assistant-requests for calls to `number`.
    pub fn answer(&self, number: &str, answer: Answer) {
        self.answers.lock().unwrap().insert(number.to_string(), answer);
    }

    pub fn hits(&self) -> Vec<Received> {
        self.hits.lock().unwrap().clone()
    }

    pub fn labels(&self) -> Vec<String> {
        self.hits().iter().map(Received::label).collect()
    }

    pub async fn wait_for_count(&self, n: usize) -> Vec<Received> {
        let hits = self.hits.clone();
        wait_until(&format!("{n} webhooks"), || hits.lock().unwrap().len() >= n).await;
        self.hits()
    }
}

async fn record(State(receiver): State<Receiver>, uri: Uri, headers: HeaderMap, raw: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let is_form = headers.get("content-type").is_some_and(|v| v.to_str().unwrap_or("").starts_with("application/x-www-form-urlencoded"));
    let form = if is_form { url::form_urlencoded::parse(&raw).into_owned().collect() } else { Vec::new() };
    let host = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let url = format!("http://{host}{uri}");
    let answer = if body["message"]["type"] == "assistant-request" {
        let number = body["message"]["phoneNumber"]["number"].as_str().unwrap_or_default();
        Some(receiver.answers.lock().unwrap().get(number).cloned().unwrap_or(Answer::Reply(json!({}))))
    } else {
        None
    };
    // For any provider, the sim's `active` at arrival; for Vapi, also the
    // call's status per `GET /call/{id}`.
    let (sim_active, sim_status) = match receiver.sim.get() {
        None => (None, None),
        Some(info) => {
            let active = info.sim.stats().active;
            let status = match body["message"]["call"]["id"].as_str() {
                None => None,
                Some(id) => {
                    let call: Value = reqwest::get(format!("{}/call/{id}", info.base_url)).await.unwrap().json().await.unwrap();
                    call["status"].as_str().map(String::from)
                }
            };
            (Some(active), status)
        }
    };
    receiver.hits.lock().unwrap().push(Received { headers, url, raw, body, form, sim_active, sim_status });
    match answer {
        None => StatusCode::OK.into_response(),
        Some(Answer::Reply(value)) => Json(value).into_response(),
        Some(Answer::Stall) => {
            tokio::time::sleep(Duration::from_secs(9)).await;
            Json(json!({"assistantId": "asst_too_late"})).into_response()
        }
    }
}

/// 1000x faster than real time: a full call takes about 0.1 s.
pub fn fast(webhook_url: Option<&str>) -> SimConfig {
    SimConfig { webhook_url: webhook_url.map(String::from), time_scale: 0.001, seed: Some(7), ..SimConfig::default() }
}

pub async fn spawn(config: SimConfig) -> SimHandle {
    Sim::spawn(config, "127.0.0.1:0").await.unwrap()
}

/// Polls `cond` every 5 ms; panics after 5 s naming what never happened.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub async fn wait_for_stats(handle: &SimHandle, what: &str, cond: impl Fn(&SimStats) -> bool) -> SimStats {
    wait_until(what, || cond(&handle.stats())).await;
    handle.stats()
}

pub fn dial_body(number: &str, dialtone_id: Option<&str>, phone_number_id: &str, campaign: &str) -> Value {
    let mut metadata = json!({ "campaignId": campaign });
    if let Some(id) = dialtone_id {
        metadata["dialtoneCallId"] = json!(id);
    }
    json!({
        "assistantId": "asst_1",
        "phoneNumberId": phone_number_id,
        "customer": { "number": number, "name": "Ana" },
        "assistantOverrides": {
            "variableValues": { "name": "Ana" },
            "metadata": metadata,
        },
    })
}

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub key: Option<String>,
}

impl Client {
    pub fn new(handle: &SimHandle) -> Self {
        Self { http: reqwest::Client::new(), base: handle.base_url(), key: None }
    }

    pub fn with_key(mut self, key: &str) -> Self {
        self.key = Some(key.to_string());
        self
    }

    fn auth(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    pub async fn post_call(&self, body: &Value) -> reqwest::Response {
        self.auth(self.http.post(format!("{}/call", self.base))).json(body).send().await.unwrap()
    }

    /// Dials and returns the created call, asserting 201.
    pub async fn dial(&self, body: &Value) -> Value {
        let response = self.post_call(body).await;
        assert_eq!(response.status(), 201, "dial should be accepted");
        response.json().await.unwrap()
    }

    pub async fn get_call(&self, id: &str) -> (u16, Value) {
        let response = self.auth(self.http.get(format!("{}/call/{id}", self.base))).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    pub async fn list(&self, query: &str) -> (u16, Value) {
        let response = self.auth(self.http.get(format!("{}/call?{query}", self.base))).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// Polls `GET /call/{id}` until it reports `ended`.
    pub async fn wait_ended(&self, id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let (_, call) = self.get_call(id).await;
            if call["status"] == "ended" {
                return call;
            }
            assert!(tokio::time::Instant::now() < deadline, "call {id} never ended: {call}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

pub const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const TWILIO_TOKEN: &str = "twilio-token";
pub const EXOTEL_SID: &str = "dialtone1";
pub const EXOTEL_KEY: &str = "exo-key";
pub const EXOTEL_TOKEN: &str = "exo-token";

/// `fast(None)` with Twilio and Exotel accounts configured.
pub fn all_providers(webhook_url: Option<&str>) -> SimConfig {
    SimConfig {
        twilio_account_sid: Some(TWILIO_SID.into()),
        twilio_auth_token: Some(TWILIO_TOKEN.into()),
        exotel_sid: Some(EXOTEL_SID.into()),
        exotel_api_key: Some(EXOTEL_KEY.into()),
        exotel_api_token: Some(EXOTEL_TOKEN.into()),
        ..fast(webhook_url)
    }
}

/// Speaks Twilio's and Exotel's APIs with Basic auth.
pub struct FormClient {
    pub http: reqwest::Client,
    pub base: String,
    pub user: String,
    pub password: String,
}

impl FormClient {
    pub fn twilio(handle: &SimHandle) -> Self {
        Self::new(handle, TWILIO_SID, TWILIO_TOKEN, &format!("/2010-04-01/Accounts/{TWILIO_SID}"))
    }

    pub fn exotel(handle: &SimHandle) -> Self {
        Self::new(handle, EXOTEL_KEY, EXOTEL_TOKEN, &format!("/v1/Accounts/{EXOTEL_SID}"))
    }

    pub fn new(handle: &SimHandle, user: &str, password: &str, prefix: &str) -> Self {
        Self { http: reqwest::Client::new(), base: format!("{}{prefix}", handle.base_url()), user: user.into(), password: password.into() }
    }

    /// POSTs a form to `{base}{path}`; returns the status and JSON body.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value, HeaderMap) {
        let response = self.http.post(format!("{}{path}", self.base)).basic_auth(&self.user, Some(&self.password)).form(form).send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, response.json().await.unwrap(), headers)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.http.get(format!("{}{path}", self.base)).basic_auth(&self.user, Some(&self.password)).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }
}
