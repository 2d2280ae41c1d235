//! Campaigns, contacts, workspaces and API keys on PostgreSQL.
//!
//! Writes that decide from a campaign's status lock its row first (`FOR SHARE`, or
//! `FOR UPDATE` where the row changes), so that under READ COMMITTED the statements that
//! follow see everything committed by whoever held it: the campaign row is the one lock
//! that orders a campaign's claims, imports, cancellation and completion.

use super::rows::{self, ms};
use crate::common::{duplicate_reason, extension_db, timezone_source_column, timezones_column, ACTIVE_SQL};
use crate::{Campaign, CampaignCounts, Contact, InsertReport, NewCampaign, NewContact, Page, RejectedRow, Result, StoreError};
use dialtone_core::{ApiKeyId, CampaignId, CampaignStatus, ContactId, WorkspaceId};
use jiff::Timestamp;
use std::collections::HashMap;
use sqlx::{PgPool, Row};
use std::collections::HashSet;

/// Rows per multi-row INSERT when importing contacts.
const INSERT_CHUNK: usize = 2_000;

pub async fn default_workspace(pool: &PgPool) -> Result<WorkspaceId> {
    let id = WorkspaceId::new();
    sqlx::query("INSERT INTO workspaces (id, name, is_default, created_at) VALUES ($1, 'default', TRUE, $2) ON CONFLICT DO NOTHING")
        .bind(id.as_str())
        .bind(ms(Timestamp::now()))
        .execute(pool)
        .await?;
    let id: String = sqlx::query_scalar("SELECT id FROM workspaces WHERE is_default").fetch_one(pool).await?;
    Ok(WorkspaceId::from_db(id))
}

pub async fn create_api_key(pool: &PgPool, ws: &WorkspaceId, name: &str, hash: &str, now: Timestamp) -> Result<ApiKeyId> {
    let id = ApiKeyId::new();
    sqlx::query("INSERT INTO api_keys (id, workspace_id, name, key_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(id.as_str())
        .bind(ws.as_str())
        .bind(name)
        .bind(hash)
        .bind(ms(now))
        .execute(pool)
        .await?;
    Ok(id)
}

pub async fn find_api_key(pool: &PgPool, hash: &str) -> Result<Option<(ApiKeyId, WorkspaceId)>> {
    let row = sqlx::query("SELECT id, workspace_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
        .bind(hash)
        .fetch_optional(pool)
        .await?;
    row.map(|r| Ok((ApiKeyId::from_db(r.try_get("id")?), WorkspaceId::from_db(r.try_get("workspace_id")?))))
        .transpose()
}

pub async fn create(pool: &PgPool, new: NewCampaign, now: Timestamp) -> Result<Campaign> {
    let id = CampaignId::new();
    let row = sqlx::query(
        "INSERT INTO campaigns (id, workspace_id, name, provider, assistant_id, phone_number_id, mode,
            max_concurrent, max_attempts, retry_policy, default_region, schedule, calling_hours, recurrence, max_call_duration_secs,
            status, created_at, updated_at, assume_campaign_timezone_for_ambiguous)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $16, 'draft', $15, $15, $17) RETURNING *",
    )
    .bind(id.as_str())
    .bind(new.workspace_id.as_str())
    .bind(&new.name)
    .bind(new.provider.as_str())
    .bind(&new.assistant_id)
    .bind(&new.phone_number_id)
    .bind(new.mode.as_str())
    .bind(new.max_concurrent as i64)
    .bind(new.max_attempts as i64)
    .bind(serde_json::to_string(&new.retry).expect("a retry policy serializes"))
    .bind(&new.default_region)
    .bind(serde_json::to_string(&new.schedule).expect("a schedule serializes"))
    .bind(serde_json::to_string(&new.calling_hours).expect("hours serialize"))
    .bind(serde_json::to_string(&new.recurrence).expect("a recurrence serializes"))
    .bind(ms(now))
    .bind(new.max_call_duration_secs.map(i64::from))
    .bind(new.assume_campaign_timezone_for_ambiguous)
    .fetch_one(pool)
    .await?;
    rows::campaign(&row)
}

