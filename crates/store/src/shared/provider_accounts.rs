//! A workspace's own provider accounts (issue 13): its Vapi, Twilio or Exotel credentials,
//! several per provider allowed, with their limits. The secret credentials are one JSON
//! object sealed with the master key ([`crate::secrets`]), bound to the row
//! (`workspace_provider_accounts:{id}:secrets`); the store never holds them in the clear
//! and hands them out only as [`SecretString`]s.
//!
//! [`rotate_secrets`] re-encrypts every stored secret not sealed by the current key (the
//! provider accounts' and the webhook endpoints' signing secrets); it is idempotent and
//! runs at every start and from `dialtone secrets rotate`.

use super::Pools;
use crate::common::{ms, opt_ts, ts};
use crate::secrets::{self, Keyring};
use crate::sql::args;
use crate::{Page, Result, StoreError};
use dialtone_core::{CallId, ProviderAccountId, ProviderKind, WorkspaceId};
use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;

/// A provider account as stored, its secrets left out (see [`account_secrets`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderAccount {
    /// `pa_…`.
    pub id: ProviderAccountId,
    pub workspace_id: WorkspaceId,
    /// `vapi`, `twilio` or `exotel`.
    pub provider: ProviderKind,
    pub name: String,
    /// The settings that are not secret (`account_sid`, `base_url`, …), by name.
    pub settings: BTreeMap<String, serde_json::Value>,
    /// `…` and the last four characters of each secret, by name.
    pub secret_hints: BTreeMap<String, String>,
    /// Calls at once on this account; `None`: no limit.
    pub max_concurrent: Option<u32>,
    /// Calls placed per second; `None`: the provider's default rate.
    pub calls_per_second: Option<f64>,
    /// When it was disabled (`DELETE`); `None` while enabled.
    pub disabled_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A new account, checked by the caller (the provider's required fields are there).
#[derive(Debug, Clone)]
pub struct NewProviderAccount {
    pub provider: ProviderKind,
    pub name: String,
    pub settings: BTreeMap<String, serde_json::Value>,
    /// The secret credentials by name (`api_key`, `auth_token`, …).
    pub secrets: BTreeMap<String, SecretString>,
    pub max_concurrent: Option<u32>,
    pub calls_per_second: Option<f64>,
}

/// What a PATCH changes; `None` leaves a field as it is. `settings` and `secrets` are
/// merged name by name (a name given replaces its value; a setting given as JSON `null`
/// is removed).
#[derive(Debug, Clone, Default)]
pub struct ProviderAccountPatch {
    pub name: Option<String>,
    pub settings: BTreeMap<String, serde_json::Value>,
    pub secrets: BTreeMap<String, SecretString>,
    /// `Some(None)` lifts the limit.
    pub max_concurrent: Option<Option<u32>>,
    /// `Some(None)`: back to the provider's default rate.
    pub calls_per_second: Option<Option<f64>>,
    /// `Some(false)` disables from now, `Some(true)` enables.
    pub enabled: Option<bool>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    workspace_id: String,
    provider: String,
    name: String,
    settings: String,
    secret_hints: String,
    max_concurrent: Option<i64>,
    calls_per_second: Option<f64>,
    disabled_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

const COLUMNS: &str = "SELECT id, workspace_id, provider, name, settings, secret_hints, max_concurrent, calls_per_second, disabled_at, created_at, updated_at
    FROM workspace_provider_accounts";

impl TryFrom<Row> for ProviderAccount {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self> {
        let corrupt = |what: &str, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("provider account {}: {what}: {e}", r.id));
        Ok(ProviderAccount {
            provider: r.provider.parse().map_err(|e| corrupt("provider", &e))?,
            settings: serde_json::from_str(&r.settings).map_err(|e| corrupt("settings", &e))?,
            secret_hints: serde_json::from_str(&r.secret_hints).map_err(|e| corrupt("secret_hints", &e))?,
            max_concurrent: r.max_concurrent.map(|v| u32::try_from(v).unwrap_or(u32::MAX)),
            calls_per_second: r.calls_per_second,
            disabled_at: opt_ts(r.disabled_at)?,
            created_at: ts(r.created_at)?,
            updated_at: ts(r.updated_at)?,
            id: ProviderAccountId::from_db(r.id),
            workspace_id: WorkspaceId::from_db(r.workspace_id),
            name: r.name,
        })
    }
}

/// The associated data a row's secrets are sealed with: a ciphertext moved to another row
/// does not open.
fn context(id: &str) -> String {
    format!("workspace_provider_accounts:{id}:secrets")
}

fn seal(keyring: &Keyring, id: &str, secrets: &BTreeMap<String, SecretString>) -> (String, String) {
    let plain: BTreeMap<&str, &str> = secrets.iter().map(|(k, v)| (k.as_str(), v.expose_secret())).collect();
    let json = zeroize::Zeroizing::new(serde_json::to_string(&plain).expect("a map of strings serializes"));
    let hints: BTreeMap<&str, String> = secrets.iter().map(|(k, v)| (k.as_str(), secrets::last_four(v))).collect();
    (keyring.encrypt(&json, &context(id)), serde_json::to_string(&hints).expect("a map of strings serializes"))
}

fn open(keyring: &Keyring, id: &str, sealed: &str) -> Result<BTreeMap<String, SecretString>> {
    let json = keyring.decrypt(sealed, &context(id)).map_err(|e| StoreError::Corrupt(format!("provider account {id}'s secrets: {e}")))?;
    let map: BTreeMap<String, String> =
        serde_json::from_str(json.expose_secret()).map_err(|e| StoreError::Corrupt(format!("provider account {id}'s secrets: not a JSON object: {e}")))?;
    Ok(map.into_iter().map(|(k, v)| (k, SecretString::from(v))).collect())
}

fn settings_json(settings: &BTreeMap<String, serde_json::Value>) -> String {
    serde_json::to_string(settings).expect("JSON values serialize")
}

/// Stores a new enabled account of `ws`, its secrets sealed under `keyring`'s current key.
pub async fn create(p: Pools<'_>, ws: &WorkspaceId, new: &NewProviderAccount, keyring: &Keyring, now: Timestamp) -> Result<ProviderAccount> {
    let id = ProviderAccountId::new();
    let (sealed, hints) = seal(keyring, id.as_str(), &new.secrets);
    p.write()
        .execute(
            "INSERT INTO workspace_provider_accounts (id, workspace_id, provider, name, settings, secrets, secret_hints, max_concurrent, calls_per_second, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
            args![
                id.as_str(),
                ws.as_str(),
                new.provider.as_str(),
                &new.name,
                settings_json(&new.settings),
                sealed,
                hints,
                new.max_concurrent,
                new.calls_per_second,
                ms(now)
            ],
        )
        .await?;
    get(p, ws, id.as_str()).await?.ok_or_else(|| StoreError::not_found("provider account", id))
}

/// One account of `ws` (enabled or not); `None` if `ws` has none with this id.
pub async fn get(p: Pools<'_>, ws: &WorkspaceId, id: &str) -> Result<Option<ProviderAccount>> {
    let row: Option<Row> = p.read().fetch_optional(&format!("{COLUMNS} WHERE workspace_id = $1 AND id = $2"), args![ws.as_str(), id]).await?;
    row.map(ProviderAccount::try_from).transpose()
}

/// The account `id` of whichever workspace holds it (a webhook route names only the
/// account: its workspace is the row's).
pub async fn find(p: Pools<'_>, id: &str) -> Result<Option<ProviderAccount>> {
    let row: Option<Row> = p.read().fetch_optional(&format!("{COLUMNS} WHERE id = $1"), args![id]).await?;
    row.map(ProviderAccount::try_from).transpose()
}

/// The provider and account (`None`: the config file's) that call `call` was placed
/// through; `None` when there is no such call. For the voice pipeline, whose media stream
/// names only its call (authenticated by the call's stream token).
pub async fn of_call(p: Pools<'_>, call: &CallId) -> Result<Option<(ProviderKind, Option<ProviderAccountId>)>> {
    let row: Option<(String, Option<String>)> = p.read().fetch_optional("SELECT provider, account_id FROM calls WHERE id = $1", args![call.as_str()]).await?;
    let Some((provider, account)) = row else { return Ok(None) };
    let provider = provider.parse().map_err(|e| StoreError::Corrupt(format!("call {call}: provider: {e}")))?;
    Ok(Some((provider, account.map(ProviderAccountId::from_db))))
}

/// A page of the accounts of `ws`, newest first (disabled ones included).
pub async fn list(p: Pools<'_>, ws: &WorkspaceId, page: &Page) -> Result<Vec<ProviderAccount>> {
    let rows: Vec<Row> = p
        .read()
        .fetch_all(
            &format!("{COLUMNS} WHERE workspace_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"),
            args![ws.as_str(), page.before.as_deref(), page.limit],
        )
        .await?;
    rows.into_iter().map(ProviderAccount::try_from).collect()
}

/// Applies `patch` to an account of `ws`, re-sealing its secrets if any is given (under
/// the current key); `None` if `ws` has no such account. Errors:
/// [`StoreError::NoMasterKey`] when `patch` has secrets and there is no `keyring`.
pub async fn update(
    p: Pools<'_>,
    ws: &WorkspaceId,
    id: &str,
    patch: &ProviderAccountPatch,
    keyring: Option<&Keyring>,
    now: Timestamp,
) -> Result<Option<ProviderAccount>> {
    let mut tx = p.begin().await?;
    let mut db = tx.db();
    // PostgreSQL locks the row, so two PATCHes of its secrets merge rather than one losing
    // the other's (SQLite's one writer already serialises them); the same text runs on both
    // but for the lock clause.
    let lock = if db.dialect() == crate::sql::Dialect::Postgres { " FOR UPDATE" } else { "" };
    let current: Option<(String, String)> = db
        .fetch_optional(&format!("SELECT settings, secrets FROM workspace_provider_accounts WHERE workspace_id = $1 AND id = $2{lock}"), args![ws.as_str(), id])
        .await?;
    let Some((settings, sealed)) = current else {
        return Ok(None);
    };
    let mut settings: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&settings).map_err(|e| StoreError::Corrupt(format!("provider account {id}'s settings: {e}")))?;
    for (k, v) in &patch.settings {
        if v.is_null() {
            settings.remove(k);
        } else {
            settings.insert(k.clone(), v.clone());
        }
    }
    let (sealed, hints) = if patch.secrets.is_empty() {
        (None, None)
    } else {
        let keyring = keyring.ok_or(StoreError::NoMasterKey)?;
        let mut secrets = open(keyring, id, &sealed)?;
        for (k, v) in &patch.secrets {
            secrets.insert(k.clone(), v.clone());
        }
        let (s, h) = seal(keyring, id, &secrets);
        (Some(s), Some(h))
    };
    let (set_max, max) = match patch.max_concurrent {
        Some(m) => (true, m),
        None => (false, None),
    };
    let (set_rate, rate) = match patch.calls_per_second {
        Some(r) => (true, r),
        None => (false, None),
    };
    db.execute(
        "UPDATE workspace_provider_accounts SET name = COALESCE($3, name), settings = $4, secrets = COALESCE($5, secrets),
            secret_hints = COALESCE($6, secret_hints),
            max_concurrent = CASE WHEN $7 THEN $8 ELSE max_concurrent END,
            calls_per_second = CASE WHEN $9 THEN $10 ELSE calls_per_second END,
            disabled_at = CASE WHEN $11 IS NULL THEN disabled_at WHEN $11 THEN NULL ELSE COALESCE(disabled_at, $12) END,
            updated_at = $12
         WHERE workspace_id = $1 AND id = $2",
        args![ws.as_str(), id, patch.name.as_deref(), settings_json(&settings), sealed, hints, set_max, max, set_rate, rate, patch.enabled, ms(now)],
    )
    .await?;
    tx.commit().await?;
    get(p, ws, id).await
}

