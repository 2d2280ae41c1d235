//! The engine's writes on PostgreSQL: claiming, placing, ending, and reads of calls.

use super::events;
use super::rows::{self, ms};
use super::suppressions;
use crate::common::{recipient_hold, ACTIVE_SQL};
use crate::{Applied, Call, CallEvent, CallFilter, Dial, Page, Result, StoreError};
use dialtone_core::schedule::{LocalHours, Schedule};
use dialtone_core::{
    CallId, CampaignId, CampaignStatus, ContactId, EventKind, Mode, Outcome, PhoneNumber, ProviderEvent, ProviderKind,
    WorkspaceId,
};
use jiff::Timestamp;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, QueryBuilder, Row, Transaction};

pub async fn claim(pool: &PgPool, campaign: &CampaignId, node: &str, now: Timestamp) -> Result<Vec<Dial>> {
    let mut tx = pool.begin().await?;
    // The campaign row lock orders every claim of this campaign, on every node: the count
    // below is taken after the previous claimer committed, so the cap cannot be raced past.
    let Some(c) = sqlx::query(
        "SELECT workspace_id, status, mode, max_concurrent, provider, assistant_id, phone_number_id, schedule, calling_hours, kind
         FROM campaigns WHERE id = $1 FOR UPDATE",
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
    let mode: Mode = rows::parse(c.try_get("mode")?)?;
    let cap = c.try_get::<i64, _>("max_concurrent")? as u32;
    let active: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM calls WHERE campaign_id = $1 AND status IN {ACTIVE_SQL}"))
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
    let single_calls = c.try_get::<String, _>("kind")? == "single_calls";
    let mut dials = Vec::with_capacity(n as usize);
    // Each round claims what is still free; contacts turned away at claim time (on a
    // do-not-call list, or outside their own hours) leave the pool, so the next round
    // picks others.
    for _round in 0..8 {
        let want = n as usize - dials.len();
        if want == 0 {
            break;
        }
        // SKIP LOCKED: a contact some other writer holds (a cancel, a manual retry) is
        // passed over rather than waited for.
        let mut claimed = sqlx::query(
            "WITH due AS (
                SELECT id FROM contacts WHERE campaign_id = $2 AND status = 'pending' AND next_attempt_at <= $1
                ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
             UPDATE contacts c SET status = 'in_call', attempts = c.attempts + 1, updated_at = $1
             FROM due WHERE c.id = due.id
             RETURNING c.id, c.phone, c.name, c.variables, c.attempts, c.timezone, c.next_attempt_at",
        )
        .bind(ms(now))
        .bind(campaign.as_str())
        .bind(want as i64)
        .fetch_all(&mut *tx)
        .await?;
        if claimed.is_empty() {
            break;
        }
        // RETURNING has no order: dial in due order, like the pick.
        claimed.sort_by_cached_key(|r| (r.get::<i64, _>("next_attempt_at"), r.get::<String, _>("id")));
        let phones: Vec<String> = claimed.iter().map(|r| r.try_get("phone")).collect::<std::result::Result<_, _>>()?;
        let suppressed = suppressions::suppressed_among(&mut tx, ws.as_str(), campaign.as_str(), &phones).await?;
        let mut to_dial = Vec::with_capacity(claimed.len());
        for r in &claimed {
            let id: String = r.try_get("id")?;
            let phone: String = r.try_get("phone")?;
            if suppressed.contains(&phone) {
                sqlx::query("UPDATE contacts SET status = 'dnc', attempts = attempts - 1, updated_at = $1 WHERE id = $2")
                    .bind(ms(now))
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                continue;
            }
            // The recipient's own hours, judged now, right before dialling.
            let zone: Option<String> = r.try_get("timezone")?;
            if let Some(next) = recipient_hold(&schedule, &hours, zone.as_deref(), now) {
                sqlx::query(
                    "UPDATE contacts SET status = CASE WHEN $1::bigint IS NULL THEN 'exhausted' ELSE 'pending' END,
                        next_attempt_at = COALESCE($1, next_attempt_at), attempts = attempts - 1, updated_at = $2 WHERE id = $3",
                )
                .bind(next.map(ms))
                .bind(ms(now))
                .bind(&id)
                .execute(&mut *tx)
                .await?;
                continue;
            }
            if single_calls {
                if let Some(dial) = queue_scheduled(&mut tx, r, &ws, campaign, provider, &c, node, now).await? {
                    dials.push(dial);
                    continue;
                }
            }
            to_dial.push(r);
        }
        dials.extend(new_calls(&mut tx, &to_dial, &ws, campaign, provider, &c, node, now).await?);
    }
    tx.commit().await?;
    Ok(dials)
}

/// How many more calls the provider account allows this campaign: the account's free slots
/// (inbound calls included), capped at a fair share so that campaigns on one account take
/// turns and none starves. Unlimited accounts allow anything.
async fn account_room(tx: &mut Transaction<'_, Postgres>, provider: &str, campaign_active: i64, now: Timestamp) -> Result<u32> {
    // Claims of other campaigns on this account hold other campaign rows: the account's
    // own row is what makes them count its calls one at a time (campaign → account).
    let limit: Option<i64> = sqlx::query_scalar(
        "SELECT max_concurrent FROM provider_accounts WHERE provider = $1 AND max_concurrent IS NOT NULL FOR UPDATE",
    )
    .bind(provider)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(limit) = limit else { return Ok(u32::MAX) };
    let account_active: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM calls WHERE provider = $1 AND status IN {ACTIVE_SQL}"))
        .bind(provider)
        .fetch_one(&mut **tx)
        .await?;
    // Campaigns that want slots now: something due, or calls in flight. Inbound calls take
    // account slots (counted above) but their hidden campaign never claims, so it takes no share.
    let sharing: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM campaigns c WHERE provider = $1 AND status IN ('starting', 'dialing') AND kind <> 'inbound' AND (
            EXISTS (SELECT 1 FROM contacts WHERE campaign_id = c.id AND status = 'pending' AND next_attempt_at <= $2)
            OR EXISTS (SELECT 1 FROM calls WHERE campaign_id = c.id AND status IN {ACTIVE_SQL}))"
    ))
    .bind(provider)
    .bind(ms(now))
    .fetch_one(&mut **tx)
    .await?;
    Ok(crate::common::account_room(limit, account_active, sharing, campaign_active))
}

