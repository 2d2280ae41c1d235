//! Moves a PostgreSQL database migrated under the old numbering to the new one, before
//! sqlx's migrator looks at it.
//!
//! PostgreSQL used to number its migrations 0001..0008, SQLite's 0002_suppressions and
//! 0003_schedules being folded into its 0001_init, so PostgreSQL's 0002 was SQLite's 0004.
//! Now a version means the same change on both backends: PostgreSQL has empty 0002 and 0003
//! and its other files moved to 0004..0010, contents unchanged. A database migrated before
//! holds rows 2..8 in `_sqlx_migrations` for those files, which the migrator would refuse
//! (version 2 is now another file). Their checksums stay valid (same contents), so moving
//! each row to its new version is enough; the migrator then applies the empty 0002 and
//! 0003 and whatever is new.

use crate::Result;
use sqlx::PgPool;

/// The files that moved: (old version, sqlx's description, new version), highest first so
/// that no row is moved onto one not moved yet.
const MOVED: [(i64, &str, i64); 7] = [
    (8, "guard rails", 10),
    (7, "event edges", 9),
    (6, "contact extension", 8),
    (5, "contact zones", 7),
    (4, "node leases", 6),
    (3, "accounts inbound", 5),
    (2, "recurrence", 4),
];

/// Renumbers the rows of an old layout (recognised by version 2 being `recurrence`) to
/// the new versions, in one transaction; does nothing to a fresh database or one already
/// renumbered. Returns how many rows moved.
///
/// Nodes starting together: the transaction locks `_sqlx_migrations` (SHARE ROW
/// EXCLUSIVE, which conflicts with itself and with the migrator's inserts) before it
/// looks, so one node renumbers and the others then find the new layout and move nothing.
pub(super) async fn renumber_old_layout(pool: &PgPool) -> Result<u64> {
    let mut tx = pool.begin().await?;
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL").fetch_one(&mut *tx).await?;
    if !exists {
        return Ok(0);
    }
    sqlx::query("LOCK TABLE _sqlx_migrations IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
    let old: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM _sqlx_migrations WHERE version = 2 AND description = 'recurrence')").fetch_one(&mut *tx).await?;
    if !old {
        return Ok(0);
    }
    let mut moved = 0;
    for (from, description, to) in MOVED {
        moved += sqlx::query("UPDATE _sqlx_migrations SET version = $1 WHERE version = $2 AND description = $3")
            .bind(to)
            .bind(from)
            .bind(description)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    tx.commit().await?;
    tracing::info!(moved, "renumbered PostgreSQL migrations to the numbering shared with SQLite");
    Ok(moved)
}
