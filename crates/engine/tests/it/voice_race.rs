//! An agent call answered by a silent callee ends twice: the voice pipeline's verdict
//! (`no_response`) when the media stream closes, and the provider's plain `completed`
//! status callback. The two race; the contact must be retried whichever wins.

use crate::support::{campaign, fresh_store, numbers, sim_account, started};
use dialtone_core::{CallStatus, ContactStatus, EventKind, ManualClock, Outcome, ProviderEvent, RetryPolicy};
use dialtone_engine::testing::ScriptedProvider;
use dialtone_engine::{Engine, EngineConfig};
use dialtone_store::{Call, CallFilter, Page};
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;

fn event(call: &Call, kind: EventKind, key: &str) -> ProviderEvent {
    ProviderEvent {
        provider_type: "test".into(),
        provider_call_id: None,
        call_id: Some(call.id.clone()),
        kind,
        dedupe_key: format!("{key}:{}", call.id),
        occurred_at: None,
        cost: None,
        duration_ms: None,
        report: None,
        raw: dialtone_core::RawJson::null(),
        webhook: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_callee_is_retried_whichever_of_the_verdict_and_the_end_comes_first() {
    let (store, ws, _dir) = fresh_store().await;
    let start: Timestamp = "2026-05-04T12:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let provider = Arc::new(ScriptedProvider::new());
    let engine = Engine::new(store.clone(), sim_account(&provider), clock.clone(), EngineConfig::default());
    let mut new = campaign(&ws, "silent");
    (new.max_concurrent, new.max_attempts, new.retry) = (2, 3, RetryPolicy::uniform(2, SignedDuration::from_secs(60)));
    let cmp = started(&store, new, &numbers(2), start).await;

    assert_eq!(engine.dispatch_once().await.unwrap(), 2);
    engine.settle().await;
    let filter = CallFilter { campaign_id: Some(cmp.clone()), ..Default::default() };
    let mut calls = store.list_calls(&ws, &filter, &Page::default()).await.unwrap();
    calls.sort_by_key(|c| c.phone.as_str().to_string());
    let (voice, end) = (EventKind::Voice { outcome: Outcome::NoResponse }, EventKind::Ended { outcome: Outcome::Completed, reason: None });
    // The first call's verdict comes first; the second's status callback does. Applied
    // as the engine's ingest writer applies each webhook (it runs only under `Engine::run`).
    store.apply_events(&[event(&calls[0], voice.clone(), "voice")], start).await.unwrap();
    store.apply_events(&[event(&calls[0], end.clone(), "end")], start).await.unwrap();
    store.apply_events(&[event(&calls[1], end, "end")], start).await.unwrap();
    store.apply_events(&[event(&calls[1], voice, "voice")], start).await.unwrap();

    for call in &calls {
        let stored = store.get_call(&ws, &call.id).await.unwrap().unwrap();
        assert_eq!((stored.status, stored.outcome), (CallStatus::Ended, Some(Outcome::NoResponse)), "{}", call.phone.as_str());
        let contact = store.get_contact(&ws, &call.contact_id).await.unwrap().unwrap();
        assert_eq!(
            (contact.status, contact.last_outcome, contact.next_attempt_at),
            (ContactStatus::Pending, Some(Outcome::NoResponse), start + SignedDuration::from_secs(60)),
            "{}: retried a minute later",
            call.phone.as_str()
        );
    }
    clock.advance(SignedDuration::from_secs(61));
    assert_eq!(engine.dispatch_once().await.unwrap(), 2, "both contacts are called again");
    engine.settle().await;
}
