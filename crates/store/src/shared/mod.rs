//! The store operations written once for both backends: each statement whose text is the
//! same on SQLite and PostgreSQL runs through [`Db`] (see `crate::sql`), and a backend
//! keeps its own SQL only where the dialects really differ (row locks, `UNNEST`, `LATERAL`),
//! each branch saying why. An operation takes the backend's [`Pools`]: reads go where the
//! backend reads (SQLite: its reader pool), writes where it writes (SQLite: its one writer),
//! and [`Pools::begin`] opens the backend's own write transaction.
//!
//! What a backend does differently stays in `sqlite/` and `postgres/`: claiming, events,
//! recording an inbound call (PostgreSQL's advisory lock and deadlock retries), wake-ups.

pub mod agents;
pub mod batches;
pub mod campaigns;
pub mod idempotency;
pub mod inbound;
pub mod outbox;
pub mod planner;
pub mod provider_accounts;
pub mod single;
pub mod stats;
pub mod steer;
pub mod suppressions;
pub mod workspaces;

use crate::sql::{Arg, Db, Dialect};
use crate::Result;
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool};

/// A backend's pools, as a shared operation needs them.
#[derive(Clone, Copy)]
pub enum Pools<'a> {
    /// One writer connection (SQLite allows one writer anyway) and a pool of readers.
    Sqlite {
        read: &'a SqlitePool,
        write: &'a SqlitePool,
    },
    Postgres(&'a PgPool),
}

impl<'a> Pools<'a> {
    /// Where a read that needs no transaction runs.
    pub fn read(self) -> Db<'a> {
        match self {
            Pools::Sqlite { read, .. } => Db::from(read),
            Pools::Postgres(pool) => Db::from(pool),
        }
    }

    /// Where a write of one statement runs (its own implicit transaction).
    pub fn write(self) -> Db<'a> {
        match self {
            Pools::Sqlite { write, .. } => Db::from(write),
            Pools::Postgres(pool) => Db::from(pool),
        }
    }

    /// Opens a write transaction: SQLite `BEGIN IMMEDIATE` on the writer (it takes the write
    /// lock at once, so a read inside never has to be upgraded), PostgreSQL `BEGIN` (READ
    /// COMMITTED; rows are locked by the statements that need them).
    pub async fn begin(self) -> Result<Tx> {
        Ok(match self {
            Pools::Sqlite { write, .. } => Tx::Sqlite(write.begin_with("BEGIN IMMEDIATE").await?),
            Pools::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }
}

/// A backend's write transaction. Dropped without [`Tx::commit`], it rolls back.
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    /// The transaction's connection, for the statements to run inside it.
    pub fn db(&mut self) -> Db<'_> {
        match self {
            Tx::Sqlite(tx) => Db::from(tx),
            Tx::Postgres(tx) => Db::from(tx),
        }
    }

    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

/// PostgreSQL only: runs `sql`, a `SELECT … FOR UPDATE`/`FOR SHARE` that locks the rows a
/// decision depends on before the statements that follow look at them (several nodes write
/// at once, and under READ COMMITTED each statement sees what was committed before it
/// started). On SQLite it does nothing: its one writer's `BEGIN IMMEDIATE` transaction
/// already excludes every other writer.
pub async fn pg_lock(db: &mut Db<'_>, sql: &str, args: Vec<Arg>) -> Result<()> {
    if db.dialect() == Dialect::Postgres {
        db.execute(sql, args).await?;
    }
    Ok(())
}

