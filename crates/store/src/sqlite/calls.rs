//! The engine's writes on SQLite: claiming, placing, ending, and reads of calls.

use super::campaigns::ACTIVE_SQL;
use super::events;
use super::suppressions;
use super::rows::{self, ms};
use crate::{Applied, Call, CallEvent, CallFilter, Dial, Page, Result, StoreError};
use dialtone_core::{
    CallId, CampaignId, CampaignStatus, ContactId, EventKind, Mode, Outcome, PhoneNumber, ProviderEvent,
    ProviderKind, WorkspaceId,
};
use crate::common::{contact_zones, recipient_hold};
use dialtone_core::schedule::{LocalHours, Schedule};
use jiff::Timestamp;
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

pub async fn claim(pool: &SqlitePool, campaign: &CampaignId, node: &str, now: Timestamp) -> Result<Vec<Dial>> {
    // IMMEDIATE takes the write lock up front, so the count and the claim below see the
    // same world: the cap cannot be raced past.
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let Some(c) = sqlx::query(
        "SELECT workspace_id, status, mode, max_concurrent, provider, assistant_id, phone_number_id, schedule, calling_hours,
            assume_campaign_timezone_for_ambiguous
         FROM campaigns WHERE id = ?",
    )
    .bind(campaign.as_str())
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(vec![]);
    };
    let status: CampaignStatus = rows::parse(c.try_get("status")?)?;
    if !status.is_runnable() {
        return Ok(vec![]);
    }
    // Outside the campaign's windows nothing is dialled; the dispatcher looks again later.
    let schedule: Schedule = rows::json(c.try_get("schedule")?, "schedule")?;
    if !schedule.is_open(now) {
        return Ok(vec![]);
    }
    let hours: LocalHours = rows::json(c.try_get("calling_hours")?, "calling_hours")?;
    let assume_campaign_tz: bool = c.try_get("assume_campaign_timezone_for_ambiguous")?;
    let mode: Mode = rows::parse(c.try_get("mode")?)?;
    let cap = c.try_get::<i64, _>("max_concurrent")? as u32;
    let active: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM calls WHERE campaign_id = ? AND status IN {ACTIVE_SQL}"))
        .bind(campaign.as_str())
        .fetch_one(&mut *tx)
        .await?;
    let provider_text: String = c.try_get("provider")?;
    let n = mode.claimable(cap, active as u32).min(account_room(&mut tx, &provider_text, active, now).await?);
    if n == 0 {
        return Ok(vec![]);
    }
    let ws = WorkspaceId::from_db(c.try_get("workspace_id")?);
    let provider: ProviderKind = rows::parse(c.try_get("provider")?)?;
    let mut dials = Vec::with_capacity(n as usize);
    // Each round claims what is still free; contacts turned away at claim time (on a
    // do-not-call list) leave the pool, so the next round picks others.
    for _round in 0..8 {
        let want = n as usize - dials.len();
        if want == 0 {
            break;
        }
        let claimed = sqlx::query(
            "UPDATE contacts SET status = 'in_call', attempts = attempts + 1, updated_at = ?1, wait_reason = NULL
             WHERE id IN (SELECT id FROM contacts WHERE campaign_id = ?2 AND status = 'pending' AND next_attempt_at <= ?1
                          ORDER BY next_attempt_at, id LIMIT ?3)
             RETURNING id, phone, extension, name, variables, attempts, timezone, timezones",
        )
        .bind(ms(now))
        .bind(campaign.as_str())
        .bind(want as i64)
        .fetch_all(&mut *tx)
        .await?;
        if claimed.is_empty() {
            break;
        }
        for r in &claimed {
            let phone: String = r.try_get("phone")?;
            if suppressions::is_suppressed(&mut tx, ws.as_str(), campaign.as_str(), &phone).await? {
                sqlx::query("UPDATE contacts SET status = 'dnc', attempts = attempts - 1, updated_at = ? WHERE id = ?")
                    .bind(ms(now))
                    .bind(r.try_get::<String, _>("id")?)
                    .execute(&mut *tx)
                    .await?;
                // A scheduled single call's row would otherwise wait in `scheduled` for ever.
                sqlx::query(crate::common::CANCEL_SCHEDULED_DNC_SQL)
                    .bind(ms(now))
                    .bind(r.try_get::<String, _>("id")?)
                    .execute(&mut *tx)
                    .await?;
                continue;
            }
            // The recipient's own hours, judged now, right before dialling, in every zone
            // the number may be in.
            let zones = contact_zones(r.try_get("timezone")?, r.try_get("timezones")?, &schedule, assume_campaign_tz);
            if let Some(hold) = recipient_hold(&schedule, &hours, &zones, now) {
                sqlx::query(
                    "UPDATE contacts SET status = ?1, next_attempt_at = COALESCE(?2, next_attempt_at), wait_reason = ?3,
                        attempts = attempts - 1, updated_at = ?4 WHERE id = ?5",
                )
                .bind(hold.status())
                .bind(hold.next().map(ms))
                .bind(hold.reason().map(|r| r.as_str()))
                .bind(ms(now))
                .bind(r.try_get::<String, _>("id")?)
                .execute(&mut *tx)
                .await?;
                continue;
            }
            dials.push(new_call(&mut tx, r, &ws, campaign, provider, &c, node, now).await?);
        }
    }
    tx.commit().await?;
    Ok(dials)
}

