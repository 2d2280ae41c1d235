//! Events for calls dialtone never placed (a Vapi org-wide Server URL sends the events of
//! every call on the account) are kept for `unknown_event_retention`, then the reaper
//! purges them; judged on the injected clock.

use crate::support::fresh_store;
use dialtone_core::{CallStatus, Clock, EventKind, ManualClock, ProviderEvent};
use dialtone_engine::{Engine, EngineConfig, Providers};
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;
use std::time::Duration;

fn stranger(key: &str) -> ProviderEvent {
    ProviderEvent {
        provider_type: "status-update".into(),
        provider_call_id: Some(format!("someone-elses-{key}")),
        call_id: None,
        kind: EventKind::Progress(CallStatus::Ringing),
        dedupe_key: format!("vapi:{key}"),
        occurred_at: None,
        cost: None,
        duration_ms: None,
        report: None,
        raw: serde_json::json!({ "key": key }).into(),
        webhook: None,
    }
}

async fn is_stored(store: &Arc<dyn dialtone_store::Store>, key: &str, now: Timestamp) -> bool {
    // A replay of a stored event is a duplicate; of a purged one, new again.
    store.apply_events(&[stranger(key)], now).await.unwrap()[0].duplicate
}

#[tokio::test]
async fn the_reaper_purges_unknown_events_once_they_are_older_than_the_retention() {
    let (store, _ws, _dir) = fresh_store().await;
    let start: Timestamp = "2026-05-04T09:00:00Z".parse().unwrap();
    let clock = ManualClock::new(start);
    let default = EngineConfig::default();
    assert_eq!(default.unknown_event_retention, Duration::from_secs(7 * 24 * 3600), "7 days by default");
    let engine = Engine::new(store.clone(), Providers::new(), Arc::new(clock.clone()), default);

    let first = store.apply_events(&[stranger("a")], clock.now()).await.unwrap();
    assert!(first[0].unknown());
    clock.advance(SignedDuration::from_hours(24));
    store.apply_events(&[stranger("b")], clock.now()).await.unwrap();

    // Just short of seven days after `a`: nothing goes.
    clock.set(start + SignedDuration::from_hours(7 * 24) - SignedDuration::from_secs(1));
    assert_eq!(engine.purge_unknown_events().await.unwrap(), 0);
    // A reaper pass past `a`'s seven days purges `a` only.
    clock.set(start + SignedDuration::from_hours(7 * 24) + SignedDuration::from_secs(1));
    engine.reap_once().await.unwrap();
    let metrics = engine.metrics.render(0, &[]);
    assert!(metrics.contains("dialtone_webhook_events_unknown_purged_total 1"), "{metrics}");
    assert!(is_stored(&store, "b", clock.now()).await, "b is kept until its own seven days");
    assert!(!is_stored(&store, "a", clock.now()).await, "a was purged");
}

#[tokio::test]
async fn the_retention_is_configurable() {
    let (store, _ws, _dir) = fresh_store().await;
    let start: Timestamp = "2026-05-04T09:00:00Z".parse().unwrap();
    let clock = ManualClock::new(start);
    let config = EngineConfig { unknown_event_retention: Duration::from_secs(3600), ..EngineConfig::default() };
    let engine = Engine::new(store.clone(), Providers::new(), Arc::new(clock.clone()), config);
    store.apply_events(&[stranger("a"), stranger("b")], clock.now()).await.unwrap();
    clock.advance(SignedDuration::from_mins(59));
    assert_eq!(engine.purge_unknown_events().await.unwrap(), 0);
    clock.advance(SignedDuration::from_mins(2));
    assert_eq!(engine.purge_unknown_events().await.unwrap(), 2);
}
