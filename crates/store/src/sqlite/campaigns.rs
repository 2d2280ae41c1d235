//! Campaigns, contacts, workspaces and API keys on SQLite.

use super::rows::{self, ms};
use crate::common::{duplicate_reason, extension_db, timezone_source_column, timezones_column};
use crate::{Campaign, CampaignCounts, Contact, InsertReport, NewCampaign, NewContact, Page, RejectedRow, Result, StoreError};
use dialtone_core::{ApiKeyId, CampaignId, CampaignStatus, ContactId, WorkspaceId};
use jiff::Timestamp;
use std::collections::HashMap;
use sqlx::{Row, SqlitePool};

pub use crate::common::ACTIVE_SQL;

pub async fn default_workspace(pool: &SqlitePool) -> Result<WorkspaceId> {
    let id = WorkspaceId::new();
    sqlx::query("INSERT INTO workspaces (id, name, is_default, created_at) VALUES (?, 'default', 1, ?) ON CONFLICT DO NOTHING")
        .bind(id.as_str())
        .bind(ms(Timestamp::now()))
        .execute(pool)
        .await?;
    let id: String = sqlx::query_scalar("SELECT id FROM workspaces WHERE is_default = 1").fetch_one(pool).await?;
    Ok(WorkspaceId::from_db(id))
}

pub async fn create_api_key(pool: &SqlitePool, ws: &WorkspaceId, name: &str, hash: &str, now: Timestamp) -> Result<ApiKeyId> {
    let id = ApiKeyId::new();
    sqlx::query("INSERT INTO api_keys (id, workspace_id, name, key_hash, created_at) VALUES (?, ?, ?, ?, ?)")
        .bind(id.as_str())
        .bind(ws.as_str())
        .bind(name)
        .bind(hash)
        .bind(ms(now))
        .execute(pool)
        .await?;
    Ok(id)
}

pub async fn find_api_key(pool: &SqlitePool, hash: &str) -> Result<Option<(ApiKeyId, WorkspaceId)>> {
    let row = sqlx::query("SELECT id, workspace_id FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL")
        .bind(hash)
        .fetch_optional(pool)
        .await?;
    row.map(|r| Ok((ApiKeyId::from_db(r.try_get("id")?), WorkspaceId::from_db(r.try_get("workspace_id")?))))
        .transpose()
}

pub async fn create(pool: &SqlitePool, new: NewCampaign, now: Timestamp) -> Result<Campaign> {
    let id = CampaignId::new();
    let row = sqlx::query(
        "INSERT INTO campaigns (id, workspace_id, name, provider, assistant_id, phone_number_id, mode,
            max_concurrent, max_attempts, retry_policy, default_region, schedule, calling_hours, recurrence, max_call_duration_secs,
            status, created_at, updated_at, assume_campaign_timezone_for_ambiguous)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'draft', ?, ?, ?) RETURNING *",
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
    .bind(new.max_call_duration_secs.map(i64::from))
    .bind(ms(now))
    .bind(ms(now))
    .bind(new.assume_campaign_timezone_for_ambiguous)
    .fetch_one(pool)
    .await?;
    rows::campaign(&row)
}

pub async fn get(pool: &SqlitePool, ws: &WorkspaceId, id: &CampaignId) -> Result<Option<Campaign>> {
    sqlx::query("SELECT * FROM campaigns WHERE workspace_id = ? AND id = ?")
        .bind(ws.as_str())
        .bind(id.as_str())
        .fetch_optional(pool)
        .await?
        .map(|r| rows::campaign(&r))
        .transpose()
}

pub async fn list(pool: &SqlitePool, ws: &WorkspaceId, page: &Page) -> Result<Vec<Campaign>> {
    sqlx::query("SELECT * FROM campaigns WHERE workspace_id = ? AND kind = 'campaign' AND (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?")
        .bind(ws.as_str())
        .bind(page.before.as_deref())
        .bind(page.before.as_deref())
        .bind(page.limit as i64)
        .fetch_all(pool)
        .await?
        .iter()
        .map(rows::campaign)
        .collect()
}

