//! How often one contact may be called in a recurring campaign.
//!
//! Periods are local to the contact: a "day" is their calendar day, a "week" their ISO week
//! (Monday to Sunday), a "month" their calendar month.

use crate::schedule::{first_instant_reading, wire};
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Frequency {
    Once,
    Daily,
    /// On the chosen days, at most once a week; no days means any day of the week.
    Weekly {
        #[serde(with = "wire::weekdays", default)]
        #[schema(value_type = Vec<String>, example = json!(["mon", "tue"]))]
        days: Vec<Weekday>,
    },
    /// Once a month, from `day_of_month` (clamped to the month's last day), or from the 1st.
    Monthly {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        day_of_month: Option<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recurrence {
    pub frequency: Frequency,
    /// Inclusive, in the contact's local calendar: no occurrence may start on a later date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    pub end_date: Option<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_occurrences: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecurrenceError {
    #[error("frequency.day_of_month: must be between 1 and 31, got {0}")]
    DayOfMonth(u8),
    #[error("max_occurrences: must be at least 1")]
    NoOccurrences,
}

impl Recurrence {
    pub fn new(frequency: Frequency) -> Self {
        Self { frequency, end_date: None, max_occurrences: None }
    }

    pub fn validate(&self) -> Result<(), RecurrenceError> {
        if let Frequency::Monthly { day_of_month: Some(day) } = self.frequency {
            if !(1..=31).contains(&day) {
                return Err(RecurrenceError::DayOfMonth(day));
            }
        }
        if self.max_occurrences == Some(0) {
            return Err(RecurrenceError::NoOccurrences);
        }
        Ok(())
    }

    /// For a contact whose last occurrence was at `last`, judged in its local zone `tz`: the
    /// earliest instant its next occurrence may start, which is the first instant of the next
    /// allowed local day. `None` for `Once`, once `occurrences_done` reaches `max_occurrences`,
    /// or when that day is after `end_date`.
    pub fn next_occurrence(&self, tz: &TimeZone, last: Timestamp, occurrences_done: u32) -> Option<Timestamp> {
        if self.max_occurrences.is_some_and(|max| occurrences_done >= max) {
            return None;
        }
        let last_day = tz.to_datetime(last).date();
        let day = self.next_day(last_day)?;
        if self.end_date.is_some_and(|end| day > end) {
            return None;
        }
        first_instant_reading(tz, last, day.to_datetime(Time::midnight()))
    }

    /// [`Self::next_occurrence`] for a contact that may be in any of `zones`: the latest of
    /// their answers, so the next occurrence starts only once a new period has begun in every
    /// one of them (a second call the same local day is never possible, whichever zone the
    /// recipient is in). `None` if any zone says there is none.
    pub fn next_occurrence_in_all(&self, zones: &[TimeZone], last: Timestamp, occurrences_done: u32) -> Option<Timestamp> {
        if zones.is_empty() {
            return self.next_occurrence(&TimeZone::UTC, last, occurrences_done);
        }
        zones.iter().map(|tz| self.next_occurrence(tz, last, occurrences_done)).try_fold(last, |latest, at| Some(latest.max(at?)))
    }

    fn next_day(&self, last: Date) -> Option<Date> {
        match &self.frequency {
            Frequency::Once => None,
            Frequency::Daily => last.tomorrow().ok(),
            Frequency::Weekly { days } => {
                let next_monday = last.checked_add((7 - last.weekday().to_monday_zero_offset()).days()).ok()?;
                let first = days.iter().map(|d| d.to_monday_zero_offset()).min().unwrap_or(0);
                next_monday.checked_add(first.days()).ok()
            }
            Frequency::Monthly { day_of_month } => {
                let month = last.first_of_month().checked_add(1.month()).ok()?;
                let day = day_of_month.map_or(1, |d| d as i8).clamp(1, month.days_in_month());
                month.with().day(day).build().ok()
            }
        }
    }

    /// Whether `a` and `b` fall in the same period (local day, ISO week or month) in `tz`.
    /// Everything is one period for `Once`.
    pub fn same_period(&self, tz: &TimeZone, a: Timestamp, b: Timestamp) -> bool {
        let (a, b) = (tz.to_datetime(a).date(), tz.to_datetime(b).date());
        match self.frequency {
            Frequency::Once => true,
            Frequency::Daily => a == b,
            Frequency::Weekly { .. } => {
                let (wa, wb) = (a.iso_week_date(), b.iso_week_date());
                (wa.year(), wa.week()) == (wb.year(), wb.week())
            }
            Frequency::Monthly { .. } => (a.year(), a.month()) == (b.year(), b.month()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{date, DateTime};
    use jiff::SignedDuration;
    use proptest::prelude::*;

    fn local(tz: &TimeZone, civil: &str) -> Timestamp {
        civil.parse::<DateTime>().unwrap().to_zoned(tz.clone()).unwrap().timestamp()
    }

    fn ny() -> TimeZone {
        TimeZone::get("America/New_York").unwrap()
    }

    #[test]
    fn daily_after_a_late_call_the_next_occurrence_starts_at_local_midnight() {
        let tz = ny();
        let r = Recurrence::new(Frequency::Daily);
        assert_eq!(r.next_occurrence(&tz, local(&tz, "2026-03-03T23:50"), 1), Some(local(&tz, "2026-03-04T00:00")));
    }

    #[test]
    fn daily_when_midnight_is_skipped_the_day_starts_after_the_gap() {
        // Chile springs forward at midnight: 2026-09-06 00:00 -04 becomes 01:00 -03, 04:00 UTC.
        let tz = TimeZone::get("America/Santiago").unwrap();
        let r = Recurrence::new(Frequency::Daily);
        let got = r.next_occurrence(&tz, local(&tz, "2026-09-05T20:00"), 1);
        assert_eq!(got, Some("2026-09-06T04:00:00Z".parse().unwrap()));
    }

    #[test]
    fn weekly_on_monday_and_thursday_waits_for_the_next_weeks_first_chosen_day() {
        let tz = ny();
        let r = Recurrence::new(Frequency::Weekly { days: vec![Weekday::Thursday, Weekday::Monday] });
        // 2026-03-03 is a Tuesday, 2026-03-05 a Thursday, 2026-03-09 the next Monday.
        assert_eq!(r.next_occurrence(&tz, local(&tz, "2026-03-03T10:00"), 1), Some(local(&tz, "2026-03-09T00:00")));
        assert_eq!(r.next_occurrence(&tz, local(&tz, "2026-03-05T10:00"), 2), Some(local(&tz, "2026-03-09T00:00")));
        let thursdays = Recurrence::new(Frequency::Weekly { days: vec![Weekday::Thursday] });
        assert_eq!(thursdays.next_occurrence(&tz, local(&tz, "2026-03-02T10:00"), 1), Some(local(&tz, "2026-03-12T00:00")));
    }

    #[test]
    fn monthly_on_the_31st_lands_on_the_last_day_of_february() {
        let tz = ny();
        let r = Recurrence::new(Frequency::Monthly { day_of_month: Some(31) });
        assert_eq!(r.next_occurrence(&tz, local(&tz, "2026-01-31T10:00"), 1), Some(local(&tz, "2026-02-28T00:00")));
        assert_eq!(r.next_occurrence(&tz, local(&tz, "2028-01-05T10:00"), 1), Some(local(&tz, "2028-02-29T00:00")));
        assert_eq!(r.next_occurrence(&tz, local(&tz, "2026-02-28T10:00"), 2), Some(local(&tz, "2026-03-31T00:00")));
        let any_day = Recurrence::new(Frequency::Monthly { day_of_month: None });
        assert_eq!(any_day.next_occurrence(&tz, local(&tz, "2026-12-20T10:00"), 1), Some(local(&tz, "2027-01-01T00:00")));
    }

    #[test]
    fn once_limits_and_end_dates_stop_recurrence() {
        let tz = ny();
        let last = local(&tz, "2026-03-03T10:00");
        assert_eq!(Recurrence::new(Frequency::Once).next_occurrence(&tz, last, 1), None);
        let limited = Recurrence { max_occurrences: Some(3), ..Recurrence::new(Frequency::Daily) };
        assert!(limited.next_occurrence(&tz, last, 2).is_some());
        assert_eq!(limited.next_occurrence(&tz, last, 3), None);
        let ending = Recurrence { end_date: Some(date(2026, 3, 4)), ..Recurrence::new(Frequency::Daily) };
        assert!(ending.next_occurrence(&tz, last, 1).is_some());
        assert_eq!(ending.next_occurrence(&tz, local(&tz, "2026-03-04T10:00"), 2), None);
    }

    #[test]
    fn periods_are_local_days_iso_weeks_and_months() {
        let tz = ny();
        let weekly = Recurrence::new(Frequency::Weekly { days: vec![] });
        // Sunday and the following Monday are in different ISO weeks; 2026-12-31 and 2027-01-01 are not.
        assert!(!weekly.same_period(&tz, local(&tz, "2026-03-08T23:00"), local(&tz, "2026-03-09T01:00")));
        assert!(weekly.same_period(&tz, local(&tz, "2026-12-31T12:00"), local(&tz, "2027-01-01T12:00")));
        let daily = Recurrence::new(Frequency::Daily);
        // 23:30 in New York is already the next day in UTC; the contact's zone decides.
        assert!(daily.same_period(&tz, local(&tz, "2026-03-03T00:10"), local(&tz, "2026-03-03T23:30")));
        let monthly = Recurrence::new(Frequency::Monthly { day_of_month: None });
        assert!(!monthly.same_period(&tz, local(&tz, "2026-01-31T23:00"), local(&tz, "2026-02-01T00:00")));
    }

    #[test]
    fn recurrences_travel_as_tagged_json() {
        let weekly = Recurrence { max_occurrences: Some(4), ..Recurrence::new(Frequency::Weekly { days: vec![Weekday::Monday, Weekday::Thursday] }) };
        let json = serde_json::json!({"frequency": {"type": "weekly", "days": ["mon", "thu"]}, "max_occurrences": 4});
        assert_eq!(serde_json::to_value(&weekly).unwrap(), json);
        assert_eq!(serde_json::from_value::<Recurrence>(json).unwrap(), weekly);
        let daily: Frequency = serde_json::from_str(r#"{"type":"daily"}"#).unwrap();
        assert_eq!(daily, Frequency::Daily);
        let monthly: Frequency = serde_json::from_str(r#"{"type":"monthly","day_of_month":31}"#).unwrap();
        assert_eq!(monthly, Frequency::Monthly { day_of_month: Some(31) });
    }

    #[test]
    fn validation_names_the_field() {
        let r = Recurrence::new(Frequency::Monthly { day_of_month: Some(32) });
        assert!(r.validate().unwrap_err().to_string().starts_with("frequency.day_of_month"));
        let r = Recurrence { max_occurrences: Some(0), ..Recurrence::new(Frequency::Daily) };
        assert!(r.validate().unwrap_err().to_string().starts_with("max_occurrences"));
    }

    const ZONES: &[&str] = &["America/New_York", "Europe/London", "Australia/Lord_Howe", "Pacific/Chatham", "America/Santiago", "UTC"];

    proptest! {
        #[test]
        fn the_next_occurrence_starts_the_next_period_exactly(
            zone in prop::sample::select(ZONES),
            secs in 1_577_836_800i64..2_082_758_400,
            which in 0usize..3,
        ) {
            let tz = TimeZone::get(zone).unwrap();
            let frequency = [Frequency::Daily, Frequency::Weekly { days: vec![] }, Frequency::Monthly { day_of_month: None }];
            let r = Recurrence::new(frequency[which].clone());
            let last = Timestamp::from_second(secs).unwrap();
            let next = r.next_occurrence(&tz, last, 1).unwrap();
            prop_assert!(next > last);
            prop_assert!(!r.same_period(&tz, last, next));
            prop_assert!(r.same_period(&tz, last, next - SignedDuration::from_nanos(1)));
        }
    }
}
