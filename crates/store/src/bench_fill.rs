//! `dialtone bench stats`: fills a database with synthetic calls fast, in bulk SQL (a
//! recursive CTE numbering the rows, the same text on SQLite and PostgreSQL), so the
//! `/stats` queries can be timed on 1,000,000 calls. Not for production databases: the
//! rows are made up.

use crate::sql::{args, Db};
use crate::Result;
use dialtone_core::{CampaignId, WorkspaceId};
use jiff::Timestamp;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use std::str::FromStr;

/// Rows per statement: large enough that the round trips do not matter, small enough
/// that one statement's transaction stays modest.
const CHUNK: i64 = 100_000;

/// Adds `n` contacts and `n` calls (one each) to `campaign`, with one stored provider
/// event per call, created evenly over `[start, start + span_ms)`. Per 20 calls: 12
/// completed, 2 no_answer, 1 busy, 1 voicemail, 2 failed (one before the provider
/// accepted it), 1 timeout, 1 canceled; every 7th call is a retry (attempt 2); every 10th
/// contact waits for a retry. Placement takes 200–1199 ms, the webhook 0–499 ms. Ends with
/// `ANALYZE`, so the planner knows the tables' new sizes, and on PostgreSQL `VACUUM`, the
/// state autovacuum leaves a bulk-loaded table in.
pub async fn fill_calls(url: &str, ws: &WorkspaceId, campaign: &CampaignId, n: u64, start: Timestamp, span_ms: i64) -> Result<()> {
    if url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(url)?.busy_timeout(std::time::Duration::from_secs(30));
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
        fill(Db::from(&pool), ws, campaign, n, start, span_ms).await?;
        pool.close().await;
    } else {
        let pool = PgPoolOptions::new().max_connections(1).connect(url).await?;
        fill(Db::from(&pool), ws, campaign, n, start, span_ms).await?;
        // What autovacuum does after a bulk load (PostgreSQL 13+ vacuums after inserts
        // too): sets the visibility map, so counts over an index (the contacts pending a
        // retry, the rollup's latency rows) are index-only instead of reading the heap. A
        // server with autovacuum off (this bench machine's) reads 15,000 heap pages for the
        // pending count instead: ~110 ms a `/stats` read at 1,000,000 contacts.
        sqlx::raw_sql("VACUUM").execute(&pool).await?;
        pool.close().await;
    }
    Ok(())
}

async fn fill(mut db: Db<'_>, ws: &WorkspaceId, campaign: &CampaignId, n: u64, start: Timestamp, span_ms: i64) -> Result<()> {
    let n = n as i64;
    let t0 = start.as_millisecond();
    // `$1` first row, `$2` end (exclusive), `$3` workspace, `$4` campaign, `$5` start, `$6` span, `$7` n.
    let rows = "WITH RECURSIVE s(i) AS (SELECT CAST($1 AS BIGINT) UNION ALL SELECT i + 1 FROM s WHERE i + 1 < $2)";
    let created = "($5 + (i * $6) / $7)";
    let contacts = format!(
        "{rows} INSERT INTO contacts (id, workspace_id, campaign_id, phone, status, attempts, next_attempt_at, created_at, updated_at)
         SELECT 'ct_bench' || i, $3, $4, '+1' || (2000000000 + i),
                CASE WHEN i % 10 = 0 THEN 'pending' ELSE 'done' END, CASE WHEN i % 7 = 0 THEN 2 ELSE 1 END,
                {created} + 3600000, {created}, {created}
         FROM s"
    );
    let calls = format!(
        "{rows} INSERT INTO calls (id, workspace_id, campaign_id, contact_id, attempt, provider, provider_call_id, phone, status, outcome,
                ended_reason, duration_ms, created_at, updated_at, placing_at, dialed_at, answered_at, ended_at, last_event_at)
         SELECT 'call_bench' || i, $3, $4, 'ct_bench' || i, CASE WHEN i % 7 = 0 THEN 2 ELSE 1 END, 'sim',
                CASE WHEN i % 20 = 17 THEN NULL ELSE 'bench-' || i END, '+1' || (2000000000 + i),
                CASE WHEN i % 20 = 17 THEN 'failed' WHEN i % 20 = 19 THEN 'canceled' ELSE 'ended' END,
                CASE WHEN i % 20 < 12 THEN 'completed' WHEN i % 20 < 14 THEN 'no_answer' WHEN i % 20 = 14 THEN 'busy'
                     WHEN i % 20 = 15 THEN 'voicemail' WHEN i % 20 < 18 THEN 'failed' WHEN i % 20 = 18 THEN 'timeout' ELSE 'canceled' END,
                CASE WHEN i % 20 = 16 THEN 'provider error' WHEN i % 20 = 17 THEN 'sip 503' WHEN i % 20 = 18 THEN 'max duration'
                     WHEN i % 20 < 12 THEN 'customer-ended-call' ELSE NULL END,
                CASE WHEN i % 20 < 12 THEN 30000 + (i % 60) * 1000 ELSE NULL END,
                {created}, {created} + 60000, {created} + 100,
                CASE WHEN i % 20 = 17 THEN NULL ELSE {created} + 200 + i % 1000 END,
                CASE WHEN i % 20 < 12 THEN {created} + 5000 ELSE NULL END,
                {created} + 60000, {created} + 60000
         FROM s"
    );
    let events = format!(
        "{rows} INSERT INTO call_events (id, workspace_id, call_id, source, provider_type, kind, dedupe_key, applied, payload, occurred_at, received_at)
         SELECT 'ev_bench' || i, $3, 'call_bench' || i, 'provider', 'end-of-call-report', 'ended:completed', 'bench-' || i, $8, '{{}}',
                {created} + 60000 - i % 500, {created} + 60000
         FROM s"
    );
    let mut lo = 0;
    while lo < n {
        let hi = (lo + CHUNK).min(n);
        for sql in [&contacts, &calls] {
            db.execute(sql, args![lo, hi, ws.as_str(), campaign.as_str(), t0, span_ms, n]).await?;
        }
        db.execute(&events, args![lo, hi, ws.as_str(), campaign.as_str(), t0, span_ms, n, true]).await?;
        lo = hi;
    }
    db.execute("ANALYZE", vec![]).await?;
    Ok(())
}
