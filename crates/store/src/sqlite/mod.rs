//! The embedded SQLite backend: one file, WAL mode, one writer connection (SQLite allows
//! one writer anyway; a single connection means our own writes never contend) and a small
//! pool of readers.

mod calls;
pub(crate) mod events;
mod inbound;

use crate::shared::{impl_store, suppressions, Pools};
use crate::*;
use dialtone_core::{CallId, CampaignId, Outcome, ProviderEvent};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::str::FromStr;
use std::time::Duration;

pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
    /// Seals and opens the secrets stored (see [`crate::secrets`]); `None`: no master key.
    keyring: Option<std::sync::Arc<crate::secrets::Keyring>>,
    /// Each engine table's highest rowid when this process last analysed it
    /// (`crate::shared::planner::analyze_sqlite_if_grown`).
    analysed: crate::shared::planner::Analysed,
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
        // The writer's page cache: 64 MiB rather than SQLite's 2 MB, so the pages a run keeps
        // touching (the tails of `call_events` and `calls`, their indexes) stay in it instead
        // of being read back from the OS after each eviction; statement journals in memory.
        let writer = options.clone().pragma("cache_size", "-65536").pragma("temp_store", "memory");
        // No ping before each acquire (sqlx's default): an in-process SQLite connection does
        // not die the way a network one does, and the ping is a round trip to the
        // connection's worker thread (two thread wake-ups) before every transaction and read.
        let write = SqlitePoolOptions::new().max_connections(1).test_before_acquire(false).connect_with(writer).await?;
        // Readers connect lazily, so none holds the schema as it was before `migrate`: a
        // reader that had loaded it kept statements of the old shape (a `SELECT *` over a
        // rebuilt table read one row's 24 columns as 26, and sqlx panicked) until it reconnected.
        let read = SqlitePoolOptions::new().max_connections(4).test_before_acquire(false).connect_lazy_with(options.read_only(true));
        Ok(Self { write, read, keyring: None, analysed: Default::default() })
    }

    /// The store, sealing and opening its secrets with `keyring`.
    pub fn with_keyring(mut self, keyring: Option<crate::secrets::Keyring>) -> Self {
        self.keyring = keyring.map(std::sync::Arc::new);
        self
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

    async fn claim_placing(
        &self,
        campaigns: &[CampaignId],
        placing: &std::collections::HashSet<CampaignId>,
        node: &str,
        now: Timestamp,
    ) -> Result<std::collections::HashMap<CampaignId, Vec<Dial>>> {
        // One writer: campaign by campaign, so each one's calls start as soon as it is claimed.
        let mut out = std::collections::HashMap::new();
        for campaign in campaigns {
            let dials = calls::claim(&self.write, campaign, placing.contains(campaign), node, now).await?;
            if !dials.is_empty() {
                out.insert(campaign.clone(), dials);
            }
        }
        Ok(out)
    }

    async fn analyze_grown(&self) -> Result<Vec<String>> {
        crate::shared::planner::analyze_sqlite_if_grown(&self.write, &self.analysed, crate::shared::planner::ENGINE_TABLES).await
    }

    async fn mark_placing_many(&self, calls: &[CallId], node: &str, now: Timestamp) -> Result<Vec<bool>> {
        calls::mark_placing_many(&self.write, calls, node, now).await
    }

    async fn end_call(&self, call: &CallId, outcome: Outcome, reason: &str, now: Timestamp) -> Result<Option<Applied>> {
        calls::end_call(&self.write, call, outcome, reason, now).await
    }

    async fn apply_events(&self, events: &[ProviderEvent], received_at: Timestamp) -> Result<Vec<Applied>> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        let out = events::apply_batch(&mut tx, events, "provider", received_at).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// One transaction for the events and their reports: one commit per ingest batch, in
    /// the one writer's queue every engine write waits in (see the trait's default).
    async fn apply_events_with_reports(&self, events: &[ProviderEvent], received_at: Timestamp) -> Result<Vec<Applied>> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        let out = events::apply_batch(&mut tx, events, "provider", received_at).await?;
        crate::calls::save_reports_in(crate::sql::Db::from(&mut *tx), &crate::reports_of(events, &out), received_at).await?;
        tx.commit().await?;
        Ok(out)
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

});

#[cfg(test)]
mod tests {
    use sqlx::{Connection, SqliteConnection};

    /// `.cargo/config.toml` builds the bundled SQLite without memory statistics (a mutex
    /// around every `sqlite3_malloc`/`sqlite3_free`); a build that lost the flag fails here.
    #[tokio::test]
    async fn the_bundled_sqlite_keeps_no_memory_statistics() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let options: Vec<String> = sqlx::query_scalar("PRAGMA compile_options").fetch_all(&mut conn).await.unwrap();
        assert!(options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"), "{options:?}");
    }
}
