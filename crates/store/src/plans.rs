//! SQLite's plans for the statements that read live calls: each reads the live calls
//! through a partial index of them, never every call the table holds, on a fresh database
//! with no statistics (the state SQLite is in until a table passes 1,000 rows, and the
//! state its reader connections keep: `crate::sql::indexed_by`). A change to one of these
//! statements, or to the indexes, that brings back a walk over every call fails here.
//! (PostgreSQL plans from statistics the engine keeps fresh, `crate::shared::planner`.)

use crate::sql::Dialect;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, Row, SqliteConnection};
use std::str::FromStr;

/// Indexes that hold only live calls (their `WHERE` is the list of live states) or only
/// unsent ones.
const LIVE_INDEXES: &[&str] = &["calls_active", "calls_active_by_provider", "calls_active_by_account", "calls_unsent", "calls_one_active_per_contact"];

/// Each statement that reads the live calls, by what it is for.
fn statements() -> Vec<(&'static str, String)> {
    let [account_active, account_sharing] = crate::accounts::load_sql(true);
    let [provider_active, provider_sharing] = crate::accounts::load_sql(false);
    vec![
        ("the dispatcher's runnable campaigns", crate::shared::campaigns::runnable_sql(Dialect::Sqlite)),
        ("a campaign's live calls (claim, steering)", crate::common::LIVE_IN_CAMPAIGN_SQL.to_string()),
        ("every live call", crate::common::LIVE_COUNT_SQL.to_string()),
        ("the stale-call sweep", crate::common::STUCK_SQL.to_string()),
        ("the max-duration sweep", crate::calls::overdue_sql(Dialect::Sqlite)),
        ("the reaper's unsent calls", crate::calls::ORPHANS_SQL.to_string()),
        ("a campaign's completion", crate::shared::campaigns::complete_sql()),
        ("an account's live calls", account_active),
        ("an account's campaigns wanting slots", account_sharing),
        ("a config account's live calls", provider_active),
        ("a config account's campaigns wanting slots", provider_sharing),
    ]
}

/// The highest `$N` in `sql`: how many arguments `EXPLAIN` must be given.
fn arguments(sql: &str) -> usize {
    let mut most = 0;
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        most = most.max(digits.parse().unwrap_or(0));
    }
    most
}

/// The names `sql` reads the table `calls` by: `calls` and each alias it gives it
/// (`FROM calls k`, `calls c INDEXED BY …`).
fn names_of_calls(sql: &str) -> Vec<String> {
    let words: Vec<&str> = sql.split_whitespace().collect();
    let mut names = vec!["calls".to_string()];
    for (i, w) in words.iter().enumerate() {
        if *w == "calls" && i > 0 && matches!(words[i - 1], "FROM" | "JOIN") {
            if let Some(alias) = words.get(i + 1) {
                let keyword = ["WHERE", "JOIN", "LEFT", "ON", "INDEXED", "GROUP", "ORDER", "SET", ")"].contains(alias);
                if !keyword {
                    names.push(alias.trim_end_matches(')').to_string());
                }
            }
        }
    }
    names
}

/// A plan step's table (or alias) and index: `SEARCH k USING INDEX calls_active (…)` is
/// `("k", Some("calls_active"))`, `SCAN calls` is `("calls", None)`.
fn step(detail: &str) -> Option<(&str, Option<&str>)> {
    let mut words = detail.split_whitespace();
    if !matches!(words.next(), Some("SCAN" | "SEARCH")) {
        return None;
    }
    let table = words.next()?;
    let rest: Vec<&str> = words.collect();
    let index = rest.iter().position(|w| *w == "INDEX").and_then(|at| rest.get(at + 1).copied());
    Some((table, index))
}

/// A fresh SQLite database with the schema and no statistics.
async fn fresh_database() -> SqliteConnection {
    let options = SqliteConnectOptions::from_str("sqlite::memory:").unwrap();
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    sqlx::migrate!("./migrations/sqlite").run(&mut conn).await.unwrap();
    conn
}

/// `EXPLAIN QUERY PLAN` of `sql` (every argument bound to 0: a plan does not read them),
/// one `detail` per step.
async fn plan_of(conn: &mut SqliteConnection, sql: &str) -> Vec<String> {
    let text = format!("EXPLAIN QUERY PLAN {sql}");
    let mut query = sqlx::query(&text);
    for _ in 0..arguments(sql) {
        query = query.bind(0_i64);
    }
    query.fetch_all(conn).await.unwrap().iter().map(|r| r.get::<String, _>("detail")).collect()
}

#[tokio::test]
async fn statements_over_live_calls_read_only_live_calls() {
    let mut conn = fresh_database().await;
    let mut faults = Vec::new();
    for (what, sql) in statements() {
        let plan = plan_of(&mut conn, &sql).await;
        let calls = names_of_calls(&sql);
        let over_calls: Vec<_> = plan.iter().filter_map(|d| step(d)).filter(|(table, _)| calls.iter().any(|c| c == table)).collect();
        assert!(!over_calls.is_empty(), "{what}: no step over calls in {plan:?}");
        for (_, index) in over_calls {
            if !index.is_some_and(|i| LIVE_INDEXES.contains(&i)) {
                faults.push(format!("{what}: {plan:?}"));
            }
        }
    }
    assert!(faults.is_empty(), "statements over live calls that read more than the live calls:\n{}", faults.join("\n"));
}

/// An ingest batch reads its calls through the two indexes of their ids, each call once
/// (`MULTI-INDEX OR` dedupes by rowid), never a walk over the table.
#[tokio::test]
async fn a_batch_reads_its_calls_by_their_ids_each_once() {
    let plan = plan_of(&mut fresh_database().await, crate::sqlite::events::BATCH_CALLS_SQL).await;
    let over_calls: Vec<_> = plan.iter().filter_map(|d| step(d)).filter(|(table, _)| *table == "calls").map(|(_, index)| index).collect();
    assert!(plan.iter().any(|d| d == "MULTI-INDEX OR"), "{plan:?}");
    assert_eq!(over_calls.len(), 2, "{plan:?}");
    assert!(over_calls.iter().all(|i| matches!(i, Some("calls_provider_id" | "sqlite_autoindex_calls_1"))), "{plan:?}");
}

/// The check itself: a statement that reads every call is caught.
#[tokio::test]
async fn a_walk_over_every_call_is_caught() {
    assert_eq!(step("SCAN calls"), Some(("calls", None)));
    assert_eq!(step("SEARCH k USING INDEX calls_provider_id (provider_call_id>?)"), Some(("k", Some("calls_provider_id"))));
    assert_eq!(step("SEARCH calls USING COVERING INDEX calls_active (campaign_id=? AND status=?)"), Some(("calls", Some("calls_active"))));
    assert_eq!(names_of_calls("SELECT k.* FROM calls k INDEXED BY x JOIN campaigns c"), vec!["calls", "k"]);
    assert_eq!(names_of_calls("SELECT 1 FROM calls WHERE id = $1"), vec!["calls"]);
    assert_eq!(arguments("a $1 b $12 c $3"), 12);
}