/// `$from, $from+1, …`: `n` numbered placeholders, for `IN (…)` over a short list whose
/// length the code bounds (a filter's statuses). A list whose length comes from the data
/// (ids) is one JSON argument instead, `crate::sql::in_json_list`: one `$N` per id makes a
/// new statement text per length and costs SQLite O(N²) to bind.
pub fn placeholders(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// `impl Store for $store { … }`: the operations written once here (each handed the
/// store's `self.pools()`), followed by the backend's own items (`$own`: migrations,
/// claims, events, call reads, leases, wakes, inbound recording).
macro_rules! impl_store {
    ($store:ty { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::Store for $store {
            fn keyring(&self) -> Option<&$crate::secrets::Keyring> {
                self.keyring.as_deref()
            }

            async fn create_provider_account(&self, ws: &dialtone_core::WorkspaceId, new: &$crate::NewProviderAccount, now: jiff::Timestamp) -> $crate::Result<$crate::ProviderAccount> {
                let keyring = self.keyring.as_deref().ok_or($crate::StoreError::NoMasterKey)?;
                $crate::shared::provider_accounts::create(self.pools(), ws, new, keyring, now).await
            }

            async fn get_provider_account(&self, ws: &dialtone_core::WorkspaceId, id: &str) -> $crate::Result<Option<$crate::ProviderAccount>> {
                $crate::shared::provider_accounts::get(self.pools(), ws, id).await
            }

            async fn find_provider_account(&self, id: &str) -> $crate::Result<Option<$crate::ProviderAccount>> {
                $crate::shared::provider_accounts::find(self.pools(), id).await
            }

            async fn call_account(&self, call: &dialtone_core::CallId)
                -> $crate::Result<Option<(dialtone_core::ProviderKind, Option<dialtone_core::ProviderAccountId>)>> {
                $crate::shared::provider_accounts::of_call(self.pools(), call).await
            }

            async fn list_provider_accounts(&self, ws: &dialtone_core::WorkspaceId, page: &$crate::Page) -> $crate::Result<Vec<$crate::ProviderAccount>> {
                $crate::shared::provider_accounts::list(self.pools(), ws, page).await
            }

            async fn update_provider_account(&self, ws: &dialtone_core::WorkspaceId, id: &str, patch: &$crate::ProviderAccountPatch, now: jiff::Timestamp) -> $crate::Result<Option<$crate::ProviderAccount>> {
                $crate::shared::provider_accounts::update(self.pools(), ws, id, patch, self.keyring.as_deref(), now).await
            }

            async fn provider_account_secrets(&self, id: &str) -> $crate::Result<Option<std::collections::BTreeMap<String, secrecy::SecretString>>> {
                let keyring = self.keyring.as_deref().ok_or($crate::StoreError::NoMasterKey)?;
                $crate::shared::provider_accounts::account_secrets(self.pools(), id, keyring).await
            }

            async fn rotate_secrets(&self) -> $crate::Result<u64> {
                let keyring = self.keyring.as_deref().ok_or($crate::StoreError::NoMasterKey)?;
                $crate::shared::provider_accounts::rotate_secrets(self.pools(), keyring).await
            }

            async fn create_webhook_endpoint(&self, ws: &dialtone_core::WorkspaceId, new: &$crate::NewWebhookEndpoint, secret: &secrecy::SecretString, now: jiff::Timestamp) -> $crate::Result<$crate::WebhookEndpoint> {
                $crate::shared::outbox::create(self.pools(), ws, new, secret, self.keyring.as_deref(), now).await
            }

            async fn get_webhook_endpoint(&self, ws: &dialtone_core::WorkspaceId, id: &str) -> $crate::Result<Option<$crate::WebhookEndpoint>> {
                $crate::shared::outbox::get(self.pools(), ws, id, self.keyring.as_deref()).await
            }

            async fn list_webhook_endpoints(&self, ws: &dialtone_core::WorkspaceId, page: &$crate::Page) -> $crate::Result<Vec<$crate::WebhookEndpoint>> {
                $crate::shared::outbox::list(self.pools(), ws, page, self.keyring.as_deref()).await
            }

            async fn update_webhook_endpoint(&self, ws: &dialtone_core::WorkspaceId, id: &str, patch: &$crate::WebhookEndpointPatch, now: jiff::Timestamp) -> $crate::Result<Option<$crate::WebhookEndpoint>> {
                $crate::shared::outbox::update(self.pools(), ws, id, patch, self.keyring.as_deref(), now).await
            }

            async fn delete_webhook_endpoint(&self, ws: &dialtone_core::WorkspaceId, id: &str) -> $crate::Result<bool> {
                $crate::shared::outbox::delete(self.pools(), ws, id).await
            }

            async fn rotate_webhook_secret(&self, ws: &dialtone_core::WorkspaceId, id: &str, secret: &secrecy::SecretString, now: jiff::Timestamp) -> $crate::Result<Option<$crate::WebhookEndpoint>> {
                $crate::shared::outbox::rotate_secret(self.pools(), ws, id, secret, self.keyring.as_deref(), now).await
            }

            async fn emit_events(&self, events: &[$crate::OutboxEvent], now: jiff::Timestamp) -> $crate::Result<()> {
                $crate::shared::outbox::emit_now(self.pools(), events, now).await
            }

            async fn claim_deliveries_except(
                &self,
                node: &str,
                now: jiff::Timestamp,
                lease: jiff::SignedDuration,
                limit: u32,
                fan_out: u32,
                skip: &[dialtone_core::WebhookEndpointId],
            ) -> $crate::Result<Vec<$crate::Claimed>> {
                let limits = $crate::shared::outbox::ClaimLimits { deliveries: limit, fan_out };
                $crate::shared::outbox::claim(self.pools(), node, now, lease, limits, skip, self.keyring.as_deref()).await
            }

            async fn give_back_deliveries(&self, node: &str, deliveries: &[$crate::Delivery]) -> $crate::Result<u64> {
                $crate::shared::outbox::give_back(self.pools(), node, deliveries).await
            }

            async fn finish_delivery(&self, delivery: &$crate::Delivery, attempt: u32, node: &str, result: &$crate::TryResult, now: jiff::Timestamp) -> $crate::Result<bool> {
                $crate::shared::outbox::finish(self.pools(), delivery, attempt, node, result, now).await
            }

            async fn finish_deliveries(&self, tries: &[$crate::FinishedTry], node: &str, now: jiff::Timestamp) -> $crate::Result<Vec<bool>> {
                $crate::shared::outbox::finish_many(self.pools(), tries, node, now).await
            }

            async fn list_deliveries(&self, ws: &dialtone_core::WorkspaceId, endpoint: &str, page: &$crate::Page) -> $crate::Result<Vec<($crate::Delivery, Vec<$crate::DeliveryAttempt>)>> {
                $crate::shared::outbox::deliveries(self.pools(), ws, endpoint, page).await
            }

            async fn campaign_workspace(&self, campaign: &str) -> $crate::Result<Option<dialtone_core::WorkspaceId>> {
                $crate::shared::outbox::campaign_workspace(self.pools(), campaign).await
            }

            async fn replay_delivery(&self, ws: &dialtone_core::WorkspaceId, endpoint: &str, message: &str, now: jiff::Timestamp) -> $crate::Result<bool> {
                $crate::shared::outbox::replay(self.pools(), ws, endpoint, message, now).await
            }

            async fn mark_placing(&self, call: &dialtone_core::CallId, node: &str, now: jiff::Timestamp) -> $crate::Result<bool> {
                $crate::calls::mark_placing(self.pools().write(), call, node, now).await
            }

            async fn mark_dialed(&self, call: &dialtone_core::CallId, provider_call_id: &str, now: jiff::Timestamp) -> $crate::Result<bool> {
                let started = $crate::calls::mark_dialed_committed(self.pools(), &[(call.clone(), provider_call_id.to_string())], now).await?;
                Ok(started[0])
            }

            async fn mark_dialed_many(&self, calls: &[(dialtone_core::CallId, String)], now: jiff::Timestamp) -> $crate::Result<Vec<bool>> {
                $crate::calls::mark_dialed_committed(self.pools(), calls, now).await
            }

            async fn release_unsent(&self, call: &dialtone_core::CallId, reason: &str, now: jiff::Timestamp) -> $crate::Result<bool> {
                $crate::calls::release_unsent(self.pools(), call, reason, now).await
            }

            async fn purge_unknown_events(&self, before: jiff::Timestamp, limit: u32) -> $crate::Result<u64> {
                $crate::events::purge_unknown(self.pools().write(), before, limit).await
            }

            async fn stuck_calls(&self, quiet_since: jiff::Timestamp, limit: u32) -> $crate::Result<Vec<$crate::Call>> {
                $crate::calls::stuck(self.pools().read(), quiet_since, limit).await
            }

            async fn orphaned_calls(&self, node: &str, lease: std::time::Duration, now: jiff::Timestamp, busy: &std::collections::HashSet<dialtone_core::CallId>) -> $crate::Result<Vec<$crate::Call>> {
                $crate::calls::orphaned(self.pools().read(), self.pools().write(), node, lease, now, busy).await
            }

            async fn overdue_calls(&self, now: jiff::Timestamp, default_max: std::time::Duration, limit: u32) -> $crate::Result<Vec<($crate::Call, u64)>> {
                $crate::calls::overdue(self.pools().read(), now, default_max, limit).await
            }

            async fn other_live_nodes(&self, node: &str, lease: std::time::Duration, now: jiff::Timestamp) -> $crate::Result<u64> {
                $crate::calls::other_live_nodes(self.pools().read(), node, lease, now).await
            }

            async fn touch_call(&self, call: &dialtone_core::CallId, now: jiff::Timestamp) -> $crate::Result<()> {
                $crate::calls::touch(self.pools().write(), call, now).await
            }

            async fn get_call(&self, ws: &dialtone_core::WorkspaceId, id: &dialtone_core::CallId) -> $crate::Result<Option<$crate::Call>> {
                $crate::calls::get(self.pools().read(), ws, id).await
            }

            async fn list_calls(&self, ws: &dialtone_core::WorkspaceId, filter: &$crate::CallFilter, page: &$crate::Page) -> $crate::Result<Vec<$crate::Call>> {
                $crate::calls::list(self.pools().read(), ws, filter, page).await
            }

            async fn call_events(&self, ws: &dialtone_core::WorkspaceId, id: &dialtone_core::CallId) -> $crate::Result<Vec<$crate::CallEvent>> {
                $crate::calls::events_of(self.pools().read(), ws, id).await
            }

            async fn active_calls(&self) -> $crate::Result<u64> {
                $crate::calls::active_count(self.pools().read()).await
            }

            async fn default_workspace(&self) -> $crate::Result<dialtone_core::WorkspaceId> {
                $crate::shared::workspaces::default_workspace(self.pools()).await
            }

            async fn create_api_key(&self, ws: &dialtone_core::WorkspaceId, name: &str, key_hash: &str, now: jiff::Timestamp) -> $crate::Result<dialtone_core::ApiKeyId> {
                $crate::shared::workspaces::create_api_key(self.pools(), ws, name, key_hash, now).await
            }

            async fn find_api_key(&self, key_hash: &str) -> $crate::Result<Option<(dialtone_core::ApiKeyId, dialtone_core::WorkspaceId)>> {
                $crate::shared::workspaces::find_api_key(self.pools(), key_hash).await
            }

            async fn set_account_limit(&self, provider: dialtone_core::ProviderKind, max_concurrent: Option<u32>, now: jiff::Timestamp) -> $crate::Result<()> {
                $crate::shared::workspaces::set_account_limit(self.pools(), provider, max_concurrent, now).await
            }

            async fn list_contacts_filtered(&self, ws: &dialtone_core::WorkspaceId, campaign: &dialtone_core::CampaignId, filter: &$crate::ContactFilter, page: &$crate::Page) -> $crate::Result<Vec<$crate::Contact>> {
                $crate::shared::steer::list_contacts(self.pools(), ws, campaign, filter, page).await
            }

            async fn pending_groups(&self, campaign: &dialtone_core::CampaignId, now: jiff::Timestamp) -> $crate::Result<Vec<$crate::PendingGroup>> {
                $crate::shared::steer::pending_groups(self.pools(), campaign, now).await
            }

            async fn update_campaign(&self, ws: &dialtone_core::WorkspaceId, id: &dialtone_core::CampaignId, patch: &$crate::CampaignPatch, now: jiff::Timestamp) -> $crate::Result<$crate::Campaign> {
                $crate::shared::steer::update(self.pools(), ws, id, patch, now).await
            }

            async fn archive_campaign(&self, ws: &dialtone_core::WorkspaceId, id: &dialtone_core::CampaignId, now: jiff::Timestamp) -> $crate::Result<$crate::Archived> {
                $crate::shared::steer::archive(self.pools(), ws, id, now).await
            }

            async fn list_campaigns_archived(&self, ws: &dialtone_core::WorkspaceId, archived: bool, page: &$crate::Page) -> $crate::Result<Vec<$crate::Campaign>> {
                $crate::shared::steer::list_campaigns(self.pools(), ws, archived, page).await
            }

            async fn create_batch(&self, new: $crate::NewCampaign, contacts: &[$crate::NewContact], start_at: Option<jiff::Timestamp>,
                now: jiff::Timestamp) -> $crate::Result<$crate::Campaign> {
                $crate::shared::batches::create(self.pools(), new, contacts, start_at, now).await
            }

            async fn list_batches(&self, ws: &dialtone_core::WorkspaceId, page: &$crate::Page) -> $crate::Result<Vec<$crate::Campaign>> {
                $crate::shared::batches::list(self.pools(), ws, page).await
            }

            async fn variable_keys(&self, campaign: &dialtone_core::CampaignId) -> $crate::Result<Vec<String>> {
                $crate::shared::steer::variable_keys(self.pools(), campaign).await
            }

            async fn export_page(&self, campaign: &dialtone_core::CampaignId, after: Option<&str>, limit: u32) -> $crate::Result<Vec<$crate::ExportRow>> {
                $crate::shared::steer::export_page(self.pools(), campaign, after, limit).await
            }

            async fn create_campaign(&self, new: $crate::NewCampaign, now: jiff::Timestamp) -> $crate::Result<$crate::Campaign> {
                $crate::shared::campaigns::create(self.pools(), new, now).await
            }

            async fn get_campaign(&self, ws: &dialtone_core::WorkspaceId, id: &dialtone_core::CampaignId) -> $crate::Result<Option<$crate::Campaign>> {
                $crate::shared::campaigns::get(self.pools(), ws, id).await
            }

            async fn list_campaigns(&self, ws: &dialtone_core::WorkspaceId, page: &$crate::Page) -> $crate::Result<Vec<$crate::Campaign>> {
                $crate::shared::campaigns::list(self.pools(), ws, page).await
            }

            async fn campaign_counts_many(&self, ids: &[dialtone_core::CampaignId]) -> $crate::Result<std::collections::HashMap<dialtone_core::CampaignId, $crate::CampaignCounts>> {
                $crate::shared::campaigns::counts(self.pools(), ids).await
            }

            async fn transition_campaign(&self, ws: &dialtone_core::WorkspaceId, id: &dialtone_core::CampaignId, from: &[dialtone_core::CampaignStatus],
                to: dialtone_core::CampaignStatus, now: jiff::Timestamp) -> $crate::Result<bool> {
                $crate::shared::campaigns::transition(self.pools(), ws, id, from, to, now).await
            }

            async fn cancel_campaign(&self, ws: &dialtone_core::WorkspaceId, id: &dialtone_core::CampaignId, now: jiff::Timestamp) -> $crate::Result<bool> {
                $crate::shared::campaigns::cancel(self.pools(), ws, id, now).await
            }

            async fn complete_if_done(&self, id: &dialtone_core::CampaignId, now: jiff::Timestamp) -> $crate::Result<bool> {
                $crate::shared::campaigns::complete_if_done(self.pools(), id, now).await
            }

            async fn runnable_campaigns(&self, now: jiff::Timestamp) -> $crate::Result<Vec<dialtone_core::CampaignId>> {
                $crate::shared::campaigns::runnable(self.pools(), now).await
            }

            async fn insert_contacts(&self, ws: &dialtone_core::WorkspaceId, campaign: &dialtone_core::CampaignId, contacts: &[$crate::NewContact],
                now: jiff::Timestamp) -> $crate::Result<$crate::InsertReport> {
                $crate::shared::campaigns::insert_contacts(self.pools(), ws, campaign, contacts, now).await
            }

            async fn get_contact(&self, ws: &dialtone_core::WorkspaceId, id: &dialtone_core::ContactId) -> $crate::Result<Option<$crate::Contact>> {
                $crate::shared::campaigns::get_contact(self.pools(), ws, id).await
            }

            async fn list_contacts(&self, ws: &dialtone_core::WorkspaceId, campaign: &dialtone_core::CampaignId, page: &$crate::Page) -> $crate::Result<Vec<$crate::Contact>> {
                $crate::shared::campaigns::list_contacts(self.pools(), ws, campaign, page).await
            }

            async fn retry_contact_now(&self, ws: &dialtone_core::WorkspaceId, id: &dialtone_core::ContactId, now: jiff::Timestamp) -> $crate::Result<bool> {
                $crate::shared::campaigns::retry_contact_now(self.pools(), ws, id, now).await
            }

            async fn cancel_contact(&self, ws: &dialtone_core::WorkspaceId, id: &dialtone_core::ContactId, now: jiff::Timestamp) -> $crate::Result<bool> {
                $crate::shared::campaigns::cancel_contact(self.pools(), ws, id, now).await
            }

            async fn add_suppressions(&self, ws: &dialtone_core::WorkspaceId, campaign: Option<&dialtone_core::CampaignId>, phones: &[dialtone_core::PhoneNumber],
                reason: Option<&str>, now: jiff::Timestamp) -> $crate::Result<u64> {
                $crate::shared::suppressions::add(self.pools(), ws, campaign, phones, reason, now).await
            }

            async fn remove_suppression(&self, ws: &dialtone_core::WorkspaceId, campaign: Option<&dialtone_core::CampaignId>, phone: &dialtone_core::PhoneNumber) -> $crate::Result<bool> {
                $crate::shared::suppressions::remove(self.pools(), ws, campaign, phone).await
            }

            async fn suppressions_for(&self, ws: &dialtone_core::WorkspaceId, campaign: Option<&dialtone_core::CampaignId>, phone: &dialtone_core::PhoneNumber)
                -> $crate::Result<Vec<$crate::Suppression>> {
                $crate::shared::suppressions::matching(self.pools(), ws, campaign, phone).await
            }

            async fn list_suppressions(&self, ws: &dialtone_core::WorkspaceId, campaign: Option<&dialtone_core::CampaignId>, page: &$crate::Page)
                -> $crate::Result<Vec<$crate::Suppression>> {
                $crate::shared::suppressions::list(self.pools(), ws, campaign, page).await
            }

            async fn upsert_assistant(&self, ws: &dialtone_core::WorkspaceId, assistant: &$crate::Assistant, now: jiff::Timestamp) -> $crate::Result<()> {
                $crate::shared::single::upsert_assistant(self.pools(), ws, assistant, now).await
            }

            async fn get_assistant(&self, ws: &dialtone_core::WorkspaceId, id: &str) -> $crate::Result<Option<$crate::Assistant>> {
                $crate::shared::single::get_assistant(self.pools(), ws, id).await
            }

            async fn list_assistants(&self, ws: &dialtone_core::WorkspaceId) -> $crate::Result<Vec<$crate::Assistant>> {
                $crate::shared::single::list_assistants(self.pools(), ws).await
            }

            async fn create_single_call(&self, new: $crate::NewSingleCall, now: jiff::Timestamp) -> $crate::Result<$crate::Call> {
                $crate::shared::single::create(self.pools(), new, now).await
            }

            async fn reschedule_call(&self, ws: &dialtone_core::WorkspaceId, id: &dialtone_core::CallId, at: jiff::Timestamp, now: jiff::Timestamp) -> $crate::Result<bool> {
                $crate::shared::single::reschedule(self.pools(), ws, id, at, now).await
            }

            async fn cancel_scheduled_call(&self, ws: &dialtone_core::WorkspaceId, id: &dialtone_core::CallId, now: jiff::Timestamp) -> $crate::Result<bool> {
                $crate::shared::single::cancel(self.pools(), ws, id, now).await
            }

            async fn add_phone_number(&self, ws: &dialtone_core::WorkspaceId, number: &dialtone_core::PhoneNumber, provider: dialtone_core::ProviderKind,
                assistant_id: &str, name: Option<&str>, now: jiff::Timestamp) -> $crate::Result<$crate::PhoneNumberEntry> {
                $crate::shared::inbound::add_number(self.pools(), ws, number, provider, assistant_id, name, now).await
            }

            async fn list_phone_numbers(&self, ws: &dialtone_core::WorkspaceId) -> $crate::Result<Vec<$crate::PhoneNumberEntry>> {
                $crate::shared::inbound::list_numbers(self.pools(), ws).await
            }

            async fn remove_phone_number(&self, ws: &dialtone_core::WorkspaceId, number: &dialtone_core::PhoneNumber) -> $crate::Result<bool> {
                $crate::shared::inbound::remove_number(self.pools(), ws, number).await
            }

            async fn find_phone_number(&self, number: &str) -> $crate::Result<Option<$crate::PhoneNumberEntry>> {
                $crate::shared::inbound::find_number(self.pools(), number).await
            }

            async fn create_agent(&self, agent: &dialtone_core::Agent) -> $crate::Result<()> {
                $crate::shared::agents::create(self.pools(), agent).await
            }

            async fn get_agent(&self, ws: &dialtone_core::WorkspaceId, id: &dialtone_core::AgentId) -> $crate::Result<Option<dialtone_core::Agent>> {
                $crate::shared::agents::get(self.pools(), ws, id).await
            }

            async fn list_agents(&self, ws: &dialtone_core::WorkspaceId, page: &$crate::Page) -> $crate::Result<Vec<dialtone_core::Agent>> {
                $crate::shared::agents::list(self.pools(), ws, page).await
            }

            async fn update_agent(&self, agent: &dialtone_core::Agent) -> $crate::Result<bool> {
                $crate::shared::agents::update(self.pools(), agent).await
            }

            async fn delete_agent(&self, ws: &dialtone_core::WorkspaceId, id: &dialtone_core::AgentId, now: jiff::Timestamp) -> $crate::Result<bool> {
                $crate::shared::agents::delete(self.pools(), ws, id, now).await
            }

            async fn agent_for_call(&self, call: &dialtone_core::CallId) -> $crate::Result<Option<dialtone_core::Agent>> {
                $crate::shared::agents::for_call(self.pools(), call).await
            }

            async fn agents_in_use(&self, limit: u32) -> $crate::Result<Vec<dialtone_core::Agent>> {
                $crate::shared::agents::in_use(self.pools(), limit).await
            }

            async fn save_transcript(&self, call: &dialtone_core::CallId, turns: &[dialtone_core::TranscriptTurn], voicemail_left: bool,
                now: jiff::Timestamp) -> $crate::Result<bool> {
                $crate::shared::agents::save_transcript(self.pools(), call, turns, voicemail_left, now).await
            }

            async fn list_api_keys(&self, ws: &dialtone_core::WorkspaceId) -> $crate::Result<Vec<$crate::ApiKeyInfo>> {
                $crate::shared::workspaces::list_api_keys(self.pools(), ws).await
            }

            async fn set_api_key_prefix(&self, id: &dialtone_core::ApiKeyId, prefix: &str) -> $crate::Result<()> {
                $crate::shared::workspaces::set_api_key_prefix(self.pools(), id, prefix).await
            }

            async fn revoke_api_key(&self, ws: &dialtone_core::WorkspaceId, id: &str, now: jiff::Timestamp) -> $crate::Result<bool> {
                $crate::shared::workspaces::revoke_api_key(self.pools(), ws, id, now).await
            }

            async fn touch_api_key(&self, id: &dialtone_core::ApiKeyId, now: jiff::Timestamp) -> $crate::Result<()> {
                $crate::shared::workspaces::touch_api_key(self.pools(), id, now).await
            }

            async fn authenticate_api_key(&self, key_hash: &str) -> $crate::Result<Option<$crate::KeyGrant>> {
                $crate::shared::workspaces::authenticate(self.pools(), key_hash).await
            }

            async fn create_scoped_api_key(&self, ws: &dialtone_core::WorkspaceId, name: &str, key_hash: &str, prefix: &str, scopes: &str,
                now: jiff::Timestamp) -> $crate::Result<dialtone_core::ApiKeyId> {
                $crate::shared::workspaces::create_scoped_api_key(self.pools(), ws, name, key_hash, prefix, scopes, now).await
            }

            async fn api_key_workspace(&self, id: &str) -> $crate::Result<Option<dialtone_core::WorkspaceId>> {
                $crate::shared::workspaces::api_key_workspace(self.pools(), id).await
            }

            async fn create_workspace(&self, name: &str, now: jiff::Timestamp) -> $crate::Result<$crate::Workspace> {
                $crate::shared::workspaces::create_workspace(self.pools(), name, now).await
            }

            async fn list_workspaces(&self) -> $crate::Result<Vec<$crate::Workspace>> {
                $crate::shared::workspaces::list_workspaces(self.pools()).await
            }

            async fn get_workspace(&self, id: &str) -> $crate::Result<Option<$crate::Workspace>> {
                $crate::shared::workspaces::get_workspace(self.pools(), id).await
            }

            async fn update_workspace(&self, id: &str, name: Option<&str>, disabled: Option<bool>, now: jiff::Timestamp)
                -> $crate::Result<Option<$crate::Workspace>> {
                $crate::shared::workspaces::update_workspace(self.pools(), id, name, disabled, now).await
            }

            async fn set_caller_number_daily_limit(&self, id: &str, limit: Option<u32>, now: jiff::Timestamp) -> $crate::Result<Option<$crate::Workspace>> {
                $crate::shared::workspaces::set_caller_number_daily_limit(self.pools(), id, limit, now).await
            }

            async fn save_call_report(&self, call: &dialtone_core::CallId, report: &dialtone_core::CallReport, now: jiff::Timestamp) -> $crate::Result<bool> {
                $crate::calls::save_report(self.pools().write(), call, report, now).await
            }

            async fn save_call_reports(&self, reports: &[(&dialtone_core::CallId, &dialtone_core::CallReport)], now: jiff::Timestamp) -> $crate::Result<()> {
                $crate::calls::save_reports(self.pools(), reports, now).await
            }

            async fn stats(&self, q: &$crate::StatsQuery) -> $crate::Result<$crate::Stats> {
                $crate::shared::stats::stats(self.pools(), q).await
            }

            async fn stats_raw(&self, q: &$crate::StatsQuery) -> $crate::Result<$crate::Stats> {
                $crate::shared::stats::stats_raw(self.pools(), q).await
            }

            async fn refresh_stats(&self) -> $crate::Result<u64> {
                $crate::shared::stats::refresh(self.pools()).await
            }

            async fn failure_window(&self, since: jiff::Timestamp) -> $crate::Result<Vec<$crate::WindowCount>> {
                $crate::shared::stats::failure_window(self.pools(), since).await
            }

            async fn begin_idempotent(&self, ws: &dialtone_core::WorkspaceId, key: &str, request: &str, now: jiff::Timestamp) -> $crate::Result<$crate::Begun> {
                $crate::shared::idempotency::begin(self.pools(), self.keyring.as_deref(), ws, key, request, now).await
            }

            async fn finish_idempotent(&self, ws: &dialtone_core::WorkspaceId, key: &str, body_sha256: &str, response: &$crate::StoredResponse)
                -> $crate::Result<bool> {
                $crate::shared::idempotency::finish(self.pools(), self.keyring.as_deref(), ws, key, body_sha256, response).await
            }

            async fn abandon_idempotent(&self, ws: &dialtone_core::WorkspaceId, key: &str) -> $crate::Result<()> {
                $crate::shared::idempotency::abandon(self.pools(), ws, key).await
            }

            async fn purge_idempotency_keys(&self, now: jiff::Timestamp, limit: u32) -> $crate::Result<u64> {
                $crate::shared::idempotency::purge(self.pools(), now, limit).await
            }

            $($own)*
        }
    };
}
pub(crate) use impl_store;

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_number_on_from_where_the_statement_left_off() {
        assert_eq!(placeholders(5, 3), "$5, $6, $7");
        assert_eq!(placeholders(1, 1), "$1");
    }
}
