//! A call the provider keeps vouching for is ended at its maximum duration: the reaper asks
//! the provider to hang it up, records the outcome `timeout`, and the slot it held is
//! freed, so a campaign at its cap goes on. Time is the injected ManualClock.

use async_trait::async_trait;
use dialtone_core::{CallId, CallStatus, CampaignId, CampaignStatus, Clock, EventKind, ManualClock, Mode, Outcome, PhoneNumber, ProviderEvent, ProviderKind, RetryPolicy};
use dialtone_engine::{Account, Engine, EngineConfig, Providers};
use dialtone_providers::{ParsedWebhook, PlaceCall, Placed, Provider, ProviderError, RemoteCall, WebhookError, WebhookRequest};
use dialtone_store::{Call, CallFilter, NewCampaign, NewContact, Page, Store};
use jiff::{SignedDuration, Timestamp};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Accepts every call, and says each one is still in progress whenever asked.
#[derive(Default)]
struct Endless {
    lookups: AtomicUsize,
    hung_up: Mutex<Vec<String>>,
}

#[async_trait]
impl Provider for Endless {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Sim
    }
    async fn place_call(&self, call: &PlaceCall) -> Result<Placed, ProviderError> {
        Ok(Placed { provider_call_id: format!("p-{}", call.call_id) })
    }
    async fn get_call(&self, provider_call_id: &str) -> Result<RemoteCall, ProviderError> {
        let n = self.lookups.fetch_add(1, Ordering::SeqCst);
        Ok(RemoteCall {
            provider_call_id: provider_call_id.into(),
            call_id: None,
            event: ProviderEvent {
                provider_type: "call".into(),
                provider_call_id: Some(provider_call_id.into()),
                call_id: None,
                kind: EventKind::Progress(CallStatus::InProgress),
                dedupe_key: format!("reconcile:{provider_call_id}:in-progress:{n}"),
                occurred_at: None,
                cost: None,
                duration_ms: None,
                raw: serde_json::json!({ "status": "in-progress" }),
            },
        })
    }
    async fn find_call(&self, _: &CallId, _: Timestamp) -> Result<Option<RemoteCall>, ProviderError> {
        Ok(None)
    }
    async fn hang_up(&self, provider_call_id: &str) -> Result<(), ProviderError> {
        self.hung_up.lock().unwrap().push(provider_call_id.into());
        Ok(())
    }
    fn verify_webhook(&self, _: &WebhookRequest<'_>, _: Timestamp) -> Result<(), WebhookError> {
        Ok(())
    }
    fn parse_webhook(&self, _: &WebhookRequest<'_>) -> Result<ParsedWebhook, WebhookError> {
        Ok(ParsedWebhook::default())
    }
}

struct World {
    store: Arc<dyn Store>,
    ws: dialtone_core::WorkspaceId,
    campaign: CampaignId,
    clock: ManualClock,
    provider: Arc<Endless>,
    engine: Arc<Engine>,
    cancel: CancellationToken,
    running: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

/// A running engine and a started cap-1 campaign with two contacts, its own maximum call
/// duration `campaign_max` (None: the engine's default of one hour).
async fn world(campaign_max: Option<u32>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = dialtone_store::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
    let ws = store.default_workspace().await.unwrap();
    let clock = ManualClock::new("2026-05-04T09:00:00Z".parse().unwrap());
    let midnight = jiff::civil::Time::midnight();
    let cmp = store
        .create_campaign(NewCampaign {
            workspace_id: ws.clone(),
            name: "long calls".into(),
            provider: ProviderKind::Sim,
            assistant_id: "asst".into(),
            phone_number_id: "pn".into(),
            mode: Mode::Continuous,
            max_concurrent: 1,
            max_attempts: 1,
            retry: RetryPolicy::uniform(0, SignedDuration::from_secs(60)),
            default_region: "US".into(),
            schedule: dialtone_core::schedule::Schedule::always("UTC"),
            calling_hours: dialtone_core::schedule::LocalHours::new(midnight, midnight),
            recurrence: dialtone_core::frequency::Recurrence::new(dialtone_core::frequency::Frequency::Once),
            max_call_duration_secs: campaign_max,
            assume_campaign_timezone_for_ambiguous: false,
        }, clock.now())
        .await
        .unwrap();
    let contacts: Vec<NewContact> = ["+14155552671", "+14155552672"]
        .iter()
        .enumerate()
        .map(|(i, p)| NewContact { phone: PhoneNumber::parse(p, "US").unwrap(), extension: None, name: None, variables: Default::default(), timezone: None, line: i as u64 + 1 })
        .collect();
    store.insert_contacts(&ws, &cmp.id, &contacts, clock.now()).await.unwrap();
    store.transition_campaign(&ws, &cmp.id, &[CampaignStatus::Draft], CampaignStatus::Starting, clock.now()).await.unwrap();

    let provider = Arc::new(Endless::default());
    let mut providers = Providers::new();
    providers.insert(ProviderKind::Sim, Arc::new(Account::new(provider.clone())));
    // The loops' own timers never fire within a test: the test drives the reaper, and the
    // dispatcher runs when woken (at start, and when a call ends and frees a slot).
    let hour = Duration::from_secs(3600);
    let config = EngineConfig { tick: hour, reaper_interval: hour, stuck_timeout: Duration::from_secs(600), ..EngineConfig::default() };
    assert_eq!(config.max_call_duration, hour, "the default maximum call duration is one hour");
    let engine = Engine::new(store.clone(), providers, Arc::new(clock.clone()), config);
    let cancel = CancellationToken::new();
    let running = tokio::spawn(engine.clone().run(cancel.clone()));
    World { store, ws, campaign: cmp.id, clock, provider, engine, cancel, running, _dir: dir }
}

impl World {
    async fn calls(&self) -> Vec<Call> {
        let filter = CallFilter { campaign_id: Some(self.campaign.clone()), ..Default::default() };
        let mut calls = self.store.list_calls(&self.ws, &filter, &Page::default()).await.unwrap();
        calls.sort_by_key(|c| c.created_at);
        calls
    }

