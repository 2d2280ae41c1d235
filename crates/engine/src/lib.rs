//! dialtone-engine: the loops that move calls.
//!
//! - dispatcher: woken by notifications and a tick, claims due contacts per campaign
//!   (cap checked in the claiming transaction) and hands each claim to the placer;
//! - placer: sends one claimed call to its provider with retries and backoff;
//! - ingest: one writer task that group-commits webhook events and answers only after
//!   the commit;
//! - reaper: reconciles calls that went quiet, and claims a crash left unsent.

mod account;
pub mod accounts;
pub mod alerts;
mod dispatcher;
mod group;
mod ingest;
pub mod metrics;
pub mod outbox;
mod placer;
mod reaper;
#[cfg(feature = "testing")]
pub mod testing;

use dialtone_core::{Clock, ProviderKind};
use dialtone_providers::Provider;
use dialtone_store::Store;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use account::Account;
pub use accounts::{AccountFactory, AccountKey, Accounts};
pub use ingest::IngestError;
pub use metrics::Metrics;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The dispatcher's backstop tick; notifications wake it sooner.
    pub tick: Duration,
    /// An active call with no event for this long is reconciled with the provider.
    pub stuck_timeout: Duration,
    /// How often the reaper looks for quiet calls (and calls past their maximum duration).
    pub reaper_interval: Duration,
    /// A call still live this long after the provider accepted it is hung up and ends as
    /// `timeout`, unless its campaign sets its own `max_call_duration_secs`. The reaper
    /// enforces it, so a call may run up to one `reaper_interval` longer.
    pub max_call_duration: Duration,
    /// Delays between placement tries on retryable errors; its length is the number of retries.
    pub placement_backoff: Vec<Duration>,
    /// Most events committed in one ingest transaction.
    pub ingest_batch: usize,
    /// How long an account's placement pauses when the provider says it is at capacity.
    pub capacity_cooldown: Duration,
    /// How often this node records that it is alive (its lease in the shared database).
    pub heartbeat_interval: Duration,
    /// A node whose last heartbeat is older than this is taken for dead: its unsent calls
    /// are taken over by another node. Three heartbeats, so one slow write is not a death.
    pub lease: Duration,
    /// How long events for calls dialtone never placed (no call matches them: a Vapi
    /// org-wide Server URL sends the events of every call on the account) are kept before
    /// the reaper purges them. Default 7 days.
    pub unknown_event_retention: Duration,
    /// Failure-rate alerts (see `alerts`): a campaign's or provider account's share of
    /// failed calls over the last hour above this raises one (0..=1; default 0.2) …
    pub alert_threshold: f64,
    /// … when at least this many calls ended in that hour (default 20).
    pub alert_min_calls: u64,
    /// How often the alerts are evaluated (default 30 s).
    pub alert_interval: Duration,
    /// How often the webhook delivery worker looks for due deliveries (default 1 s).
    pub webhook_interval: Duration,
    /// Timeout of one webhook try (default 10 s, as issue 13 asks).
    pub webhook_timeout: Duration,
    /// Most webhook tries in flight at once on this node (default 64), at most
    /// `outbox::PER_ENDPOINT` (16) of them to one endpoint.
    pub webhook_concurrency: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(1),
            stuck_timeout: Duration::from_secs(600),
            reaper_interval: Duration::from_secs(30),
            max_call_duration: Duration::from_secs(3600),
            placement_backoff: vec![Duration::from_secs(1), Duration::from_secs(4), Duration::from_secs(10)],
            ingest_batch: 512,
            capacity_cooldown: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(5),
            lease: Duration::from_secs(15),
            unknown_event_retention: Duration::from_secs(7 * 24 * 3600),
            alert_threshold: 0.2,
            alert_min_calls: 20,
            alert_interval: Duration::from_secs(30),
            webhook_interval: Duration::from_secs(1),
            webhook_timeout: Duration::from_secs(10),
            webhook_concurrency: 64,
        }
    }
}

pub type Providers = HashMap<ProviderKind, Arc<Account>>;

