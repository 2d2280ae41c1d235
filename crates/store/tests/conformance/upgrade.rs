//! Migration 0012 (agents, `no_response`, transcripts) on a database that already holds
//! calls and their events: SQLite rebuilds its `calls` table to widen the outcome CHECK,
//! and nothing is lost on either backend.

use crate::pg;
use dialtone_core::{CallId, Outcome, WorkspaceId};
use sqlx::migrate::Migrator;
use sqlx::{Connection, Executor, PgConnection, SqliteConnection};
use std::borrow::Cow;

/// The migrations before 0012.
fn before_0012(m: Migrator) -> Migrator {
    Migrator { migrations: Cow::Owned(m.migrations.iter().filter(|x| x.version < 12).cloned().collect()), ..m }
}

/// A workspace, a campaign, a contact, an ended call and an event naming it: rows 0012
/// must carry over (the event's foreign key points at the call SQLite rebuilds).
const ROWS: &str = "INSERT INTO workspaces (id, name, is_default, created_at) VALUES ('ws_up', 'default', TRUE, 0);
INSERT INTO campaigns (id, workspace_id, name, provider, assistant_id, phone_number_id, mode, max_concurrent, max_attempts, retry_policy,
    default_region, status, created_at, updated_at) VALUES ('cmp_up', 'ws_up', 'n', 'sim', 'a', 'p', 'continuous', 1, 3, '{}', 'US', 'dialing', 0, 0);
INSERT INTO contacts (id, workspace_id, campaign_id, phone, status, next_attempt_at, created_at, updated_at)
    VALUES ('ct_up', 'ws_up', 'cmp_up', '+14155550100', 'in_call', 0, 0, 0);
INSERT INTO calls (id, workspace_id, campaign_id, contact_id, attempt, provider, provider_call_id, phone, status, created_at, updated_at, last_event_at, answered_by)
    VALUES ('call_up', 'ws_up', 'cmp_up', 'ct_up', 1, 'sim', 'prov-up', '+14155550100', 'in_progress', 0, 0, 0, 'human');
INSERT INTO call_events (id, workspace_id, call_id, source, provider_type, kind, dedupe_key, applied, payload, received_at)
    VALUES ('evt_up', 'ws_up', 'call_up', 'provider', 'status-update', 'progress:in_progress', 'up-1', TRUE, '{}', 0);";

async fn check(store: std::sync::Arc<dyn dialtone_store::Store>) {
    let ws = WorkspaceId::from_db("ws_up".into());
    let call_id = CallId::from_db("call_up".into());
    let call = store.get_call(&ws, &call_id).await.unwrap().expect("the call carried over");
    assert_eq!((call.provider_call_id.as_deref(), call.answered_by.map(|a| a.as_str())), (Some("prov-up"), Some("human")));
    assert_eq!((call.transcript, call.voicemail_left), (None, false));
    assert_eq!(store.call_events(&ws, &call_id).await.unwrap().len(), 1, "its event still names it");
    let now = jiff::Timestamp::from_second(1).unwrap();
    assert!(store.end_call(&call_id, Outcome::NoResponse, "silent", now).await.unwrap().is_some());
    assert_eq!(store.get_call(&ws, &call_id).await.unwrap().unwrap().outcome, Some(Outcome::NoResponse), "the widened CHECK takes no_response");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_0012_keeps_every_call_and_event_and_takes_no_response() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/up.db", dir.path().display());
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse::<sqlx::sqlite::SqliteConnectOptions>().unwrap().create_if_missing(true).foreign_keys(true);
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    before_0012(sqlx::migrate!("./migrations/sqlite")).run_direct(&mut conn).await.unwrap();
    conn.execute(ROWS.replace("TRUE", "1").as_str()).await.unwrap();
    conn.close().await.unwrap();
    check(dialtone_store::connect(&url).await.expect("0012 runs on a database with rows")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_0012_keeps_every_call_and_event_and_takes_no_response() {
    let db = pg::fresh_database().await;
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    before_0012(sqlx::migrate!("./migrations/postgres")).run_direct(&mut conn).await.unwrap();
    conn.execute(ROWS).await.unwrap();
    conn.close().await.unwrap();
    check(dialtone_store::connect(&db.url).await.expect("0012 runs on a database with rows")).await;
}