/// The counts of each of `ids` (campaigns with no contact and no call are missing).
pub async fn counts(pool: &SqlitePool, ids: &[CampaignId]) -> Result<HashMap<CampaignId, CampaignCounts>> {
    // One statement, so one snapshot: a call that ends between two separate reads would
    // otherwise show its contact still `in_call` next to no active call.
    let mut all: HashMap<CampaignId, CampaignCounts> = HashMap::new();
    for r in sqlx::query(
        "SELECT 'contact' AS kind, campaign_id, status, NULL AS outcome, COUNT(*) AS n FROM contacts
         WHERE campaign_id IN (SELECT value FROM json_each(?1)) GROUP BY campaign_id, status
         UNION ALL
         SELECT 'call', campaign_id, status, outcome, COUNT(*) FROM calls
         WHERE campaign_id IN (SELECT value FROM json_each(?1)) GROUP BY campaign_id, status, outcome",
    )
    .bind(serde_json::to_string(&ids.iter().map(|c| c.as_str()).collect::<Vec<_>>()).map_err(|e| crate::StoreError::Corrupt(e.to_string()))?)
    .fetch_all(pool)
    .await?
    {
        let counts = all.entry(CampaignId::from_db(r.try_get("campaign_id")?)).or_default();
        let n = r.try_get::<i64, _>("n")? as u64;
        crate::common::add_count(counts, r.try_get("kind")?, r.try_get("status")?, r.try_get("outcome")?, n)?;
    }
    Ok(all)
}

pub async fn transition(pool: &SqlitePool, ws: &WorkspaceId, id: &CampaignId, from: &[CampaignStatus], to: CampaignStatus, now: Timestamp) -> Result<bool> {
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let done = sqlx::query(
        "UPDATE campaigns SET status = ?, updated_at = ? WHERE workspace_id = ? AND id = ? AND status IN (SELECT value FROM json_each(?))",
    )
    .bind(to.as_str())
    .bind(ms(now))
    .bind(ws.as_str())
    .bind(id.as_str())
    .bind(serde_json::to_string(&from).expect("strings serialize"))
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn cancel(pool: &SqlitePool, ws: &WorkspaceId, id: &CampaignId, now: Timestamp) -> Result<bool> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let done = sqlx::query(
        "UPDATE campaigns SET status = 'canceled', completed_at = ?, updated_at = ?
         WHERE workspace_id = ? AND id = ? AND status NOT IN ('completed', 'canceled')",
    )
    .bind(ms(now))
    .bind(ms(now))
    .bind(ws.as_str())
    .bind(id.as_str())
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("UPDATE contacts SET status = 'canceled', updated_at = ? WHERE campaign_id = ? AND status = 'pending'")
        .bind(ms(now))
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
    // Scheduled calls stay visible, as canceled.
    sqlx::query("UPDATE calls SET status = 'canceled', outcome = 'canceled', ended_at = ?1, updated_at = ?1 WHERE campaign_id = ?2 AND status = 'scheduled'")
        .bind(ms(now))
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn complete_if_done(pool: &SqlitePool, id: &CampaignId, now: Timestamp) -> Result<bool> {
    let done = sqlx::query(&format!(
        "UPDATE campaigns SET status = 'completed', completed_at = ?1, updated_at = ?1
         WHERE id = ?2 AND status IN ('starting', 'dialing') AND kind <> 'inbound'
           AND NOT EXISTS (SELECT 1 FROM contacts WHERE campaign_id = ?2 AND status IN ('pending', 'in_call'))
           AND NOT EXISTS (SELECT 1 FROM calls WHERE campaign_id = ?2 AND status IN {ACTIVE_SQL})"
    ))
    .bind(ms(now))
    .bind(id.as_str())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn runnable(pool: &SqlitePool, now: Timestamp) -> Result<Vec<CampaignId>> {
    // Never an inbound campaign: nothing is dialled from it, and it never completes.
    // Campaigns whose next contact is hours or days away (scheduled single calls, retries,
    // recurring campaigns between periods) cost nothing per tick, nor do campaigns at their cap.
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM campaigns c WHERE status IN ('starting', 'dialing') AND kind <> 'inbound' AND (
            (EXISTS (SELECT 1 FROM contacts WHERE campaign_id = c.id AND status = 'pending' AND next_attempt_at <= ?)
             -- … with room: at its cap (or mid-batch) a campaign costs nothing per tick.
             AND (SELECT COUNT(*) FROM calls WHERE campaign_id = c.id AND status IN ('queued', 'dialing', 'ringing', 'in_progress'))
                 < CASE WHEN c.mode = 'batch' THEN 1 ELSE c.max_concurrent END)
            OR NOT EXISTS (SELECT 1 FROM contacts WHERE campaign_id = c.id AND status IN ('pending', 'in_call')))
         ORDER BY id",
    )
    .bind(ms(now))
    .fetch_all(pool)
    .await?;
    Ok(ids.into_iter().map(CampaignId::from_db).collect())
}

pub async fn insert_contacts(pool: &SqlitePool, ws: &WorkspaceId, campaign: &CampaignId, contacts: &[NewContact], now: Timestamp) -> Result<InsertReport> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM campaigns WHERE workspace_id = ? AND id = ?")
        .bind(ws.as_str())
        .bind(campaign.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    let status: CampaignStatus = rows::parse(&status.ok_or_else(|| StoreError::not_found("campaign", campaign))?)?;
    if status.is_terminal() {
        return Err(StoreError::Conflict(format!("campaign is {status}; contacts can no longer be added")));
    }
    let mut report = InsertReport::default();
    for c in contacts {
        let done = sqlx::query(
            "INSERT INTO contacts (id, workspace_id, campaign_id, phone, extension, name, variables, timezone, timezone_source, timezones, status, attempts, next_attempt_at, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?) ON CONFLICT (campaign_id, phone, extension) WHERE inbound = 0 DO NOTHING",
        )
        .bind(ContactId::new().as_str())
        .bind(ws.as_str())
        .bind(campaign.as_str())
        .bind(c.phone.as_str())
        .bind(extension_db(c.extension.as_ref()))
        .bind(c.name.as_deref())
        .bind(serde_json::Value::Object(c.variables.clone()).to_string())
        .bind(c.timezone.as_ref().map(|z| z.timezone.as_str()))
        .bind(timezone_source_column(c.timezone.as_ref()))
        .bind(timezones_column(c.timezone.as_ref()))
        .bind(ms(now))
        .bind(ms(now))
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            report.inserted += 1;
        } else {
            report.duplicates.push(RejectedRow { line: c.line, reason: duplicate_reason(&c.phone, c.extension.as_ref()) });
        }
    }
    tx.commit().await?;
    Ok(report)
}

