//! What happens to a contact after one of its calls ends: a rule per outcome (how many
//! retries, after what delay, doubling each time), ±jitter, a maximum delay, and the
//! campaign's `max_attempts` as the overall bound.

use crate::call::Outcome;
use crate::contact::ContactStatus;
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

/// Retries for one outcome: the n-th retry (n = 1, 2, …) waits `delay_secs × 2^(n-1)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRule {
    pub max_retries: u32,
    pub delay_secs: f64,
}

impl RetryRule {
    pub const fn new(max_retries: u32, delay_secs: f64) -> Self {
        Self { max_retries, delay_secs }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    pub no_answer: RetryRule,
    /// A person answered an agent call but never spoke (`no_response`). Retried, like
    /// `no_answer` (a silent line is often a bad connection or a bad moment), but fewer times
    /// and later by default: someone did pick up, and calling back within minutes is pushy.
    pub no_response: RetryRule,
    pub busy: RetryRule,
    /// Network or provider errors.
    pub failed: RetryRule,
    pub voicemail: RetryRule,
    pub invalid_number: RetryRule,
    /// The call went quiet and the provider could not say what happened.
    pub timeout: RetryRule,
    /// Share of the delay added or removed at random (0.1 = ±10 %).
    pub jitter: f64,
    pub max_delay_secs: f64,
    /// A daily period, in the recipient's zone, that retries are kept out of (e.g. a lunch
    /// peak `{"start": "12:00", "end": "14:00"}`): a retry falling inside moves to its end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avoid: Option<crate::schedule::LocalHours>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            no_answer: RetryRule::new(3, 300.0),
            no_response: RetryRule::new(2, 3600.0),
            busy: RetryRule::new(3, 600.0),
            failed: RetryRule::new(5, 60.0),
            voicemail: RetryRule::new(0, 3600.0),
            invalid_number: RetryRule::new(0, 0.0),
            timeout: RetryRule::new(3, 300.0),
            jitter: 0.1,
            max_delay_secs: 21_600.0,
            avoid: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Call again after this delay.
    RetryAfter(SignedDuration),
    /// Nothing more to do; the contact ends in this status.
    Finish(ContactStatus),
}

impl RetryPolicy {
    /// The same delay (and `max_retries`) for every retryable outcome; no jitter.
    pub fn uniform(max_retries: u32, delay: SignedDuration) -> Self {
        let rule = RetryRule::new(max_retries, delay.as_secs_f64());
        Self { no_answer: rule, no_response: rule, busy: rule, failed: rule, timeout: rule, jitter: 0.0, ..Self::default() }
    }

    pub fn rule(&self, outcome: Outcome) -> Option<&RetryRule> {
        match outcome {
            Outcome::NoAnswer => Some(&self.no_answer),
            Outcome::NoResponse => Some(&self.no_response),
            Outcome::Busy => Some(&self.busy),
            Outcome::Failed => Some(&self.failed),
            Outcome::Voicemail => Some(&self.voicemail),
            Outcome::InvalidNumber => Some(&self.invalid_number),
            Outcome::Timeout => Some(&self.timeout),
            Outcome::Completed | Outcome::Canceled => None,
        }
    }

    /// Names the first field that is out of range.
    pub fn validate(&self) -> Result<(), String> {
        let rules = [
            ("no_answer", self.no_answer),
            ("no_response", self.no_response),
            ("busy", self.busy),
            ("failed", self.failed),
            ("voicemail", self.voicemail),
            ("invalid_number", self.invalid_number),
            ("timeout", self.timeout),
        ];
        for (name, r) in rules {
            if !(0.0..=31_536_000.0).contains(&r.delay_secs) {
                return Err(format!("retry.{name}.delay_secs must be between 0 and one year"));
            }
            if r.max_retries > 100 {
                return Err(format!("retry.{name}.max_retries must be at most 100"));
            }
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err("retry.jitter must be between 0 and 1".into());
        }
        if !(0.0..=31_536_000.0).contains(&self.max_delay_secs) {
            return Err("retry.max_delay_secs must be between 0 and one year".into());
        }
        Ok(())
    }

