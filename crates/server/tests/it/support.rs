//! The harness: the real server on port 0 over a fresh SQLite file, a real simulator on
//! another port, and an HTTP client holding an API key made the way an operator makes one.
//! Helpers poll with a deadline; nothing sleeps in the hope that a result has arrived.

use dialtone_core::SystemClock;
use dialtone_engine::EngineConfig;
use dialtone_server::app::{self, AppState};
use dialtone_server::config::Config;
use dialtone_sim::{Sim, SimConfig, SimHandle, SimStats};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const SIM_KEY: &str = "it-sim-key";
pub const PHONE_NUMBER_ID: &str = "pn_it";
/// The caller lines of the Twilio and Exotel accounts (their `From` / `CallerId`).
pub const TWILIO_CALLER: &str = "+15005550006";
pub const EXOTEL_CALLER: &str = "+918047100000";
pub const TWILIO_SID: &str = "ACit0000000000000000000000000000";
const EXOTEL_SID: &str = "dialtone-it";

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// What a test may change about the world it runs in.
pub struct Options {
    /// `webhook_url`, `webhook_secret` and `api_key` are filled in by the harness.
    pub sim: SimConfig,
    pub engine: EngineConfig,
    /// Whether the sim sends its webhooks; off, a test plays the provider's side itself.
    pub sim_webhooks: bool,
    /// Twilio and Exotel accounts on the sim, calling back to us; off, only `sim` exists.
    pub provider_accounts: bool,
    /// The sim account's concurrency limit and rate (all its campaigns together).
    pub sim_max_concurrent: Option<u32>,
    pub sim_rate_per_sec: Option<f64>,
    pub twilio_max_concurrent: Option<u32>,
    /// Twilio's own default of 1 call/s would make every Twilio test crawl.
    pub twilio_rate_per_sec: f64,
    /// Any other setting, applied last to the server's config.
    pub configure: fn(&mut Config),
    /// `max_upload_bytes`, when a test needs a small one.
    pub max_upload_bytes: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            // A 2–8 s ring and a 20–90 s talk play in 4–200 ms.
            sim: SimConfig { time_scale: 0.002, seed: Some(11), ..SimConfig::default() },
            engine: EngineConfig {
                tick: ms(100),
                stuck_timeout: ms(1500),
                reaper_interval: ms(200),
                placement_backoff: vec![ms(5), ms(10), ms(20)],
                ..EngineConfig::default()
            },
            sim_webhooks: true,
            provider_accounts: false,
            sim_max_concurrent: None,
            sim_rate_per_sec: None,
            twilio_max_concurrent: None,
            twilio_rate_per_sec: 500.0,
            configure: |_| {},
            max_upload_bytes: None,
        }
    }
}

pub struct TestApp {
    pub base: String,
    /// An API key of the default workspace.
    pub key: String,
    /// What the server expects on `/webhooks/vapi` (the sim sends it as a Bearer token).
    pub webhook_secret: String,
    pub http: reqwest::Client,
    pub state: Arc<AppState>,
    /// The simulator's base URL (for its own `/sim/*` routes).
    pub sim_base: String,
    /// The server's database (for commands that open it themselves, like `keys`).
    pub database_url: String,
    /// The sim's Twilio auth token and Exotel API token and callback token (with
    /// `provider_accounts`): what a workspace's own account on the sim is registered with.
    pub provider_token: String,
    sim: Option<SimHandle>,
    sim_probe: Sim,
    cancel: CancellationToken,
    _dir: tempfile::TempDir,
    _pg_db: Option<PgDb>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(sim) = self.sim.take() {
            sim.shutdown();
        }
    }
}

