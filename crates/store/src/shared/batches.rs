//! Batches: campaigns made whole by one `POST /api/v1/batches` (the campaign row, flagged
//! `batch`, and its contacts in one transaction), started at once. They run as any
//! campaign does (caps, calling hours, retries, DNC); only the listing is their own.

use super::campaigns::{campaign_event, insert_campaign, insert_chunk, key, INSERT_CHUNK};
use super::outbox::emit;
use super::Pools;
use crate::common::ms;
use crate::rows::CampaignRow;
use crate::sql::args;
use crate::{Campaign, NewCampaign, NewContact, Page, Result, StoreError};
use dialtone_core::{CampaignStatus, WorkspaceId};
use jiff::Timestamp;
use std::collections::HashSet;

/// Creates the batch's campaign in `starting` with `contacts` as its pending contacts, all
/// due at `start_at` (or now), and its `campaign.started` event (a batch starts when it is
/// made, as a draft does when it is started), in one transaction: a failure stores nothing.
///
/// Errors: [`StoreError::Conflict`] if two contacts share a number and extension (the
/// caller checks this first and reports them by index; this is the backstop).
pub async fn create(p: Pools<'_>, new: NewCampaign, contacts: &[NewContact], start_at: Option<Timestamp>, now: Timestamp) -> Result<Campaign> {
    let mut seen = HashSet::with_capacity(contacts.len());
    if let Some(c) = contacts.iter().find(|c| !seen.insert(key(c))) {
        return Err(StoreError::Conflict(format!("{} is in the batch twice", c.phone)));
    }
    let mut tx = p.begin().await?;
    let mut db = tx.db();
    let campaign = insert_campaign(db.by_ref(), &new, CampaignStatus::Starting, true, now).await?;
    let all: Vec<&NewContact> = contacts.iter().collect();
    for chunk in all.chunks(INSERT_CHUNK) {
        insert_chunk(db.by_ref(), &new.workspace_id, &campaign.id, chunk, now).await?;
    }
    let mut campaign = campaign;
    if let Some(at) = start_at.filter(|at| *at > now) {
        db.execute("UPDATE contacts SET next_attempt_at = $1 WHERE campaign_id = $2", args![ms(at), campaign.id.as_str()]).await?;
        // Kept to be echoed: the API shows the batch `scheduled` until then.
        db.execute("UPDATE campaigns SET start_at = $1 WHERE id = $2", args![ms(at), campaign.id.as_str()]).await?;
        campaign.start_at = Some(at);
    }
    let started = campaign_event(new.workspace_id.as_str(), campaign.id.as_str(), "campaign.started", CampaignStatus::Starting.as_str());
    emit(&mut db, &[started], now).await?;
    tx.commit().await?;
    Ok(campaign)
}

/// The workspace's batches, newest first (keyset pages on the id), archived ones included.
pub async fn list(p: Pools<'_>, ws: &WorkspaceId, page: &Page) -> Result<Vec<Campaign>> {
    let rows: Vec<CampaignRow> = p
        .read()
        .fetch_all(
            "SELECT * FROM campaigns WHERE workspace_id = $1 AND batch AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
            args![ws.as_str(), page.before.as_deref(), page.limit],
        )
        .await?;
    rows.into_iter().map(Campaign::try_from).collect()
}
