//! Campaigns and their contacts.
//!
//! On PostgreSQL, writes that decide from a campaign's status lock its row first
//! (`FOR SHARE`, or `FOR UPDATE` where the row changes), so that under READ COMMITTED the
//! statements that follow see everything committed by whoever held it: the campaign row is
//! the one lock that orders a campaign's claims, imports, cancellation and completion.
//! SQLite's one writer needs none of that.

use super::outbox::{emit, OutboxEvent};
use super::{pg_lock, placeholders, Pools};
use crate::common::{add_count, duplicate_reason, extension_db, ms, parse, timezone_source_column, timezones_column};
use crate::events::insert_engine_note;
use crate::rows::{CampaignRow, ContactRow};
use crate::sql::{args, Arg, Db, Dialect};
use crate::{Campaign, CampaignCounts, Contact, InsertReport, NewCampaign, NewContact, Page, RejectedRow, Result, StoreError};
use dialtone_core::{CampaignId, CampaignStatus, ContactId, WorkspaceId};
use jiff::Timestamp;
use std::collections::{HashMap, HashSet};

pub use crate::common::ACTIVE_SQL;

pub async fn create(p: Pools<'_>, new: NewCampaign, now: Timestamp) -> Result<Campaign> {
    insert_campaign(p.write(), &new, CampaignStatus::Draft, false, now).await
}

/// Inserts a campaign row in `status`; `batch` marks one made by `POST /batches` (listed
/// under `/batches`, not `/campaigns`).
pub(crate) async fn insert_campaign(mut db: Db<'_>, new: &NewCampaign, status: CampaignStatus, batch: bool, now: Timestamp) -> Result<Campaign> {
    let row: CampaignRow = db
        .fetch_one(
            "INSERT INTO campaigns (id, workspace_id, name, provider, assistant_id, phone_number_id, mode,
                max_concurrent, max_attempts, retry_policy, default_region, schedule, calling_hours, recurrence, max_call_duration_secs,
                status, created_at, updated_at, assume_campaign_timezone_for_ambiguous, agent_id, batch,
                caller_numbers, caller_number_strategy, fallback_strategy, calls_per_minute, account_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17, $18, $19, $20, $21, $22, $23, $24, $25) RETURNING *",
            args![
                CampaignId::new().as_str(),
                new.workspace_id.as_str(),
                &new.name,
                new.provider.as_str(),
                &new.assistant_id,
                &new.phone_number_id,
                new.mode.as_str(),
                new.max_concurrent,
                new.max_attempts,
                serde_json::to_string(&new.retry).expect("a retry policy serializes"),
                &new.default_region,
                serde_json::to_string(&new.schedule).expect("a schedule serializes"),
                serde_json::to_string(&new.calling_hours).expect("hours serialize"),
                serde_json::to_string(&new.recurrence).expect("a recurrence serializes"),
                new.max_call_duration_secs,
                status.as_str(),
                ms(now),
                new.assume_campaign_timezone_for_ambiguous,
                new.agent_id.as_ref().map(|a| a.as_str()),
                batch,
                serde_json::to_string(&new.caller_pool.numbers).expect("numbers serialize"),
                new.caller_pool.strategy.as_str(),
                new.caller_pool.fallback.as_str(),
                new.calls_per_minute,
                new.account_id.as_ref().map(|a| a.as_str()),
            ],
        )
        .await?;
    row.try_into()
}

pub async fn get(p: Pools<'_>, ws: &WorkspaceId, id: &CampaignId) -> Result<Option<Campaign>> {
    let row: Option<CampaignRow> =
        p.read().fetch_optional("SELECT * FROM campaigns WHERE workspace_id = $1 AND id = $2", args![ws.as_str(), id.as_str()]).await?;
    row.map(Campaign::try_from).transpose()
}

pub async fn list(p: Pools<'_>, ws: &WorkspaceId, page: &Page) -> Result<Vec<Campaign>> {
    let rows: Vec<CampaignRow> = p
        .read()
        .fetch_all(
            "SELECT * FROM campaigns WHERE workspace_id = $1 AND kind = 'campaign' AND NOT batch AND archived_at IS NULL AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
            args![ws.as_str(), page.before.as_deref(), page.limit],
        )
        .await?;
    rows.into_iter().map(Campaign::try_from).collect()
}

