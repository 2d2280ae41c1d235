//! The order that keeps one attempt from being dialled twice (`dialtone_core::attempt`):
//! the placer commits `placing_at` (the store's `mark_placing` fence) before the provider
//! hears of the call. A provider that looks the call up in the store at the moment it is
//! asked to place it sees every call already `placing`; were the fence moved after the
//! request, or skipped, it would see a claim a crash could not tell from an unsent one.

use async_trait::async_trait;
use dialtone_core::{AttemptState, CallId, CampaignStatus, ManualClock, Mode, PhoneNumber, ProviderKind, RetryPolicy, WorkspaceId};
use dialtone_engine::{Account, Engine, EngineConfig, Providers};
use dialtone_providers::{ParsedWebhook, PlaceCall, Placed, Provider, ProviderError, RemoteCall, WebhookError, WebhookRequest};
use dialtone_store::{Call, CallFilter, NewCampaign, NewContact, Page, Store};
use jiff::{SignedDuration, Timestamp};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Accepts every call, recording the call as the store holds it when the request arrives.
#[derive(Default)]
struct Witness {
    store: OnceLock<(Arc<dyn Store>, WorkspaceId)>,
    seen: Mutex<Vec<Call>>,
}

#[async_trait]
impl Provider for Witness {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Sim
    }
    async fn place_call(&self, call: &PlaceCall) -> Result<Placed, ProviderError> {
        let (store, ws) = self.store.get().expect("the store is set before the engine runs");
        let stored = store.get_call(ws, &call.call_id).await.unwrap().expect("the call row exists before it is sent");
        self.seen.lock().unwrap().push(stored);
        Ok(Placed { provider_call_id: format!("p-{}", call.call_id) })
    }
    async fn get_call(&self, _: &str) -> Result<RemoteCall, ProviderError> {
        unreachable!("no call goes quiet here")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_is_marked_placing_before_the_provider_is_asked_to_place_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = dialtone_store::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
    let ws = store.default_workspace().await.unwrap();
    let start: Timestamp = "2026-05-04T12:00:00Z".parse().unwrap();
    let witness = Arc::new(Witness::default());
    assert!(witness.store.set((store.clone(), ws.clone())).is_ok());
    let mut providers = Providers::new();
    providers.insert(ProviderKind::Sim, Arc::new(Account::new(witness.clone())));
    let engine = Engine::new(store.clone(), providers, Arc::new(ManualClock::new(start)), EngineConfig::default());

    let midnight = jiff::civil::Time::midnight();
    let cmp = store
        .create_campaign(
            NewCampaign {
                workspace_id: ws.clone(),
                name: "send order".into(),
                provider: ProviderKind::Sim,
                assistant_id: "asst".into(),
                phone_number_id: "pn".into(),
                mode: Mode::Continuous,
                max_concurrent: 3,
                max_attempts: 1,
                retry: RetryPolicy::uniform(1, SignedDuration::from_secs(60)),
                default_region: "US".into(),
                schedule: dialtone_core::schedule::Schedule::always("UTC"),
                calling_hours: dialtone_core::schedule::LocalHours::new(midnight, midnight),
                recurrence: dialtone_core::frequency::Recurrence::new(dialtone_core::frequency::Frequency::Once),
                max_call_duration_secs: None,
                assume_campaign_timezone_for_ambiguous: false,
            },
            start,
        )
        .await
        .unwrap();
    let contacts: Vec<NewContact> = (0..3)
        .map(|i| NewContact {
            extension: None,
            phone: PhoneNumber::parse(&format!("+1415555{:04}", 2700 + i), "US").unwrap(),
            name: None,
            variables: Default::default(),
            timezone: None,
            line: i + 1,
        })
        .collect();
    store.insert_contacts(&ws, &cmp.id, &contacts, start).await.unwrap();
    store.transition_campaign(&ws, &cmp.id, &[CampaignStatus::Draft], CampaignStatus::Starting, start).await.unwrap();

    assert_eq!(engine.dispatch_once().await.unwrap(), 3);
    // Wait for the three placements to be answered and recorded.
    let filter = CallFilter { campaign_id: Some(cmp.id.clone()), ..Default::default() };
    let mut dialled = 0;
    for _ in 0..500 {
        let calls = store.list_calls(&ws, &filter, &Page::default()).await.unwrap();
        dialled = calls.iter().filter(|c| c.provider_call_id.is_some()).count();
        if dialled == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(dialled, 3, "every claim was placed and accepted");

    let seen = witness.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "one request per attempt");
    for call in &seen {
        let state = AttemptState::of(call.status, call.placing_at.is_some(), call.provider_call_id.is_some());
        assert_eq!(state, Some(AttemptState::Placing), "the provider was asked to place {} while it was {state:?}: {call:?}", call.id);
        assert_eq!(call.placing_at, Some(start), "placing_at was committed, at the engine's clock, before the request");
    }
}
