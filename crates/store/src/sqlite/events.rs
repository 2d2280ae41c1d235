//! Applying provider events: store once (dedupe key), move the call forward only, and
//! move the contact on when its call ends. All inside the caller's transaction.

use super::rows::{self, ms};
use crate::common::{contact_zones, facts, kind_from_text, kind_text, log_mismatch, payload_extras, single_call_due, target, Target, INBOUND_KIND};
use crate::{Applied, Call, Result};
use dialtone_core::call::effect;
use dialtone_core::frequency::{Frequency, Recurrence};
use dialtone_core::retry::AfterCall;
use dialtone_core::schedule::Schedule;
use dialtone_core::{CallId, WorkspaceId};
use dialtone_core::{ContactStatus, EventKind, EventId, Outcome, ProviderEvent, Transition};
use jiff::Timestamp;
use sqlx::{Row, Sqlite, Transaction};

type Tx<'a> = Transaction<'a, Sqlite>;

async fn call_where(tx: &mut Tx<'_>, column: &str, value: &str) -> Result<Option<Call>> {
    let sql = format!("SELECT * FROM calls WHERE {column} = ?");
    sqlx::query(&sql).bind(value).fetch_optional(&mut **tx).await?.map(|r| rows::call(&r)).transpose()
}

/// The call `e` names and whether its ids disagree (see `common::target`).
async fn find_call(tx: &mut Tx<'_>, e: &ProviderEvent) -> Result<(Option<Call>, bool)> {
    let by_pid = match &e.provider_call_id {
        Some(pid) => call_where(tx, "provider_call_id", pid).await?,
        None => None,
    };
    let by_id = match (&by_pid, &e.call_id) {
        (None, Some(id)) => call_where(tx, "id", id.as_str()).await?,
        _ => None,
    };
    let found = target(e, by_pid.as_ref().map(|c| c.id.as_str()), by_id.as_ref().map(|c| c.id.as_str()));
    let mismatched = matches!(found, Target::Mismatch(_));
    if let Target::Mismatch(with) = &found {
        log_mismatch(e, with);
    }
    Ok((by_pid.or(by_id), mismatched))
}

pub async fn apply_one(tx: &mut Tx<'_>, e: &ProviderEvent, source: &str, now: Timestamp) -> Result<Applied> {
    let (call, mismatched) = find_call(tx, e).await?;
    // Stored already marked applied when it will change its call (this transaction is the
    // only writer, so the call cannot change in between): no second write of the row.
    let changes = !mismatched && call.as_ref().is_some_and(|c| effect(&facts(c), &e.kind).changes());
    // An event whose call is unknown is kept with no call (an orphan), findable by its
    // provider call id: a call that takes that provider id adopts it (`adopt_orphans`).
    let inserted = sqlx::query(
        "INSERT INTO call_events (id, workspace_id, call_id, source, provider_type, kind, dedupe_key, payload, occurred_at, received_at,
            provider_call_id, applied, mismatched)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(EventId::new().as_str())
    .bind(call.as_ref().map(|c| c.workspace_id.as_str()))
    .bind(call.as_ref().map(|c| c.id.as_str()))
    .bind(source)
    .bind(&e.provider_type)
    .bind(kind_text(&e.kind))
    .bind(&e.dedupe_key)
    .bind(e.raw.to_string())
    .bind(e.occurred_at.map(ms))
    .bind(ms(now))
    .bind(e.provider_call_id.as_deref())
    .bind(changes)
    .bind(mismatched)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    let mut applied = Applied {
        call_id: call.as_ref().map(|c| c.id.clone()),
        campaign_id: call.as_ref().map(|c| c.campaign_id.clone()),
        duplicate: !inserted,
        transition: None,
        mismatched,
    };
    let Some(call) = call.filter(|_| inserted && !mismatched) else {
        return Ok(applied);
    };
    if call.provider_call_id.is_none() {
        if let Some(pid) = &e.provider_call_id {
            sqlx::query("UPDATE calls SET provider_call_id = ? WHERE id = ? AND provider_call_id IS NULL")
                .bind(pid)
                .bind(call.id.as_str())
                .execute(&mut **tx)
                .await?;
        }
    }
    applied.transition = apply_to_call(tx, &call, &e.kind, e.cost, e.duration_ms, &e.dedupe_key, changes, now).await?;
    Ok(applied)
}

