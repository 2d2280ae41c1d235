//! Storing and applying provider events, for both backends: a backend loads the calls a
//! batch names inside its own transaction (SQLite: a plain read, its single writer's
//! `BEGIN IMMEDIATE` is the lock; PostgreSQL: `FOR UPDATE` and advisory locks, see
//! `postgres::events::lock_calls`) and hands them to [`apply_loaded`], which decides with
//! `crate::apply` and writes. Statements are written once through [`Db`]; PostgreSQL keeps
//! its own set-based `UNNEST` statements for what a batch writes many rows of (a round
//! trip per batch rather than per row is what its ingest figure rests on); SQLite writes
//! them in one statement per batch too, the rows as one JSON array (and the events'
//! payloads as one BLOB, [`insert_events`]), since each statement is a round trip to its
//! connection's worker thread.

use crate::apply::{next_step, AfterCallRow, BatchCalls, BatchPlan, Ended, EventRow, NextStep, AFTER_CALL_COLUMNS};
use crate::common::{kind_from_text, kind_text, ms, payload_extras};
use crate::sql::{args, Db};
use crate::{Applied, Call, OutboxEvent, Result};
use dialtone_core::ContactStatus;
use dialtone_core::{CallId, EventId, EventKind, ProviderEvent, WorkspaceId};
use jiff::Timestamp;
use std::collections::{HashMap, HashSet};

/// Stores `events` (once per dedupe key) and applies them to `calls` (the calls they name,
/// as loaded in the caller's transaction, which must keep them from changing until it
/// commits), as if they came one by one: moves each call forward only, moves the contact of
/// each ended call on, and corrects what late AMD verdicts correct. One [`Applied`] per
/// event, in order.
pub async fn apply_loaded(db: &mut Db<'_>, calls: BatchCalls, events: &[ProviderEvent], source: &str, now: Timestamp) -> Result<Vec<Applied>> {
    let mut plan = BatchPlan::new(calls, events, now);
    let inserted = insert_events(db, &plan.rows(), source, now).await?;
    let remarks = plan.settle(&inserted);
    mark_applied(db, &remarks.applied, true).await?;
    mark_applied(db, &remarks.not_applied, false).await?;
    write_plan(db, &plan, now).await?;
    Ok(plan.into_applied())
}

/// Writes what a plan decided: the calls it changed, the contacts of the calls it ended,
/// and the last outcome of contacts whose call a late verdict corrected.
///
/// The outbox events the batch causes (`call.started`, `call.ended`, `contact.finished`) are
/// written last, in the same transaction (`shared::outbox::emit`: one INSERT into
/// `webhook_messages` per 200 events, no row of another call is locked or updated).
async fn write_plan(db: &mut Db<'_>, plan: &BatchPlan<'_>, now: Timestamp) -> Result<()> {
    write_calls(db, &plan.dirty_calls()).await?;
    let mut outbox = call_events(plan);
    outbox.extend(end_contacts(db, plan.ended(), now).await?);
    for call in plan.corrected() {
        if !retry_corrected(db, call, now).await? {
            correct_last_outcome(db, call, now).await?;
        }
    }
    if !outbox.is_empty() {
        crate::shared::outbox::emit(db, &outbox, now).await?;
    }
    Ok(())
}

/// `call.started` for each call the batch answered, `call.ended` for each it ended, each
/// written with only what its call's row does not say (`OutboxEvent::from_call`: the
/// worker completes it from the row when it fans it out, `shared::outbox::CALL_FIELDS`).
///
/// A `call.ended` whose provider sends its report later ([`dialtone_core::ProviderKind::reports_later`]) and whose
/// report is not in this batch is held for it (`shared::outbox::REPORT_WAIT`): the worker
/// takes its cost, duration and summary from the call's row when the report is stored or
/// the wait is over, and only then fans it out. A call the provider never took (no provider
/// call id) gets no report and is not held.
fn call_events(plan: &BatchPlan<'_>) -> Vec<OutboxEvent> {
    let mut out = Vec::new();
    for c in plan.answered() {
        out.push(OutboxEvent::from_call(c.workspace_id.as_str(), "call.started", c.id.as_str(), serde_json::json!({}), false));
    }
    for e in plan.ended() {
        let c = plan.call(e.call.id.as_str()).unwrap_or(&e.call);
        let held = c.provider.reports_later() && c.provider_call_id.is_some() && !plan.reports(c.id.as_str());
        // The outcome as this end decided it (a later verdict may correct the row's), and a
        // summary that came in this batch (the ingest saves it on the call only after its commit).
        let mut data = serde_json::json!({ "outcome": e.outcome.as_str() });
        if let Some(summary) = plan.summary_of(c.id.as_str()) {
            data["transcript_summary"] = serde_json::Value::from(summary);
        }
        out.push(OutboxEvent::from_call(c.workspace_id.as_str(), "call.ended", c.id.as_str(), data, held));
    }
    out
}

