//! dialtone-store: the [`Store`] trait the engine and the API talk to, and its backends.
//! Every state change is a fenced `UPDATE … WHERE status = expected`: zero rows changed
//! means someone else won, never an error to ignore.

mod accounts;
pub mod apply;
mod attempts;
pub mod bench_fill;
mod callers;
mod calls;
mod common;
mod events;
mod model;
#[cfg(test)]
mod plans;
pub mod postgres;
pub mod rows;
pub mod secrets;
mod shared;
pub mod sql;
pub mod sqlite;

pub use model::*;
pub use shared::idempotency::{Begun, StoredResponse, STALE as IDEMPOTENCY_STALE, TTL as IDEMPOTENCY_TTL};
pub use shared::outbox::{
    Claimed, Delivery, DeliveryAttempt, FinishedTry, NewWebhookEndpoint, OutboxBody, OutboxEvent, TryResult, WebhookEndpoint, WebhookEndpointPatch,
    DISABLE_AFTER as WEBHOOK_DISABLE_AFTER, EVENT_TYPES as WEBHOOK_EVENT_TYPES, EXCERPT_BYTES as WEBHOOK_EXCERPT_BYTES, REPORT_WAIT as WEBHOOK_REPORT_WAIT,
    RETRY_SCHEDULE as WEBHOOK_RETRY_SCHEDULE, ROTATION_OVERLAP as WEBHOOK_ROTATION_OVERLAP,
};
pub use shared::provider_accounts::{NewProviderAccount, ProviderAccount, ProviderAccountPatch};
pub use shared::stats::{FailureReason, HourPoint, Latencies, Percentiles, RetryStats, Stats, StatsQuery, WindowCount, FAILURE_OUTCOMES, MAX_RANGE_HOURS};
pub use shared::steer::{waiting_for, Archived, CampaignHold, CampaignPatch, ContactFilter, ExportRow, PendingGroup, WaitingFor};
pub use shared::workspaces::{ApiKeyInfo, KeyGrant, Workspace};

use async_trait::async_trait;
use dialtone_core::{ApiKeyId, CallId, CampaignId, CampaignStatus, Outcome, ProviderEvent, WebhookEndpointId, WorkspaceId};
use jiff::Timestamp;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Made by [`StoreError::not_found`].
    #[error("{0}")]
    NotFound(NotFound),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// Provider-account secrets are stored encrypted only: without a master key there is
    /// nothing to seal them with.
    #[error("no master key is configured: set master_key in the config or DIALTONE_MASTER_KEY (32 bytes, base64: `openssl rand -base64 32`)")]
    NoMasterKey,
}

/// What a store method looked for and did not find, and where in the store it looked.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what} {id} not found (at {}:{})", at.file(), at.line())]
pub struct NotFound {
    /// The kind of thing: `call`, `campaign`, … (the API names it in its 404).
    pub what: &'static str,
    /// The id that was looked up.
    pub id: String,
    /// The store code that found nothing.
    pub at: &'static std::panic::Location<'static>,
}

