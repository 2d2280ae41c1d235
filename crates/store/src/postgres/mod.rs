//! The PostgreSQL backend, for several nodes sharing one database. Same trait, same
//! conformance suite as SQLite; what differs is how writers are kept apart. SQLite has one
//! writer; here every node writes, so:
//! - a claim locks its campaign rows (`FOR UPDATE`, in id order) before counting active
//!   calls, and picks contacts with `FOR UPDATE SKIP LOCKED` feeding an `UPDATE … RETURNING`;
//! - writes that decide from a campaign's status hold its row (`FOR SHARE`), so a cancel
//!   or a completion never interleaves with them;
//! - a group commit of events first takes, in key order, a transaction-scoped advisory
//!   lock per provider call id it names that has no call yet (recording an inbound call
//!   takes its id's lock too: an event for a call not yet recorded is either seen by the
//!   record, as an orphan it adopts, or sees the call), then locks the calls it names, in
//!   id order, before touching any.
//!
//! Lock order, wherever several are taken: advisory (provider call ids) → calls → campaign
//! → contacts, except that a claim (campaign → contacts → new calls) never waits on a call
//! someone else holds.

mod calls;
mod campaigns;
pub(crate) mod events;
mod inbound;
mod rows;
mod single;
mod suppressions;
mod wakes;

use crate::*;
use dialtone_core::{ApiKeyId, CallId, CampaignId, CampaignStatus, ContactId, Outcome, PhoneNumber, ProviderEvent, WorkspaceId};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;

pub struct PostgresStore {
    pool: PgPool,
    /// What the pool connects with, for the listener's own connection.
    options: PgConnectOptions,
    /// The connection group commits of webhook events run on, kept between batches: the
    /// ingest writer's batches come back to back, and taking a pooled connection (pinged
    /// first) for each cost a round trip while every webhook of the batch waited. Given
    /// back to the pool after a failed batch, so a broken one is never reused.
    ingest: tokio::sync::Mutex<Option<sqlx::pool::PoolConnection<sqlx::Postgres>>>,
}

