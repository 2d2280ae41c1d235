//! The arithmetic behind schedules, in two layers.
//!
//! `Calendar` answers questions in local civil time: which civil date-times are open, and the
//! next open (or closed) civil date-time at or after a given one. Its open set is a union of
//! half-open civil intervals, so both questions have exact answers found by walking days.
//!
//! `earliest_instant` lifts such an answer to instants. Between two time zone transitions the
//! civil clock runs in step with the instant, so within that stretch the earliest matching
//! instant is the earliest matching civil time minus the stretch's offset; a gap (spring
//! forward) simply skips civil times and a fold (fall back) replays them.

use super::{Schedule, Window};
use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp, ToSpan};

const DAY: i64 = 86_400 * 1_000_000_000;

/// Weekly periodic after the last blackout; a week and a day covers every weekday in full.
const PERIODIC_HORIZON_DAYS: i32 = 8;

/// Jiff's offsets stay within ±26 hours, so no instant reads earlier than this on any clock.
const MAX_OFFSET: SignedDuration = SignedDuration::from_hours(26);

#[derive(Debug, Clone, Copy)]
struct Rule {
    days: u8,
    start: i64,
    /// `end <= start` crosses midnight and closes on the following day.
    end: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct Calendar {
    rules: Vec<Rule>,
    start_date: Option<Date>,
    end_date: Option<Date>,
    blackouts: Vec<Date>,
}

fn bit(day: Weekday) -> u8 {
    1 << day.to_monday_zero_offset()
}

pub(crate) fn nanos(t: Time) -> i64 {
    let secs = i64::from(t.hour()) * 3600 + i64::from(t.minute()) * 60 + i64::from(t.second());
    secs * 1_000_000_000 + i64::from(t.subsec_nanosecond())
}

fn at(date: Date, n: i64) -> DateTime {
    let (secs, sub) = (n / 1_000_000_000, n % 1_000_000_000);
    let time = Time::new((secs / 3600) as i8, (secs / 60 % 60) as i8, (secs % 60) as i8, sub as i32).expect("nanoseconds within one day");
    date.to_datetime(time)
}

impl Calendar {
    pub(crate) fn from_schedule(s: &Schedule) -> Self {
        let rules = if s.windows.is_empty() { vec![Rule { days: 0x7f, start: 0, end: 0 }] } else { s.windows.iter().map(Self::rule).collect() };
        let mut blackouts = s.blackout_dates.clone();
        blackouts.sort_unstable();
        blackouts.dedup();
        Self { rules, start_date: s.start_date, end_date: s.end_date, blackouts }
    }

    /// The same window every day, with no dates: recipient calling hours, peak periods.
    pub(crate) fn daily(start: Time, end: Time) -> Self {
        let rule = Rule { days: 0x7f, start: nanos(start), end: nanos(end) };
        Self { rules: vec![rule], start_date: None, end_date: None, blackouts: Vec::new() }
    }

    /// The same calendar with every blackout date open.
    pub(crate) fn without_blackouts(&self) -> Self {
        Self { blackouts: Vec::new(), ..self.clone() }
    }

    fn rule(w: &Window) -> Rule {
        Rule { days: w.days.iter().fold(0, |m, d| m | bit(*d)), start: nanos(w.start), end: nanos(w.end) }
    }

    fn allows(&self, d: Date) -> bool {
        self.start_date <= Some(d) && d <= self.end_date.unwrap_or(Date::MAX) && self.blackouts.binary_search(&d).is_err()
    }

