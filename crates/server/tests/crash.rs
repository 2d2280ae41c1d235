//! A killed and restarted `dialtone serve` finishes the campaign with no attempt dialled
//! twice. The simulator runs in this test process, so its record of what was dialled
//! survives the engine's crashes and is checked from outside.

use dialtone_sim::{Sim, SimConfig};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "crash-test-webhook-secret";
const CAP: u64 = 8;

struct Node {
    child: Child,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn dialtone(db: &str, port: u16, sim: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dialtone"));
    cmd.env("DIALTONE_DATABASE_URL", db)
        .env("DIALTONE_LISTEN", format!("127.0.0.1:{port}"))
        .env("DIALTONE_SIM_BASE_URL", sim)
        .env("DIALTONE_SIM_API_KEY", "crash-sim")
        .env("DIALTONE_VAPI_WEBHOOK_SECRET", SECRET)
        .env("DIALTONE_TICK_MS", "100")
        .env("DIALTONE_STUCK_TIMEOUT_SECS", "1")
        .env("DIALTONE_REAPER_INTERVAL_SECS", "1")
        .env("DIALTONE_PLACEMENT_BACKOFF_MS", "[20,50]")
        .env("DIALTONE_LOG", "warn")
        .current_dir(std::env::temp_dir());
    cmd
}

async fn start_node(db: &str, port: u16, sim: &str) -> Node {
    let child = dialtone(db, port, sim).arg("serve").stdout(Stdio::null()).spawn().expect("spawn dialtone serve");
    let node = Node { child };
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.is_err() {
        assert!(Instant::now() < deadline, "dialtone serve did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    node
}

async fn api(http: &reqwest::Client, key: &str, req: reqwest::RequestBuilder) -> Value {
    let _ = http;
    let resp = req.bearer_auth(key).send().await.expect("request");
    let status = resp.status();
    let body: Value = resp.json().await.expect("json body");
    assert!(status.is_success(), "{status}: {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_server_finishes_the_campaign_without_dialling_any_attempt_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("crash.db").display());
    let port = free_port();
    let sim = Sim::spawn(
        SimConfig {
            webhook_url: Some(format!("http://127.0.0.1:{port}/webhooks/vapi")),
            webhook_secret: Some(SECRET.into()),
            api_key: Some("crash-sim".into()),
            time_scale: 0.004,
            seed: Some(7),
            ..SimConfig::default()
        },
        "127.0.0.1:0",
    )
    .await
    .unwrap();

    let out = dialtone(&db, port, &sim.base_url()).args(["keys", "create"]).output().expect("keys create");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();

    let mut node = start_node(&db, port, &sim.base_url()).await;
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let campaign = api(&http, &key, http.post(format!("{base}/campaigns")).json(&json!({
        "name": "crash", "provider": "sim", "assistant_id": "asst_crash", "phone_number_id": "pn_crash",
        "max_concurrent": CAP, "max_attempts": 2, "calling_hours": {"start": "00:00", "end": "00:00"},
        "retry": {"no_answer": {"max_retries": 3, "delay_secs": 0.2}, "busy": {"max_retries": 3, "delay_secs": 0.2}, "failed": {"max_retries": 3, "delay_secs": 0.2}, "timeout": {"max_retries": 3, "delay_secs": 0.2}},
    }))).await;
    let id = campaign["id"].as_str().unwrap().to_string();
    let contacts = 150;
    let csv = dialtone_server::demo::synthetic_csv(contacts);
    let imported = api(&http, &key, http.post(format!("{base}/campaigns/{id}/contacts")).header("content-type", "text/csv").body(csv)).await;
    assert_eq!(imported["imported"], contacts as u64);
    api(&http, &key, http.post(format!("{base}/campaigns/{id}/start"))).await;

    // Kill the node three times while calls are being placed and answered.
    for round in 1..=3u64 {
        let deadline = Instant::now() + Duration::from_secs(60);
        while sim.stats().dials < round * 30 {
            assert!(Instant::now() < deadline, "dialling stalled before crash {round}: {:?}", sim.stats());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        node.child.kill().expect("SIGKILL");
        node.child.wait().unwrap();
        // Webhooks sent while the node is down are lost, as with a real provider.
        tokio::time::sleep(Duration::from_millis(300)).await;
        node = start_node(&db, port, &sim.base_url()).await;
    }

    let deadline = Instant::now() + Duration::from_secs(120);
    let last = loop {
        let c = api(&http, &key, http.get(format!("{base}/campaigns/{id}"))).await;
        if c["status"] == "completed" {
            break c;
        }
        assert!(Instant::now() < deadline, "campaign did not complete after the crashes: {c}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    drop(node);

    let stats = sim.stats();
    assert_eq!(stats.duplicate_dials, 0, "an attempt was dialled twice: {:?}", stats.duplicate_dial_ids);
    assert!(stats.peak_concurrent_by_phone_number["pn_crash"] <= CAP, "cap exceeded: {stats:?}");
    let finished: u64 = ["done", "exhausted", "invalid"].iter().filter_map(|s| last["counts"]["contacts"][*s].as_u64()).sum();
    assert_eq!(finished, contacts as u64, "every contact finishes: {}", last["counts"]);
    assert_eq!(last["counts"]["active_calls"], 0);
    eprintln!("crash test: {} dials, peak {}, outcomes {}", stats.dials, stats.peak_concurrent, last["counts"]["outcomes"]);
}
