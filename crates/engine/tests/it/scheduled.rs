//! With the clock injected, a scheduled single call is placed on the first dispatcher pass
//! at or after its time, never before; and a contact's retry waits for its policy delay.

use async_trait::async_trait;
use dialtone_core::frequency::{Frequency, Recurrence};
use dialtone_core::{CallId, Clock, ContactZone, ManualClock, PhoneNumber, ProviderKind, RetryPolicy, TzSource};
use dialtone_engine::{Engine, EngineConfig, Providers};
use dialtone_providers::{ParsedWebhook, PlaceCall, Placed, Provider, ProviderError, RemoteCall, WebhookError, WebhookRequest};
use dialtone_store::{Assistant, NewSingleCall};
use jiff::{SignedDuration, Timestamp};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Records what was placed and when (by the injected clock).
struct Recorder {
    clock: ManualClock,
    placed: Mutex<Vec<(CallId, Timestamp)>>,
}

#[async_trait]
impl Provider for Recorder {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Sim
    }
    async fn place_call(&self, call: &PlaceCall) -> Result<Placed, ProviderError> {
        self.placed.lock().unwrap().push((call.call_id.clone(), self.clock.now()));
        Ok(Placed { provider_call_id: format!("p-{}", call.call_id) })
    }
    async fn get_call(&self, _: &str) -> Result<RemoteCall, ProviderError> {
        unreachable!("no reconcile in this test")
    }
    async fn find_call(&self, _: &CallId, _: Timestamp) -> Result<Option<RemoteCall>, ProviderError> {
        Ok(None)
    }
    async fn hang_up(&self, _: &str) -> Result<(), ProviderError> {
        Ok(())
    }
    fn verify_webhook(&self, _: &WebhookRequest<'_>, _: Timestamp) -> Result<(), WebhookError> {
        Ok(())
    }
    fn parse_webhook(&self, _: &WebhookRequest<'_>) -> Result<ParsedWebhook, WebhookError> {
        Ok(ParsedWebhook::default())
    }
}

async fn placed_count(rec: &Recorder) -> usize {
    // Placement runs on a spawned task: give it a moment to record.
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if !rec.placed.lock().unwrap().is_empty() {
            break;
        }
    }
    rec.placed.lock().unwrap().len()
}

#[tokio::test]
async fn a_scheduled_call_fires_on_the_first_tick_at_its_time_and_not_before() {
    let dir = tempfile::tempdir().unwrap();
    let store = dialtone_store::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
    let ws = store.default_workspace().await.unwrap();
    let start: Timestamp = "2026-05-04T08:59:00Z".parse().unwrap();
    let clock = ManualClock::new(start);
    let recorder = Arc::new(Recorder { clock: clock.clone(), placed: Mutex::new(vec![]) });
    let mut providers = Providers::new();
    providers.insert(ProviderKind::Sim, Arc::new(dialtone_engine::Account::new(recorder.clone())));
    let engine = Engine::new(store.clone(), providers, Arc::new(clock.clone()), EngineConfig::default());

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
    // The first tick at its time places it.
    assert_eq!(clock.now(), at);
    assert_eq!(engine.dispatch_once().await.unwrap(), 1);
    assert_eq!(placed_count(&recorder).await, 1);
    let (id, when) = recorder.placed.lock().unwrap()[0].clone();
    assert_eq!(id, call.id, "the scheduled row itself is placed, not a new attempt");
    let late = at.duration_until(when);
    assert!(late < SignedDuration::from_secs(1), "placed {late} after its time");
}
