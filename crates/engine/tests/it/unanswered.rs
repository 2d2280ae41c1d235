//! A placement that goes unanswered (a timeout) may still have created the call, and the
//! provider takes no idempotency key: the placer asks the provider for a call carrying our
//! id before it sends again, so one attempt is never placed twice.

use async_trait::async_trait;
use dialtone_core::{CallId, CallStatus, CampaignStatus, EventKind, Mode, Outcome, PhoneNumber, ProviderEvent, ProviderKind, RetryPolicy, SystemClock};
use dialtone_engine::{Account, Engine, EngineConfig, Providers};
use dialtone_providers::{ErrorClass, ParsedWebhook, PlaceCall, Placed, Provider, ProviderError, RemoteCall, WebhookError, WebhookRequest};
use dialtone_store::{Call, CallFilter, NewCampaign, NewContact, Page};
use jiff::{SignedDuration, Timestamp};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The first request times out (after creating the call, if `created_on_timeout`); later
/// ones are accepted. Looking a call up by our id works unless `lookup_fails`.
#[derive(Default)]
struct Unanswered {
    created_on_timeout: bool,
    lookup_fails: bool,
    requests: AtomicUsize,
    lookups: AtomicUsize,
    created: Mutex<Vec<CallId>>,
}

fn provider_id(call: &CallId) -> String {
    format!("p-{call}")
}

fn error(message: &str) -> ProviderError {
    ProviderError { class: ErrorClass::Retryable, status: None, message: message.into(), retry_after: None, concurrency_limited: false, unanswered: true }
}

#[async_trait]
impl Provider for Unanswered {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Sim
    }
    async fn place_call(&self, call: &PlaceCall) -> Result<Placed, ProviderError> {
        let first = self.requests.fetch_add(1, Ordering::SeqCst) == 0;
        if first && !self.created_on_timeout {
            return Err(error("request timed out"));
        }
        self.created.lock().unwrap().push(call.call_id.clone());
        if first {
            return Err(error("request timed out"));
        }
        Ok(Placed { provider_call_id: provider_id(&call.call_id) })
    }
    async fn get_call(&self, _: &str) -> Result<RemoteCall, ProviderError> {
        Err(error("not used here"))
    }
    async fn find_call(&self, call_id: &CallId, _: Timestamp) -> Result<Option<RemoteCall>, ProviderError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        if self.lookup_fails {
            return Err(error("call list unavailable"));
        }
        let found = self.created.lock().unwrap().contains(call_id);
        Ok(found.then(|| {
            let pid = provider_id(call_id);
            RemoteCall {
                provider_call_id: pid.clone(),
                call_id: Some(call_id.clone()),
                event: ProviderEvent {
                    provider_type: "call".into(),
                    provider_call_id: Some(pid.clone()),
                    call_id: Some(call_id.clone()),
                    kind: EventKind::Progress(CallStatus::Ringing),
                    dedupe_key: format!("reconcile:{pid}:ringing"),
                    occurred_at: None,
                    cost: None,
                    duration_ms: None,
                    raw: serde_json::json!({ "status": "ringing" }),
                },
            }
        }))
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

