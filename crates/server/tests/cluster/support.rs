//! A throwaway PostgreSQL database, N `dialtone serve` processes, a simulator and a
//! round-robin webhook proxy.

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use dialtone_sim::{Sim, SimConfig, SimHandle};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SECRET: &str = "cluster-webhook-secret";
const SIM_KEY: &str = "cluster-sim";

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn pg_url() -> String {
    std::env::var("DIALTONE_TEST_PG_URL").expect("DIALTONE_TEST_PG_URL must name the PostgreSQL server for the cluster tests (see .ci/run)")
}

/// A fresh database on the test server, dropped when the cluster is.
async fn fresh_database() -> (String, String) {
    use sqlx::Connection;
    let server = pg_url();
    let name = format!("dialtone_cluster_{}", ulid::Ulid::new().to_string().to_lowercase());
    let mut conn = sqlx::PgConnection::connect(&server).await.expect("connect to DIALTONE_TEST_PG_URL");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create database");
    let (base, _) = server.rsplit_once('/').expect("a database URL");
    (format!("{base}/{name}"), name)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Node {
    port: u16,
    child: Option<Child>,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub sim: SimHandle,
    db_name: String,
    key: String,
    http: reqwest::Client,
    _proxy: tokio::task::JoinHandle<()>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.nodes.clear();
        let name = self.db_name.clone();
        // Best effort: the database is throwaway either way.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut c) = sqlx::PgConnection::connect(&pg_url()).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut c).await;
                }
            });
        })
        .join();
    }
}

/// The load balancer: each webhook goes to the next live node; a node that does not answer
/// is skipped (a real balancer's health check).
#[derive(Clone)]
struct Proxy {
    ports: Arc<StdMutex<Vec<u16>>>,
    next: Arc<AtomicUsize>,
    http: reqwest::Client,
}

async fn forward(State(p): State<Proxy>, OriginalUri(uri): OriginalUri, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let ports = p.ports.lock().unwrap().clone();
    for _ in 0..ports.len() {
        let port = ports[p.next.fetch_add(1, Ordering::Relaxed) % ports.len()];
        let mut req = p.http.post(format!("http://127.0.0.1:{port}{uri}")).body(body.clone());
        for (k, v) in headers.iter() {
            if k != "host" && k != "content-length" {
                req = req.header(k, v);
            }
        }
        if let Ok(resp) = req.send().await {
            let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
            return (status, resp.bytes().await.unwrap_or_default()).into_response();
        }
    }
    StatusCode::BAD_GATEWAY.into_response()
}

fn dialtone(db: &str, port: u16, sim: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dialtone"));
    cmd.env("DIALTONE_DATABASE_URL", db)
        .env("DIALTONE_LISTEN", format!("127.0.0.1:{port}"))
        .env("DIALTONE_SIM_BASE_URL", sim)
        .env("DIALTONE_SIM_API_KEY", SIM_KEY)
        .env("DIALTONE_VAPI_WEBHOOK_SECRET", SECRET)
        .env("DIALTONE_TICK_MS", "200")
        .env("DIALTONE_STUCK_TIMEOUT_SECS", "3")
        .env("DIALTONE_REAPER_INTERVAL_SECS", "1")
        .env("DIALTONE_PLACEMENT_BACKOFF_MS", "[50,100]")
        .env("DIALTONE_LOG", "warn")
        .current_dir(std::env::temp_dir());
    cmd
}

