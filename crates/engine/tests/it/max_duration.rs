//! A call the provider keeps vouching for is ended at its maximum duration: the reaper asks
//! the provider to hang it up, records the outcome `timeout`, and the slot it held is
//! freed, so a campaign at its cap goes on. Time is the injected ManualClock.

use crate::support::{campaign, fresh_store, numbers, sim_account, started};
use dialtone_core::{CallStatus, CampaignId, Clock, ManualClock, Outcome, RetryPolicy};
use dialtone_engine::testing::ScriptedProvider;
use dialtone_engine::{Engine, EngineConfig};
use dialtone_store::{Call, CallFilter, NewCampaign, Page, Store};
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

struct World {
    store: Arc<dyn Store>,
    ws: dialtone_core::WorkspaceId,
    campaign: CampaignId,
    clock: ManualClock,
    provider: Arc<ScriptedProvider>,
    engine: Arc<Engine>,
    cancel: CancellationToken,
    running: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

/// A running engine and a started cap-1 campaign with two contacts, its own maximum call
/// duration `campaign_max` (None: the engine's default of one hour).
async fn world(campaign_max: Option<u32>) -> World {
    let (store, ws, dir) = fresh_store().await;
    let clock = ManualClock::new("2026-05-04T09:00:00Z".parse().unwrap());
    let new =
        NewCampaign { retry: RetryPolicy::uniform(0, SignedDuration::from_secs(60)), max_call_duration_secs: campaign_max, ..campaign(&ws, "long calls") };
    let campaign = started(&store, new, &numbers(2), clock.now()).await;

    // Accepts every call, and says each one is still in progress whenever asked.
    let provider = Arc::new(ScriptedProvider::new());
    // The loops' own timers never fire within a test: the test drives the reaper, and the
    // dispatcher runs when woken (at start, and when a call ends and frees a slot).
    let hour = Duration::from_secs(3600);
    let config = EngineConfig { tick: hour, reaper_interval: hour, stuck_timeout: Duration::from_secs(600), ..EngineConfig::default() };
    assert_eq!(config.max_call_duration, hour, "the default maximum call duration is one hour");
    let engine = Engine::new(store.clone(), sim_account(&provider), Arc::new(clock.clone()), config);
    let cancel = CancellationToken::new();
    let running = tokio::spawn(engine.clone().run(cancel.clone()));
    World { store, ws, campaign, clock, provider, engine, cancel, running, _dir: dir }
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
    assert!(w.provider.status_lookups() >= 5, "the reaper asked the provider, which vouched for the call");
    assert!(w.provider.hung_up().is_empty());

    // One hour after the provider accepted it: hung up, `timeout`, and the slot goes to the
    // second contact.
    w.reap_at(start, 3600).await;
    assert_eq!(w.provider.hung_up(), vec![pid.clone()], "the provider was asked to hang up");
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
    assert_eq!(w.provider.hung_up().len(), 1);
    // A call that ended already is not ended (nor hung up) twice.
    w.reap_at(start, 7200).await;
    assert_eq!(w.provider.hung_up().len(), 2, "only the second call, which is past its two minutes too");
    w.stop().await;
}
