//! Secrets at rest (issue 13): provider-account credentials and webhook-endpoint secrets
//! are stored sealed under the master key, readable with any configured key, re-sealed
//! under the current one by a rotation, after which the old key can go. Run on both
//! backends, each store reopened on the same database with another keyring.

use crate::support::*;
use dialtone_core::ProviderKind;
use dialtone_store::secrets::{Keyring, MasterKey};
use dialtone_store::{Begun, NewProviderAccount, NewWebhookEndpoint, ProviderAccountPatch, StoreError, StoredResponse};
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;

const TOKEN: &str = "twilio-auth-token-0123456789abcdef";
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const LEGACY: &str = "whsec_c2VjcmV0LXN0b3JlZC1iZWZvcmUtMDAyNA==";
/// A `POST /keys` answer, kept for `Idempotency-Key` replays.
const KEY_ANSWER: &str = r#"{"id":"key_1","key":"dt_live_5ecret0123456789abcdef"}"#;

fn key_answer() -> StoredResponse {
    StoredResponse { status: 201, content_type: Some("application/json".into()), location: None, body: KEY_ANSWER.into(), secret: true }
}

fn account() -> NewProviderAccount {
    NewProviderAccount {
        provider: ProviderKind::Twilio,
        name: "sub-account 1".into(),
        settings: BTreeMap::from([("account_sid".to_string(), serde_json::json!("AC0123"))]),
        secrets: BTreeMap::from([("auth_token".to_string(), SecretString::from(TOKEN))]),
        max_concurrent: Some(3),
        calls_per_second: Some(1.5),
    }
}

fn endpoint() -> NewWebhookEndpoint {
    NewWebhookEndpoint { url: "http://127.0.0.1:9/hook".into(), events: vec!["call.ended".into()], enabled: true, description: None }
}

fn ring(current: &MasterKey, previous: &[&MasterKey]) -> Option<Keyring> {
    Some(Keyring::new(current.clone(), previous.iter().map(|k| (*k).clone()).collect()))
}

/// Every stored secret column, as the database holds it.
async fn raw(url: &str) -> Vec<String> {
    let sql = [
        "SELECT secrets FROM workspace_provider_accounts",
        "SELECT secret FROM webhook_endpoints",
        "SELECT previous_secret FROM webhook_endpoints WHERE previous_secret IS NOT NULL",
        "SELECT response_body FROM idempotency_keys WHERE response_body IS NOT NULL",
    ];
    let mut out = vec![];
    for q in sql {
        let rows: Vec<(String,)> = if url.starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            sqlx::query_as(q).fetch_all(&pool).await.unwrap()
        } else {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query_as(q).fetch_all(&pool).await.unwrap()
        };
        out.extend(rows.into_iter().map(|(s,)| s));
    }
    out
}