pub async fn get(pool: &PgPool, ws: &WorkspaceId, id: &CampaignId) -> Result<Option<Campaign>> {
    sqlx::query("SELECT * FROM campaigns WHERE workspace_id = $1 AND id = $2")
        .bind(ws.as_str())
        .bind(id.as_str())
        .fetch_optional(pool)
        .await?
        .map(|r| rows::campaign(&r))
        .transpose()
}

pub async fn list(pool: &PgPool, ws: &WorkspaceId, page: &Page) -> Result<Vec<Campaign>> {
    sqlx::query("SELECT * FROM campaigns WHERE workspace_id = $1 AND kind = 'campaign' AND ($2::text IS NULL OR id < $2) ORDER BY id DESC LIMIT $3")
        .bind(ws.as_str())
        .bind(page.before.as_deref())
        .bind(page.limit as i64)
        .fetch_all(pool)
        .await?
        .iter()
        .map(rows::campaign)
        .collect()
}

/// The counts of each of `ids` (campaigns with no contact and no call are missing).
pub async fn counts(pool: &PgPool, ids: &[CampaignId]) -> Result<HashMap<CampaignId, CampaignCounts>> {
    // One statement, so one snapshot: a call that ends between two separate reads would
    // otherwise show its contact still `in_call` next to no active call.
    let mut all: HashMap<CampaignId, CampaignCounts> = HashMap::new();
    for r in sqlx::query(
        "SELECT 'contact' AS kind, campaign_id, status, NULL AS outcome, COUNT(*) AS n FROM contacts
         WHERE campaign_id = ANY($1) GROUP BY campaign_id, status
         UNION ALL
         SELECT 'call', campaign_id, status, outcome, COUNT(*) FROM calls WHERE campaign_id = ANY($1) GROUP BY campaign_id, status, outcome",
    )
    .bind(ids.iter().map(|c| c.as_str()).collect::<Vec<_>>())
    .fetch_all(pool)
    .await?
    {
        let counts = all.entry(CampaignId::from_db(r.try_get("campaign_id")?)).or_default();
        let n = r.try_get::<i64, _>("n")? as u64;
        crate::common::add_count(counts, r.try_get("kind")?, r.try_get("status")?, r.try_get("outcome")?, n)?;
    }
    Ok(all)
}