    /// Waits (in real time, for the spawned placement) until `n` calls are at the provider.
    async fn dialled(&self, n: usize) -> Vec<Call> {
        for _ in 0..500 {
            let calls = self.calls().await;
            if calls.iter().filter(|c| c.provider_call_id.is_some()).count() >= n {
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{n} calls were not dialled within 5 s: {:?}", self.calls().await);
    }

    /// Moves the clock to `secs` after the start and runs one reaper pass.
    async fn reap_at(&self, start: Timestamp, secs: i64) {
        self.clock.set(start + SignedDuration::from_secs(secs));
        self.engine.reap_once().await.unwrap();
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.running.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_the_provider_keeps_vouching_for_ends_as_timeout_after_an_hour_and_frees_the_cap() {
    let w = world(None).await;
    let start = w.clock.now();
    let first = w.dialled(1).await.remove(0);
    let pid = first.provider_call_id.clone().unwrap();

    // Quiet for ten minutes at a time, and each time the provider says it is still live:
    // the call keeps its slot and the second contact waits.
    for secs in [601, 1202, 1803, 2404, 3005, 3599] {
        w.reap_at(start, secs).await;
        assert_eq!(w.engine.dispatch_once().await.unwrap(), 0, "the cap of 1 is held at +{secs} s");
        let calls = w.calls().await;
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert!(calls[0].status.is_active(), "still live at +{secs} s: {:?}", calls[0]);
    }
    assert!(w.provider.lookups.load(Ordering::SeqCst) >= 5, "the reaper asked the provider, which vouched for the call");
    assert!(w.provider.hung_up.lock().unwrap().is_empty());

    // One hour after the provider accepted it: hung up, `timeout`, and the slot goes to the
    // second contact.
    w.reap_at(start, 3600).await;
    assert_eq!(*w.provider.hung_up.lock().unwrap(), vec![pid.clone()], "the provider was asked to hang up");
    let calls = w.dialled(2).await;
    let ended = calls.iter().find(|c| c.id == first.id).unwrap();
    assert_eq!((ended.status, ended.outcome), (CallStatus::Ended, Some(Outcome::Timeout)), "{ended:?}");
    let reason = ended.ended_reason.as_deref().unwrap_or_default();
    assert!(reason.contains("maximum duration of 3600 s"), "{reason}");
    assert!(calls.iter().any(|c| c.id != first.id && c.status.is_active()), "the freed slot was used: {calls:?}");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaigns_own_maximum_duration_overrides_the_default() {
    let w = world(Some(120)).await;
    let start = w.clock.now();
    let first = w.dialled(1).await.remove(0);
    w.reap_at(start, 119).await;
    assert!(w.calls().await[0].status.is_active(), "live one second before its two minutes");
    w.reap_at(start, 120).await;
    let calls = w.dialled(2).await;
    let ended = calls.iter().find(|c| c.id == first.id).unwrap();
    assert_eq!(ended.outcome, Some(Outcome::Timeout), "{ended:?}");
    assert!(ended.ended_reason.as_deref().unwrap_or_default().contains("maximum duration of 120 s"), "{ended:?}");
    assert_eq!(w.provider.hung_up.lock().unwrap().len(), 1);
    // A call that ended already is not ended (nor hung up) twice.
    w.reap_at(start, 7200).await;
    assert_eq!(w.provider.hung_up.lock().unwrap().len(), 2, "only the second call, which is past its two minutes too");
    w.stop().await;
}
