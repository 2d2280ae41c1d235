//! What every backend converts and decides the same way: the text/integer edge of a row,
//! and the pure decisions a claim or an ended call makes. Kept out of the backends so
//! SQLite and PostgreSQL cannot drift apart.

use crate::{Result, StoreError};
use dialtone_core::schedule::{next_open_for, LocalHours, Schedule};
use dialtone_core::{CallStatus, EventKind, Outcome, PhoneNumber, RetryPolicy};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use std::str::FromStr;

/// Ends the `scheduled` call row of contact `$2` as `canceled`, reason `dnc`, at `$1`:
/// its number was put on a do-not-call list after the single call was scheduled.
/// (PostgreSQL does the same for a batch of contacts in its claim.)
pub const CANCEL_SCHEDULED_DNC_SQL: &str =
    "UPDATE calls SET status = 'canceled', outcome = 'canceled', ended_reason = 'dnc', ended_at = $1, updated_at = $1
     WHERE contact_id = $2 AND status = 'scheduled'";

/// Active call states, as SQL text: they hold a concurrency slot.
pub const ACTIVE_SQL: &str = "('queued', 'dialing', 'ringing', 'in_progress')";

pub fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

pub fn ts(ms: i64) -> Result<Timestamp> {
    Timestamp::from_millisecond(ms).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub fn opt_ts(v: Option<i64>) -> Result<Option<Timestamp>> {
    v.map(ts).transpose()
}

/// Adds one row of a campaign's counts query to `counts`: `kind` is `contact` or `call`,
/// `outcome` is set on ended calls only.
pub fn add_count(counts: &mut crate::CampaignCounts, kind: &str, status: String, outcome: Option<String>, n: u64) -> Result<()> {
    if kind == "contact" {
        counts.contacts.insert(status, n);
        return Ok(());
    }
    if parse::<CallStatus>(&status)?.is_active() {
        counts.active_calls += n;
    }
    if let Some(outcome) = outcome {
        *counts.outcomes.entry(outcome).or_default() += n;
    }
    *counts.calls.entry(status).or_default() += n;
    Ok(())
}

pub fn parse<T: FromStr>(s: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e: T::Err| StoreError::Corrupt(e.to_string()))
}

pub fn opt_parse<T: FromStr>(s: Option<String>) -> Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    s.as_deref().map(parse).transpose()
}

pub fn json_map(s: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub fn json<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

pub fn retry_policy(s: &str) -> Result<RetryPolicy> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("retry policy: {e}")))
}

/// How an event is recorded in `call_events.kind`.
pub fn kind_text(kind: &EventKind) -> String {
    match kind {
        EventKind::Progress(s) => s.as_str().to_string(),
        EventKind::Ended { outcome, .. } => format!("ended:{outcome}"),
        EventKind::Info => "info".to_string(),
    }
}

/// The inverse of [`kind_text`], for an event stored before its call was known (an
/// orphan) and applied later: `None` for a kind no provider event has (engine notes).
/// An `ended:` kind comes back without its raw reason (see [`payload_extras`]).
pub fn kind_from_text(kind: &str) -> Option<EventKind> {
    if kind == "info" {
        return Some(EventKind::Info);
    }
    if let Some(outcome) = kind.strip_prefix("ended:") {
        return outcome.parse::<Outcome>().ok().map(|outcome| EventKind::Ended { outcome, reason: None });
    }
    kind.parse::<CallStatus>().ok().map(EventKind::Progress)
}

/// What an orphan's stored raw payload still tells (the parsed event is gone): the cost and
/// the provider's ended reason, read from the top level or a Vapi-style `message` object.
pub fn payload_extras(payload: &serde_json::Value) -> (Option<f64>, Option<String>) {
    let field = |name: &str| payload.get("message").and_then(|m| m.get(name)).or_else(|| payload.get(name));
    let cost = field("cost").and_then(|v| v.as_f64());
    let reason = field("endedReason").and_then(|v| v.as_str()).map(str::to_string);
    (cost, reason)
}