/// How many more calls the provider account allows this campaign: the account's free slots
/// (inbound calls included), capped at a fair share so that campaigns on one account take
/// turns and none starves. Unlimited accounts allow anything.
async fn account_room(tx: &mut sqlx::Transaction<'_, Sqlite>, provider: &str, campaign_active: i64, now: Timestamp) -> Result<u32> {
    let limit: Option<i64> = sqlx::query_scalar("SELECT max_concurrent FROM provider_accounts WHERE provider = ?")
        .bind(provider)
        .fetch_optional(&mut **tx)
        .await?
        .flatten();
    let Some(limit) = limit else { return Ok(u32::MAX) };
    let account_active: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM calls WHERE provider = ? AND status IN {ACTIVE_SQL}"))
        .bind(provider)
        .fetch_one(&mut **tx)
        .await?;
    // Campaigns that want slots now: something due, or calls in flight. Inbound calls take
    // account slots (counted above) but their hidden campaign never claims, so it takes no share.
    let sharing: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM campaigns c WHERE provider = ?1 AND status IN ('starting', 'dialing') AND kind <> 'inbound' AND (
            EXISTS (SELECT 1 FROM contacts WHERE campaign_id = c.id AND status = 'pending' AND next_attempt_at <= ?2)
            OR EXISTS (SELECT 1 FROM calls WHERE campaign_id = c.id AND status IN {ACTIVE_SQL}))"
    ))
    .bind(provider)
    .bind(ms(now))
    .fetch_one(&mut **tx)
    .await?;
    Ok(crate::common::account_room(limit, account_active, sharing, campaign_active))
}

/// Inserts the QUEUED call for a claimed contact `r` of campaign row `c`.
async fn new_call(tx: &mut sqlx::Transaction<'_, Sqlite>, r: &sqlx::sqlite::SqliteRow, ws: &WorkspaceId, campaign: &CampaignId,
    provider: ProviderKind, c: &sqlx::sqlite::SqliteRow, node: &str, now: Timestamp) -> Result<Dial> {
    // A scheduled single call already has its row: it moves to QUEUED (owned by `node`) instead.
    let scheduled: Option<(String, i64)> = sqlx::query_as(
        "UPDATE calls SET status = 'queued', claimed_by = ?3, updated_at = ?1, last_event_at = ?1
         WHERE contact_id = ?2 AND status = 'scheduled' RETURNING id, attempt",
    )
    .bind(ms(now))
    .bind(r.try_get::<String, _>("id")?)
    .bind(node)
    .fetch_optional(&mut **tx)
    .await?;
    // Attempt numbers count calls, so they stay unique even when an attempt was given back
    // (a capacity refusal) and the contact's count of spent attempts went down.
    let attempt = match &scheduled {
        Some((_, n)) => *n,
        None => {
            let last: Option<i64> = sqlx::query_scalar("SELECT MAX(attempt) FROM calls WHERE contact_id = ?")
                .bind(r.try_get::<String, _>("id")?)
                .fetch_one(&mut **tx)
                .await?;
            last.unwrap_or(0).max(r.try_get::<i64, _>("attempts")? - 1) + 1
        }
    };
    let scheduled = scheduled.map(|(id, _)| id);
    let dial = Dial {
        call_id: scheduled.clone().map_or_else(CallId::new, CallId::from_db),
        workspace_id: ws.clone(),
        campaign_id: campaign.clone(),
        contact_id: ContactId::from_db(r.try_get("id")?),
        attempt: attempt as u32,
        provider,
        assistant_id: c.try_get("assistant_id")?,
        phone_number_id: c.try_get("phone_number_id")?,
        phone: PhoneNumber::from_db(r.try_get("phone")?),
        extension: crate::common::extension_of(r.try_get("extension")?),
        name: r.try_get("name")?,
        variables: rows::json_map(r.try_get("variables")?)?,
    };
    if scheduled.is_some() {
        return Ok(dial);
    }
    sqlx::query(
        "INSERT INTO calls (id, workspace_id, campaign_id, contact_id, attempt, provider, phone, status, created_at, updated_at, last_event_at, claimed_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'queued', ?8, ?8, ?8, ?9)",
    )
    .bind(dial.call_id.as_str())
    .bind(ws.as_str())
    .bind(campaign.as_str())
    .bind(dial.contact_id.as_str())
    .bind(dial.attempt as i64)
    .bind(provider.as_str())
    .bind(dial.phone.as_str())
    .bind(ms(now))
    .bind(node)
    .execute(&mut **tx)
    .await?;
    Ok(dial)
}

