//! Our numbers and inbound calls. An inbound call lives in a hidden campaign per
//! (workspace, number) (kind `inbound`: never dialled from, never completed), as a contact
//! of its own, so the reaper, the account's concurrency count and the reads see it like
//! any other call. Recording one is [`insert_call`] inside the backend's own transaction:
//! the backend adds its locking (PostgreSQL: the provider call id's advisory lock, and
//! retries) and adopts the events that came before the call (`events::adopt_orphans`).

use super::Pools;
use crate::common::{inbound_campaign_name, ms, number_taken, phone_number_id, INBOUND_KIND};
use crate::rows::{CallRow, PhoneNumberRow};
use crate::sql::{args, AsDb, Db};
use crate::{Call, PhoneNumberEntry, Result, StoreError};
use dialtone_core::schedule::{LocalHours, Schedule};
use dialtone_core::{CallId, CampaignId, ContactId, PhoneNumber, ProviderKind, RetryPolicy, WorkspaceId};
use jiff::Timestamp;

/// Registers one of our numbers; `Conflict` if it is registered already (in any workspace).
pub async fn add_number(
    p: Pools<'_>,
    ws: &WorkspaceId,
    number: &PhoneNumber,
    provider: ProviderKind,
    assistant_id: &str,
    name: Option<&str>,
    now: Timestamp,
) -> Result<PhoneNumberEntry> {
    let row: Option<PhoneNumberRow> = p
        .write()
        .fetch_optional(
            "INSERT INTO phone_numbers (id, workspace_id, number, provider, assistant_id, name, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (number) DO NOTHING RETURNING *",
            args![phone_number_id(), ws.as_str(), number.as_str(), provider.as_str(), assistant_id, name, ms(now)],
        )
        .await?;
    row.ok_or_else(|| number_taken(number))?.try_into()
}

pub async fn list_numbers(p: Pools<'_>, ws: &WorkspaceId) -> Result<Vec<PhoneNumberEntry>> {
    let rows: Vec<PhoneNumberRow> = p.read().fetch_all("SELECT * FROM phone_numbers WHERE workspace_id = $1 ORDER BY number", args![ws.as_str()]).await?;
    rows.into_iter().map(PhoneNumberEntry::try_from).collect()
}

pub async fn remove_number(p: Pools<'_>, ws: &WorkspaceId, number: &PhoneNumber) -> Result<bool> {
    let done = p.write().execute("DELETE FROM phone_numbers WHERE workspace_id = $1 AND number = $2", args![ws.as_str(), number.as_str()]).await?;
    Ok(done == 1)
}

/// Across workspaces: exact E.164 match.
pub async fn find_number(p: Pools<'_>, number: &str) -> Result<Option<PhoneNumberEntry>> {
    let row: Option<PhoneNumberRow> = p.read().fetch_optional("SELECT * FROM phone_numbers WHERE number = $1", args![number]).await?;
    row.map(PhoneNumberEntry::try_from).transpose()
}

/// What [`insert_call`] found or made.
pub enum Recorded {
    /// A call with this provider call id was recorded before (a repeated request).
    Existing(Call),
    /// Inserted now, status `ringing`: its orphaned events are still to be adopted.
    New(Call),
}

/// Records an inbound call to `e`'s number from `from`, inside the caller's transaction.
pub async fn insert_call(tx: &mut impl AsDb, e: &PhoneNumberEntry, pid: &str, from: &str, now: Timestamp) -> Result<Recorded> {
    let mut db = tx.as_db();
    let existing: Option<CallRow> = db.fetch_optional("SELECT * FROM calls WHERE provider_call_id = $1", args![pid]).await?;
    if let Some(row) = existing {
        return Ok(Recorded::Existing(row.try_into()?));
    }
    let campaign = inbound_campaign(&mut db, e, now).await?;
    let (contact, call) = (ContactId::new(), CallId::new());
    db.execute(
        "INSERT INTO contacts (id, workspace_id, campaign_id, phone, variables, status, attempts, next_attempt_at, inbound, created_at, updated_at)
         VALUES ($1, $2, $3, $4, '{}', 'in_call', 1, $5, TRUE, $5, $5)",
        args![contact.as_str(), e.workspace_id.as_str(), campaign.as_str(), from, ms(now)],
    )
    .await?;
    let row: CallRow = db
        .fetch_one(
            "INSERT INTO calls (id, workspace_id, campaign_id, contact_id, attempt, direction, provider, provider_call_id, phone, status,
                created_at, updated_at, last_event_at)
             VALUES ($1, $2, $3, $4, 1, 'inbound', $5, $6, $7, 'ringing', $8, $8, $8) RETURNING *",
            args![call.as_str(), e.workspace_id.as_str(), campaign.as_str(), contact.as_str(), e.provider.as_str(), pid, from, ms(now)],
        )
        .await?;
    Ok(Recorded::New(row.try_into()?))
}

/// A campaign's provider and assistant, to follow the number's.
#[derive(sqlx::FromRow)]
struct Answering {
    id: String,
    provider: String,
    assistant_id: String,
}

/// The hidden campaign holding the inbound calls to `e`'s number, created on first use
/// (two first calls at once on PostgreSQL: one insert wins, the other reads it); follows
/// the number's current provider and assistant.
async fn inbound_campaign(db: &mut Db<'_>, e: &PhoneNumberEntry, now: Timestamp) -> Result<CampaignId> {
    for _ in 0..2 {
        let found: Option<Answering> = db
            .fetch_optional(
                "SELECT id, provider, assistant_id FROM campaigns WHERE workspace_id = $1 AND phone_number_id = $2 AND kind = 'inbound'",
                args![e.workspace_id.as_str(), e.number.as_str()],
            )
            .await?;
        if let Some(found) = found {
            if found.provider != e.provider.as_str() || found.assistant_id != e.assistant_id {
                db.execute(
                    "UPDATE campaigns SET provider = $1, assistant_id = $2, updated_at = $3 WHERE id = $4",
                    args![e.provider.as_str(), &e.assistant_id, ms(now), &found.id],
                )
                .await?;
            }
            return Ok(CampaignId::from_db(found.id));
        }
        let id = CampaignId::new();
        let all_day = LocalHours::new(jiff::civil::Time::midnight(), jiff::civil::Time::midnight());
        let inserted = db
            .execute(
                "INSERT INTO campaigns (id, workspace_id, name, provider, assistant_id, phone_number_id, mode, max_concurrent, max_attempts,
                    retry_policy, default_region, schedule, calling_hours, kind, status, created_at, updated_at, started_at)
                 VALUES ($1, $2, $3, $4, $5, $6, 'continuous', 1, 1, $7, 'US', $8, $9, $10, 'dialing', $11, $11, $11)
                 ON CONFLICT (workspace_id, phone_number_id) WHERE kind = 'inbound' DO NOTHING",
                args![
                    id.as_str(),
                    e.workspace_id.as_str(),
                    inbound_campaign_name(e.number.as_str()),
                    e.provider.as_str(),
                    &e.assistant_id,
                    e.number.as_str(),
                    serde_json::to_string(&RetryPolicy::default()).expect("a retry policy serializes"),
                    serde_json::to_string(&Schedule::always("UTC")).expect("a schedule serializes"),
                    serde_json::to_string(&all_day).expect("hours serialize"),
                    INBOUND_KIND,
                    ms(now),
                ],
            )
            .await?;
        if inserted == 1 {
            return Ok(id);
        }
        // Someone else created it meanwhile (committed: ON CONFLICT waited for them); the
        // next statement sees it.
    }
    Err(StoreError::Conflict(format!("the inbound campaign for {} could not be created", e.number)))
}
