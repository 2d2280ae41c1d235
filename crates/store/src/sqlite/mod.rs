//! The embedded SQLite backend: one file, WAL mode, one writer connection (SQLite allows
//! one writer anyway; a single connection means our own writes never contend) and a small
//! pool of readers.

mod calls;
mod campaigns;
mod events;
mod inbound;
mod rows;
mod single;
mod suppressions;

use crate::*;
use dialtone_core::{ApiKeyId, CallId, CampaignId, CampaignStatus, ContactId, Outcome, PhoneNumber, ProviderEvent, WorkspaceId};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::str::FromStr;
use std::time::Duration;

pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
}

impl SqliteStore {
    /// `url` like `sqlite://dialtone.db` or `sqlite:///abs/path.db`; the file is created if missing.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a webhook is acknowledged only once its write is on disk.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let write = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        let read = SqlitePoolOptions::new().max_connections(4).connect_with(options.read_only(true)).await?;
        Ok(Self { write, read })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("./migrations/sqlite").run(&self.write).await?;
        Ok(())
    }

    async fn default_workspace(&self) -> Result<WorkspaceId> {
        campaigns::default_workspace(&self.write).await
    }

    async fn create_api_key(&self, ws: &WorkspaceId, name: &str, key_hash: &str, now: Timestamp) -> Result<ApiKeyId> {
        campaigns::create_api_key(&self.write, ws, name, key_hash, now).await
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<(ApiKeyId, WorkspaceId)>> {
        campaigns::find_api_key(&self.read, key_hash).await
    }

    async fn create_campaign(&self, new: NewCampaign, now: Timestamp) -> Result<Campaign> {
        campaigns::create(&self.write, new, now).await
    }

    async fn get_campaign(&self, ws: &WorkspaceId, id: &CampaignId) -> Result<Option<Campaign>> {
        campaigns::get(&self.read, ws, id).await
    }

    async fn list_campaigns(&self, ws: &WorkspaceId, page: &Page) -> Result<Vec<Campaign>> {
        campaigns::list(&self.read, ws, page).await
    }

    async fn campaign_counts_many(&self, ids: &[CampaignId]) -> Result<std::collections::HashMap<CampaignId, CampaignCounts>> {
        campaigns::counts(&self.read, ids).await
    }

    async fn transition_campaign(&self, ws: &WorkspaceId, id: &CampaignId, from: &[CampaignStatus], to: CampaignStatus, now: Timestamp) -> Result<bool> {
        campaigns::transition(&self.write, ws, id, from, to, now).await
    }

    async fn cancel_campaign(&self, ws: &WorkspaceId, id: &CampaignId, now: Timestamp) -> Result<bool> {
        campaigns::cancel(&self.write, ws, id, now).await
    }

    async fn complete_if_done(&self, id: &CampaignId, now: Timestamp) -> Result<bool> {
        campaigns::complete_if_done(&self.write, id, now).await
    }

    async fn runnable_campaigns(&self, now: Timestamp) -> Result<Vec<CampaignId>> {
        campaigns::runnable(&self.read, now).await
    }

    async fn insert_contacts(&self, ws: &WorkspaceId, campaign: &CampaignId, contacts: &[NewContact], now: Timestamp) -> Result<InsertReport> {
        campaigns::insert_contacts(&self.write, ws, campaign, contacts, now).await
    }

    async fn get_contact(&self, ws: &WorkspaceId, id: &ContactId) -> Result<Option<Contact>> {
        campaigns::get_contact(&self.read, ws, id).await
    }

    async fn list_contacts(&self, ws: &WorkspaceId, campaign: &CampaignId, page: &Page) -> Result<Vec<Contact>> {
        campaigns::list_contacts(&self.read, ws, campaign, page).await
    }

    async fn retry_contact_now(&self, ws: &WorkspaceId, id: &ContactId, now: Timestamp) -> Result<bool> {
        campaigns::retry_contact_now(&self.write, ws, id, now).await
    }

    async fn cancel_contact(&self, ws: &WorkspaceId, id: &ContactId, now: Timestamp) -> Result<bool> {
        campaigns::cancel_contact(&self.write, ws, id, now).await
    }

    async fn claim(&self, campaign: &CampaignId, node: &str, now: Timestamp) -> Result<Vec<Dial>> {
        calls::claim(&self.write, campaign, node, now).await
    }

    async fn mark_placing(&self, call: &CallId, node: &str, now: Timestamp) -> Result<bool> {
        calls::mark_placing(&self.write, call, node, now).await
    }

    async fn mark_dialed(&self, call: &CallId, provider_call_id: &str, now: Timestamp) -> Result<bool> {
        calls::mark_dialed(&self.write, call, provider_call_id, now).await
    }

    async fn mark_placing_many(&self, calls: &[CallId], node: &str, now: Timestamp) -> Result<Vec<bool>> {
        calls::mark_placing_many(&self.write, calls, node, now).await
    }

    async fn mark_dialed_many(&self, calls: &[(CallId, String)], now: Timestamp) -> Result<Vec<bool>> {
        calls::mark_dialed_many(&self.write, calls, now).await
    }

    async fn end_call(&self, call: &CallId, outcome: Outcome, reason: &str, now: Timestamp) -> Result<Option<Applied>> {
        calls::end_call(&self.write, call, outcome, reason, now).await
    }

    async fn release_unsent(&self, call: &CallId, reason: &str, now: Timestamp) -> Result<bool> {
        calls::release_unsent(&self.write, call, reason, now).await
    }

    async fn apply_events(&self, events: &[ProviderEvent], received_at: Timestamp) -> Result<Vec<Applied>> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            out.push(events::apply_one(&mut tx, e, "provider", received_at).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn purge_unknown_events(&self, before: Timestamp, limit: u32) -> Result<u64> {
        events::purge_unknown(&self.write, before, limit).await
    }

    async fn stuck_calls(&self, quiet_since: Timestamp, limit: u32) -> Result<Vec<Call>> {
        calls::stuck(&self.read, quiet_since, limit).await
    }

    async fn orphaned_calls(&self, node: &str, lease: Duration, now: Timestamp) -> Result<Vec<Call>> {
        calls::orphaned(&self.read, &self.write, node, lease, now).await
    }

    async fn overdue_calls(&self, now: Timestamp, default_max: Duration, limit: u32) -> Result<Vec<(Call, u64)>> {
        calls::overdue(&self.read, now, default_max, limit).await
    }

    async fn touch_call(&self, call: &CallId, now: Timestamp) -> Result<()> {
        calls::touch(&self.write, call, now).await
    }

    async fn heartbeat(&self, node: &str, now: Timestamp) -> Result<Option<Timestamp>> {
        // One node, one clock: nothing to compare with.
        calls::heartbeat(&self.write, node, now).await?;
        Ok(None)
    }

    /// One node per SQLite file: there is nobody else to wake.
    async fn publish_wake(&self) -> Result<()> {
        Ok(())
    }

    async fn subscribe_wakes(&self) -> Result<Option<tokio::sync::mpsc::Receiver<()>>> {
        Ok(None)
    }

    async fn set_account_limit(&self, provider: dialtone_core::ProviderKind, max_concurrent: Option<u32>, now: Timestamp) -> Result<()> {
        sqlx::query(
            "INSERT INTO provider_accounts (provider, max_concurrent, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (provider) DO UPDATE SET max_concurrent = ?2, updated_at = ?3",
        )
        .bind(provider.as_str())
        .bind(max_concurrent.map(i64::from))
        .bind(now.as_millisecond())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn add_suppressions(&self, ws: &WorkspaceId, campaign: Option<&CampaignId>, phones: &[PhoneNumber], reason: Option<&str>, now: Timestamp) -> Result<u64> {
        suppressions::add(&self.write, ws, campaign, phones, reason, now).await
    }

    async fn remove_suppression(&self, ws: &WorkspaceId, campaign: Option<&CampaignId>, phone: &PhoneNumber) -> Result<bool> {
        suppressions::remove(&self.write, ws, campaign, phone).await
    }

    async fn suppressions_for(&self, ws: &WorkspaceId, campaign: Option<&CampaignId>, phone: &PhoneNumber) -> Result<Vec<Suppression>> {
        suppressions::matching(&self.read, ws, campaign, phone).await
    }

    async fn list_suppressions(&self, ws: &WorkspaceId, campaign: Option<&CampaignId>, page: &Page) -> Result<Vec<Suppression>> {
        suppressions::list(&self.read, ws, campaign, page).await
    }

    async fn upsert_assistant(&self, ws: &WorkspaceId, assistant: &Assistant, now: Timestamp) -> Result<()> {
        single::upsert_assistant(&self.write, ws, assistant, now).await
    }

    async fn get_assistant(&self, ws: &WorkspaceId, id: &str) -> Result<Option<Assistant>> {
        single::get_assistant(&self.read, ws, id).await
    }

    async fn list_assistants(&self, ws: &WorkspaceId) -> Result<Vec<Assistant>> {
        single::list_assistants(&self.read, ws).await
    }

    async fn create_single_call(&self, new: NewSingleCall, now: Timestamp) -> Result<Call> {
        single::create(&self.write, new, now).await
    }

    async fn reschedule_call(&self, ws: &WorkspaceId, id: &CallId, at: Timestamp, now: Timestamp) -> Result<bool> {
        single::reschedule(&self.write, ws, id, at, now).await
    }

    async fn cancel_scheduled_call(&self, ws: &WorkspaceId, id: &CallId, now: Timestamp) -> Result<bool> {
        single::cancel(&self.write, ws, id, now).await
    }

    async fn add_phone_number(&self, ws: &WorkspaceId, number: &PhoneNumber, provider: dialtone_core::ProviderKind, assistant_id: &str, name: Option<&str>, now: Timestamp) -> Result<PhoneNumberEntry> {
        inbound::add_number(&self.write, ws, number, provider, assistant_id, name, now).await
    }

    async fn list_phone_numbers(&self, ws: &WorkspaceId) -> Result<Vec<PhoneNumberEntry>> {
        inbound::list_numbers(&self.read, ws).await
    }

    async fn remove_phone_number(&self, ws: &WorkspaceId, number: &PhoneNumber) -> Result<bool> {
        inbound::remove_number(&self.write, ws, number).await
    }

    async fn find_phone_number(&self, number: &str) -> Result<Option<PhoneNumberEntry>> {
        inbound::find_number(&self.read, number).await
    }

    async fn record_inbound_call(&self, entry: &PhoneNumberEntry, provider_call_id: &str, from: &str, now: Timestamp) -> Result<Call> {
        inbound::record_call(&self.write, entry, provider_call_id, from, now).await
    }

    async fn get_call(&self, ws: &WorkspaceId, id: &CallId) -> Result<Option<Call>> {
        calls::get(&self.read, ws, id).await
    }

    async fn list_calls(&self, ws: &WorkspaceId, filter: &CallFilter, page: &Page) -> Result<Vec<Call>> {
        calls::list(&self.read, ws, filter, page).await
    }

    async fn call_events(&self, ws: &WorkspaceId, id: &CallId) -> Result<Vec<CallEvent>> {
        calls::events_of(&self.read, ws, id).await
    }

    async fn active_calls(&self) -> Result<u64> {
        calls::active_count(&self.read).await
    }
}
