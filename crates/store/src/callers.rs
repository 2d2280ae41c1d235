//! Caller-ID pools and the per-number daily limit inside the claim (issue 13), written once
//! for both backends; the order of the pool is `dialtone_core::caller`.
//!
//! - A campaign with `caller_numbers` picks each contact's number at its first attempt and
//!   stores it on the contact (`contacts.caller_number`): every retry goes from it.
//! - A workspace with `caller_number_daily_limit` allows each number at most that many
//!   calls per UTC day, counted across all its campaigns in `caller_number_usage` (one row
//!   per workspace, number and day). A campaign without a pool counts its
//!   `phone_number_id` then. Hidden campaigns (single and inbound calls) are not counted.
//! - The count is raised in the claim's transaction by a conditional `UPDATE … WHERE calls
//!   < limit`, after [`Usage::lock`] took the rows (PostgreSQL: row locks, in one sorted
//!   order for the whole claim, so two claims never wait on each other in a cycle;
//!   SQLite: its one writer). No number goes over its limit, whatever the nodes do at once.
//! - A call counts when it is claimed: one released unsent still counts (never under).
//! - When every number a contact may use is at its limit, it waits (`wait_reason =
//!   caller_number_limit`) until the next UTC midnight, its attempt given back.

use crate::common::json;
use crate::sql::{args, Db};
use crate::{Result, StoreError};
use dialtone_core::caller::{candidates, local_area};
use dialtone_core::CallerStrategy;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use std::collections::HashMap;

/// The `wait_reason` of a contact held back by the daily limit.
pub const LIMIT_WAIT: &str = "caller_number_limit";

/// The UTC day of `now` (`YYYY-MM-DD`): the unit of the daily limit.
pub fn day_of(now: Timestamp) -> String {
    now.to_zoned(TimeZone::UTC).date().to_string()
}

/// The next UTC midnight after `now`: when a contact held by the limit is due again.
pub fn next_day(now: Timestamp) -> Result<Timestamp> {
    let date = now.to_zoned(TimeZone::UTC).date();
    let next = date.tomorrow().and_then(|d| d.to_zoned(TimeZone::UTC)).map_err(|e| StoreError::Corrupt(format!("no day after {date}: {e}")))?;
    Ok(next.timestamp())
}

/// Today's calls of the numbers a claim may use, their rows locked for the claim.
pub struct Usage {
    day: String,
    calls: HashMap<(String, String), i64>,
}

impl Usage {
    /// Makes sure each (workspace, number) of `keys` has today's row and takes it (a row
    /// lock on PostgreSQL, by a no-op `DO UPDATE`), in sorted order: every claim locks
    /// usage rows in the same order, after its campaign rows.
    pub async fn lock(mut db: Db<'_>, mut keys: Vec<(String, String)>, now: Timestamp) -> Result<Usage> {
        keys.sort_unstable();
        keys.dedup();
        let day = day_of(now);
        let mut calls = HashMap::with_capacity(keys.len());
        for (ws, number) in keys {
            let (n,): (i64,) = db
                .fetch_one(
                    "INSERT INTO caller_number_usage (workspace_id, number, day, calls) VALUES ($1, $2, $3, 0)
                     ON CONFLICT (workspace_id, number, day) DO UPDATE SET calls = caller_number_usage.calls RETURNING calls",
                    args![ws.as_str(), number.as_str(), day.as_str()],
                )
                .await?;
            calls.insert((ws, number), n);
        }
        Ok(Usage { day, calls })
    }
}

/// How one campaign's calls get their caller number in this claim.
pub struct Picker {
    ws: String,
    numbers: Vec<String>,
    areas: Vec<Option<(String, String)>>,
    strategy: CallerStrategy,
    fallback: CallerStrategy,
    limit: Option<i64>,
    cursor: u64,
    cursor_moved: bool,
}

/// What a campaign row says about its callers, as the claim reads it: borrowed from a row
/// of either backend by `CallerSettings::from_row` ([`sqlx::FromRow`]), which needs the
/// row's columns `workspace_id`, `kind`, `phone_number_id`, `caller_numbers`,
/// `caller_number_strategy`, `fallback_strategy`, `caller_cursor` and `caller_limit`
/// (the workspace's limit, joined in by the claim's query); a missing column or a value of
/// another type is a [`sqlx::Error`].
#[derive(sqlx::FromRow)]
pub struct CallerSettings<'a> {
    pub workspace_id: &'a str,
    /// `campaigns.kind`: only a `campaign` has callers to pick.
    pub kind: &'a str,
    pub phone_number_id: &'a str,
    /// `campaigns.caller_numbers` (JSON array).
    pub caller_numbers: &'a str,
    /// `campaigns.caller_number_strategy`.
    #[sqlx(rename = "caller_number_strategy")]
    pub strategy: &'a str,
    /// `campaigns.fallback_strategy`.
    #[sqlx(rename = "fallback_strategy")]
    pub fallback: &'a str,
    /// `campaigns.caller_cursor`: where round-robin goes on from.
    #[sqlx(rename = "caller_cursor")]
    pub cursor: i64,
    /// The workspace's `caller_number_daily_limit`.
    #[sqlx(rename = "caller_limit")]
    pub limit: Option<i64>,
}