    /// Decides after a call ended with `outcome`.
    /// - `occurrences`: calls of this contact that ended with this outcome, this one included;
    /// - `attempts`: calls the contact has had, this one included;
    /// - `jitter_unit` in [-1, 1]: where in the jitter band this retry lands (callers derive
    ///   it from the call id, so the decision is reproducible).
    pub fn next_step(&self, outcome: Outcome, occurrences: u32, attempts: u32, max_attempts: u32, jitter_unit: f64) -> NextStep {
        let finish = match outcome {
            Outcome::Completed | Outcome::Voicemail => ContactStatus::Done,
            Outcome::InvalidNumber => ContactStatus::Invalid,
            Outcome::Canceled => ContactStatus::Canceled,
            _ => ContactStatus::Exhausted,
        };
        let Some(rule) = self.rule(outcome) else { return NextStep::Finish(finish) };
        if occurrences == 0 || occurrences > rule.max_retries || attempts >= max_attempts {
            return NextStep::Finish(finish);
        }
        let exp = 2f64.powi(occurrences.saturating_sub(1).min(30) as i32);
        let jitter = 1.0 + self.jitter * jitter_unit.clamp(-1.0, 1.0);
        let secs = (rule.delay_secs * exp * jitter).min(self.max_delay_secs).max(0.0);
        NextStep::RetryAfter(SignedDuration::from_secs_f64(secs))
    }
}

/// A reproducible value in [-1, 1] from any text (e.g. a call id), for jitter.
pub fn jitter_unit(seed: &str) -> f64 {
    // FNV-1a: tiny, stable across platforms and releases.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % 2001) as f64 / 1000.0 - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> NextStep {
        NextStep::RetryAfter(SignedDuration::from_secs_f64(s))
    }

    #[test]
    fn defaults_follow_the_policy_table() {
        let p = RetryPolicy::default();
        assert_eq!(p.next_step(Outcome::NoAnswer, 1, 1, 10, 0.0), secs(300.0));
        assert_eq!(p.next_step(Outcome::NoAnswer, 2, 2, 10, 0.0), secs(600.0));
        assert_eq!(p.next_step(Outcome::NoAnswer, 3, 3, 10, 0.0), secs(1200.0));
        assert_eq!(p.next_step(Outcome::NoAnswer, 4, 4, 10, 0.0), NextStep::Finish(ContactStatus::Exhausted));
        assert_eq!(p.next_step(Outcome::Busy, 1, 1, 10, 0.0), secs(600.0));
        assert_eq!(p.next_step(Outcome::Busy, 3, 3, 10, 0.0), secs(2400.0));
        assert_eq!(p.next_step(Outcome::Failed, 5, 5, 10, 0.0), secs(960.0));
        assert_eq!(p.next_step(Outcome::Failed, 6, 6, 10, 0.0), NextStep::Finish(ContactStatus::Exhausted));
    }

