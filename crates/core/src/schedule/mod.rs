//! When a campaign may dial, and when a recipient may be called.
//!
//! Everything is judged on local civil time: an instant is open when its wall-clock reading
//! in the zone falls inside a window. So a window starting at a time skipped by a spring-forward
//! gap opens at the first instant after the gap, and a time repeated by a fall-back fold is open
//! both times it is lived.

mod calendar;
pub(crate) mod wire;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use calendar::{earliest_instant, Calendar};
use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::{Offset, TimeZone};
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

/// Searches that combine two rules give up this long after the last date that breaks the
/// weekly pattern: long enough to see both zones through a full year of DST changes.
const COMBINED_SEARCH_DAYS: i32 = 800;

/// At most this many weekly windows. Every open/close question walks them once per day it
/// looks at, on every claim and every campaign read; 50 is far more than any calling plan
/// needs (several windows a day, different on each day of the week).
pub const MAX_WINDOWS: usize = 50;

/// At most this many blackout dates: enough for every public holiday of several countries
/// for years ahead, small enough that the stored schedule is read and searched in
/// microseconds. A longer closure is a `start_date` / `end_date`, not a list of days.
pub const MAX_BLACKOUT_DATES: usize = 1000;

/// `end_date` at most this many days after `start_date` (ten years and a bit): a campaign
/// that runs longer is a mistake in a date, and a bound keeps every date walk short.
pub const MAX_DATE_RANGE_DAYS: i32 = 3660;

/// Opens on each listed day at `start` (local civil time) and closes at `end`. `end <= start`
/// crosses midnight and closes at `end` the next day; `start == end` is open 24 hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    #[serde(with = "wire::weekdays")]
    #[schema(value_type = Vec<String>, example = json!(["mon", "tue"]))]
    pub days: Vec<Weekday>,
    #[serde(with = "wire::hhmm")]
    #[schema(value_type = String, example = "08:00")]
    pub start: Time,
    #[serde(with = "wire::hhmm")]
    #[schema(value_type = String, example = "08:00")]
    pub end: Time,
}

impl Window {
    pub fn new(days: &[Weekday], start: Time, end: Time) -> Self {
        Self { days: days.to_vec(), start, end }
    }

    pub fn every_day(start: Time, end: Time) -> Self {
        Self::new(&ALL_DAYS, start, end)
    }

    /// Monday to Friday.
    pub fn weekdays(start: Time, end: Time) -> Self {
        Self::new(&ALL_DAYS[..5], start, end)
    }

    pub fn crosses_midnight(&self) -> bool {
        self.end <= self.start
    }
}

const ALL_DAYS: [Weekday; 7] = [Weekday::Monday, Weekday::Tuesday, Weekday::Wednesday, Weekday::Thursday, Weekday::Friday, Weekday::Saturday, Weekday::Sunday];

/// A campaign's dialing calendar, in one IANA time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub timezone: String,
    /// Empty means open all day, every day.
    #[serde(default)]
    pub windows: Vec<Window>,
    /// Inclusive local dates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    pub start_date: Option<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    pub end_date: Option<Date>,
    /// Local dates on which the schedule is closed all day (holidays).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub blackout_dates: Vec<Date>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("timezone: unknown time zone {0:?}")]
    UnknownTimezone(String),
    #[error("start_date: {start} is after end_date {end}")]
    DatesOutOfOrder { start: Date, end: Date },
    #[error("windows[{index}].days: a window needs at least one day")]
    WindowWithoutDays { index: usize },
    #[error("windows[{index}].days: {day} is listed twice")]
    RepeatedDay { index: usize, day: &'static str },
    #[error("windows: {count} windows, at most {MAX_WINDOWS} are allowed")]
    TooManyWindows { count: usize },
    #[error("blackout_dates: {count} dates, at most {MAX_BLACKOUT_DATES} are allowed (close a long stretch with start_date / end_date)")]
    TooManyBlackoutDates { count: usize },
    #[error("end_date: {end} is {days} days after start_date {start}; at most {MAX_DATE_RANGE_DAYS} days are allowed")]
    DateRangeTooLong { start: Date, end: Date, days: i64 },
}