impl PostgresStore {
    /// `url` like `postgres://user:pass@host:5432/dialtone`. Connections are opened lazily
    /// up to 16; a statement running longer than 30 s is cancelled by the server, so a
    /// stuck query cannot hold a campaign's lock for ever.
    ///
    /// A database restart does not break the pool: every connection is pinged before it
    /// is handed out (`test_before_acquire`), a dead one is dropped and a new one opened,
    /// and a query that meets a dead connection returns an error (never a panic) that the
    /// engine's loops log and retry on their next pass.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?.options([("statement_timeout", "30s")]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(true)
            .connect_with(options.clone())
            .await?;
        Ok(Self { pool, options, ingest: tokio::sync::Mutex::new(None) })
    }

    /// The pool, for tests and tools that need to look under the trait.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn concurrent_writers(&self) -> usize {
        2
    }

    async fn migrate(&self) -> Result<()> {
        // sqlx takes an advisory lock, so nodes starting together migrate once.
        sqlx::migrate!("./migrations/postgres").run(&self.pool).await?;
        Ok(())
    }

    async fn default_workspace(&self) -> Result<WorkspaceId> {
        campaigns::default_workspace(&self.pool).await
    }

    async fn create_api_key(&self, ws: &WorkspaceId, name: &str, key_hash: &str, now: Timestamp) -> Result<ApiKeyId> {
        campaigns::create_api_key(&self.pool, ws, name, key_hash, now).await
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<(ApiKeyId, WorkspaceId)>> {
        campaigns::find_api_key(&self.pool, key_hash).await
    }

    async fn create_campaign(&self, new: NewCampaign, now: Timestamp) -> Result<Campaign> {
        campaigns::create(&self.pool, new, now).await
    }

    async fn get_campaign(&self, ws: &WorkspaceId, id: &CampaignId) -> Result<Option<Campaign>> {
        campaigns::get(&self.pool, ws, id).await
    }

    async fn list_campaigns(&self, ws: &WorkspaceId, page: &Page) -> Result<Vec<Campaign>> {
        campaigns::list(&self.pool, ws, page).await
    }

    async fn campaign_counts_many(&self, ids: &[CampaignId]) -> Result<std::collections::HashMap<CampaignId, CampaignCounts>> {
        campaigns::counts(&self.pool, ids).await
    }

    async fn transition_campaign(&self, ws: &WorkspaceId, id: &CampaignId, from: &[CampaignStatus], to: CampaignStatus, now: Timestamp) -> Result<bool> {
        campaigns::transition(&self.pool, ws, id, from, to, now).await
    }

    async fn cancel_campaign(&self, ws: &WorkspaceId, id: &CampaignId, now: Timestamp) -> Result<bool> {
        campaigns::cancel(&self.pool, ws, id, now).await
    }

    async fn complete_if_done(&self, id: &CampaignId, now: Timestamp) -> Result<bool> {
        campaigns::complete_if_done(&self.pool, id, now).await
    }

    async fn runnable_campaigns(&self, now: Timestamp) -> Result<Vec<CampaignId>> {
        campaigns::runnable(&self.pool, now).await
    }

    async fn insert_contacts(&self, ws: &WorkspaceId, campaign: &CampaignId, contacts: &[NewContact], now: Timestamp) -> Result<InsertReport> {
        campaigns::insert_contacts(&self.pool, ws, campaign, contacts, now).await
    }

    async fn get_contact(&self, ws: &WorkspaceId, id: &ContactId) -> Result<Option<Contact>> {
        campaigns::get_contact(&self.pool, ws, id).await
    }

    async fn list_contacts(&self, ws: &WorkspaceId, campaign: &CampaignId, page: &Page) -> Result<Vec<Contact>> {
        campaigns::list_contacts(&self.pool, ws, campaign, page).await
    }

    async fn retry_contact_now(&self, ws: &WorkspaceId, id: &ContactId, now: Timestamp) -> Result<bool> {
        campaigns::retry_contact_now(&self.pool, ws, id, now).await
    }

    async fn cancel_contact(&self, ws: &WorkspaceId, id: &ContactId, now: Timestamp) -> Result<bool> {
        campaigns::cancel_contact(&self.pool, ws, id, now).await
    }

    async fn claim(&self, campaign: &CampaignId, node: &str, now: Timestamp) -> Result<Vec<Dial>> {
        let mut claimed = calls::claim(&self.pool, std::slice::from_ref(campaign), node, now).await?;
        Ok(claimed.remove(campaign).unwrap_or_default())
    }

    async fn claim_many(&self, campaigns: &[CampaignId], node: &str, now: Timestamp) -> Result<std::collections::HashMap<CampaignId, Vec<Dial>>> {
        calls::claim(&self.pool, campaigns, node, now).await
    }

    async fn mark_placing(&self, call: &CallId, node: &str, now: Timestamp) -> Result<bool> {
        calls::mark_placing(&self.pool, call, node, now).await
    }

    async fn mark_dialed(&self, call: &CallId, provider_call_id: &str, now: Timestamp) -> Result<bool> {
        calls::mark_dialed(&self.pool, call, provider_call_id, now).await
    }

    async fn end_call(&self, call: &CallId, outcome: Outcome, reason: &str, now: Timestamp) -> Result<Option<Applied>> {
        calls::end_call(&self.pool, call, outcome, reason, now).await
    }

    async fn release_unsent(&self, call: &CallId, reason: &str, now: Timestamp) -> Result<bool> {
        calls::release_unsent(&self.pool, call, reason, now).await
    }

    async fn apply_events(&self, events: &[ProviderEvent], received_at: Timestamp) -> Result<Vec<Applied>> {
        let mut held = self.ingest.lock().await;
        if held.is_none() {
            *held = Some(self.pool.acquire().await?);
        }
        let conn = held.as_mut().expect("a connection was just put there");
        let applied = events::apply_batch(conn, events, "provider", received_at).await;
        if applied.is_err() {
            *held = None;
        }
        applied
    }

    async fn purge_unknown_events(&self, before: Timestamp, limit: u32) -> Result<u64> {
        crate::events::purge_unknown(crate::sql::Db::from(&self.pool), before, limit).await
    }

    async fn stuck_calls(&self, quiet_since: Timestamp, limit: u32) -> Result<Vec<Call>> {
        calls::stuck(&self.pool, quiet_since, limit).await
    }

    async fn orphaned_calls(&self, node: &str, lease: Duration, now: Timestamp) -> Result<Vec<Call>> {
        calls::orphaned(&self.pool, node, lease, now).await
    }

    async fn overdue_calls(&self, now: Timestamp, default_max: Duration, limit: u32) -> Result<Vec<(Call, u64)>> {
        calls::overdue(&self.pool, now, default_max, limit).await
    }

    async fn touch_call(&self, call: &CallId, now: Timestamp) -> Result<()> {
        calls::touch(&self.pool, call, now).await
    }

    async fn heartbeat(&self, node: &str, now: Timestamp) -> Result<Option<Timestamp>> {
        calls::heartbeat(&self.pool, node, now).await.map(Some)
    }

    async fn publish_wake(&self) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, '')").bind(crate::common::WAKE_CHANNEL).execute(&self.pool).await?;
        Ok(())
    }

    async fn subscribe_wakes(&self) -> Result<Option<tokio::sync::mpsc::Receiver<()>>> {
        wakes::subscribe(self.options.clone()).await.map(Some)
    }

    async fn set_account_limit(&self, provider: dialtone_core::ProviderKind, max_concurrent: Option<u32>, now: Timestamp) -> Result<()> {
        sqlx::query(
            "INSERT INTO provider_accounts (provider, max_concurrent, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (provider) DO UPDATE SET max_concurrent = $2, updated_at = $3",
        )
        .bind(provider.as_str())
        .bind(max_concurrent.map(i64::from))
        .bind(now.as_millisecond())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn add_suppressions(&self, ws: &WorkspaceId, campaign: Option<&CampaignId>, phones: &[PhoneNumber], reason: Option<&str>, now: Timestamp) -> Result<u64> {
        suppressions::add(&self.pool, ws, campaign, phones, reason, now).await
    }

    async fn remove_suppression(&self, ws: &WorkspaceId, campaign: Option<&CampaignId>, phone: &PhoneNumber) -> Result<bool> {
        suppressions::remove(&self.pool, ws, campaign, phone).await
    }

    async fn suppressions_for(&self, ws: &WorkspaceId, campaign: Option<&CampaignId>, phone: &PhoneNumber) -> Result<Vec<Suppression>> {
        suppressions::matching(&self.pool, ws, campaign, phone).await
    }

    async fn list_suppressions(&self, ws: &WorkspaceId, campaign: Option<&CampaignId>, page: &Page) -> Result<Vec<Suppression>> {
        suppressions::list(&self.pool, ws, campaign, page).await
    }

    async fn upsert_assistant(&self, ws: &WorkspaceId, assistant: &Assistant, now: Timestamp) -> Result<()> {
        single::upsert_assistant(&self.pool, ws, assistant, now).await
    }

    async fn get_assistant(&self, ws: &WorkspaceId, id: &str) -> Result<Option<Assistant>> {
        single::get_assistant(&self.pool, ws, id).await
    }

    async fn list_assistants(&self, ws: &WorkspaceId) -> Result<Vec<Assistant>> {
        single::list_assistants(&self.pool, ws).await
    }

    async fn create_single_call(&self, new: NewSingleCall, now: Timestamp) -> Result<Call> {
        single::create(&self.pool, new, now).await
    }

    async fn reschedule_call(&self, ws: &WorkspaceId, id: &CallId, at: Timestamp, now: Timestamp) -> Result<bool> {
        single::reschedule(&self.pool, ws, id, at, now).await
    }

    async fn cancel_scheduled_call(&self, ws: &WorkspaceId, id: &CallId, now: Timestamp) -> Result<bool> {
        single::cancel(&self.pool, ws, id, now).await
    }

    async fn add_phone_number(&self, ws: &WorkspaceId, number: &PhoneNumber, provider: dialtone_core::ProviderKind, assistant_id: &str, name: Option<&str>, now: Timestamp) -> Result<PhoneNumberEntry> {
        inbound::add_number(&self.pool, ws, number, provider, assistant_id, name, now).await
    }

    async fn list_phone_numbers(&self, ws: &WorkspaceId) -> Result<Vec<PhoneNumberEntry>> {
        inbound::list_numbers(&self.pool, ws).await
    }

    async fn remove_phone_number(&self, ws: &WorkspaceId, number: &PhoneNumber) -> Result<bool> {
        inbound::remove_number(&self.pool, ws, number).await
    }

    async fn find_phone_number(&self, number: &str) -> Result<Option<PhoneNumberEntry>> {
        inbound::find_number(&self.pool, number).await
    }

    async fn record_inbound_call(&self, entry: &PhoneNumberEntry, provider_call_id: &str, from: &str, now: Timestamp) -> Result<Call> {
        inbound::record_call(&self.pool, entry, provider_call_id, from, now).await
    }

    async fn get_call(&self, ws: &WorkspaceId, id: &CallId) -> Result<Option<Call>> {
        calls::get(&self.pool, ws, id).await
    }

    async fn list_calls(&self, ws: &WorkspaceId, filter: &CallFilter, page: &Page) -> Result<Vec<Call>> {
        calls::list(&self.pool, ws, filter, page).await
    }

    async fn call_events(&self, ws: &WorkspaceId, id: &CallId) -> Result<Vec<CallEvent>> {
        calls::events_of(&self.pool, ws, id).await
    }

    async fn active_calls(&self) -> Result<u64> {
        calls::active_count(&self.pool).await
    }
}