    #[test]
    fn no_response_is_retried_later_and_fewer_times_than_no_answer() {
        let p = RetryPolicy::default();
        assert_eq!(p.next_step(Outcome::NoResponse, 1, 1, 10, 0.0), secs(3600.0));
        assert_eq!(p.next_step(Outcome::NoResponse, 2, 2, 10, 0.0), secs(7200.0));
        assert_eq!(p.next_step(Outcome::NoResponse, 3, 3, 10, 0.0), NextStep::Finish(ContactStatus::Exhausted));
        let p: RetryPolicy = serde_json::from_str(r#"{"no_response": {"max_retries": 0, "delay_secs": 0}}"#).unwrap();
        assert_eq!(p.next_step(Outcome::NoResponse, 1, 1, 10, 0.0), NextStep::Finish(ContactStatus::Exhausted));
        assert_eq!("no_response".parse::<Outcome>().unwrap(), Outcome::NoResponse);
    }

    #[test]
    fn final_outcomes_are_never_retried_by_default() {
        let p = RetryPolicy::default();
        assert_eq!(p.next_step(Outcome::Completed, 1, 1, 3, 0.0), NextStep::Finish(ContactStatus::Done));
        assert_eq!(p.next_step(Outcome::Voicemail, 1, 1, 3, 0.0), NextStep::Finish(ContactStatus::Done));
        assert_eq!(p.next_step(Outcome::InvalidNumber, 1, 1, 3, 0.0), NextStep::Finish(ContactStatus::Invalid));
        assert_eq!(p.next_step(Outcome::Canceled, 1, 1, 3, 0.0), NextStep::Finish(ContactStatus::Canceled));
    }

    #[test]
    fn voicemail_retries_when_configured() {
        let p = RetryPolicy { voicemail: RetryRule::new(1, 120.0), ..RetryPolicy::default() };
        assert_eq!(p.next_step(Outcome::Voicemail, 1, 1, 3, 0.0), secs(120.0));
        assert_eq!(p.next_step(Outcome::Voicemail, 2, 2, 3, 0.0), NextStep::Finish(ContactStatus::Done));
    }

    #[test]
    fn max_attempts_bounds_every_rule() {
        let p = RetryPolicy::default();
        assert_eq!(p.next_step(Outcome::Failed, 1, 3, 3, 0.0), NextStep::Finish(ContactStatus::Exhausted));
    }

    #[test]
    fn delays_are_capped_and_jittered_within_the_band() {
        let p = RetryPolicy { max_delay_secs: 1000.0, ..RetryPolicy::default() };
        assert_eq!(p.next_step(Outcome::Busy, 3, 3, 10, 0.0), secs(1000.0));
        let low = p.next_step(Outcome::NoAnswer, 1, 1, 10, -1.0);
        let high = p.next_step(Outcome::NoAnswer, 1, 1, 10, 1.0);
        assert_eq!((low, high), (secs(270.0), secs(330.0)));
    }

    #[test]
    fn jitter_units_are_reproducible_and_spread() {
        assert_eq!(jitter_unit("call_a"), jitter_unit("call_a"));
        let units: Vec<f64> = (0..200).map(|i| jitter_unit(&format!("call_{i}"))).collect();
        assert!(units.iter().all(|u| (-1.0..=1.0).contains(u)));
        assert!(units.iter().any(|u| *u < -0.5) && units.iter().any(|u| *u > 0.5));
    }

    #[test]
    fn a_partial_policy_fills_in_the_defaults() {
        let p: RetryPolicy = serde_json::from_str(r#"{"voicemail": {"max_retries": 1, "delay_secs": 60}}"#).unwrap();
        assert_eq!(p.voicemail, RetryRule::new(1, 60.0));
        assert_eq!(p.busy, RetryPolicy::default().busy);
        assert!(serde_json::from_str::<RetryPolicy>(r#"{"voicemial": {}}"#).is_err());
    }
}

/// Everything that decides what a contact does after one of its calls ended.
pub struct AfterCall<'a> {
    pub outcome: Outcome,
    /// Calls of this contact that ended with this outcome, this one included.
    pub occurrences: u32,
    /// Calls the contact has had, this one included.
    pub attempts: u32,
    pub max_attempts: u32,
    pub policy: &'a RetryPolicy,
    /// The contact's own recurrence (single calls) or its campaign's.
    pub recurrence: &'a crate::frequency::Recurrence,
    /// Every zone the contact may be in (one, unless its number is ambiguous): "already
    /// called today" and the `avoid` period are judged in all of them.
    pub zones: &'a [jiff::tz::TimeZone],
    pub campaign_canceled: bool,
    /// Seed of the jitter (the call id).
    pub call_id: &'a str,
    pub now: jiff::Timestamp,
}

impl AfterCall<'_> {
    /// The contact's next status and when it is next due. A recurring contact (daily,
    /// weekly, monthly) gets one attempt per period and is due again at the start of its
    /// next local period until the recurrence ends; any other contact follows the retry
    /// policy.
    pub fn decide(&self) -> (ContactStatus, jiff::Timestamp) {
        let now = self.now;
        let step = self.policy.next_step(self.outcome, self.occurrences, self.attempts, self.max_attempts, jitter_unit(self.call_id));
        if matches!(self.outcome, Outcome::Canceled) || self.campaign_canceled {
            return match step {
                NextStep::Finish(s) if s != ContactStatus::Exhausted => (s, now),
                _ => (ContactStatus::Canceled, now),
            };
        }
        if !matches!(self.recurrence.frequency, crate::frequency::Frequency::Once) {
            return match self.recurrence.next_occurrence_in_all(self.zones, now, self.attempts) {
                Some(at) => (ContactStatus::Pending, at),
                None if self.outcome == Outcome::Completed => (ContactStatus::Done, now),
                None => match step {
                    NextStep::Finish(s) => (s, now),
                    NextStep::RetryAfter(_) => (ContactStatus::Exhausted, now),
                },
            };
        }
        match step {
            NextStep::RetryAfter(delay) => {
                let at = now.checked_add(delay).unwrap_or(now);
                let at = match &self.policy.avoid {
                    Some(peak) => crate::schedule::avoid_period_in_all(&crate::schedule::Schedule::always("UTC"), peak, self.zones, at).unwrap_or(at),
                    None => at,
                };
                (ContactStatus::Pending, at)
            }
            NextStep::Finish(status) => (status, now),
        }
    }
}

#[cfg(test)]
mod after_call_tests {
    use super::*;
    use crate::frequency::{Frequency, Recurrence};

    fn base<'a>(policy: &'a RetryPolicy, recurrence: &'a Recurrence, tz: &'a jiff::tz::TimeZone) -> AfterCall<'a> {
        let zones = std::slice::from_ref(tz);
        AfterCall {
            outcome: Outcome::NoAnswer,
            occurrences: 1,
            attempts: 1,
            max_attempts: 3,
            policy,
            recurrence,
            zones,
            campaign_canceled: false,
            call_id: "call_x",
            now: "2026-06-10T15:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn a_one_off_contact_follows_the_retry_policy() {
        let (p, r, tz) = (RetryPolicy { jitter: 0.0, ..RetryPolicy::default() }, Recurrence::new(Frequency::Once), jiff::tz::TimeZone::UTC);
        let a = base(&p, &r, &tz);
        assert_eq!(a.decide(), (ContactStatus::Pending, a.now + SignedDuration::from_mins(5)));
    }

    #[test]
    fn a_daily_contact_is_due_at_its_next_local_midnight_whatever_the_outcome() {
        let (p, r) = (RetryPolicy::default(), Recurrence::new(Frequency::Daily));
        let tz = jiff::tz::TimeZone::get("America/New_York").unwrap();
        let mut a = base(&p, &r, &tz);
        a.outcome = Outcome::Completed;
        let next: jiff::Timestamp = "2026-06-11T04:00:00Z".parse().unwrap();
        assert_eq!(a.decide(), (ContactStatus::Pending, next), "11:00 EDT → midnight EDT");
        a.outcome = Outcome::NoAnswer;
        assert_eq!(a.decide(), (ContactStatus::Pending, next), "no second call the same local day");
    }

    #[test]
    fn a_retry_landing_in_the_peak_period_moves_to_its_end() {
        let peak = crate::schedule::LocalHours::new(jiff::civil::time(12, 0, 0, 0), jiff::civil::time(14, 0, 0, 0));
        let p = RetryPolicy { jitter: 0.0, avoid: Some(peak), ..RetryPolicy::default() };
        let r = Recurrence::new(Frequency::Once);
        let tz = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
        let mut a = base(&p, &r, &tz);
        a.now = "2026-06-10T09:58:00Z".parse().unwrap(); // 11:58 in Paris; +5 min lands at 12:03
        assert_eq!(a.decide(), (ContactStatus::Pending, "2026-06-10T12:00:00Z".parse().unwrap()), "moved to 14:00 Paris");
        a.now = "2026-06-10T07:00:00Z".parse().unwrap(); // 09:00 + 5 min: outside the peak, unchanged
        assert_eq!(a.decide().1, a.now + SignedDuration::from_mins(5));
    }

    #[test]
    fn an_ambiguous_contact_is_called_once_per_day_in_every_candidate_zone() {
        // Sydney's next day starts at 14:00Z, Perth's at 16:00Z: not before 16:00Z, or a
        // recipient in Perth would get a second call on the same local day.
        let (p, r) = (RetryPolicy::default(), Recurrence::new(Frequency::Daily));
        let zones = [jiff::tz::TimeZone::get("Australia/Sydney").unwrap(), jiff::tz::TimeZone::get("Australia/Perth").unwrap()];
        let mut a = base(&p, &r, &zones[0]);
        a.zones = &zones;
        a.now = "2026-06-10T05:00:00Z".parse().unwrap();
        assert_eq!(a.decide(), (ContactStatus::Pending, "2026-06-10T16:00:00Z".parse().unwrap()));
    }

    #[test]
    fn an_ambiguous_contacts_retry_avoids_the_peak_in_every_candidate_zone() {
        let peak = crate::schedule::LocalHours::new(jiff::civil::time(12, 0, 0, 0), jiff::civil::time(14, 0, 0, 0));
        let p = RetryPolicy { jitter: 0.0, avoid: Some(peak), ..RetryPolicy::default() };
        let r = Recurrence::new(Frequency::Once);
        let zones = [jiff::tz::TimeZone::get("Europe/Paris").unwrap(), jiff::tz::TimeZone::get("Europe/London").unwrap()];
        let mut a = base(&p, &r, &zones[0]);
        a.zones = &zones;
        // +5 min lands at 11:03Z: 13:03 in Paris, 12:03 in London. Paris alone would say
        // 12:00Z, which is 13:00 in London, still its peak.
        a.now = "2026-06-10T10:58:00Z".parse().unwrap();
        assert_eq!(a.decide(), (ContactStatus::Pending, "2026-06-10T13:00:00Z".parse().unwrap()));
    }

    #[test]
    fn a_recurrence_ends_at_its_max_occurrences() {
        let p = RetryPolicy::default();
        let r = Recurrence { max_occurrences: Some(2), ..Recurrence::new(Frequency::Daily) };
        let tz = jiff::tz::TimeZone::UTC;
        let mut a = base(&p, &r, &tz);
        a.outcome = Outcome::Completed;
        a.attempts = 2;
        assert_eq!(a.decide().0, ContactStatus::Done);
    }

    #[test]
    fn a_canceled_campaign_stops_retries() {
        let (p, r, tz) = (RetryPolicy::default(), Recurrence::new(Frequency::Once), jiff::tz::TimeZone::UTC);
        let mut a = base(&p, &r, &tz);
        a.campaign_canceled = true;
        assert_eq!(a.decide().0, ContactStatus::Canceled);
        a.outcome = Outcome::Completed;
        assert_eq!(a.decide().0, ContactStatus::Done);
    }
}