/// A verdict that came after the provider's `completed` end (the voice pipeline's
/// `no_response`, a late AMD `voicemail`) corrected `call`'s outcome, but its contact was
/// already moved on as completed (`done`). When the campaign's policy retries the
/// corrected outcome, the contact is retried as it would have been had the verdict come
/// first (the order of the two is a race: the stream's close and the status callback):
/// otherwise a silent callee was retried or not depending on which won. Only a contact
/// still `done` by this call (no later attempt) of a runnable, one-off campaign is moved;
/// true if it was.
async fn retry_corrected(db: &mut Db<'_>, call: &Call, now: Timestamp) -> Result<bool> {
    let Some(outcome) = call.outcome else { return Ok(false) };
    let sql = format!(
        "SELECT {AFTER_CALL_COLUMNS} FROM (SELECT CAST($2 AS TEXT) AS outcome) t, contacts c JOIN campaigns cam ON cam.id = c.campaign_id
         WHERE c.id = $1 AND c.status = 'done' AND cam.status IN ('starting', 'dialing')
           AND NOT EXISTS (SELECT 1 FROM calls WHERE contact_id = $1 AND attempt > $3)"
    );
    let Some(row) = db.fetch_optional::<AfterCallRow>(&sql, args![call.contact_id.as_str(), outcome.as_str(), call.attempt]).await? else {
        return Ok(false);
    };
    let step = next_step(&row, call, outcome, now)?;
    if step.status != dialtone_core::ContactStatus::Pending || step.schedule_attempt.is_some() {
        return Ok(false);
    }
    let n = db
        .execute(
            "UPDATE contacts SET status = $1, next_attempt_at = $2, last_outcome = $3, updated_at = $4 WHERE id = $5 AND status = 'done'",
            args![step.status.as_str(), ms(step.next_at), step.last_outcome.as_str(), ms(now), call.contact_id.as_str()],
        )
        .await?;
    Ok(n == 1)
}

/// Offers `rows` to `call_events` (`ON CONFLICT (dedupe_key) DO NOTHING`), in batch order,
/// in one statement; returns the dedupe keys that were new. PostgreSQL binds arrays
/// (`UNNEST`); SQLite has no array type, so the rows travel as one JSON array of arrays read
/// with `json_each` (in array order: `ORDER BY key`; `WHERE true` keeps SQLite from reading
/// `ON CONFLICT` as a join's `ON`). One statement instead of one per event: on SQLite every
/// statement is a round trip to the connection's worker thread, and those hand-offs were
/// the largest share of the writer's CPU (BENCHMARKS.md, issue 10).
///
/// The payloads (the bulk of the bytes: a Vapi end-of-call-report is 1–2 KB) travel apart
/// from the JSON rows, as one BLOB of their texts end to end, each row naming its byte
/// offset and length (`substr` counts bytes in a BLOB). Inside the JSON array a payload was
/// a string: escaped in Rust, parsed into the array, written back out as each row's text,
/// parsed again by `json_extract` and unescaped; that was most of this statement's time.
async fn insert_events(db: &mut Db<'_>, rows: &[EventRow<'_>], source: &str, now: Timestamp) -> Result<HashSet<String>> {
    if let Db::Postgres(c) = db {
        return crate::postgres::events::insert_events(c, rows, source, now).await;
    }
    if rows.is_empty() {
        return Ok(HashSet::new());
    }
    let mut payloads = Vec::with_capacity(rows.iter().map(|r| r.event.raw.get().len()).sum());
    let json: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let e = r.event;
            let (start, len) = (payloads.len() + 1, e.raw.get().len());
            payloads.extend_from_slice(e.raw.get().as_bytes());
            serde_json::json!([
                EventId::new().as_str(),
                r.workspace_id,
                r.call_id,
                &e.provider_type,
                kind_text(&e.kind),
                &e.dedupe_key,
                start,
                e.occurred_at.map(ms),
                e.provider_call_id.as_deref(),
                r.applied,
                r.mismatched,
                route_account(e),
                len
            ])
        })
        .collect();
    let keys: Vec<(String,)> = db
        .fetch_all(
            "INSERT INTO call_events (id, workspace_id, call_id, source, provider_type, kind, dedupe_key, payload, occurred_at,
                received_at, provider_call_id, applied, mismatched, account_id)
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), $1,
                json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'),
                CAST(substr($4, json_extract(value, '$[6]'), json_extract(value, '$[12]')) AS TEXT),
                json_extract(value, '$[7]'), $2, json_extract(value, '$[8]'), json_extract(value, '$[9]'), json_extract(value, '$[10]'),
                json_extract(value, '$[11]')
             FROM json_each($3) WHERE true ORDER BY key
             ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key",
            args![source, ms(now), serde_json::Value::Array(json).to_string(), payloads],
        )
        .await?;
    Ok(keys.into_iter().map(|(k,)| k).collect())
}

