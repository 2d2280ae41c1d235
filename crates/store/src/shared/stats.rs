//! `GET /stats` and the failure-rate alert window, written once for both backends.
//!
//! Definitions (docs/api.md repeats them):
//! - the range selects calls by `created_at` (the claim that made the row, or the moment a
//!   single call was scheduled), `from` inclusive, `to` exclusive;
//! - an *ended* call has an outcome other than `canceled` (a call we canceled is neither a
//!   success nor a failure); `success_rate` = calls with outcome `completed` / ended calls;
//! - a *failed* call has outcome `failed`, `timeout` or `invalid_number` ([`FAILURE_OUTCOMES`]):
//!   the call did not happen. `no_answer`, `busy` and `voicemail` are the called party's
//!   answers, not failures; the failure breakdown still lists them (every ended call that is
//!   not `completed`), by outcome and `ended_reason`;
//! - `avg_duration_secs`: mean `duration_ms` of the calls in range that report one, in seconds;
//! - retries are calls with `attempt > 1`; `retries_pending` counts the contacts waiting
//!   (status `pending`) after at least one attempt, now, whatever the range;
//! - `scheduled_next_hour` / `_24h`: calls in status `scheduled` whose `scheduled_for` is
//!   before now + 1 h / + 24 h (an overdue one not yet placed counts too);
//! - placement latency = `dialed_at − COALESCE(scheduled_for, created_at)`: from the claim
//!   (or the scheduled time) to the provider accepting the call, for calls in range that
//!   reached the provider;
//! - webhook-to-commit latency = `received_at − occurred_at` of the provider events whose
//!   `received_at` is in range and that carry the provider's own event time: from the
//!   moment the provider says the event happened to the group commit that stored it
//!   (`received_at` is stamped when the ingest writer takes the batch, just before its
//!   commit). It includes the provider's delivery delay and any clock difference between
//!   the provider and us; a negative difference (a provider clock ahead of ours) counts as 0.
//!
//! Percentiles are nearest-rank over a histogram the database groups (no sort of the range,
//! the same SQL on both backends: PostgreSQL's `percentile_cont` has no SQLite
//! counterpart). Buckets keep two significant digits: 1 ms wide below 100 ms, 10 ms below
//! 1 s, 100 ms below 10 s, 1 s below 100 s, 10 s above. A percentile is its bucket's lower
//! bound: exact below 100 ms, at most 10 % (one bucket) under the true value above, and
//! within 1 % near the top of each decade. The buckets are coarse enough that an hour holds
//! at most ~280 of them whatever the traffic, which is what lets the rollup merge them.
//!
//! The rollup (migration 0022, docs/architecture.md "Stats rollup"): whole hours of a
//! range are read from `stats_call_hours` and the latency histograms (`stats_latency_hours`,
//! and `stats_latency_days` for whole UTC days); the partial hours at either end (the open
//! hour included) are read from the calls, with the same definitions. Triggers log every
//! change to a call or a provider event in `stats_dirty`, and [`refresh`] recomputes the
//! logged hours from the raw rows before each read, so the answer equals the raw query's.

use super::{pg_lock, Pools};
use crate::common::ms;
use crate::sql::{args, Arg};
use crate::Result;
use dialtone_core::{CampaignId, WorkspaceId};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Outcomes that count as a failed call (in `/stats` and in the failure-rate alert).
pub const FAILURE_OUTCOMES: &[&str] = &["failed", "timeout", "invalid_number"];
const FAILURE_SQL: &str = "('failed', 'timeout', 'invalid_number')";

/// The longest range `/stats` answers: its hourly series has one point per hour.
pub const MAX_RANGE_HOURS: i64 = 24 * 92;

/// What `/stats` is asked for.
#[derive(Debug, Clone)]
pub struct StatsQuery {
    pub workspace_id: WorkspaceId,
    pub campaign_id: Option<CampaignId>,
    /// Inclusive.
    pub from: Timestamp,
    /// Exclusive.
    pub to: Timestamp,
    /// For the scheduled and pending counts, which look ahead from now.
    pub now: Timestamp,
}

