//! Assistants and scheduled single calls on PostgreSQL. A single call lives in a hidden
//! campaign of its own (kind `single_calls`) as one contact, so claiming, the cap, the
//! reaper, retries and recurrence are the campaign machinery, unchanged; until its time
//! comes its call row waits in status `scheduled`.

use super::rows::{self, ms};
use crate::common::{timezone_source_column, timezones_column};
use crate::{Assistant, Call, NewSingleCall, Result};
use dialtone_core::schedule::{LocalHours, Schedule};
use dialtone_core::{CallId, CampaignId, ContactId, WorkspaceId};
use jiff::Timestamp;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Row, Transaction};

pub async fn upsert_assistant(pool: &PgPool, ws: &WorkspaceId, a: &Assistant, now: Timestamp) -> Result<()> {
    sqlx::query(
        "INSERT INTO assistants (workspace_id, id, provider, phone_number_id, name, created_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (workspace_id, id) DO UPDATE SET provider = excluded.provider, phone_number_id = excluded.phone_number_id,
            name = COALESCE(excluded.name, assistants.name)",
    )
    .bind(ws.as_str())
    .bind(&a.id)
    .bind(a.provider.as_str())
    .bind(&a.phone_number_id)
    .bind(a.name.as_deref())
    .bind(ms(now))
    .execute(pool)
    .await?;
    Ok(())
}

fn assistant(r: &PgRow) -> Result<Assistant> {
    Ok(Assistant {
        id: r.try_get("id")?,
        provider: rows::parse(r.try_get("provider")?)?,
        phone_number_id: r.try_get("phone_number_id")?,
        name: r.try_get("name")?,
    })
}

pub async fn get_assistant(pool: &PgPool, ws: &WorkspaceId, id: &str) -> Result<Option<Assistant>> {
    sqlx::query("SELECT * FROM assistants WHERE workspace_id = $1 AND id = $2")
        .bind(ws.as_str())
        .bind(id)
        .fetch_optional(pool)
        .await?
        .map(|r| assistant(&r))
        .transpose()
}

pub async fn list_assistants(pool: &PgPool, ws: &WorkspaceId) -> Result<Vec<Assistant>> {
    sqlx::query("SELECT * FROM assistants WHERE workspace_id = $1 ORDER BY id").bind(ws.as_str()).fetch_all(pool).await?.iter().map(assistant).collect()
}

pub async fn create(pool: &PgPool, new: NewSingleCall, now: Timestamp) -> Result<Call> {
    let (campaign, contact, call) = (CampaignId::new(), ContactId::new(), CallId::new());
    let all_day = LocalHours::new(jiff::civil::Time::midnight(), jiff::civil::Time::midnight());
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO campaigns (id, workspace_id, name, provider, assistant_id, phone_number_id, mode, max_concurrent, max_attempts,
            retry_policy, default_region, schedule, calling_hours, kind, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'continuous', 1, $7, $8, 'US', $9, $10, 'single_calls', 'starting', $11, $11)",
    )
    .bind(campaign.as_str())
    .bind(new.workspace_id.as_str())
    .bind(format!("single call {call}"))
    .bind(new.assistant.provider.as_str())
    .bind(&new.assistant.id)
    .bind(&new.assistant.phone_number_id)
    .bind(new.max_attempts as i64)
    .bind(serde_json::to_string(&new.retry).expect("a retry policy serializes"))
    // The time was chosen explicitly (and moved into business hours on request), so the
    // hidden campaign's schedule never holds the call back; its calling hours do only on
    // request, for the occurrences and retries that follow.
    .bind(serde_json::to_string(&Schedule::always(&new.timezone.timezone)).expect("a schedule serializes"))
    .bind(serde_json::to_string(&if new.respect_business_hours { LocalHours::default() } else { all_day }).expect("hours serialize"))
    .bind(ms(now))
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO contacts (id, workspace_id, campaign_id, phone, name, variables, timezone, timezone_source, timezones, recurrence,
            status, attempts, next_attempt_at, created_at, updated_at, extension)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $13, $9, 'pending', 0, $10, $11, $11, $12)",
    )
    .bind(contact.as_str())
    .bind(new.workspace_id.as_str())
    .bind(campaign.as_str())
    .bind(new.phone.as_str())
    .bind(new.name.as_deref())
    .bind(serde_json::Value::Object(new.variables.clone()).to_string())
    .bind(&new.timezone.timezone)
    .bind(timezone_source_column(Some(&new.timezone)))
    .bind(new.recurrence.as_ref().map(|r| serde_json::to_string(r).expect("a recurrence serializes")))
    .bind(ms(new.scheduled_for))
    .bind(ms(now))
    .bind(crate::common::extension_db(new.extension.as_ref()))
    .bind(timezones_column(Some(&new.timezone)))
    .execute(&mut *tx)
    .await?;
    let row = insert_scheduled(&mut tx, &call, &new.workspace_id, &campaign, &contact, 1, new.assistant.provider.as_str(), new.phone.as_str(), new.scheduled_for, now).await?;
    tx.commit().await?;
    rows::call(&row)
}