    /// Open stretches of date `d` as sorted, merged nanosecond ranges within [0, DAY). The
    /// caller checks `allows(d)`: a crossing window's tail is judged by the date it lands on.
    fn day_intervals(&self, d: Date, out: &mut Vec<(i64, i64)>) {
        out.clear();
        let today = bit(d.weekday());
        let yesterday = bit(d.weekday().previous());
        for r in &self.rules {
            let crosses = r.end <= r.start;
            if r.days & today != 0 {
                out.push((r.start, if crosses { DAY } else { r.end }));
            }
            if crosses && r.days & yesterday != 0 && r.end > 0 {
                out.push((0, r.end));
            }
        }
        out.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(out.len());
        for &(a, b) in out.iter() {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        *out = merged;
    }

    pub(crate) fn contains(&self, dt: DateTime) -> bool {
        if !self.allows(dt.date()) {
            return false;
        }
        let mut buf = Vec::new();
        self.day_intervals(dt.date(), &mut buf);
        let n = nanos(dt.time());
        buf.iter().any(|&(a, b)| a <= n && n < b)
    }

    /// From here on only the weekday matters, so a search that gets this far without an
    /// answer will never find one. Saturates at the last date there is: near the end of
    /// the calendar a blackout must not turn "open next Monday" into "never".
    fn horizon(&self, from: Date) -> Date {
        let after_blackouts = match self.blackouts.last() {
            Some(last) if *last >= from => last.tomorrow().unwrap_or(Date::MAX),
            _ => from,
        };
        after_blackouts.checked_add(PERIODIC_HORIZON_DAYS.days()).unwrap_or(Date::MAX)
    }

    /// Earliest open civil date-time at or after `x`.
    pub(crate) fn next_in(&self, x: DateTime) -> Option<DateTime> {
        if self.rules.iter().all(|r| r.days == 0) {
            return None;
        }
        let (mut d, mut from) = (x.date(), nanos(x.time()));
        if let Some(start) = self.start_date.filter(|s| d < *s) {
            (d, from) = (start, 0);
        }
        let horizon = self.horizon(d);
        let mut buf = Vec::new();
        loop {
            if self.end_date.is_some_and(|e| d > e) || d > horizon {
                return None;
            }
            if self.allows(d) {
                self.day_intervals(d, &mut buf);
                let hit = buf.iter().find_map(|&(a, b)| Some(a.max(from)).filter(|p| *p < b));
                if let Some(p) = hit {
                    return Some(at(d, p));
                }
            }
            (d, from) = (d.tomorrow().ok()?, 0);
        }
    }

    /// Earliest closed civil date-time at or after `x`.
    pub(crate) fn next_out(&self, x: DateTime) -> Option<DateTime> {
        let (mut d, mut from) = (x.date(), nanos(x.time()));
        let horizon = self.horizon(d);
        let mut buf = Vec::new();
        loop {
            if !self.allows(d) {
                return Some(at(d, from));
            }
            if d > horizon {
                // Open around the clock every day from here, so it closes only when the dates run out.
                return self.end_date.and_then(|e| e.tomorrow().ok()).map(|d| at(d, 0));
            }
            self.day_intervals(d, &mut buf);
            let mut p = from;
            for &(a, b) in &buf {
                if a > p {
                    break;
                }
                p = p.max(b);
            }
            if p < DAY {
                return Some(at(d, p));
            }
            (d, from) = (d.tomorrow().ok()?, 0);
        }
    }
}

/// Earliest instant `t >= from` whose civil time in `tz` lies in a set of civil date-times,
/// given `next_civil(x)` = the earliest member of that set at or after `x`. The set must be a
/// union of left-closed intervals, so that earliest member exists.
pub(crate) fn earliest_instant(tz: &TimeZone, from: Timestamp, mut next_civil: impl FnMut(DateTime) -> Option<DateTime>) -> Option<Timestamp> {
    let mut seg_start = from;
    // Nothing at or after this civil time is in the set; only a fold can still reach below it.
    let mut floor = DateTime::MAX;
    loop {
        let offset = tz.to_offset(seg_start);
        let seg_end = tz.following(seg_start).next().map(|tr| tr.timestamp());
        let x = offset.to_datetime(seg_start);
        if x < floor {
            match next_civil(x) {
                Some(y) => {
                    let t = offset.to_timestamp(y).ok()?;
                    match seg_end {
                        Some(end) if t >= end => {}
                        _ => return Some(t),
                    }
                }
                None => floor = floor.min(x),
            }
        }
        let end = seg_end?;
        let lowest_reading = Offset::UTC.to_datetime(end.checked_sub(MAX_OFFSET).ok()?);
        if lowest_reading >= floor {
            return None;
        }
        seg_start = end;
    }
}
