//! What every backend converts and decides the same way: the text/integer edge of a row,
//! and the pure decisions a claim or an ended call makes. Kept out of the backends so
//! SQLite and PostgreSQL cannot drift apart.

use crate::model::WaitReason;
use crate::{Result, StoreError};
use dialtone_core::call::CallFacts;
use dialtone_core::schedule::{next_open_in_all, LocalHours, Schedule};
use dialtone_core::{AnsweredBy, CallStatus, ContactZone, EventKind, Outcome, PhoneNumber, ProviderEvent, RetryPolicy, TzSource};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use std::str::FromStr;

/// Ends the `scheduled` call row of contact `$2` as `canceled`, reason `dnc`, at `$1`:
/// its number was put on a do-not-call list after the single call was scheduled.
/// (PostgreSQL does the same for a batch of contacts in its claim.)
pub const CANCEL_SCHEDULED_DNC_SQL: &str = "UPDATE calls SET status = 'canceled', outcome = 'canceled', ended_reason = 'dnc', ended_at = $1, updated_at = $1
     WHERE contact_id = $2 AND status = 'scheduled'";

/// Active call states, as an SQL list literal; a macro so that constant statements can
/// `concat!` it. The same list is the predicate of the live calls' partial indexes.
macro_rules! active_sql {
    () => {
        "('queued', 'dialing', 'ringing', 'in_progress')"
    };
}

/// Active call states, as SQL text: they hold a concurrency slot.
pub const ACTIVE_SQL: &str = active_sql!();

/// The number of live calls of campaign `$1` (the slots it holds), read from the partial
/// index `calls_active` alone (migration 0031).
pub const LIVE_IN_CAMPAIGN_SQL: &str = concat!("SELECT COUNT(*) FROM calls WHERE campaign_id = $1 AND status IN ", active_sql!());

/// Every live call, for the gauge of calls in flight.
pub const LIVE_COUNT_SQL: &str = concat!("SELECT COUNT(*) FROM calls WHERE status IN ", active_sql!());

/// Live calls with no event since `$1` (ms), quietest first, at most `$2`.
pub const STUCK_SQL: &str = concat!("SELECT * FROM calls WHERE status IN ", active_sql!(), " AND last_event_at < $1 ORDER BY last_event_at LIMIT $2");

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
        EventKind::Amd { answered_by } => format!("amd:{answered_by}"),
        EventKind::Voice { outcome } => format!("voice:{outcome}"),
    }
}

