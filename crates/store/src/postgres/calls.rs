//! The engine's writes on PostgreSQL: claiming, placing, ending, and reads of calls.

use super::events;
use crate::callers;
use crate::calls as shared;
use crate::common::{contact_zones, recipient_hold, ACTIVE_SQL};
use crate::rows::{self, ms};
use crate::sql::Db;
use crate::{attempts, Applied, Dial, Result};
use dialtone_core::schedule::{LocalHours, Schedule};
use dialtone_core::{CallId, CampaignId, CampaignStatus, ContactId, Mode, Outcome, PhoneNumber, ProviderKind, WorkspaceId};
use jiff::Timestamp;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgPool, Postgres, Row, Transaction};
use std::collections::HashMap;

/// A campaign being claimed for, as its locked row says.
struct Claiming {
    id: CampaignId,
    ws: WorkspaceId,
    provider: ProviderKind,
    /// The workspace's own account it dials through; `None`: the config's.
    account_id: Option<String>,
    assistant_id: String,
    phone_number_id: String,
    schedule: Schedule,
    hours: LocalHours,
    /// `assume_campaign_timezone_for_ambiguous`.
    assume_campaign_tz: bool,
    single_calls: bool,
    /// The campaign's agent, if its calls go to dialtone's own pipeline.
    agent: Option<crate::DialAgent>,
    /// How its calls get their caller number; `None`: from `phone_number_id`, unrecorded.
    picker: Option<callers::Picker>,
    /// Slots still to fill in this claim.
    want: u32,
    dials: Vec<Dial>,
}

