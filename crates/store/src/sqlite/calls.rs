//! The engine's writes on SQLite: claiming, placing, ending, and reads of calls.

use super::events;
use super::suppressions;
use crate::callers;
use crate::calls as shared;
use crate::common::{contact_zones, recipient_hold};
use crate::rows::{self, ms};
use crate::sql::Db;
use crate::{attempts, Applied, Dial, Result};
use dialtone_core::schedule::{LocalHours, Schedule};
use dialtone_core::{CallId, CampaignId, CampaignStatus, ContactId, Mode, Outcome, PhoneNumber, ProviderKind, WorkspaceId};
use jiff::Timestamp;
use sqlx::{FromRow, Row, Sqlite, SqlitePool};

/// `Store::claim_placing` for one campaign; `placing`: commit the placing fence with the claim.
pub async fn claim(pool: &SqlitePool, campaign: &CampaignId, placing: bool, node: &str, now: Timestamp) -> Result<Vec<Dial>> {
    // IMMEDIATE takes the write lock up front, so the count and the claim below see the
    // same world: the cap cannot be raced past.
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let Some(c) = sqlx::query(
        "SELECT workspace_id, status, mode, max_concurrent, provider, assistant_id, phone_number_id, schedule, calling_hours,
            assume_campaign_timezone_for_ambiguous, agent_id, kind, caller_numbers, caller_number_strategy, fallback_strategy,
            caller_cursor, calls_per_minute, account_id,
            (SELECT max_duration_secs FROM agents a WHERE a.id = campaigns.agent_id) AS agent_max_duration_secs,
            (SELECT caller_number_daily_limit FROM workspaces w WHERE w.id = campaigns.workspace_id) AS caller_limit
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
    let active: i64 = sqlx::query_scalar(crate::common::LIVE_IN_CAMPAIGN_SQL).bind(campaign.as_str()).fetch_one(&mut *tx).await?;
    let provider_text: String = c.try_get("provider")?;
    let account_id: Option<String> = c.try_get("account_id")?;
    let mut n = mode.claimable(cap, active as u32).min(account_room(&mut tx, &provider_text, account_id.as_deref(), active, now).await?);
    if let Some(per_minute) = c.try_get::<Option<i64>, _>("calls_per_minute")? {
        n = n.min(callers::throttle_room(Db::from(&mut *tx), campaign.as_str(), per_minute, now).await?);
    }
    if n == 0 {
        return Ok(vec![]);
    }
    let ws = WorkspaceId::from_db(c.try_get("workspace_id")?);
    let mut picker = callers::Picker::of(&callers::CallerSettings::from_row(&c)?)?;
    let mut usage = match &picker {
        Some(p) => Some(callers::Usage::lock(Db::from(&mut *tx), p.keys().collect(), now).await?),
        None => None,
    };
    let provider: ProviderKind = rows::parse(c.try_get("provider")?)?;
    let mut dials = Vec::with_capacity(n as usize);
    // The rows of the calls to insert, written in one statement once every round is done.
    let mut new_rows = Vec::with_capacity(n as usize);
    // Each round claims what is still free; contacts turned away at claim time (on a
    // do-not-call list) leave the pool, so the next round picks others.
    for _round in 0..8 {
        let want = n as usize - dials.len();
        if want == 0 {
            break;
        }
        // SQLite's claim pattern: one writer, so no row locks; `UPDATE … WHERE id IN
        // (SELECT … LIMIT n)` (PostgreSQL's differs: SKIP LOCKED, batched over campaigns).
        let claimed = sqlx::query(&format!(
            "UPDATE contacts SET status = 'in_call', {spend}, updated_at = ?1, wait_reason = NULL
             WHERE id IN (SELECT id FROM contacts WHERE campaign_id = ?2 AND status = 'pending' AND next_attempt_at <= ?1
                          ORDER BY next_attempt_at, id LIMIT ?3)
             RETURNING id, phone, extension, name, variables, attempts, timezone, timezones, caller_number,
                {suppressed} AS suppressed, {last} AS last_attempt",
            spend = attempts::SPEND,
            // SQLite's RETURNING takes no alias of the updated table: `contacts.` it is.
            suppressed = suppressions::suppressed_sql("contacts"),
            last = attempts::last_number_sql("contacts"),
        ))
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
            let contact: String = r.try_get("id")?;
            if r.try_get::<bool, _>("suppressed")? {
                attempts::turn_away(Db::from(&mut *tx), &contact, "dnc", None, None, now).await?;
                // A scheduled single call's row would otherwise wait in `scheduled` for ever.
                sqlx::query(crate::common::CANCEL_SCHEDULED_DNC_SQL).bind(ms(now)).bind(r.try_get::<String, _>("id")?).execute(&mut *tx).await?;
                continue;
            }
            // The recipient's own hours, judged now, right before dialling, in every zone
            // the number may be in.
            let zones = contact_zones(r.try_get("timezone")?, r.try_get("timezones")?, &schedule, assume_campaign_tz);
            if let Some(hold) = recipient_hold(&schedule, &hours, &zones, now) {
                attempts::turn_away(Db::from(&mut *tx), &contact, hold.status(), hold.next(), hold.reason().map(|r| r.as_str()), now).await?;
                continue;
            }
            // The caller number, last: a contact turned away above uses none of the day's calls.
            let caller = match (&mut picker, &mut usage) {
                (Some(p), Some(u)) => {
                    let kept: Option<String> = r.try_get("caller_number")?;
                    match p.pick(Db::from(&mut *tx), u, kept.as_deref(), &phone).await? {
                        Some(number) => {
                            if kept.as_deref() != Some(number.as_str()) {
                                callers::keep(Db::from(&mut *tx), &contact, &number).await?;
                            }
                            Some(number)
                        }
                        None => {
                            let tomorrow = callers::next_day(now)?;
                            attempts::turn_away(Db::from(&mut *tx), &contact, "pending", Some(tomorrow), Some(callers::LIMIT_WAIT), now).await?;
                            continue;
                        }
                    }
                }
                _ => None,
            };
            dials.push(new_call(&mut tx, r, &ws, campaign, provider, &c, caller, node, now, &mut new_rows).await?);
        }
    }
    insert_calls(&mut tx, new_rows, node, now).await?;
    if let Some(p) = &picker {
        p.save(Db::from(&mut *tx), campaign.as_str()).await?;
    }
    if placing {
        shared::mark_placing_claimed(Db::from(&mut *tx), &dials.iter().map(|d| &d.call_id).collect::<Vec<_>>(), node, now).await?;
        for dial in &mut dials {
            dial.placing_at = Some(now);
        }
    }
    tx.commit().await?;
    Ok(dials)
}

