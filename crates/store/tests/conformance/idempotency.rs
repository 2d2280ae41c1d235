//! `Idempotency-Key` records: one owner per (workspace, key), the answer kept 24 h, a key
//! freed when its owner fails or dies.

use crate::support::*;
use dialtone_store::{Begun, StoredResponse, IDEMPOTENCY_STALE, IDEMPOTENCY_TTL};

fn answer(body: &str) -> StoredResponse {
    StoredResponse {
        status: 201,
        content_type: Some("application/json".into()),
        location: Some("/api/v1/campaigns/cmp_1".into()),
        body: body.into(),
        secret: false,
    }
}

pub async fn an_idempotency_key_has_one_owner_its_answer_is_kept_a_day_and_a_failed_owner_frees_it(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let post = "POST /api/v1/campaigns";
    assert_eq!(store.begin_idempotent(&ws, "k1", post, t0()).await.unwrap(), Begun::Owner);
    assert_eq!(store.begin_idempotent(&ws, "k1", post, at(1)).await.unwrap(), Begun::InProgress, "a second request waits for the first");
    assert!(store.finish_idempotent(&ws, "k1", "aa11", &answer(r#"{"id":"cmp_1"}"#)).await.unwrap());
    let done = Begun::Done { request: post.into(), body_sha256: "aa11".into(), response: answer(r#"{"id":"cmp_1"}"#) };
    assert_eq!(store.begin_idempotent(&ws, "k1", "POST /api/v1/calls", at(2)).await.unwrap(), done, "the first request is told, whatever the second is");
    assert!(!store.finish_idempotent(&ws, "k1", "bb22", &answer("{}")).await.unwrap(), "a done key is not overwritten");

    // A day later the key is forgotten and runs again.
    let day = IDEMPOTENCY_TTL.as_secs();
    assert_eq!(store.begin_idempotent(&ws, "k0", post, t0()).await.unwrap(), Begun::Owner);
    assert_eq!(store.purge_idempotency_keys(at(day - 1), 10).await.unwrap(), 0, "nothing has expired yet");
    assert_eq!(store.purge_idempotency_keys(at(day + 1), 10).await.unwrap(), 2, "the reaper purges k0 and k1, a day old");
    assert_eq!(store.begin_idempotent(&ws, "k1", post, at(day + 1)).await.unwrap(), Begun::Owner);

    // An owner that failed on our side frees the key at once.
    assert_eq!(store.begin_idempotent(&ws, "k2", post, at(day + 2)).await.unwrap(), Begun::Owner);
    store.abandon_idempotent(&ws, "k2").await.unwrap();
    assert_eq!(store.begin_idempotent(&ws, "k2", post, at(day + 3)).await.unwrap(), Begun::Owner);
    // One that died is taken over once it is stale; its late finish then stores nothing
    // over the new owner's record.
    let stale = IDEMPOTENCY_STALE.as_secs();
    assert_eq!(store.begin_idempotent(&ws, "k2", post, at(day + 3 + stale - 1)).await.unwrap(), Begun::InProgress);
    assert_eq!(store.begin_idempotent(&ws, "k2", post, at(day + 3 + stale + 1)).await.unwrap(), Begun::Owner);
}

/// Many requests with one key at the same moment: exactly one owns it.
pub async fn concurrent_requests_with_one_key_have_exactly_one_owner(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (store, ws) = (store.clone(), ws.clone());
            tokio::spawn(async move { store.begin_idempotent(&ws, "same", "POST /api/v1/dnc", t0()).await.unwrap() })
        })
        .collect();
    let mut owners = 0;
    for t in tasks {
        match t.await.unwrap() {
            Begun::Owner => owners += 1,
            Begun::InProgress => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(owners, 1);
}