/// Writes the fields events change, for every call given, in one statement (PostgreSQL
/// `UNNEST`, SQLite an `UPDATE … FROM json_each`: see [`insert_events`] for why).
async fn write_calls(db: &mut Db<'_>, calls: &[&Call]) -> Result<()> {
    if let Db::Postgres(c) = db {
        return crate::postgres::events::write_calls(c, calls).await;
    }
    if calls.is_empty() {
        return Ok(());
    }
    let json: Vec<serde_json::Value> = calls
        .iter()
        .map(|c| {
            serde_json::json!([
                c.id.as_str(),
                c.provider_call_id.as_deref(),
                c.status.as_str(),
                c.outcome.map(|o| o.as_str()),
                c.ended_reason.as_deref(),
                c.cost,
                c.duration_ms,
                c.answered_at.map(ms),
                c.ended_at.map(ms),
                ms(c.last_event_at),
                ms(c.updated_at),
                c.answered_by.map(|a| a.as_str())
            ])
        })
        .collect();
    db.execute(
        "UPDATE calls SET provider_call_id = json_extract(t.value, '$[1]'), status = json_extract(t.value, '$[2]'),
            outcome = json_extract(t.value, '$[3]'), ended_reason = json_extract(t.value, '$[4]'), cost = json_extract(t.value, '$[5]'),
            duration_ms = json_extract(t.value, '$[6]'), answered_at = json_extract(t.value, '$[7]'), ended_at = json_extract(t.value, '$[8]'),
            last_event_at = json_extract(t.value, '$[9]'), updated_at = json_extract(t.value, '$[10]'), answered_by = json_extract(t.value, '$[11]')
         FROM json_each($1) AS t WHERE calls.id = json_extract(t.value, '$[0]')",
        args![serde_json::Value::Array(json).to_string()],
    )
    .await?;
    Ok(())
}

/// Marks stored events applied (they changed their call) or not. Rare: only a batch that
/// met a duplicate, and adopted orphans, come here.
async fn mark_applied(db: &mut Db<'_>, dedupe_keys: &[&str], applied: bool) -> Result<()> {
    for key in dedupe_keys {
        db.execute("UPDATE call_events SET applied = $1 WHERE dedupe_key = $2", args![applied, *key]).await?;
    }
    Ok(())
}

/// After calls end: for each, give the attempt back (the provider was at capacity), or
/// retry the contact later, or finish it. A contact named twice (two of its calls ending
/// in one batch) is moved once per round, in order.
/// Returns a `contact.finished` outbox event for each contact that reached a final status.
async fn end_contacts(db: &mut Db<'_>, ended: &[Ended], now: Timestamp) -> Result<Vec<OutboxEvent>> {
    let mut finished = Vec::new();
    let mut rest = Vec::new();
    for e in ended {
        if e.capacity_refusal {
            crate::attempts::give_back_refused_for_capacity(db.by_ref(), e.call.contact_id.as_str(), now).await?;
        } else {
            rest.push(e);
        }
    }
    while !rest.is_empty() {
        let mut seen = HashSet::new();
        let (round, later): (Vec<&Ended>, Vec<&Ended>) = rest.into_iter().partition(|e| seen.insert(e.call.contact_id.clone()));
        finished.extend(move_contacts_on(db, &round, now).await?);
        rest = later;
    }
    Ok(finished)
}

