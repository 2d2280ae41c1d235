//! Applying provider events on PostgreSQL: what differs from SQLite. The decisions and
//! the statements written once are `crate::apply` and `crate::events`; here are the locks
//! (several nodes may apply events side by side: calls `FOR UPDATE`, provider ids'
//! advisory locks, the deadlock retry) and the set-based `UNNEST` writes a group commit
//! makes in one round trip each.

use crate::apply::{AfterCallRow, BatchCalls, Ended, EventRow, NextStep, AFTER_CALL_COLUMNS};
use crate::common::{kind_text, ms};
use crate::rows::CallRow;
use crate::sql::Db;
use crate::{Applied, Call, Result, StoreError};
use dialtone_core::{EventId, ProviderEvent};
use jiff::Timestamp;
use sqlx::{Connection, PgConnection, Postgres, Transaction};
use std::collections::HashSet;

type Tx<'a> = Transaction<'a, Postgres>;

/// Attempts at a group commit that PostgreSQL aborted as a deadlock victim.
pub const ATTEMPTS: u32 = 3;

/// Stores and applies `events` in one transaction (group commit). A batch chosen as a
/// deadlock victim (two nodes' batches crossing on the same rows) is retried whole: it
/// either committed entirely or not at all.
pub async fn apply_batch(conn: &mut PgConnection, events: &[ProviderEvent], source: &str, now: Timestamp) -> Result<Vec<Applied>> {
    let mut attempt = 1;
    loop {
        match try_batch(conn, events, source, now).await {
            Err(StoreError::Database(e)) if attempt < ATTEMPTS && is_retryable(&e) => {
                tracing::warn!(attempt, error = %e, "event batch aborted by PostgreSQL; retrying");
                attempt += 1;
            }
            other => return other,
        }
    }
}

pub fn is_retryable(e: &sqlx::Error) -> bool {
    // 40P01 deadlock_detected, 40001 serialization_failure.
    e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c == "40P01" || c == "40001")
}

async fn try_batch(conn: &mut PgConnection, events: &[ProviderEvent], source: &str, now: Timestamp) -> Result<Vec<Applied>> {
    let mut tx = conn.begin().await?;
    let calls = lock_calls(&mut tx, events).await?;
    let applied = crate::events::apply_loaded(&mut Db::from(&mut *tx), calls, events, source, now).await?;
    tx.commit().await?;
    Ok(applied)
}

/// Locks every call the batch names, in id order, before touching any, and returns them:
/// the status each event is judged against is then the latest, and two batches never wait
/// on each other's calls in opposite orders. Then, in key order, it takes the advisory lock
/// of every provider call id named that has no call, and looks again for those: recording
/// an inbound call takes its id's lock before it looks for the call and its orphans, so
/// either the record sees the orphan this batch stores, or this batch (looking after the
/// record committed) sees the call. An orphan is never missed. The record locks no
/// existing call row, so the two orders cannot wait on each other in a cycle. In the common
/// case (every id known) this is one round trip.
async fn lock_calls(tx: &mut Tx<'_>, events: &[ProviderEvent]) -> Result<BatchCalls> {
    let pids: Vec<&str> = events.iter().filter_map(|e| e.provider_call_id.as_deref()).collect();
    let ids: Vec<&str> = events.iter().filter_map(|e| e.call_id.as_ref().map(|c| c.as_str())).collect();
    let rows: Vec<CallRow> = sqlx::query_as("SELECT * FROM calls WHERE provider_call_id = ANY($1) OR id = ANY($2) ORDER BY id FOR UPDATE")
        .bind(&pids)
        .bind(&ids)
        .fetch_all(&mut **tx)
        .await?;
    let mut locked = BatchCalls::new(rows.into_iter().map(Call::try_from).collect::<Result<Vec<_>>>()?);
    let mut unknown: Vec<&str> = pids.iter().copied().filter(|p| !locked.has_provider_id(p)).collect();
    if unknown.is_empty() {
        return Ok(locked);
    }
    unknown.sort_unstable();
    unknown.dedup();
    let keys: Vec<i64> = unknown.iter().map(|p| advisory_key(p)).collect();
    // A subquery with ORDER BY is never flattened: the locks are taken in key order.
    sqlx::query("SELECT pg_advisory_xact_lock(s.k) FROM (SELECT DISTINCT k FROM UNNEST($1::bigint[]) AS t(k) ORDER BY k) s")
        .bind(&keys)
        .execute(&mut **tx)
        .await?;
    let rows: Vec<CallRow> =
        sqlx::query_as("SELECT * FROM calls WHERE provider_call_id = ANY($1) ORDER BY id FOR UPDATE").bind(&unknown).fetch_all(&mut **tx).await?;
    locked.add(rows.into_iter().map(Call::try_from).collect::<Result<Vec<_>>>()?);
    Ok(locked)
}