pub async fn transition(pool: &PgPool, ws: &WorkspaceId, id: &CampaignId, from: &[CampaignStatus], to: CampaignStatus, now: Timestamp) -> Result<bool> {
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let done = sqlx::query("UPDATE campaigns SET status = $1, updated_at = $2 WHERE workspace_id = $3 AND id = $4 AND status = ANY($5)")
        .bind(to.as_str())
        .bind(ms(now))
        .bind(ws.as_str())
        .bind(id.as_str())
        .bind(&from)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn cancel(pool: &PgPool, ws: &WorkspaceId, id: &CampaignId, now: Timestamp) -> Result<bool> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "UPDATE campaigns SET status = 'canceled', completed_at = $1, updated_at = $1
         WHERE workspace_id = $2 AND id = $3 AND status NOT IN ('completed', 'canceled')",
    )
    .bind(ms(now))
    .bind(ws.as_str())
    .bind(id.as_str())
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    // A new statement, after the campaign lock: it sees contacts an import committed while
    // we waited for that lock.
    sqlx::query("UPDATE contacts SET status = 'canceled', updated_at = $1 WHERE campaign_id = $2 AND status = 'pending'")
        .bind(ms(now))
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn complete_if_done(pool: &PgPool, id: &CampaignId, now: Timestamp) -> Result<bool> {
    let mut tx = pool.begin().await?;
    // Lock first, then look: a single UPDATE would re-check its NOT EXISTS against the
    // snapshot taken before it waited for a claim or an import holding the row.
    let runnable: Option<String> = sqlx::query_scalar("SELECT status FROM campaigns WHERE id = $1 AND status IN ('starting', 'dialing') AND kind <> 'inbound' FOR UPDATE")
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    if runnable.is_none() {
        return Ok(false);
    }
    let done = sqlx::query(&format!(
        "UPDATE campaigns SET status = 'completed', completed_at = $1, updated_at = $1
         WHERE id = $2 AND status IN ('starting', 'dialing') AND kind <> 'inbound'
           AND NOT EXISTS (SELECT 1 FROM contacts WHERE campaign_id = $2 AND status IN ('pending', 'in_call'))
           AND NOT EXISTS (SELECT 1 FROM calls WHERE campaign_id = $2 AND status IN {ACTIVE_SQL})"
    ))
    .bind(ms(now))
    .bind(id.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

pub async fn runnable(pool: &PgPool, now: Timestamp) -> Result<Vec<CampaignId>> {
    // Never an inbound campaign: nothing is dialled from it, and it never completes.
    // Campaigns whose next contact is hours or days away (scheduled single calls, retries,
    // recurring campaigns between periods) cost nothing per tick, nor do campaigns at their cap.
    // The active count comes first and once: at its cap a campaign is skipped with one
    // index-only count, before any look at its contacts. A campaign with calls in flight
    // cannot complete, so only one with none is looked at for that.
    let ids: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT c.id FROM campaigns c
         CROSS JOIN LATERAL (SELECT COUNT(*) AS n FROM calls WHERE campaign_id = c.id AND status IN {ACTIVE_SQL}) a
         WHERE c.status IN ('starting', 'dialing') AND c.kind <> 'inbound' AND (
            (a.n < CASE WHEN c.mode = 'batch' THEN 1 ELSE c.max_concurrent END
             AND EXISTS (SELECT 1 FROM contacts WHERE campaign_id = c.id AND status = 'pending' AND next_attempt_at <= $1))
            OR (a.n = 0 AND NOT EXISTS (SELECT 1 FROM contacts WHERE campaign_id = c.id AND status IN ('pending', 'in_call'))))
         ORDER BY c.id"
    ))
    .bind(ms(now))
    .fetch_all(pool)
    .await?;
    Ok(ids.into_iter().map(CampaignId::from_db).collect())
}