/// The answer of `/stats`. Counts are calls unless said otherwise; rates are fractions in
/// 0..=1, `null` when nothing was counted.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Stats {
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    #[schema(required = true)]
    pub campaign_id: Option<CampaignId>,
    /// Calls in range.
    pub total_calls: u64,
    /// Calls in range by status (`scheduled`, `queued`, … `canceled`), only statuses seen.
    pub by_status: BTreeMap<String, u64>,
    /// Calls in range by outcome, only outcomes seen.
    pub by_outcome: BTreeMap<String, u64>,
    /// Calls with an outcome other than `canceled`.
    pub ended_calls: u64,
    /// `completed` / `ended_calls`.
    #[schema(required = true)]
    pub success_rate: Option<f64>,
    /// Calls with a failure outcome ([`FAILURE_OUTCOMES`]).
    pub failed_calls: u64,
    /// `failed_calls` / `ended_calls`.
    #[schema(required = true)]
    pub failure_rate: Option<f64>,
    /// Mean reported duration in seconds.
    #[schema(required = true)]
    pub avg_duration_secs: Option<f64>,
    /// Every ended call that did not complete, by outcome and reason, most first.
    pub failure_breakdown: Vec<FailureReason>,
    pub scheduled_next_hour: u64,
    pub scheduled_next_24h: u64,
    pub retries: RetryStats,
    pub latency_ms: Latencies,
    /// One point per hour of the range, oldest first.
    pub hourly: Vec<HourPoint>,
}

/// One line of the failure breakdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FailureReason {
    pub outcome: String,
    /// The call's `ended_reason` (the provider's or ours); `null` when none was recorded.
    #[schema(required = true)]
    pub reason: Option<String>,
    pub count: u64,
}

/// Retries: calls with `attempt > 1`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RetryStats {
    /// Contacts waiting for another attempt now (status `pending`, attempts ≥ 1).
    pub pending: u64,
    /// Retry calls in range.
    pub calls: u64,
    /// Retry calls in range that ended (outcome other than `canceled`).
    pub ended: u64,
    /// Completed retries / ended retries.
    #[schema(required = true)]
    pub success_rate: Option<f64>,
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Latencies {
    pub webhook_to_commit: Percentiles,
    pub placement: Percentiles,
}

/// Nearest-rank percentiles over `count` samples (`null` when there are none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Percentiles {
    pub count: u64,
    #[schema(required = true)]
    pub p50: Option<i64>,
    #[schema(required = true)]
    pub p95: Option<i64>,
    #[schema(required = true)]
    pub p99: Option<i64>,
}

/// One hour of the series, by the hour the calls were created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HourPoint {
    /// Start of the hour (UTC).
    #[schema(value_type = String, format = DateTime)]
    pub hour: Timestamp,
    /// Calls that reached the provider (`dialed_at` set).
    pub placed: u64,
    /// Calls answered (`answered_at` set).
    pub answered: u64,
    /// Calls with a failure outcome.
    pub failed: u64,
    /// Calls with outcome `completed` (the numerator of the success rate).
    pub completed: u64,
}

/// Calls that ended in the alert window, by campaign and provider account.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WindowCount {
    pub campaign_id: String,
    pub provider: String,
    /// Calls with an outcome other than `canceled`.
    pub ended: i64,
    /// Of which failed ([`FAILURE_OUTCOMES`]).
    pub failed: i64,
}

#[derive(sqlx::FromRow)]
struct CountRow {
    status: String,
    outcome: Option<String>,
    retry: i64,
    n: i64,
    dur_sum: Option<i64>,
    dur_n: i64,
}

#[derive(sqlx::FromRow)]
struct BreakdownRow {
    outcome: String,
    reason: Option<String>,
    n: i64,
}

#[derive(sqlx::FromRow)]
struct BucketRow {
    bucket: i64,
    n: i64,
}

#[derive(sqlx::FromRow, Default)]
struct HourRow {
    hour: i64,
    placed: i64,
    answered: i64,
    failed: i64,
    completed: i64,
}

#[derive(sqlx::FromRow)]
struct One {
    one: i64,
}

#[derive(sqlx::FromRow)]
struct DirtyRow {
    kind: String,
    workspace_id: String,
    campaign_id: String,
    hour: i64,
}

/// The rows one part of a range contributes (raw calls or rollup), merged in Rust.
#[derive(Default)]
struct Parts {
    counts: Vec<CountRow>,
    breakdown: Vec<BreakdownRow>,
    hours: Vec<HourRow>,
    placement: Vec<BucketRow>,
    webhook: Vec<BucketRow>,
}

#[derive(sqlx::FromRow)]
struct Two {
    a: Option<i64>,
    b: Option<i64>,
}