/// The inverse of [`kind_text`], for an event stored before its call was known (an
/// orphan) and applied later: `None` for a kind no provider event has (engine notes).
/// An `ended:` kind comes back without its raw reason (see [`payload_extras`]).
pub fn kind_from_text(kind: &str) -> Option<EventKind> {
    if kind == "info" {
        return Some(EventKind::Info);
    }
    if let Some(verdict) = kind.strip_prefix("amd:") {
        return verdict.parse::<AnsweredBy>().ok().map(|answered_by| EventKind::Amd { answered_by });
    }
    if let Some(outcome) = kind.strip_prefix("voice:") {
        return outcome.parse::<Outcome>().ok().map(|outcome| EventKind::Voice { outcome });
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

/// The facts the event rules (`dialtone_core::call::effect`) judge a call by.
pub fn facts(call: &crate::Call) -> CallFacts {
    CallFacts { status: call.status, outcome: call.outcome, answered_by: call.answered_by, answered: call.answered_at.is_some() }
}

/// Which call an event is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Apply it to this call.
    Call(String),
    /// Its provider call id and our id name different calls: store it with this call (the
    /// one its provider id names, else the one our id names), marked mismatched, and
    /// apply it to neither.
    Mismatch(String),
    /// No call of ours: stored with no call (an orphan until a call takes its provider id).
    Unknown,
}

/// Decides which call `e` is for, from the call its provider call id names (`by_pid`:
/// that call's id) and, when no call has that provider id, the call our id names
/// (`by_id`). The provider id wins: it is the provider's own name for the call, while our
/// id rides in metadata that a copied assistant, a reused callback URL or a bug could get
/// wrong. So an event whose provider id belongs to one call and whose metadata names
/// another must not move either: it is kept for the record only. A provider id that
/// belongs to no call outvotes nothing, and our id finds the call: the normal case of a
/// webhook that beat the provider's answer (and the provider's other ids for the same
/// call, which the API documents as matched by our id alone).
pub fn target(e: &ProviderEvent, by_pid: Option<&str>, by_id: Option<&str>) -> Target {
    if let Some(owner) = by_pid {
        return match &e.call_id {
            Some(ours) if ours.as_str() != owner => Target::Mismatch(owner.to_string()),
            _ => Target::Call(owner.to_string()),
        };
    }
    by_id.map_or(Target::Unknown, |id| Target::Call(id.to_string()))
}

/// Logs an event whose ids disagree (see [`target`]); it is stored, not applied.
pub fn log_mismatch(e: &ProviderEvent, stored_with: &str) {
    tracing::warn!(provider_call_id = e.provider_call_id.as_deref().unwrap_or_default(),
        named_call_id = e.call_id.as_ref().map(|c| c.as_str()).unwrap_or_default(), stored_with,
        dedupe_key = %e.dedupe_key, "event's provider call id and call id name different calls: stored, not applied");
}

/// The heartbeat a node's lease needs to be alive at `now`: anything older (in ms) is
/// stale, and the node's unsent calls may be taken over.
pub fn lease_cutoff(now: Timestamp, lease: std::time::Duration) -> i64 {
    ms(now).saturating_sub(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
}

/// The NOTIFY channel nodes wake each other's dispatchers on.
pub const WAKE_CHANNEL: &str = "dialtone_wake";

/// The campaign kind behind inbound calls: one hidden campaign per (workspace, our number).
pub const INBOUND_KIND: &str = dialtone_core::CampaignKind::Inbound.as_str();

pub fn inbound_campaign_name(number: &str) -> String {
    format!("inbound calls to {number}")
}

/// A new phone number entry id (`num_…`), as stored.
pub fn phone_number_id() -> String {
    dialtone_core::PhoneNumberId::new().to_string()
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

/// A new do-not-call entry id (`dnc_…`), as stored.
pub fn suppression_id() -> String {
    dialtone_core::SuppressionId::new().to_string()
}

/// The zone a contact's hours and periods are judged in: its own, else its campaign's,
/// else UTC.
pub fn contact_zone(zone: Option<&str>, schedule: &Schedule) -> TimeZone {
    zone.and_then(|z| TimeZone::get(z).ok()).or_else(|| schedule.time_zone().ok()).unwrap_or(TimeZone::UTC)
}

/// The `contacts.timezones` column: the candidate zones, comma-separated, for an ambiguous
/// contact only (see the `contact_zones` migrations).
pub fn timezones_column(zone: Option<&ContactZone>) -> Option<String> {
    zone.filter(|z| z.is_ambiguous()).map(|z| z.timezones.join(","))
}

/// The `contacts.timezone_source` column: NULL for an ambiguous contact, whose source is
/// told by `timezones` (the column's CHECK predates the value).
pub fn timezone_source_column(zone: Option<&ContactZone>) -> Option<&'static str> {
    zone.filter(|z| !z.is_ambiguous()).map(|z| z.source.as_str())
}

/// A contact's `timezone_source` and candidate zones, read back from its three columns.
pub fn read_zones(timezone: Option<&str>, source: Option<&str>, timezones: Option<&str>) -> Result<(Option<TzSource>, Vec<String>)> {
    match timezones.filter(|t| !t.is_empty()) {
        Some(list) => Ok((Some(TzSource::Ambiguous), list.split(',').map(str::to_string).collect())),
        None => Ok((opt_parse(source.map(str::to_string))?, timezone.map(str::to_string).into_iter().collect())),
    }
}

/// The zones a contact's hours, periods and retries are judged in: every candidate of an
/// ambiguous contact (or, when its campaign opted in with
/// `assume_campaign_timezone_for_ambiguous`, the campaign's zone instead), else its one zone
/// as [`contact_zone`] finds it. Never empty.
pub fn contact_zones(timezone: Option<&str>, timezones: Option<&str>, schedule: &Schedule, assume_campaign_tz: bool) -> Vec<TimeZone> {
    let Some(list) = timezones.filter(|t| !t.is_empty()) else {
        return vec![contact_zone(timezone, schedule)];
    };
    if assume_campaign_tz {
        return vec![contact_zone(None, schedule)];
    }
    // A candidate the host's tzdb cannot load is stood in for by the campaign's zone rather
    // than dropped: dropping it could let a call through at night there.
    let mut zones: Vec<TimeZone> = list.split(',').map(|z| contact_zone(Some(z), schedule)).collect();
    zones.dedup();
    zones
}

/// When a single call's next occurrence or retry (`next_at`) will really be placed: moved
/// into its hidden campaign's calling hours in every zone the recipient may be in (08:00–21:00
/// with `respect_business_hours`, else round the clock, which moves nothing), so that the
/// scheduled call shows that time. Campaign contacts keep `next_at`: the claim holds them.
pub fn single_call_due(kind: &str, next_at: Timestamp, schedule: &Schedule, hours: &str, zones: &[TimeZone]) -> Result<Timestamp> {
    if kind != dialtone_core::CampaignKind::SingleCalls.as_str() {
        return Ok(next_at);
    }
    let hours: LocalHours = json(hours, "calling_hours")?;
    Ok(next_open_in_all(schedule, &hours, zones, next_at).unwrap_or(next_at))
}

/// How long a contact whose zones share no calling hour waits before the claim looks again
/// (nothing else wakes it: the answer changes only with the tzdb or the contact's data).
pub const NO_COMMON_HOURS_RECHECK_MS: i64 = 24 * 3_600_000;

/// Why the claim put a contact back instead of calling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Not inside the calling hours in every zone now: pending again at this instant, the
    /// earliest that is (and the campaign's schedule is open).
    Until(Timestamp),
    /// Its zones never share a moment inside the calling hours: pending, looked at again at
    /// this instant, never called meanwhile.
    NoCommonHours(Timestamp),
    /// Its hours never meet the campaign's schedule, which still opens (a schedule and
    /// hours that exclude each other, e.g. 20:00–24:00 UTC against 08:00–12:00 in New
    /// York): pending, looked at again at this instant, never called meanwhile. A
    /// misconfiguration the user can fix by PATCHing the campaign, so the contact is kept.
    OutsideSchedule(Timestamp),
    /// The campaign's schedule never opens again (it has ended): exhausted.
    Never,
}

impl Hold {
    /// The contact's status after the hold.
    pub fn status(self) -> &'static str {
        match self {
            Hold::Until(_) | Hold::NoCommonHours(_) | Hold::OutsideSchedule(_) => "pending",
            Hold::Never => "exhausted",
        }
    }

    /// When it is due again; `None` leaves `next_attempt_at` as it was.
    pub fn next(self) -> Option<Timestamp> {
        match self {
            Hold::Until(t) | Hold::NoCommonHours(t) | Hold::OutsideSchedule(t) => Some(t),
            Hold::Never => None,
        }
    }

    /// The `contacts.wait_reason` it leaves.
    pub fn reason(self) -> Option<WaitReason> {
        match self {
            Hold::Until(_) => Some(WaitReason::CallingHours),
            Hold::NoCommonHours(_) => Some(WaitReason::NoCommonHours),
            Hold::OutsideSchedule(_) => Some(WaitReason::HoursOutsideSchedule),
            Hold::Never => None,
        }
    }
}

