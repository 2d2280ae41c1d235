//! Applying provider events on SQLite: what differs from PostgreSQL. The decisions and the
//! statements written once are `crate::apply` and `crate::events`; here the calls a batch
//! names are read plainly, since the caller's `BEGIN IMMEDIATE` on the single writer
//! connection already keeps every other writer out until it commits.

use crate::apply::BatchCalls;
use crate::rows::CallRow;
use crate::sql::{args, json_list, Db};
use crate::{Applied, Call, Result};
use dialtone_core::ProviderEvent;
use jiff::Timestamp;
use sqlx::{Sqlite, Transaction};

type Tx<'a> = Transaction<'a, Sqlite>;

/// The calls a batch's events name, by provider call id (`$1`) or our id (`$2`), each a JSON
/// array of strings (SQLite has no array type). One `OR`, which SQLite reads as two index
/// lookups whose rows it gives once each (`MULTI-INDEX OR`, checked by `crate::plans`): most
/// events carry both ids, and a `UNION ALL` of the two lookups returned each call twice, every
/// column copied, decoded and freed twice.
pub(crate) const BATCH_CALLS_SQL: &str =
    "SELECT * FROM calls WHERE provider_call_id IN (SELECT value FROM json_each($1)) OR id IN (SELECT value FROM json_each($2))";

/// Stores and applies `events` inside the caller's write transaction, as if they came one
/// by one (see `crate::events::apply_loaded`). One [`Applied`] per event, in order.
pub async fn apply_batch(tx: &mut Tx<'_>, events: &[ProviderEvent], source: &str, now: Timestamp) -> Result<Vec<Applied>> {
    let mut db = Db::from(&mut **tx);
    let pids: Vec<&str> = events.iter().filter_map(|e| e.provider_call_id.as_deref()).collect();
    let ids: Vec<&str> = events.iter().filter_map(|e| e.call_id.as_ref().map(|c| c.as_str())).collect();
    let rows: Vec<CallRow> = db.fetch_all(BATCH_CALLS_SQL, args![json_list(&pids), json_list(&ids)]).await?;
    let calls = BatchCalls::new(rows.into_iter().map(Call::try_from).collect::<Result<Vec<_>>>()?);
    crate::events::apply_loaded(&mut db, calls, events, source, now).await
}

/// [`apply_batch`] of one event.
pub async fn apply_one(tx: &mut Tx<'_>, e: &ProviderEvent, source: &str, now: Timestamp) -> Result<Applied> {
    let mut out = apply_batch(tx, std::slice::from_ref(e), source, now).await?;
    Ok(out.pop().expect("one Applied per event"))
}

/// See `crate::events::adopt_orphans`.
pub async fn adopt_orphans(tx: &mut Tx<'_>, call: Call, pid: &str, now: Timestamp) -> Result<Call> {
    crate::events::adopt_orphans(&mut Db::from(&mut **tx), call, pid, now).await
}
