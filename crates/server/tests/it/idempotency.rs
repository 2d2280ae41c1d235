//! `Idempotency-Key`: a retried create replays the first answer and creates nothing twice;
//! the same key on another request is refused; a request still running holds its key.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn campaign_body(name: &str) -> Value {
    json!({"name": name, "provider": "sim", "assistant_id": "asst_it", "phone_number_id": PHONE_NUMBER_ID, "max_concurrent": 2})
}

async fn post_keyed(app: &TestApp, path: &str, key: &str, body: &Value) -> (StatusCode, Value, bool) {
    let r = app.api(Method::POST, path).header("Idempotency-Key", key).json(body).send().await.unwrap();
    let replayed = r.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
    let status = r.status();
    (status, r.json().await.unwrap(), replayed)
}

async fn campaigns_named(app: &TestApp, name: &str) -> usize {
    let (_, list) = app.get("/campaigns?limit=500").await;
    list["data"].as_array().unwrap().iter().filter(|c| c["name"] == name).count()
}

#[tokio::test]
async fn a_retried_create_replays_the_first_answer_and_creates_once() {
    let app = TestApp::start().await;
    let body = campaign_body("idem once");
    let (s1, first, replayed1) = post_keyed(&app, "/campaigns", "key-1", &body).await;
    assert_eq!(s1, StatusCode::CREATED, "{first}");
    assert!(!replayed1);
    let (s2, second, replayed2) = post_keyed(&app, "/campaigns", "key-1", &body).await;
    assert_eq!(s2, StatusCode::CREATED);
    assert!(replayed2, "the retry says it is a replay");
    assert_eq!(second, first, "the same answer, the same id");
    assert_eq!(campaigns_named(&app, "idem once").await, 1);

    // Without a key, or with another key, a create runs again.
    let (s3, third, _) = post_keyed(&app, "/campaigns", "key-2", &body).await;
    assert_eq!(s3, StatusCode::CREATED);
    assert_ne!(third["id"], first["id"]);
    assert_eq!(campaigns_named(&app, "idem once").await, 2);
}