fn init_tracing() {
    // RUST_LOG=dialtone=debug cargo test … shows the server's log next to a failure.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "off".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

impl TestApp {
    pub async fn start() -> Self {
        Self::with(Options::default()).await
    }

    pub async fn with(options: Options) -> Self {
        init_tracing();
        let dir = tempfile::tempdir().unwrap();
        // The same tests run on PostgreSQL when DIALTONE_IT_BACKEND=postgres (.ci/run does).
        let (database_url, pg_db) = match std::env::var("DIALTONE_IT_BACKEND").as_deref() {
            Ok("postgres") => {
                let db = PgDb::create().await;
                (db.url.clone(), Some(db))
            }
            _ => (format!("sqlite://{}", dir.path().join("it.db").display()), None),
        };
        let webhook_secret = dialtone_server::keys::generate();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());

        let account_token = dialtone_server::keys::generate();
        let accounts = options.provider_accounts;
        let sim_config = SimConfig {
            webhook_url: options.sim_webhooks.then(|| format!("{base}/webhooks/vapi")),
            webhook_secret: Some(webhook_secret.clone()),
            api_key: Some(SIM_KEY.into()),
            twilio_account_sid: accounts.then(|| TWILIO_SID.into()),
            twilio_auth_token: accounts.then(|| account_token.clone()),
            exotel_sid: accounts.then(|| EXOTEL_SID.into()),
            exotel_api_key: accounts.then(|| "it-exotel-key".into()),
            exotel_api_token: accounts.then(|| account_token.clone()),
            ..options.sim
        };
        let sim = Sim::spawn(sim_config, "127.0.0.1:0").await.unwrap();
        let mut config = Config {
            database_url: database_url.clone().into(),
            public_url: Some(base.clone()),
            sim_base_url: sim.base_url(),
            sim_api_key: SIM_KEY.into(),
            vapi_webhook_secret: Some(webhook_secret.clone().into()),
            vapi_timeout_ms: 2_000,
            sim_max_concurrent: options.sim_max_concurrent,
            sim_rate_per_sec: options.sim_rate_per_sec,
            twilio_max_concurrent: options.twilio_max_concurrent,
            twilio_rate_per_sec: options.twilio_rate_per_sec,
            max_upload_bytes: options.max_upload_bytes.unwrap_or(Config::default().max_upload_bytes),
            ..Config::default()
        };
        if accounts {
            config.twilio_account_sid = Some(TWILIO_SID.into());
            config.twilio_auth_token = Some(account_token.clone().into());
            config.twilio_base_url = format!("{}/2010-04-01", sim.base_url());
            config.twilio_twiml_url = Some("https://it.invalid/twiml".into());
            // Answering-machine detection, so Twilio can tell a voicemail from a person.
            config.twilio_machine_detection = true;
            config.exotel_sid = Some(EXOTEL_SID.into());
            config.exotel_api_key = Some("it-exotel-key".into());
            config.exotel_api_token = Some(account_token.clone().into());
            config.exotel_base_url = sim.base_url();
            config.exotel_flow_url = Some("https://it.invalid/flow".into());
            config.exotel_callback_token = Some(account_token.clone().into());
            config.exotel_rate_per_min = 60_000;
        }
        // Provider accounts' secrets are sealed under it (`configure` may take it away).
        config.master_key = Some(dialtone_store::secrets::MasterKey::generate().1);
        (options.configure)(&mut config);
        let state = app::build(&config, options.engine, Arc::new(SystemClock)).await.unwrap();
        let cancel = CancellationToken::new();
        tokio::spawn(app::serve(state.clone(), listener, cancel.clone()));

        let ws = state.store.default_workspace().await.unwrap();
        let key = dialtone_server::keys::generate();
        state.store.create_api_key(&ws, "it", &dialtone_server::keys::hash(&key), state.now()).await.unwrap();
        Self {
            base,
            key,
            webhook_secret,
            http: reqwest::Client::new(),
            state,
            sim_base: sim.base_url(),
            database_url,
            provider_token: account_token,
            sim_probe: sim.sim().clone(),
            sim: Some(sim),
            cancel,
            _dir: dir,
            _pg_db: pg_db,
        }
    }

    /// The simulator's own record of what it was asked to dial.
    pub fn sim_stats(&self) -> SimStats {
        self.sim_probe.stats()
    }

    /// Stops the simulator: its port closes and every call freezes where it is.
    pub fn shutdown_sim(&mut self) {
        if let Some(sim) = self.sim.take() {
            sim.shutdown();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to `/api/v1{path}` carrying the API key.
    pub fn api(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(&format!("/api/v1{path}"))).bearer_auth(&self.key)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        send(self.api(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str) -> (StatusCode, Value) {
        send(self.api(Method::POST, path)).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        send(self.api(Method::POST, path).json(body)).await
    }

    /// Creates a `sim` campaign from defaults overlaid with `fields`; returns its id.
    pub async fn create_campaign(&self, fields: Value) -> String {
        let mut body = json!({
            "name": "it campaign",
            "provider": "sim",
            "assistant_id": "asst_it",
            "phone_number_id": PHONE_NUMBER_ID,
            "max_concurrent": 5,
            "max_attempts": 1,
            // Tests run at any hour: open the recipients' hours round the clock.
            "calling_hours": {"start": "00:00", "end": "00:00"},
            "retry": {"no_answer": {"max_retries": 3, "delay_secs": 0.05}, "busy": {"max_retries": 3, "delay_secs": 0.05}, "failed": {"max_retries": 3, "delay_secs": 0.05}, "timeout": {"max_retries": 3, "delay_secs": 0.05}, "jitter": 0.0},
        });
        for (k, v) in fields.as_object().expect("fields is an object") {
            body[k] = v.clone();
        }
        let (status, created) = self.post_json("/campaigns", &body).await;
        assert_eq!(status, StatusCode::CREATED, "create campaign: {created}");
        created["id"].as_str().expect("campaign id").to_string()
    }

    pub async fn import_csv(&self, campaign: &str, csv: &str) -> Value {
        let req = self.api(Method::POST, &format!("/campaigns/{campaign}/contacts")).header("content-type", "text/csv").body(csv.to_string());
        let (status, report) = send(req).await;
        assert_eq!(status, StatusCode::OK, "import: {report}");
        report
    }

    pub async fn campaign(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/campaigns/{id}")).await;
        assert_eq!(status, StatusCode::OK, "get campaign: {body}");
        body
    }

    pub async fn act(&self, id: &str, verb: &str) -> Value {
        let (status, body) = self.post(&format!("/campaigns/{id}/{verb}")).await;
        assert_eq!(status, StatusCode::OK, "{verb}: {body}");
        body
    }

    /// Polls the campaign until its status is `status`.
    pub async fn wait_for_status(&self, id: &str, status: &str, timeout: Duration) -> Value {
        eventually(
            || async move {
                let c = self.campaign(id).await;
                if c["status"] == status {
                    Ok(c)
                } else {
                    Err(format!("campaign is {} with counts {}", c["status"], c["counts"]))
                }
            },
            timeout,
        )
        .await
    }

    /// The first call of `campaign` once the provider has it (`dialing`, with its provider
    /// id): `(call id, provider call id)`.
    pub async fn dialed_call(&self, campaign: &str) -> (String, String) {
        eventually(
            || async {
                let calls = self.all_calls(&[("campaign_id", campaign)], 10).await;
                match calls.first() {
                    Some(c) if c["status"] == "dialing" && c["provider_call_id"].is_string() => {
                        Ok((c["id"].as_str().unwrap().to_string(), c["provider_call_id"].as_str().unwrap().to_string()))
                    }
                    _ => Err(format!("{calls:?}")),
                }
            },
            Duration::from_secs(10),
        )
        .await
    }

    /// Every call matching `query`, following `next_cursor` with pages of `limit`.
    pub async fn all_calls(&self, query: &[(&str, &str)], limit: u32) -> Vec<Value> {
        let mut out = vec![];
        let mut before: Option<String> = None;
        loop {
            let mut req = self.api(Method::GET, "/calls").query(query).query(&[("limit", limit.to_string())]);
            if let Some(b) = &before {
                req = req.query(&[("before", b)]);
            }
            let (status, page) = send(req).await;
            assert_eq!(status, StatusCode::OK, "list calls: {page}");
            let data = page["data"].as_array().expect("data array");
            assert!(data.len() <= limit as usize, "a page holds at most `limit` calls");
            out.extend(data.iter().cloned());
            match page["next_cursor"].as_str() {
                Some(cursor) => before = Some(cursor.to_string()),
                None => return out,
            }
        }
    }

    /// `POST /sim/inbound`: rings `count` inbound calls from `from` to `to`; returns the sim's answer.
    pub async fn ring_inbound(&self, to: &str, from: &str, count: u32) -> Value {
        let req = self.http.post(format!("{}/sim/inbound", self.sim_base)).json(&json!({"to": to, "from": from, "count": count}));
        let (status, body) = send(req).await;
        assert_eq!(status, StatusCode::CREATED, "sim inbound: {body}");
        body
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let resp = self.http.get(self.url("/metrics")).send().await.expect("the server answers");
        assert_eq!(resp.status(), StatusCode::OK);
        resp.text().await.unwrap()
    }

    /// One call with its `events`.
    pub async fn call(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/calls/{id}")).await;
        assert_eq!(status, StatusCode::OK, "get call: {body}");
        body
    }

    /// `GET /calls/{id}` once its end-of-call report is among its events: the report is
    /// sent after the `ended` status update, so it may land a moment after the call shows ended.
    pub async fn call_with_report(&self, id: &str) -> Value {
        eventually(
            || async {
                let detail = self.call(id).await;
                let reported = detail["events"].as_array().is_some_and(|es| es.iter().any(|e| e["provider_type"] == "end-of-call-report"));
                if reported {
                    Ok(detail)
                } else {
                    Err(format!("no end-of-call report reached the call: {detail}"))
                }
            },
            secs(5),
        )
        .await
    }

    /// POSTs a raw body to `/webhooks/vapi` with `Authorization: Bearer <auth>` when given.
    pub async fn webhook_raw(&self, body: &str, auth: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.post(self.url("/webhooks/vapi")).header("content-type", "application/json").body(body.to_string());
        if let Some(secret) = auth {
            req = req.bearer_auth(secret);
        }
        send(req).await
    }

    /// POSTs `{"message": message}` signed with the configured secret.
    pub async fn webhook(&self, message: Value) -> (StatusCode, Value) {
        self.webhook_raw(&json!({ "message": message }).to_string(), Some(&self.webhook_secret)).await
    }
}

/// Sends and reads the body as JSON, or as a JSON string when it is not JSON.
pub async fn send(req: RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.expect("the server answers");
    let status = resp.status();
    let text = resp.text().await.expect("a readable body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// Asserts `{"error": {"code", "message", "details"}}` with this status and code.
pub fn assert_error(status: StatusCode, body: &Value, want_status: StatusCode, want_code: &str) {
    assert_eq!(status, want_status, "status for {body}");
    let error = &body["error"];
    assert!(error.is_object(), "error shape expected, got {body}");
    assert_eq!(error["code"], want_code, "error code in {body}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "error message in {body}");
    assert!(error.as_object().unwrap().contains_key("details"), "error details in {body}");
}

/// Polls `check` every 20 ms until it returns `Ok`; panics after `timeout` with its last `Err`.
pub async fn eventually<T, F, Fut>(mut check: F, timeout: Duration) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if tokio::time::Instant::now() >= deadline => panic!("not within {timeout:?}: {last}"),
            Err(_) => tokio::time::sleep(ms(20)).await,
        }
    }
}

/// Asserts that `check` holds on every poll for all of `window`: the way to show that
/// something does *not* happen (a paused campaign places no call).
pub async fn holds_for<F, Fut>(mut check: F, window: Duration)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let end = tokio::time::Instant::now() + window;
    while tokio::time::Instant::now() < end {
        if let Err(e) = check().await {
            panic!("stopped holding: {e}");
        }
        tokio::time::sleep(ms(20)).await;
    }
}

/// `n` distinct valid US numbers as a CSV with `name,phone,plan`.
pub fn contacts_csv(n: usize) -> String {
    dialtone_server::demo::synthetic_csv(n)
}

/// The E.164 numbers of [`contacts_csv`]`(n)`, in order.
pub fn numbers(n: usize) -> Vec<String> {
    contacts_csv(n).lines().skip(1).map(|l| l.split(',').nth(1).unwrap().to_string()).collect()
}

pub fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Sum of the numbers in a JSON object of counts.
pub fn total(counts: &Value) -> u64 {
    counts.as_object().map(|m| m.values().map(u).sum()).unwrap_or(0)
}

pub fn ts(v: &Value) -> jiff::Timestamp {
    v.as_str().unwrap_or_else(|| panic!("a timestamp, got {v}")).parse().unwrap()
}

/// A throwaway database on the PostgreSQL server of `DIALTONE_TEST_PG_URL`, dropped after.
pub struct PgDb {
    url: String,
    name: String,
}

impl PgDb {
    async fn create() -> Self {
        use sqlx::Connection;
        let server = std::env::var("DIALTONE_TEST_PG_URL").expect("DIALTONE_IT_BACKEND=postgres needs DIALTONE_TEST_PG_URL");
        let name = format!("dialtone_it_{}", ulid::Ulid::new().to_string().to_lowercase());
        let mut conn = sqlx::PgConnection::connect(&server).await.expect("connect to DIALTONE_TEST_PG_URL");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create database");
        let url = format!("{}/{name}", server.rsplit_once('/').expect("a database URL").0);
        PgDb { url, name }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(server) = std::env::var("DIALTONE_TEST_PG_URL") {
                    if let Ok(mut c) = sqlx::PgConnection::connect(&server).await {
                        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut c).await;
                    }
                }
            });
        })
        .join();
    }
}