impl ScheduleError {
    /// The offending field, as a path into the schedule's JSON.
    pub fn field(&self) -> String {
        match self {
            Self::UnknownTimezone(_) => "timezone".into(),
            Self::DatesOutOfOrder { .. } => "start_date".into(),
            Self::WindowWithoutDays { index } | Self::RepeatedDay { index, .. } => format!("windows[{index}].days"),
            Self::TooManyWindows { .. } => "windows".into(),
            Self::TooManyBlackoutDates { .. } => "blackout_dates".into(),
            Self::DateRangeTooLong { .. } => "end_date".into(),
        }
    }
}

/// A schedule with its zone looked up once, for the searches below.
struct Prepared {
    tz: TimeZone,
    cal: Calendar,
}

impl Prepared {
    fn is_open(&self, at: Timestamp) -> bool {
        self.cal.contains(self.tz.to_datetime(at))
    }

    fn next_open(&self, after: Timestamp) -> Option<Timestamp> {
        earliest_instant(&self.tz, after, |x| self.cal.next_in(x))
    }

    fn next_close(&self, at: Timestamp) -> Option<Timestamp> {
        earliest_instant(&self.tz, at, |x| self.cal.next_out(x))
    }

    /// The same schedule with every blackout date open again: its open set contains the
    /// real one's, and it is weekly periodic from its start date on.
    fn without_blackouts(&self) -> Prepared {
        Prepared { tz: self.tz.clone(), cal: self.cal.without_blackouts() }
    }
}

impl Schedule {
    pub fn always(timezone: &str) -> Self {
        Self { timezone: timezone.to_string(), windows: Vec::new(), start_date: None, end_date: None, blackout_dates: Vec::new() }
    }

    pub fn time_zone(&self) -> Result<TimeZone, ScheduleError> {
        TimeZone::get(&self.timezone).map_err(|_| ScheduleError::UnknownTimezone(self.timezone.clone()))
    }

    /// Checks what the searches rely on and bounds what one schedule may cost: a known
    /// zone, dates in order and at most [`MAX_DATE_RANGE_DAYS`] apart, at most
    /// [`MAX_WINDOWS`] windows each naming a day at most once, at most
    /// [`MAX_BLACKOUT_DATES`] blackout dates. The error names the offending field.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        self.time_zone()?;
        if let (Some(start), Some(end)) = (self.start_date, self.end_date) {
            if start > end {
                return Err(ScheduleError::DatesOutOfOrder { start, end });
            }
            let days = start.until(end).map_or(i64::MAX, |span| i64::from(span.get_days()));
            if days > i64::from(MAX_DATE_RANGE_DAYS) {
                return Err(ScheduleError::DateRangeTooLong { start, end, days });
            }
        }
        if self.windows.len() > MAX_WINDOWS {
            return Err(ScheduleError::TooManyWindows { count: self.windows.len() });
        }
        for (index, w) in self.windows.iter().enumerate() {
            if w.days.is_empty() {
                return Err(ScheduleError::WindowWithoutDays { index });
            }
            if let Some(i) = (1..w.days.len()).find(|&i| w.days[..i].contains(&w.days[i])) {
                return Err(ScheduleError::RepeatedDay { index, day: wire::weekday_str(w.days[i]) });
            }
        }
        if self.blackout_dates.len() > MAX_BLACKOUT_DATES {
            return Err(ScheduleError::TooManyBlackoutDates { count: self.blackout_dates.len() });
        }
        Ok(())
    }

    /// An unknown zone never opens: dialing on a guess is worse than not dialing.
    fn prepared(&self) -> Option<Prepared> {
        Some(Prepared { tz: self.time_zone().ok()?, cal: Calendar::from_schedule(self) })
    }

    pub fn is_open(&self, at: Timestamp) -> bool {
        self.prepared().is_some_and(|p| p.is_open(at))
    }

    /// Earliest instant `t >= after` with `is_open(t)`; `None` if the schedule never opens again.
    pub fn next_open(&self, after: Timestamp) -> Option<Timestamp> {
        self.prepared()?.next_open(after)
    }

    /// Earliest instant `t >= at` at which the schedule is closed: `at` itself when it is
    /// closed already, otherwise the end of the open stretch `at` is in ("open until").
    /// `None` if it never closes.
    pub fn next_close(&self, at: Timestamp) -> Option<Timestamp> {
        self.prepared()?.next_close(at)
    }

    /// An instant after which nothing new can happen to the schedule's weekly pattern, pushed
    /// out far enough to cover a year of DST changes in another zone.
    /// `with_blackouts: false` is the limit for the schedule with its blackouts open again.
    fn combined_search_limit(&self, after: Timestamp, with_blackouts: bool) -> Timestamp {
        let mut base = Offset::UTC.to_datetime(after).date();
        base = base.max(self.start_date.unwrap_or(base));
        if with_blackouts {
            base = base.max(self.blackout_dates.iter().copied().max().unwrap_or(base));
        }
        base.checked_add(COMBINED_SEARCH_DAYS.days())
            .ok()
            .and_then(|d| Offset::UTC.to_timestamp(d.to_datetime(Time::midnight())).ok())
            .unwrap_or(Timestamp::MAX)
    }
}