/// One row of [`counts`]: `kind` is `contact` or `call`; `outcome` is set on ended calls.
#[derive(sqlx::FromRow)]
struct CountRow {
    kind: String,
    campaign_id: String,
    status: String,
    outcome: Option<String>,
    n: i64,
}

/// The counts of each of `ids` (campaigns with no contact and no call are missing).
pub async fn counts(p: Pools<'_>, ids: &[CampaignId]) -> Result<HashMap<CampaignId, CampaignCounts>> {
    let mut all: HashMap<CampaignId, CampaignCounts> = HashMap::new();
    if ids.is_empty() {
        return Ok(all);
    }
    // One statement, so one snapshot: a call that ends between two separate reads would
    // otherwise show its contact still `in_call` next to no active call.
    let mut db = p.read();
    let list = crate::sql::in_json_list(db.dialect(), 1);
    let rows: Vec<CountRow> = db
        .fetch_all(
            &format!(
                "SELECT 'contact' AS kind, campaign_id, status, NULL AS outcome, COUNT(*) AS n FROM contacts
                 WHERE campaign_id IN ({list}) GROUP BY campaign_id, status
                 UNION ALL
                 SELECT 'call', campaign_id, status, outcome, COUNT(*) FROM calls WHERE campaign_id IN ({list}) GROUP BY campaign_id, status, outcome"
            ),
            args![crate::sql::json_list(&ids.iter().map(|c| c.as_str()).collect::<Vec<_>>())],
        )
        .await?;
    for r in rows {
        add_count(all.entry(CampaignId::from_db(r.campaign_id)).or_default(), &r.kind, r.status, r.outcome, r.n as u64)?;
    }
    Ok(all)
}