/// Applies a stored event (`dedupe_key`) to `call` as it stands, as
/// `dialtone_core::call::effect` decides: moves the call forward only (fenced on its
/// current status), stores an AMD verdict it did not have (fenced on having none) and the
/// outcome a late verdict corrects, marks the event applied (unless it was stored `marked`
/// so already), and moves the contact on when the call ends. Returns the transition made,
/// if any.
#[allow(clippy::too_many_arguments)]
pub async fn apply_to_call(tx: &mut Tx<'_>, call: &Call, kind: &EventKind, cost: Option<f64>, duration_ms: Option<i64>,
    dedupe_key: &str, marked: bool, now: Timestamp) -> Result<Option<Transition>> {
    let fx = effect(&facts(call), kind);
    if let Some(answered_by) = fx.answered_by {
        let stored = sqlx::query(
            "UPDATE calls SET answered_by = ?1, outcome = COALESCE(?2, outcome), last_event_at = MAX(last_event_at, ?3), updated_at = ?3
             WHERE id = ?4 AND answered_by IS NULL",
        )
        .bind(answered_by.as_str())
        .bind(fx.corrected.map(|o| o.as_str()))
        .bind(ms(now))
        .bind(call.id.as_str())
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 1;
        if stored && fx.corrected.is_some() {
            correct_last_outcome(tx, call, fx.corrected, now).await?;
        }
        if stored != marked {
            sqlx::query("UPDATE call_events SET applied = ? WHERE dedupe_key = ?").bind(stored).bind(dedupe_key).execute(&mut **tx).await?;
        }
        return Ok(None);
    }
    let reason = match kind {
        EventKind::Ended { reason, .. } => reason.clone(),
        _ => None,
    };
    if let Some(t) = fx.transition {
        let moved = sqlx::query(
            "UPDATE calls SET status = ?1, outcome = COALESCE(?2, outcome), ended_reason = COALESCE(?3, ended_reason),
                cost = COALESCE(?4, cost), duration_ms = COALESCE(?5, duration_ms),
                answered_at = CASE WHEN ?1 = 'in_progress' THEN COALESCE(answered_at, ?6) ELSE answered_at END,
                ended_at = CASE WHEN ?7 THEN ?6 ELSE ended_at END,
                last_event_at = MAX(last_event_at, ?6), updated_at = ?6
             WHERE id = ?8 AND status = ?9",
        )
        .bind(t.to.as_str())
        .bind(t.outcome.map(|o| o.as_str()))
        .bind(reason)
        .bind(cost)
        .bind(duration_ms)
        .bind(ms(now))
        .bind(t.to.is_terminal())
        .bind(call.id.as_str())
        .bind(call.status.as_str())
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 1;
        if moved != marked {
            sqlx::query("UPDATE call_events SET applied = ? WHERE dedupe_key = ?").bind(moved).bind(dedupe_key).execute(&mut **tx).await?;
        }
        if moved {
            if let (true, Some(outcome)) = (t.ends_call(), t.outcome) {
                if crate::common::is_capacity_refusal(kind) {
                    crate::attempts::give_back_refused_for_capacity(crate::sql::Db::from(&mut **tx), call.contact_id.as_str(), now).await?;
                } else {
                    move_contact_on(tx, call, outcome, now).await?;
                }
            }
            return Ok(Some(t));
        }
    } else {
        // Stale or informational: the state stays, but the call is alive (reaper) and a
        // late report may fill in what the end did not carry.
        sqlx::query(
            "UPDATE calls SET last_event_at = MAX(last_event_at, ?1), cost = COALESCE(cost, ?2), duration_ms = COALESCE(duration_ms, ?3)
             WHERE id = ?4",
        )
        .bind(ms(now))
        .bind(cost)
        .bind(duration_ms)
        .bind(call.id.as_str())
        .execute(&mut **tx)
        .await?;
    }
    Ok(None)
}

