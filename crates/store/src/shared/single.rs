//! Assistants and scheduled single calls. A single call lives in a hidden campaign of its
//! own (kind `single_calls`) as one contact, so claiming, the cap, the reaper, retries and
//! recurrence are the campaign machinery, unchanged; until its time comes its call row
//! waits in status `scheduled`.

use super::{pg_lock, Pools};
use crate::common::{extension_db, ms, timezone_source_column, timezones_column};
use crate::rows::{AssistantRow, CallRow};
use crate::sql::{args, AsDb};
use crate::{Assistant, Call, NewSingleCall, Result};
use dialtone_core::schedule::{LocalHours, Schedule};
use dialtone_core::{CallId, CampaignId, ContactId, WorkspaceId};
use jiff::Timestamp;

/// Registers an assistant, or updates its provider and number (and its name, if given).
pub async fn upsert_assistant(p: Pools<'_>, ws: &WorkspaceId, a: &Assistant, now: Timestamp) -> Result<()> {
    p.write()
        .execute(
            "INSERT INTO assistants (workspace_id, id, provider, phone_number_id, name, created_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (workspace_id, id) DO UPDATE SET provider = excluded.provider, phone_number_id = excluded.phone_number_id,
                name = COALESCE(excluded.name, assistants.name)",
            args![ws.as_str(), &a.id, a.provider.as_str(), &a.phone_number_id, a.name.as_deref(), ms(now)],
        )
        .await?;
    Ok(())
}

pub async fn get_assistant(p: Pools<'_>, ws: &WorkspaceId, id: &str) -> Result<Option<Assistant>> {
    let row: Option<AssistantRow> = p.read().fetch_optional("SELECT * FROM assistants WHERE workspace_id = $1 AND id = $2", args![ws.as_str(), id]).await?;
    row.map(Assistant::try_from).transpose()
}

pub async fn list_assistants(p: Pools<'_>, ws: &WorkspaceId) -> Result<Vec<Assistant>> {
    let rows: Vec<AssistantRow> = p.read().fetch_all("SELECT * FROM assistants WHERE workspace_id = $1 ORDER BY id", args![ws.as_str()]).await?;
    rows.into_iter().map(Assistant::try_from).collect()
}

/// Creates the hidden campaign, its one contact and the call, `scheduled` for its time.
pub async fn create(p: Pools<'_>, new: NewSingleCall, now: Timestamp) -> Result<Call> {
    let (campaign, contact, call) = (CampaignId::new(), ContactId::new(), CallId::new());
    let all_day = LocalHours::new(jiff::civil::Time::midnight(), jiff::civil::Time::midnight());
    let mut tx = p.begin().await?;
    let mut db = tx.db();
    db.execute(
        "INSERT INTO campaigns (id, workspace_id, name, provider, assistant_id, phone_number_id, mode, max_concurrent, max_attempts,
            retry_policy, default_region, schedule, calling_hours, kind, status, created_at, updated_at, agent_id, account_id)
         VALUES ($1, $2, $3, $4, $5, $6, 'continuous', 1, $7, $8, 'US', $9, $10, 'single_calls', 'starting', $11, $11, $12, $13)",
        args![
            campaign.as_str(),
            new.workspace_id.as_str(),
            format!("single call {call}"),
            new.assistant.provider.as_str(),
            &new.assistant.id,
            &new.assistant.phone_number_id,
            new.max_attempts,
            serde_json::to_string(&new.retry).expect("a retry policy serializes"),
            // The time was chosen explicitly (and moved into business hours on request), so
            // the hidden campaign's schedule never holds the call back; its calling hours do
            // only on request, for the occurrences and retries that follow.
            serde_json::to_string(&Schedule::always(&new.timezone.timezone)).expect("a schedule serializes"),
            serde_json::to_string(&if new.respect_business_hours { LocalHours::default() } else { all_day }).expect("hours serialize"),
            ms(now),
            new.agent_id.as_ref().map(|a| a.as_str()),
            new.account_id.as_ref().map(|a| a.as_str()),
        ],
    )
    .await?;
    db.execute(
        "INSERT INTO contacts (id, workspace_id, campaign_id, phone, name, variables, timezone, timezone_source, timezones, recurrence,
            status, attempts, next_attempt_at, created_at, updated_at, extension)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', 0, $11, $12, $12, $13)",
        args![
            contact.as_str(),
            new.workspace_id.as_str(),
            campaign.as_str(),
            new.phone.as_str(),
            new.name.as_deref(),
            serde_json::Value::Object(new.variables.clone()).to_string(),
            &new.timezone.timezone,
            timezone_source_column(Some(&new.timezone)),
            timezones_column(Some(&new.timezone)),
            new.recurrence.as_ref().map(|r| serde_json::to_string(r).expect("a recurrence serializes")),
            ms(new.scheduled_for),
            ms(now),
            extension_db(new.extension.as_ref()),
        ],
    )
    .await?;
    let call = insert_scheduled(
        &mut db,
        &call,
        &new.workspace_id,
        &campaign,
        &contact,
        1,
        new.assistant.provider.as_str(),
        new.phone.as_str(),
        new.scheduled_for,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(call)
}

