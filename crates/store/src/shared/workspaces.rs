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
