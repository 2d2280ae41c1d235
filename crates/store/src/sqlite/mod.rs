//! The embedded SQLite backend: one file, WAL mode, one writer connection (SQLite allows
//! one writer anyway; a single connection means our own writes never contend) and a small
//! pool of readers.

mod calls;
mod events;
mod inbound;
mod rows;

use crate::shared::{campaigns, impl_store, suppressions, Pools};
use crate::sql::Db;
use crate::*;
use dialtone_core::{CallId, CampaignId, Outcome, ProviderEvent};
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

    /// Reads go to the reader pool, writes to the one writer.
    fn pools(&self) -> Pools<'_> {
        Pools::Sqlite { read: &self.read, write: &self.write }
    }
}

// The operations written once (`crate::shared`), then SQLite's own.
impl_store!(SqliteStore {
    async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("./migrations/sqlite").run(&self.write).await?;
        Ok(())
    }

    async fn claim(&self, campaign: &CampaignId, node: &str, now: Timestamp) -> Result<Vec<Dial>> {
        calls::claim(&self.write, campaign, node, now).await
    }

    async fn mark_placing(&self, call: &CallId, node: &str, now: Timestamp) -> Result<bool> {
        crate::calls::mark_placing(Db::from(&self.write), call, node, now).await
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
        let out = events::apply_batch(&mut tx, events, "provider", received_at).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn purge_unknown_events(&self, before: Timestamp, limit: u32) -> Result<u64> {
        crate::events::purge_unknown(crate::sql::Db::from(&self.write), before, limit).await
    }

    async fn stuck_calls(&self, quiet_since: Timestamp, limit: u32) -> Result<Vec<Call>> {
        crate::calls::stuck(Db::from(&self.read), quiet_since, limit).await
    }

    async fn orphaned_calls(&self, node: &str, lease: Duration, now: Timestamp) -> Result<Vec<Call>> {
        crate::calls::orphaned(Db::from(&self.read), Db::from(&self.write), node, lease, now).await
    }

    async fn overdue_calls(&self, now: Timestamp, default_max: Duration, limit: u32) -> Result<Vec<(Call, u64)>> {
        crate::calls::overdue(Db::from(&self.read), now, default_max, limit).await
    }

    async fn touch_call(&self, call: &CallId, now: Timestamp) -> Result<()> {
        crate::calls::touch(Db::from(&self.write), call, now).await
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

    async fn record_inbound_call(&self, entry: &PhoneNumberEntry, provider_call_id: &str, from: &str, now: Timestamp) -> Result<Call> {
        inbound::record_call(&self.write, entry, provider_call_id, from, now).await
    }

    async fn get_call(&self, ws: &WorkspaceId, id: &CallId) -> Result<Option<Call>> {
        crate::calls::get(Db::from(&self.read), ws, id).await
    }

    async fn list_calls(&self, ws: &WorkspaceId, filter: &CallFilter, page: &Page) -> Result<Vec<Call>> {
        crate::calls::list(Db::from(&self.read), ws, filter, page).await
    }

    async fn call_events(&self, ws: &WorkspaceId, id: &CallId) -> Result<Vec<CallEvent>> {
        crate::calls::events_of(Db::from(&self.read), ws, id).await
    }

    async fn active_calls(&self) -> Result<u64> {
        crate::calls::active_count(Db::from(&self.read)).await
    }
});