pub async fn insert_contacts(pool: &PgPool, ws: &WorkspaceId, campaign: &CampaignId, contacts: &[NewContact], now: Timestamp) -> Result<InsertReport> {
    let mut tx = pool.begin().await?;
    // FOR SHARE: imports run side by side, but not beside a cancel or a completion.
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM campaigns WHERE workspace_id = $1 AND id = $2 FOR SHARE")
        .bind(ws.as_str())
        .bind(campaign.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    let status: CampaignStatus = rows::parse(&status.ok_or_else(|| StoreError::not_found("campaign", campaign))?)?;
    if status.is_terminal() {
        return Err(StoreError::Conflict(format!("campaign is {status}; contacts can no longer be added")));
    }
    // Repeats within the batch are settled here (the first one wins, as it would row by
    // row); repeats of earlier imports are the rows the INSERT skipped.
    let mut seen = HashSet::with_capacity(contacts.len());
    let key = |c: &NewContact| (c.phone.as_str().to_string(), extension_db(c.extension.as_ref()).to_string());
    let first: Vec<&NewContact> = contacts.iter().filter(|c| seen.insert(key(c))).collect();
    let mut inserted: HashSet<(String, String)> = HashSet::with_capacity(first.len());
    for chunk in first.chunks(INSERT_CHUNK) {
        let ids: Vec<String> = chunk.iter().map(|_| ContactId::new().as_str().to_string()).collect();
        let phones: Vec<&str> = chunk.iter().map(|c| c.phone.as_str()).collect();
        let extensions: Vec<&str> = chunk.iter().map(|c| extension_db(c.extension.as_ref())).collect();
        let names: Vec<Option<&str>> = chunk.iter().map(|c| c.name.as_deref()).collect();
        let variables: Vec<String> = chunk.iter().map(|c| serde_json::Value::Object(c.variables.clone()).to_string()).collect();
        let zones: Vec<Option<&str>> = chunk.iter().map(|c| c.timezone.as_ref().map(|z| z.timezone.as_str())).collect();
        let sources: Vec<Option<&str>> = chunk.iter().map(|c| timezone_source_column(c.timezone.as_ref())).collect();
        let candidates: Vec<Option<String>> = chunk.iter().map(|c| timezones_column(c.timezone.as_ref())).collect();
        let phones_in: Vec<(String, String)> = sqlx::query_as(
            "INSERT INTO contacts (id, workspace_id, campaign_id, phone, name, variables, timezone, timezone_source, extension, timezones, status, attempts, next_attempt_at, created_at, updated_at)
             SELECT t.id, $1, $2, t.phone, t.name, t.variables, t.timezone, t.timezone_source, t.extension, t.timezones, 'pending', 0, $3, $3, $3
             FROM UNNEST($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
                  AS t(id, phone, name, variables, timezone, timezone_source, extension, timezones)
             ON CONFLICT (campaign_id, phone, extension) WHERE NOT inbound DO NOTHING RETURNING phone, extension",
        )
        .bind(ws.as_str())
        .bind(campaign.as_str())
        .bind(ms(now))
        .bind(&ids)
        .bind(&phones)
        .bind(&names)
        .bind(&variables)
        .bind(&zones)
        .bind(&sources)
        .bind(&extensions)
        .bind(&candidates)
        .fetch_all(&mut *tx)
        .await?;
        inserted.extend(phones_in);
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

pub async fn get_contact(pool: &PgPool, ws: &WorkspaceId, id: &ContactId) -> Result<Option<Contact>> {
    sqlx::query("SELECT * FROM contacts WHERE workspace_id = $1 AND id = $2")
        .bind(ws.as_str())
        .bind(id.as_str())
        .fetch_optional(pool)
        .await?
        .map(|r| rows::contact(&r))
        .transpose()
}

pub async fn list_contacts(pool: &PgPool, ws: &WorkspaceId, campaign: &CampaignId, page: &Page) -> Result<Vec<Contact>> {
    sqlx::query("SELECT * FROM contacts WHERE workspace_id = $1 AND campaign_id = $2 AND ($3::text IS NULL OR id < $3) ORDER BY id DESC LIMIT $4")
        .bind(ws.as_str())
        .bind(campaign.as_str())
        .bind(page.before.as_deref())
        .bind(page.limit as i64)
        .fetch_all(pool)
        .await?
        .iter()
        .map(rows::contact)
        .collect()
}

pub async fn retry_contact_now(pool: &PgPool, ws: &WorkspaceId, id: &ContactId, now: Timestamp) -> Result<bool> {
    let mut tx = pool.begin().await?;
    // The campaign's status decides; hold it still (a cancel waits) while we act on it.
    let campaign_status: Option<String> = sqlx::query_scalar(
        "SELECT cam.status FROM contacts c JOIN campaigns cam ON cam.id = c.campaign_id
         WHERE c.workspace_id = $1 AND c.id = $2 FOR SHARE OF cam",
    )
    .bind(ws.as_str())
    .bind(id.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    if matches!(campaign_status.as_deref(), None | Some("completed" | "canceled")) {
        return Ok(false);
    }
    let done = sqlx::query(
        "UPDATE contacts SET status = 'pending', next_attempt_at = $1, updated_at = $1, wait_reason = NULL
         WHERE workspace_id = $2 AND id = $3 AND status IN ('pending', 'done', 'exhausted', 'invalid', 'canceled')",
    )
    .bind(ms(now))
    .bind(ws.as_str())
    .bind(id.as_str())
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    super::events::insert_engine_note(&mut tx, ws.as_str(), &format!("engine:{id}:manual-retry:{}", ms(now)), "manual_retry",
        serde_json::json!({ "contact_id": id, "decision": "retry now, ignoring the retry limits" }), now).await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn cancel_contact(pool: &PgPool, ws: &WorkspaceId, id: &ContactId, now: Timestamp) -> Result<bool> {
    let done = sqlx::query("UPDATE contacts SET status = 'canceled', updated_at = $1 WHERE workspace_id = $2 AND id = $3 AND status = 'pending'")
        .bind(ms(now))
        .bind(ws.as_str())
        .bind(id.as_str())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}