/// Claims for `campaigns` in one transaction: locks their rows (in id order, as every
/// claimer does), counts their active calls, asks each provider account for room, claims
/// due contacts for all of them with one statement and inserts all their calls with one
/// more; for the campaigns in `placing`, the placing fence too (`Store::claim_placing`).
/// Returns the dials of each campaign that got any.
pub async fn claim(
    pool: &PgPool,
    campaigns: &[CampaignId],
    placing: &std::collections::HashSet<CampaignId>,
    node: &str,
    now: Timestamp,
) -> Result<HashMap<CampaignId, Vec<Dial>>> {
    if campaigns.is_empty() {
        return Ok(HashMap::new());
    }
    let mut tx = pool.begin().await?;
    // The campaign row locks order every claim of these campaigns, on every node: the
    // counts below are taken after the previous claimers committed, so no cap can be raced past.
    let ids: Vec<&str> = campaigns.iter().map(|c| c.as_str()).collect();
    let rows = sqlx::query(
        "SELECT id, workspace_id, status, mode, max_concurrent, provider, assistant_id, phone_number_id, schedule, calling_hours, kind,
            assume_campaign_timezone_for_ambiguous, agent_id, caller_numbers, caller_number_strategy, fallback_strategy,
            caller_cursor, calls_per_minute, account_id,
            (SELECT max_duration_secs FROM agents a WHERE a.id = campaigns.agent_id) AS agent_max_duration_secs,
            (SELECT caller_number_daily_limit FROM workspaces w WHERE w.id = campaigns.workspace_id) AS caller_limit
         FROM campaigns WHERE id = ANY($1) ORDER BY id FOR UPDATE OF campaigns",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    let mut open = Vec::with_capacity(rows.len());
    for c in &rows {
        let status: CampaignStatus = rows::parse(c.try_get("status")?)?;
        // Outside the campaign's windows nothing is dialled; the dispatcher looks again later.
        let schedule: Schedule = rows::json(c.try_get("schedule")?, "schedule")?;
        if status.is_runnable() && schedule.is_open(now) {
            open.push((c, schedule));
        }
    }
    if open.is_empty() {
        return Ok(HashMap::new());
    }
    // Counted in a statement of its own, after the locks: it sees every earlier claim.
    let open_ids: Vec<&str> = open.iter().map(|(c, _)| c.try_get("id")).collect::<std::result::Result<_, _>>()?;
    let active: HashMap<String, i64> =
        sqlx::query_as(&format!("SELECT campaign_id, COUNT(*) FROM calls WHERE campaign_id = ANY($1) AND status IN {ACTIVE_SQL} GROUP BY campaign_id"))
            .bind(&open_ids)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
    // Each account once, in one sorted order (its row lock is taken after the campaign rows').
    let mut keys: Vec<(String, Option<String>)> =
        open.iter().map(|(c, _)| Ok((c.try_get("provider")?, c.try_get("account_id")?))).collect::<std::result::Result<_, sqlx::Error>>()?;
    keys.sort_unstable();
    keys.dedup();
    let mut accounts = HashMap::new();
    for key in keys {
        let account = account_state(&mut tx, &key.0, key.1.as_deref(), now).await?;
        accounts.insert(key, account);
    }
    let mut claiming = Vec::with_capacity(open.len());
    for (c, schedule) in open {
        let id: String = c.try_get("id")?;
        let campaign_active = active.get(&id).copied().unwrap_or(0);
        let mode: Mode = rows::parse(c.try_get("mode")?)?;
        let mut want = mode.claimable(c.try_get::<i64, _>("max_concurrent")? as u32, campaign_active as u32);
        let provider_text: String = c.try_get("provider")?;
        let account_key = (provider_text.clone(), c.try_get::<Option<String>, _>("account_id")?);
        // Campaigns on one account are granted one after the other, each grant taken out
        // of the room left for the next, as separate claims would see it.
        if let Some(Some(account)) = accounts.get_mut(&account_key) {
            want = want.min(crate::common::account_room(account.limit, account.active, account.sharing, campaign_active));
        }
        // The throttle (calls per rolling minute), counted after the campaign's lock.
        if let Some(per_minute) = c.try_get::<Option<i64>, _>("calls_per_minute")? {
            want = want.min(callers::throttle_room(Db::from(&mut *tx), &id, per_minute, now).await?);
        }
        if let Some(Some(account)) = accounts.get_mut(&account_key) {
            account.active += i64::from(want);
        }
        if want == 0 {
            continue;
        }
        let picker = callers::Picker::of(&callers::CallerSettings::from_row(c)?)?;
        claiming.push(Claiming {
            id: CampaignId::from_db(id),
            ws: WorkspaceId::from_db(c.try_get("workspace_id")?),
            provider: rows::parse(&provider_text)?,
            account_id: account_key.1.clone(),
            assistant_id: c.try_get("assistant_id")?,
            phone_number_id: c.try_get("phone_number_id")?,
            schedule,
            hours: rows::json(c.try_get("calling_hours")?, "calling_hours")?,
            assume_campaign_tz: c.try_get("assume_campaign_timezone_for_ambiguous")?,
            agent: crate::common::dial_agent(c.try_get("agent_id")?, c.try_get("agent_max_duration_secs")?),
            single_calls: c.try_get::<String, _>("kind")? == dialtone_core::CampaignKind::SingleCalls.as_str(),
            picker,
            want,
            dials: Vec::with_capacity(want as usize),
        });
    }
    // Every usage row this claim may raise, locked once in one sorted order (after the
    // campaign rows, as every claim takes them): see `crate::callers`.
    let keys: Vec<(String, String)> = claiming.iter().filter_map(|c| c.picker.as_ref()).flat_map(|p| p.keys()).collect();
    let mut usage = if keys.is_empty() { None } else { Some(callers::Usage::lock(Db::from(&mut *tx), keys, now).await?) };
    let by_campaign: HashMap<String, usize> = claiming.iter().enumerate().map(|(i, c)| (c.id.as_str().to_string(), i)).collect();
    // Each round claims what is still free; contacts turned away at claim time (on a
    // do-not-call list, or outside their own hours) leave the pool, so the next round
    // picks others.
    for _round in 0..8 {
        let wanting: Vec<usize> = (0..claiming.len()).filter(|&i| claiming[i].want > 0).collect();
        if wanting.is_empty() {
            break;
        }
        let claimed = claim_due(&mut tx, &claiming, &wanting, now).await?;
        if claimed.is_empty() {
            break;
        }
        let mut mine: Vec<(usize, &PgRow)> = claimed.iter().map(|r| Ok((by_campaign[r.try_get::<&str, _>("campaign_id")?], r))).collect::<Result<_>>()?;
        // RETURNING has no order: dial each campaign's contacts in due order, like the pick.
        mine.sort_by_cached_key(|(i, r)| (*i, r.get::<i64, _>("next_attempt_at"), r.get::<String, _>("id")));
        // Fewer than asked: nothing else is due in that campaign right now. Otherwise the
        // next round asks again for those turned away below.
        let asked: Vec<(usize, u32, usize)> = wanting.iter().map(|&i| (i, claiming[i].want, claiming[i].dials.len())).collect();
        let exhausted: Vec<bool> = asked.iter().map(|&(i, want, _)| (mine.iter().filter(|(j, _)| *j == i).count() as u32) < want).collect();
        let mut turned_away = TurnedAway::default();
        let mut to_dial = Vec::with_capacity(mine.len());
        for (i, r) in mine {
            let cl = &claiming[i];
            let contact: String = r.try_get("id")?;
            if r.try_get("suppressed")? {
                turned_away.push(contact, "dnc", None, None);
                continue;
            }
            // The recipient's own hours, judged now, right before dialling, in every zone
            // the number may be in.
            let zones = contact_zones(r.try_get("timezone")?, r.try_get("timezones")?, &cl.schedule, cl.assume_campaign_tz);
            if let Some(hold) = recipient_hold(&cl.schedule, &cl.hours, &zones, now) {
                turned_away.push(contact, hold.status(), hold.next().map(ms), hold.reason().map(|r| r.as_str()));
                continue;
            }
            if cl.single_calls {
                if let Some(dial) = queue_scheduled(&mut tx, r, cl, node, now).await? {
                    claiming[i].dials.push(dial);
                    continue;
                }
            }
            // The caller number, last: a contact turned away above uses none of the day's calls.
            let mut caller = None;
            if let (Some(p), Some(u)) = (claiming[i].picker.as_mut(), usage.as_mut()) {
                let kept: Option<String> = r.try_get("caller_number")?;
                match p.pick(Db::from(&mut *tx), u, kept.as_deref(), r.try_get("phone")?).await? {
                    Some(number) => {
                        if kept.as_deref() != Some(number.as_str()) {
                            callers::keep(Db::from(&mut *tx), &contact, &number).await?;
                        }
                        caller = Some(number);
                    }
                    None => {
                        turned_away.push(contact, "pending", Some(ms(callers::next_day(now)?)), Some(callers::LIMIT_WAIT));
                        continue;
                    }
                }
            }
            to_dial.push((i, r, caller));
        }
        turned_away.write(&mut tx, now).await?;
        for dial in new_calls(&mut tx, &to_dial, &claiming, node, now).await? {
            let i = by_campaign[dial.campaign_id.as_str()];
            claiming[i].dials.push(dial);
        }
        for (&(i, want, before), exhausted) in asked.iter().zip(exhausted) {
            let dialled = (claiming[i].dials.len() - before) as u32;
            claiming[i].want = if exhausted { 0 } else { want - dialled };
        }
    }
    for c in &claiming {
        if let Some(p) = &c.picker {
            p.save(Db::from(&mut *tx), c.id.as_str()).await?;
        }
    }
    let fenced: Vec<&CallId> = claiming.iter().filter(|c| placing.contains(&c.id)).flat_map(|c| c.dials.iter().map(|d| &d.call_id)).collect();
    shared::mark_placing_claimed(Db::from(&mut *tx), &fenced, node, now).await?;
    for c in claiming.iter_mut().filter(|c| placing.contains(&c.id)) {
        for dial in &mut c.dials {
            dial.placing_at = Some(now);
        }
    }
    tx.commit().await?;
    Ok(claiming.into_iter().filter(|c| !c.dials.is_empty()).map(|c| (c.id, c.dials)).collect())
}

/// Claims up to `want` due contacts of each campaign in `wanting`, in due order: one
/// statement, which also says whether each one's number is on a do-not-call list (the
/// workspace's or the campaign's) and its last attempt number.
async fn claim_due(tx: &mut Transaction<'_, Postgres>, claiming: &[Claiming], wanting: &[usize], now: Timestamp) -> Result<Vec<PgRow>> {
    // SKIP LOCKED: a contact some other writer holds (a cancel, a manual retry) is passed
    // over rather than waited for.
    Ok(sqlx::query(&format!(
        "WITH due AS (
            SELECT d.id FROM UNNEST($2::text[], $3::bigint[]) AS w(campaign_id, n)
            CROSS JOIN LATERAL (
                SELECT id FROM contacts WHERE campaign_id = w.campaign_id AND status = 'pending' AND next_attempt_at <= $1
                ORDER BY next_attempt_at, id LIMIT w.n FOR UPDATE SKIP LOCKED) d)
         UPDATE contacts c SET status = 'in_call', {spend}, updated_at = $1, wait_reason = NULL
         FROM due WHERE c.id = due.id
         RETURNING c.id, c.campaign_id, c.phone, c.extension, c.name, c.variables, c.attempts, c.timezone, c.timezones, c.next_attempt_at, c.caller_number,
            {suppressed} AS suppressed, {last} AS last_attempt",
        spend = attempts::SPEND,
        suppressed = crate::shared::suppressions::suppressed_sql("c"),
        last = attempts::last_number_sql("c"),
    ))
    .bind(ms(now))
    .bind(wanting.iter().map(|&i| claiming[i].id.as_str()).collect::<Vec<_>>())
    .bind(wanting.iter().map(|&i| i64::from(claiming[i].want)).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await?)
}

/// Claimed contacts sent back without a call: on a do-not-call list (`dnc`), or outside
/// their own hours (`pending` again at their next open moment, or `exhausted` if there is
/// none). Their attempt is not spent.
#[derive(Default)]
struct TurnedAway {
    ids: Vec<String>,
    statuses: Vec<&'static str>,
    next: Vec<Option<i64>>,
    reasons: Vec<Option<&'static str>>,
}

impl TurnedAway {
    fn push(&mut self, contact: String, status: &'static str, next: Option<i64>, reason: Option<&'static str>) {
        self.ids.push(contact);
        self.statuses.push(status);
        self.next.push(next);
        self.reasons.push(reason);
    }

    async fn write(self, tx: &mut Transaction<'_, Postgres>, now: Timestamp) -> Result<()> {
        if self.ids.is_empty() {
            return Ok(());
        }
        // `attempts::turn_away` for many contacts in one statement (UNNEST is PostgreSQL's).
        sqlx::query(&format!(
            "UPDATE contacts c SET status = t.status, next_attempt_at = COALESCE(t.next_at, c.next_attempt_at),
                wait_reason = t.reason, {give_back}, updated_at = $1
             FROM UNNEST($2::text[], $3::text[], $4::bigint[], $5::text[]) AS t(id, status, next_at, reason) WHERE c.id = t.id",
            give_back = attempts::GIVE_BACK,
        ))
        .bind(ms(now))
        .bind(&self.ids)
        .bind(&self.statuses)
        .bind(&self.next)
        .bind(&self.reasons)
        .execute(&mut **tx)
        .await?;
        // A scheduled single call's row would otherwise wait in `scheduled` for ever.
        let dnc: Vec<&String> = self.ids.iter().zip(&self.statuses).filter(|(_, s)| **s == "dnc").map(|(id, _)| id).collect();
        if !dnc.is_empty() {
            sqlx::query(
                "UPDATE calls SET status = 'canceled', outcome = 'canceled', ended_reason = 'dnc', ended_at = $1, updated_at = $1
                 WHERE contact_id = ANY($2::text[]) AND status = 'scheduled'",
            )
            .bind(ms(now))
            .bind(&dnc)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}

/// A provider account's concurrency limit and what counts against it, read under the
/// account row's lock.
struct AccountState {
    limit: i64,
    /// Active calls on the account (inbound included), plus what this claim has granted.
    active: i64,
    /// Campaigns that want slots now.
    sharing: i64,
}

/// The state of `provider`'s account, its row locked; `None` for an unlimited account.
/// How much a campaign may take is then `common::account_room`: the account's free slots
/// (inbound calls included), capped at a fair share so that campaigns on one account take
/// turns and none starves.
async fn account_state(tx: &mut Transaction<'_, Postgres>, provider: &str, account: Option<&str>, now: Timestamp) -> Result<Option<AccountState>> {
    let Some(limit) = crate::accounts::limit(Db::from(&mut **tx), provider, account, true).await? else { return Ok(None) };
    let (active, sharing) = crate::accounts::load(Db::from(&mut **tx), provider, account, now).await?;
    Ok(Some(AccountState { limit, active, sharing }))
}

/// A scheduled single call already has its row: it moves to QUEUED (owned by `node`)
/// instead of a new call being inserted. `None` when contact `r` has no scheduled row.
async fn queue_scheduled(tx: &mut Transaction<'_, Postgres>, r: &PgRow, c: &Claiming, node: &str, now: Timestamp) -> Result<Option<Dial>> {
    let scheduled: Option<(String, i64)> = sqlx::query_as(
        "UPDATE calls SET status = 'queued', claimed_by = $3, updated_at = $1, last_event_at = $1, account_id = $4
         WHERE contact_id = $2 AND status = 'scheduled' RETURNING id, attempt",
    )
    .bind(ms(now))
    .bind(r.try_get::<String, _>("id")?)
    .bind(node)
    .bind(c.account_id.as_deref())
    .fetch_optional(&mut **tx)
    .await?;
    scheduled.map(|(id, attempt)| dial_of(r, c, CallId::from_db(id), attempt, None)).transpose()
}

/// The dial for claimed contact row `r` of campaign `c`, from `caller` (else the
/// campaign's `phone_number_id`).
fn dial_of(r: &PgRow, c: &Claiming, call_id: CallId, attempt: i64, caller: Option<String>) -> Result<Dial> {
    Ok(Dial {
        call_id,
        workspace_id: c.ws.clone(),
        campaign_id: c.id.clone(),
        contact_id: ContactId::from_db(r.try_get("id")?),
        attempt: attempt as u32,
        provider: c.provider,
        account_id: c.account_id.clone().map(dialtone_core::ProviderAccountId::from_db),
        assistant_id: c.assistant_id.clone(),
        phone_number_id: caller.unwrap_or_else(|| c.phone_number_id.clone()),
        phone: PhoneNumber::from_db(r.try_get("phone")?),
        extension: crate::common::extension_of(r.try_get("extension")?),
        name: r.try_get("name")?,
        variables: rows::json_map(r.try_get("variables")?)?,
        agent: c.agent.clone(),
        placing_at: None,
    })
}

/// Inserts the QUEUED calls for claimed contacts `rows` (each with its index in
/// `claiming`): one statement.
async fn new_calls(
    tx: &mut Transaction<'_, Postgres>,
    rows: &[(usize, &PgRow, Option<String>)],
    claiming: &[Claiming],
    node: &str,
    now: Timestamp,
) -> Result<Vec<Dial>> {
    if rows.is_empty() {
        return Ok(vec![]);
    }
    let mut dials = Vec::with_capacity(rows.len());
    for (i, r, caller) in rows {
        // Attempt numbers count calls (see `crate::attempts`).
        let attempt = attempts::next_number(r.try_get("last_attempt")?, r.try_get("attempts")?);
        dials.push(dial_of(r, &claiming[*i], CallId::new(), attempt, caller.clone())?);
    }
    sqlx::query(
        "INSERT INTO calls (id, workspace_id, campaign_id, contact_id, attempt, provider, phone, status, created_at, updated_at, last_event_at, claimed_by, caller_number, account_id)
         SELECT t.id, t.ws, t.campaign_id, t.contact_id, t.attempt, t.provider, t.phone, 'queued', $1, $1, $1, $2, t.caller_number, t.account_id
         FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[], $10::text[], $11::text[])
              WITH ORDINALITY AS t(id, ws, campaign_id, contact_id, attempt, provider, phone, caller_number, account_id, ord)
         ORDER BY t.ord",
    )
    .bind(ms(now))
    .bind(node)
    .bind(dials.iter().map(|d| d.call_id.as_str()).collect::<Vec<_>>())
    .bind(dials.iter().map(|d| d.workspace_id.as_str()).collect::<Vec<_>>())
    .bind(dials.iter().map(|d| d.campaign_id.as_str()).collect::<Vec<_>>())
    .bind(dials.iter().map(|d| d.contact_id.as_str()).collect::<Vec<_>>())
    .bind(dials.iter().map(|d| d.attempt as i64).collect::<Vec<_>>())
    .bind(dials.iter().map(|d| d.provider.as_str()).collect::<Vec<_>>())
    .bind(dials.iter().map(|d| d.phone.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, _, caller)| caller.clone()).collect::<Vec<Option<String>>>())
    .bind(dials.iter().map(|d| d.account_id.as_ref().map(|a| a.as_str())).collect::<Vec<Option<&str>>>())
    .execute(&mut **tx)
    .await?;
    Ok(dials)
}

pub async fn end_call(pool: &PgPool, call: &CallId, outcome: Outcome, reason: &str, now: Timestamp) -> Result<Option<Applied>> {
    let event = shared::end_event(call, outcome, reason, now);
    let mut out = events::apply_batch(&mut *pool.acquire().await?, std::slice::from_ref(&event), "engine", now).await?;
    let applied = out.pop().expect("one Applied per event");
    Ok((!applied.duplicate).then_some(applied))
}

/// Returns the server's clock as the heartbeat was written.
pub async fn heartbeat(pool: &PgPool, node: &str, now: Timestamp) -> Result<Timestamp> {
    let server_ms: i64 = sqlx::query_scalar(
        "INSERT INTO nodes (id, started_at, heartbeat_at) VALUES ($1, $2, $2)
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = GREATEST(nodes.heartbeat_at, excluded.heartbeat_at)
         RETURNING (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint",
    )
    .bind(node)
    .bind(ms(now))
    .fetch_one(pool)
    .await?;
    rows::ts(server_ms)
}
