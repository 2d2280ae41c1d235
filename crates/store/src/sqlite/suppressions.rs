//! Do-not-call lists on SQLite.

use super::rows::{self, ms};
use crate::common::suppression_id;
use crate::{Page, Result, Suppression};
use dialtone_core::{CampaignId, PhoneNumber, WorkspaceId};
use jiff::Timestamp;
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

pub async fn add(pool: &SqlitePool, ws: &WorkspaceId, campaign: Option<&CampaignId>, phones: &[PhoneNumber], reason: Option<&str>, now: Timestamp) -> Result<u64> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut added = 0;
    for phone in phones {
        added += sqlx::query(
            "INSERT INTO suppressions (id, workspace_id, campaign_id, phone, reason, created_at) VALUES (?, ?, ?, ?, ?, ?)
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

pub async fn remove(pool: &SqlitePool, ws: &WorkspaceId, campaign: Option<&CampaignId>, phone: &PhoneNumber) -> Result<bool> {
    let done = sqlx::query("DELETE FROM suppressions WHERE workspace_id = ? AND COALESCE(campaign_id, '') = ? AND phone = ?")
        .bind(ws.as_str())
        .bind(campaign.map_or("", |c| c.as_str()))
        .bind(phone.as_str())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The suppressions that apply to `phone` in `campaign` (workspace-wide ones included).
pub async fn matching(pool: &SqlitePool, ws: &WorkspaceId, campaign: Option<&CampaignId>, phone: &PhoneNumber) -> Result<Vec<Suppression>> {
    sqlx::query(
        "SELECT * FROM suppressions WHERE workspace_id = ? AND phone = ? AND (campaign_id IS NULL OR campaign_id = ?) ORDER BY id",
    )
    .bind(ws.as_str())
    .bind(phone.as_str())
    .bind(campaign.map(|c| c.as_str()))
    .fetch_all(pool)
    .await?
    .iter()
    .map(suppression)
    .collect()
}

pub async fn list(pool: &SqlitePool, ws: &WorkspaceId, campaign: Option<&CampaignId>, page: &Page) -> Result<Vec<Suppression>> {
    sqlx::query(
        "SELECT * FROM suppressions WHERE workspace_id = ? AND COALESCE(campaign_id, '') = ? AND (? IS NULL OR id < ?)
         ORDER BY id DESC LIMIT ?",
    )
    .bind(ws.as_str())
    .bind(campaign.map_or("", |c| c.as_str()))
    .bind(page.before.as_deref())
    .bind(page.before.as_deref())
    .bind(page.limit as i64)
    .fetch_all(pool)
    .await?
    .iter()
    .map(suppression)
    .collect()
}

/// Inside the claim: is this contact's number suppressed for its campaign right now?
pub async fn is_suppressed(tx: &mut Transaction<'_, Sqlite>, ws: &str, campaign: &str, phone: &str) -> Result<bool> {
    let hit: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM suppressions WHERE phone = ? AND workspace_id = ? AND (campaign_id IS NULL OR campaign_id = ?) LIMIT 1",
    )
    .bind(phone)
    .bind(ws)
    .bind(campaign)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(hit.is_some())
}

fn suppression(r: &sqlx::sqlite::SqliteRow) -> Result<Suppression> {
    Ok(Suppression {
        id: r.try_get("id")?,
        campaign_id: r.try_get::<Option<String>, _>("campaign_id")?.map(CampaignId::from_db),
        phone: PhoneNumber::from_db(r.try_get("phone")?),
        reason: r.try_get("reason")?,
        created_at: rows::ts(r.try_get("created_at")?)?,
    })
}
