//! `/api/v1/provider-accounts` (issue 13): a workspace's own Vapi, Twilio and Exotel
//! credentials, several per provider; secrets never shown again (last four characters
//! only), checked per provider, refused without a master key; DELETE disables.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const TOKEN: &str = "twilio-token-0123456789-wxyz";

fn twilio(name: &str) -> Value {
    json!({"provider": "twilio", "name": name, "credentials": {"account_sid": "AC0123", "auth_token": TOKEN, "twiml_url": "https://example.com/twiml"},
        "max_concurrent": 4, "calls_per_second": 2.5})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_created_listed_changed_and_disabled_and_their_secrets_never_come_back() {
    let app = TestApp::start().await;
    let (status, a) = app.post_json("/provider-accounts", &twilio("Twilio EU")).await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    let id = a["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("pa_"), "{a}");
    assert_eq!(a["provider"], "twilio");
    assert_eq!(a["credentials"], json!({"account_sid": "AC0123", "auth_token": "…wxyz", "twiml_url": "https://example.com/twiml"}));
    assert_eq!((a["max_concurrent"].clone(), a["calls_per_second"].clone(), a["enabled"].clone()), (json!(4), json!(2.5), json!(true)));
    // A second Twilio account, and a Vapi and an Exotel one: several per provider.
    let (status, b) = app.post_json("/provider-accounts", &twilio("Twilio US")).await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    let vapi = json!({"provider": "vapi", "name": "Vapi", "credentials": {"api_key": "vapi-key-abcdefgh-1111", "webhook_secret": "vapi-hook-secret-2222"}});
    let (status, v) = app.post_json("/provider-accounts", &vapi).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["credentials"], json!({"api_key": "…1111", "webhook_secret": "…2222"}));
    assert_eq!(v["max_concurrent"], Value::Null);
    let exotel = json!({"provider": "exotel", "name": "Exotel", "credentials": {"sid": "acme", "api_key": "exo-key", "api_token": "exotel-token-33333333",
        "flow_url": "https://my.exotel.com/flow/1", "callback_token": "exotel-callback-4444", "base_url": "https://api.in.exotel.com"}});
    let (status, e) = app.post_json("/provider-accounts", &exotel).await;
    assert_eq!(status, StatusCode::CREATED, "{e}");
    assert_eq!(e["credentials"]["api_key"], "…", "a secret of 8 characters or fewer shows nothing");

    let (_, list) = app.get("/provider-accounts").await;
    let names: Vec<&str> = list["data"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Exotel", "Vapi", "Twilio US", "Twilio EU"], "newest first");
    let (_, page) = app.get("/provider-accounts?limit=3").await;
    let (_, rest) = app.get(&format!("/provider-accounts?limit=3&before={}", page["next_cursor"].as_str().unwrap())).await;
    assert_eq!(rest["data"][0]["id"], a["id"]);

    // A PATCH replaces one secret, keeps the others, lifts the limit.
    let res = app
        .api(Method::PATCH, &format!("/provider-accounts/{id}"))
        .json(&json!({"name": "Twilio EU 2", "credentials": {"auth_token": "new-token-5678"}, "max_concurrent": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let patched: Value = res.json().await.unwrap();
    assert_eq!(patched["credentials"]["auth_token"], "…5678");
    assert_eq!(patched["credentials"]["account_sid"], "AC0123");
    assert_eq!(
        (patched["name"].clone(), patched["max_concurrent"].clone(), patched["calls_per_second"].clone()),
        (json!("Twilio EU 2"), Value::Null, json!(2.5))
    );

    // Nothing the API answers carries a secret.
    for path in ["/provider-accounts".to_string(), format!("/provider-accounts/{id}")] {
        let text = app.api(Method::GET, &path).send().await.unwrap().text().await.unwrap();
        for secret in [TOKEN, "new-token-5678", "vapi-key-abcdefgh", "exotel-token-3333", "exotel-callback"] {
            assert!(!text.contains(secret), "{path} shows a secret: {text}");
        }
    }

    // DELETE disables; the account stays listed; a PATCH enables it again.
    let res = app.api(Method::DELETE, &format!("/provider-accounts/{id}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (_, shown) = app.get(&format!("/provider-accounts/{id}")).await;
    assert_eq!(shown["enabled"], false);
    assert!(shown["disabled_at"].is_string(), "{shown}");
    let res = app.api(Method::PATCH, &format!("/provider-accounts/{id}")).json(&json!({"enabled": true})).send().await.unwrap();
    let enabled: Value = res.json().await.unwrap();
    assert_eq!((enabled["enabled"].clone(), enabled["disabled_at"].clone()), (json!(true), Value::Null));

    let (status, body) = app.get("/provider-accounts/pa_01jd0000000000000000000000").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_provider_gets_the_credentials_it_needs_and_a_field_at_fault_is_named() {
    let app = TestApp::start().await;
    let cases = [
        (json!({"provider": "sim", "name": "x", "credentials": {}}), "provider"),
        (json!({"provider": "plivo", "name": "x", "credentials": {}}), "provider"),
        (json!({"provider": "twilio", "name": " ", "credentials": {}}), "name"),
        (json!({"provider": "twilio", "name": "x", "credentials": {"account_sid": "AC1", "twiml": "<Response/>"}}), "credentials.auth_token"),
        (
            json!({"provider": "twilio", "name": "x", "credentials": {"account_sid": "AC1", "auth_token": "t", "twiml": "<Response/>", "api_key": "k"}}),
            "credentials.api_key",
        ),
        (json!({"provider": "twilio", "name": "x", "credentials": {"account_sid": "AC1", "auth_token": "t"}}), "credentials.twiml_url"),
        (json!({"provider": "twilio", "name": "x", "credentials": {"account_sid": 7, "auth_token": "t", "twiml": "<Response/>"}}), "credentials.account_sid"),
        (json!({"provider": "vapi", "name": "x", "credentials": {"api_key": "k"}}), "credentials.webhook_secret"),
        (json!({"provider": "vapi", "name": "x", "credentials": {"api_key": "k", "webhook_secret": "s", "base_url": "ftp://x"}}), "credentials.base_url"),
        (
            json!({"provider": "exotel", "name": "x", "credentials": {"sid": "a", "api_key": "k", "api_token": "t", "flow_url": "https://f.example"}}),
            "credentials.callback_token",
        ),
        (
            json!({"provider": "exotel", "name": "x", "credentials": {"sid": "a", "api_key": "k", "api_token": "t", "flow_url": "https://f.example",
                "callback_token": "tok/with/slashes"}}),
            "credentials.callback_token",
        ),
        (json!({"provider": "vapi", "name": "x", "credentials": {"api_key": "k", "webhook_secret": "s"}, "max_concurrent": 0}), "max_concurrent"),
        (json!({"provider": "vapi", "name": "x", "credentials": {"api_key": "k", "webhook_secret": "s"}, "calls_per_second": 0}), "calls_per_second"),
    ];
    for (body, field) in cases {
        let (status, answer) = app.post_json("/provider-accounts", &body).await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(answer["error"]["details"]["field"], field, "{body} → {answer}");
    }
    let (_, list) = app.get("/provider-accounts").await;
    assert_eq!(list["data"], json!([]), "nothing was stored");

    // A PATCH may not remove the last of a required set, nor remove a secret.
    let (_, a) = app.post_json("/provider-accounts", &twilio("T")).await;
    let id = a["id"].as_str().unwrap();
    for (patch, field) in
        [(json!({"credentials": {"twiml_url": null}}), "credentials.twiml_url"), (json!({"credentials": {"auth_token": null}}), "credentials.auth_token")]
    {
        let (status, answer) = send(app.api(Method::PATCH, &format!("/provider-accounts/{id}")).json(&patch)).await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(answer["error"]["details"]["field"], field, "{patch} → {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_point_an_account_at_a_private_address_but_the_operator_can() {
    let app = TestApp::start().await;
    let (status, body) = app.post_json("/workspaces", &json!({ "name": "tenant", "key": {"name": "tenant-key", "scopes": ["read", "write"]} })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let key = body["key"]["key"].as_str().unwrap().to_string();
    let mut local = twilio("local");
    local["credentials"]["base_url"] = json!("http://127.0.0.1:8090/2010-04-01");
    let (status, answer) = send(app.http.post(app.url("/api/v1/provider-accounts")).bearer_auth(&key).json(&local)).await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(answer["error"]["details"]["field"], "credentials.base_url");
    // A `write` key is enough (no `admin` needed) for a public address.
    let (status, answer) = send(app.http.post(app.url("/api/v1/provider-accounts")).bearer_auth(&key).json(&twilio("public"))).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    // The operator's workspace runs dialtone, so its own network is its own (the simulator).
    let (status, answer) = app.post_json("/provider-accounts", &local).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_master_key_no_account_is_stored() {
    let app = TestApp::with(Options { configure: |c| c.master_key = None, ..Options::default() }).await;
    let (status, body) = app.post_json("/provider-accounts", &twilio("T")).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "master_key_missing");
    assert_eq!(body["error"]["details"]["field"], "credentials");
    assert!(body["error"]["message"].as_str().unwrap().contains("DIALTONE_MASTER_KEY"), "{body}");
    let (_, list) = app.get("/provider-accounts").await;
    assert_eq!(list["data"], json!([]));
}