/// The call row of a single call (or its next occurrence) waiting for its time. `attempt`:
/// the attempts its contact will have spent once it is claimed (1 for a new single call).
#[allow(clippy::too_many_arguments)]
pub async fn insert_scheduled(tx: &mut Transaction<'_, Postgres>, call: &CallId, ws: &WorkspaceId, campaign: &CampaignId,
    contact: &ContactId, attempt: u32, provider: &str, phone: &str, at: Timestamp, now: Timestamp) -> Result<PgRow> {
    // Numbered after every call the contact has (see `crate::attempts`): a capacity refusal
    // gave its attempt back, yet its call keeps its number.
    let last = crate::attempts::last_number(crate::sql::Db::from(&mut **tx), contact.as_str()).await?;
    let attempt = crate::attempts::next_number(last, i64::from(attempt));
    Ok(sqlx::query(
        "INSERT INTO calls (id, workspace_id, campaign_id, contact_id, attempt, provider, phone, status, scheduled_for, created_at, updated_at, last_event_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'scheduled', $8, $9, $9, $9) RETURNING *",
    )
    .bind(call.as_str())
    .bind(ws.as_str())
    .bind(campaign.as_str())
    .bind(contact.as_str())
    .bind(attempt)
    .bind(provider)
    .bind(phone)
    .bind(ms(at))
    .bind(ms(now))
    .fetch_one(&mut **tx)
    .await?)
}

/// Locks the hidden campaign of scheduled call `id` before anything else, so a claim of
/// that call (campaign → contact → call) and a change to it never lock in opposite orders.
async fn lock_campaign_of(tx: &mut Transaction<'_, Postgres>, ws: &WorkspaceId, id: &CallId) -> Result<bool> {
    let locked: Option<String> = sqlx::query_scalar(
        "SELECT cam.id FROM campaigns cam WHERE cam.id = (SELECT campaign_id FROM calls WHERE workspace_id = $1 AND id = $2) FOR UPDATE",
    )
    .bind(ws.as_str())
    .bind(id.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(locked.is_some())
}

pub async fn reschedule(pool: &PgPool, ws: &WorkspaceId, id: &CallId, at: Timestamp, now: Timestamp) -> Result<bool> {
    let mut tx = pool.begin().await?;
    if !lock_campaign_of(&mut tx, ws, id).await? {
        return Ok(false);
    }
    let Some(contact) = sqlx::query_scalar::<_, String>(
        "UPDATE calls SET scheduled_for = $1, updated_at = $2 WHERE workspace_id = $3 AND id = $4 AND status = 'scheduled' RETURNING contact_id",
    )
    .bind(ms(at))
    .bind(ms(now))
    .bind(ws.as_str())
    .bind(id.as_str())
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(false);
    };
    sqlx::query("UPDATE contacts SET next_attempt_at = $1, updated_at = $2, wait_reason = NULL WHERE id = $3 AND status = 'pending'")
        .bind(ms(at))
        .bind(ms(now))
        .bind(&contact)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn cancel(pool: &PgPool, ws: &WorkspaceId, id: &CallId, now: Timestamp) -> Result<bool> {
    let mut tx = pool.begin().await?;
    if !lock_campaign_of(&mut tx, ws, id).await? {
        return Ok(false);
    }
    let Some(r) = sqlx::query(        "UPDATE calls SET status = 'canceled', outcome = 'canceled', ended_reason = 'canceled before it started', ended_at = $1, updated_at = $1
         WHERE workspace_id = $2 AND id = $3 AND status = 'scheduled' RETURNING contact_id, campaign_id",
    )
    .bind(ms(now))
    .bind(ws.as_str())
    .bind(id.as_str())
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(false);
    };
    let (contact, campaign): (String, String) = (r.try_get("contact_id")?, r.try_get("campaign_id")?);
    sqlx::query("UPDATE contacts SET status = 'canceled', updated_at = $1 WHERE id = $2 AND status = 'pending'")
        .bind(ms(now))
        .bind(&contact)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE campaigns SET status = 'canceled', completed_at = $1, updated_at = $1 WHERE id = $2 AND kind = 'single_calls' AND status NOT IN ('completed', 'canceled')")
        .bind(ms(now))
        .bind(&campaign)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}