/// The histogram bucket of a latency expression `v` (milliseconds, clamped at 0).
fn bucket_sql(v: &str) -> String {
    format!(
        "CASE WHEN {v} < 0 THEN 0 WHEN {v} < 100 THEN {v} WHEN {v} < 1000 THEN ({v} / 10) * 10 \
         WHEN {v} < 10000 THEN ({v} / 100) * 100 WHEN {v} < 100000 THEN ({v} / 1000) * 1000 ELSE ({v} / 10000) * 10000 END"
    )
}

/// The calls in range: `$1` workspace, `$2` campaign or NULL, `$3` from, `$4` to. Two
/// texts rather than one `($2 IS NULL OR campaign_id = $2)`, which keeps a planner (SQLite's
/// always, PostgreSQL's generic plan) from reading the campaign's own index. `$2` is still
/// named when NULL (PostgreSQL wants every bound parameter used, and typed: the CAST).
/// `col` is the time column the range is on.
fn in_range(q: &StatsQuery, col: &str) -> String {
    if q.campaign_id.is_some() {
        format!("campaign_id = $2 AND workspace_id = $1 AND {col} >= $3 AND {col} < $4")
    } else {
        format!("workspace_id = $1 AND CAST($2 AS TEXT) IS NULL AND {col} >= $3 AND {col} < $4")
    }
}

fn range_args(q: &StatsQuery, from: i64, to: i64) -> Vec<Arg> {
    args![q.workspace_id.as_str(), q.campaign_id.as_ref().map(|c| c.as_str()), from, to]
}

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The calls' columns a rollup hour groups by, as `SELECT` expressions over `calls`
/// (`reason` kept only for the outcomes the failure breakdown lists).
const CALL_DIMS: &str = "status, outcome,
    CASE WHEN outcome IS NOT NULL AND outcome NOT IN ('completed', 'canceled') THEN ended_reason END,
    CAST(CASE WHEN attempt > 1 THEN 1 ELSE 0 END AS BIGINT),
    CAST(CASE WHEN dialed_at IS NOT NULL THEN 1 ELSE 0 END AS BIGINT),
    CAST(CASE WHEN answered_at IS NOT NULL THEN 1 ELSE 0 END AS BIGINT)";

const PLACEMENT_V: &str = "(dialed_at - COALESCE(scheduled_for, created_at))";
const WEBHOOK_V: &str = "(received_at - occurred_at)";

