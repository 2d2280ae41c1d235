//! Applying provider events: store once (dedupe key), move the call forward only, and
//! move the contact on when its call ends. All inside the caller's transaction.

use super::rows::{self, ms};
use crate::common::{contact_zones, single_call_due, kind_from_text, kind_text, payload_extras, INBOUND_KIND};
use crate::{Applied, Call, Result};
use dialtone_core::call::apply;
use dialtone_core::frequency::{Frequency, Recurrence};
use dialtone_core::retry::AfterCall;
use dialtone_core::schedule::Schedule;
use dialtone_core::{CallId, WorkspaceId};
use dialtone_core::{ContactStatus, EventKind, EventId, Outcome, ProviderEvent, Transition};
use jiff::Timestamp;
use sqlx::{Row, Sqlite, Transaction};

type Tx<'a> = Transaction<'a, Sqlite>;

async fn find_call(tx: &mut Tx<'_>, e: &ProviderEvent) -> Result<Option<Call>> {
    if let Some(pid) = &e.provider_call_id {
        if let Some(r) = sqlx::query("SELECT * FROM calls WHERE provider_call_id = ?").bind(pid).fetch_optional(&mut **tx).await? {
            return rows::call(&r).map(Some);
        }
    }
    if let Some(id) = &e.call_id {
        if let Some(r) = sqlx::query("SELECT * FROM calls WHERE id = ?").bind(id.as_str()).fetch_optional(&mut **tx).await? {
            return rows::call(&r).map(Some);
        }
    }
    Ok(None)
}

pub async fn apply_one(tx: &mut Tx<'_>, e: &ProviderEvent, source: &str, now: Timestamp) -> Result<Applied> {
    let call = find_call(tx, e).await?;
    // Stored already marked applied when it will move its call (this transaction is the
    // only writer, so the call cannot change in between): no second write of the row.
    let moves = call.as_ref().is_some_and(|c| apply(c.status, &e.kind).is_some());
    // An event whose call is unknown is kept with no call (an orphan), findable by its
    // provider call id: an inbound call's record adopts it (`record_inbound_call`).
    let inserted = sqlx::query(
        "INSERT INTO call_events (id, workspace_id, call_id, source, provider_type, kind, dedupe_key, payload, occurred_at, received_at,
            provider_call_id, applied)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING",
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
    .bind(moves)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    let mut applied = Applied {
        call_id: call.as_ref().map(|c| c.id.clone()),
        campaign_id: call.as_ref().map(|c| c.campaign_id.clone()),
        duplicate: !inserted,
        transition: None,
    };
    let Some(call) = call.filter(|_| inserted) else {
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
    applied.transition = apply_to_call(tx, &call, &e.kind, e.cost, e.duration_ms, &e.dedupe_key, moves, now).await?;
    Ok(applied)
}

/// Applies a stored event (`dedupe_key`) to `call` as it stands: moves the call forward
/// only (fenced on its current status), marks the event applied (unless it was stored
/// `marked` so already), and moves the contact on when the call ends. Returns the
/// transition made, if any.
#[allow(clippy::too_many_arguments)]
pub async fn apply_to_call(tx: &mut Tx<'_>, call: &Call, kind: &EventKind, cost: Option<f64>, duration_ms: Option<i64>,
    dedupe_key: &str, marked: bool, now: Timestamp) -> Result<Option<Transition>> {
    let (reason, outcome) = match kind {
        EventKind::Ended { outcome, reason } => (reason.clone(), Some(*outcome)),
        _ => (None, None),
    };
    if let Some(t) = apply(call.status, kind) {
        let moved = sqlx::query(
            "UPDATE calls SET status = ?1, outcome = COALESCE(?2, outcome), ended_reason = COALESCE(?3, ended_reason),
                cost = COALESCE(?4, cost), duration_ms = COALESCE(?5, duration_ms),
                answered_at = CASE WHEN ?1 = 'in_progress' THEN COALESCE(answered_at, ?6) ELSE answered_at END,
                ended_at = CASE WHEN ?7 THEN ?6 ELSE ended_at END,
                last_event_at = MAX(last_event_at, ?6), updated_at = ?6
             WHERE id = ?8 AND status = ?9",
        )
        .bind(t.to.as_str())
        .bind(outcome.map(|o| o.as_str()))
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
                    give_attempt_back(tx, call, now).await?;
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
        if apply_to_call(tx, &call, &kind, cost, None, o.try_get("dedupe_key")?, false, now).await?.is_some() {
            call = reload(tx, &call.id).await?;
        }
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
    if status == ContactStatus::Pending && r.try_get::<String, _>("kind")? == "single_calls" && recurrence.frequency != Frequency::Once {
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


/// The provider refused the call because the account was full: the contact is due again
/// shortly and the attempt is not spent.
async fn give_attempt_back(tx: &mut Tx<'_>, call: &Call, now: Timestamp) -> Result<()> {
    sqlx::query(
        "UPDATE contacts SET attempts = attempts - 1, next_attempt_at = ?1, updated_at = ?2, last_outcome = 'failed',
            status = CASE WHEN (SELECT status FROM campaigns WHERE id = contacts.campaign_id) = 'canceled' THEN 'canceled' ELSE 'pending' END
         WHERE id = ?3 AND status = 'in_call'",
    )
    .bind(ms(now) + crate::common::CAPACITY_RETRY_MS)
    .bind(ms(now))
    .bind(call.contact_id.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