/// Moves the campaign to `to` if its status is one of `from`; false if it was not.
pub async fn transition(p: Pools<'_>, ws: &WorkspaceId, id: &CampaignId, from: &[CampaignStatus], to: CampaignStatus, now: Timestamp) -> Result<bool> {
    if from.is_empty() {
        return Ok(false);
    }
    let mut a = args![to.as_str(), ms(now), ws.as_str(), id.as_str()];
    a.extend(from.iter().map(|s| Arg::from(s.as_str())));
    let sql = format!(
        "UPDATE campaigns SET status = $1, updated_at = $2 WHERE workspace_id = $3 AND id = $4 AND status IN ({}) RETURNING kind",
        placeholders(5, from.len())
    );
    let mut tx = p.begin().await?;
    let mut db = tx.db();
    let Some((kind,)) = db.fetch_optional::<(String,)>(&sql, a).await? else {
        return Ok(false);
    };
    // Started only out of a draft: a campaign resumed before its first call goes back to
    // `starting` too, and that is a resume, not a second start.
    let event = match to {
        CampaignStatus::Starting if from.contains(&CampaignStatus::Draft) => Some("campaign.started"),
        CampaignStatus::Starting | CampaignStatus::Dialing if from.contains(&CampaignStatus::Paused) => Some("campaign.resumed"),
        CampaignStatus::Paused => Some("campaign.paused"),
        _ => None,
    };
    if let (Some(event), "campaign") = (event, kind.as_str()) {
        emit(&mut db, &[campaign_event(ws.as_str(), id.as_str(), event, to.as_str())], now).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// A `campaign.*` outbox event: `data` is `{campaign_id, status}`.
pub(crate) fn campaign_event(ws: &str, id: &str, event_type: &'static str, status: &str) -> OutboxEvent {
    OutboxEvent::new(ws, event_type, serde_json::json!({ "campaign_id": id, "status": status }))
}

/// Cancels the campaign, its pending contacts and its scheduled calls (which stay visible,
/// as canceled). False if it was over already.
pub async fn cancel(p: Pools<'_>, ws: &WorkspaceId, id: &CampaignId, now: Timestamp) -> Result<bool> {
    let mut tx = p.begin().await?;
    let mut db = tx.db();
    let done: Option<(String,)> = db
        .fetch_optional(
            "UPDATE campaigns SET status = 'canceled', completed_at = $1, updated_at = $1
             WHERE workspace_id = $2 AND id = $3 AND status NOT IN ('completed', 'canceled') RETURNING kind",
            args![ms(now), ws.as_str(), id.as_str()],
        )
        .await?;
    let Some((kind,)) = done else {
        return Ok(false);
    };
    if kind == "campaign" {
        emit(&mut db, &[campaign_event(ws.as_str(), id.as_str(), "campaign.canceled", "canceled")], now).await?;
    }
    // New statements, after the campaign row's lock (PostgreSQL): they see contacts an
    // import committed while we waited for that lock.
    db.execute("UPDATE contacts SET status = 'canceled', updated_at = $1 WHERE campaign_id = $2 AND status = 'pending'", args![ms(now), id.as_str()]).await?;
    db.execute(
        "UPDATE calls SET status = 'canceled', outcome = 'canceled', ended_at = $1, updated_at = $1 WHERE campaign_id = $2 AND status = 'scheduled'",
        args![ms(now), id.as_str()],
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Completes a runnable campaign with no active call and no contact left to call. False if
/// it is not runnable or not done.
pub async fn complete_if_done(p: Pools<'_>, id: &CampaignId, now: Timestamp) -> Result<bool> {
    let mut tx = p.begin().await?;
    let mut db = tx.db();
    // Lock first, then look: a single UPDATE would re-check its NOT EXISTS against the
    // snapshot taken before it waited for a claim or an import holding the row.
    pg_lock(&mut db, "SELECT 1 FROM campaigns WHERE id = $1 AND status IN ('starting', 'dialing') AND kind <> 'inbound' FOR UPDATE", args![id.as_str()])
        .await?;
    let done: Option<(String, String)> = db.fetch_optional(&complete_sql(), args![ms(now), id.as_str()]).await?;
    if let Some((ws, kind)) = &done {
        if kind == "campaign" {
            emit(&mut db, &[campaign_event(ws, id.as_str(), "campaign.completed", "completed")], now).await?;
        }
    }
    tx.commit().await?;
    Ok(done.is_some())
}

/// [`complete_if_done`]'s statement: `$1` now (ms), `$2` the campaign.
pub(crate) fn complete_sql() -> String {
    format!(
        "UPDATE campaigns SET status = 'completed', completed_at = $1, updated_at = $1
         WHERE id = $2 AND status IN ('starting', 'dialing') AND kind <> 'inbound'
           AND NOT EXISTS (SELECT 1 FROM contacts WHERE campaign_id = $2 AND status IN ('pending', 'in_call'))
           AND NOT EXISTS (SELECT 1 FROM calls WHERE campaign_id = $2 AND status IN {ACTIVE_SQL})
         RETURNING workspace_id, kind"
    )
}

/// Campaigns the dispatcher should look at now: runnable, with room under their cap and a
/// contact due, or with nothing left (so they can complete). Never an inbound campaign:
/// nothing is dialled from it, and it never completes. Campaigns whose next contact is
/// hours or days away (scheduled single calls, retries, recurring campaigns between
/// periods) cost nothing per tick, nor do campaigns at their cap.
pub async fn runnable(p: Pools<'_>, now: Timestamp) -> Result<Vec<CampaignId>> {
    let mut db = p.read();
    let ids: Vec<(String,)> = db.fetch_all(&runnable_sql(db.dialect()), args![ms(now)]).await?;
    Ok(ids.into_iter().map(|(id,)| CampaignId::from_db(id)).collect())
}

/// [`runnable`]'s statement: `$1` now (ms). Each campaign's live calls are counted from
/// `calls_active` alone (covering: migration 0031), whatever the statistics say.
pub(crate) fn runnable_sql(dialect: Dialect) -> String {
    // A disabled workspace's campaigns dial nothing new (their calls under way finish) and
    // go on where they were when it is enabled again.
    let enabled = "NOT EXISTS (SELECT 1 FROM workspaces w WHERE w.id = c.workspace_id AND w.disabled_at IS NOT NULL)";
    match dialect {
        // The active count comes first and once (`LATERAL`, which SQLite lacks): at its cap
        // a campaign is skipped with one index-only count, before any look at its contacts.
        // A campaign with calls in flight cannot complete, so only one with none is looked
        // at for that.
        Dialect::Postgres => format!(
            "SELECT c.id FROM campaigns c
             CROSS JOIN LATERAL (SELECT COUNT(*) AS n FROM calls WHERE campaign_id = c.id AND status IN {ACTIVE_SQL}) a
             WHERE c.status IN ('starting', 'dialing') AND c.kind <> 'inbound' AND {enabled} AND (
                (a.n < CASE WHEN c.mode = 'batch' THEN 1 ELSE c.max_concurrent END
                 AND EXISTS (SELECT 1 FROM contacts WHERE campaign_id = c.id AND status = 'pending' AND next_attempt_at <= $1))
                OR (a.n = 0 AND NOT EXISTS (SELECT 1 FROM contacts WHERE campaign_id = c.id AND status IN ('pending', 'in_call'))))
             ORDER BY c.id"
        ),
        Dialect::Sqlite => format!(
            "SELECT id FROM campaigns c WHERE status IN ('starting', 'dialing') AND kind <> 'inbound' AND {enabled} AND (
                (EXISTS (SELECT 1 FROM contacts WHERE campaign_id = c.id AND status = 'pending' AND next_attempt_at <= $1)
                 AND (SELECT COUNT(*) FROM calls WHERE campaign_id = c.id AND status IN {ACTIVE_SQL})
                     < CASE WHEN c.mode = 'batch' THEN 1 ELSE c.max_concurrent END)
                OR NOT EXISTS (SELECT 1 FROM contacts WHERE campaign_id = c.id AND status IN ('pending', 'in_call')))
             ORDER BY id"
        ),
    }
}

/// Rows per multi-row INSERT when importing contacts (SQLite binds 8 values a row, well
/// under its 32766; PostgreSQL binds one array a column).
pub(crate) const INSERT_CHUNK: usize = 2_000;

/// Adds contacts to a campaign that is not over (`NotFound` if there is no such campaign,
/// `Conflict` if it is over). A number (with its extension) already in the campaign, or
/// repeated in `contacts`, is reported as a duplicate on its line; the first one wins.
pub async fn insert_contacts(p: Pools<'_>, ws: &WorkspaceId, campaign: &CampaignId, contacts: &[NewContact], now: Timestamp) -> Result<InsertReport> {
    let mut tx = p.begin().await?;
    let mut db = tx.db();
    // PostgreSQL, FOR SHARE: imports run side by side, but not beside a cancel or a completion.
    let lock = if db.dialect() == Dialect::Postgres { " FOR SHARE" } else { "" };
    let status: Option<(String,)> =
        db.fetch_optional(&format!("SELECT status FROM campaigns WHERE workspace_id = $1 AND id = $2{lock}"), args![ws.as_str(), campaign.as_str()]).await?;
    let status: CampaignStatus = parse(&status.ok_or_else(|| StoreError::not_found("campaign", campaign))?.0)?;
    if status.is_terminal() {
        return Err(StoreError::Conflict(format!("campaign is {status}; contacts can no longer be added")));
    }
    // Repeats within the batch are settled here (the first one wins, as it would row by
    // row); repeats of earlier imports are the rows the INSERT skipped.
    let mut seen = HashSet::with_capacity(contacts.len());
    let first: Vec<&NewContact> = contacts.iter().filter(|c| seen.insert(key(c))).collect();
    let mut inserted: HashSet<(String, String)> = HashSet::with_capacity(first.len());
    for chunk in first.chunks(INSERT_CHUNK) {
        inserted.extend(insert_chunk(db.by_ref(), ws, campaign, chunk, now).await?);
    }
    tx.commit().await?;
    let mut report = InsertReport::default();
    for c in contacts {
        // `remove`: only the first row with a number counts as inserted.
        if inserted.remove(&key(c)) {
            report.inserted += 1;
        } else {
            report.duplicates.push(RejectedRow { line: c.line, reason: duplicate_reason(&c.phone, c.extension.as_ref()) });
        }
    }
    Ok(report)
}

/// A contact's place in its campaign's unique key: (phone, extension column).
pub(crate) fn key(c: &NewContact) -> (String, String) {
    (c.phone.as_str().to_string(), extension_db(c.extension.as_ref()).to_string())
}

/// Inserts `chunk` as pending contacts, skipping numbers already in the campaign; returns the
/// keys it inserted. Each backend its own statement: PostgreSQL binds one array per column
/// and `UNNEST`s them (one short statement whatever the size, planned once), SQLite, which
/// has no arrays, one JSON array of rows read with `json_each` (one `$N` per value made a
/// new statement per chunk size and cost SQLite O(N²) to bind: `crate::sql::json_elements`);
/// and the conflict target must repeat each one's
/// partial index predicate (`inbound = 0` on SQLite, `NOT inbound` on PostgreSQL).
pub(crate) async fn insert_chunk(db: Db<'_>, ws: &WorkspaceId, campaign: &CampaignId, chunk: &[&NewContact], now: Timestamp) -> Result<Vec<(String, String)>> {
    let ids: Vec<String> = chunk.iter().map(|_| ContactId::new().as_str().to_string()).collect();
    let variables: Vec<String> = chunk.iter().map(|c| serde_json::Value::Object(c.variables.clone()).to_string()).collect();
    match db {
        Db::Postgres(conn) => Ok(insert_chunk_pg(conn, ws, campaign, chunk, &ids, &variables, now).await?),
        Db::PgPool(pool) => Ok(insert_chunk_pg(&mut *pool.acquire().await?, ws, campaign, chunk, &ids, &variables, now).await?),
        mut db => {
            let rows: Vec<serde_json::Value> = chunk
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    serde_json::json!([
                        &ids[i],
                        c.phone.as_str(),
                        extension_db(c.extension.as_ref()),
                        c.name.as_deref(),
                        &variables[i],
                        c.timezone.as_ref().map(|z| z.timezone.as_str()),
                        timezone_source_column(c.timezone.as_ref()),
                        timezones_column(c.timezone.as_ref()),
                    ])
                })
                .collect();
            // `WHERE true`: SQLite would read `ON CONFLICT` after a bare FROM as a join's `ON`.
            db.fetch_all(
                "INSERT INTO contacts (id, workspace_id, campaign_id, phone, extension, name, variables, timezone, timezone_source, timezones,
                    status, attempts, next_attempt_at, created_at, updated_at)
                 SELECT value ->> 0, $1, $2, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7,
                    'pending', 0, $3, $3, $3
                 FROM json_each($4) WHERE true ORDER BY key
                 ON CONFLICT (campaign_id, phone, extension) WHERE inbound = 0 DO NOTHING RETURNING phone, extension",
                args![ws.as_str(), campaign.as_str(), ms(now), serde_json::Value::Array(rows).to_string()],
            )
            .await
        }
    }
}