impl Cluster {
    pub async fn start(n: usize) -> Self {
        let (db, db_name) = fresh_database().await;
        let proxy_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_url = format!("http://{}", proxy_listener.local_addr().unwrap());
        let sim = Sim::spawn(
            SimConfig {
                webhook_url: Some(format!("{proxy_url}/webhooks/vapi")),
                webhook_secret: Some(SECRET.into()),
                api_key: Some(SIM_KEY.into()),
                time_scale: 0.002,
                seed: Some(11),
                ..SimConfig::default()
            },
            "127.0.0.1:0",
        )
        .await
        .unwrap();
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let out = dialtone(&db, ports[0], &sim.base_url()).args(["keys", "create"]).output().expect("keys create");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let http = reqwest::Client::new();
        let proxy = Proxy { ports: Arc::new(StdMutex::new(ports.clone())), next: Arc::new(AtomicUsize::new(0)), http: http.clone() };
        let router = axum::Router::new().fallback(axum::routing::post(forward)).with_state(proxy);
        let proxy_task = tokio::spawn(async move {
            let _ = axum::serve(proxy_listener, router).await;
        });
        let mut nodes = vec![];
        for port in ports {
            let child = dialtone(&db, port, &sim.base_url()).arg("serve").stdout(Stdio::null()).spawn().expect("spawn serve");
            nodes.push(Node { port, child: Some(child) });
        }
        for node in &nodes {
            let deadline = Instant::now() + secs(30);
            while reqwest::get(format!("http://127.0.0.1:{}/healthz", node.port)).await.is_err() {
                assert!(Instant::now() < deadline, "node on {} did not come up", node.port);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Cluster { nodes, sim, db_name, key, http, _proxy: proxy_task }
    }

    /// An API request to node `i` (campaigns can be made and watched through any node).
    async fn api(&self, i: usize, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let port = self.nodes[i].port;
        let mut req = self.http.request(method, format!("http://127.0.0.1:{port}/api/v1{path}")).bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let v: Value = resp.json().await.expect("json");
        assert!(status.is_success(), "{status}: {v}");
        v
    }

    /// `POST /api/v1{path}` to node `i` with an `Idempotency-Key`: the status and JSON body.
    pub async fn post_keyed(&self, i: usize, path: &str, key: &str, body: &Value) -> (reqwest::StatusCode, Value) {
        let port = self.nodes[i].port;
        let resp = self
            .http
            .post(format!("http://127.0.0.1:{port}/api/v1{path}"))
            .bearer_auth(&self.key)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .expect("request");
        (resp.status(), resp.json().await.expect("json"))
    }

    /// The names of every campaign of the workspace (through node 0).
    pub async fn campaign_names(&self) -> Vec<String> {
        let list = self.api(0, reqwest::Method::GET, "/campaigns?limit=500", None).await;
        list["data"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect()
    }

    /// Creates, fills and starts `count` campaigns through different nodes; returns their ids.
    pub async fn campaigns(&self, count: usize, contacts: usize, cap: u32) -> Vec<String> {
        let csv = dialtone_server::demo::synthetic_csv(contacts);
        let mut ids = vec![];
        for i in 0..count {
            let node = i % self.nodes.len();
            let c = self
                .api(
                    node,
                    reqwest::Method::POST,
                    "/campaigns",
                    Some(json!({
                        "name": format!("cluster {i}"), "provider": "sim", "assistant_id": "asst_cluster",
                        "phone_number_id": format!("pn_{i}"), "max_concurrent": cap, "max_attempts": 2,
                        "calling_hours": {"start": "00:00", "end": "00:00"},
                        "retry": {"no_answer": {"max_retries": 3, "delay_secs": 0.2}, "busy": {"max_retries": 3, "delay_secs": 0.2},
                                  "failed": {"max_retries": 3, "delay_secs": 0.2}, "timeout": {"max_retries": 3, "delay_secs": 0.2}},
                    })),
                )
                .await;
            let id = c["id"].as_str().unwrap().to_string();
            let port = self.nodes[node].port;
            let resp = self
                .http
                .post(format!("http://127.0.0.1:{port}/api/v1/campaigns/{id}/contacts"))
                .bearer_auth(&self.key)
                .header("content-type", "text/csv")
                .body(csv.clone())
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success());
            ids.push(id);
        }
        for (i, id) in ids.iter().enumerate() {
            self.api(i % self.nodes.len(), reqwest::Method::POST, &format!("/campaigns/{id}/start"), None).await;
        }
        ids
    }

    pub fn kill(&mut self, i: usize) {
        let port = self.nodes[i].port;
        if let Some(mut c) = self.nodes[i].child.take() {
            c.kill().expect("SIGKILL");
            c.wait().unwrap();
        }
        self.nodes.remove(i);
        eprintln!("killed the node on port {port}");
    }

    pub async fn wait_for_dials(&self, n: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.sim.stats().dials < n {
            assert!(Instant::now() < deadline, "only {} dials after {timeout:?}", self.sim.stats().dials);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_until_completed(&self, ids: &[String], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let mut open = vec![];
            for id in ids {
                let c = self.api(0, reqwest::Method::GET, &format!("/campaigns/{id}"), None).await;
                if c["status"] != "completed" {
                    open.push(format!("{id}: {} {}", c["status"], c["counts"]));
                }
            }
            if open.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "not completed after {timeout:?}:\n{}", open.join("\n"));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    pub async fn assert_judged_by_the_simulator(&self, ids: &[String], contacts: u64, cap: u64) {
        let stats = self.sim.stats();
        assert_eq!(stats.duplicate_dials, 0, "dialled twice: {:?}", stats.duplicate_dial_ids);
        for (i, id) in ids.iter().enumerate() {
            let peak = stats.peak_concurrent_by_phone_number.get(&format!("pn_{i}")).copied().unwrap_or(0);
            assert!(peak <= cap, "campaign {i} reached {peak} concurrent calls (cap {cap})");
            assert!(peak > 0, "campaign {i} was never dialled");
            let c = self.api(0, reqwest::Method::GET, &format!("/campaigns/{id}"), None).await;
            let finished: u64 = ["done", "exhausted", "invalid", "dnc"].iter().filter_map(|s| c["counts"]["contacts"][*s].as_u64()).sum();
            assert_eq!(finished, contacts, "campaign {i}: {}", c["counts"]);
            assert_eq!(c["counts"]["active_calls"], 0);
        }
        eprintln!("cluster: {} dials, peak {} overall, {} webhooks sent", stats.dials, stats.peak_concurrent, stats.webhooks_sent);
    }
}
