//! `Idempotency-Key` records, written once for both backends (the rules the API applies are
//! in the server's `api/idempotency.rs`; the header is draft-ietf-httpapi-idempotency-key-header).
//!
//! A record lives 24 h ([`TTL`]) from the first request that carried its key. Its primary
//! key (workspace, key) makes exactly one request the owner on every node: the owner runs,
//! then [`finish`] stores its answer; a request that finds the key in progress is refused,
//! one that finds it done gets the stored answer. An owner that fails on our side
//! ([`abandon`]) or dies (in progress for longer than [`STALE`]) leaves the key free again.
//! Expired records are deleted by the reaper ([`purge`]).
//!
//! An answer that shows a secret once (a new API key, a webhook signing secret) is stored
//! only sealed under the master key ([`crate::secrets`], bound to its workspace and key),
//! like every other secret at rest; without a master key it is not stored at all (the
//! server frees the key instead). [`rotate_secrets`] re-seals such answers with the rest.

use super::Pools;
use crate::common::ms;
use crate::secrets::{self, Keyring};
use crate::sql::args;
use crate::{Result, StoreError};
use dialtone_core::WorkspaceId;
use jiff::{SignedDuration, Timestamp};

/// How long a key is remembered: 24 h, as Stripe does and the issue asks.
pub const TTL: SignedDuration = SignedDuration::from_hours(24);

/// An in-progress record older than this belongs to a request that cannot still be running
/// (a contact import of the largest allowed upload takes minutes), so its node died: the key
/// is free again. 1 h.
pub const STALE: SignedDuration = SignedDuration::from_hours(1);

/// The first answer to a request, as it is replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status code.
    pub status: u16,
    pub content_type: Option<String>,
    /// The `Location` header of a create's answer (`/api/v1/campaigns/cmp_…`), replayed with it.
    pub location: Option<String>,
    /// The body, UTF-8 (every API answer is JSON).
    pub body: String,
    /// The body shows a secret (an API key, a `whsec_` signing secret): it is stored sealed
    /// under the master key, never in plaintext ([`finish`] refuses it without a keyring).
    pub secret: bool,
}

/// What [`begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// The key is new (or expired, or abandoned): this request owns it and runs.
    Owner,
    /// Another request with this key is still running.
    InProgress,
    /// A request with this key ran: its method/path/query, body hash and answer.
    Done { request: String, body_sha256: String, response: StoredResponse },
}

#[derive(sqlx::FromRow)]
struct Row {
    request: String,
    body_sha256: Option<String>,
    status: String,
    response_status: Option<i64>,
    response_content_type: Option<String>,
    response_location: Option<String>,
    response_body: Option<String>,
}

/// Claims `key` for `request` (`"POST /api/v1/campaigns"`), or says who has it. This key's
/// record is removed first, in the same transaction, if it expired or went stale (other
/// workspaces' expired records are the reaper's: [`purge`]).
///
/// Errors: a stored answer sealed by a key the keyring does not hold, or with no keyring
/// ([`StoreError::Corrupt`] / [`StoreError::NoMasterKey`]).
pub async fn begin(p: Pools<'_>, keyring: Option<&Keyring>, ws: &WorkspaceId, key: &str, request: &str, now: Timestamp) -> Result<Begun> {
    let expired = ms(now.saturating_sub(TTL).unwrap_or(now));
    let stale = ms(now.saturating_sub(STALE).unwrap_or(now));
    let mut tx = p.begin().await?;
    let mut db = tx.db();
    db.execute(
        "DELETE FROM idempotency_keys WHERE workspace_id = $1 AND idempotency_key = $2
           AND (created_at < $3 OR (status = 'in_progress' AND created_at < $4))",
        args![ws.as_str(), key, expired, stale],
    )
    .await?;
    // ON CONFLICT … DO NOTHING is the same text on SQLite (3.24+) and PostgreSQL.
    let inserted = db
        .execute(
            "INSERT INTO idempotency_keys (workspace_id, idempotency_key, request, status, created_at) VALUES ($1, $2, $3, 'in_progress', $4)
             ON CONFLICT (workspace_id, idempotency_key) DO NOTHING",
            args![ws.as_str(), key, request, ms(now)],
        )
        .await?;
    let begun = if inserted == 1 {
        Begun::Owner
    } else {
        let row: Row = db
            .fetch_one(
                "SELECT request, body_sha256, status, response_status, response_content_type, response_location, response_body FROM idempotency_keys
                 WHERE workspace_id = $1 AND idempotency_key = $2",
                args![ws.as_str(), key],
            )
            .await?;
        match (row.status.as_str(), row.body_sha256, row.response_status, row.response_body) {
            ("done", Some(body_sha256), Some(status), Some(body)) => {
                let secret = secrets::is_encrypted(&body);
                let body = if secret { open(keyring, ws, key, &body)? } else { body };
                Begun::Done {
                    request: row.request,
                    body_sha256,
                    response: StoredResponse {
                        status: u16::try_from(status).unwrap_or(500),
                        content_type: row.response_content_type,
                        location: row.response_location,
                        body,
                        secret,
                    },
                }
            }
            _ => Begun::InProgress,
        }
    };
    tx.commit().await?;
    Ok(begun)
}