/// Brings the rollup up to date: takes every hour logged in `stats_dirty` (by the
/// migration 0022 triggers, in the transaction of the change) and recomputes its rollup
/// rows from the calls and events, then the UTC days of the latency histograms those hours
/// fall in. One transaction; on PostgreSQL refreshes are serialized by an advisory lock
/// (several nodes and requests refresh at once, and two recomputing the same hour would
/// each insert its rows). The log's rows are taken with `DELETE … RETURNING`, so a change
/// committed meanwhile stays logged for the next refresh. Returns how many hours it
/// recomputed. Called before every `/stats` read and by the reaper, which keeps the log
/// short. On PostgreSQL a refresh that drained anything then vacuums the log (`VACUUM
/// (SKIP_LOCKED) stats_dirty`, outside the transaction), so its dead rows do not slow
/// every later read's emptiness check.
pub async fn refresh(p: Pools<'_>) -> Result<u64> {
    // Nothing logged (the usual case between two reads): no write transaction, which on
    // SQLite would queue behind (and delay) the one writer's ingest batches.
    let pending: Option<i64> = p.read().fetch_optional::<One>("SELECT CAST(1 AS BIGINT) AS one FROM stats_dirty LIMIT 1", vec![]).await?.map(|r| r.one);
    if pending.is_none() {
        return Ok(0);
    }
    let mut tx = p.begin().await?;
    let mut db = tx.db();
    // PostgreSQL only (SQLite's BEGIN IMMEDIATE already excludes every other writer).
    pg_lock(&mut db, "SELECT pg_advisory_xact_lock(7346518022)", vec![]).await?;
    let logged = db.fetch_all::<DirtyRow>("DELETE FROM stats_dirty RETURNING kind, workspace_id, campaign_id, hour", vec![]).await?;
    if logged.is_empty() {
        return Ok(0);
    }
    let hours: BTreeSet<(String, String, String, i64)> = logged.into_iter().map(|r| (r.kind, r.workspace_id, r.campaign_id, r.hour)).collect();
    let mut days = BTreeSet::new();
    let key = "campaign_id = $2 AND workspace_id = $1 AND hour = $3";
    let calls_of_hour = "campaign_id = $2 AND workspace_id = $1 AND created_at >= $3 AND created_at < $3 + 3600000";
    let insert_calls = format!(
        "INSERT INTO stats_call_hours (workspace_id, campaign_id, hour, status, outcome, reason, retry, placed, answered, n, dur_sum, dur_n)
         SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS BIGINT), {CALL_DIMS}, COUNT(*), CAST(SUM(duration_ms) AS BIGINT), COUNT(duration_ms)
         FROM calls WHERE {calls_of_hour} GROUP BY {CALL_DIMS}"
    );
    let insert_placement = format!(
        "INSERT INTO stats_latency_hours (kind, workspace_id, campaign_id, hour, bucket, n)
         SELECT 'p', CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS BIGINT), {b}, COUNT(*)
         FROM calls WHERE {calls_of_hour} AND dialed_at IS NOT NULL GROUP BY {b}",
        b = bucket_sql(PLACEMENT_V)
    );
    let insert_webhook = format!(
        "INSERT INTO stats_latency_hours (kind, workspace_id, campaign_id, hour, bucket, n)
         SELECT 'w', CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS BIGINT), {b}, COUNT(*)
         FROM call_events e
         WHERE e.workspace_id = $1 AND e.source = 'provider' AND e.received_at >= $3 AND e.received_at < $3 + 3600000
           AND e.occurred_at IS NOT NULL AND COALESCE((SELECT c.campaign_id FROM calls c WHERE c.id = e.call_id), '') = $2
         GROUP BY {b}",
        b = bucket_sql(WEBHOOK_V)
    );
    for (kind, ws, campaign, hour) in &hours {
        let a = || args![ws.as_str(), campaign.as_str(), *hour];
        let latency_kind = if kind == "c" {
            db.execute(&format!("DELETE FROM stats_call_hours WHERE {key}"), a()).await?;
            db.execute(&insert_calls, a()).await?;
            db.execute(&format!("DELETE FROM stats_latency_hours WHERE {key} AND kind = 'p'"), a()).await?;
            db.execute(&insert_placement, a()).await?;
            "p"
        } else {
            db.execute(&format!("DELETE FROM stats_latency_hours WHERE {key} AND kind = 'w'"), a()).await?;
            db.execute(&insert_webhook, a()).await?;
            "w"
        };
        days.insert((latency_kind, ws.as_str(), campaign.as_str(), hour.div_euclid(DAY_MS) * DAY_MS));
    }
    for (kind, ws, campaign, day) in days {
        let a = || args![ws, campaign, day, kind];
        db.execute("DELETE FROM stats_latency_days WHERE campaign_id = $2 AND workspace_id = $1 AND day = $3 AND kind = $4", a()).await?;
        db.execute(
            "INSERT INTO stats_latency_days (kind, workspace_id, campaign_id, day, bucket, n)
             SELECT CAST($4 AS TEXT), CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS BIGINT), bucket, CAST(SUM(n) AS BIGINT)
             FROM stats_latency_hours WHERE campaign_id = $2 AND workspace_id = $1 AND kind = $4 AND hour >= $3 AND hour < $3 + 86400000
             GROUP BY bucket",
            a(),
        )
        .await?;
    }
    tx.commit().await?;
    if let Pools::Postgres(pool) = p {
        // PostgreSQL keeps the drained log's rows as dead tuples until a VACUUM, and the
        // `SELECT … LIMIT 1` above scans them on every read: after the bench's 2,000,000
        // rows, 160 ms the first time and 18 ms every read after, until autovacuum comes
        // (if it is on: it may be off, or late). The log is a queue, empty right after a
        // drain, so vacuuming it costs about a millisecond. SKIP_LOCKED: a vacuum of it
        // already running (another node's, autovacuum's) is as good as ours. Not in the
        // transaction (VACUUM cannot run in one), hence the simple-query protocol.
        sqlx::raw_sql("VACUUM (SKIP_LOCKED) stats_dirty").execute(pool).await?;
    }
    Ok(hours.len() as u64)
}