impl Picker {
    /// `None` when the campaign's calls go from `phone_number_id` unrecorded: no pool, and
    /// no daily limit in its workspace (or a hidden campaign).
    pub fn of(s: &CallerSettings<'_>) -> Result<Option<Picker>> {
        if s.kind != dialtone_core::CampaignKind::Campaign.as_str() {
            return Ok(None);
        }
        let pool: Vec<String> = json(s.caller_numbers, "caller_numbers")?;
        if pool.is_empty() && s.limit.is_none() {
            return Ok(None);
        }
        let numbers = if pool.is_empty() { vec![s.phone_number_id.to_string()] } else { pool };
        Ok(Some(Picker {
            ws: s.workspace_id.to_string(),
            areas: numbers.iter().map(|n| local_area(n)).collect(),
            numbers,
            strategy: crate::common::parse(s.strategy)?,
            fallback: crate::common::parse(s.fallback)?,
            limit: s.limit,
            cursor: s.cursor.max(0) as u64,
            cursor_moved: false,
        }))
    }

    /// The usage rows this campaign may raise.
    pub fn keys(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.numbers.iter().map(|n| (self.ws.clone(), n.clone()))
    }

    /// The number for a claimed contact that goes to `callee` and kept `kept` from its
    /// first attempt: `kept` while it is still in the pool, else one picked by the
    /// strategy. Raises that number's count for today; `None` when every number the
    /// contact may use is at the limit (the contact waits).
    pub async fn pick(&mut self, mut db: Db<'_>, usage: &mut Usage, kept: Option<&str>, callee: &str) -> Result<Option<String>> {
        let kept_at = kept.and_then(|k| self.numbers.iter().position(|n| n == k));
        let fresh = kept_at.is_none();
        let order: Vec<usize> = match kept_at {
            Some(i) => vec![i],
            None => {
                let used: Vec<i64> = self.numbers.iter().map(|n| usage.calls.get(&(self.ws.clone(), n.clone())).copied().unwrap_or(0)).collect();
                candidates(self.strategy, self.fallback, local_area(callee).as_ref(), &self.areas, &used, self.cursor)
            }
        };
        for i in order {
            let key = (self.ws.clone(), self.numbers[i].clone());
            let used = usage.calls.get(&key).copied().unwrap_or(0);
            if self.limit.is_some_and(|l| used >= l) {
                continue;
            }
            // The conditional UPDATE is what holds the limit; the count above only spares
            // a statement that would change nothing.
            let raised = db
                .execute(
                    "UPDATE caller_number_usage SET calls = calls + 1
                     WHERE workspace_id = $1 AND number = $2 AND day = $3 AND ($4 IS NULL OR calls < $4)",
                    args![key.0.as_str(), key.1.as_str(), usage.day.as_str(), self.limit],
                )
                .await?;
            if raised == 1 {
                usage.calls.insert(key, used + 1);
                if fresh {
                    self.cursor = i as u64 + 1;
                    self.cursor_moved = true;
                }
                return Ok(Some(self.numbers[i].clone()));
            }
            usage.calls.insert(key, self.limit.unwrap_or(used));
        }
        Ok(None)
    }

    /// Stores the round-robin position for the next claim (if it moved).
    pub async fn save(&self, mut db: Db<'_>, campaign: &str) -> Result<()> {
        if self.cursor_moved {
            db.execute("UPDATE campaigns SET caller_cursor = $1 WHERE id = $2", args![self.cursor as i64, campaign]).await?;
        }
        Ok(())
    }
}

/// Keeps the number a contact's attempt used for its retries: called when the number was
/// picked anew (its first attempt, or its kept number left the pool).
pub async fn keep(mut db: Db<'_>, contact: &str, number: &str) -> Result<()> {
    db.execute("UPDATE contacts SET caller_number = $1 WHERE id = $2", args![number, contact]).await?;
    Ok(())
}

/// How many calls a throttled campaign may still place now: `per_minute` less the calls
/// it created in the last 60 s (a rolling window; read in the claim's transaction, after
/// the campaign's lock, so claims on several nodes see each other's calls).
pub async fn throttle_room(mut db: Db<'_>, campaign: &str, per_minute: i64, now: Timestamp) -> Result<u32> {
    let since = crate::common::ms(now) - 60_000;
    let (recent,): (i64,) = db.fetch_one("SELECT COUNT(*) FROM calls WHERE campaign_id = $1 AND created_at > $2", args![campaign, since]).await?;
    Ok((per_minute - recent).max(0) as u32)
}