/// The claim-time check of a recipient's own calling hours, judged in every zone it may be
/// in. `None`: dial now. Otherwise the contact goes back without spending the attempt.
pub fn recipient_hold(schedule: &Schedule, hours: &LocalHours, zones: &[TimeZone], now: Timestamp) -> Option<Hold> {
    if hours.is_open_in_all(zones, now) {
        return None;
    }
    Some(match next_open_in_all(schedule, hours, zones, now) {
        Some(at) => Hold::Until(at),
        // Told apart from a schedule that closes for good: the hours alone never meet.
        None if zones.len() > 1 && hours.next_open_in_all(zones, now).is_none() => {
            Hold::NoCommonHours(Timestamp::from_millisecond(ms(now).saturating_add(NO_COMMON_HOURS_RECHECK_MS)).unwrap_or(now))
        }
        None if schedule.next_open(now).is_some() => {
            Hold::OutsideSchedule(Timestamp::from_millisecond(ms(now).saturating_add(NO_COMMON_HOURS_RECHECK_MS)).unwrap_or(now))
        }
        None => Hold::Never,
    })
}

/// The account-wide part of a claim: the account's free slots, capped at a fair share
/// (`limit` split between the `sharing` campaigns that want slots now) minus what this
/// campaign already holds.
pub fn account_room(limit: i64, account_active: i64, sharing: i64, campaign_active: i64) -> u32 {
    let share = (limit + sharing.max(1) - 1) / sharing.max(1);
    (limit - account_active).min(share - campaign_active).max(0) as u32
}

