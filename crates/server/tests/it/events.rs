//! `GET /api/v1/events`: the live stream the dashboard reads, parsed as a browser would.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

/// One server-sent event: `id`, `event` and `data` (JSON).
#[derive(Debug)]
struct Sse {
    id: String,
    event: String,
    data: Value,
}

/// Reads an event stream the way the WHATWG format says: fields up to a blank line,
/// comment lines (`:`) ignored.
struct Reader {
    body: reqwest::Response,
    buf: Vec<u8>,
}

impl Reader {
    async fn open(app: &TestApp, last_event_id: Option<&str>) -> Reader {
        let mut req = app.api(reqwest::Method::GET, "/events");
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let body = req.send().await.unwrap();
        assert_eq!(body.status(), StatusCode::OK);
        assert_eq!(body.headers()["content-type"], "text/event-stream");
        Reader { body, buf: Vec::new() }
    }

    /// The next event, or `None` if none comes within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                let block = String::from_utf8(block).unwrap();
                let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().into();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().into();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if !event.is_empty() {
                    return Some(Sse { id, event, data: serde_json::from_str(&data).unwrap() });
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.chunk()).await.ok()?.unwrap()?;
            self.buf.extend_from_slice(&chunk);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_shows_a_campaign_running_to_its_end_and_its_calls() {
    let mut options = Options::default();
    // Calls of 1–4.5 s, so the run spans several of the stream's one-second reads.
    options.sim.time_scale = 0.05;
    let app = TestApp::with(options).await;
    let mut stream = Reader::open(&app, None).await;
    let id = app.create_campaign(json!({"max_concurrent": 3, "max_attempts": 1})).await;
    assert_eq!(app.import_csv(&id, &contacts_csv(12)).await["imported"], 12);
    app.act(&id, "start").await;

    let mut statuses = vec![];
    let mut calls = std::collections::HashSet::new();
    let mut ended_calls = 0;
    let mut progress = vec![];
    let last_id = loop {
        let e = stream.next(secs(30)).await.expect("the campaign reaches its end on the stream within 30 s");
        assert!(!e.id.is_empty(), "every event has an id: {e:?}");
        match e.event.as_str() {
            "campaign" => {
                assert_eq!(e.data["id"], id.as_str(), "{e:?}");
                let status = e.data["status"].as_str().unwrap().to_string();
                let done: u64 = e.data["counts"]["outcomes"].as_object().unwrap().values().map(u).sum();
                if progress.last() != Some(&done) {
                    progress.push(done);
                }
                if statuses.last() != Some(&status) {
                    statuses.push(status.clone());
                }
                if status == "completed" {
                    let counts = &e.data["counts"];
                    assert_eq!(total(&counts["contacts"]), 12, "{counts}");
                    assert_eq!(counts["active_calls"], 0, "{counts}");
                    break e.id;
                }
            }
            "call" => {
                assert_eq!(e.data["campaign_id"], id.as_str(), "{e:?}");
                calls.insert(e.data["id"].as_str().unwrap().to_string());
                if e.data["status"] == "ended" {
                    ended_calls += 1;
                }
            }
            other => panic!("unexpected event {other}: {e:?}"),
        }
    };
    assert!(statuses.iter().any(|s| s == "dialing"), "the campaign is seen dialling: {statuses:?}");
    assert!(progress.len() >= 3 && progress.windows(2).all(|w| w[0] < w[1]), "progress is seen rising on the way: {progress:?}");
    assert_eq!(progress.last(), Some(&12), "{progress:?}");
    assert!(calls.len() >= 3, "its calls are announced: {calls:?}");
    assert!(ended_calls >= 1, "calls are seen ending");

    // A client that reconnects with the last id it saw gets nothing old again...
    let mut again = Reader::open(&app, Some(&last_id)).await;
    let until = tokio::time::Instant::now() + secs(3);
    while let Some(e) = again.next(until - tokio::time::Instant::now()).await {
        assert_eq!(e.event, "call", "only calls that changed after {last_id} may come: {e:?}");
    }
    // ...and a new client gets the current state first.
    let mut fresh = Reader::open(&app, None).await;
    let mut seen_campaign = false;
    let until = tokio::time::Instant::now() + secs(3);
    while let Some(e) = fresh.next(until - tokio::time::Instant::now()).await {
        if e.event == "campaign" {
            assert_eq!(e.data["status"], "completed", "{e:?}");
            seen_campaign = true;
        }
    }
    assert!(seen_campaign, "a new client is told the campaign's state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_needs_an_api_key_and_takes_no_query() {
    let app = TestApp::start().await;
    let (status, body) = send(app.http.get(app.url("/api/v1/events"))).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, body) = send(app.http.get(app.url("/api/v1/events?since=1")).bearer_auth(&app.key)).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_query");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_share_one_reader_which_stops_when_the_last_leaves() {
    let app = TestApp::start().await;
    let id = app.create_campaign(json!({})).await;
    let mut clients = vec![];
    for _ in 0..5 {
        clients.push(Reader::open(&app, None).await);
    }
    assert_eq!(app.state.events.watched_workspaces(), 1, "one reader for the workspace, not one per client");
    for c in &mut clients {
        let e = c.next(secs(5)).await.expect("every client gets the current state");
        assert_eq!((e.event.as_str(), e.data["id"].as_str()), ("campaign", Some(id.as_str())), "{e:?}");
    }
    drop(clients);
    eventually(
        || async {
            if app.state.events.watched_workspaces() == 0 {
                Ok(())
            } else {
                Err("the reader still runs".to_string())
            }
        },
        secs(5),
    )
    .await;
}
