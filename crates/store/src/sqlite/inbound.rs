//! Our numbers and inbound calls on SQLite. An inbound call lives in a hidden campaign per
//! (workspace, number) (kind `inbound`: never dialled from, never completed), as a contact
//! of its own, so the reaper, the account's concurrency count and the reads see it like
//! any other call. One writer: no extra locking is needed against events racing the record.

use super::events;
use super::rows::{self, ms};
use crate::common::{inbound_campaign_name, number_taken, phone_number_id, INBOUND_KIND};
use crate::{Call, PhoneNumberEntry, Result};
use dialtone_core::schedule::{LocalHours, Schedule};
use dialtone_core::{CallId, CampaignId, ContactId, PhoneNumber, ProviderKind, RetryPolicy, WorkspaceId};
use jiff::Timestamp;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

fn entry(r: &SqliteRow) -> Result<PhoneNumberEntry> {
    Ok(PhoneNumberEntry {
        id: r.try_get("id")?,
        workspace_id: WorkspaceId::from_db(r.try_get("workspace_id")?),
        number: PhoneNumber::from_db(r.try_get("number")?),
        provider: rows::parse(r.try_get("provider")?)?,
        assistant_id: r.try_get("assistant_id")?,
        name: r.try_get("name")?,
        created_at: rows::ts(r.try_get("created_at")?)?,
    })
}

pub async fn add_number(pool: &SqlitePool, ws: &WorkspaceId, number: &PhoneNumber, provider: ProviderKind, assistant_id: &str,
    name: Option<&str>, now: Timestamp) -> Result<PhoneNumberEntry> {
    let row = sqlx::query(
        "INSERT INTO phone_numbers (id, workspace_id, number, provider, assistant_id, name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (number) DO NOTHING RETURNING *",
    )
    .bind(phone_number_id())
    .bind(ws.as_str())
    .bind(number.as_str())
    .bind(provider.as_str())
    .bind(assistant_id)
    .bind(name)
    .bind(ms(now))
    .fetch_optional(pool)
    .await?;
    row.map(|r| entry(&r)).transpose()?.ok_or_else(|| number_taken(number))
}

pub async fn list_numbers(pool: &SqlitePool, ws: &WorkspaceId) -> Result<Vec<PhoneNumberEntry>> {
    sqlx::query("SELECT * FROM phone_numbers WHERE workspace_id = ? ORDER BY number").bind(ws.as_str()).fetch_all(pool).await?.iter().map(entry).collect()
}

pub async fn remove_number(pool: &SqlitePool, ws: &WorkspaceId, number: &PhoneNumber) -> Result<bool> {
    let done = sqlx::query("DELETE FROM phone_numbers WHERE workspace_id = ? AND number = ?")
        .bind(ws.as_str())
        .bind(number.as_str())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn find_number(pool: &SqlitePool, number: &str) -> Result<Option<PhoneNumberEntry>> {
    sqlx::query("SELECT * FROM phone_numbers WHERE number = ?").bind(number).fetch_optional(pool).await?.map(|r| entry(&r)).transpose()
}

pub async fn record_call(pool: &SqlitePool, e: &PhoneNumberEntry, pid: &str, from: &str, now: Timestamp) -> Result<Call> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    if let Some(r) = sqlx::query("SELECT * FROM calls WHERE provider_call_id = ?").bind(pid).fetch_optional(&mut *tx).await? {
        return rows::call(&r);
    }
    let campaign = inbound_campaign(&mut tx, e, now).await?;
    let (contact, call) = (ContactId::new(), CallId::new());
    sqlx::query(
        "INSERT INTO contacts (id, workspace_id, campaign_id, phone, variables, status, attempts, next_attempt_at, inbound, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, '{}', 'in_call', 1, ?5, 1, ?5, ?5)",
    )
    .bind(contact.as_str())
    .bind(e.workspace_id.as_str())
    .bind(campaign.as_str())
    .bind(from)
    .bind(ms(now))
    .execute(&mut *tx)
    .await?;
    let row = sqlx::query(
        "INSERT INTO calls (id, workspace_id, campaign_id, contact_id, attempt, direction, provider, provider_call_id, phone, status,
            created_at, updated_at, last_event_at)
         VALUES (?1, ?2, ?3, ?4, 1, 'inbound', ?5, ?6, ?7, 'ringing', ?8, ?8, ?8) RETURNING *",
    )
    .bind(call.as_str())
    .bind(e.workspace_id.as_str())
    .bind(campaign.as_str())
    .bind(contact.as_str())
    .bind(e.provider.as_str())
    .bind(pid)
    .bind(from)
    .bind(ms(now))
    .fetch_one(&mut *tx)
    .await?;
    let call = events::adopt_orphans(&mut tx, rows::call(&row)?, pid, now).await?;
    tx.commit().await?;
    Ok(call)
}

/// The hidden campaign holding the inbound calls to `e`'s number, created on first use;
/// follows the number's current provider and assistant.
async fn inbound_campaign(tx: &mut Transaction<'_, Sqlite>, e: &PhoneNumberEntry, now: Timestamp) -> Result<CampaignId> {
    let found = sqlx::query("SELECT id, provider, assistant_id FROM campaigns WHERE workspace_id = ? AND phone_number_id = ? AND kind = 'inbound'")
        .bind(e.workspace_id.as_str())
        .bind(e.number.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    if let Some(r) = found {
        let id = CampaignId::from_db(r.try_get("id")?);
        if r.try_get::<String, _>("provider")? != e.provider.as_str() || r.try_get::<String, _>("assistant_id")? != e.assistant_id {
            sqlx::query("UPDATE campaigns SET provider = ?, assistant_id = ?, updated_at = ? WHERE id = ?")
                .bind(e.provider.as_str())
                .bind(&e.assistant_id)
                .bind(ms(now))
                .bind(id.as_str())
                .execute(&mut **tx)
                .await?;
        }
        return Ok(id);
    }
    let id = CampaignId::new();
    let all_day = LocalHours::new(jiff::civil::Time::midnight(), jiff::civil::Time::midnight());
    sqlx::query(
        "INSERT INTO campaigns (id, workspace_id, name, provider, assistant_id, phone_number_id, mode, max_concurrent, max_attempts,
            retry_policy, default_region, schedule, calling_hours, kind, status, created_at, updated_at, started_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'continuous', 1, 1, ?7, 'US', ?8, ?9, ?10, 'dialing', ?11, ?11, ?11)",
    )
    .bind(id.as_str())
    .bind(e.workspace_id.as_str())
    .bind(inbound_campaign_name(e.number.as_str()))
    .bind(e.provider.as_str())
    .bind(&e.assistant_id)
    .bind(e.number.as_str())
    .bind(serde_json::to_string(&RetryPolicy::default()).expect("a retry policy serializes"))
    .bind(serde_json::to_string(&Schedule::always("UTC")).expect("a schedule serializes"))
    .bind(serde_json::to_string(&all_day).expect("hours serialize"))
    .bind(INBOUND_KIND)
    .bind(ms(now))
    .execute(&mut **tx)
    .await?;
    Ok(id)
}