/// The secret credentials of an account, opened with `keyring` (for the client that calls
/// the provider and the webhook route that checks its signatures; never for an answer).
/// `None` if there is no such account.
pub async fn account_secrets(p: Pools<'_>, id: &str, keyring: &Keyring) -> Result<Option<BTreeMap<String, SecretString>>> {
    let row: Option<(String,)> = p.read().fetch_optional("SELECT secrets FROM workspace_provider_accounts WHERE id = $1", args![id]).await?;
    row.map(|(sealed,)| open(keyring, id, &sealed)).transpose()
}

/// Re-encrypts under `keyring`'s current key every stored secret sealed by another key
/// (provider accounts, then webhook endpoints' signing secrets, sealing those still in
/// plaintext from before 0024, then `Idempotency-Key` answers that show a secret): the
/// number of values re-sealed. A row changed meanwhile
/// is left to the next run (each update names the value it replaces). Errors: a value
/// sealed by a key `keyring` does not hold ([`StoreError::Corrupt`], naming the key id):
/// nothing after it is re-sealed, nothing before it is lost.
pub async fn rotate_secrets(p: Pools<'_>, keyring: &Keyring) -> Result<u64> {
    let mut n = 0;
    let stale = format!("{}:{}:%", secrets::PREFIX, keyring.current_id());
    let rows: Vec<(String, String)> =
        p.read().fetch_all("SELECT id, secrets FROM workspace_provider_accounts WHERE secrets NOT LIKE $1", args![&stale]).await?;
    for (id, sealed) in rows {
        let plain = open(keyring, &id, &sealed)?;
        let (resealed, _) = seal(keyring, &id, &plain);
        n += p.write().execute("UPDATE workspace_provider_accounts SET secrets = $1 WHERE id = $2 AND secrets = $3", args![resealed, &id, sealed]).await?;
    }
    n += super::outbox::rotate_secrets(p, keyring).await?;
    n += super::idempotency::rotate_secrets(p, keyring).await?;
    Ok(n)
}
