//! The order that keeps one attempt from being dialled twice (`dialtone_core::attempt`):
//! the placer commits `placing_at` (the store's `mark_placing` fence) before the provider
//! hears of the call. A provider that looks the call up in the store at the moment it is
//! asked to place it sees every call already `placing`; were the fence moved after the
//! request, or skipped, it would see a claim a crash could not tell from an unsent one.

use crate::support::{campaign, fresh_store, numbers, sim_account, started};
use dialtone_core::{AttemptState, ManualClock};
use dialtone_engine::testing::ScriptedProvider;
use dialtone_engine::{Engine, EngineConfig};
use jiff::Timestamp;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_is_marked_placing_before_the_provider_is_asked_to_place_it() {
    let (store, ws, _dir) = fresh_store().await;
    let start: Timestamp = "2026-05-04T12:00:00Z".parse().unwrap();
    let provider = Arc::new(ScriptedProvider::new().witnessing(store.clone(), ws.clone()));
    let clock = Arc::new(ManualClock::new(start));
    let engine = Engine::new(store.clone(), sim_account(&provider), clock.clone(), EngineConfig::default());
    let mut new = campaign(&ws, "send order");
    new.max_concurrent = 3;
    started(&store, new, &numbers(6), start).await;

    // The first claim for the campaign: its account is not known to the dispatcher yet, so
    // each placer commits its own fence. The second: the account (no rate limit, a provider
    // that can be asked for our id) is known, and the claim commits the fence itself.
    assert_eq!(engine.dispatch_once().await.unwrap(), 3);
    engine.settle().await;
    for call in provider.seen_at_send() {
        store.end_call(&call.id, dialtone_core::Outcome::Completed, "test", start).await.unwrap();
    }
    let second = start + jiff::SignedDuration::from_secs(1);
    clock.set(second);
    assert_eq!(engine.dispatch_once().await.unwrap(), 3);
    engine.settle().await;

    let seen = provider.seen_at_send();
    assert_eq!(seen.len(), 6, "one request per attempt");
    for (i, call) in seen.iter().enumerate() {
        let state = AttemptState::of(call.status, call.placing_at.is_some(), call.provider_call_id.is_some());
        assert_eq!(state, Some(AttemptState::Placing), "the provider was asked to place {} while it was {state:?}: {call:?}", call.id);
        let at = if i < 3 { start } else { second };
        assert_eq!(call.placing_at, Some(at), "placing_at was committed, at the engine's clock, before the request");
    }
}
