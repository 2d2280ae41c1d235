//! Recording an inbound call on PostgreSQL (the shared part: `crate::shared::inbound`).
//! What differs from SQLite is that an event for the call may be applied on another node
//! while the call is being recorded: both sides take the provider call id's advisory lock
//! first (see `events::lock_calls`).

use super::events;
use crate::shared::inbound::{insert_call, Recorded};
use crate::{Call, PhoneNumberEntry, Result, StoreError};
use jiff::Timestamp;
use sqlx::PgPool;

/// Records the call in one transaction, retried whole if PostgreSQL aborts it as a
/// deadlock victim (as event batches are).
pub async fn record_call(pool: &PgPool, e: &PhoneNumberEntry, pid: &str, from: &str, now: Timestamp) -> Result<Call> {
    let mut attempt = 1;
    loop {
        match try_record(pool, e, pid, from, now).await {
            Err(StoreError::Database(err)) if attempt < events::ATTEMPTS && events::is_retryable(&err) => {
                tracing::warn!(attempt, error = %err, "recording an inbound call aborted by PostgreSQL; retrying");
                attempt += 1;
            }
            other => return other,
        }
    }
}

async fn try_record(pool: &PgPool, e: &PhoneNumberEntry, pid: &str, from: &str, now: Timestamp) -> Result<Call> {
    let mut tx = pool.begin().await?;
    // First the id's lock: a batch storing an event for this id as an orphan has committed
    // (we adopt it below), or waits for us (and then finds the call).
    events::lock_provider_call_id(&mut tx, pid).await?;
    let call = match insert_call(&mut tx, e, pid, from, now).await? {
        Recorded::Existing(call) => return Ok(call),
        Recorded::New(call) => events::adopt_orphans(&mut tx, call, pid, now).await?,
    };
    tx.commit().await?;
    Ok(call)
}