/// A scheduled single call already has its row: it moves to QUEUED (owned by `node`)
/// instead of a new call being inserted. `None` when contact `r` has no scheduled row.
async fn queue_scheduled(tx: &mut Transaction<'_, Postgres>, r: &PgRow, ws: &WorkspaceId, campaign: &CampaignId, provider: ProviderKind,
    c: &PgRow, node: &str, now: Timestamp) -> Result<Option<Dial>> {
    let scheduled: Option<(String, i64)> = sqlx::query_as(
        "UPDATE calls SET status = 'queued', claimed_by = $3, updated_at = $1, last_event_at = $1
         WHERE contact_id = $2 AND status = 'scheduled' RETURNING id, attempt",
    )
    .bind(ms(now))
    .bind(r.try_get::<String, _>("id")?)
    .bind(node)
    .fetch_optional(&mut **tx)
    .await?;
    scheduled.map(|(id, attempt)| dial_of(r, c, ws, campaign, provider, CallId::from_db(id), attempt)).transpose()
}

/// The dial for claimed contact row `r` of campaign row `c`.
fn dial_of(r: &PgRow, c: &PgRow, ws: &WorkspaceId, campaign: &CampaignId, provider: ProviderKind, call_id: CallId, attempt: i64) -> Result<Dial> {
    Ok(Dial {
        call_id,
        workspace_id: ws.clone(),
        campaign_id: campaign.clone(),
        contact_id: ContactId::from_db(r.try_get("id")?),
        attempt: attempt as u32,
        provider,
        assistant_id: c.try_get("assistant_id")?,
        phone_number_id: c.try_get("phone_number_id")?,
        phone: PhoneNumber::from_db(r.try_get("phone")?),
        name: r.try_get("name")?,
        variables: rows::json_map(r.try_get("variables")?)?,
    })
}