#[tokio::test]
async fn the_same_key_on_another_request_is_refused_and_a_bad_key_is_named() {
    let app = TestApp::start().await;
    let (s, _, _) = post_keyed(&app, "/campaigns", "key-a", &campaign_body("idem a")).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, e, _) = post_keyed(&app, "/campaigns", "key-a", &campaign_body("idem b")).await;
    assert_error(s, &e, StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused");
    assert_eq!(e["error"]["details"]["field"], "Idempotency-Key");
    let (s, e, _) = post_keyed(&app, "/agents", "key-a", &json!({"name": "x"})).await;
    assert_error(s, &e, StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused");
    assert_eq!(campaigns_named(&app, "idem b").await, 0, "the refused request did nothing");

    for bad in ["x".repeat(256), "has space".to_string(), "ünïcode".to_string()] {
        let r = app.api(Method::POST, "/campaigns").header("Idempotency-Key", bad.as_bytes()).json(&campaign_body("idem c")).send().await.unwrap();
        let status = r.status();
        let e: Value = r.json().await.unwrap();
        assert_error(status, &e, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(e["error"]["details"]["field"], "Idempotency-Key", "{bad}");
    }
    assert_eq!(campaigns_named(&app, "idem c").await, 0);
}

#[tokio::test]
async fn a_refusal_of_a_read_body_is_replayed_too() {
    let app = TestApp::start().await;
    let mut body = campaign_body("idem bad");
    body["max_concurrent"] = json!(0);
    let (s1, e1, r1) = post_keyed(&app, "/campaigns", "key-bad", &body).await;
    assert_error(s1, &e1, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(!r1);
    let (s2, e2, r2) = post_keyed(&app, "/campaigns", "key-bad", &body).await;
    assert_eq!((s2, &e2, r2), (s1, &e1, true), "the same refusal, replayed");
}

#[tokio::test]
async fn a_contact_import_retried_with_its_key_adds_nobody_twice() {
    let app = TestApp::start().await;
    let id = app.create_campaign(json!({})).await;
    let csv = contacts_csv(25);
    let import = || {
        app.api(Method::POST, &format!("/campaigns/{id}/contacts")).header("content-type", "text/csv").header("Idempotency-Key", "import-1").body(csv.clone())
    };
    let first = import().send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let first: Value = first.json().await.unwrap();
    let again = import().send().await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let campaign = app.campaign(&id).await;
    assert_eq!(total(&campaign["counts"]["contacts"]), 25, "{campaign}");
}

/// A request with the key still running (here: claimed in the database, as a request on
/// another node would be) makes the same key wait with 409; once that owner has given the key
/// up, the request runs.
#[tokio::test]
async fn a_request_still_running_holds_its_key() {
    let app = TestApp::start().await;
    let id = app.create_campaign(json!({})).await;
    let path = format!("/campaigns/{id}/contacts");
    let ws = app.state.store.default_workspace().await.unwrap();
    let begun = app.state.store.begin_idempotent(&ws, "busy", &format!("POST /api/v1{path}"), app.state.now()).await.unwrap();
    assert_eq!(begun, dialtone_store::Begun::Owner);

    let import =
        || app.api(Method::POST, &path).header("content-type", "text/csv").header("Idempotency-Key", "busy").body("phone\n+14155550100\n+14155550101\n");
    let busy = import().send().await.unwrap();
    assert_eq!(busy.status(), StatusCode::CONFLICT);
    assert_eq!(busy.headers()["retry-after"], "1");
    let e: Value = busy.json().await.unwrap();
    assert_eq!(e["error"]["code"], "idempotency_key_in_use");
    assert_eq!(e["error"]["details"]["field"], "Idempotency-Key");
    assert_eq!(total(&app.campaign(&id).await["counts"]["contacts"]), 0, "the refused request imported nothing");

    // The owner failed on its side and gave the key up: the retry runs, and its own retry replays.
    app.state.store.abandon_idempotent(&ws, "busy").await.unwrap();
    let ran = import().send().await.unwrap();
    assert_eq!(ran.status(), StatusCode::OK);
    assert!(ran.headers().get("idempotent-replayed").is_none());
    let first: Value = ran.json().await.unwrap();
    let replay = import().send().await.unwrap();
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.json::<Value>().await.unwrap(), first);
    assert_eq!(total(&app.campaign(&id).await["counts"]["contacts"]), 2);
}

/// Every `response_body` kept for replays, as the database holds it.
async fn kept_answers(app: &TestApp) -> Vec<String> {
    let sql = "SELECT response_body FROM idempotency_keys WHERE response_body IS NOT NULL";
    if app.database_url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap()
    } else {
        let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap()
    }
}

/// A retried create of an API key or a webhook endpoint gets the same secret again (the
/// point of the retry), but the kept answer is sealed under the master key: the table
/// never holds a key or a `whsec_` in the clear.
#[tokio::test]
async fn an_answer_showing_a_secret_is_replayed_but_kept_only_encrypted() {
    let app = TestApp::start().await;
    let mut secrets = vec![];
    for (path, body, field) in [
        ("/keys", json!({"name": "retried"}), "key"),
        ("/webhook-endpoints", json!({"url": "https://hooks.example.com/a", "events": ["call.ended"]}), "secret"),
        ("/workspaces", json!({"name": "tenant", "key": {"name": "first"}}), "key"),
    ] {
        let (s1, first, _) = post_keyed(&app, path, &format!("k-{path}"), &body).await;
        assert_eq!(s1, StatusCode::CREATED, "{first}");
        let (s2, second, replayed) = post_keyed(&app, path, &format!("k-{path}"), &body).await;
        assert_eq!((s2, replayed), (StatusCode::CREATED, true), "{second}");
        assert_eq!(second, first, "{path}: the retry shows the same secret");
        let secret = if path == "/workspaces" { &first["key"][field] } else { &first[field] };
        secrets.push(secret.as_str().unwrap_or_else(|| panic!("{first}")).to_string());
    }
    let (_, keys) = app.get("/keys").await;
    assert_eq!(keys["data"].as_array().unwrap().iter().filter(|k| k["name"] == "retried").count(), 1, "one key made");
    let kept = kept_answers(&app).await;
    assert_eq!(kept.len(), 3, "{kept:?}");
    for body in &kept {
        assert!(body.starts_with("dtenc1:"), "sealed: {body}");
        for s in &secrets {
            assert!(!body.contains(s.as_str()), "a secret in the clear: {body}");
        }
    }
}

/// Without a master key there is nowhere safe to keep such an answer: it is not kept, and
/// the retry runs again (a second key); other answers are kept as before (a workspace made
/// without a key among them).
#[tokio::test]
async fn without_a_master_key_an_answer_showing_a_secret_is_not_kept() {
    let app = TestApp::with(Options { configure: |c| c.master_key = None, ..Options::default() }).await;
    let body = json!({"name": "retried"});
    let (_, first, _) = post_keyed(&app, "/keys", "k-1", &body).await;
    let (s2, second, replayed) = post_keyed(&app, "/keys", "k-1", &body).await;
    assert_eq!((s2, replayed), (StatusCode::CREATED, false), "{second}");
    assert_ne!(second["key"], first["key"]);
    assert!(kept_answers(&app).await.is_empty());
    for (path, body) in [("/campaigns", campaign_body("kept")), ("/workspaces", json!({"name": "no key asked for"}))] {
        let (s1, first, _) = post_keyed(&app, path, &format!("k-{path}"), &body).await;
        assert_eq!(s1, StatusCode::CREATED, "{first}");
        let (_, second, replayed) = post_keyed(&app, path, &format!("k-{path}"), &body).await;
        assert!(replayed, "{path}: an answer without a secret is still kept");
        assert_eq!(second, first);
    }
    assert_eq!(kept_answers(&app).await.len(), 2);
}

/// An action without a body (rotate-secret, start) is kept and replayed like a create: a
/// retried rotation must not rotate again (that would end the first new secret at once),
/// nor a retried start answer 409.
#[tokio::test]
async fn an_action_without_a_body_is_replayed() {
    let app = TestApp::start().await;
    let (_, ep, _) = post_keyed(&app, "/webhook-endpoints", "k-ep", &json!({"url": "https://hooks.example.com/a", "events": ["call.ended"]})).await;
    let path = format!("/webhook-endpoints/{}/rotate-secret", ep["id"].as_str().unwrap());
    let send = |path: String| {
        let req = app.api(Method::POST, &path).header("Idempotency-Key", "k-action");
        async move {
            let r = req.send().await.unwrap();
            let replayed = r.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
            (r.status(), r.json::<Value>().await.unwrap(), replayed)
        }
    };
    let (s1, first, _) = send(path.clone()).await;
    assert_eq!(s1, StatusCode::OK, "{first}");
    let (s2, second, replayed) = send(path).await;
    assert_eq!((s2, replayed), (StatusCode::OK, true), "{second}");
    assert_eq!(second["secret"], first["secret"], "rotated once");

    let (_, campaign, _) = post_keyed(&app, "/campaigns", "k-c", &campaign_body("action")).await;
    let start = format!("/campaigns/{}/start", campaign["id"].as_str().unwrap());
    let req = || app.api(Method::POST, &start).header("Idempotency-Key", "k-start");
    let first = req().send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let second = req().send().await.unwrap();
    assert_eq!(second.status(), StatusCode::OK, "a replay, not a 409");
    assert_eq!(second.headers()["idempotent-replayed"], "true");
}