/// Told of each agent call the engine is about to send to its provider (after the
/// `mark_placing` fence, before the request): the server warms the agent's greeting then,
/// so it is synthesised while the phone rings. Called on the placer's task: it must return
/// at once (spawn any work) and must not fail the placement.
pub trait PlacementObserver: Send + Sync + 'static {
    /// `call` is being placed for `agent` (the call's campaign's agent).
    fn placing_agent_call(&self, call: &dialtone_core::CallId, agent: &dialtone_core::AgentId);
}

pub struct Engine {
    store: Arc<dyn Store>,
    /// This process's id in the shared database (`node_<ulid>`, new at every start): it
    /// owns the calls it claims, and heartbeats its lease under this id.
    node: dialtone_core::NodeId,
    /// The config's provider accounts and the workspaces' own, built as used.
    accounts: Accounts,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    wake: Notify,
    publish_pending: Arc<std::sync::atomic::AtomicBool>,
    ingest_tx: mpsc::Sender<ingest::Job>,
    ingest_rx: tokio::sync::Mutex<Option<mpsc::Receiver<ingest::Job>>>,
    tasks: TaskTracker,
    /// Calls this process is placing right now: the reaper leaves them to the placer.
    placing: std::sync::Mutex<std::collections::HashSet<dialtone_core::CallId>>,
    /// Held shared by a claim until its calls are in `placing`, and exclusively while the
    /// reaper lists orphans: a call of ours it finds is either in `placing` or truly left
    /// behind, never one just claimed and not yet registered.
    claim_gate: tokio::sync::RwLock<()>,
    /// Which provider account each campaign dials through, learned from its claims.
    campaign_providers: std::sync::Mutex<HashMap<dialtone_core::CampaignId, AccountKey>>,
    /// Placing marks waiting to be committed together (one writer: see `group`).
    placing_marks: group::Group<dialtone_core::CallId, bool>,
    /// The delivery worker's records of its tries, grouped like the placing marks.
    delivery_finishes: group::Group<dialtone_store::FinishedTry, bool>,
    /// Nanoseconds the ingest's writer has spent committing since start: the delivery worker
    /// reads how busy the ingest is from it, and gives way (see `outbox::run`).
    ingest_busy_ns: std::sync::atomic::AtomicU64,
    /// The default (operator's) workspace, read once ([`Engine::default_workspace`]).
    operator: tokio::sync::OnceCell<dialtone_core::WorkspaceId>,
    /// Dialed marks (call, provider call id) waiting to be committed together.
    dialed_marks: group::Group<(dialtone_core::CallId, String), bool>,
    pub metrics: Metrics,
    /// The failure-rate alerts raised now (see `alerts`).
    pub alerts: alerts::Alerts,
    /// Told of each agent call placed ([`Engine::observe_placements`]); set once.
    observer: std::sync::OnceLock<Arc<dyn PlacementObserver>>,
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, providers: Providers, clock: Arc<dyn Clock>, config: EngineConfig) -> Arc<Self> {
        let (ingest_tx, ingest_rx) = mpsc::channel(4096);
        let node = dialtone_core::NodeId::new();
        Arc::new(Self {
            store,
            node,
            accounts: Accounts::new(providers),
            clock,
            config,
            wake: Notify::new(),
            publish_pending: Default::default(),
            ingest_tx,
            ingest_rx: tokio::sync::Mutex::new(Some(ingest_rx)),
            tasks: TaskTracker::new(),
            placing: Default::default(),
            claim_gate: Default::default(),
            campaign_providers: Default::default(),
            placing_marks: Default::default(),
            delivery_finishes: Default::default(),
            ingest_busy_ns: Default::default(),
            operator: Default::default(),
            dialed_marks: Default::default(),
            metrics: Metrics::default(),
            alerts: Default::default(),
            observer: std::sync::OnceLock::new(),
        })
    }

    /// Sets the observer told of each agent call placed from now on. Only the first one set
    /// is kept; returns whether `observer` was.
    pub fn observe_placements(&self, observer: Arc<dyn PlacementObserver>) -> bool {
        self.observer.set(observer).is_ok()
    }

    /// Waits until every placement spawned so far has finished: its provider request sent
    /// (with its retries) and its result stored. Tests and benchmarks call it rather than
    /// sleep; the engine keeps running. Not meant to race [`Engine::run`]'s shutdown.
    pub async fn settle(&self) {
        if self.tasks.is_closed() {
            self.tasks.wait().await;
            return;
        }
        self.tasks.close();
        self.tasks.wait().await;
        self.tasks.reopen();
    }

    /// The default (operator's) workspace: read from the store once (its id never changes;
    /// `Store::default_workspace` is a write), then from memory.
    pub async fn default_workspace(&self) -> Result<&dialtone_core::WorkspaceId, dialtone_store::StoreError> {
        self.operator.get_or_try_init(|| self.store.default_workspace()).await
    }

    /// This process's node id in the shared database.
    pub fn node(&self) -> &dialtone_core::NodeId {
        &self.node
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The config file's client for `kind`.
    pub fn provider(&self, kind: ProviderKind) -> Option<&Arc<dyn Provider>> {
        self.accounts.config(kind).map(|a| &a.provider)
    }

    /// The config file's account of `kind`.
    pub fn account(&self, kind: ProviderKind) -> Option<&Arc<Account>> {
        self.accounts.config(kind)
    }

    /// The config's and the workspaces' provider accounts (see [`Accounts`]).
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// The account `key` of workspace `ws` (see [`Accounts::get`]).
    pub async fn account_for(&self, ws: &dialtone_core::WorkspaceId, key: &AccountKey) -> Option<Arc<Account>> {
        self.accounts.get(&self.store, ws, key, self.clock.now()).await
    }

    /// The client of the account `call` was placed on (also when that workspace account
    /// has been disabled since: a call under way is still hung up through it); `None` if
    /// that account is gone or cannot be used (logged).
    pub async fn provider_for_call(&self, call: &dialtone_store::Call) -> Option<Arc<dyn Provider>> {
        self.provider_of(&AccountKey::of_call(call)).await
    }

    /// [`Engine::provider_for_call`] when only the call's id is known (a media stream);
    /// `None` also if there is no such call.
    pub async fn provider_for_call_id(&self, call: &dialtone_core::CallId) -> Option<Arc<dyn Provider>> {
        match self.store.call_account(call).await {
            Ok(Some((provider, id))) => self.provider_of(&AccountKey { provider, id }).await,
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(call_id = %call, error = %e, "could not read the call's provider account");
                None
            }
        }
    }

    /// The client of account `key` for calls already placed on it.
    async fn provider_of(&self, key: &AccountKey) -> Option<Arc<dyn Provider>> {
        let Some(id) = &key.id else { return self.provider(key.provider).cloned() };
        match self.accounts.for_live_calls(&self.store, key.provider, id, self.clock.now()).await {
            Ok(account) => account.map(|a| a.provider.clone()),
            Err(e) => {
                tracing::warn!(account_id = %id, error = %e, "the call's provider account cannot be used");
                None
            }
        }
    }

    /// Why a campaign on account `key` is not dialling right now, if its account holds it
    /// back (or there is none to use), as far as this node knows without reading the
    /// store (a workspace account not used lately: `None`).
    pub fn account_waiting(&self, key: &AccountKey) -> Option<String> {
        let now = self.clock.now();
        match self.accounts.cached(key, now) {
            Some(None) if key.id.is_some() => Some(format!("its {} provider account is disabled, gone or unusable", key.provider)),
            Some(None) => Some(format!("no {} provider is configured", key.provider)),
            Some(Some(a)) => a.waiting(now),
            None => None,
        }
    }

    /// What holds new calls on account `key` now, if anything: `(true, until)` while its
    /// circuit breaker is open, `(false, until)` while the provider's account is at capacity
    /// (cooling down). `None` also when there is no such account (or this node has not
    /// used the workspace account lately).
    pub fn account_hold(&self, key: &AccountKey) -> Option<(bool, jiff::Timestamp)> {
        self.accounts.cached(key, self.clock.now()).flatten().and_then(|a| a.hold(self.clock.now()))
    }

    /// Breaker states of the config accounts for the metrics gauge: 0 closed, 1 open, 2 half-open.
    pub fn breaker_states(&self) -> Vec<(ProviderKind, i64)> {
        let now = self.clock.now();
        self.accounts.config_accounts().map(|(k, a)| (*k, a.breaker.metrics_value(now))).collect()
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Asks the dispatcher to look now (a campaign started, contacts were added, a call ended).
    /// Wakes this node's dispatcher and, through the database (PostgreSQL `NOTIFY`), every
    /// other node's: a campaign started, contacts arrived, or a call ended and freed a slot.
    /// Publishing is coalesced: a burst of ends costs one notification.
    pub fn wake_everywhere(&self) {
        self.wake();
        if !self.publish_pending.swap(true, std::sync::atomic::Ordering::AcqRel) {
            let (store, pending) = (self.store.clone(), self.publish_pending.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                pending.store(false, std::sync::atomic::Ordering::Release);
                if let Err(e) = store.publish_wake().await {
                    tracing::debug!(error = %e, "could not notify other nodes; their tick will find the work");
                }
            });
        }
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The placing mark (`Store::mark_placing`, the fence before a provider request), owned by
    /// this node. With one writer, marks that arrive while another commits are committed
    /// together; either way it returns once this call's mark is committed.
    pub(crate) async fn mark_placing(&self, call: &dialtone_core::CallId) -> Result<bool, dialtone_store::StoreError> {
        let (store, node, clock) = (&self.store, self.node.as_str(), &self.clock);
        if store.concurrent_writers() > 1 {
            return store.mark_placing(call, node, clock.now()).await;
        }
        let many = |calls: Vec<dialtone_core::CallId>| async move { store.mark_placing_many(&calls, node, clock.now()).await };
        let one = |call: dialtone_core::CallId| async move { store.mark_placing(&call, node, clock.now()).await };
        self.placing_marks.write(call.clone(), many, one).await
    }

    /// The dialed mark (`Store::mark_dialed`), grouped like [`Engine::mark_placing`] on every
    /// backend: whether this call started its campaign. On PostgreSQL too, a group is one
    /// commit and one orphan lookup where each call had its own (measured in BENCHMARKS.md,
    /// "PostgreSQL's dialed marks grouped"); the mark comes after the provider's answer, so
    /// the wait for the group delays no request.
    pub(crate) async fn mark_dialed(&self, call: &dialtone_core::CallId, provider_call_id: &str) -> Result<bool, dialtone_store::StoreError> {
        let (store, clock) = (&self.store, &self.clock);
        let many = |calls: Vec<(dialtone_core::CallId, String)>| async move { store.mark_dialed_many(&calls, clock.now()).await };
        let one = |(call, pid): (dialtone_core::CallId, String)| async move { store.mark_dialed(&call, &pid, clock.now()).await };
        self.dialed_marks.write((call.clone(), provider_call_id.to_string()), many, one).await
    }

    /// Ends `call` with `outcome` (the engine's own decision, stored like an event), counts
    /// it, and wakes the dispatcher for the slot it frees. Nothing if it had ended already.
    pub(crate) async fn end_call(&self, call: &dialtone_core::CallId, outcome: dialtone_core::Outcome, reason: &str) -> Result<(), EngineError> {
        if let Some(applied) = self.store.end_call(call, outcome, reason, self.clock.now()).await? {
            self.metrics.record_applied(std::slice::from_ref(&applied));
            self.wake();
        }
        Ok(())
    }

    /// Recovers what a crash left behind, then runs every loop until `cancel` fires.
    /// Placements already under way are finished before it returns.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        // The writer first: recovery applies what the provider tells it through ingest.
        let rx = self.ingest_rx.lock().await.take().expect("Engine::run called twice");
        // One group-committing writer on every backend: its batch grows with the load, and
        // on PostgreSQL a second writer mostly split the batches (measured: ~4.5k events/s
        // with one, ~3.1k with two; BENCHMARKS.md).
        let writer = tokio::spawn(ingest::writer(self.clone(), rx));
        // The lease first, so no other node takes what this one is about to claim. It is
        // kept up until placements under way have finished, after the other loops stop.
        tracing::info!(node = %self.node, "engine node starting");
        if let Err(e) = self.store.heartbeat(self.node.as_str(), self.clock.now()).await {
            tracing::error!(error = %e, "first heartbeat failed; retrying every {:?}", self.config.heartbeat_interval);
        }
        let heartbeat_stop = CancellationToken::new();
        let heartbeat = tokio::spawn(heartbeat(self.clone(), heartbeat_stop.clone()));
        if let Err(e) = self.recover().await {
            tracing::error!(error = %e, "crash recovery failed; the reaper will retry it");
        }
        // Other nodes' wakes (PostgreSQL LISTEN); none on SQLite, where there is one node.
        let listener = match self.store.subscribe_wakes().await {
            Ok(Some(mut wakes)) => {
                let engine = self.clone();
                Some(tokio::spawn(async move {
                    while wakes.recv().await.is_some() {
                        engine.wake();
                    }
                }))
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for other nodes' wakes; relying on the tick");
                None
            }
        };
        let dispatcher = tokio::spawn(dispatcher::run(self.clone(), cancel.clone()));
        let reaper = tokio::spawn(reaper::run(self.clone(), cancel.clone()));
        let catch_up = tokio::spawn(reaper::catch_up_after_lease(self.clone(), cancel.clone()));
        let alerts = tokio::spawn(alerts::run(self.clone(), cancel.clone()));
        let webhooks = tokio::spawn(outbox::run(self.clone(), cancel.clone()));
        let planner = tokio::spawn(planner_stats(self.clone(), cancel.clone()));
        cancel.cancelled().await;
        let _ = webhooks.await;
        let _ = planner.await;
        let _ = dispatcher.await;
        let _ = reaper.await;
        let _ = catch_up.await;
        let _ = alerts.await;
        self.tasks.close();
        self.tasks.wait().await;
        heartbeat_stop.cancel();
        let _ = heartbeat.await;
        if let Some(l) = listener {
            l.abort();
        }
        writer.abort();
    }
}

