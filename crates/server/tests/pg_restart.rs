//! A PostgreSQL restart during a run: nodes retry and carry on, webhooks that cannot be
//! stored are refused with a 5xx (never acknowledged unwritten), the reaper reconciles what
//! was missed, and the run completes with nothing lost and nothing dialled twice.
//!
//! Restarts the PostgreSQL server named by `DIALTONE_TEST_PG_URL` (this machine's own
//! cluster, via `pg_ctlcluster`); .ci/run sets the variable.

use dialtone_sim::{Sim, SimConfig};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "restart-secret";

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn restart_postgres() {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("this test restarts the machine's PostgreSQL cluster (/etc/postgresql)")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .next()
        .expect("a PostgreSQL cluster");
    let status = Command::new("pg_ctlcluster").args(["--skip-systemctl-redirect", &version, "main", "restart"]).status().expect("pg_ctlcluster");
    assert!(status.success(), "PostgreSQL did not restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_mid_run_loses_nothing_and_dials_nothing_twice() {
    use sqlx::Connection;
    let server = std::env::var("DIALTONE_TEST_PG_URL").expect("DIALTONE_TEST_PG_URL must name the PostgreSQL server (see .ci/run)");
    let name = format!("dialtone_restart_{}", ulid::Ulid::new().to_string().to_lowercase());
    {
        let mut conn = sqlx::PgConnection::connect(&server).await.expect("connect");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
    }
    let db = format!("{}/{name}", server.rsplit_once('/').unwrap().0);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let sim = Sim::spawn(
        SimConfig {
            webhook_url: Some(format!("http://127.0.0.1:{port}/webhooks/vapi")),
            webhook_secret: Some(SECRET.into()),
            api_key: Some("restart-sim".into()),
            time_scale: 0.003,
            seed: Some(5),
            ..SimConfig::default()
        },
        "127.0.0.1:0",
    )
    .await
    .unwrap();
    let env = |cmd: &mut Command| {
        cmd.env("DIALTONE_DATABASE_URL", &db)
            .env("DIALTONE_LISTEN", format!("127.0.0.1:{port}"))
            .env("DIALTONE_SIM_BASE_URL", sim.base_url())
            .env("DIALTONE_SIM_API_KEY", "restart-sim")
            .env("DIALTONE_VAPI_WEBHOOK_SECRET", SECRET)
            .env("DIALTONE_TICK_MS", "200")
            .env("DIALTONE_STUCK_TIMEOUT_SECS", "3")
            .env("DIALTONE_REAPER_INTERVAL_SECS", "1")
            .env("DIALTONE_PLACEMENT_BACKOFF_MS", "[50,100]")
            .env("DIALTONE_LOG", "warn");
    };
    let mut keys = Command::new(env!("CARGO_BIN_EXE_dialtone"));
    env(&mut keys);
    let out = keys.args(["keys", "create"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_dialtone"));
    env(&mut serve);
    let _node = Node(serve.arg("serve").stdout(Stdio::null()).spawn().unwrap());
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.is_err() {
        assert!(Instant::now() < deadline, "serve did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let call = |req: reqwest::RequestBuilder| {
        let key = key.clone();
        async move {
            let resp = req.bearer_auth(key).send().await.expect("request");
            let status = resp.status();
            let v: Value = resp.json().await.unwrap_or(Value::Null);
            (status, v)
        }
    };
    let (_, c) = call(http.post(format!("{base}/campaigns")).json(&json!({
        "name": "restart", "provider": "sim", "assistant_id": "asst", "phone_number_id": "pn_restart", "max_concurrent": 8, "max_attempts": 2,
        "calling_hours": {"start": "00:00", "end": "00:00"},
        "retry": {"no_answer": {"max_retries": 3, "delay_secs": 0.2}, "busy": {"max_retries": 3, "delay_secs": 0.2},
                  "failed": {"max_retries": 3, "delay_secs": 0.2}, "timeout": {"max_retries": 3, "delay_secs": 0.2}},
    })))
    .await;
    let id = c["id"].as_str().expect("campaign created").to_string();
    let (s, _) =
        call(http.post(format!("{base}/campaigns/{id}/contacts")).header("content-type", "text/csv").body(dialtone_server::demo::synthetic_csv(400))).await;
    assert!(s.is_success());
    call(http.post(format!("{base}/campaigns/{id}/start"))).await;

    while sim.stats().dials < 100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    restart_postgres();
    eprintln!("PostgreSQL restarted after {} dials", sim.stats().dials);

    let deadline = Instant::now() + Duration::from_secs(180);
    let last = loop {
        let (status, c) = call(http.get(format!("{base}/campaigns/{id}"))).await;
        if status.is_success() && c["status"] == "completed" {
            break c;
        }
        assert!(Instant::now() < deadline, "not completed after the restart: {c}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let stats = sim.stats();
    assert_eq!(stats.duplicate_dials, 0, "dialled twice: {:?}", stats.duplicate_dial_ids);
    assert!(stats.peak_concurrent_by_phone_number["pn_restart"] <= 8);
    let finished: u64 = ["done", "exhausted", "invalid"].iter().filter_map(|s| last["counts"]["contacts"][*s].as_u64()).sum();
    assert_eq!(finished, 400, "{}", last["counts"]);
    eprintln!("restart test: {} dials, {} webhooks failed at the sim (refused while PostgreSQL was down)", stats.dials, stats.webhooks_failed);
    drop(_node);
    if let Ok(mut conn) = sqlx::PgConnection::connect(&server).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
    }
}
