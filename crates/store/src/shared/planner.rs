//! Planner statistics on PostgreSQL for tables that grow faster than autovacuum analyses
//! them. A burst takes a table from empty to thousands of rows within seconds; autovacuum
//! looks a minute later at best (`autovacuum_naptime`), and until then the planner's
//! statistics say "nearly empty". Worse, a prepared statement's generic plan made while the
//! table was small is kept until the table is analysed: measured on a fresh database with
//! `dialtone demo --contacts 2000 --cap 50 --time-scale 0.0005`, the ingest's two per-batch
//! statements on `calls` (the `FOR UPDATE` lookup and the `UPDATE … FROM UNNEST`) kept
//! sequential scans over every call, 3.8 ms and 2.9 ms a batch (BENCHMARKS.md, "Planner
//! statistics"); the outbox claim read every due delivery (117 ms against 0.5 ms, issue 13).
//! SQLite's planner has no such statistics unless asked (`ANALYZE` writes `sqlite_stat1`)
//! and prefers indexes without them, so this is PostgreSQL's alone.

use crate::sql::{args, Db, Dialect};
use crate::Result;

/// The engine's tables that grow with every call: analysed from the engine's loop
/// (`Store::analyze_grown`).
pub const ENGINE_TABLES: &[&str] = &["calls", "call_events", "contacts"];

/// The outbox's tables: analysed before each delivery claim.
pub const OUTBOX_TABLES: &[&str] = &["webhook_deliveries", "webhook_messages"];

/// Analyses each of `tables` that changed more since its last analysis than it had rows
/// then, and by at least 1,000 rows: about once per doubling, so tens of ms now and then
/// (an `ANALYZE` samples at most 30,000 rows), never per statement. Counts come from the
/// statistics collector (`pg_stat_get_mod_since_analyze`), which sees a transaction's
/// changes about a second after it commits. Returns the tables analysed; none on SQLite.
/// `tables` must be names of ours, never input (they are spliced into `ANALYZE`).
pub async fn analyze_if_grown(db: &mut Db<'_>, tables: &[&str]) -> Result<Vec<String>> {
    if db.dialect() != Dialect::Postgres || tables.is_empty() {
        return Ok(vec![]);
    }
    let grown: Vec<(String,)> = db
        .fetch_all(
            "SELECT c.relname::text FROM pg_class c
             WHERE c.oid IN (SELECT to_regclass(t) FROM jsonb_array_elements_text($1::jsonb) AS t)
               AND pg_stat_get_mod_since_analyze(c.oid) > GREATEST(1000, c.reltuples)",
            args![crate::sql::json_list(tables)],
        )
        .await?;
    let mut out = Vec::with_capacity(grown.len());
    for (table,) in grown {
        // Only a name of `tables` can match (the catalog's own spelling of it).
        db.execute(&format!("ANALYZE {table}"), args![]).await?;
        out.push(table);
    }
    Ok(out)
}