/// The raw part of a range: the calls created (and provider events received) in
/// `[from, to)`, read from the rows themselves.
async fn raw(p: Pools<'_>, q: &StatsQuery, from: i64, to: i64) -> Result<Parts> {
    if from >= to {
        return Ok(Parts::default());
    }
    let in_range = in_range(q, "created_at");
    let counts_sql = format!(
        "SELECT status, outcome, CAST(CASE WHEN attempt > 1 THEN 1 ELSE 0 END AS BIGINT) AS retry, COUNT(*) AS n,
                CAST(SUM(duration_ms) AS BIGINT) AS dur_sum, COUNT(duration_ms) AS dur_n
         FROM calls WHERE {in_range} GROUP BY status, outcome, CASE WHEN attempt > 1 THEN 1 ELSE 0 END"
    );
    let breakdown_sql = format!(
        "SELECT outcome, ended_reason AS reason, COUNT(*) AS n FROM calls
         WHERE {in_range} AND outcome IS NOT NULL AND outcome NOT IN ('completed', 'canceled')
         GROUP BY outcome, ended_reason"
    );
    let hourly_sql = format!(
        "SELECT (created_at / 3600000) * 3600000 AS hour,
                CAST(SUM(CASE WHEN dialed_at IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS placed,
                CAST(SUM(CASE WHEN answered_at IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS answered,
                CAST(SUM(CASE WHEN outcome IN {FAILURE_SQL} THEN 1 ELSE 0 END) AS BIGINT) AS failed,
                CAST(SUM(CASE WHEN outcome = 'completed' THEN 1 ELSE 0 END) AS BIGINT) AS completed
         FROM calls WHERE {in_range} GROUP BY (created_at / 3600000) * 3600000"
    );
    let placement_sql =
        format!("SELECT {b} AS bucket, COUNT(*) AS n FROM calls WHERE {in_range} AND dialed_at IS NOT NULL GROUP BY {b}", b = bucket_sql(PLACEMENT_V));
    let webhook_sql = format!(
        "SELECT {b} AS bucket, COUNT(*) AS n FROM call_events
         WHERE workspace_id = $1 AND source = 'provider' AND received_at >= $3 AND received_at < $4 AND occurred_at IS NOT NULL
           AND {campaign}
         GROUP BY {b}",
        b = bucket_sql(WEBHOOK_V),
        // Per event, its call by primary key: `call_id IN (SELECT id FROM calls WHERE
        // campaign_id = $2)` made SQLite build a table of every call of the campaign (1,000,000
        // in the bench: ~0.7 s) for each ragged hour, and PostgreSQL hash them.
        campaign = if q.campaign_id.is_some() {
            "EXISTS (SELECT 1 FROM calls c WHERE c.id = call_events.call_id AND c.campaign_id = $2)"
        } else {
            "CAST($2 AS TEXT) IS NULL"
        }
    );
    let a = || range_args(q, from, to);
    let (mut d1, mut d2, mut d3, mut d4, mut d5) = (p.read(), p.read(), p.read(), p.read(), p.read());
    let (counts, breakdown, hours, placement, webhook) = tokio::try_join!(
        d1.fetch_all::<CountRow>(&counts_sql, a()),
        d2.fetch_all::<BreakdownRow>(&breakdown_sql, a()),
        d3.fetch_all::<HourRow>(&hourly_sql, a()),
        d4.fetch_all::<BucketRow>(&placement_sql, a()),
        d5.fetch_all::<BucketRow>(&webhook_sql, a()),
    )?;
    Ok(Parts { counts, breakdown, hours, placement, webhook })
}

/// The rollup part of a range: the whole hours `[from, to)` (both on the hour), latency
/// histograms from whole UTC days where the range covers them and from hours at its ends.
async fn rollup(p: Pools<'_>, q: &StatsQuery, from: i64, to: i64) -> Result<Parts> {
    if from >= to {
        return Ok(Parts::default());
    }
    let in_hours = in_range(q, "hour");
    let counts_sql = format!(
        "SELECT status, outcome, retry, CAST(SUM(n) AS BIGINT) AS n, CAST(SUM(dur_sum) AS BIGINT) AS dur_sum, CAST(SUM(dur_n) AS BIGINT) AS dur_n
         FROM stats_call_hours WHERE {in_hours} GROUP BY status, outcome, retry"
    );
    let breakdown_sql = format!(
        "SELECT outcome, reason, CAST(SUM(n) AS BIGINT) AS n FROM stats_call_hours
         WHERE {in_hours} AND outcome IS NOT NULL AND outcome NOT IN ('completed', 'canceled') GROUP BY outcome, reason"
    );
    let hourly_sql = format!(
        "SELECT hour, CAST(SUM(placed * n) AS BIGINT) AS placed, CAST(SUM(answered * n) AS BIGINT) AS answered,
                CAST(SUM(CASE WHEN outcome IN {FAILURE_SQL} THEN n ELSE 0 END) AS BIGINT) AS failed,
                CAST(SUM(CASE WHEN outcome = 'completed' THEN n ELSE 0 END) AS BIGINT) AS completed
         FROM stats_call_hours WHERE {in_hours} GROUP BY hour"
    );
    // Whole days inside the hours, if any; the hours before and after them.
    let (d1, d2) = (from.div_euclid(DAY_MS) * DAY_MS + if from.rem_euclid(DAY_MS) == 0 { 0 } else { DAY_MS }, to.div_euclid(DAY_MS) * DAY_MS);
    let (d1, d2) = if d1 < d2 { (d1, d2) } else { (to, to) };
    let scope = if q.campaign_id.is_some() { "campaign_id = $2 AND workspace_id = $1" } else { "workspace_id = $1 AND CAST($2 AS TEXT) IS NULL" };
    let latency_sql = |kind: &str| {
        format!(
            "SELECT bucket, CAST(SUM(n) AS BIGINT) AS n FROM (
                SELECT bucket, n FROM stats_latency_days WHERE {scope} AND kind = '{kind}' AND day >= $5 AND day < $6
                UNION ALL
                SELECT bucket, n FROM stats_latency_hours WHERE {scope} AND kind = '{kind}' AND hour >= $3 AND hour < $5
                UNION ALL
                SELECT bucket, n FROM stats_latency_hours WHERE {scope} AND kind = '{kind}' AND hour >= $6 AND hour < $4
             ) parts GROUP BY bucket"
        )
    };
    let (placement_sql, webhook_sql) = (latency_sql("p"), latency_sql("w"));
    let a = || range_args(q, from, to);
    let la = || {
        let mut v = range_args(q, from, to);
        v.extend(args![d1, d2]);
        v
    };
    let (mut c1, mut c2, mut c3, mut c4, mut c5) = (p.read(), p.read(), p.read(), p.read(), p.read());
    let (counts, breakdown, hours, placement, webhook) = tokio::try_join!(
        c1.fetch_all::<CountRow>(&counts_sql, a()),
        c2.fetch_all::<BreakdownRow>(&breakdown_sql, a()),
        c3.fetch_all::<HourRow>(&hourly_sql, a()),
        c4.fetch_all::<BucketRow>(&placement_sql, la()),
        c5.fetch_all::<BucketRow>(&webhook_sql, la()),
    )?;
    Ok(Parts { counts, breakdown, hours, placement, webhook })
}

/// Computes `/stats` (see the module doc for every definition): brings the rollup up to
/// date ([`refresh`]), then reads the whole hours of the range from it and the partial
/// hours at either end from the calls, side by side (on SQLite, on several reader
/// connections), and merges them.
pub async fn stats(p: Pools<'_>, q: &StatsQuery) -> Result<Stats> {
    stats_with(p, q, true).await
}

/// `/stats` read from the raw rows only, without the rollup: what the rollup must agree
/// with (the conformance suite compares the two on random data).
pub async fn stats_raw(p: Pools<'_>, q: &StatsQuery) -> Result<Stats> {
    stats_with(p, q, false).await
}

async fn stats_with(p: Pools<'_>, q: &StatsQuery, use_rollup: bool) -> Result<Stats> {
    let (from, to) = (ms(q.from), ms(q.to));
    // Whole hours [h1, h2) from the rollup; [from, h1) and [h2, to) raw.
    let (h1, h2) = (from.div_euclid(HOUR_MS) * HOUR_MS + if from.rem_euclid(HOUR_MS) == 0 { 0 } else { HOUR_MS }, to.div_euclid(HOUR_MS) * HOUR_MS);
    let (h1, h2) = if use_rollup && h1 < h2 { (h1, h2) } else { (to, to) };
    if h1 < h2 {
        refresh(p).await?;
    }
    let scheduled_sql = "SELECT CAST(SUM(CASE WHEN scheduled_for < $3 THEN 1 ELSE 0 END) AS BIGINT) AS a, COUNT(*) AS b FROM calls
         WHERE workspace_id = $1 AND ($2 IS NULL OR campaign_id = $2) AND status = 'scheduled' AND scheduled_for < $4";
    let hour = SignedDuration::from_hours(1);
    let (in_1h, in_24h) = (ms(q.now.saturating_add(hour).unwrap_or(q.now)), ms(q.now.saturating_add(hour * 24).unwrap_or(q.now)));
    let sched_args = args![q.workspace_id.as_str(), q.campaign_id.as_ref().map(|c| c.as_str()), in_1h, in_24h];
    let pending_sql = "SELECT COUNT(*) AS a, CAST(NULL AS BIGINT) AS b FROM contacts
         WHERE workspace_id = $1 AND ($2 IS NULL OR campaign_id = $2) AND status = 'pending' AND attempts > 0";
    let pending_args = args![q.workspace_id.as_str(), q.campaign_id.as_ref().map(|c| c.as_str())];

    let (mut d6, mut d7) = (p.read(), p.read());
    let (head, middle, tail, sched, pending) = tokio::try_join!(
        raw(p, q, from, h1.min(to)),
        rollup(p, q, h1, h2),
        raw(p, q, h2.max(from), to),
        d6.fetch_one::<Two>(scheduled_sql, sched_args),
        d7.fetch_one::<Two>(pending_sql, pending_args),
    )?;
    let (mut counts, mut breakdown_rows, mut hours, mut placement, mut webhook) = (vec![], vec![], vec![], vec![], vec![]);
    for part in [head, middle, tail] {
        counts.extend(part.counts);
        breakdown_rows.extend(part.breakdown);
        hours.extend(part.hours);
        placement.extend(part.placement);
        webhook.extend(part.webhook);
    }

    let mut s = Stats {
        from: q.from,
        to: q.to,
        campaign_id: q.campaign_id.clone(),
        total_calls: 0,
        by_status: BTreeMap::new(),
        by_outcome: BTreeMap::new(),
        ended_calls: 0,
        success_rate: None,
        failed_calls: 0,
        failure_rate: None,
        avg_duration_secs: None,
        failure_breakdown: breakdown(breakdown_rows),
        scheduled_next_hour: sched.a.unwrap_or(0) as u64,
        scheduled_next_24h: sched.b.unwrap_or(0) as u64,
        retries: RetryStats { pending: pending.a.unwrap_or(0) as u64, calls: 0, ended: 0, success_rate: None },
        latency_ms: Latencies { webhook_to_commit: percentiles(webhook), placement: percentiles(placement) },
        hourly: series(q.from, q.to, hours),
    };
    let (mut completed, mut retry_completed, mut dur_sum, mut dur_n) = (0u64, 0u64, 0i64, 0i64);
    for r in counts {
        let n = r.n as u64;
        s.total_calls += n;
        *s.by_status.entry(r.status).or_default() += n;
        dur_sum += r.dur_sum.unwrap_or(0);
        dur_n += r.dur_n;
        if r.retry == 1 {
            s.retries.calls += n;
        }
        let Some(outcome) = r.outcome else { continue };
        if outcome != "canceled" {
            s.ended_calls += n;
            if r.retry == 1 {
                s.retries.ended += n;
            }
        }
        if outcome == "completed" {
            completed += n;
            if r.retry == 1 {
                retry_completed += n;
            }
        }
        if FAILURE_OUTCOMES.contains(&outcome.as_str()) {
            s.failed_calls += n;
        }
        *s.by_outcome.entry(outcome).or_default() += n;
    }
    s.success_rate = ratio(completed, s.ended_calls);
    s.failure_rate = ratio(s.failed_calls, s.ended_calls);
    s.retries.success_rate = ratio(retry_completed, s.retries.ended);
    s.avg_duration_secs = (dur_n > 0).then(|| dur_sum as f64 / dur_n as f64 / 1000.0);
    Ok(s)
}

/// The failure breakdown from the parts' rows: summed by (outcome, reason), most first,
/// then by outcome and reason (no reason first), at most 50 lines.
fn breakdown(rows: Vec<BreakdownRow>) -> Vec<FailureReason> {
    let mut by: BTreeMap<(String, Option<String>), u64> = BTreeMap::new();
    for r in rows {
        *by.entry((r.outcome, r.reason)).or_default() += r.n as u64;
    }
    let mut out: Vec<FailureReason> = by.into_iter().map(|((outcome, reason), count)| FailureReason { outcome, reason, count }).collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.outcome.cmp(&b.outcome)).then_with(|| a.reason.cmp(&b.reason)));
    out.truncate(50);
    out
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Nearest-rank percentiles of a histogram: the p-th is the smallest bucket whose
/// cumulative count reaches ⌈p/100 · n⌉.
fn percentiles(mut buckets: Vec<BucketRow>) -> Percentiles {
    buckets.sort_by_key(|b| b.bucket);
    let count: u64 = buckets.iter().map(|b| b.n as u64).sum();
    let at = |p: u64| -> Option<i64> {
        if count == 0 {
            return None;
        }
        let rank = (p * count).div_ceil(100).max(1);
        let mut seen = 0;
        buckets
            .iter()
            .find(|b| {
                seen += b.n as u64;
                seen >= rank
            })
            .map(|b| b.bucket)
    };
    Percentiles { count, p50: at(50), p95: at(95), p99: at(99) }
}

/// Every hour from `from`'s hour to the hour before `to`, zeros where no call was created.
fn series(from: Timestamp, to: Timestamp, rows: Vec<HourRow>) -> Vec<HourPoint> {
    const H: i64 = 3_600_000;
    let mut by_hour: BTreeMap<i64, HourRow> = BTreeMap::new();
    for r in rows {
        let h = by_hour.entry(r.hour).or_insert_with(|| HourRow { hour: r.hour, ..HourRow::default() });
        (h.placed, h.answered, h.failed, h.completed) = (h.placed + r.placed, h.answered + r.answered, h.failed + r.failed, h.completed + r.completed);
    }
    let start = ms(from).div_euclid(H) * H;
    let end = ms(to);
    let mut out = Vec::new();
    let mut h = start;
    while h < end && out.len() < (MAX_RANGE_HOURS + 1) as usize {
        let r = by_hour.get(&h);
        out.push(HourPoint {
            hour: Timestamp::from_millisecond(h).unwrap_or(from),
            placed: r.map_or(0, |r| r.placed as u64),
            answered: r.map_or(0, |r| r.answered as u64),
            failed: r.map_or(0, |r| r.failed as u64),
            completed: r.map_or(0, |r| r.completed as u64),
        });
        h += H;
    }
    out
}

/// Calls that ended at or after `since` (outcome other than `canceled`), counted by
/// campaign and provider account, with how many of them failed. The alert evaluator's one
/// query: it reads the `calls_ended` index, one hour of ends.
pub async fn failure_window(p: Pools<'_>, since: Timestamp) -> Result<Vec<WindowCount>> {
    let sql = format!(
        "SELECT campaign_id, provider, COUNT(*) AS ended,
                CAST(SUM(CASE WHEN outcome IN {FAILURE_SQL} THEN 1 ELSE 0 END) AS BIGINT) AS failed
         FROM calls WHERE ended_at >= $1 AND outcome IS NOT NULL AND outcome <> 'canceled'
         GROUP BY campaign_id, provider ORDER BY campaign_id, provider"
    );
    p.read().fetch_all::<WindowCount>(&sql, args![ms(since)]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(bucket: i64, n: i64) -> BucketRow {
        BucketRow { bucket, n }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        // 1..=100 ms, one each: p50 = 50, p95 = 95, p99 = 99.
        let p = percentiles((1..=100).map(|v| b(v, 1)).collect());
        assert_eq!(p, Percentiles { count: 100, p50: Some(50), p95: Some(95), p99: Some(99) });
        // Four samples 10, 20, 30, 40: ranks 2, 4, 4.
        let p = percentiles(vec![b(40, 1), b(10, 1), b(30, 1), b(20, 1)]);
        assert_eq!((p.p50, p.p95, p.p99), (Some(20), Some(40), Some(40)));
        assert_eq!(percentiles(vec![]), Percentiles { count: 0, p50: None, p95: None, p99: None });
    }

    #[test]
    fn the_series_has_every_hour_of_the_range() {
        let from = Timestamp::from_second(3600 * 10 + 5).unwrap();
        let to = Timestamp::from_second(3600 * 13).unwrap();
        let s = series(from, to, vec![HourRow { hour: 3_600_000 * 11, placed: 2, answered: 1, failed: 1, completed: 1 }]);
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].placed, s[1].placed, s[1].failed, s[2].placed), (0, 2, 1, 0));
    }
}