/// The call row of a single call (or its next occurrence) waiting for its time, inserted in
/// the caller's transaction (`db`: either backend's `&mut tx`, or a [`crate::sql::Db`]).
#[allow(clippy::too_many_arguments)]
pub async fn insert_scheduled(
    db: &mut impl AsDb,
    call: &CallId,
    ws: &WorkspaceId,
    campaign: &CampaignId,
    contact: &ContactId,
    attempt: u32,
    provider: &str,
    phone: &str,
    at: Timestamp,
    now: Timestamp,
) -> Result<Call> {
    // Numbered after every call the contact has (see `crate::attempts`): a capacity refusal
    // gave its attempt back, yet its call keeps its number.
    let last = crate::attempts::last_number(db.as_db(), contact.as_str()).await?;
    let attempt = crate::attempts::next_number(last, i64::from(attempt));
    let row: CallRow = db
        .as_db()
        .fetch_one(
            "INSERT INTO calls (id, workspace_id, campaign_id, contact_id, attempt, provider, phone, status, scheduled_for, created_at, updated_at, last_event_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'scheduled', $8, $9, $9, $9) RETURNING *",
            args![call.as_str(), ws.as_str(), campaign.as_str(), contact.as_str(), attempt, provider, phone, ms(at), ms(now)],
        )
        .await?;
    row.try_into()
}

/// PostgreSQL: locks the hidden campaign of scheduled call `id` before anything else, so a
/// claim of that call (campaign → contact → call) and a change to it never lock in
/// opposite orders.
const LOCK_CAMPAIGN_OF_CALL: &str = "SELECT 1 FROM campaigns cam WHERE cam.id = (SELECT campaign_id FROM calls WHERE workspace_id = $1 AND id = $2) FOR UPDATE";

/// Moves a call that has not started yet (and its contact's next attempt). False if it is
/// no longer `scheduled`.
pub async fn reschedule(p: Pools<'_>, ws: &WorkspaceId, id: &CallId, at: Timestamp, now: Timestamp) -> Result<bool> {
    let mut tx = p.begin().await?;
    let mut db = tx.db();
    pg_lock(&mut db, LOCK_CAMPAIGN_OF_CALL, args![ws.as_str(), id.as_str()]).await?;
    let moved: Option<(String,)> = db
        .fetch_optional(
            "UPDATE calls SET scheduled_for = $1, updated_at = $2 WHERE workspace_id = $3 AND id = $4 AND status = 'scheduled' RETURNING contact_id",
            args![ms(at), ms(now), ws.as_str(), id.as_str()],
        )
        .await?;
    let Some((contact,)) = moved else {
        return Ok(false);
    };
    db.execute(
        "UPDATE contacts SET next_attempt_at = $1, updated_at = $2, wait_reason = NULL WHERE id = $3 AND status = 'pending'",
        args![ms(at), ms(now), contact],
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Cancels a call that has not started yet (it stays visible as `canceled`), its contact
/// and its hidden campaign. False if it is no longer `scheduled`.
pub async fn cancel(p: Pools<'_>, ws: &WorkspaceId, id: &CallId, now: Timestamp) -> Result<bool> {
    let mut tx = p.begin().await?;
    let mut db = tx.db();
    pg_lock(&mut db, LOCK_CAMPAIGN_OF_CALL, args![ws.as_str(), id.as_str()]).await?;
    let canceled: Option<(String, String)> = db
        .fetch_optional(
            "UPDATE calls SET status = 'canceled', outcome = 'canceled', ended_reason = 'canceled before it started', ended_at = $1, updated_at = $1
             WHERE workspace_id = $2 AND id = $3 AND status = 'scheduled' RETURNING contact_id, campaign_id",
            args![ms(now), ws.as_str(), id.as_str()],
        )
        .await?;
    let Some((contact, campaign)) = canceled else {
        return Ok(false);
    };
    db.execute("UPDATE contacts SET status = 'canceled', updated_at = $1 WHERE id = $2 AND status = 'pending'", args![ms(now), contact]).await?;
    db.execute(
        "UPDATE campaigns SET status = 'canceled', completed_at = $1, updated_at = $1
         WHERE id = $2 AND kind = 'single_calls' AND status NOT IN ('completed', 'canceled')",
        args![ms(now), campaign],
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}