/// Ended reasons by which a provider says the account was full when the call should have
/// started: placement slows down, and the attempt is not spent.
pub const CAPACITY_REASONS: &[&str] = &["call.start.error-subscription-concurrency-limit-reached"];

/// How long a contact waits after its call was refused for capacity.
pub const CAPACITY_RETRY_MS: i64 = 5_000;

pub fn is_capacity_refusal(kind: &EventKind) -> bool {
    matches!(kind, EventKind::Ended { reason: Some(r), .. } if CAPACITY_REASONS.contains(&r.as_str()))
}

/// The agent of a claimed call, from its campaign's `agent_id` and that agent's
/// `max_duration_secs` (read in the claim, both backends).
pub fn dial_agent(agent_id: Option<String>, max_duration_secs: Option<i64>) -> Option<crate::DialAgent> {
    let id = agent_id?;
    let secs = max_duration_secs.and_then(|s| u32::try_from(s).ok()).unwrap_or(dialtone_core::agent::DEFAULT_MAX_DURATION_SECS);
    Some(crate::DialAgent { id: dialtone_core::AgentId::from_db(id), max_duration_secs: secs })
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
            EventKind::Amd { answered_by: AnsweredBy::Machine },
            EventKind::Amd { answered_by: AnsweredBy::Human },
            EventKind::Amd { answered_by: AnsweredBy::Unknown },
        ];
        for k in kinds {
            assert_eq!(kind_from_text(&kind_text(&k)), Some(k.clone()), "{k:?}");
        }
        assert_eq!(kind_from_text("released"), None);
        assert_eq!(kind_from_text("ended:nonsense"), None);
        assert_eq!(kind_from_text("amd:robot"), None);
    }

    fn ev(call_id: Option<&str>, pid: Option<&str>) -> ProviderEvent {
        ProviderEvent {
            provider_type: "status-update".into(),
            provider_call_id: pid.map(str::to_string),
            call_id: call_id.map(|c| dialtone_core::CallId::from_db(c.to_string())),
            kind: EventKind::Info,
            dedupe_key: "k".into(),
            occurred_at: None,
            cost: None,
            duration_ms: None,
            report: None,
            raw: dialtone_core::RawJson::null(),
            webhook: None,
        }
    }

    #[test]
    fn the_provider_id_wins_and_disagreeing_ids_are_a_mismatch() {
        let t = |e, by_pid, by_id| target(&e, by_pid, by_id);
        // Ids agree, or only one is given: that call.
        assert_eq!(t(ev(Some("call_a"), Some("p1")), Some("call_a"), None), Target::Call("call_a".into()));
        assert_eq!(t(ev(None, Some("p1")), Some("call_a"), None), Target::Call("call_a".into()));
        assert_eq!(t(ev(Some("call_b"), Some("p2")), None, Some("call_b")), Target::Call("call_b".into()));
        assert_eq!(t(ev(Some("call_b"), None), None, Some("call_b")), Target::Call("call_b".into()));
        // The provider id names A, our id names B: stored with A, applied to neither.
        assert_eq!(t(ev(Some("call_b"), Some("p1")), Some("call_a"), None), Target::Mismatch("call_a".into()));
        assert_eq!(t(ev(Some("call_x"), Some("p9")), None, None), Target::Unknown);
    }

    #[test]
    fn payload_extras_reads_cost_and_reason_at_top_level_or_under_message() {
        let vapi = serde_json::json!({"message": {"type": "end-of-call-report", "cost": 0.02, "endedReason": "customer-ended-call"}});
        assert_eq!(payload_extras(&vapi), (Some(0.02), Some("customer-ended-call".into())));
        assert_eq!(payload_extras(&serde_json::json!({"cost": 1})), (Some(1.0), None));
        assert_eq!(payload_extras(&serde_json::json!("x")), (None, None));
    }
}
