//! Applying provider events: store once (dedupe key), move the call forward only, and
//! move the contact on when its call ends. Same decisions as the SQLite backend; what
//! differs is locking, since several nodes may apply events side by side.

use super::rows::{self, ms};
use crate::common::{contact_zones, facts, kind_from_text, kind_text, log_mismatch, payload_extras, single_call_due, target, Target, INBOUND_KIND};
use crate::{Applied, Call, Result, StoreError};
use dialtone_core::call::{effect, Effect};
use dialtone_core::frequency::{Frequency, Recurrence};
use dialtone_core::retry::AfterCall;
use dialtone_core::schedule::Schedule;
use dialtone_core::{CallId, CallStatus, ContactStatus, EventId, EventKind, Outcome, ProviderEvent, Transition, WorkspaceId};
use std::collections::{HashMap, HashSet};
use jiff::Timestamp;
use sqlx::{Connection, PgConnection, Postgres, Row, Transaction};

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
    let mut calls = lock_calls(&mut tx, events).await?;

    // Each event's call, found as the sequential code would: a provider id attached by an
    // earlier event of the batch finds its call for the later ones.
    let found: Vec<Option<(String, bool)>> = events.iter().map(|e| calls.find_and_attach(e)).collect();
    let targets: Vec<Option<String>> = found.iter().map(|f| f.as_ref().map(|(id, _)| id.clone())).collect();
    let mismatched: Vec<bool> = found.iter().map(|f| f.as_ref().is_some_and(|(_, m)| *m)).collect();
    // The first event of each dedupe key is the one offered to the table; a repeat inside
    // the batch is a duplicate like any other.
    let mut seen = HashSet::new();
    let first: Vec<bool> = events.iter().map(|e| seen.insert(e.dedupe_key.as_str())).collect();

    // The batch is worked out before it is stored, as if every event offered is new (the
    // usual case), so each event is stored already marked applied or not. The calls are
    // locked: only an event stored before (a provider's retry) can prove the guess wrong.
    let before = calls.clone();
    let mut planned = plan_batch(&mut calls, events, &targets, &mismatched, &first, now);
    let inserted = insert_events(&mut tx, events, &targets, &first, &planned, &calls, source, now).await?;
    let new: Vec<bool> = events.iter().zip(&first).map(|(e, &f)| f && inserted.contains(e.dedupe_key.as_str())).collect();
    if new != first {
        // Work it out again without the duplicates, and correct the marks it changes.
        calls = before;
        let again = plan_batch(&mut calls, events, &targets, &mismatched, &new, now);
        let changed = |to: bool| -> Vec<&str> {
            (0..events.len())
                .filter(|&i| new[i] && again.changed[i] == to && planned.changed[i] != to)
                .map(|i| events[i].dedupe_key.as_str())
                .collect()
        };
        mark_applied(&mut tx, &changed(true), true).await?;
        mark_applied(&mut tx, &changed(false), false).await?;
        planned = again;
    }
    let dirty: Vec<&Call> = calls.by_id.values().filter(|c| c.dirty).map(|c| &c.call).collect();
    write_calls(&mut tx, &dirty).await?;
    end_contacts(&mut tx, planned.ended, now).await?;
    for call in &planned.corrected {
        correct_last_outcome(&mut tx, call, now).await?;
    }
    tx.commit().await?;
    Ok(planned.out)
}

/// What a batch does, worked out in memory.
struct Planned {
    /// One per event, in order.
    out: Vec<Applied>,
    /// The calls it ends: the call, its outcome, and whether the provider refused it for
    /// capacity (the attempt is given back).
    ended: Vec<(Call, Outcome, bool)>,
    /// One per event: whether it changed its call (stored marked `applied`).
    changed: Vec<bool>,
    /// Ended calls whose outcome a late AMD verdict corrected, as corrected.
    corrected: Vec<Call>,
}

