//! The circuit breaker of a provider account: after 5 consecutive failures it opens for
//! 60 s, then lets one probe through; while it is open no attempt is consumed.

use async_trait::async_trait;
use dialtone_core::{CallId, CampaignStatus, Clock, ManualClock, Mode, PhoneNumber, ProviderKind, RetryPolicy};
use dialtone_engine::{Account, Engine, EngineConfig, Providers};
use dialtone_providers::{ErrorClass, ParsedWebhook, PlaceCall, Placed, Provider, ProviderError, RemoteCall, WebhookError, WebhookRequest};
use dialtone_store::{NewCampaign, NewContact};
use jiff::{SignedDuration, Timestamp};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Answers 503 while `failing`, accepts otherwise; counts requests.
#[derive(Default)]
struct Flaky {
    failing: AtomicBool,
    requests: AtomicUsize,
}

#[async_trait]
impl Provider for Flaky {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Sim
    }
    async fn place_call(&self, call: &PlaceCall) -> Result<Placed, ProviderError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(ProviderError { class: ErrorClass::Retryable, status: Some(503), message: "vapi 503: unavailable".into(), retry_after: None, concurrency_limited: false, unanswered: false });
        }
        Ok(Placed { provider_call_id: format!("p-{}", call.call_id) })
    }
    async fn get_call(&self, _: &str) -> Result<RemoteCall, ProviderError> {
        unreachable!()
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

async fn wait_for_requests(p: &Flaky, n: usize) {
    for _ in 0..400 {
        if p.requests.load(Ordering::SeqCst) >= n {
            // Let the placer record the result.
            tokio::time::sleep(Duration::from_millis(20)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("expected {n} provider requests, saw {}", p.requests.load(Ordering::SeqCst));
}

#[tokio::test]
async fn the_breaker_opens_after_five_failures_probes_after_a_minute_and_spends_no_attempt_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = dialtone_store::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
    let ws = store.default_workspace().await.unwrap();
    let start: Timestamp = "2026-05-04T12:00:00Z".parse().unwrap();
    let clock = ManualClock::new(start);
    let flaky = Arc::new(Flaky::default());
    flaky.failing.store(true, Ordering::SeqCst);
    let mut providers = Providers::new();
    providers.insert(ProviderKind::Sim, Arc::new(Account::new(flaky.clone())));
    // No in-placement retries: one request per claim keeps the count exact.
    let config = EngineConfig { placement_backoff: vec![], ..EngineConfig::default() };
    let engine = Engine::new(store.clone(), providers, Arc::new(clock.clone()), config);

    let midnight = jiff::civil::Time::midnight();
    let cmp = store.create_campaign(NewCampaign {
        workspace_id: ws.clone(),
        name: "breaker".into(),
        provider: ProviderKind::Sim,
        assistant_id: "asst".into(),
        phone_number_id: "pn".into(),
        mode: Mode::Continuous,
        max_concurrent: 1,
        max_attempts: 5,
        retry: RetryPolicy::uniform(5, SignedDuration::from_secs(1)),
        default_region: "US".into(),
        schedule: dialtone_core::schedule::Schedule::always("UTC"),
        calling_hours: dialtone_core::schedule::LocalHours::new(midnight, midnight),
        recurrence: dialtone_core::frequency::Recurrence::new(dialtone_core::frequency::Frequency::Once),
        max_call_duration_secs: None,
        assume_campaign_timezone_for_ambiguous: false,
    }, start).await.unwrap();
    let contacts: Vec<NewContact> = (0..10)
        .map(|i| NewContact { extension: None, phone: PhoneNumber::parse(&format!("+1415555{:04}", 2600 + i), "US").unwrap(), name: None, variables: Default::default(), timezone: None, line: i + 1 })
        .collect();
    store.insert_contacts(&ws, &cmp.id, &contacts, start).await.unwrap();
    store.transition_campaign(&ws, &cmp.id, &[CampaignStatus::Draft], CampaignStatus::Starting, start).await.unwrap();

    // Five placements fail one after another: each spends its attempt (the provider was asked).
    for n in 1..=5 {
        assert_eq!(engine.dispatch_once().await.unwrap(), 1);
        wait_for_requests(&flaky, n).await;
    }
    let breaker = &engine.account(ProviderKind::Sim).unwrap().breaker;
    assert_eq!(breaker.metrics_value(clock.now()), 1, "open after the fifth consecutive failure");
    assert!(engine.account_waiting(ProviderKind::Sim).unwrap().contains("circuit breaker open"));

    // While open: nothing is claimed or sent, however often the dispatcher looks.
    for _ in 0..10 {
        clock.advance(SignedDuration::from_secs(5));
        if clock.now() >= start + SignedDuration::from_secs(60) {
            break;
        }
        assert_eq!(engine.dispatch_once().await.unwrap(), 0);
    }
    assert_eq!(flaky.requests.load(Ordering::SeqCst), 5, "no request while open");
    let counts = store.campaign_counts(&cmp.id).await.unwrap();
    assert_eq!(counts.calls.values().sum::<u64>(), 5, "no attempt was made while open: {counts:?}");

    // A minute later one probe goes through; the provider has recovered, so it closes.
    flaky.failing.store(false, Ordering::SeqCst);
    clock.set(start + SignedDuration::from_secs(61));
    assert_eq!(engine.dispatch_once().await.unwrap(), 1, "one probe");
    wait_for_requests(&flaky, 6).await;
    assert_eq!(breaker.metrics_value(clock.now()), 0, "a successful probe closes the breaker");
    assert!(engine.account_waiting(ProviderKind::Sim).is_none());
}
