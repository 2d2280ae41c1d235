//! With the clock injected, a scheduled single call is placed on the first dispatcher pass
//! at or after its time, never before; and a contact's retry waits for its policy delay.

use crate::support::{fresh_store, sim_account};
use dialtone_core::frequency::{Frequency, Recurrence};
use dialtone_core::{Clock, ContactZone, ManualClock, PhoneNumber, ProviderKind, RetryPolicy, TzSource};
use dialtone_engine::testing::ScriptedProvider;
use dialtone_engine::{Engine, EngineConfig};
use dialtone_store::{Assistant, NewSingleCall};
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;

#[tokio::test]
async fn a_scheduled_call_fires_on_the_first_tick_at_its_time_and_not_before() {
    let (store, ws, _dir) = fresh_store().await;
    let start: Timestamp = "2026-05-04T08:59:00Z".parse().unwrap();
    let clock = ManualClock::new(start);
    let provider = Arc::new(ScriptedProvider::new().timed_by(Arc::new(clock.clone())));
    let engine = Engine::new(store.clone(), sim_account(&provider), Arc::new(clock.clone()), EngineConfig::default());

    let at: Timestamp = "2026-05-04T09:00:00Z".parse().unwrap();
    let call = store
        .create_single_call(
            NewSingleCall {
                workspace_id: ws.clone(),
                assistant: Assistant { id: "asst".into(), provider: ProviderKind::Sim, phone_number_id: "pn".into(), name: None },
                phone: PhoneNumber::parse("+14155552671", "US").unwrap(),
                extension: None,
                name: None,
                variables: Default::default(),
                timezone: ContactZone::single("UTC", TzSource::Explicit),
                scheduled_for: at,
                recurrence: Some(Recurrence::new(Frequency::Once)),
                max_attempts: 1,
                retry: RetryPolicy::default(),
                respect_business_hours: false,
                agent_id: None,
                account_id: None,
            },
            start,
        )
        .await
        .unwrap();

    // Ticks every second of simulated time up to one second before: nothing is placed.
    let tick = SignedDuration::from_secs(1);
    while clock.now() < at {
        assert_eq!(engine.dispatch_once().await.unwrap(), 0, "placed early at {}", clock.now());
        clock.advance(tick);
    }
    engine.settle().await;
    assert!(provider.placed().is_empty(), "nothing reached the provider before its time");
    // The first tick at its time places it.
    assert_eq!(clock.now(), at);
    assert_eq!(engine.dispatch_once().await.unwrap(), 1);
    engine.settle().await;
    let placed = provider.placed();
    assert_eq!(placed.len(), 1);
    let (id, when) = placed[0].clone();
    assert_eq!(id, call.id, "the scheduled row itself is placed, not a new attempt");
    let late = at.duration_until(when);
    assert!(late < SignedDuration::from_secs(1), "placed {late} after its time");
}
