//! Workspaces, their API keys, and the provider accounts' concurrency limits.

use super::Pools;
use crate::common::ms;
use crate::rows::ApiKeyRow;
use crate::sql::args;
use crate::Result;
use dialtone_core::{ApiKeyId, ProviderKind, WorkspaceId};
use jiff::Timestamp;

/// The default workspace's id, created on first use (one per database: a partial unique
/// index keeps a second from being inserted).
pub async fn default_workspace(p: Pools<'_>) -> Result<WorkspaceId> {
    let mut db = p.write();
    db.execute(
        "INSERT INTO workspaces (id, name, is_default, created_at) VALUES ($1, 'default', TRUE, $2) ON CONFLICT DO NOTHING",
        args![WorkspaceId::new().as_str(), ms(Timestamp::now())],
    )
    .await?;
    let (id,): (String,) = db.fetch_one("SELECT id FROM workspaces WHERE is_default", args![]).await?;
    Ok(WorkspaceId::from_db(id))
}

pub async fn create_api_key(p: Pools<'_>, ws: &WorkspaceId, name: &str, hash: &str, now: Timestamp) -> Result<ApiKeyId> {
    let id = ApiKeyId::new();
    p.write()
        .execute(
            "INSERT INTO api_keys (id, workspace_id, name, key_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
            args![id.as_str(), ws.as_str(), name, hash, ms(now)],
        )
        .await?;
    Ok(id)
}

/// The key with this hash and its workspace, unless it was revoked.
pub async fn find_api_key(p: Pools<'_>, hash: &str) -> Result<Option<(ApiKeyId, WorkspaceId)>> {
    let row: Option<ApiKeyRow> = p.read().fetch_optional("SELECT * FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", args![hash]).await?;
    Ok(row.map(|r| (ApiKeyId::from_db(r.id), WorkspaceId::from_db(r.workspace_id))))
}

/// Sets (or, with `None`, lifts) the limit of a whole provider account.
pub async fn set_account_limit(p: Pools<'_>, provider: ProviderKind, max_concurrent: Option<u32>, now: Timestamp) -> Result<()> {
    p.write()
        .execute(
            "INSERT INTO provider_accounts (provider, max_concurrent, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (provider) DO UPDATE SET max_concurrent = $2, updated_at = $3",
            args![provider.as_str(), max_concurrent, ms(now)],
        )
        .await?;
    Ok(())
}

/// An API key as `dialtone keys list` shows it: never the key nor its hash.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct ApiKeyInfo {
    pub id: String,
    pub name: String,
    /// The key's first characters (`dt_` and 5 more); `null` for a key made before they were kept.
    pub prefix: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms, at most a minute late; `null` if never used since it was recorded.
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A workspace's API keys, revoked ones included, oldest first.
pub async fn list_api_keys(p: Pools<'_>, ws: &WorkspaceId) -> Result<Vec<ApiKeyInfo>> {
    p.read()
        .fetch_all(
            "SELECT id, name, key_prefix AS prefix, created_at, last_used_at, revoked_at FROM api_keys WHERE workspace_id = $1 ORDER BY created_at, id",
            args![ws.as_str()],
        )
        .await
}

/// Records the first characters of a key just created (see [`ApiKeyInfo::prefix`]).
pub async fn set_api_key_prefix(p: Pools<'_>, id: &ApiKeyId, prefix: &str) -> Result<()> {
    p.write().execute("UPDATE api_keys SET key_prefix = $1 WHERE id = $2", args![prefix, id.as_str()]).await?;
    Ok(())
}

/// Revokes a key of `ws` by its id: from the commit on, `find_api_key` no longer finds it,
/// on every server sharing the database. False if there is no such key or it was revoked.
pub async fn revoke_api_key(p: Pools<'_>, ws: &WorkspaceId, id: &str, now: Timestamp) -> Result<bool> {
    let n = p
        .write()
        .execute("UPDATE api_keys SET revoked_at = $1 WHERE workspace_id = $2 AND id = $3 AND revoked_at IS NULL", args![ms(now), ws.as_str(), id])
        .await?;
    Ok(n == 1)
}

/// Notes that `id` authenticated a request at `now` (never moving the time back).
pub async fn touch_api_key(p: Pools<'_>, id: &ApiKeyId, now: Timestamp) -> Result<()> {
    p.write()
        .execute("UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)", args![ms(now), id.as_str()])
        .await?;
    Ok(())
}
