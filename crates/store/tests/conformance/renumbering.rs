//! PostgreSQL's migrations now carry SQLite's numbers (its 0002_recurrence became 0004):
//! a database migrated under the old numbering still opens, is renumbered, and has no
//! migration applied twice. SQLite kept its numbers, so it has nothing to show here.

use crate::pg;
use crate::support::*;
use dialtone_core::Mode;
use sqlx::{Connection, PgConnection};

/// A row of `_sqlx_migrations`: version, description, checksum, installed_on (as text).
type Row = (i64, String, Vec<u8>, String);

async fn applied(conn: &mut PgConnection) -> Vec<Row> {
    sqlx::query_as("SELECT version, description, checksum, installed_on::text FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(conn)
        .await
        .unwrap()
}

/// What the old PostgreSQL numbering held: 0001_init, then SQLite's 0004..0010 as 0002..0008
/// (SQLite's 0002_suppressions and 0003_schedules were in its 0001_init), and nothing later:
/// what a later version changed in the schema is taken back too, so that it applies again
/// (0011 changes nothing on PostgreSQL; 0012's agents, columns and outcome CHECK are undone).
async fn rewrite_to_the_old_numbering(conn: &mut PgConnection) {
    let mut tx = conn.begin().await.unwrap();
    for undo in [
        "ALTER TABLE campaigns DROP COLUMN agent_id",
        "DROP TABLE agents",
        "ALTER TABLE calls DROP COLUMN transcript, DROP COLUMN voicemail_left, DROP CONSTRAINT calls_outcome_check",
        "ALTER TABLE calls ADD CONSTRAINT calls_outcome_check
            CHECK (outcome IN ('completed', 'no_answer', 'busy', 'voicemail', 'failed', 'invalid_number', 'canceled', 'timeout'))",
    ] {
        sqlx::query(undo).execute(&mut *tx).await.unwrap();
    }
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version IN (2, 3) OR version > 10").execute(&mut *tx).await.unwrap();
    for new in 4..=10i64 {
        sqlx::query("UPDATE _sqlx_migrations SET version = $1 WHERE version = $2").bind(new - 2).bind(new).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_migrated_under_the_old_postgres_numbering_opens_renumbered_with_nothing_applied_twice() {
    let db = pg::fresh_database().await;
    let store = dialtone_store::connect(&db.url).await.expect("migrate a fresh database");
    let (ws, before) = running(&store, Mode::Continuous, 2, 1, 3).await;
    drop(store);
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    let fresh = applied(&mut conn).await;
    let expected: Vec<(i64, String, Vec<u8>)> =
        sqlx::migrate!("./migrations/postgres").iter().map(|m| (m.version, m.description.to_string(), m.checksum.to_vec())).collect();
    assert_eq!(fresh.iter().map(|r| (r.0, r.1.clone(), r.2.clone())).collect::<Vec<_>>(), expected, "a fresh database has every migration once");

    rewrite_to_the_old_numbering(&mut conn).await;
    let old = applied(&mut conn).await;
    assert_eq!(old[1].1, "recurrence", "the old layout: version 2 is recurrence");
    assert_eq!(old.len(), 8);

    // Three nodes start together on it.
    let (a, b, c) = tokio::join!(dialtone_store::connect(&db.url), dialtone_store::connect(&db.url), dialtone_store::connect(&db.url));
    let (store, _, _) = (a.expect("node a opens an old database"), b.expect("node b opens it"), c.expect("node c opens it"));

    let after = applied(&mut conn).await;
    assert_eq!(after.iter().map(|r| (r.0, r.1.clone(), r.2.clone())).collect::<Vec<_>>(), expected, "renumbered: every migration once, as on a fresh database");
    for row in &old {
        let now = after.iter().find(|r| r.1 == row.1).unwrap();
        assert_eq!(now.3, row.3, "{} was moved to version {}, not applied again", row.1, now.0);
    }
    assert_eq!(load_campaign(&store, &ws, &before.id).await.id, before.id, "the data is still there");
    assert_eq!(claim(&store, &before.id, at(0)).await.len(), 2, "and the store works");
}
