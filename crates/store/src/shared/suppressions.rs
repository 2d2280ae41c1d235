//! Do-not-call lists: a suppression is workspace-wide (`campaign_id` NULL) or for one
//! campaign; one per (workspace, campaign or none, phone).

use super::Pools;
use crate::common::{ms, suppression_id};
use crate::rows::SuppressionRow;
use crate::sql::args;
use crate::{Page, Result, Suppression};
use dialtone_core::{CampaignId, PhoneNumber, WorkspaceId};
use jiff::Timestamp;

/// Lists `phones` in one transaction; returns how many were not listed already.
pub async fn add(p: Pools<'_>, ws: &WorkspaceId, campaign: Option<&CampaignId>, phones: &[PhoneNumber], reason: Option<&str>, now: Timestamp) -> Result<u64> {
    let mut tx = p.begin().await?;
    let mut db = tx.db();
    let mut added = 0;
    for phone in phones {
        added += db
            .execute(
                "INSERT INTO suppressions (id, workspace_id, campaign_id, phone, reason, created_at) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT DO NOTHING",
                args![suppression_id(), ws.as_str(), campaign.map(|c| c.as_str()), phone.as_str(), reason, ms(now)],
            )
            .await?;
    }
    tx.commit().await?;
    Ok(added)
}

/// False if `phone` was not on that list.
pub async fn remove(p: Pools<'_>, ws: &WorkspaceId, campaign: Option<&CampaignId>, phone: &PhoneNumber) -> Result<bool> {
    let done = p
        .write()
        .execute(
            "DELETE FROM suppressions WHERE workspace_id = $1 AND COALESCE(campaign_id, '') = $2 AND phone = $3",
            args![ws.as_str(), campaign.map_or("", |c| c.as_str()), phone.as_str()],
        )
        .await?;
    Ok(done > 0)
}

/// The suppressions that apply to `phone` in `campaign` (workspace-wide ones included).
pub async fn matching(p: Pools<'_>, ws: &WorkspaceId, campaign: Option<&CampaignId>, phone: &PhoneNumber) -> Result<Vec<Suppression>> {
    let rows: Vec<SuppressionRow> = p
        .read()
        .fetch_all(
            "SELECT * FROM suppressions WHERE workspace_id = $1 AND phone = $2 AND (campaign_id IS NULL OR campaign_id = $3) ORDER BY id",
            args![ws.as_str(), phone.as_str(), campaign.map(|c| c.as_str())],
        )
        .await?;
    rows.into_iter().map(Suppression::try_from).collect()
}

/// One list (`campaign` None: the workspace-wide one), newest first.
pub async fn list(p: Pools<'_>, ws: &WorkspaceId, campaign: Option<&CampaignId>, page: &Page) -> Result<Vec<Suppression>> {
    let rows: Vec<SuppressionRow> = p
        .read()
        .fetch_all(
            "SELECT * FROM suppressions WHERE workspace_id = $1 AND COALESCE(campaign_id, '') = $2 AND ($3 IS NULL OR id < $3)
             ORDER BY id DESC LIMIT $4",
            args![ws.as_str(), campaign.map_or("", |c| c.as_str()), page.before.as_deref(), page.limit],
        )
        .await?;
    rows.into_iter().map(Suppression::try_from).collect()
}

/// Whether the number of the contact row `contact` (a table name or alias: its `phone`,
/// `workspace_id`, `campaign_id`) is on a do-not-call list that reaches it: its workspace's
/// (`campaign_id IS NULL`) or its campaign's. A boolean SQL expression, for a claim's
/// `RETURNING` (both backends), so the check costs no statement of its own.
pub fn suppressed_sql(contact: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM suppressions s WHERE s.phone = {contact}.phone AND s.workspace_id = {contact}.workspace_id
                AND (s.campaign_id IS NULL OR s.campaign_id = {contact}.campaign_id))"
    )
}