/// Applies each event marked `new` to its call in `calls`, in batch order; an event whose
/// ids name different calls (`mismatched`) is applied to none.
fn plan_batch(calls: &mut LockedCalls, events: &[ProviderEvent], targets: &[Option<String>], mismatched: &[bool], new: &[bool],
    now: Timestamp) -> Planned {
    let mut planned = Planned { out: Vec::with_capacity(events.len()), ended: vec![], changed: vec![], corrected: vec![] };
    for (i, e) in events.iter().enumerate() {
        let call = targets[i].as_ref().and_then(|id| calls.by_id.get_mut(id));
        let mut applied = Applied {
            call_id: call.as_ref().map(|c| c.call.id.clone()),
            campaign_id: call.as_ref().map(|c| c.call.campaign_id.clone()),
            duplicate: !new[i],
            transition: None,
            mismatched: mismatched[i],
        };
        let mut changed = false;
        if let (true, false, Some(c)) = (new[i], mismatched[i], call) {
            let fx = plan(&mut c.call, &e.kind, e.cost, e.duration_ms, now);
            changed = fx.changes();
            if fx.corrected.is_some() {
                planned.corrected.push(c.call.clone());
            }
            applied.transition = fx.transition;
            c.dirty = true;
            if let Some(t) = &applied.transition {
                if let (true, Some(outcome)) = (t.ends_call(), t.outcome) {
                    planned.ended.push((c.call.clone(), outcome, crate::common::is_capacity_refusal(&e.kind)));
                }
            }
        }
        planned.changed.push(changed);
        planned.out.push(applied);
    }
    planned
}

/// The calls a batch names, locked, as they stand; changed in memory, written once.
#[derive(Clone)]
struct LockedCalls {
    by_id: HashMap<String, LockedCall>,
    by_pid: HashMap<String, String>,
}

#[derive(Clone)]
struct LockedCall {
    call: Call,
    dirty: bool,
}

impl LockedCalls {
    /// The call `e` is for and whether its ids disagree (`common::target`: the provider
    /// id wins), attaching the event's provider id to a call that has none yet.
    fn find_and_attach(&mut self, e: &ProviderEvent) -> Option<(String, bool)> {
        let by_pid = e.provider_call_id.as_ref().and_then(|pid| self.by_pid.get(pid)).map(String::as_str);
        let by_id = match by_pid {
            Some(_) => None,
            None => e.call_id.as_ref().and_then(|c| self.by_id.get(c.as_str())).map(|c| c.call.id.as_str()),
        };
        let id = match target(e, by_pid, by_id) {
            Target::Call(id) => id,
            Target::Mismatch(id) => {
                log_mismatch(e, &id);
                return Some((id, true));
            }
            Target::Unknown => return None,
        };
        if let (Some(pid), Some(c)) = (&e.provider_call_id, self.by_id.get_mut(&id)) {
            if c.call.provider_call_id.is_none() {
                c.call.provider_call_id = Some(pid.clone());
                c.dirty = true;
                self.by_pid.insert(pid.clone(), id.clone());
            }
        }
        Some((id, false))
    }