/// Where a stored answer is sealed: a ciphertext moved to another record fails to open.
fn context(ws: &WorkspaceId, key: &str) -> String {
    format!("idempotency_keys:{}:{key}:response_body", ws.as_str())
}

fn open(keyring: Option<&Keyring>, ws: &WorkspaceId, key: &str, sealed: &str) -> Result<String> {
    use secrecy::ExposeSecret;
    let keyring = keyring.ok_or(StoreError::NoMasterKey)?;
    let plain = keyring
        .decrypt(sealed, &context(ws, key))
        .map_err(|e| StoreError::Corrupt(format!("the stored answer of Idempotency-Key {key:?} in {}: {e}", ws.as_str())))?;
    Ok(plain.expose_secret().to_owned())
}

/// Stores the owner's answer and the hash of the body it was given, sealing a
/// [`StoredResponse::secret`] body under `keyring`. False if the record is gone (it went
/// stale and another request took the key): nothing is stored then. Errors:
/// [`StoreError::NoMasterKey`] for a secret answer without a keyring (nothing is stored).
pub async fn finish(p: Pools<'_>, keyring: Option<&Keyring>, ws: &WorkspaceId, key: &str, body_sha256: &str, response: &StoredResponse) -> Result<bool> {
    let sealed;
    let body = if response.secret {
        sealed = keyring.ok_or(StoreError::NoMasterKey)?.encrypt(&response.body, &context(ws, key));
        &sealed
    } else {
        &response.body
    };
    let n = p
        .write()
        .execute(
            "UPDATE idempotency_keys SET status = 'done', body_sha256 = $3, response_status = $4, response_content_type = $5, response_body = $6,
                response_location = $7
             WHERE workspace_id = $1 AND idempotency_key = $2 AND status = 'in_progress'",
            args![ws.as_str(), key, body_sha256, i64::from(response.status), response.content_type.as_deref(), body, response.location.as_deref()],
        )
        .await?;
    Ok(n == 1)
}

/// Deletes at most `limit` records older than [`TTL`] at `now`, oldest first; returns how
/// many went. The reaper calls it in rounds, off the request path.
pub async fn purge(p: Pools<'_>, now: Timestamp, limit: u32) -> Result<u64> {
    let expired = ms(now.saturating_sub(TTL).unwrap_or(now));
    p.write()
        .execute(
            "DELETE FROM idempotency_keys WHERE (workspace_id, idempotency_key) IN (
                SELECT workspace_id, idempotency_key FROM idempotency_keys WHERE created_at < $1 ORDER BY created_at LIMIT $2)",
            args![expired, limit],
        )
        .await
}

/// Re-seals under `keyring`'s current key every stored answer sealed by another key
/// (part of the store's `rotate_secrets`): the number re-sealed. A record changed or
/// deleted meanwhile is left alone. Errors: an answer sealed by a key `keyring` lacks.
pub async fn rotate_secrets(p: Pools<'_>, keyring: &Keyring) -> Result<u64> {
    let current = format!("{}:{}:%", secrets::PREFIX, keyring.current_id());
    let sealed = format!("{}:%", secrets::PREFIX);
    let rows: Vec<(String, String, String)> = p
        .read()
        .fetch_all(
            "SELECT workspace_id, idempotency_key, response_body FROM idempotency_keys WHERE response_body LIKE $1 AND response_body NOT LIKE $2",
            args![&sealed, &current],
        )
        .await?;
    let mut n = 0;
    for (ws, key, stored) in rows {
        let ws = WorkspaceId::from_db(ws);
        let plain = open(Some(keyring), &ws, &key, &stored)?;
        let resealed = keyring.encrypt(&plain, &context(&ws, &key));
        n += p
            .write()
            .execute(
                "UPDATE idempotency_keys SET response_body = $1 WHERE workspace_id = $2 AND idempotency_key = $3 AND response_body = $4",
                args![resealed, ws.as_str(), &key, &stored],
            )
            .await?;
    }
    Ok(n)
}

/// Frees a key whose owner failed on our side (a 5xx, or a body it did not read to its end),
/// so the client's retry runs afresh.
pub async fn abandon(p: Pools<'_>, ws: &WorkspaceId, key: &str) -> Result<()> {
    p.write()
        .execute("DELETE FROM idempotency_keys WHERE workspace_id = $1 AND idempotency_key = $2 AND status = 'in_progress'", args![ws.as_str(), key])
        .await?;
    Ok(())
}
