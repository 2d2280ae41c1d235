//! What counts against a provider account's concurrency limit, for the claims of both
//! backends. An account is either a workspace's own (`workspace_provider_accounts`, named
//! by a campaign's `account_id`) or the config file's account of a provider
//! (`provider_accounts`, campaigns with no `account_id`); each counts only its own calls
//! (`calls.account_id`, written by the claim) and shares its room among its own campaigns.

use crate::common::{ms, ACTIVE_SQL};
use crate::sql::{args, Db, Dialect};
use crate::Result;
use jiff::Timestamp;

/// The account's `max_concurrent`, `None` when unlimited. `lock` (PostgreSQL) takes a
/// limited account's row lock: claims of other campaigns on the account hold other campaign rows,
/// and this row is what makes them count its calls one at a time (campaign → account).
/// SQLite's claim holds the database's one writer lock already.
pub async fn limit(mut db: Db<'_>, provider: &str, account: Option<&str>, lock: bool) -> Result<Option<i64>> {
    let lock = if lock && db.dialect() == Dialect::Postgres { " FOR UPDATE" } else { "" };
    // Only a limited account's row is locked: claims on an unlimited one count nothing
    // and must not queue behind each other.
    let row: Option<(i64,)> = match account {
        Some(id) => {
            db.fetch_optional(&format!("SELECT max_concurrent FROM workspace_provider_accounts WHERE id = $1 AND max_concurrent IS NOT NULL{lock}"), args![id])
                .await?
        }
        None => {
            db.fetch_optional(
                &format!("SELECT max_concurrent FROM provider_accounts WHERE provider = $1 AND max_concurrent IS NOT NULL{lock}"),
                args![provider],
            )
            .await?
        }
    };
    Ok(row.map(|(limit,)| limit))
}

/// `(active, sharing)` for the account: its live calls (inbound included), and its
/// campaigns that want slots now (something due, or calls in flight). Inbound calls take
/// account slots but their hidden campaign never claims, so it takes no share.
pub async fn load(mut db: Db<'_>, provider: &str, account: Option<&str>, now: Timestamp) -> Result<(i64, i64)> {
    // The config account's calls (and campaigns) are its provider's on no workspace
    // account; calls and campaigns both carry `provider` and `account_id`.
    let key = account.unwrap_or(provider);
    let [active_sql, sharing_sql] = load_sql(account.is_some());
    let (active,): (i64,) = db.fetch_one(&active_sql, args![key]).await?;
    let (sharing,): (i64,) = db.fetch_one(&sharing_sql, args![key, ms(now)]).await?;
    Ok((active, sharing))
}

/// [`load`]'s two statements, for a workspace account (`$1` its id) or a provider's config
/// account (`$1` the provider); `$2` now (ms). The live calls are read from the partial
/// indexes of live calls (`calls_active_by_account`, `calls_active_by_provider`,
/// `calls_active`).
pub(crate) fn load_sql(account: bool) -> [String; 2] {
    let whose = if account { "account_id = $1" } else { "provider = $1 AND account_id IS NULL" };
    [
        format!("SELECT COUNT(*) FROM calls WHERE {whose} AND status IN {ACTIVE_SQL}"),
        format!(
            "SELECT COUNT(*) FROM campaigns c WHERE {whose} AND status IN ('starting', 'dialing') AND kind <> 'inbound' AND (
                EXISTS (SELECT 1 FROM contacts WHERE campaign_id = c.id AND status = 'pending' AND next_attempt_at <= $2)
                OR EXISTS (SELECT 1 FROM calls WHERE campaign_id = c.id AND status IN {ACTIVE_SQL}))"
        ),
    ]
}