/// Inserts the QUEUED calls for claimed contacts `rows` of campaign row `c`: one query for
/// the attempt numbers, one insert.
async fn new_calls(tx: &mut Transaction<'_, Postgres>, rows: &[&PgRow], ws: &WorkspaceId, campaign: &CampaignId, provider: ProviderKind,
    c: &PgRow, node: &str, now: Timestamp) -> Result<Vec<Dial>> {
    if rows.is_empty() {
        return Ok(vec![]);
    }
    let contact_ids: Vec<String> = rows.iter().map(|r| r.try_get("id")).collect::<std::result::Result<_, _>>()?;
    // Attempt numbers count calls, so they stay unique even when an attempt was given back
    // (a capacity refusal) and the contact's count of spent attempts went down.
    let last: std::collections::HashMap<String, i64> =
        sqlx::query_as::<_, (String, i64)>("SELECT contact_id, MAX(attempt) FROM calls WHERE contact_id = ANY($1) GROUP BY contact_id")
            .bind(&contact_ids)
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect();
    let mut dials = Vec::with_capacity(rows.len());
    for (r, id) in rows.iter().zip(&contact_ids) {
        let attempt = last.get(id).copied().unwrap_or(0).max(r.try_get::<i64, _>("attempts")? - 1) + 1;
        dials.push(dial_of(r, c, ws, campaign, provider, CallId::new(), attempt)?);
    }
    sqlx::query(
        "INSERT INTO calls (id, workspace_id, campaign_id, contact_id, attempt, provider, phone, status, created_at, updated_at, last_event_at, claimed_by)
         SELECT t.id, $1, $2, t.contact_id, t.attempt, $3, t.phone, 'queued', $4, $4, $4, $5
         FROM UNNEST($6::text[], $7::text[], $8::bigint[], $9::text[]) WITH ORDINALITY AS t(id, contact_id, attempt, phone, ord)
         ORDER BY t.ord",
    )
    .bind(ws.as_str())
    .bind(campaign.as_str())
    .bind(provider.as_str())
    .bind(ms(now))
    .bind(node)
    .bind(dials.iter().map(|d| d.call_id.as_str()).collect::<Vec<_>>())
    .bind(dials.iter().map(|d| d.contact_id.as_str()).collect::<Vec<_>>())
    .bind(dials.iter().map(|d| d.attempt as i64).collect::<Vec<_>>())
    .bind(dials.iter().map(|d| d.phone.as_str()).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(dials)
}

pub async fn mark_placing(pool: &PgPool, call: &CallId, node: &str, now: Timestamp) -> Result<bool> {
    // A takeover and this fence both write the row: whichever commits second re-reads it
    // and matches nothing, so a taken-over call is never sent by its old owner.
    let done = sqlx::query(
        "UPDATE calls SET placing_at = $1, updated_at = $1 WHERE id = $2 AND status = 'queued' AND placing_at IS NULL AND claimed_by = $3",
    )
        .bind(ms(now))
        .bind(call.as_str())
        .bind(node)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn mark_dialed(pool: &PgPool, call: &CallId, provider_call_id: &str, now: Timestamp) -> Result<bool> {
    let mut tx = pool.begin().await?;
    let campaign: Option<String> = sqlx::query_scalar(
        "UPDATE calls SET provider_call_id = COALESCE(provider_call_id, $1),
            status = CASE WHEN status = 'queued' THEN 'dialing' ELSE status END,
            dialed_at = COALESCE(dialed_at, $2), last_event_at = GREATEST(last_event_at, $2), updated_at = $2
         WHERE id = $3 RETURNING campaign_id",
    )
    .bind(provider_call_id)
    .bind(ms(now))
    .bind(call.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(campaign) = campaign else {
        return Err(StoreError::NotFound("call"));
    };
    // Two first calls racing: the loser waits for the row, re-reads `started_at` and
    // matches nothing, so exactly one of them starts the campaign.
    let started = sqlx::query(
        "UPDATE campaigns SET status = CASE WHEN status = 'starting' THEN 'dialing' ELSE status END,
            started_at = $1, updated_at = $1
         WHERE id = $2 AND started_at IS NULL",
    )
    .bind(ms(now))
    .bind(&campaign)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(started.rows_affected() == 1)
}

pub async fn end_call(pool: &PgPool, call: &CallId, outcome: Outcome, reason: &str, now: Timestamp) -> Result<Option<Applied>> {
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
    let mut out = events::apply_batch(pool, std::slice::from_ref(&event), "engine", now).await?;
    let applied = out.pop().expect("one Applied per event");
    Ok((!applied.duplicate).then_some(applied))
}

pub async fn release_unsent(pool: &PgPool, call: &CallId, reason: &str, now: Timestamp) -> Result<bool> {
    let mut tx = pool.begin().await?;
    // Any stored event for the call means the provider knew it (it echoed our id): not
    // unsent. Deleting it would also orphan that event (a foreign-key error).
    let Some(row) = sqlx::query(
        "DELETE FROM calls WHERE id = $1 AND status = 'queued' AND provider_call_id IS NULL
           AND NOT EXISTS (SELECT 1 FROM call_events WHERE call_id = $1)
         RETURNING contact_id, workspace_id, campaign_id",
    )
    .bind(call.as_str())
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(false);
    };
    let contact: String = row.try_get("contact_id")?;
    let ws: String = row.try_get("workspace_id")?;
    let campaign: String = row.try_get("campaign_id")?;
    // Hold the campaign's status still (a cancel waits) while the contact follows it.
    let campaign_status: String = sqlx::query_scalar("SELECT status FROM campaigns WHERE id = $1 FOR SHARE")
        .bind(&campaign)
        .fetch_one(&mut *tx)
        .await?;
    // The attempt never reached the provider: give it back, and make the contact due now
    // (unless its campaign was canceled meanwhile).
    sqlx::query(
        "UPDATE contacts SET attempts = attempts - 1, next_attempt_at = $1, updated_at = $1,
            status = CASE WHEN $2 = 'canceled' THEN 'canceled' ELSE 'pending' END
         WHERE id = $3 AND status = 'in_call'",
    )
    .bind(ms(now))
    .bind(&campaign_status)
    .bind(&contact)
    .execute(&mut *tx)
    .await?;
    events::insert_engine_note(&mut tx, &ws, &format!("engine:{call}:released"), "released",
        serde_json::json!({ "call_id": call, "contact_id": contact, "reason": reason }), now).await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn stuck(pool: &PgPool, quiet_since: Timestamp, limit: u32) -> Result<Vec<Call>> {
    sqlx::query(&format!("SELECT * FROM calls WHERE status IN {ACTIVE_SQL} AND last_event_at < $1 ORDER BY last_event_at LIMIT $2"))
        .bind(ms(quiet_since))
        .bind(limit as i64)
        .fetch_all(pool)
        .await?
        .iter()
        .map(rows::call)
        .collect()
}

pub async fn heartbeat(pool: &PgPool, node: &str, now: Timestamp) -> Result<()> {
    sqlx::query(
        "INSERT INTO nodes (id, started_at, heartbeat_at) VALUES ($1, $2, $2)
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = GREATEST(nodes.heartbeat_at, excluded.heartbeat_at)",
    )
    .bind(node)
    .bind(ms(now))
    .execute(pool)
    .await?;
    Ok(())
}

/// Unsent calls `node` may resolve: its own, unowned ones, and those of nodes whose lease
/// ran out; each taken over by a fenced UPDATE (see `Store::orphaned_calls`). Two nodes
/// taking over the same call: the second waits for the first's row lock, re-checks the
/// WHERE on the new row (its owner changed) and matches nothing.
pub async fn orphaned(pool: &PgPool, node: &str, lease: std::time::Duration, now: Timestamp) -> Result<Vec<Call>> {
    let cutoff = crate::common::lease_cutoff(now, lease);
    let candidates: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT c.id, c.claimed_by FROM calls c LEFT JOIN nodes n ON n.id = c.claimed_by
         WHERE c.status = 'queued' AND c.provider_call_id IS NULL
           AND (c.claimed_by IS NULL OR c.claimed_by = $1 OR n.id IS NULL OR n.heartbeat_at < $2)
         ORDER BY c.id",
    )
    .bind(node)
    .bind(cutoff)
    .fetch_all(pool)
    .await?;
    let mut taken = Vec::with_capacity(candidates.len());
    for (id, owner) in candidates {
        // The fence: the owner must still be the one we saw, the call still unsent, and,
        // unless it is us, the owner still without a live lease (it may have come back).
        let row = sqlx::query(
            "UPDATE calls SET claimed_by = $1
             WHERE id = $2 AND claimed_by IS NOT DISTINCT FROM $3 AND status = 'queued' AND provider_call_id IS NULL
               AND (claimed_by IS NULL OR claimed_by = $1
                    OR NOT EXISTS (SELECT 1 FROM nodes WHERE id = calls.claimed_by AND heartbeat_at >= $4))
             RETURNING *",
        )
        .bind(node)
        .bind(&id)
        .bind(owner.as_deref())
        .bind(cutoff)
        .fetch_optional(pool)
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

pub async fn touch(pool: &PgPool, call: &CallId, now: Timestamp) -> Result<()> {
    sqlx::query("UPDATE calls SET last_event_at = GREATEST(last_event_at, $1) WHERE id = $2")
        .bind(ms(now))
        .bind(call.as_str())
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn get(pool: &PgPool, ws: &WorkspaceId, id: &CallId) -> Result<Option<Call>> {
    sqlx::query("SELECT * FROM calls WHERE workspace_id = $1 AND id = $2")
        .bind(ws.as_str())
        .bind(id.as_str())
        .fetch_optional(pool)
        .await?
        .map(|r| rows::call(&r))
        .transpose()
}

pub async fn list(pool: &PgPool, ws: &WorkspaceId, f: &CallFilter, page: &Page) -> Result<Vec<Call>> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new("SELECT * FROM calls WHERE workspace_id = ");
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

pub async fn events_of(pool: &PgPool, ws: &WorkspaceId, id: &CallId) -> Result<Vec<CallEvent>> {
    sqlx::query(
        "SELECT e.* FROM call_events e JOIN calls c ON c.id = e.call_id
         WHERE c.workspace_id = $1 AND e.call_id = $2 ORDER BY e.received_at, e.id",
    )
    .bind(ws.as_str())
    .bind(id.as_str())
    .fetch_all(pool)
    .await?
    .iter()
    .map(rows::call_event)
    .collect()
}

pub async fn active_count(pool: &PgPool) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM calls WHERE status IN {ACTIVE_SQL}")).fetch_one(pool).await?;
    Ok(n as u64)
}
