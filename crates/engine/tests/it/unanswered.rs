//! A placement that goes unanswered (a timeout) may still have created the call, and the
//! provider takes no idempotency key: the placer asks the provider for a call carrying our
//! id before it sends again, so one attempt is never placed twice.

use crate::support::{campaign, fresh_store, numbers, sim_account, started};
use dialtone_core::{CallStatus, Outcome, SystemClock};
use dialtone_engine::testing::{provider_id, Answer, ScriptedProvider};
use dialtone_engine::{Engine, EngineConfig};
use dialtone_store::{Call, CallFilter, Page};
use jiff::Timestamp;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Runs an engine on a one-contact campaign against `provider` until its call is settled
/// (dialled or ended), and returns the call.
async fn settle(provider: Arc<ScriptedProvider>) -> Call {
    let (store, ws, _dir) = fresh_store().await;
    let cmp = started(&store, campaign(&ws, "unanswered"), &numbers(1), Timestamp::now()).await;

    let config = EngineConfig { tick: Duration::from_millis(20), placement_backoff: vec![Duration::from_millis(10)], ..EngineConfig::default() };
    let engine = Engine::new(store.clone(), sim_account(&provider), Arc::new(SystemClock), config);
    let cancel = CancellationToken::new();
    let running = tokio::spawn(engine.clone().run(cancel.clone()));

    let filter = CallFilter { campaign_id: Some(cmp.clone()), ..Default::default() };
    let mut settled = None;
    for _ in 0..250 {
        let calls = store.list_calls(&ws, &filter, &Page::default()).await.unwrap();
        if let Some(c) = calls.into_iter().find(|c| c.provider_call_id.is_some() || c.status.is_terminal()) {
            settled = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The placement is over (a second request, had the placer been going to send one, has
    // been sent by now).
    engine.settle().await;
    cancel.cancel();
    running.await.unwrap();
    let settled = settled.expect("the call was neither dialled nor ended within 5 s");
    let calls = store.list_calls(&ws, &filter, &Page::default()).await.unwrap();
    assert_eq!(calls.len(), 1, "one attempt, one call row: {calls:?}");
    calls.into_iter().find(|c| c.id == settled.id).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_placement_the_provider_did_create_is_adopted_not_sent_again() {
    let provider = Arc::new(ScriptedProvider::new().answering([Answer::TimeOutAfterCreating]));
    let call = settle(provider.clone()).await;
    assert_eq!(provider.requests(), 1, "the call was sent once");
    assert_eq!(provider.lookups(), 1);
    assert_eq!(call.provider_call_id, Some(provider_id(&call.id)), "adopted under the provider's id");
    assert_eq!(call.status, CallStatus::Ringing, "the provider's view of it was applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_placement_the_provider_never_saw_is_sent_again() {
    let provider = Arc::new(ScriptedProvider::new().answering([Answer::TimeOut]));
    let call = settle(provider.clone()).await;
    assert_eq!(provider.requests(), 2, "sent again after the lookup found nothing");
    assert_eq!(provider.created().len(), 1, "the provider holds one call");
    assert_eq!((call.status, call.provider_call_id), (CallStatus::Dialing, Some(provider_id(&call.id))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_placement_the_provider_cannot_account_for_ends_as_timeout() {
    let provider = Arc::new(ScriptedProvider::new().answering([Answer::TimeOutAfterCreating]).lookups_fail());
    let call = settle(provider.clone()).await;
    assert_eq!(provider.requests(), 1, "never sent blind a second time");
    assert_eq!((call.status, call.outcome), (CallStatus::Ended, Some(Outcome::Timeout)), "{call:?}");
    assert!(call.ended_reason.as_deref().is_some_and(|r| r.contains("could not say")), "{:?}", call.ended_reason);
}
