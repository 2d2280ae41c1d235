//! Recording an inbound call on SQLite (the shared part: `crate::shared::inbound`). One
//! writer: no extra locking is needed against events racing the record.

use super::events;
use crate::shared::inbound::{insert_call, Recorded};
use crate::{Call, PhoneNumberEntry, Result};
use jiff::Timestamp;
use sqlx::SqlitePool;

pub async fn record_call(pool: &SqlitePool, e: &PhoneNumberEntry, pid: &str, from: &str, now: Timestamp) -> Result<Call> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let call = match insert_call(&mut tx, e, pid, from, now).await? {
        Recorded::Existing(call) => return Ok(call),
        Recorded::New(call) => events::adopt_orphans(&mut tx, call, pid, now).await?,
    };
    tx.commit().await?;
    Ok(call)
}