pub async fn mark_placing(pool: &SqlitePool, call: &CallId, node: &str, now: Timestamp) -> Result<bool> {
    let mut conn = pool.acquire().await?;
    mark_placing_in(&mut conn, call, node, now).await
}

/// `mark_placing` for each of `calls` in one transaction: one commit (one WAL sync) for
/// them all, each call's fence the same statement as alone.
pub async fn mark_placing_many(pool: &SqlitePool, calls: &[CallId], node: &str, now: Timestamp) -> Result<Vec<bool>> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut out = Vec::with_capacity(calls.len());
    for call in calls {
        out.push(mark_placing_in(&mut tx, call, node, now).await?);
    }
    tx.commit().await?;
    Ok(out)
}

async fn mark_placing_in(conn: &mut sqlx::SqliteConnection, call: &CallId, node: &str, now: Timestamp) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE calls SET placing_at = ?1, updated_at = ?1 WHERE id = ?2 AND status = 'queued' AND placing_at IS NULL AND claimed_by = ?3",
    )
        .bind(ms(now))
        .bind(call.as_str())
        .bind(node)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn mark_dialed(pool: &SqlitePool, call: &CallId, provider_call_id: &str, now: Timestamp) -> Result<bool> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let started = mark_dialed_in(&mut tx, call, provider_call_id, now).await?;
    tx.commit().await?;
    Ok(started)
}

/// `mark_dialed` for each (call, provider call id) of `calls` in one transaction: one
/// commit for them all. Any error (a call not found) fails the whole batch.
pub async fn mark_dialed_many(pool: &SqlitePool, calls: &[(CallId, String)], now: Timestamp) -> Result<Vec<bool>> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut out = Vec::with_capacity(calls.len());
    for (call, provider_call_id) in calls {
        out.push(mark_dialed_in(&mut tx, call, provider_call_id, now).await?);
    }
    tx.commit().await?;
    Ok(out)
}

async fn mark_dialed_in(tx: &mut sqlx::Transaction<'_, Sqlite>, call: &CallId, provider_call_id: &str, now: Timestamp) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE calls SET provider_call_id = COALESCE(provider_call_id, ?1),
            status = CASE WHEN status = 'queued' THEN 'dialing' ELSE status END,
            dialed_at = COALESCE(dialed_at, ?2), last_event_at = MAX(last_event_at, ?2), updated_at = ?2
         WHERE id = ?3 RETURNING *",
    )
    .bind(provider_call_id)
    .bind(ms(now))
    .bind(call.as_str())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound("call"))?;
    // Events that came before the provider id was stored, carrying no id of ours, were
    // kept as orphans under that provider id: applied now, in the same transaction,
    // rather than left for the reaper.
    let call_now = rows::call(&done)?;
    if let Some(pid) = call_now.provider_call_id.clone() {
        events::adopt_orphans(tx, call_now, &pid, now).await?;
    }
    let started = sqlx::query(
        "UPDATE campaigns SET status = CASE WHEN status = 'starting' THEN 'dialing' ELSE status END,
            started_at = ?1, updated_at = ?1
         WHERE id = (SELECT campaign_id FROM calls WHERE id = ?2) AND started_at IS NULL",
    )
    .bind(ms(now))
    .bind(call.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(started.rows_affected() == 1)
}