impl StoreError {
    /// A not-found error for `what` with `id`, located at the caller.
    #[track_caller]
    pub fn not_found(what: &'static str, id: impl std::fmt::Display) -> Self {
        StoreError::NotFound(NotFound { what, id: id.to_string(), at: std::panic::Location::caller() })
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn migrate(&self) -> Result<()>;

    /// How many write transactions may usefully run at once (the dispatcher's claims for
    /// different campaigns): 1 for SQLite (one writer), more for a server database.
    fn concurrent_writers(&self) -> usize {
        1
    }

    // Workspaces and API keys.
    async fn default_workspace(&self) -> Result<WorkspaceId>;
    async fn create_api_key(&self, ws: &WorkspaceId, name: &str, key_hash: &str, now: Timestamp) -> Result<ApiKeyId>;
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<(ApiKeyId, WorkspaceId)>>;

    // Campaigns.
    async fn create_campaign(&self, new: NewCampaign, now: Timestamp) -> Result<Campaign>;
    async fn get_campaign(&self, ws: &WorkspaceId, id: &CampaignId) -> Result<Option<Campaign>>;
    async fn list_campaigns(&self, ws: &WorkspaceId, page: &Page) -> Result<Vec<Campaign>>;
    async fn campaign_counts(&self, id: &CampaignId) -> Result<CampaignCounts> {
        Ok(self.campaign_counts_many(std::slice::from_ref(id)).await?.remove(id).unwrap_or_default())
    }
    /// The counts of each of `ids`, read in one statement (a campaign list shows them all).
    /// A campaign with no contact and no call may be missing.
    async fn campaign_counts_many(&self, ids: &[CampaignId]) -> Result<HashMap<CampaignId, CampaignCounts>>;
    /// Moves a campaign to `to` only if its status is one of `from`. Returns whether it moved.
    async fn transition_campaign(&self, ws: &WorkspaceId, id: &CampaignId, from: &[CampaignStatus], to: CampaignStatus, now: Timestamp) -> Result<bool>;
    /// Cancels the campaign and its pending contacts; active calls finish and are recorded.
    async fn cancel_campaign(&self, ws: &WorkspaceId, id: &CampaignId, now: Timestamp) -> Result<bool>;
    /// Completes a runnable campaign that has no active call and no contact left to call.
    async fn complete_if_done(&self, id: &CampaignId, now: Timestamp) -> Result<bool>;
    /// Campaigns the dispatcher should look at now: runnable, with a contact due at `now`,
    /// or with nothing left (so they can complete); never a disabled workspace's.
    async fn runnable_campaigns(&self, now: Timestamp) -> Result<Vec<CampaignId>>;

    // Contacts.
    async fn insert_contacts(&self, ws: &WorkspaceId, campaign: &CampaignId, contacts: &[NewContact], now: Timestamp) -> Result<InsertReport>;
    async fn get_contact(&self, ws: &WorkspaceId, id: &dialtone_core::ContactId) -> Result<Option<Contact>>;
    /// A campaign's contacts, newest first (keyset pagination on the id), so that one never
    /// called can be found and asked why it waits.
    async fn list_contacts(&self, ws: &WorkspaceId, campaign: &CampaignId, page: &Page) -> Result<Vec<Contact>>;
    /// Makes a contact that is not in a call due now, whatever its retry limits said
    /// (recorded as a manual retry). False if it is in a call or its campaign is over.
    async fn retry_contact_now(&self, ws: &WorkspaceId, id: &dialtone_core::ContactId, now: Timestamp) -> Result<bool>;
    /// Cancels a pending contact's further attempts. False if it has none pending.
    async fn cancel_contact(&self, ws: &WorkspaceId, id: &dialtone_core::ContactId, now: Timestamp) -> Result<bool>;

    // Steering a campaign through the API (issue 11; `shared::steer`).
    /// A campaign's contacts matching `filter` (statuses, number digits, name), newest first.
    async fn list_contacts_filtered(&self, ws: &WorkspaceId, campaign: &CampaignId, filter: &ContactFilter, page: &Page) -> Result<Vec<Contact>>;
    /// A campaign's pending contacts in groups (claim-time hold, due or not, retried or
    /// not) with counts and earliest/latest due times: one grouped read.
    async fn pending_groups(&self, campaign: &CampaignId, now: Timestamp) -> Result<Vec<PendingGroup>>;
    /// Changes a campaign's settings (effective at its next claim). `NotFound`; `Conflict`
    /// if it is over or archived.
    async fn update_campaign(&self, ws: &WorkspaceId, id: &CampaignId, patch: &CampaignPatch, now: Timestamp) -> Result<Campaign>;
    /// Archives a campaign with no call in flight (canceling it if it was not over).
    async fn archive_campaign(&self, ws: &WorkspaceId, id: &CampaignId, now: Timestamp) -> Result<Archived>;
    /// A workspace's campaigns, newest first: only archived ones if `archived`, else only
    /// the others (as [`Store::list_campaigns`]).
    async fn list_campaigns_archived(&self, ws: &WorkspaceId, archived: bool, page: &Page) -> Result<Vec<Campaign>>;
    /// Creates a batch (`POST /batches`): its campaign, flagged `batch`, in `starting`, with
    /// `contacts` pending and due at `start_at` (or now), in one transaction. Numbers must be
    /// distinct (`Conflict` otherwise).
    async fn create_batch(&self, new: NewCampaign, contacts: &[NewContact], start_at: Option<Timestamp>, now: Timestamp) -> Result<Campaign>;
    /// The workspace's batches, newest first (keyset pages on the id).
    async fn list_batches(&self, ws: &WorkspaceId, page: &Page) -> Result<Vec<Campaign>>;
    /// The sorted variable names used by a campaign's contacts.
    async fn variable_keys(&self, campaign: &CampaignId) -> Result<Vec<String>>;
    /// One keyset page of the CSV export: up to `limit` contacts after id `after`, in id order.
    async fn export_page(&self, campaign: &CampaignId, after: Option<&str>, limit: u32) -> Result<Vec<ExportRow>>;

    // The engine's writes.
    /// In one transaction: checks the campaign is runnable, counts its active calls, claims
    /// up to the free slots of due contacts and inserts their QUEUED calls, owned by `node`
    /// (`claimed_by`; a scheduled call moved to QUEUED is owned by `node` too).
    async fn claim(&self, campaign: &CampaignId, node: &str, now: Timestamp) -> Result<Vec<Dial>> {
        Ok(self.claim_placing(std::slice::from_ref(campaign), &HashSet::new(), node, now).await?.remove(campaign).unwrap_or_default())
    }
    /// `claim` for each of `campaigns`; the dials of each campaign that got any. A backend
    /// that takes concurrent writers claims for all of them in one transaction.
    async fn claim_many(&self, campaigns: &[CampaignId], node: &str, now: Timestamp) -> Result<HashMap<CampaignId, Vec<Dial>>> {
        self.claim_placing(campaigns, &HashSet::new(), node, now).await
    }
    /// `claim_many`, and for the campaigns in `placing` the placing fence too
    /// (`Claimed → Placing` in the claim's own transaction, see `dialtone_core::attempt`):
    /// their calls are committed with `placing_at = now` and come back with
    /// [`Dial::placing_at`] set, so the placer may send them without a `mark_placing` commit
    /// of its own. For a placement that follows at once (no rate-limiter wait, a provider
    /// that can be asked for a possibly-sent call after a crash): one commit fewer on
    /// every refill of a freed slot.
    async fn claim_placing(
        &self,
        campaigns: &[CampaignId],
        placing: &HashSet<CampaignId>,
        node: &str,
        now: Timestamp,
    ) -> Result<HashMap<CampaignId, Vec<Dial>>>;
    /// Fences the send: true only for a QUEUED call not yet being placed and still owned by
    /// `node` (a node whose call was taken over after its lease ran out must not send it).
    /// Committed before the provider request, so a crash afterwards is known to be ambiguous.
    async fn mark_placing(&self, call: &CallId, node: &str, now: Timestamp) -> Result<bool>;
    /// The provider accepted the call. Stores its id, moves QUEUED → DIALING (never back),
    /// and flips the campaign to `dialing` on its first accepted call. In the same
    /// transaction, adopts and applies the events stored earlier under that provider id
    /// with no call (they came before the id was stored and carried no id of ours), as
    /// `record_inbound_call` does. Returns whether this call started the campaign.
    async fn mark_dialed(&self, call: &CallId, provider_call_id: &str, now: Timestamp) -> Result<bool>;
    /// `mark_placing` for each of `calls`, in order: whether each passed its fence. A backend
    /// with one writer does them in one transaction (one commit instead of one per call);
    /// the others one by one, as concurrent writers commit together anyway.
    async fn mark_placing_many(&self, calls: &[CallId], node: &str, now: Timestamp) -> Result<Vec<bool>> {
        let mut out = Vec::with_capacity(calls.len());
        for call in calls {
            out.push(self.mark_placing(call, node, now).await?);
        }
        Ok(out)
    }
    /// `mark_dialed` for each (call, provider call id) of `calls`, in order: whether each
    /// started its campaign. Both backends do them in one transaction (`calls::mark_dialed_many`:
    /// one commit, one orphan lookup), where one error (a call not found) fails them all.
    async fn mark_dialed_many(&self, calls: &[(CallId, String)], now: Timestamp) -> Result<Vec<bool>> {
        let mut out = Vec::with_capacity(calls.len());
        for (call, provider_call_id) in calls {
            out.push(self.mark_dialed(call, provider_call_id, now).await?);
        }
        Ok(out)
    }
    /// The provider refused the call for good, or the engine gave up on it: ends it with
    /// `outcome` and moves its contact on (retry later or finish), recorded as an engine event.
    async fn end_call(&self, call: &CallId, outcome: Outcome, reason: &str, now: Timestamp) -> Result<Option<Applied>>;
    /// A QUEUED call that certainly never reached the provider: removes its claim so the
    /// contact is due again without losing an attempt.
    async fn release_unsent(&self, call: &CallId, reason: &str, now: Timestamp) -> Result<bool>;
    /// Stores and applies events in one transaction (group commit). A duplicate is stored
    /// once and changes nothing.
    async fn apply_events(&self, events: &[ProviderEvent], received_at: Timestamp) -> Result<Vec<Applied>>;
    /// [`Store::apply_events`], then [`Store::save_call_reports`] for the reports the events
    /// carry ([`reports_of`]). A backend with one writer (SQLite) does both in one
    /// transaction: one commit per ingest batch instead of two, in a queue every write of
    /// the engine waits in. Here, the default: two transactions (on PostgreSQL the reports'
    /// row locks held through the batch's transaction crossed the claims').
    async fn apply_events_with_reports(&self, events: &[ProviderEvent], received_at: Timestamp) -> Result<Vec<Applied>> {
        let applied = self.apply_events(events, received_at).await?;
        self.save_call_reports(&reports_of(events, &applied), received_at).await?;
        Ok(applied)
    }
    /// Deletes up to `limit` events that name no call of ours (from a provider, `call_id`
    /// NULL: a Vapi org-wide Server URL sends the events of every call on the account)
    /// received before `before`, oldest first. Returns how many went. Engine notes and
    /// events attached to a call are never touched.
    async fn purge_unknown_events(&self, before: Timestamp, limit: u32) -> Result<u64>;
    /// Active calls with no event since `quiet_since`.
    async fn stuck_calls(&self, quiet_since: Timestamp, limit: u32) -> Result<Vec<Call>>;
    /// QUEUED calls without a provider id that `node` may resolve (crash recovery): its own
    /// (a restarted node with the same id), unowned ones, and those of a node whose
    /// heartbeat is older than `lease` at `now` (or that never heartbeat). Each is taken
    /// over with a fenced `UPDATE … SET claimed_by = node WHERE claimed_by IS NOT DISTINCT
    /// FROM <old owner>`; a call another node took first is skipped. Returns only the calls
    /// `node` owns now, as they are after the takeover. Calls in `busy` (the caller's own
    /// placements in flight) are neither taken nor returned: read, they would otherwise
    /// cost one write each per pass in the writer queue every claim waits in.
    async fn orphaned_calls(&self, node: &str, lease: std::time::Duration, now: Timestamp, busy: &std::collections::HashSet<CallId>) -> Result<Vec<Call>>;
    /// Live calls (active, with a provider id) that have lasted their maximum duration at
    /// `now`: counted from when the provider accepted them (`dialed_at`; an inbound call
    /// from when it was recorded), against their campaign's `max_call_duration_secs` or
    /// else `default_max`. Each with the limit it broke, in seconds; oldest first, at most
    /// `limit`. Reads only: the caller ends each one with a fenced [`Store::end_call`].
    async fn overdue_calls(&self, now: Timestamp, default_max: std::time::Duration, limit: u32) -> Result<Vec<(Call, u64)>>;
    /// Touches `last_event_at` after a reconcile found the call alive.
    async fn touch_call(&self, call: &CallId, now: Timestamp) -> Result<()>;

    // Node leases and cross-node wake-ups.
    /// Records that `node` is alive at `now` (insert or update; `started_at` is kept).
    /// Returns the database server's clock when there is one every node shares
    /// (PostgreSQL): leases are judged by comparing nodes' clocks, so a node can tell how
    /// far off its own is.
    async fn heartbeat(&self, node: &str, now: Timestamp) -> Result<Option<Timestamp>>;
    /// How many nodes other than `node` hold a live lease at `now` (a heartbeat within
    /// `lease`). None means nobody was listening for webhooks before `node` started.
    async fn other_live_nodes(&self, node: &str, lease: std::time::Duration, now: Timestamp) -> Result<u64>;
    /// Tells every node's dispatcher to look now (a campaign started, a call ended).
    /// PostgreSQL: `NOTIFY dialtone_wake`; SQLite (one node): nothing.
    async fn publish_wake(&self) -> Result<()>;
    /// Wake-ups published by any node (this one included), one `()` each, coalesced when
    /// the receiver lags (a wake is idempotent). After a lost connection it reconnects with
    /// a backoff and sends one wake for whatever it may have missed; it stops when the
    /// receiver is dropped. `None` where there is nothing to listen to (SQLite).
    async fn subscribe_wakes(&self) -> Result<Option<tokio::sync::mpsc::Receiver<()>>>;

    /// The concurrency limit of a whole provider account (None = unlimited), shared by every
    /// campaign on it; checked in every claim.
    async fn set_account_limit(&self, provider: dialtone_core::ProviderKind, max_concurrent: Option<u32>, now: Timestamp) -> Result<()>;

    // Do-not-call lists (`campaign` None = workspace-wide).
    async fn add_suppressions(
        &self,
        ws: &WorkspaceId,
        campaign: Option<&CampaignId>,
        phones: &[dialtone_core::PhoneNumber],
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<u64>;
    async fn remove_suppression(&self, ws: &WorkspaceId, campaign: Option<&CampaignId>, phone: &dialtone_core::PhoneNumber) -> Result<bool>;
    /// Every suppression that stops `phone` being dialled in `campaign` (or workspace-wide when None).
    async fn suppressions_for(&self, ws: &WorkspaceId, campaign: Option<&CampaignId>, phone: &dialtone_core::PhoneNumber) -> Result<Vec<Suppression>>;
    async fn list_suppressions(&self, ws: &WorkspaceId, campaign: Option<&CampaignId>, page: &Page) -> Result<Vec<Suppression>>;

    // Assistants and scheduled single calls.
    async fn upsert_assistant(&self, ws: &WorkspaceId, assistant: &Assistant, now: Timestamp) -> Result<()>;
    async fn get_assistant(&self, ws: &WorkspaceId, id: &str) -> Result<Option<Assistant>>;
    async fn list_assistants(&self, ws: &WorkspaceId) -> Result<Vec<Assistant>>;
    /// Creates the call in status `scheduled` (in a hidden single-call campaign); the
    /// dispatcher places it once `scheduled_for` has come.
    async fn create_single_call(&self, new: NewSingleCall, now: Timestamp) -> Result<Call>;
    /// Moves a call that has not started yet. False if it is no longer `scheduled`.
    async fn reschedule_call(&self, ws: &WorkspaceId, id: &CallId, at: Timestamp, now: Timestamp) -> Result<bool>;
    /// Cancels a call that has not started yet (it stays visible as `canceled`), and its recurrence.
    async fn cancel_scheduled_call(&self, ws: &WorkspaceId, id: &CallId, now: Timestamp) -> Result<bool>;

    // Our numbers and inbound calls.
    /// Registers one of our numbers and the assistant that answers it. `StoreError::Conflict`
    /// if the number is registered already (in any workspace).
    async fn add_phone_number(
        &self,
        ws: &WorkspaceId,
        number: &dialtone_core::PhoneNumber,
        provider: dialtone_core::ProviderKind,
        assistant_id: &str,
        name: Option<&str>,
        now: Timestamp,
    ) -> Result<PhoneNumberEntry>;
    async fn list_phone_numbers(&self, ws: &WorkspaceId) -> Result<Vec<PhoneNumberEntry>>;
    async fn remove_phone_number(&self, ws: &WorkspaceId, number: &dialtone_core::PhoneNumber) -> Result<bool>;
    /// Across workspaces (an inbound call names only the number dialled): exact E.164 match.
    async fn find_phone_number(&self, number: &str) -> Result<Option<PhoneNumberEntry>>;
    /// Records an inbound call to `entry`'s number from `from` (raw caller id; may be
    /// "anonymous"), status `ringing`, direction `inbound`, provider = entry.provider,
    /// provider_call_id set. Idempotent: a second request with the same provider_call_id
    /// returns the existing call. Then adopts the events stored earlier for this provider
    /// call id with no call (orphans): attaches them (call_id, workspace_id) and applies
    /// them in the order received, exactly as if they had arrived now (forward-only state
    /// machine; an orphaned `ended` ends the call).
    ///
    /// The call lives in a hidden campaign per (workspace, number) (kind `inbound`, never
    /// dialled from nor completed), as a contact of its own (never retried: done when the
    /// call ends).
    async fn record_inbound_call(&self, entry: &PhoneNumberEntry, provider_call_id: &str, from: &str, now: Timestamp) -> Result<Call>;

    // Reads for the API.
    async fn get_call(&self, ws: &WorkspaceId, id: &CallId) -> Result<Option<Call>>;
    async fn list_calls(&self, ws: &WorkspaceId, filter: &CallFilter, page: &Page) -> Result<Vec<Call>>;
    async fn call_events(&self, ws: &WorkspaceId, id: &CallId) -> Result<Vec<CallEvent>>;
    async fn active_calls(&self) -> Result<u64>;

    // Agents (dialtone's own voice pipeline) and what their calls leave.
    /// Inserts `agent` as given (its id, workspace and times included).
    async fn create_agent(&self, agent: &dialtone_core::Agent) -> Result<()>;
    /// A workspace's agent; `None` if there is none or it was deleted.
    async fn get_agent(&self, ws: &WorkspaceId, id: &dialtone_core::AgentId) -> Result<Option<dialtone_core::Agent>>;
    /// A workspace's agents, newest first (keyset pagination on the id); deleted ones left out.
    async fn list_agents(&self, ws: &WorkspaceId, page: &Page) -> Result<Vec<dialtone_core::Agent>>;
    /// Writes every setting of `agent` and its `updated_at` (id, workspace and `created_at`
    /// stay). False if there is no such agent in `agent.workspace_id`, or it was deleted.
    /// Calls placed afterwards use the new settings; a call under way keeps what it read.
    async fn update_agent(&self, agent: &dialtone_core::Agent) -> Result<bool>;
    /// Soft-deletes an agent (`deleted_at`): it is no longer listed or usable by new
    /// campaigns, and calls that used it still find it. `StoreError::Conflict` while a
    /// campaign that is not over (completed or canceled) names it; false if there is no such agent.
    async fn delete_agent(&self, ws: &WorkspaceId, id: &dialtone_core::AgentId, now: Timestamp) -> Result<bool>;
    /// The agent of `call`'s campaign (deleted or not), for the media stream that opens for
    /// the call (authenticated by the call's stream token, hence no workspace). `None`: no
    /// such call, its campaign has no agent, or the call is not live (queued, dialing,
    /// ringing or in progress): a stream URL replayed after the call ended opens nothing.
    async fn agent_for_call(&self, call: &CallId) -> Result<Option<dialtone_core::Agent>>;
    /// The agents (not deleted) of campaigns that are dialling or about to (`starting`,
    /// `dialing`), in every workspace; at most `limit`, most recently changed first. What a
    /// server warms at start, so the first calls after a restart greet from the cache.
    async fn agents_in_use(&self, limit: u32) -> Result<Vec<dialtone_core::Agent>>;
    /// Stores what an agent call left: its transcript (replacing an earlier save) and whether
    /// a voicemail message was played. False if there is no such call.
    async fn save_transcript(&self, call: &CallId, turns: &[dialtone_core::TranscriptTurn], voicemail_left: bool, now: Timestamp) -> Result<bool>;
    // Stats and alerts (issue 11; definitions in `shared::stats`).
    /// `GET /stats`: counts, rates, latency percentiles and the hourly series of the calls
    /// created in `[from, to)` of a workspace (or one of its campaigns).
    async fn stats(&self, q: &StatsQuery) -> Result<Stats>;
    /// `/stats` computed from the calls and events alone, without the rollup: the answer the
    /// rollup must reproduce exactly (the conformance suite and `dialtone bench stats`
    /// compare the two). Linear in the range's calls.
    async fn stats_raw(&self, q: &StatsQuery) -> Result<Stats>;
    /// Brings the `/stats` rollup up to date with every change logged since the last
    /// refresh (`shared::stats::refresh`); how many hours it recomputed. `stats` does it
    /// itself; the reaper calls it so the change log stays short.
    async fn refresh_stats(&self) -> Result<u64>;
    /// Analyses the engine's tables (`calls`, `call_events`, `contacts`) that about doubled
    /// since their last analysis, so the planner's statistics and the prepared statements'
    /// plans follow a burst (`shared::planner`: PostgreSQL's statistics collector counts
    /// the changes; on SQLite the rowids grown since this process last analysed). Returns
    /// the tables analysed. The engine calls it every second.
    async fn analyze_grown(&self) -> Result<Vec<String>>;
    /// The failure-rate alert's window: calls that ended at or after `since`, by campaign
    /// and provider, with how many failed.
    async fn failure_window(&self, since: Timestamp) -> Result<Vec<WindowCount>>;
    // Idempotency-Key (issue 13; rules in `shared::idempotency`).
    /// Claims `key` in `ws` for `request` (method, path and query), or says that another
    /// request holds it or has answered it. Purges expired keys on the way.
    async fn begin_idempotent(&self, ws: &WorkspaceId, key: &str, request: &str, now: Timestamp) -> Result<Begun>;
    /// Stores the owner's answer and body hash (an answer showing a secret sealed under the
    /// master key; [`StoreError::NoMasterKey`] without one); false if the key was taken
    /// from it (stale).
    async fn finish_idempotent(&self, ws: &WorkspaceId, key: &str, body_sha256: &str, response: &StoredResponse) -> Result<bool>;
    /// Frees a key whose owner failed on our side, so a retry runs afresh.
    async fn abandon_idempotent(&self, ws: &WorkspaceId, key: &str) -> Result<()>;
    /// Deletes at most `limit` idempotency records that expired by `now`; how many went.
    async fn purge_idempotency_keys(&self, now: Timestamp, limit: u32) -> Result<u64>;
    // Call detail (issue 11).
    /// Stores what a provider reported of a call's content (summary, recording URL,
    /// transcript; see `calls::save_report` for what replaces what). False if there is no
    /// such call.
    async fn save_call_report(&self, call: &CallId, report: &dialtone_core::CallReport, now: Timestamp) -> Result<bool>;
    /// `save_call_report` for each (call, report) in one transaction: one commit for an
    /// ingest batch's reports. A call that does not exist is passed over.
    async fn save_call_reports(&self, reports: &[(&CallId, &dialtone_core::CallReport)], now: Timestamp) -> Result<()>;
    // API keys for `dialtone keys list|revoke` (issue 11; see `shared::workspaces`).
    // Outbound events (`shared::outbox`): webhook endpoints, the outbox, the delivery log.
    /// A new endpoint of `ws` signing with `secret` (`whsec_…`; sealed at rest under the
    /// master key when there is one).
    async fn create_webhook_endpoint(
        &self,
        ws: &WorkspaceId,
        new: &NewWebhookEndpoint,
        secret: &secrecy::SecretString,
        now: Timestamp,
    ) -> Result<WebhookEndpoint>;
    async fn get_webhook_endpoint(&self, ws: &WorkspaceId, id: &str) -> Result<Option<WebhookEndpoint>>;
    /// Newest first.
    async fn list_webhook_endpoints(&self, ws: &WorkspaceId, page: &Page) -> Result<Vec<WebhookEndpoint>>;
    /// `None`: no such endpoint in `ws`.
    async fn update_webhook_endpoint(&self, ws: &WorkspaceId, id: &str, patch: &WebhookEndpointPatch, now: Timestamp) -> Result<Option<WebhookEndpoint>>;
    /// Deletes it with its deliveries and their log; false if there is none.
    async fn delete_webhook_endpoint(&self, ws: &WorkspaceId, id: &str) -> Result<bool>;
    /// The old secret keeps signing for 24 h ([`WEBHOOK_ROTATION_OVERLAP`]).
    async fn rotate_webhook_secret(&self, ws: &WorkspaceId, id: &str, secret: &secrecy::SecretString, now: Timestamp) -> Result<Option<WebhookEndpoint>>;
    /// Puts events in the outbox in a transaction of their own (see `shared::outbox::emit`).
    async fn emit_events(&self, events: &[OutboxEvent], now: Timestamp) -> Result<()>;
    /// Fans waiting outbox messages out to their endpoints (up to `limit`), then claims due
    /// deliveries for `node` until `now + lease`, counting a try on each.
    async fn claim_deliveries(&self, node: &str, now: Timestamp, lease: jiff::SignedDuration, limit: u32) -> Result<Vec<Claimed>> {
        self.claim_deliveries_except(node, now, lease, limit, limit, &[]).await
    }
    /// [`Store::claim_deliveries`], fanning out up to `fan_out` messages (at most 1,000) and
    /// taking no delivery to an endpoint in `skip`.
    async fn claim_deliveries_except(
        &self,
        node: &str,
        now: Timestamp,
        lease: jiff::SignedDuration,
        limit: u32,
        fan_out: u32,
        skip: &[WebhookEndpointId],
    ) -> Result<Vec<Claimed>>;
    /// Gives back claimed deliveries `node` will not try now: unclaimed, their try uncounted.
    async fn give_back_deliveries(&self, node: &str, deliveries: &[Delivery]) -> Result<u64>;
    /// Records try `attempt` and schedules the next; false if the claim was lost.
    async fn finish_delivery(&self, delivery: &Delivery, attempt: u32, node: &str, result: &TryResult, now: Timestamp) -> Result<bool>;
    /// [`Store::finish_delivery`] for several tries in one transaction (for a backend with
    /// one writer); whether each was recorded, in order.
    async fn finish_deliveries(&self, tries: &[FinishedTry], node: &str, now: Timestamp) -> Result<Vec<bool>>;
    /// An endpoint's deliveries, newest first, each with its tries.
    async fn list_deliveries(&self, ws: &WorkspaceId, endpoint: &str, page: &Page) -> Result<Vec<(Delivery, Vec<DeliveryAttempt>)>>;
    /// The workspace a campaign belongs to; `None` if there is no such campaign.
    async fn campaign_workspace(&self, campaign: &str) -> Result<Option<WorkspaceId>>;
    /// Sends a message to an endpoint again, now; false if there is no such delivery.
    async fn replay_delivery(&self, ws: &WorkspaceId, endpoint: &str, message: &str, now: Timestamp) -> Result<bool>;
    async fn list_api_keys(&self, ws: &WorkspaceId) -> Result<Vec<ApiKeyInfo>>;
    async fn set_api_key_prefix(&self, id: &ApiKeyId, prefix: &str) -> Result<()>;
    async fn revoke_api_key(&self, ws: &WorkspaceId, id: &str, now: Timestamp) -> Result<bool>;
    async fn touch_api_key(&self, id: &ApiKeyId, now: Timestamp) -> Result<()>;
    // Workspace management and scoped keys (issue 13; see `shared::workspaces`).
    /// The grant of the key with this hash: `None` if unknown, revoked, or of a disabled
    /// workspace. Read from the database every time (no cache).
    async fn authenticate_api_key(&self, key_hash: &str) -> Result<Option<KeyGrant>>;
    /// Creates a key of `ws` with its shown prefix and comma-separated `scopes`.
    async fn create_scoped_api_key(&self, ws: &WorkspaceId, name: &str, key_hash: &str, prefix: &str, scopes: &str, now: Timestamp) -> Result<ApiKeyId>;
    /// The workspace of the key with this id (revoked or not).
    async fn api_key_workspace(&self, id: &str) -> Result<Option<WorkspaceId>>;
    async fn create_workspace(&self, name: &str, now: Timestamp) -> Result<Workspace>;
    async fn list_workspaces(&self) -> Result<Vec<Workspace>>;
    async fn get_workspace(&self, id: &str) -> Result<Option<Workspace>>;
    /// Renames and/or disables or enables a workspace (never disables the default one);
    /// `None` if there is no such workspace.
    async fn update_workspace(&self, id: &str, name: Option<&str>, disabled: Option<bool>, now: Timestamp) -> Result<Option<Workspace>>;
    /// Sets or (`None`) removes the workspace's daily call limit per caller number (issue
    /// 13); contacts waiting for the old limit are due at `now`, judged again at the next
    /// claim. `None` back if there is no such workspace.
    async fn set_caller_number_daily_limit(&self, id: &str, limit: Option<u32>, now: Timestamp) -> Result<Option<Workspace>>;

    /// The master keys secrets are sealed and opened with; `None` when none is configured
    /// (webhook-endpoint secrets are then stored as given, provider accounts refused).
    fn keyring(&self) -> Option<&secrets::Keyring>;
    /// Stores a workspace's provider account, its secrets sealed under the current master
    /// key. Errors: [`StoreError::NoMasterKey`] without one.
    async fn create_provider_account(&self, ws: &WorkspaceId, new: &NewProviderAccount, now: Timestamp) -> Result<ProviderAccount>;
    /// One account of `ws` (enabled or not), without its secrets; `None` if `ws` has none
    /// with this id.
    async fn get_provider_account(&self, ws: &WorkspaceId, id: &str) -> Result<Option<ProviderAccount>>;
    /// The account `id` of any workspace (its `workspace_id` says whose): for webhook
    /// routes, which name only the account. Never for an API answer.
    async fn find_provider_account(&self, id: &str) -> Result<Option<ProviderAccount>>;
    /// The provider and account (`None`: the config file's) call `call` was placed
    /// through; `None` if there is no such call. For the voice pipeline, whose media
    /// stream names only its call. Never for an API answer.
    async fn call_account(&self, call: &CallId) -> Result<Option<(dialtone_core::ProviderKind, Option<dialtone_core::ProviderAccountId>)>>;
    /// A page of the accounts of `ws`, newest first.
    async fn list_provider_accounts(&self, ws: &WorkspaceId, page: &Page) -> Result<Vec<ProviderAccount>>;
    /// Applies a PATCH (secrets merged and re-sealed); `None` if `ws` has no such account.
    /// Errors: [`StoreError::NoMasterKey`] for a patch with secrets and no master key.
    async fn update_provider_account(&self, ws: &WorkspaceId, id: &str, patch: &ProviderAccountPatch, now: Timestamp) -> Result<Option<ProviderAccount>>;
    /// The opened secrets of an account, by name (for its provider client and webhook
    /// checks, never for an answer); `None` if there is no such account.
    async fn provider_account_secrets(&self, id: &str) -> Result<Option<std::collections::BTreeMap<String, secrecy::SecretString>>>;
    /// Re-seals under the current master key every stored secret sealed by another key or
    /// stored in plaintext (webhook-endpoint secrets from before 0024): the number of values
    /// re-sealed; 0 when all are current. Errors: [`StoreError::NoMasterKey`]; a value
    /// sealed by a key not configured ([`StoreError::Corrupt`], naming the key id).
    async fn rotate_secrets(&self) -> Result<u64>;
}

/// Opens the backend named by the URL scheme (`sqlite:`, `postgres:`/`postgresql:`); runs migrations.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    connect_with(url, None).await
}

/// [`connect`], sealing and opening the secrets stored with `keyring` (the config's master
/// keys). Runs no rotation: call [`Store::rotate_secrets`] for that.
pub async fn connect_with(url: &str, keyring: Option<secrets::Keyring>) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        let store = sqlite::SqliteStore::connect(url).await?.with_keyring(keyring);
        store.migrate().await?;
        Ok(Arc::new(store))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let store = postgres::PostgresStore::connect(url).await?.with_keyring(keyring);
        store.migrate().await?;
        Ok(Arc::new(store))
    } else {
        Err(StoreError::Conflict(format!("unsupported database URL scheme in {url:?} (expected sqlite:, postgres: or postgresql:)")))
    }
}