/// The heartbeat a node's lease needs to be alive at `now`: anything older (in ms) is
/// stale, and the node's unsent calls may be taken over.
pub fn lease_cutoff(now: Timestamp, lease: std::time::Duration) -> i64 {
    ms(now).saturating_sub(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
}

/// The NOTIFY channel nodes wake each other's dispatchers on.
pub const WAKE_CHANNEL: &str = "dialtone_wake";

/// The campaign kind behind inbound calls: one hidden campaign per (workspace, our number).
pub const INBOUND_KIND: &str = "inbound";

pub fn inbound_campaign_name(number: &str) -> String {
    format!("inbound calls to {number}")
}

/// A phone number entry id: the core id scheme under `num_`.
pub fn phone_number_id() -> String {
    format!("num_{}", dialtone_core::EventId::new().as_str().trim_start_matches("evt_"))
}

pub fn number_taken(number: &PhoneNumber) -> StoreError {
    StoreError::Conflict(format!("phone number {number} is already registered"))
}

pub fn duplicate_reason(phone: &PhoneNumber, extension: Option<&dialtone_core::Extension>) -> String {
    match extension {
        Some(ext) => format!("duplicate: {phone} extension {ext} is already in this campaign"),
        None => format!("duplicate: {phone} is already in this campaign"),
    }
}

/// The `contacts.extension` column: digits, or '' for none (it is part of the unique key).
pub fn extension_db(extension: Option<&dialtone_core::Extension>) -> &str {
    extension.map_or("", |e| e.as_str())
}

/// Reads `contacts.extension` back ('' is none).
pub fn extension_of(db: String) -> Option<dialtone_core::Extension> {
    (!db.is_empty()).then(|| dialtone_core::Extension::from_db(db))
}

/// A do-not-call list id: the core id scheme (time-sortable, lower case) under `dnc_`.
pub fn suppression_id() -> String {
    format!("dnc_{}", dialtone_core::EventId::new().as_str().trim_start_matches("evt_"))
}

/// The zone a contact's hours and periods are judged in: its own, else its campaign's,
/// else UTC.
pub fn contact_zone(zone: Option<&str>, schedule: &Schedule) -> TimeZone {
    zone.and_then(|z| TimeZone::get(z).ok()).or_else(|| schedule.time_zone().ok()).unwrap_or(TimeZone::UTC)
}

/// The claim-time check of a recipient's own calling hours, judged in their zone.
/// `None`: dial now. `Some(next)`: put the contact back until `next` without spending the
/// attempt; `Some(None)`: it will never be open again (exhausted).
pub fn recipient_hold(schedule: &Schedule, hours: &LocalHours, zone: Option<&str>, now: Timestamp) -> Option<Option<Timestamp>> {
    let tz = contact_zone(zone, schedule);
    if hours.is_open(&tz, now) {
        None
    } else {
        Some(next_open_for(schedule, hours, &tz, now))
    }
}

/// The account-wide part of a claim: the account's free slots, capped at a fair share
/// (`limit` split between the `sharing` campaigns that want slots now) minus what this
/// campaign already holds.
pub fn account_room(limit: i64, account_active: i64, sharing: i64, campaign_active: i64) -> u32 {
    let share = (limit + sharing.max(1) - 1) / sharing.max(1);
    (limit - account_active).min(share - campaign_active).max(0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_from_text_inverts_kind_text() {
        let kinds = [
            EventKind::Progress(CallStatus::Dialing),
            EventKind::Progress(CallStatus::Ringing),
            EventKind::Progress(CallStatus::InProgress),
            EventKind::Progress(CallStatus::Queued),
            EventKind::Ended { outcome: Outcome::Busy, reason: None },
            EventKind::Ended { outcome: Outcome::InvalidNumber, reason: None },
            EventKind::Info,
        ];
        for k in kinds {
            assert_eq!(kind_from_text(&kind_text(&k)), Some(k.clone()), "{k:?}");
        }
        assert_eq!(kind_from_text("released"), None);
        assert_eq!(kind_from_text("ended:nonsense"), None);
    }

    #[test]
    fn payload_extras_reads_cost_and_reason_at_top_level_or_under_message() {
        let vapi = serde_json::json!({"message": {"type": "end-of-call-report", "cost": 0.02, "endedReason": "customer-ended-call"}});
        assert_eq!(payload_extras(&vapi), (Some(0.02), Some("customer-ended-call".into())));
        assert_eq!(payload_extras(&serde_json::json!({"cost": 1})), (Some(1.0), None));
        assert_eq!(payload_extras(&serde_json::json!("x")), (None, None));
    }
}

/// Ended reasons by which a provider says the account was full when the call should have
/// started: placement slows down, and the attempt is not spent.
pub const CAPACITY_REASONS: &[&str] = &["call.start.error-subscription-concurrency-limit-reached"];

/// How long a contact waits after its call was refused for capacity.
pub const CAPACITY_RETRY_MS: i64 = 5_000;

pub fn is_capacity_refusal(kind: &EventKind) -> bool {
    matches!(kind, EventKind::Ended { reason: Some(r), .. } if CAPACITY_REASONS.contains(&r.as_str()))
}