/// How often [`planner_stats`] looks for tables that outgrew their statistics.
const PLANNER_STATS_INTERVAL: Duration = Duration::from_secs(1);

/// Keeps the database's planner statistics up with a burst (`Store::analyze_grown`: a
/// table that about doubled since its last `ANALYZE` is analysed) every
/// [`PLANNER_STATS_INTERVAL`] until `cancel`. Without it, on PostgreSQL the plans made
/// while `calls` was nearly empty scanned every call for each ingest batch until
/// autovacuum came by, and SQLite, which never analyses on its own, counted a campaign's
/// live calls by reading all of its calls (BENCHMARKS.md, "PostgreSQL's own CPU"). A
/// failure is logged and retried on the next tick.
async fn planner_stats(engine: Arc<Engine>, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(PLANNER_STATS_INTERVAL) => {}
        }
        match engine.store.analyze_grown().await {
            Ok(tables) if !tables.is_empty() => tracing::debug!(?tables, "analysed tables that outgrew their planner statistics"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not analyse grown tables; retrying next tick"),
        }
    }
}

/// A clock this far from the database's is warned about: nodes judge each other's leases
/// (15 s, heartbeats every 5 s) by their own clocks.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(2);

/// Renews this node's lease every `heartbeat_interval` until `stop`. A failed heartbeat is
/// logged and retried on the next beat: the lease outlasts a few of them.
async fn heartbeat(engine: Arc<Engine>, stop: CancellationToken) {
    let mut warned: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(engine.config.heartbeat_interval) => {}
        }
        let now = engine.clock.now();
        match engine.store.heartbeat(engine.node.as_str(), now).await {
            Ok(Some(server)) => {
                let skew = now.duration_since(server).as_secs_f64();
                engine.metrics.clock_skew(skew);
                // Once a minute at most: loud enough to be fixed, not a flood.
                if skew.abs() > MAX_CLOCK_SKEW.as_secs_f64() && warned.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    warned = Some(std::time::Instant::now());
                    tracing::warn!(skew_secs = skew, node = %engine.node,
                        "this node's clock is off the database's: another node could take it for dead early, or late; keep the nodes' clocks in sync (NTP)");
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, node = %engine.node, "heartbeat failed; other nodes take over this node's unsent calls if it stays down for the lease");
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] dialtone_store::StoreError),
    #[error("no provider configured for {0}")]
    NoProvider(ProviderKind),
}
