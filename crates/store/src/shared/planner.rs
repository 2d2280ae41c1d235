//! Planner statistics for tables that grow faster than anything else analyses them. A
//! burst takes a table from empty to thousands of rows within seconds.
//!
//! PostgreSQL: autovacuum looks a minute later at best (`autovacuum_naptime`), and until
//! then the planner's statistics say "nearly empty". Worse, a prepared statement's generic
//! plan made while the table was small is kept until the table is analysed: measured on a
//! fresh database with `dialtone demo --contacts 2000 --cap 50 --time-scale 0.0005`, the
//! ingest's two per-batch statements on `calls` (the `FOR UPDATE` lookup and the
//! `UPDATE … FROM UNNEST`) kept sequential scans over every call, 3.8 ms and 2.9 ms a
//! batch (BENCHMARKS.md, "PostgreSQL's own CPU"); the outbox claim read every due delivery
//! (117 ms against 0.5 ms, issue 13).
//!
//! SQLite: nothing analyses on its own (`ANALYZE` writes `sqlite_stat1`), and without
//! statistics its planner takes the first index that fits: it counted a campaign's active
//! calls through `calls_campaign_created`, reading every call of the campaign (0.36 ms at
//! 2,000 calls, growing with the campaign), where the partial index `calls_active` reads
//! only the live ones (0.01 ms). The dispatcher's runnable-campaigns query, which holds the
//! same count, took 0.7 ms a pass.

use crate::sql::{args, Db, Dialect};
use crate::Result;

/// The engine's tables that grow with every call, and `campaigns`, which every dispatcher
/// pass reads (a bulk of batches adds thousands at once): analysed from the engine's loop
/// (`Store::analyze_grown`). With the statistics of `calls` stale (autovacuum off; they
/// described one campaign's calls), PostgreSQL's runnable-campaigns query counted each of
/// 1,000 campaigns' live calls through `calls_active_by_provider`, reading all 8,000 live
/// calls per campaign: 3.9 s a dispatcher pass, 15–21 ms once `calls` was analysed
/// (`dialtone bench --tick-campaigns 1000`). `campaigns` alone unanalysed measured no
/// different (15 ms); it is here so that no table the dispatcher reads is left to chance.
pub const ENGINE_TABLES: &[&str] = &["calls", "call_events", "contacts", "campaigns"];

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

/// What [`analyze_sqlite_if_grown`] remembers: each table's highest rowid when this process
/// last analysed it.
pub type Analysed = std::sync::Mutex<std::collections::HashMap<String, i64>>;

/// SQLite: analyses each of `tables` whose highest rowid has grown past twice (and by at
/// least 1,000) what it was when this process last analysed it — about once per doubling,
/// as on PostgreSQL. `MAX(rowid)` is one look at the table's b-tree, so the check costs
/// microseconds; SQLite keeps no count of changes to compare against, and a rowid that
/// only grows (deletes do not lower it) cannot make a table look grown again right after
/// its analysis. A restarted process analyses a table of more than 1,000 rows once.
/// `ANALYZE` samples (`analysis_limit` 1,000 rows an index), so it costs milliseconds, in
/// the one writer. Returns the tables analysed. `tables` must be names of ours, never input.
pub async fn analyze_sqlite_if_grown(write: &sqlx::SqlitePool, analysed: &Analysed, tables: &[&str]) -> Result<Vec<String>> {
    let mut grown = Vec::new();
    for table in tables {
        let top: Option<i64> = sqlx::query_scalar(&format!("SELECT MAX(rowid) FROM {table}")).fetch_one(write).await?;
        let top = top.unwrap_or(0);
        let last = analysed.lock().unwrap().get(*table).copied().unwrap_or(0);
        if top - last > last.max(1000) {
            grown.push((table.to_string(), top));
        }
    }
    if grown.is_empty() {
        return Ok(vec![]);
    }
    // One batch, so the limit is set on the connection that analyses (the writer pool has
    // one connection anyway).
    let sql: String = std::iter::once("PRAGMA analysis_limit = 1000;".to_string()).chain(grown.iter().map(|(table, _)| format!("ANALYZE {table};"))).collect();
    sqlx::raw_sql(&sql).execute(write).await?;
    let mut analysed = analysed.lock().unwrap();
    Ok(grown
        .into_iter()
        .map(|(table, top)| {
            analysed.insert(table.clone(), top);
            table
        })
        .collect())
}