pub async fn get_contact(pool: &SqlitePool, ws: &WorkspaceId, id: &ContactId) -> Result<Option<Contact>> {
    sqlx::query("SELECT * FROM contacts WHERE workspace_id = ? AND id = ?")
        .bind(ws.as_str())
        .bind(id.as_str())
        .fetch_optional(pool)
        .await?
        .map(|r| rows::contact(&r))
        .transpose()
}

pub async fn list_contacts(pool: &SqlitePool, ws: &WorkspaceId, campaign: &CampaignId, page: &Page) -> Result<Vec<Contact>> {
    sqlx::query("SELECT * FROM contacts WHERE workspace_id = ? AND campaign_id = ? AND (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?")
        .bind(ws.as_str())
        .bind(campaign.as_str())
        .bind(page.before.as_deref())
        .bind(page.before.as_deref())
        .bind(page.limit as i64)
        .fetch_all(pool)
        .await?
        .iter()
        .map(rows::contact)
        .collect()
}

pub async fn retry_contact_now(pool: &SqlitePool, ws: &WorkspaceId, id: &ContactId, now: Timestamp) -> Result<bool> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let done = sqlx::query(
        "UPDATE contacts SET status = 'pending', next_attempt_at = ?1, updated_at = ?1, wait_reason = NULL
         WHERE workspace_id = ?2 AND id = ?3 AND status IN ('pending', 'done', 'exhausted', 'invalid', 'canceled')
           AND (SELECT status FROM campaigns WHERE id = contacts.campaign_id) NOT IN ('completed', 'canceled')",
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

pub async fn cancel_contact(pool: &SqlitePool, ws: &WorkspaceId, id: &ContactId, now: Timestamp) -> Result<bool> {
    let done = sqlx::query("UPDATE contacts SET status = 'canceled', updated_at = ? WHERE workspace_id = ? AND id = ? AND status = 'pending'")
        .bind(ms(now))
        .bind(ws.as_str())
        .bind(id.as_str())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}