/// Moves each contact on after its call ended ([`next_step`]); the contacts are distinct.
/// Returns a `contact.finished` outbox event for each that reached a final status.
async fn move_contacts_on(db: &mut Db<'_>, ended: &[&Ended], now: Timestamp) -> Result<Vec<OutboxEvent>> {
    let found: Vec<AfterCallRow> = match db {
        Db::Postgres(c) => crate::postgres::events::after_call_rows(c, ended).await?,
        // SQLite's writer is alone: a plain read, all contacts in one statement (their ids
        // and outcomes as one JSON array, see `insert_events`).
        _ => {
            let pairs: Vec<serde_json::Value> = ended.iter().map(|e| serde_json::json!([e.call.contact_id.as_str(), e.outcome.as_str()])).collect();
            let sql = format!(
                "SELECT {AFTER_CALL_COLUMNS}
                 FROM (SELECT json_extract(value, '$[0]') AS contact_id, json_extract(value, '$[1]') AS outcome FROM json_each($1)) t
                 JOIN contacts c ON c.id = t.contact_id JOIN campaigns cam ON cam.id = c.campaign_id"
            );
            db.fetch_all::<AfterCallRow>(&sql, args![serde_json::Value::Array(pairs).to_string()]).await?
        }
    };
    let rows: HashMap<&str, &AfterCallRow> = found.iter().map(|r| (r.contact_id.as_str(), r)).collect();
    let mut steps: Vec<(&str, NextStep)> = Vec::with_capacity(ended.len());
    let mut finished = Vec::new();
    for e in ended {
        let Some(row) = rows.get(e.call.contact_id.as_str()) else { continue };
        let step = next_step(row, &e.call, e.outcome, now)?;
        if let Some(attempt) = step.schedule_attempt {
            let c = &e.call;
            // Numbered by the one rule (`crate::attempts`), in this transaction.
            crate::shared::single::insert_scheduled(
                &mut db.by_ref(),
                &CallId::new(),
                &WorkspaceId::from_db(row.workspace_id.clone()),
                &c.campaign_id,
                &c.contact_id,
                attempt,
                row.provider.as_str(),
                c.phone.as_str(),
                step.next_at,
                now,
            )
            .await?;
        }
        if !matches!(step.status, ContactStatus::Pending | ContactStatus::InCall) {
            // Its status and last outcome as they are now; its ids and attempts from its last
            // call's row at fan-out (`shared::outbox::CALL_FIELDS`).
            finished.push(OutboxEvent::from_call(
                row.workspace_id.as_str(),
                "contact.finished",
                e.call.id.as_str(),
                serde_json::json!({ "status": step.status.as_str(), "last_outcome": step.last_outcome.as_str() }),
                false,
            ));
        }
        steps.push((e.call.contact_id.as_str(), step));
    }
    if let Db::Postgres(c) = db {
        crate::postgres::events::update_contacts(c, &steps, now).await?;
        return Ok(finished);
    }
    if steps.is_empty() {
        return Ok(finished);
    }
    let json: Vec<serde_json::Value> =
        steps.iter().map(|(contact, step)| serde_json::json!([contact, step.status.as_str(), ms(step.next_at), step.last_outcome.as_str()])).collect();
    db.execute(
        "UPDATE contacts SET status = json_extract(t.value, '$[1]'), next_attempt_at = json_extract(t.value, '$[2]'),
            last_outcome = json_extract(t.value, '$[3]'), updated_at = $1
         FROM json_each($2) AS t WHERE contacts.id = json_extract(t.value, '$[0]') AND contacts.status = 'in_call'",
        args![ms(now), serde_json::Value::Array(json).to_string()],
    )
    .await?;
    Ok(finished)
}

/// A late AMD verdict corrected an ended call's outcome (`call` as corrected): its contact
/// shows the corrected outcome too, unless a later call of the contact has ended since.
async fn correct_last_outcome(db: &mut Db<'_>, call: &Call, now: Timestamp) -> Result<()> {
    db.execute(
        "UPDATE contacts SET last_outcome = $1, updated_at = $2 WHERE id = $3
           AND NOT EXISTS (SELECT 1 FROM calls WHERE contact_id = $3 AND attempt > $4 AND outcome IS NOT NULL)",
        args![call.outcome.map(|o| o.as_str()), ms(now), call.contact_id.as_str(), call.attempt],
    )
    .await?;
    Ok(())
}

/// The workspace account whose webhook route brought `e` (stored in `call_events.account_id`).
pub(crate) fn route_account(e: &ProviderEvent) -> Option<&str> {
    e.webhook.as_ref().and_then(|r| r.account_id.as_ref()).map(|a| a.as_str())
}

/// An orphan: an event stored before a call had its provider call id.
#[derive(sqlx::FromRow)]
struct OrphanRow {
    /// The provider's name for it: an adopted end-of-call report is the call's report
    /// (`BatchPlan::reports`), so its `call.ended` is not held waiting for one.
    provider_type: String,
    kind: String,
    dedupe_key: String,
    payload: String,
}