async fn rotation_keeps_every_secret_readable_and_lets_the_old_key_go(url: &str) {
    let (old, _) = MasterKey::generate();
    let (new, _) = MasterKey::generate();
    let (stranger, _) = MasterKey::generate();

    // Without a master key: endpoint secrets are stored as given (as before 0024), provider
    // accounts refused.
    let bare = dialtone_store::connect_with(url, None).await.unwrap();
    let ws = bare.default_workspace().await.unwrap();
    assert!(matches!(bare.create_provider_account(&ws, &account(), t0()).await, Err(StoreError::NoMasterKey)));
    let legacy = bare.create_webhook_endpoint(&ws, &endpoint(), &LEGACY.into(), t0()).await.unwrap();
    assert_eq!(raw(url).await, [LEGACY], "no key, no sealing");
    // An answer showing a secret is never kept in plaintext: refused without a key.
    assert_eq!(bare.begin_idempotent(&ws, "k-bare", "POST /api/v1/keys", t0()).await.unwrap(), Begun::Owner);
    assert!(matches!(bare.finish_idempotent(&ws, "k-bare", "aa", &key_answer()).await, Err(StoreError::NoMasterKey)));
    assert_eq!(raw(url).await, [LEGACY], "nothing stored");

    // Under the old key: sealed, never in the clear; the hints show four characters.
    let store = dialtone_store::connect_with(url, ring(&old, &[])).await.unwrap();
    let pa = store.create_provider_account(&ws, &account(), t0()).await.unwrap();
    assert_eq!(pa.secret_hints["auth_token"], "…cdef");
    assert_eq!(pa.settings["account_sid"], "AC0123");
    let ep = store.create_webhook_endpoint(&ws, &endpoint(), &WHSEC.into(), t0()).await.unwrap();
    assert_eq!(ep.secret.expose_secret(), WHSEC);
    let rotated_ep = store.rotate_webhook_secret(&ws, ep.id.as_str(), &"whsec_bmV3LXNlY3JldC1hZnRlci1yb3RhdGlvbg==".into(), at(1)).await.unwrap().unwrap();
    assert_eq!(rotated_ep.previous_secret.as_ref().map(ExposeSecret::expose_secret), Some(WHSEC), "a moved sealed secret still opens");
    assert_eq!(store.begin_idempotent(&ws, "k1", "POST /api/v1/keys", t0()).await.unwrap(), Begun::Owner);
    assert!(store.finish_idempotent(&ws, "k1", "aa", &key_answer()).await.unwrap());
    let replay = Begun::Done { request: "POST /api/v1/keys".into(), body_sha256: "aa".into(), response: key_answer() };
    assert_eq!(store.begin_idempotent(&ws, "k1", "POST /api/v1/keys", at(1)).await.unwrap(), replay, "the replay shows the key again");
    for stored in raw(url).await {
        assert!(!stored.contains(TOKEN) && !stored.contains("MfKQ9r8") && !stored.contains("5ecret"), "plaintext at rest: {stored}");
    }
    let secrets = store.provider_account_secrets(pa.id.as_str()).await.unwrap().unwrap();
    assert_eq!(secrets["auth_token"].expose_secret(), TOKEN);
    // The legacy plaintext endpoint secret still reads.
    assert_eq!(store.get_webhook_endpoint(&ws, legacy.id.as_str()).await.unwrap().unwrap().secret.expose_secret(), LEGACY);

    // The new key, the old one kept: old-key rows read; the rotation re-seals all of them
    // (the account, the endpoint's two secrets, the legacy plaintext one, the kept answer)
    // and then has nothing to do.
    let store = dialtone_store::connect_with(url, ring(&new, &[&old])).await.unwrap();
    assert_eq!(store.provider_account_secrets(pa.id.as_str()).await.unwrap().unwrap()["auth_token"].expose_secret(), TOKEN);
    assert_eq!(store.rotate_secrets().await.unwrap(), 5);
    assert_eq!(store.rotate_secrets().await.unwrap(), 0, "a second rotation finds nothing to do");
    let stored = raw(url).await;
    assert_eq!(stored.len(), 5);
    for s in &stored {
        assert!(s.starts_with(&format!("dtenc1:{}:", new.id())), "re-sealed under the new key: {s}");
    }
    // A PATCH of one secret keeps the others, re-sealed.
    let patch = ProviderAccountPatch { secrets: BTreeMap::from([("extra".to_string(), SecretString::from("another-secret-9876"))]), ..Default::default() };
    let patched = store.update_provider_account(&ws, pa.id.as_str(), &patch, at(2)).await.unwrap().unwrap();
    assert_eq!(patched.secret_hints.keys().collect::<Vec<_>>(), ["auth_token", "extra"]);

    // The old key removed: everything still reads.
    let store = dialtone_store::connect_with(url, ring(&new, &[])).await.unwrap();
    let secrets = store.provider_account_secrets(pa.id.as_str()).await.unwrap().unwrap();
    assert_eq!(secrets["auth_token"].expose_secret(), TOKEN);
    assert_eq!(secrets["extra"].expose_secret(), "another-secret-9876");
    let ep = store.get_webhook_endpoint(&ws, ep.id.as_str()).await.unwrap().unwrap();
    assert_eq!(ep.previous_secret.as_ref().map(ExposeSecret::expose_secret), Some(WHSEC));
    assert_eq!(store.get_webhook_endpoint(&ws, legacy.id.as_str()).await.unwrap().unwrap().secret.expose_secret(), LEGACY);
    assert_eq!(store.begin_idempotent(&ws, "k1", "POST /api/v1/keys", at(3)).await.unwrap(), replay, "the kept answer reads under the new key");

    // The wrong key opens nothing, and says which key it lacks.
    let store = dialtone_store::connect_with(url, ring(&stranger, &[])).await.unwrap();
    let err = store.provider_account_secrets(pa.id.as_str()).await.unwrap_err();
    assert!(matches!(&err, StoreError::Corrupt(m) if m.contains(new.id())), "{err}");
    assert!(store.get_webhook_endpoint(&ws, ep.id.as_str()).await.is_err());
    assert!(store.rotate_secrets().await.is_err(), "a rotation cannot re-seal what it cannot open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rotation_keeps_every_secret_readable_and_lets_the_old_key_go() {
    let dir = tempfile::tempdir().unwrap();
    rotation_keeps_every_secret_readable_and_lets_the_old_key_go(&format!("sqlite://{}/t.db", dir.path().display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rotation_keeps_every_secret_readable_and_lets_the_old_key_go() {
    let db = crate::pg::fresh_database().await;
    rotation_keeps_every_secret_readable_and_lets_the_old_key_go(&db.url).await;
}
