//! A crash of the only node: the ends of the calls that were live while nobody listened for
//! webhooks went to a dead server. One lease after start, the node looks each of them up at
//! its provider (`Engine::catch_up`) instead of waiting `stuck_timeout` for them to be
//! quiet; a provider that cannot answer ends nothing; with another node live (its webhooks
//! were received) nothing is looked up. Time is the injected ManualClock.

use crate::support::{campaign, fresh_store, numbers, sim_account, started};
use dialtone_core::{CallStatus, CampaignId, Clock, ManualClock, Outcome, RetryPolicy};
use dialtone_engine::testing::ScriptedProvider;
use dialtone_engine::{Engine, EngineConfig};
use dialtone_store::{Call, CallFilter, NewCampaign, Page, Store};
use jiff::SignedDuration;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

struct Node {
    engine: Arc<Engine>,
    cancel: CancellationToken,
    running: tokio::task::JoinHandle<()>,
}

impl Node {
    /// An engine whose loops' timers never fire within a test, with lease `lease` (real
    /// time: how long after start it catches up).
    fn start(store: &Arc<dyn Store>, provider: &Arc<ScriptedProvider>, clock: &ManualClock, lease: Duration) -> Node {
        let hour = Duration::from_secs(3600);
        let config = EngineConfig { tick: hour, reaper_interval: hour, stuck_timeout: Duration::from_secs(600), lease, ..EngineConfig::default() };
        let engine = Engine::new(store.clone(), sim_account(provider), Arc::new(clock.clone()), config);
        let cancel = CancellationToken::new();
        let running = tokio::spawn(engine.clone().run(cancel.clone()));
        Node { engine, cancel, running }
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.running.await.unwrap();
    }
}

async fn calls(store: &Arc<dyn Store>, ws: &dialtone_core::WorkspaceId, campaign: &CampaignId) -> Vec<Call> {
    let filter = CallFilter { campaign_id: Some(campaign.clone()), ..Default::default() };
    let mut calls = store.list_calls(ws, &filter, &Page::default()).await.unwrap();
    calls.sort_by_key(|c| c.created_at);
    calls
}

/// Waits (in real time) until `done` holds of the campaign's calls.
async fn until(store: &Arc<dyn Store>, ws: &dialtone_core::WorkspaceId, campaign: &CampaignId, what: &str, done: impl Fn(&[Call]) -> bool) -> Vec<Call> {
    for _ in 0..500 {
        let now = calls(store, ws, campaign).await;
        if done(&now) {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within 5 s: {what}: {:?}", calls(store, ws, campaign).await);
}

/// A cap-1 campaign with two contacts whose first call is live at the provider when its only
/// node stops; the clock then moves past that node's lease.
async fn crashed_with_a_live_call() -> (Arc<dyn Store>, dialtone_core::WorkspaceId, CampaignId, ManualClock, Arc<ScriptedProvider>, tempfile::TempDir) {
    let (store, ws, dir) = fresh_store().await;
    let clock = ManualClock::new("2026-05-04T09:00:00Z".parse().unwrap());
    let new = NewCampaign { retry: RetryPolicy::uniform(0, SignedDuration::from_secs(60)), ..campaign(&ws, "crash") };
    let cmp = started(&store, new, &numbers(2), clock.now()).await;
    let provider = Arc::new(ScriptedProvider::new());
    let first = Node::start(&store, &provider, &clock, Duration::from_secs(3600));
    until(&store, &ws, &cmp, "the first call dialled", |c| c.iter().any(|c| c.provider_call_id.is_some())).await;
    first.stop().await;
    clock.set(clock.now() + SignedDuration::from_secs(20));
    (store, ws, cmp, clock, provider, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_live_while_no_node_listened_are_looked_up_one_lease_after_start() {
    let (store, ws, cmp, clock, provider, _dir) = crashed_with_a_live_call().await;
    let lookups = provider.status_lookups();

    // The provider is rate-limiting at first: the call is left as it is, not ended `timeout`.
    provider.set_status_answer(Some(false));
    let node = Node::start(&store, &provider, &clock, Duration::from_millis(100));
    for _ in 0..500 {
        if provider.status_lookups() > lookups {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(provider.status_lookups(), lookups + 1, "looked up once, one lease after start, not after 600 s of quiet");
    let now = calls(&store, &ws, &cmp).await;
    assert_eq!(now.len(), 1);
    assert!(now[0].status.is_active(), "a lookup that failed ends nothing: {:?}", now[0]);

    // The provider says it ended while nobody listened: it ends as the provider says, and its
    // slot goes to the second contact.
    provider.set_status_answer(Some(true));
    assert_eq!(node.engine.catch_up().await.unwrap(), 1);
    let after = until(&store, &ws, &cmp, "the second call dialled", |c| c.len() == 2 && c[1].provider_call_id.is_some()).await;
    assert_eq!((after[0].status, after[0].outcome), (CallStatus::Ended, Some(Outcome::Completed)), "{:?}", after[0]);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_another_node_live_nothing_is_looked_up_at_start() {
    let (store, ws, cmp, clock, provider, _dir) = crashed_with_a_live_call().await;
    provider.set_status_answer(Some(true));
    store.heartbeat("node_other", clock.now()).await.unwrap();
    let lookups = provider.status_lookups();
    // A lease of an hour: the test calls the catch-up itself.
    let node = Node::start(&store, &provider, &clock, Duration::from_secs(3600));
    assert_eq!(node.engine.catch_up().await.unwrap(), 0, "another node was listening");
    assert_eq!(provider.status_lookups(), lookups, "nothing looked up");
    assert!(calls(&store, &ws, &cmp).await[0].status.is_active());
    node.stop().await;
}