    /// Takes in locked call rows.
    fn add(&mut self, rows: &[sqlx::postgres::PgRow]) -> Result<()> {
        for r in rows {
            let call = rows::call(r)?;
            if let Some(pid) = &call.provider_call_id {
                self.by_pid.insert(pid.clone(), call.id.as_str().to_string());
            }
            self.by_id.entry(call.id.as_str().to_string()).or_insert(LockedCall { call, dirty: false });
        }
        Ok(())
    }
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
async fn lock_calls(tx: &mut Tx<'_>, events: &[ProviderEvent]) -> Result<LockedCalls> {
    let pids: Vec<&str> = events.iter().filter_map(|e| e.provider_call_id.as_deref()).collect();
    let ids: Vec<&str> = events.iter().filter_map(|e| e.call_id.as_ref().map(|c| c.as_str())).collect();
    let mut locked = LockedCalls { by_id: HashMap::new(), by_pid: HashMap::new() };
    let rows = sqlx::query("SELECT * FROM calls WHERE provider_call_id = ANY($1) OR id = ANY($2) ORDER BY id FOR UPDATE")
        .bind(&pids)
        .bind(&ids)
        .fetch_all(&mut **tx)
        .await?;
    locked.add(&rows)?;
    let mut unknown: Vec<&str> = pids.iter().copied().filter(|p| !locked.by_pid.contains_key(*p)).collect();
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
    let rows = sqlx::query("SELECT * FROM calls WHERE provider_call_id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(&unknown)
        .fetch_all(&mut **tx)
        .await?;
    locked.add(&rows)?;
    Ok(locked)
}


/// Takes the transaction-scoped advisory lock of one provider call id (see `lock_calls`).
pub async fn lock_provider_call_id(tx: &mut Tx<'_>, pid: &str) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(advisory_key(pid)).execute(&mut **tx).await?;
    Ok(())
}

/// The advisory lock key of a provider call id: 64-bit FNV-1a of the id under a namespace
/// of ours (stable across nodes and releases; a collision only serializes two calls).
fn advisory_key(pid: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in b"dialtone:provider-call:".iter().chain(pid.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

/// Stores the batch's events in one statement, in batch order, each marked applied as
/// `planned` says; returns the dedupe keys that were new. An event whose call is unknown is
/// kept with no call (an orphan), findable by its provider call id: an inbound call's
/// record adopts it (`record_inbound_call`).
#[allow(clippy::too_many_arguments)]
async fn insert_events(tx: &mut Tx<'_>, events: &[ProviderEvent], targets: &[Option<String>], first: &[bool],
    planned: &Planned, calls: &LockedCalls, source: &str, now: Timestamp) -> Result<HashSet<String>> {
    let offered: Vec<usize> = (0..events.len()).filter(|&i| first[i]).collect();
    if offered.is_empty() {
        return Ok(HashSet::new());
    }
    let call_of = |i: usize| targets[i].as_ref().and_then(|id| calls.by_id.get(id)).map(|c| &c.call);
    let ids: Vec<String> = offered.iter().map(|_| EventId::new().as_str().to_string()).collect();
    let workspaces: Vec<Option<&str>> = offered.iter().map(|&i| call_of(i).map(|c| c.workspace_id.as_str())).collect();
    let call_ids: Vec<Option<&str>> = offered.iter().map(|&i| call_of(i).map(|c| c.id.as_str())).collect();
    let types: Vec<&str> = offered.iter().map(|&i| events[i].provider_type.as_str()).collect();
    let kinds: Vec<String> = offered.iter().map(|&i| kind_text(&events[i].kind)).collect();
    let keys: Vec<&str> = offered.iter().map(|&i| events[i].dedupe_key.as_str()).collect();
    let payloads: Vec<String> = offered.iter().map(|&i| events[i].raw.to_string()).collect();
    let occurred: Vec<Option<i64>> = offered.iter().map(|&i| events[i].occurred_at.map(ms)).collect();
    let pids: Vec<Option<&str>> = offered.iter().map(|&i| events[i].provider_call_id.as_deref()).collect();
    let applied: Vec<bool> = offered.iter().map(|&i| planned.changed[i]).collect();
    let mismatched: Vec<bool> = offered.iter().map(|&i| planned.out[i].mismatched).collect();
    let keys_in: Vec<String> = sqlx::query_scalar(
        "INSERT INTO call_events (id, workspace_id, call_id, source, provider_type, kind, dedupe_key, payload, occurred_at, received_at,
            provider_call_id, applied, mismatched)
         SELECT t.id, t.ws, t.call_id, $1, t.provider_type, t.kind, t.dedupe_key, t.payload, t.occurred_at, $2, t.pid, t.applied, t.mismatched
         FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[], $11::text[],
                     $12::bool[], $13::bool[])
              WITH ORDINALITY AS t(id, ws, call_id, provider_type, kind, dedupe_key, payload, occurred_at, pid, applied, mismatched, ord)
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
    .fetch_all(&mut **tx)
    .await?;
    Ok(keys_in.into_iter().collect())
}

/// What an event does to `call` as it stands (its row is locked), as
/// `dialtone_core::call::effect` decides: moves it forward only, stores an AMD verdict it
/// did not have and the outcome a late verdict corrects, or, for a stale or informational
/// event, notes that the call is alive (reaper) and fills in what the end did not carry.
/// Changes `call` in memory; `write_calls` stores it.
fn plan(call: &mut Call, kind: &EventKind, cost: Option<f64>, duration_ms: Option<i64>, now: Timestamp) -> Effect {
    let fx = effect(&facts(call), kind);
    call.last_event_at = call.last_event_at.max(now);
    if let Some(answered_by) = fx.answered_by {
        call.answered_by = Some(answered_by);
        call.outcome = fx.corrected.or(call.outcome);
        call.updated_at = now;
        return fx;
    }
    let Some(t) = fx.transition.clone() else {
        call.cost = call.cost.or(cost);
        call.duration_ms = call.duration_ms.or(duration_ms);
        return fx;
    };
    if let EventKind::Ended { reason, .. } = kind {
        call.outcome = t.outcome;
        call.ended_reason = reason.clone().or(call.ended_reason.take());
    }
    call.cost = cost.or(call.cost);
    call.duration_ms = duration_ms.or(call.duration_ms);
    if t.to == CallStatus::InProgress && call.answered_at.is_none() {
        call.answered_at = Some(now);
    }
    if t.to.is_terminal() {
        call.ended_at = Some(now);
    }
    call.status = t.to;
    call.updated_at = now;
    fx
}

/// Writes the fields events change, for every call given: one statement.
async fn write_calls(tx: &mut Tx<'_>, calls: &[&Call]) -> Result<()> {
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
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Marks stored events applied (they moved their call) or not.
async fn mark_applied(tx: &mut Tx<'_>, dedupe_keys: &[&str], applied: bool) -> Result<()> {
    if dedupe_keys.is_empty() {
        return Ok(());
    }
    sqlx::query("UPDATE call_events SET applied = $1 WHERE dedupe_key = ANY($2)")
        .bind(applied)
        .bind(dedupe_keys)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Applies a stored event (`dedupe_key`) to `call` as it stands (its row locked), in
/// memory and in the table: moves the call forward only, marks the event applied, and
/// moves the contact on when the call ends.
async fn apply_to_call(tx: &mut Tx<'_>, call: &mut Call, kind: &EventKind, cost: Option<f64>, dedupe_key: &str, now: Timestamp) -> Result<()> {
    let fx = plan(call, kind, cost, None, now);
    if fx.changes() {
        mark_applied(tx, &[dedupe_key], true).await?;
    }
    write_calls(tx, &[&*call]).await?;
    if fx.corrected.is_some() {
        correct_last_outcome(tx, call, now).await?;
    }
    if let Some(Transition { outcome: Some(outcome), .. }) = fx.transition.filter(Transition::ends_call) {
        end_contacts(tx, vec![(call.clone(), outcome, crate::common::is_capacity_refusal(kind))], now).await?;
    }
    Ok(())
}

/// Adopts the events stored for `pid` before its call existed (orphans): attaches each to
/// `call` and applies it, in the order received, as if it arrived `now`. Returns the call
/// as it stands afterwards. The caller holds `pid`'s advisory lock, so no orphan for it is
/// being stored meanwhile.
pub async fn adopt_orphans(tx: &mut Tx<'_>, call: Call, pid: &str, now: Timestamp) -> Result<Call> {
    let orphans = sqlx::query(
        "SELECT id, kind, dedupe_key, payload FROM call_events WHERE provider_call_id = $1 AND call_id IS NULL ORDER BY received_at, seq",
    )
    .bind(pid)
    .fetch_all(&mut **tx)
    .await?;
    let mut call = call;
    for o in &orphans {
        sqlx::query("UPDATE call_events SET call_id = $1, workspace_id = $2 WHERE id = $3")
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
        apply_to_call(tx, &mut call, &kind, cost, o.try_get("dedupe_key")?, now).await?;
    }
    Ok(call)
}

/// After calls end: for each, give the attempt back (the provider was at capacity), or
/// retry the contact later, or finish it. Set-based; a contact named twice (two of its
/// calls ending in one batch) is moved once per round, in order.
async fn end_contacts(tx: &mut Tx<'_>, ended: Vec<(Call, Outcome, bool)>, now: Timestamp) -> Result<()> {
    let mut rest = Vec::new();
    for (call, outcome, refusal) in ended {
        if refusal {
            crate::attempts::give_back_refused_for_capacity(crate::sql::Db::from(&mut **tx), call.contact_id.as_str(), now).await?;
        } else {
            rest.push((call, outcome));
        }
    }
    while !rest.is_empty() {
        let mut seen = HashSet::new();
        let (round, later): (Vec<_>, Vec<_>) = rest.into_iter().partition(|(c, _)| seen.insert(c.contact_id.clone()));
        move_contacts_on(tx, &round, now).await?;
        rest = later;
    }
    Ok(())
}

/// Retries each contact later, or finishes it; the contacts are distinct.
async fn move_contacts_on(tx: &mut Tx<'_>, ended: &[(Call, Outcome)], now: Timestamp) -> Result<()> {
    let contact_ids: Vec<&str> = ended.iter().map(|(c, _)| c.contact_id.as_str()).collect();
    let outcomes: Vec<&str> = ended.iter().map(|(_, o)| o.as_str()).collect();
    // FOR SHARE OF cam (taken in campaign order): a cancel waits for us, or we see it
    // committed (and cancel the contact rather than schedule a retry).
    let found = sqlx::query(
        "SELECT t.ord, c.attempts, c.timezone, c.timezones, c.recurrence AS contact_recurrence, cam.max_attempts, cam.retry_policy,
            cam.assume_campaign_timezone_for_ambiguous, cam.calling_hours,
            cam.status AS campaign_status, cam.recurrence AS campaign_recurrence, cam.kind, cam.schedule, cam.provider, cam.workspace_id,
            (SELECT COUNT(*) FROM calls k WHERE k.contact_id = c.id AND k.outcome = t.outcome) AS occurrences
         FROM UNNEST($1::text[], $2::text[]) WITH ORDINALITY AS t(contact_id, outcome, ord)
         JOIN contacts c ON c.id = t.contact_id JOIN campaigns cam ON cam.id = c.campaign_id
         ORDER BY cam.id FOR SHARE OF cam",
    )
    .bind(&contact_ids)
    .bind(&outcomes)
    .fetch_all(&mut **tx)
    .await?;
    let (mut ids, mut statuses, mut next, mut last) = (vec![], vec![], vec![], vec![]);
    for r in &found {
        let (call, outcome) = &ended[r.try_get::<i64, _>("ord")? as usize - 1];
        let policy = rows::retry_policy(r.try_get("retry_policy")?)?;
        let attempts = r.try_get::<i64, _>("attempts")? as u32;
        let recurrence: Recurrence = match r.try_get::<Option<String>, _>("contact_recurrence")? {
            Some(s) => rows::json(&s, "recurrence")?,
            None => rows::json(r.try_get("campaign_recurrence")?, "recurrence")?,
        };
        let schedule: Schedule = rows::json(r.try_get("schedule")?, "schedule")?;
        let zones = contact_zones(r.try_get("timezone")?, r.try_get("timezones")?, &schedule, r.try_get("assume_campaign_timezone_for_ambiguous")?);
        let kind: String = r.try_get("kind")?;
        // An inbound caller is never called back: the contact is done whatever the outcome.
        let (status, next_at) = if kind == INBOUND_KIND {
            (ContactStatus::Done, now)
        } else {
            AfterCall {
                outcome: *outcome,
                occurrences: r.try_get::<i64, _>("occurrences")? as u32,
                attempts,
                max_attempts: r.try_get::<i64, _>("max_attempts")? as u32,
                policy: &policy,
                recurrence: &recurrence,
                zones: &zones,
                campaign_canceled: r.try_get::<String, _>("campaign_status")? == "canceled",
                call_id: call.id.as_str(),
                now,
            }
            .decide()
        };
        let next_at = match status {
            ContactStatus::Pending => single_call_due(&kind, next_at, &schedule, r.try_get("calling_hours")?, &zones)?,
            _ => next_at,
        };
        ids.push(call.contact_id.as_str());
        statuses.push(status.as_str());
        next.push(ms(next_at));
        last.push(outcome.as_str());
        // A recurring single call shows its next occurrence as a scheduled call.
        if status == ContactStatus::Pending && kind == dialtone_core::CampaignKind::SingleCalls.as_str() && recurrence.frequency != Frequency::Once {
            let ws = WorkspaceId::from_db(r.try_get("workspace_id")?);
            super::single::insert_scheduled(tx, &CallId::new(), &ws, &call.campaign_id, &call.contact_id, attempts + 1,
                &r.try_get::<String, _>("provider")?, call.phone.as_str(), next_at, now).await?;
        }
    }
    sqlx::query(
        "UPDATE contacts c SET status = t.status, next_attempt_at = t.next_at, last_outcome = t.outcome, updated_at = $5
         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[]) AS t(id, status, next_at, outcome)
         WHERE c.id = t.id AND c.status = 'in_call'",
    )
    .bind(&ids)
    .bind(&statuses)
    .bind(&next)
    .bind(&last)
    .bind(ms(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An engine decision that belongs to no call row (e.g. a released, never-sent claim).
pub async fn insert_engine_note(tx: &mut Tx<'_>, ws: &str, dedupe_key: &str, kind: &str, payload: serde_json::Value, now: Timestamp) -> Result<()> {
    sqlx::query(
        "INSERT INTO call_events (id, workspace_id, call_id, source, provider_type, kind, dedupe_key, payload, received_at)
         VALUES ($1, $2, NULL, 'engine', 'engine', $3, $4, $5, $6) ON CONFLICT (dedupe_key) DO NOTHING",
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
pub async fn purge_unknown(pool: &sqlx::PgPool, before: Timestamp, limit: u32) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM call_events WHERE id IN (
            SELECT id FROM call_events WHERE call_id IS NULL AND source = 'provider' AND received_at < $1 ORDER BY received_at LIMIT $2)",
    )
    .bind(ms(before))
    .bind(i64::from(limit))
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// A late AMD verdict corrected an ended call's outcome (`call` as corrected): its contact
/// shows the corrected outcome too, unless a later call of the contact has ended since.
async fn correct_last_outcome(tx: &mut Tx<'_>, call: &Call, now: Timestamp) -> Result<()> {
    sqlx::query(
        "UPDATE contacts SET last_outcome = $1, updated_at = $2 WHERE id = $3
           AND NOT EXISTS (SELECT 1 FROM calls WHERE contact_id = $3 AND attempt > $4 AND outcome IS NOT NULL)",
    )
    .bind(call.outcome.map(|o| o.as_str()))
    .bind(ms(now))
    .bind(call.contact_id.as_str())
    .bind(i64::from(call.attempt))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