/// Adopts the events stored for `pid` before its call existed or had that id (orphans):
/// attaches them to `call` (which has taken `pid`, its row held by the caller's
/// transaction) and applies them in the order received, as if they arrived `now`, as one
/// batch would. Returns the call as it stands afterwards. On PostgreSQL the caller holds
/// `pid`'s advisory lock, so no orphan for it is being stored meanwhile.
pub async fn adopt_orphans(db: &mut Db<'_>, call: Call, pid: &str, now: Timestamp) -> Result<Call> {
    // The order received: `received_at`, then the order stored (SQLite's rowid; PostgreSQL
    // has no rowid and numbers its rows in `seq`).
    let order = match db.dialect() {
        crate::sql::Dialect::Sqlite => "rowid",
        crate::sql::Dialect::Postgres => "seq",
    };
    // Only the orphans that came through the call's own account's webhook route.
    let (same_account, account) = match &call.account_id {
        Some(a) => ("account_id = $2", a.as_str()),
        None => ("account_id IS NULL AND $2 = ''", ""),
    };
    let orphans: Vec<OrphanRow> = db
        .fetch_all(
            &format!(
                "SELECT provider_type, kind, dedupe_key, payload FROM call_events WHERE provider_call_id = $1 AND call_id IS NULL AND {same_account} ORDER BY received_at, {order}"
            ),
            args![pid, account],
        )
        .await?;
    if orphans.is_empty() {
        return Ok(call);
    }
    let same_account = same_account.replace("$2", "$4");
    db.execute(
        &format!("UPDATE call_events SET call_id = $1, workspace_id = $2 WHERE provider_call_id = $3 AND call_id IS NULL AND {same_account}"),
        args![call.id.as_str(), call.workspace_id.as_str(), pid, account],
    )
    .await?;
    let events: Vec<ProviderEvent> = orphans.iter().filter_map(|o| orphan_event(o, &call, pid)).collect();
    let id = call.id.clone();
    // Each stored once already: all new to the call, as `BatchPlan::new` takes them.
    let plan = BatchPlan::new(BatchCalls::new([call]), &events, now);
    let changed: Vec<&str> = plan.rows().iter().filter(|r| r.applied).map(|r| r.event.dedupe_key.as_str()).collect();
    mark_applied(db, &changed, true).await?;
    write_plan(db, &plan, now).await?;
    Ok(plan.call(id.as_str()).expect("the adopting call is in its own plan").clone())
}

/// The event an orphan row was parsed from, as far as the row still tells it (kind, and
/// the cost and ended reason in its raw payload); `None` for a kind no provider event has.
fn orphan_event(o: &OrphanRow, call: &Call, pid: &str) -> Option<ProviderEvent> {
    let payload: serde_json::Value = serde_json::from_str(&o.payload).unwrap_or(serde_json::Value::Null);
    let (cost, reason) = payload_extras(&payload);
    let kind = match kind_from_text(&o.kind)? {
        EventKind::Ended { outcome, .. } => EventKind::Ended { outcome, reason },
        k => k,
    };
    Some(ProviderEvent {
        provider_type: o.provider_type.clone(),
        provider_call_id: Some(pid.to_string()),
        call_id: Some(call.id.clone()),
        kind,
        dedupe_key: o.dedupe_key.clone(),
        occurred_at: None,
        cost,
        duration_ms: None,
        report: None,
        raw: dialtone_core::RawJson::null(),
        webhook: None,
    })
}

/// An engine decision that belongs to no call row (e.g. a released, never-sent claim).
pub async fn insert_engine_note(db: &mut Db<'_>, ws: &str, dedupe_key: &str, kind: &str, payload: serde_json::Value, now: Timestamp) -> Result<()> {
    db.execute(
        "INSERT INTO call_events (id, workspace_id, call_id, source, provider_type, kind, dedupe_key, payload, received_at)
         VALUES ($1, $2, NULL, 'engine', 'engine', $3, $4, $5, $6) ON CONFLICT (dedupe_key) DO NOTHING",
        args![EventId::new().as_str(), ws, kind, dedupe_key, payload.to_string(), ms(now)],
    )
    .await?;
    Ok(())
}

/// See `Store::purge_unknown_events`.
pub async fn purge_unknown(mut db: Db<'_>, before: Timestamp, limit: u32) -> Result<u64> {
    db.execute(
        "DELETE FROM call_events WHERE id IN (
            SELECT id FROM call_events WHERE call_id IS NULL AND source = 'provider' AND received_at < $1 ORDER BY received_at LIMIT $2)",
        args![ms(before), limit],
    )
    .await
}