/// Takes the transaction-scoped advisory lock of one provider call id (see `lock_calls`).
pub async fn lock_provider_call_id(tx: &mut Tx<'_>, pid: &str) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(advisory_key(pid)).execute(&mut **tx).await?;
    Ok(())
}

/// The advisory lock key of a provider call id: 64-bit FNV-1a of the id under a namespace
/// of ours (stable across nodes and releases; a collision only serializes two calls).
pub(crate) fn advisory_key(pid: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in b"dialtone:provider-call:".iter().chain(pid.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

/// Stores a batch's event rows in one statement, in batch order (`crate::events` does the
/// same on SQLite through `json_each`; a round trip per row is what the batch saves); returns
/// the dedupe keys that were new.
pub(crate) async fn insert_events(conn: &mut PgConnection, rows: &[EventRow<'_>], source: &str, now: Timestamp) -> Result<HashSet<String>> {
    if rows.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<String> = rows.iter().map(|_| EventId::new().as_str().to_string()).collect();
    let workspaces: Vec<Option<&str>> = rows.iter().map(|r| r.workspace_id).collect();
    let call_ids: Vec<Option<&str>> = rows.iter().map(|r| r.call_id).collect();
    let types: Vec<&str> = rows.iter().map(|r| r.event.provider_type.as_str()).collect();
    let kinds: Vec<String> = rows.iter().map(|r| kind_text(&r.event.kind)).collect();
    let keys: Vec<&str> = rows.iter().map(|r| r.event.dedupe_key.as_str()).collect();
    let payloads: Vec<&str> = rows.iter().map(|r| r.event.raw.get()).collect();
    let occurred: Vec<Option<i64>> = rows.iter().map(|r| r.event.occurred_at.map(ms)).collect();
    let pids: Vec<Option<&str>> = rows.iter().map(|r| r.event.provider_call_id.as_deref()).collect();
    let applied: Vec<bool> = rows.iter().map(|r| r.applied).collect();
    let mismatched: Vec<bool> = rows.iter().map(|r| r.mismatched).collect();
    let accounts: Vec<Option<&str>> = rows.iter().map(|r| crate::events::route_account(r.event)).collect();
    let keys_in: Vec<String> = sqlx::query_scalar(
        "INSERT INTO call_events (id, workspace_id, call_id, source, provider_type, kind, dedupe_key, payload, occurred_at, received_at,
            provider_call_id, applied, mismatched, account_id)
         SELECT t.id, t.ws, t.call_id, $1, t.provider_type, t.kind, t.dedupe_key, t.payload, t.occurred_at, $2, t.pid, t.applied, t.mismatched, t.account_id
         FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[], $11::text[],
                     $12::bool[], $13::bool[], $14::text[])
              WITH ORDINALITY AS t(id, ws, call_id, provider_type, kind, dedupe_key, payload, occurred_at, pid, applied, mismatched, account_id, ord)
         ORDER BY t.ord
         ON CONFLICT (dedupe_key) DO NOTHING
         RETURNING dedupe_key",
    )
    .bind(source)
    .bind(ms(now))
    .bind(&ids)
    .bind(&workspaces)
    .bind(&call_ids)
    .bind(&types)
    .bind(&kinds)
    .bind(&keys)
    .bind(&payloads)
    .bind(&occurred)
    .bind(&pids)
    .bind(&applied)
    .bind(&mismatched)
    .bind(&accounts)
    .fetch_all(&mut *conn)
    .await?;
    Ok(keys_in.into_iter().collect())
}

/// Writes the fields events change, for every call given: one statement.
pub(crate) async fn write_calls(conn: &mut PgConnection, calls: &[&Call]) -> Result<()> {
    if calls.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&Call) -> Option<i64>| calls.iter().map(|c| f(c)).collect::<Vec<Option<i64>>>();
    sqlx::query(
        "UPDATE calls c SET provider_call_id = t.pid, status = t.status, outcome = t.outcome, ended_reason = t.ended_reason,
            cost = t.cost, duration_ms = t.duration_ms, answered_at = t.answered_at, ended_at = t.ended_at,
            last_event_at = t.last_event_at, updated_at = t.updated_at, answered_by = t.answered_by
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::bigint[], $8::bigint[], $9::bigint[],
                     $10::bigint[], $11::bigint[], $12::text[])
              AS t(id, pid, status, outcome, ended_reason, cost, duration_ms, answered_at, ended_at, last_event_at, updated_at, answered_by)
         WHERE c.id = t.id",
    )
    .bind(calls.iter().map(|c| c.id.as_str()).collect::<Vec<_>>())
    .bind(calls.iter().map(|c| c.provider_call_id.as_deref()).collect::<Vec<_>>())
    .bind(calls.iter().map(|c| c.status.as_str()).collect::<Vec<_>>())
    .bind(calls.iter().map(|c| c.outcome.map(|o| o.as_str())).collect::<Vec<_>>())
    .bind(calls.iter().map(|c| c.ended_reason.as_deref()).collect::<Vec<_>>())
    .bind(calls.iter().map(|c| c.cost).collect::<Vec<_>>())
    .bind(col(|c| c.duration_ms))
    .bind(col(|c| c.answered_at.map(ms)))
    .bind(col(|c| c.ended_at.map(ms)))
    .bind(col(|c| Some(ms(c.last_event_at))))
    .bind(col(|c| Some(ms(c.updated_at))))
    .bind(calls.iter().map(|c| c.answered_by.map(|a| a.as_str())).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What moving on the contacts of `ended` calls (distinct contacts) needs, in one
/// statement. FOR SHARE OF cam (taken in campaign order): a cancel waits for us, or we see
/// it committed (and cancel the contact rather than schedule a retry). SQLite's writer is
/// alone, and reads them one by one.
pub(crate) async fn after_call_rows(conn: &mut PgConnection, ended: &[&Ended]) -> Result<Vec<AfterCallRow>> {
    let contact_ids: Vec<&str> = ended.iter().map(|e| e.call.contact_id.as_str()).collect();
    let outcomes: Vec<&str> = ended.iter().map(|e| e.outcome.as_str()).collect();
    Ok(sqlx::query_as(&format!(
        "SELECT {AFTER_CALL_COLUMNS}
         FROM UNNEST($1::text[], $2::text[]) AS t(contact_id, outcome)
         JOIN contacts c ON c.id = t.contact_id JOIN campaigns cam ON cam.id = c.campaign_id
         ORDER BY cam.id FOR SHARE OF cam"
    ))
    .bind(&contact_ids)
    .bind(&outcomes)
    .fetch_all(&mut *conn)
    .await?)
}

/// Writes each contact's next step (the contacts are distinct), in one statement; a
/// contact no longer `in_call` is left as it is.
pub(crate) async fn update_contacts(conn: &mut PgConnection, steps: &[(&str, NextStep)], now: Timestamp) -> Result<()> {
    if steps.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE contacts c SET status = t.status, next_attempt_at = t.next_at, last_outcome = t.outcome, updated_at = $5
         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[]) AS t(id, status, next_at, outcome)
         WHERE c.id = t.id AND c.status = 'in_call'",
    )
    .bind(steps.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind(steps.iter().map(|(_, s)| s.status.as_str()).collect::<Vec<_>>())
    .bind(steps.iter().map(|(_, s)| ms(s.next_at)).collect::<Vec<_>>())
    .bind(steps.iter().map(|(_, s)| s.last_outcome.as_str()).collect::<Vec<_>>())
    .bind(ms(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// See `crate::events::adopt_orphans`; the caller holds `pid`'s advisory lock
/// (`lock_provider_call_id`).
pub async fn adopt_orphans(tx: &mut Tx<'_>, call: Call, pid: &str, now: Timestamp) -> Result<Call> {
    crate::events::adopt_orphans(&mut Db::from(&mut **tx), call, pid, now).await
}
