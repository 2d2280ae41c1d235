//! Do-not-call lists on PostgreSQL.

use super::rows::{self, ms};
use crate::common::suppression_id;
use crate::{Page, Result, Suppression};
use dialtone_core::{CampaignId, PhoneNumber, WorkspaceId};
use jiff::Timestamp;
use sqlx::PgPool;

pub async fn add(pool: &PgPool, ws: &WorkspaceId, campaign: Option<&CampaignId>, phones: &[PhoneNumber], reason: Option<&str>, now: Timestamp) -> Result<u64> {
    let mut tx = pool.begin().await?;
    let mut added = 0;
    for phone in phones {
        added += sqlx::query(
            "INSERT INTO suppressions (id, workspace_id, campaign_id, phone, reason, created_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT DO NOTHING",
        )
        .bind(suppression_id())
        .bind(ws.as_str())
        .bind(campaign.map(|c| c.as_str()))
        .bind(phone.as_str())
        .bind(reason)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(added)
}

pub async fn remove(pool: &PgPool, ws: &WorkspaceId, campaign: Option<&CampaignId>, phone: &PhoneNumber) -> Result<bool> {
    let done = sqlx::query("DELETE FROM suppressions WHERE workspace_id = $1 AND COALESCE(campaign_id, '') = $2 AND phone = $3")
        .bind(ws.as_str())
        .bind(campaign.map_or("", |c| c.as_str()))
        .bind(phone.as_str())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The suppressions that apply to `phone` in `campaign` (workspace-wide ones included).
pub async fn matching(pool: &PgPool, ws: &WorkspaceId, campaign: Option<&CampaignId>, phone: &PhoneNumber) -> Result<Vec<Suppression>> {
    sqlx::query("SELECT * FROM suppressions WHERE workspace_id = $1 AND phone = $2 AND (campaign_id IS NULL OR campaign_id = $3) ORDER BY id")
        .bind(ws.as_str())
        .bind(phone.as_str())
        .bind(campaign.map(|c| c.as_str()))
        .fetch_all(pool)
        .await?
        .iter()
        .map(rows::suppression)
        .collect()
}

pub async fn list(pool: &PgPool, ws: &WorkspaceId, campaign: Option<&CampaignId>, page: &Page) -> Result<Vec<Suppression>> {
    sqlx::query(
        "SELECT * FROM suppressions WHERE workspace_id = $1 AND COALESCE(campaign_id, '') = $2 AND ($3::text IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $4",
    )
    .bind(ws.as_str())
    .bind(campaign.map_or("", |c| c.as_str()))
    .bind(page.before.as_deref())
    .bind(page.limit as i64)
    .fetch_all(pool)
    .await?
    .iter()
    .map(rows::suppression)
    .collect()
}