pub async fn end_call(pool: &SqlitePool, call: &CallId, outcome: Outcome, reason: &str, now: Timestamp) -> Result<Option<Applied>> {
    let event = ProviderEvent {
        provider_type: "engine".into(),
        provider_call_id: None,
        call_id: Some(call.clone()),
        kind: EventKind::Ended { outcome, reason: Some(reason.to_string()) },
        dedupe_key: format!("engine:{call}:end"),
        occurred_at: Some(now),
        cost: None,
        duration_ms: None,
        raw: serde_json::json!({ "decision": "end", "outcome": outcome, "reason": reason }),
    };
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let applied = events::apply_one(&mut tx, &event, "engine", now).await?;
    tx.commit().await?;
    Ok((!applied.duplicate).then_some(applied))
}

pub async fn release_unsent(pool: &SqlitePool, call: &CallId, reason: &str, now: Timestamp) -> Result<bool> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    // Any stored event for the call means the provider knew it (it echoed our id): not
    // unsent. Deleting it would also orphan that event (a foreign-key error).
    let Some(row) = sqlx::query(
        "DELETE FROM calls WHERE id = ?1 AND status = 'queued' AND provider_call_id IS NULL
           AND NOT EXISTS (SELECT 1 FROM call_events WHERE call_id = ?1)
         RETURNING contact_id, workspace_id",
    )
        .bind(call.as_str())
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Ok(false);
    };
    let contact: String = row.try_get("contact_id")?;
    let ws: String = row.try_get("workspace_id")?;
    // The attempt never reached the provider: give it back, and make the contact due now
    // (unless its campaign was canceled meanwhile).
    sqlx::query(
        "UPDATE contacts SET attempts = attempts - 1, next_attempt_at = ?1, updated_at = ?1,
            status = CASE WHEN (SELECT status FROM campaigns WHERE id = contacts.campaign_id) = 'canceled' THEN 'canceled' ELSE 'pending' END
         WHERE id = ?2 AND status = 'in_call'",
    )
    .bind(ms(now))
    .bind(&contact)
    .execute(&mut *tx)
    .await?;
    events::insert_engine_note(&mut tx, &ws, &format!("engine:{call}:released"), "released",
        serde_json::json!({ "call_id": call, "contact_id": contact, "reason": reason }), now).await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn stuck(pool: &SqlitePool, quiet_since: Timestamp, limit: u32) -> Result<Vec<Call>> {
    sqlx::query(&format!("SELECT * FROM calls WHERE status IN {ACTIVE_SQL} AND last_event_at < ? ORDER BY last_event_at LIMIT ?"))
        .bind(ms(quiet_since))
        .bind(limit as i64)
        .fetch_all(pool)
        .await?
        .iter()
        .map(rows::call)
        .collect()
}

/// Live calls past their maximum duration (see `Store::overdue_calls`).
pub async fn overdue(pool: &SqlitePool, now: Timestamp, default_max: std::time::Duration, limit: u32) -> Result<Vec<(Call, u64)>> {
    let default_secs = i64::try_from(default_max.as_secs()).unwrap_or(i64::MAX);
    sqlx::query(&format!(
        "SELECT k.*, COALESCE(c.max_call_duration_secs, ?1) AS max_secs FROM calls k JOIN campaigns c ON c.id = k.campaign_id
         WHERE k.status IN {ACTIVE_SQL} AND k.provider_call_id IS NOT NULL
           AND COALESCE(k.dialed_at, k.created_at) <= ?2 - COALESCE(c.max_call_duration_secs, ?1) * 1000
         ORDER BY COALESCE(k.dialed_at, k.created_at) LIMIT ?3"
    ))
    .bind(default_secs)
    .bind(ms(now))
    .bind(limit as i64)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| Ok((rows::call(r)?, r.try_get::<i64, _>("max_secs")? as u64)))
    .collect()
}

pub async fn heartbeat(pool: &SqlitePool, node: &str, now: Timestamp) -> Result<()> {
    sqlx::query(
        "INSERT INTO nodes (id, started_at, heartbeat_at) VALUES (?1, ?2, ?2)
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = MAX(heartbeat_at, excluded.heartbeat_at)",
    )
    .bind(node)
    .bind(ms(now))
    .execute(pool)
    .await?;
    Ok(())
}