/// A late AMD verdict corrected an ended call's outcome: its contact shows the corrected
/// outcome too, unless a later call of the contact has ended since.
async fn correct_last_outcome(tx: &mut Tx<'_>, call: &Call, corrected: Option<Outcome>, now: Timestamp) -> Result<()> {
    sqlx::query(
        "UPDATE contacts SET last_outcome = ?1, updated_at = ?2 WHERE id = ?3
           AND NOT EXISTS (SELECT 1 FROM calls WHERE contact_id = ?3 AND attempt > ?4 AND outcome IS NOT NULL)",
    )
    .bind(corrected.map(|o| o.as_str()))
    .bind(ms(now))
    .bind(call.contact_id.as_str())
    .bind(i64::from(call.attempt))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Adopts the events stored for `pid` before its call existed (orphans): attaches each to
/// `call` and applies it, in the order received, as if it arrived `now`. Returns the call
/// as it stands afterwards.
pub async fn adopt_orphans(tx: &mut Tx<'_>, call: Call, pid: &str, now: Timestamp) -> Result<Call> {
    let orphans = sqlx::query(
        "SELECT id, kind, dedupe_key, payload FROM call_events WHERE provider_call_id = ? AND call_id IS NULL ORDER BY received_at, rowid",
    )
    .bind(pid)
    .fetch_all(&mut **tx)
    .await?;
    let mut call = call;
    for o in &orphans {
        sqlx::query("UPDATE call_events SET call_id = ?, workspace_id = ? WHERE id = ?")
            .bind(call.id.as_str())
            .bind(call.workspace_id.as_str())
            .bind(o.try_get::<String, _>("id")?)
            .execute(&mut **tx)
            .await?;
        let Some(kind) = kind_from_text(o.try_get("kind")?) else { continue };
        let payload: serde_json::Value = serde_json::from_str(o.try_get("payload")?).unwrap_or(serde_json::Value::Null);
        let (cost, reason) = payload_extras(&payload);
        let kind = match kind {
            EventKind::Ended { outcome, .. } => EventKind::Ended { outcome, reason },
            k => k,
        };
        // Reloaded every time: a verdict changes the call without moving it.
        apply_to_call(tx, &call, &kind, cost, None, o.try_get("dedupe_key")?, false, now).await?;
        call = reload(tx, &call.id).await?;
    }
    Ok(call)
}

pub async fn reload(tx: &mut Tx<'_>, id: &CallId) -> Result<Call> {
    let r = sqlx::query("SELECT * FROM calls WHERE id = ?").bind(id.as_str()).fetch_one(&mut **tx).await?;
    rows::call(&r)
}

/// After a call ends: retry the contact later, or finish it.
async fn move_contact_on(tx: &mut Tx<'_>, call: &Call, outcome: Outcome, now: Timestamp) -> Result<()> {
    let r = sqlx::query(
        "SELECT c.attempts, c.timezone, c.timezones, c.recurrence AS contact_recurrence, cam.max_attempts, cam.retry_policy,
            cam.assume_campaign_timezone_for_ambiguous, cam.calling_hours,
            cam.status AS campaign_status, cam.recurrence AS campaign_recurrence, cam.kind, cam.schedule, cam.provider, cam.workspace_id,
            (SELECT COUNT(*) FROM calls WHERE contact_id = c.id AND outcome = ?) AS occurrences
         FROM contacts c JOIN campaigns cam ON cam.id = c.campaign_id WHERE c.id = ?",
    )
    .bind(outcome.as_str())
    .bind(call.contact_id.as_str())
    .fetch_one(&mut **tx)
    .await?;
    let policy = rows::retry_policy(r.try_get("retry_policy")?)?;
    let attempts = r.try_get::<i64, _>("attempts")? as u32;
    let max_attempts = r.try_get::<i64, _>("max_attempts")? as u32;
    let occurrences = r.try_get::<i64, _>("occurrences")? as u32;
    let canceled = r.try_get::<String, _>("campaign_status")? == "canceled";
    let recurrence: Recurrence = match r.try_get::<Option<String>, _>("contact_recurrence")? {
        Some(s) => rows::json(&s, "recurrence")?,
        None => rows::json(r.try_get("campaign_recurrence")?, "recurrence")?,
    };
    let schedule: Schedule = rows::json(r.try_get("schedule")?, "schedule")?;
    let zones = contact_zones(r.try_get("timezone")?, r.try_get("timezones")?, &schedule, r.try_get("assume_campaign_timezone_for_ambiguous")?);
    // An inbound caller is never called back: the contact is done whatever the outcome.
    let (status, next_at) = if r.try_get::<String, _>("kind")? == INBOUND_KIND {
        (ContactStatus::Done, now)
    } else {
        AfterCall {
            outcome, occurrences, attempts, max_attempts, policy: &policy, recurrence: &recurrence, zones: &zones,
            campaign_canceled: canceled, call_id: call.id.as_str(), now,
        }
        .decide()
    };
    let next_at = match status {
        ContactStatus::Pending => single_call_due(r.try_get("kind")?, next_at, &schedule, r.try_get("calling_hours")?, &zones)?,
        _ => next_at,
    };
    sqlx::query(
        "UPDATE contacts SET status = ?, next_attempt_at = ?, last_outcome = ?, updated_at = ? WHERE id = ? AND status = 'in_call'",
    )
    .bind(status.as_str())
    .bind(ms(next_at))
    .bind(outcome.as_str())
    .bind(ms(now))
    .bind(call.contact_id.as_str())
    .execute(&mut **tx)
    .await?;
    // A recurring single call shows its next occurrence as a scheduled call.
    if status == ContactStatus::Pending && r.try_get::<String, _>("kind")? == dialtone_core::CampaignKind::SingleCalls.as_str() && recurrence.frequency != Frequency::Once {
        let ws = WorkspaceId::from_db(r.try_get("workspace_id")?);
        super::single::insert_scheduled(tx, &CallId::new(), &ws, &call.campaign_id, &call.contact_id, attempts + 1,
            &r.try_get::<String, _>("provider")?, call.phone.as_str(), next_at, now).await?;
    }
    Ok(())
}

/// An engine decision that belongs to no call row (e.g. a released, never-sent claim).
pub async fn insert_engine_note(tx: &mut Tx<'_>, ws: &str, dedupe_key: &str, kind: &str, payload: serde_json::Value, now: Timestamp) -> Result<()> {
    sqlx::query(
        "INSERT INTO call_events (id, workspace_id, call_id, source, provider_type, kind, dedupe_key, payload, received_at)
         VALUES (?, ?, NULL, 'engine', 'engine', ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(EventId::new().as_str())
    .bind(ws)
    .bind(kind)
    .bind(dedupe_key)
    .bind(payload.to_string())
    .bind(ms(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}


/// See `Store::purge_unknown_events`.
pub async fn purge_unknown(pool: &sqlx::SqlitePool, before: Timestamp, limit: u32) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM call_events WHERE id IN (
            SELECT id FROM call_events WHERE call_id IS NULL AND source = 'provider' AND received_at < ? ORDER BY received_at LIMIT ?)",
    )
    .bind(ms(before))
    .bind(i64::from(limit))
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