async fn insert_chunk_pg(
    conn: &mut sqlx::PgConnection,
    ws: &WorkspaceId,
    campaign: &CampaignId,
    chunk: &[&NewContact],
    ids: &[String],
    variables: &[String],
    now: Timestamp,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let phones: Vec<&str> = chunk.iter().map(|c| c.phone.as_str()).collect();
    let extensions: Vec<&str> = chunk.iter().map(|c| extension_db(c.extension.as_ref())).collect();
    let names: Vec<Option<&str>> = chunk.iter().map(|c| c.name.as_deref()).collect();
    let zones: Vec<Option<&str>> = chunk.iter().map(|c| c.timezone.as_ref().map(|z| z.timezone.as_str())).collect();
    let sources: Vec<Option<&str>> = chunk.iter().map(|c| timezone_source_column(c.timezone.as_ref())).collect();
    let candidates: Vec<Option<String>> = chunk.iter().map(|c| timezones_column(c.timezone.as_ref())).collect();
    sqlx::query_as(
        "INSERT INTO contacts (id, workspace_id, campaign_id, phone, name, variables, timezone, timezone_source, extension, timezones, status, attempts, next_attempt_at, created_at, updated_at)
         SELECT t.id, $1, $2, t.phone, t.name, t.variables, t.timezone, t.timezone_source, t.extension, t.timezones, 'pending', 0, $3, $3, $3
         FROM UNNEST($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
              AS t(id, phone, name, variables, timezone, timezone_source, extension, timezones)
         ON CONFLICT (campaign_id, phone, extension) WHERE NOT inbound DO NOTHING RETURNING phone, extension",
    )
    .bind(ws.as_str())
    .bind(campaign.as_str())
    .bind(ms(now))
    .bind(ids)
    .bind(&phones)
    .bind(&names)
    .bind(variables)
    .bind(&zones)
    .bind(&sources)
    .bind(&extensions)
    .bind(&candidates)
    .fetch_all(conn)
    .await
}

pub async fn get_contact(p: Pools<'_>, ws: &WorkspaceId, id: &ContactId) -> Result<Option<Contact>> {
    let row: Option<ContactRow> =
        p.read().fetch_optional("SELECT * FROM contacts WHERE workspace_id = $1 AND id = $2", args![ws.as_str(), id.as_str()]).await?;
    row.map(Contact::try_from).transpose()
}

pub async fn list_contacts(p: Pools<'_>, ws: &WorkspaceId, campaign: &CampaignId, page: &Page) -> Result<Vec<Contact>> {
    let rows: Vec<ContactRow> = p
        .read()
        .fetch_all(
            "SELECT * FROM contacts WHERE workspace_id = $1 AND campaign_id = $2 AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
            args![ws.as_str(), campaign.as_str(), page.before.as_deref(), page.limit],
        )
        .await?;
    rows.into_iter().map(Contact::try_from).collect()
}

/// Makes a contact that is not in a call due now (a manual retry, recorded as an engine
/// note). False if it is in a call, or its campaign is over.
pub async fn retry_contact_now(p: Pools<'_>, ws: &WorkspaceId, id: &ContactId, now: Timestamp) -> Result<bool> {
    let mut tx = p.begin().await?;
    let mut db = tx.db();
    // The campaign's status decides; hold it still (a cancel waits) while we act on it.
    pg_lock(
        &mut db,
        "SELECT 1 FROM contacts c JOIN campaigns cam ON cam.id = c.campaign_id WHERE c.workspace_id = $1 AND c.id = $2 FOR SHARE OF cam",
        args![ws.as_str(), id.as_str()],
    )
    .await?;
    let done = db
        .execute(
            "UPDATE contacts SET status = 'pending', next_attempt_at = $1, updated_at = $1, wait_reason = NULL
             WHERE workspace_id = $2 AND id = $3 AND status IN ('pending', 'done', 'exhausted', 'invalid', 'canceled')
               AND (SELECT status FROM campaigns WHERE id = contacts.campaign_id) NOT IN ('completed', 'canceled')",
            args![ms(now), ws.as_str(), id.as_str()],
        )
        .await?;
    if done == 0 {
        return Ok(false);
    }
    insert_engine_note(
        &mut db,
        ws.as_str(),
        &format!("engine:{id}:manual-retry:{}", ms(now)),
        "manual_retry",
        serde_json::json!({ "contact_id": id, "decision": "retry now, ignoring the retry limits" }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Cancels a pending contact's further attempts. False if it has none pending.
pub async fn cancel_contact(p: Pools<'_>, ws: &WorkspaceId, id: &ContactId, now: Timestamp) -> Result<bool> {
    let done = p
        .write()
        .execute(
            "UPDATE contacts SET status = 'canceled', updated_at = $1 WHERE workspace_id = $2 AND id = $3 AND status = 'pending'",
            args![ms(now), ws.as_str(), id.as_str()],
        )
        .await?;
    Ok(done == 1)
}
