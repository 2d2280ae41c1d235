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
pub(crate) mod events;
mod inbound;
mod renumber;
mod wakes;

use crate::shared::{impl_store, Pools};
use crate::*;
use dialtone_core::{CallId, CampaignId, Outcome, ProviderEvent};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;

/// The engine's connections plan each prepared statement once and keep that generic plan.
/// Left to itself (`plan_cache_mode = auto`) PostgreSQL re-plans a statement whose generic
/// plan it estimates dearer than the custom plans it has made, and the engine's statements
/// take arrays (`= ANY($1)`, `UNNEST`) whose custom plans always look cheaper: every group
/// commit and claim was planned again (`GetCachedPlan` 6–10 % of the server's samples,
/// BENCHMARKS.md). Their plans do not depend on the values (the same indexes whatever the
/// ids), and an `ANALYZE` (`Store::analyze_grown`) still replaces a plan made on an empty
/// table. The API's reads keep `auto`: a page with `LIMIT $n`, or `$2 IS NULL OR …`, is
/// better planned with its values. <https://www.postgresql.org/docs/15/runtime-config-query.html#GUC-PLAN-CACHE_MODE>
const ENGINE_PLANS: (&str, &str) = ("plan_cache_mode", "force_generic_plan");

pub struct PostgresStore {
    pool: PgPool,
    /// The engine's hot writes (webhook group commits, claims, engine-ended calls): a few
    /// connections of their own that plan every statement once (`plan_cache_mode =
    /// force_generic_plan`, see [`ENGINE_PLANS`]).
    engine: PgPool,
    /// Seals and opens the secrets stored (see [`crate::secrets`]); `None`: no master key.
    keyring: Option<std::sync::Arc<crate::secrets::Keyring>>,
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
        let pool_options = || PgPoolOptions::new().acquire_timeout(Duration::from_secs(10)).test_before_acquire(true);
        let pool = pool_options().max_connections(16).connect_with(options.clone()).await?;
        // The ingest writer's one connection, two claiming lanes, an engine-ended call.
        let engine = pool_options().max_connections(4).connect_lazy_with(options.clone().options([ENGINE_PLANS]));
        Ok(Self { pool, engine, options, ingest: tokio::sync::Mutex::new(None), keyring: None })
    }

    /// The pool, for tests and tools that need to look under the trait.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The engine's own pool ([`ENGINE_PLANS`]), for tests that look under the trait.
    pub fn engine_pool(&self) -> &PgPool {
        &self.engine
    }

    /// The store, sealing and opening its secrets with `keyring`.
    pub fn with_keyring(mut self, keyring: Option<crate::secrets::Keyring>) -> Self {
        self.keyring = keyring.map(std::sync::Arc::new);
        self
    }

    fn pools(&self) -> Pools<'_> {
        Pools::Postgres(&self.pool)
    }
}

// The operations written once (`crate::shared`), then PostgreSQL's own.
impl_store!(PostgresStore {
    fn concurrent_writers(&self) -> usize {
        2
    }

    async fn migrate(&self) -> Result<()> {
        // A database migrated under PostgreSQL's old numbering is renumbered first (see
        // renumber.rs). sqlx takes an advisory lock, so nodes starting together migrate once.
        renumber::renumber_old_layout(&self.pool).await?;
        sqlx::migrate!("./migrations/postgres").run(&self.pool).await?;
        Ok(())
    }

    async fn claim_placing(
        &self,
        campaigns: &[CampaignId],
        placing: &std::collections::HashSet<CampaignId>,
        node: &str,
        now: Timestamp,
    ) -> Result<std::collections::HashMap<CampaignId, Vec<Dial>>> {
        calls::claim(&self.engine, campaigns, placing, node, now).await
    }

    async fn analyze_grown(&self) -> Result<Vec<String>> {
        crate::shared::planner::analyze_if_grown(&mut crate::sql::Db::from(&self.pool), crate::shared::planner::ENGINE_TABLES).await
    }

    async fn end_call(&self, call: &CallId, outcome: Outcome, reason: &str, now: Timestamp) -> Result<Option<Applied>> {
        calls::end_call(&self.engine, call, outcome, reason, now).await
    }

    async fn apply_events(&self, events: &[ProviderEvent], received_at: Timestamp) -> Result<Vec<Applied>> {
        let mut held = self.ingest.lock().await;
        if held.is_none() {
            *held = Some(self.engine.acquire().await?);
        }
        let conn = held.as_mut().expect("a connection was just put there");
        let applied = events::apply_batch(conn, events, "provider", received_at).await;
        if applied.is_err() {
            *held = None;
        }
        applied
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

    async fn record_inbound_call(&self, entry: &PhoneNumberEntry, provider_call_id: &str, from: &str, now: Timestamp) -> Result<Call> {
        inbound::record_call(&self.pool, entry, provider_call_id, from, now).await
    }

});
