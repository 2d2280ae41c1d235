//! Workspaces, their API keys, and the provider accounts' concurrency limits.

use super::Pools;
use crate::common::ms;
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

/// The key with this hash and its workspace, unless it was revoked or its workspace is disabled.
pub async fn find_api_key(p: Pools<'_>, hash: &str) -> Result<Option<(ApiKeyId, WorkspaceId)>> {
    Ok(authenticate(p, hash).await?.map(|g| (g.key_id, g.workspace_id)))
}

/// What a request's API key may do: its workspace, its scopes and whether that workspace is
/// the default (operator's) one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGrant {
    pub key_id: ApiKeyId,
    pub workspace_id: WorkspaceId,
    /// Comma-separated scopes as stored (`read`, `write`, `admin`).
    pub scopes: String,
    /// The key belongs to the default workspace.
    pub operator: bool,
}

#[derive(sqlx::FromRow)]
struct GrantRow {
    id: String,
    workspace_id: String,
    scopes: String,
    is_default: bool,
}

/// The grant of the key with this hash, unless the key was revoked or its workspace is
/// disabled. Read from the database on every call (no cache), so a revocation or a
/// disabled workspace holds from its commit on, on every server sharing the database.
pub async fn authenticate(p: Pools<'_>, hash: &str) -> Result<Option<KeyGrant>> {
    let row: Option<GrantRow> = p
        .read()
        .fetch_optional(
            "SELECT k.id, k.workspace_id, k.scopes, w.is_default FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id
             WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND w.disabled_at IS NULL",
            args![hash],
        )
        .await?;
    Ok(row.map(|r| KeyGrant { key_id: ApiKeyId::from_db(r.id), workspace_id: WorkspaceId::from_db(r.workspace_id), scopes: r.scopes, operator: r.is_default }))
}

/// Creates a key of `ws` with `scopes` (comma-separated, checked by the caller).
pub async fn create_scoped_api_key(p: Pools<'_>, ws: &WorkspaceId, name: &str, hash: &str, prefix: &str, scopes: &str, now: Timestamp) -> Result<ApiKeyId> {
    let id = ApiKeyId::new();
    p.write()
        .execute(
            "INSERT INTO api_keys (id, workspace_id, name, key_hash, key_prefix, scopes, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            args![id.as_str(), ws.as_str(), name, hash, prefix, scopes, ms(now)],
        )
        .await?;
    Ok(id)
}

/// The workspace of a key (revoked or not), by the key's id; `None` if there is no such key.
pub async fn api_key_workspace(p: Pools<'_>, id: &str) -> Result<Option<WorkspaceId>> {
    let row: Option<(String,)> = p.read().fetch_optional("SELECT workspace_id FROM api_keys WHERE id = $1", args![id]).await?;
    Ok(row.map(|(ws,)| WorkspaceId::from_db(ws)))
}

/// A workspace as the API shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct Workspace {
    /// `ws_…`.
    pub id: String,
    pub name: String,
    /// The operator's workspace, made at first start: never disabled; its admin keys manage every workspace.
    pub is_default: bool,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms; `null` while enabled. A disabled workspace's keys get 401.
    pub disabled_at: Option<i64>,
    /// Calls each caller number may place per UTC day across the workspace's campaigns
    /// (issue 13, `crate::callers`); `None`: no limit.
    pub caller_number_daily_limit: Option<i64>,
}

const WORKSPACE_COLUMNS: &str = "SELECT id, name, is_default, created_at, disabled_at, caller_number_daily_limit FROM workspaces";

/// Sets (or with `None` removes) the workspace's daily call limit per caller number; it
/// holds from the next claim, which also judges again the contacts that were waiting for
/// the old limit (they are due at `now`). `None` back if there is no such workspace.
pub async fn set_caller_number_daily_limit(p: Pools<'_>, id: &str, limit: Option<u32>, now: Timestamp) -> Result<Option<Workspace>> {
    let mut tx = p.begin().await?;
    let n = tx.db().execute("UPDATE workspaces SET caller_number_daily_limit = $1 WHERE id = $2", args![limit, id]).await?;
    if n == 0 {
        return Ok(None);
    }
    tx.db()
        .execute(
            "UPDATE contacts SET next_attempt_at = $1, wait_reason = NULL, updated_at = $1
             WHERE workspace_id = $2 AND status = 'pending' AND wait_reason = 'caller_number_limit'",
            args![ms(now), id],
        )
        .await?;
    tx.commit().await?;
    get_workspace(p, id).await
}

/// Creates an enabled, non-default workspace named `name`.
pub async fn create_workspace(p: Pools<'_>, name: &str, now: Timestamp) -> Result<Workspace> {
    let id = WorkspaceId::new();
    p.write().execute("INSERT INTO workspaces (id, name, is_default, created_at) VALUES ($1, $2, FALSE, $3)", args![id.as_str(), name, ms(now)]).await?;
    Ok(Workspace {
        id: id.as_str().to_string(),
        name: name.to_string(),
        is_default: false,
        created_at: ms(now),
        disabled_at: None,
        caller_number_daily_limit: None,
    })
}

/// Every workspace, oldest first (the default one first).
pub async fn list_workspaces(p: Pools<'_>) -> Result<Vec<Workspace>> {
    p.read().fetch_all(&format!("{WORKSPACE_COLUMNS} ORDER BY is_default DESC, created_at, id"), args![]).await
}

/// One workspace; `None` if there is none with this id.
pub async fn get_workspace(p: Pools<'_>, id: &str) -> Result<Option<Workspace>> {
    p.read().fetch_optional(&format!("{WORKSPACE_COLUMNS} WHERE id = $1"), args![id]).await
}

/// Renames and/or disables (`Some(true)`, from `now`) or enables (`Some(false)`) a
/// workspace; the default one is never disabled (the row is left as it is). The workspace
/// as it now is, or `None` if there is none with this id.
pub async fn update_workspace(p: Pools<'_>, id: &str, name: Option<&str>, disabled: Option<bool>, now: Timestamp) -> Result<Option<Workspace>> {
    let mut db = p.write();
    if let Some(name) = name {
        db.execute("UPDATE workspaces SET name = $1 WHERE id = $2", args![name, id]).await?;
    }
    match disabled {
        Some(true) => {
            db.execute("UPDATE workspaces SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL AND NOT is_default", args![ms(now), id]).await?;
        }
        Some(false) => {
            db.execute("UPDATE workspaces SET disabled_at = NULL WHERE id = $1", args![id]).await?;
        }
        None => {}
    }
    db.fetch_optional(&format!("{WORKSPACE_COLUMNS} WHERE id = $1"), args![id]).await
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
    /// Comma-separated: `read`, `write`, `admin`.
    pub scopes: String,
}

/// A workspace's API keys, revoked ones included, oldest first.
pub async fn list_api_keys(p: Pools<'_>, ws: &WorkspaceId) -> Result<Vec<ApiKeyInfo>> {
    p.read()
        .fetch_all(
            "SELECT id, name, key_prefix AS prefix, created_at, last_used_at, revoked_at, scopes FROM api_keys WHERE workspace_id = $1 ORDER BY created_at, id",
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