/// Runs an engine on a one-contact campaign against `provider` until its call is settled
/// (dialled or ended), and returns the call.
async fn settle(provider: Arc<Unanswered>) -> Call {
    let dir = tempfile::tempdir().unwrap();
    let store = dialtone_store::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
    let ws = store.default_workspace().await.unwrap();
    let now = Timestamp::now();
    let midnight = jiff::civil::Time::midnight();
    let cmp = store
        .create_campaign(NewCampaign {
            workspace_id: ws.clone(),
            name: "unanswered".into(),
            provider: ProviderKind::Sim,
            assistant_id: "asst".into(),
            phone_number_id: "pn".into(),
            mode: Mode::Continuous,
            max_concurrent: 1,
            max_attempts: 1,
            retry: RetryPolicy::uniform(1, SignedDuration::from_secs(3600)),
            default_region: "US".into(),
            schedule: dialtone_core::schedule::Schedule::always("UTC"),
            calling_hours: dialtone_core::schedule::LocalHours::new(midnight, midnight),
            recurrence: dialtone_core::frequency::Recurrence::new(dialtone_core::frequency::Frequency::Once),
            max_call_duration_secs: None,
            assume_campaign_timezone_for_ambiguous: false,
        }, now)
        .await
        .unwrap();
    let contact = NewContact { extension: None, phone: PhoneNumber::parse("+14155552671", "US").unwrap(), name: None, variables: Default::default(), timezone: None, line: 1 };
    store.insert_contacts(&ws, &cmp.id, &[contact], now).await.unwrap();
    store.transition_campaign(&ws, &cmp.id, &[CampaignStatus::Draft], CampaignStatus::Starting, now).await.unwrap();

    let mut providers = Providers::new();
    providers.insert(ProviderKind::Sim, Arc::new(Account::new(provider)));
    let config = EngineConfig { tick: Duration::from_millis(20), placement_backoff: vec![Duration::from_millis(10)], ..EngineConfig::default() };
    let engine = Engine::new(store.clone(), providers, Arc::new(SystemClock), config);
    let cancel = CancellationToken::new();
    let running = tokio::spawn(engine.clone().run(cancel.clone()));

    let filter = CallFilter { campaign_id: Some(cmp.id.clone()), ..Default::default() };
    let mut settled = None;
    for _ in 0..250 {
        let calls = store.list_calls(&ws, &filter, &Page::default()).await.unwrap();
        if let Some(c) = calls.into_iter().find(|c| c.provider_call_id.is_some() || c.status.is_terminal()) {
            settled = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Time for a second request, had the placer been going to send one.
    tokio::time::sleep(Duration::from_millis(200)).await;
    cancel.cancel();
    running.await.unwrap();
    let settled = settled.expect("the call was neither dialled nor ended within 5 s");
    let calls = store.list_calls(&ws, &filter, &Page::default()).await.unwrap();
    assert_eq!(calls.len(), 1, "one attempt, one call row: {calls:?}");
    calls.into_iter().find(|c| c.id == settled.id).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_placement_the_provider_did_create_is_adopted_not_sent_again() {
    let provider = Arc::new(Unanswered { created_on_timeout: true, ..Default::default() });
    let call = settle(provider.clone()).await;
    assert_eq!(provider.requests.load(Ordering::SeqCst), 1, "the call was sent once");
    assert_eq!(provider.lookups.load(Ordering::SeqCst), 1);
    assert_eq!(call.provider_call_id, Some(provider_id(&call.id)), "adopted under the provider's id");
    assert_eq!(call.status, CallStatus::Ringing, "the provider's view of it was applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_placement_the_provider_never_saw_is_sent_again() {
    let provider = Arc::new(Unanswered::default());
    let call = settle(provider.clone()).await;
    assert_eq!(provider.requests.load(Ordering::SeqCst), 2, "sent again after the lookup found nothing");
    assert_eq!(provider.created.lock().unwrap().len(), 1, "the provider holds one call");
    assert_eq!((call.status, call.provider_call_id), (CallStatus::Dialing, Some(provider_id(&call.id))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_placement_the_provider_cannot_account_for_ends_as_timeout() {
    let provider = Arc::new(Unanswered { created_on_timeout: true, lookup_fails: true, ..Default::default() });
    let call = settle(provider.clone()).await;
    assert_eq!(provider.requests.load(Ordering::SeqCst), 1, "never sent blind a second time");
    assert_eq!((call.status, call.outcome), (CallStatus::Ended, Some(Outcome::Timeout)), "{call:?}");
    assert!(call.ended_reason.as_deref().is_some_and(|r| r.contains("could not say")), "{:?}", call.ended_reason);
}
