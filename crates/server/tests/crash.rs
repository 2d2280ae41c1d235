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

/// What the local receiver got: `(webhook-id, body)` per request, in order of arrival.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// A webhook receiver on loopback that verifies each message's Standard Webhooks signature
/// (a bad one is answered 400 and not recorded), waits `delay` (so deliveries are in flight
/// when the server is killed) and answers 204.
async fn receiver(secret: std::sync::Arc<std::sync::OnceLock<String>>, delay: Duration) -> (String, Received) {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode};
    let got: Received = Default::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (g, secret) = (g.clone(), secret.clone());
            async move {
                let Some(secret) = secret.get() else { return StatusCode::SERVICE_UNAVAILABLE };
                let verifier = standardwebhooks::Webhook::new(secret).unwrap();
                if verifier.verify(&body, &headers).is_err() {
                    return StatusCode::BAD_REQUEST;
                }
                tokio::time::sleep(delay).await;
                let id = headers["webhook-id"].to_str().unwrap().to_string();
                g.lock().unwrap().push((id, String::from_utf8_lossy(&body).into_owned()));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

/// Every item of a paged list (`data`, `next_cursor`), following the cursor.
async fn all_pages(http: &reqwest::Client, key: &str, url: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if url.contains('?') { '&' } else { '?' };
        let page_url = match &cursor {
            Some(c) => format!("{url}{sep}limit=500&before={c}"),
            None => format!("{url}{sep}limit=500"),
        };
        let page = api(http, key, http.get(page_url)).await;
        out.extend(page["data"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

/// Issue 13, "outbox crash test with kill -9": a campaign runs with a webhook endpoint
/// subscribed to every event while `dialtone serve` is killed with SIGKILL three times and
/// restarted. At least once: every state change the run produced (the campaign started and
/// completed, each call answered and ended, each contact finished) reaches the receiver,
/// under one `webhook-id` (a delivery the killed node had sent but not recorded is sent again
/// under the same id, with the same body), and the delivery log shows every message
/// delivered. A dead node's claims are due again after the 60 s lease, so this test waits
/// for that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_no_outbound_event_and_repeats_one_only_under_its_webhook_id() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("outbox-crash.db").display());
    let port = free_port();
    let sim = Sim::spawn(
        SimConfig {
            webhook_url: Some(format!("http://127.0.0.1:{port}/webhooks/vapi")),
            webhook_secret: Some(SECRET.into()),
            api_key: Some("crash-sim".into()),
            time_scale: 0.004,
            seed: Some(11),
            ..SimConfig::default()
        },
        "127.0.0.1:0",
    )
    .await
    .unwrap();
    let secret = std::sync::Arc::new(std::sync::OnceLock::new());
    let (hook_url, got) = receiver(secret.clone(), Duration::from_millis(20)).await;

    let out = dialtone(&db, port, &sim.base_url()).args(["keys", "create"]).output().expect("keys create");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();

    let mut node = start_node(&db, port, &sim.base_url()).await;
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}/api/v1");
    // The operator's (default) workspace may send to loopback.
    let endpoint = api(
        &http,
        &key,
        http.post(format!("{base}/webhook-endpoints")).json(&json!({
            "url": hook_url, "events": dialtone_store::WEBHOOK_EVENT_TYPES, "enabled": true,
        })),
    )
    .await;
    secret.set(endpoint["secret"].as_str().unwrap().to_string()).unwrap();
    let endpoint_id = endpoint["id"].as_str().unwrap().to_string();
    let campaign = api(&http, &key, http.post(format!("{base}/campaigns")).json(&json!({
        "name": "outbox crash", "provider": "sim", "assistant_id": "asst_crash", "phone_number_id": "pn_crash",
        "max_concurrent": CAP, "max_attempts": 2, "calling_hours": {"start": "00:00", "end": "00:00"},
        "retry": {"no_answer": {"max_retries": 3, "delay_secs": 0.2}, "busy": {"max_retries": 3, "delay_secs": 0.2}, "failed": {"max_retries": 3, "delay_secs": 0.2}, "timeout": {"max_retries": 3, "delay_secs": 0.2}},
    }))).await;
    let id = campaign["id"].as_str().unwrap().to_string();
    let contacts = 120;
    let csv = dialtone_server::demo::synthetic_csv(contacts);
    let imported = api(&http, &key, http.post(format!("{base}/campaigns/{id}/contacts")).header("content-type", "text/csv").body(csv)).await;
    assert_eq!(imported["imported"], contacts as u64);
    api(&http, &key, http.post(format!("{base}/campaigns/{id}/start"))).await;

    // SIGKILL three times while calls end and their events are being delivered.
    let mut received_at_kill = Vec::new();
    for round in 1..=3u64 {
        let deadline = Instant::now() + Duration::from_secs(60);
        while sim.stats().dials < round * 25 || got.lock().unwrap().len() < (round * 20) as usize {
            assert!(Instant::now() < deadline, "dialling or delivery stalled before crash {round}: {:?}", sim.stats());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        node.child.kill().expect("SIGKILL");
        node.child.wait().unwrap();
        received_at_kill.push(got.lock().unwrap().len());
        tokio::time::sleep(Duration::from_millis(300)).await;
        node = start_node(&db, port, &sim.base_url()).await;
    }

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let c = api(&http, &key, http.get(format!("{base}/campaigns/{id}"))).await;
        if c["status"] == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "campaign did not complete after the crashes: {c}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every delivery in the log ends delivered (claims of a killed node after their lease).
    let deliveries_url = format!("{base}/webhook-endpoints/{endpoint_id}/deliveries");
    let deadline = Instant::now() + Duration::from_secs(150);
    let log = loop {
        let log = all_pages(&http, &key, &deliveries_url).await;
        if !log.is_empty() && log.iter().all(|d| d["status"] == "delivered") {
            break log;
        }
        let waiting: Vec<&Value> = log.iter().filter(|d| d["status"] != "delivered").collect();
        assert!(Instant::now() < deadline, "{} deliveries not delivered, e.g. {:?}", waiting.len(), waiting.first());
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let calls = all_pages(&http, &key, &format!("{base}/calls?campaign_id={id}")).await;
    let contact_list = all_pages(&http, &key, &format!("{base}/campaigns/{id}/contacts")).await;
    drop(node);

    // What the receiver got, by webhook-id: a repeat carries the same body.
    let received = got.lock().unwrap().clone();
    let mut by_id: std::collections::BTreeMap<String, String> = Default::default();
    let mut repeats = 0;
    for (wid, body) in &received {
        match by_id.get(wid) {
            Some(first) => {
                assert_eq!(first, body, "webhook-id {wid} came again with another body");
                repeats += 1;
            }
            None => {
                by_id.insert(wid.clone(), body.clone());
            }
        }
    }
    // Every logged message was received, and nothing was received that the log lacks.
    let logged: std::collections::BTreeSet<String> = log.iter().map(|d| d["message_id"].as_str().unwrap().to_string()).collect();
    let got_ids: std::collections::BTreeSet<String> = by_id.keys().cloned().collect();
    assert_eq!(logged, got_ids, "the delivery log and the receiver disagree");

    // Each state change under exactly one webhook-id.
    let mut by_change: std::collections::BTreeMap<(String, String), Vec<String>> = Default::default();
    for (wid, body) in &by_id {
        let v: Value = serde_json::from_str(body).unwrap();
        let t = v["type"].as_str().unwrap().to_string();
        let subject = match t.as_str() {
            "call.started" | "call.ended" => v["data"]["call_id"].as_str().unwrap().to_string(),
            "contact.finished" => v["data"]["contact_id"].as_str().unwrap().to_string(),
            _ => v["data"]["campaign_id"].as_str().unwrap_or_default().to_string(),
        };
        by_change.entry((t, subject)).or_default().push(wid.clone());
    }
    for (change, ids) in &by_change {
        assert_eq!(ids.len(), 1, "{change:?} was reported under several webhook-ids: {ids:?}");
    }

    // Every state change the run produced was reported.
    let mut want: Vec<(String, String)> = vec![("campaign.started".into(), id.clone()), ("campaign.completed".into(), id.clone())];
    for c in &calls {
        let call_id = c["id"].as_str().unwrap().to_string();
        assert!(!c["outcome"].is_null(), "every call ended: {c}");
        want.push(("call.ended".into(), call_id.clone()));
        if !c["answered_at"].is_null() {
            want.push(("call.started".into(), call_id));
        }
    }
    assert_eq!(contact_list.len(), contacts);
    for c in &contact_list {
        want.push(("contact.finished".into(), c["id"].as_str().unwrap().to_string()));
    }
    let missing: Vec<&(String, String)> = want.iter().filter(|w| !by_change.contains_key(*w)).collect();
    assert!(missing.is_empty(), "{} state changes never reported (of {}), e.g. {:?}", missing.len(), want.len(), &missing[..missing.len().min(5)]);
    // Nothing else but failure-rate alerts (which the simulator's failures may raise).
    let want: std::collections::BTreeSet<&(String, String)> = want.iter().collect();
    let extra: Vec<&(String, String)> = by_change.keys().filter(|k| !want.contains(k) && k.0 != "alert.failure_rate").collect();
    assert!(extra.is_empty(), "reports of changes the run did not make: {extra:?}");
    eprintln!(
        "outbox crash test: {} calls, {} messages, {} repeats (same webhook-id), received before each kill {received_at_kill:?}",
        calls.len(),
        by_id.len(),
        repeats
    );
}