/// A recipient's calling hours, judged in the recipient's own zone. Same crossing rules as
/// `Window`, applied every day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalHours {
    #[serde(with = "wire::hhmm")]
    #[schema(value_type = String, example = "08:00")]
    pub start: Time,
    #[serde(with = "wire::hhmm")]
    #[schema(value_type = String, example = "08:00")]
    pub end: Time,
}

impl Default for LocalHours {
    fn default() -> Self {
        Self { start: Time::constant(8, 0, 0, 0), end: Time::constant(21, 0, 0, 0) }
    }
}

impl LocalHours {
    pub fn new(start: Time, end: Time) -> Self {
        Self { start, end }
    }

    fn calendar(&self) -> Calendar {
        Calendar::daily(self.start, self.end)
    }

    pub fn is_open(&self, tz: &TimeZone, at: Timestamp) -> bool {
        self.calendar().contains(tz.to_datetime(at))
    }

    /// Earliest instant `t >= after` inside the hours. Hours open every day, so there always is one.
    pub fn next_open(&self, tz: &TimeZone, after: Timestamp) -> Timestamp {
        let cal = self.calendar();
        earliest_instant(tz, after, |x| cal.next_in(x)).unwrap_or(Timestamp::MAX)
    }

    /// Earliest instant `t >= at` outside the hours; `None` for round-the-clock hours.
    pub fn next_close(&self, tz: &TimeZone, at: Timestamp) -> Option<Timestamp> {
        let cal = self.calendar();
        earliest_instant(tz, at, |x| cal.next_out(x))
    }

    /// Whether `at` is inside the hours in every one of `zones` (the candidate zones of a
    /// number that may be in several). No zones: judged nowhere, so true.
    pub fn is_open_in_all(&self, zones: &[TimeZone], at: Timestamp) -> bool {
        let cal = self.calendar();
        zones.iter().all(|tz| cal.contains(tz.to_datetime(at)))
    }

    /// Earliest instant `t >= after` inside the hours in every one of `zones` at once;
    /// `None` if there is no such instant within [`COMBINED_SEARCH_DAYS`] (zones further
    /// apart than the hours are long never share one).
    pub fn next_open_in_all(&self, zones: &[TimeZone], after: Timestamp) -> Option<Timestamp> {
        next_open_in_all(&Schedule::always("UTC"), self, zones, after)
    }
}

/// Earliest instant `t >= after` (and `<= limit`) that every search accepts, given each
/// one's "earliest instant at or after". Each search only ever moves past instants that it
/// rules out, so the first instant all of them return unchanged is the earliest they share.
fn first_agreement(after: Timestamp, limit: Timestamp, searches: &mut [&mut dyn FnMut(Timestamp) -> Option<Timestamp>]) -> Option<Timestamp> {
    let mut t = after;
    loop {
        let mut moved = false;
        for search in searches.iter_mut() {
            let u = search(t)?;
            if u > limit {
                return None;
            }
            if u != t {
                (t, moved) = (u, true);
            }
        }
        if !moved {
            return Some(t);
        }
    }
}

