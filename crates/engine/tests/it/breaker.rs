//! The circuit breaker of a provider account: after 5 consecutive failures it opens for
//! 60 s, then lets one probe through; while it is open no attempt is consumed.

use crate::support::{campaign, fresh_store, numbers, sim_account, started};
use dialtone_core::{Clock, ManualClock, ProviderKind, RetryPolicy};
use dialtone_engine::testing::{Answer, ScriptedProvider};
use dialtone_engine::{Engine, EngineConfig};
use dialtone_store::NewCampaign;
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;

#[tokio::test]
async fn the_breaker_opens_after_five_failures_probes_after_a_minute_and_spends_no_attempt_while_open() {
    let (store, ws, _dir) = fresh_store().await;
    let start: Timestamp = "2026-05-04T12:00:00Z".parse().unwrap();
    let clock = ManualClock::new(start);
    // Down for five requests; whatever comes after is accepted (the provider has recovered).
    let provider = Arc::new(ScriptedProvider::new().answering(vec![Answer::unavailable(); 5]));
    // No in-placement retries: one request per claim keeps the count exact.
    let config = EngineConfig { placement_backoff: vec![], ..EngineConfig::default() };
    let engine = Engine::new(store.clone(), sim_account(&provider), Arc::new(clock.clone()), config);
    let new = NewCampaign { max_attempts: 5, retry: RetryPolicy::uniform(5, SignedDuration::from_secs(1)), ..campaign(&ws, "breaker") };
    let cmp = started(&store, new, &numbers(10), start).await;

    // Five placements fail one after another: each spends its attempt (the provider was asked).
    for n in 1..=5 {
        assert_eq!(engine.dispatch_once().await.unwrap(), 1);
        engine.settle().await;
        assert_eq!(provider.requests(), n);
    }
    let breaker = &engine.account(ProviderKind::Sim).unwrap().breaker;
    assert_eq!(breaker.metrics_value(clock.now()), 1, "open after the fifth consecutive failure");
    assert!(engine.account_waiting(&dialtone_engine::AccountKey::config(ProviderKind::Sim)).unwrap().contains("circuit breaker open"));

    // While open: nothing is claimed or sent, however often the dispatcher looks.
    for _ in 0..10 {
        clock.advance(SignedDuration::from_secs(5));
        if clock.now() >= start + SignedDuration::from_secs(60) {
            break;
        }
        assert_eq!(engine.dispatch_once().await.unwrap(), 0);
        engine.settle().await;
    }
    assert_eq!(provider.requests(), 5, "no request while open");
    let counts = store.campaign_counts(&cmp).await.unwrap();
    assert_eq!(counts.calls.values().sum::<u64>(), 5, "no attempt was made while open: {counts:?}");

    // A minute later one probe goes through and is accepted, so the breaker closes.
    clock.set(start + SignedDuration::from_secs(61));
    assert_eq!(engine.dispatch_once().await.unwrap(), 1, "one probe");
    engine.settle().await;
    assert_eq!(provider.requests(), 6);
    assert_eq!(breaker.metrics_value(clock.now()), 0, "a successful probe closes the breaker");
    assert!(engine.account_waiting(&dialtone_engine::AccountKey::config(ProviderKind::Sim)).is_none());
}