/// Unsent calls `node` may resolve: its own, unowned ones, and those of nodes whose lease
/// ran out; each taken over by a fenced UPDATE (see `Store::orphaned_calls`).
pub async fn orphaned(read: &SqlitePool, write: &SqlitePool, node: &str, lease: std::time::Duration, now: Timestamp) -> Result<Vec<Call>> {
    let cutoff = crate::common::lease_cutoff(now, lease);
    let candidates: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT c.id, c.claimed_by FROM calls c LEFT JOIN nodes n ON n.id = c.claimed_by
         WHERE c.status = 'queued' AND c.provider_call_id IS NULL
           AND (c.claimed_by IS NULL OR c.claimed_by = ?1 OR n.id IS NULL OR n.heartbeat_at < ?2)
         ORDER BY c.id",
    )
    .bind(node)
    .bind(cutoff)
    .fetch_all(read)
    .await?;
    let mut taken = Vec::with_capacity(candidates.len());
    for (id, owner) in candidates {
        // The fence: the owner must still be the one we saw (`IS` is SQLite's null-safe
        // equality), still unsent, and, unless it is us, still without a live lease.
        let row = sqlx::query(
            "UPDATE calls SET claimed_by = ?1
             WHERE id = ?2 AND claimed_by IS ?3 AND status = 'queued' AND provider_call_id IS NULL
               AND (claimed_by IS NULL OR claimed_by = ?1
                    OR NOT EXISTS (SELECT 1 FROM nodes WHERE id = calls.claimed_by AND heartbeat_at >= ?4))
             RETURNING *",
        )
        .bind(node)
        .bind(&id)
        .bind(owner.as_deref())
        .bind(cutoff)
        .fetch_optional(write)
        .await?;
        if let Some(row) = row {
            if owner.as_deref().is_some_and(|o| o != node) {
                tracing::info!(call_id = %id, from = owner.as_deref().unwrap_or_default(), to = node, "took over an unsent call of a node whose lease ran out");
            }
            taken.push(rows::call(&row)?);
        }
    }
    Ok(taken)
}

pub async fn touch(pool: &SqlitePool, call: &CallId, now: Timestamp) -> Result<()> {
    sqlx::query("UPDATE calls SET last_event_at = MAX(last_event_at, ?) WHERE id = ?")
        .bind(ms(now))
        .bind(call.as_str())
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn get(pool: &SqlitePool, ws: &WorkspaceId, id: &CallId) -> Result<Option<Call>> {
    sqlx::query("SELECT * FROM calls WHERE workspace_id = ? AND id = ?")
        .bind(ws.as_str())
        .bind(id.as_str())
        .fetch_optional(pool)
        .await?
        .map(|r| rows::call(&r))
        .transpose()
}

pub async fn list(pool: &SqlitePool, ws: &WorkspaceId, f: &CallFilter, page: &Page) -> Result<Vec<Call>> {
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT * FROM calls WHERE workspace_id = ");
    q.push_bind(ws.as_str());
    if let Some(c) = &f.campaign_id {
        q.push(" AND campaign_id = ").push_bind(c.as_str());
    }
    if let Some(c) = &f.contact_id {
        q.push(" AND contact_id = ").push_bind(c.as_str());
    }
    if let Some(s) = f.status {
        q.push(" AND status = ").push_bind(s.as_str());
    }
    if let Some(o) = f.outcome {
        q.push(" AND outcome = ").push_bind(o.as_str());
    }
    if let Some(p) = &f.phone {
        q.push(" AND phone = ").push_bind(p.as_str());
    }
    if let Some(b) = &page.before {
        q.push(" AND id < ").push_bind(b.as_str());
    }
    q.push(" ORDER BY id DESC LIMIT ").push_bind(page.limit as i64);
    q.build().fetch_all(pool).await?.iter().map(rows::call).collect()
}

pub async fn events_of(pool: &SqlitePool, ws: &WorkspaceId, id: &CallId) -> Result<Vec<CallEvent>> {
    sqlx::query(
        "SELECT e.* FROM call_events e JOIN calls c ON c.id = e.call_id
         WHERE c.workspace_id = ? AND e.call_id = ? ORDER BY e.received_at, e.id",
    )
    .bind(ws.as_str())
    .bind(id.as_str())
    .fetch_all(pool)
    .await?
    .iter()
    .map(rows::call_event)
    .collect()
}

pub async fn active_count(pool: &SqlitePool) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM calls WHERE status IN {ACTIVE_SQL}")).fetch_one(pool).await?;
    Ok(n as u64)
}