/// Earliest instant `t >= after` at which `schedule` is open and `other` (the earliest
/// instant at or after its argument that a second rule allows) agrees.
///
/// Blackout dates only ever close days, so the schedule with its blackouts open again
/// agrees with `other` no later than the real one. That search is short (its weekly
/// pattern starts at once) and settles "never" without walking to the last blackout,
/// which may be decades away; otherwise its answer is where the real search starts.
fn combined_search(schedule: &Schedule, after: Timestamp, others: &mut [&mut dyn FnMut(Timestamp) -> Option<Timestamp>]) -> Option<Timestamp> {
    let s = schedule.prepared()?;
    let mut from = after;
    if !schedule.blackout_dates.is_empty() {
        let open = s.without_blackouts();
        let mut first = |t| open.next_open(t);
        let mut searches: Vec<&mut dyn FnMut(Timestamp) -> Option<Timestamp>> = vec![&mut first];
        searches.extend(others.iter_mut().map(|f| &mut **f as &mut dyn FnMut(Timestamp) -> Option<Timestamp>));
        from = first_agreement(after, schedule.combined_search_limit(after, false), &mut searches)?;
    }
    let mut real = |t| s.next_open(t);
    let mut searches: Vec<&mut dyn FnMut(Timestamp) -> Option<Timestamp>> = vec![&mut real];
    searches.extend(others.iter_mut().map(|f| &mut **f as &mut dyn FnMut(Timestamp) -> Option<Timestamp>));
    first_agreement(from, schedule.combined_search_limit(from, true), &mut searches)
}

/// Earliest instant `t >= after` where the campaign schedule is open and the recipient's
/// calling hours (in `recipient_tz`) are too; `None` if that never happens.
pub fn next_open_for(schedule: &Schedule, hours: &LocalHours, recipient_tz: &TimeZone, after: Timestamp) -> Option<Timestamp> {
    next_open_in_all(schedule, hours, std::slice::from_ref(recipient_tz), after)
}

/// Earliest instant `t >= after` where the campaign schedule is open and the calling hours
/// hold in every one of `zones` at once: for a number that may be in any of them, the
/// earliest moment that is a decent hour whichever it is. `None` if that never happens
/// (the schedule closes for good, or the zones are too far apart for the hours).
pub fn next_open_in_all(schedule: &Schedule, hours: &LocalHours, zones: &[TimeZone], after: Timestamp) -> Option<Timestamp> {
    let h = hours.calendar();
    in_every_zone(schedule, zones, after, |tz, t| earliest_instant(tz, t, |x| h.next_in(x)))
}

/// Earliest instant `t >= after` where `schedule` is open and every one of `zones` agrees,
/// `next(tz, t)` being the earliest instant at or after `t` that the rule allows in `tz`.
fn in_every_zone(schedule: &Schedule, zones: &[TimeZone], after: Timestamp, next: impl Fn(&TimeZone, Timestamp) -> Option<Timestamp>) -> Option<Timestamp> {
    let next = &next;
    let mut each: Vec<_> = zones.iter().map(|tz| move |t| next(tz, t)).collect();
    let mut others: Vec<&mut dyn FnMut(Timestamp) -> Option<Timestamp>> =
        each.iter_mut().map(|f| f as &mut dyn FnMut(Timestamp) -> Option<Timestamp>).collect();
    combined_search(schedule, after, &mut others)
}

/// Whether `next_open_for` would accept `at`.
pub fn is_open_for(schedule: &Schedule, hours: &LocalHours, recipient_tz: &TimeZone, at: Timestamp) -> bool {
    schedule.is_open(at) && hours.is_open(recipient_tz, at)
}

/// Whether `next_open_in_all` would accept `at`.
pub fn is_open_in_all(schedule: &Schedule, hours: &LocalHours, zones: &[TimeZone], at: Timestamp) -> bool {
    schedule.is_open(at) && hours.is_open_in_all(zones, at)
}

/// Earliest instant `t >= after` where the schedule is open and `t` is outside the daily
/// `period` (judged in `period_tz`), e.g. to keep retries out of a peak period. `None` if
/// that never happens (for instance a round-the-clock period).
pub fn avoid_period(schedule: &Schedule, period: &LocalHours, period_tz: &TimeZone, after: Timestamp) -> Option<Timestamp> {
    avoid_period_in_all(schedule, period, std::slice::from_ref(period_tz), after)
}

/// Like [`avoid_period`], with `t` outside the period in every one of `zones` at once.
pub fn avoid_period_in_all(schedule: &Schedule, period: &LocalHours, zones: &[TimeZone], after: Timestamp) -> Option<Timestamp> {
    let p = period.calendar();
    in_every_zone(schedule, zones, after, |tz, t| earliest_instant(tz, t, |x| p.next_out(x)))
}

/// Earliest instant `t >= from` whose local civil time in `tz` is at or after `civil`: the
/// start of a local day even when its midnight falls in a DST gap.
pub(crate) fn first_instant_reading(tz: &TimeZone, from: Timestamp, civil: DateTime) -> Option<Timestamp> {
    earliest_instant(tz, from, |x| Some(x.max(civil)))
}