/// How many more calls the provider account allows this campaign: the account's free slots
/// (inbound calls included), capped at a fair share so that campaigns on one account take
/// turns and none starves. Unlimited accounts allow anything. The account is the
/// workspace's own `account` when the campaign names one, else the config's of `provider`
/// (statements in `crate::accounts`, shared with PostgreSQL).
async fn account_room(tx: &mut sqlx::Transaction<'_, Sqlite>, provider: &str, account: Option<&str>, campaign_active: i64, now: Timestamp) -> Result<u32> {
    let limit: Option<i64> = crate::accounts::limit(Db::from(&mut **tx), provider, account, false).await?;
    let Some(limit) = limit else { return Ok(u32::MAX) };
    let (account_active, sharing) = crate::accounts::load(Db::from(&mut **tx), provider, account, now).await?;
    Ok(crate::common::account_room(limit, account_active, sharing, campaign_active))
}

/// The QUEUED call for a claimed contact `r` of campaign row `c`: a scheduled single call's
/// row is queued at once; a new call's row is added to `new_rows` for [`insert_calls`].
#[allow(clippy::too_many_arguments)]
async fn new_call(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    r: &sqlx::sqlite::SqliteRow,
    ws: &WorkspaceId,
    campaign: &CampaignId,
    provider: ProviderKind,
    c: &sqlx::sqlite::SqliteRow,
    caller: Option<String>,
    node: &str,
    now: Timestamp,
    new_rows: &mut Vec<serde_json::Value>,
) -> Result<Dial> {
    // A scheduled single call already has its row: it moves to QUEUED (owned by `node`)
    // instead. Only single-call campaigns have such rows (as PostgreSQL's claim asks), so
    // the others skip the statement.
    let single_calls = c.try_get::<String, _>("kind")? == dialtone_core::CampaignKind::SingleCalls.as_str();
    let scheduled: Option<(String, i64)> = if single_calls {
        sqlx::query_as(
            "UPDATE calls SET status = 'queued', claimed_by = ?3, updated_at = ?1, last_event_at = ?1, account_id = ?4
             WHERE contact_id = ?2 AND status = 'scheduled' RETURNING id, attempt",
        )
        .bind(ms(now))
        .bind(r.try_get::<String, _>("id")?)
        .bind(node)
        .bind(c.try_get::<Option<String>, _>("account_id")?)
        .fetch_optional(&mut **tx)
        .await?
    } else {
        None
    };
    // Attempt numbers count calls (see `crate::attempts`).
    let attempt = match &scheduled {
        Some((_, n)) => *n,
        None => {
            let last: Option<i64> = r.try_get("last_attempt")?;
            attempts::next_number(last, r.try_get("attempts")?)
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
        account_id: c.try_get::<Option<String>, _>("account_id")?.map(dialtone_core::ProviderAccountId::from_db),
        assistant_id: c.try_get("assistant_id")?,
        phone_number_id: match &caller {
            Some(number) => number.clone(),
            None => c.try_get("phone_number_id")?,
        },
        phone: PhoneNumber::from_db(r.try_get("phone")?),
        extension: crate::common::extension_of(r.try_get("extension")?),
        name: r.try_get("name")?,
        variables: rows::json_map(r.try_get("variables")?)?,
        agent: crate::common::dial_agent(c.try_get("agent_id")?, c.try_get("agent_max_duration_secs")?),
        placing_at: None,
    };
    if scheduled.is_some() {
        return Ok(dial);
    }
    new_rows.push(serde_json::json!([
        dial.call_id.as_str(),
        ws.as_str(),
        campaign.as_str(),
        dial.contact_id.as_str(),
        dial.attempt,
        provider.as_str(),
        dial.phone.as_str(),
        caller,
        dial.account_id.as_ref().map(|a| a.as_str())
    ]));
    Ok(dial)
}

/// Inserts the claim's new QUEUED calls, owned by `node`, in one statement: each row a JSON
/// array `[id, workspace, campaign, contact, attempt, provider, phone, caller number,
/// account]`, all of them one argument read with `json_each` (PostgreSQL's claim binds the
/// same columns as arrays, `UNNEST`). One statement per claim rather than one per call:
/// each is a round trip to sqlx's SQLite worker thread (BENCHMARKS.md, issue 10).
async fn insert_calls(tx: &mut sqlx::Transaction<'_, Sqlite>, rows: Vec<serde_json::Value>, node: &str, now: Timestamp) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO calls (id, workspace_id, campaign_id, contact_id, attempt, provider, phone, status, created_at, updated_at, last_event_at, claimed_by, caller_number, account_id)
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, 'queued', ?1, ?1, ?1, ?2, value ->> 7, value ->> 8
         FROM json_each(?3) ORDER BY key",
    )
    .bind(ms(now))
    .bind(node)
    .bind(serde_json::Value::Array(rows).to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// `mark_placing` for each of `calls` in one transaction: one commit (one WAL sync) for
/// them all, each call's fence the same statement as alone.
pub async fn mark_placing_many(pool: &SqlitePool, calls: &[CallId], node: &str, now: Timestamp) -> Result<Vec<bool>> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut out = Vec::with_capacity(calls.len());
    for call in calls {
        out.push(shared::mark_placing(Db::from(&mut *tx), call, node, now).await?);
    }
    tx.commit().await?;
    Ok(out)
}

pub async fn end_call(pool: &SqlitePool, call: &CallId, outcome: Outcome, reason: &str, now: Timestamp) -> Result<Option<Applied>> {
    let event = shared::end_event(call, outcome, reason, now);
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let applied = events::apply_one(&mut tx, &event, "engine", now).await?;
    tx.commit().await?;
    Ok((!applied.duplicate).then_some(applied))
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
