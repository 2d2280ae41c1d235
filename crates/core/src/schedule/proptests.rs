//! The searches against a brute-force reading of the definition, over many zones and DST days.

use super::*;
use jiff::civil::time;
use jiff::SignedDuration;
use proptest::prelude::*;

const ZONES: &[&str] = &[
    "America/New_York",
    "America/Los_Angeles",
    "America/Chicago",
    "Europe/London",
    "Europe/Paris",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
    "America/Sao_Paulo",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "UTC",
    "Asia/Kathmandu",
    "America/Santiago",
    "Asia/Beirut",
];

/// The definition, read literally: some occurrence of some window covers the instant's civil
/// time, and the instant's own local date is allowed.
#[allow(clippy::unnecessary_map_or)] // `is_none_or` is newer than the workspace's rust-version
fn oracle(s: &Schedule, at: Timestamp) -> bool {
    let dt = TimeZone::get(&s.timezone).unwrap().to_datetime(at);
    let d = dt.date();
    let dated = s.start_date.map_or(true, |x| d >= x) && s.end_date.map_or(true, |x| d <= x);
    if !dated || s.blackout_dates.contains(&d) {
        return false;
    }
    s.windows.is_empty()
        || s.windows.iter().any(|w| {
            [d, d.yesterday().unwrap()].into_iter().any(|d0| {
                let close_day = if w.end <= w.start { d0.tomorrow().unwrap() } else { d0 };
                w.days.contains(&d0.weekday()) && d0.to_datetime(w.start) <= dt && dt < close_day.to_datetime(w.end)
            })
        })
}

/// Times near the small hours, where DST transitions happen, more often than elsewhere.
fn clock_time() -> impl Strategy<Value = Time> {
    prop_oneof![
        (0i8..24, 0i8..60).prop_map(|(h, m)| time(h, m, 0, 0)),
        (0i8..4, prop::sample::select(vec![0i8, 15, 30, 45])).prop_map(|(h, m)| time(h, m, 0, 0)),
        (22i8..24, prop::sample::select(vec![0i8, 30])).prop_map(|(h, m)| time(h, m, 0, 0)),
    ]
}

fn window() -> impl Strategy<Value = Window> {
    (1u8..128, clock_time(), clock_time(), prop::bool::weighted(0.1)).prop_map(|(mask, start, end, all_day)| {
        let days = ALL_DAYS.iter().copied().filter(|d| mask & (1 << d.to_monday_zero_offset()) != 0).collect();
        Window { days, start, end: if all_day { start } else { end } }
    })
}

/// An instant in 2020–2035, half the time within two days of one of its zone's transitions.
fn instant(zone: &'static str) -> impl Strategy<Value = Timestamp> {
    (1_577_836_800i64..2_082_758_400, any::<bool>(), -172_800i64..172_800).prop_map(move |(secs, near, delta)| {
        let t = Timestamp::from_second(secs).unwrap();
        let tz = TimeZone::get(zone).unwrap();
        match tz.following(t).next() {
            Some(tr) if near => tr.timestamp() + SignedDuration::from_secs(delta),
            _ => t,
        }
    })
}

fn scenario() -> impl Strategy<Value = (Schedule, Timestamp)> {
    prop::sample::select(ZONES).prop_flat_map(|zone| {
        let dates = (prop::option::weighted(0.3, -20i32..20), prop::option::weighted(0.3, -5i32..40), prop::collection::vec(-3i32..20, 0..4));
        (prop::collection::vec(window(), 1..4), dates, instant(zone)).prop_map(move |(windows, dates, at)| {
            let base = TimeZone::get(zone).unwrap().to_datetime(at).date();
            let day = |n: i32| base.checked_add(n.days()).unwrap();
            let schedule = Schedule {
                timezone: zone.to_string(),
                windows,
                start_date: dates.0.map(day),
                end_date: dates.1.map(day),
                blackout_dates: dates.2.into_iter().map(day).collect(),
            };
            (schedule, at)
        })
    })
}

/// `result` is the earliest instant at or after `from` where `wanted` holds: checked just
/// before it, at random points between, and minute by minute when the gap is under three days.
fn assert_earliest(from: Timestamp, result: Option<Timestamp>, samples: &[f64], wanted: impl Fn(Timestamp) -> bool) -> Result<(), TestCaseError> {
    let end = match result {
        Some(r) => {
            prop_assert!(r >= from, "{r} is before {from}");
            prop_assert!(wanted(r), "not as wanted at the result {r}");
            r
        }
        // Never: nothing in the next two years either.
        None => from + SignedDuration::from_hours(24 * 730),
    };
    let gap = end.duration_since(from);
    let mut probes: Vec<Timestamp> = samples.iter().map(|f| from + gap.mul_f64(*f)).collect();
    probes.extend([from, end - SignedDuration::from_nanos(1), end - SignedDuration::from_secs(1)]);
    if gap < SignedDuration::from_hours(72) {
        let first_minute = Timestamp::from_second(from.as_second().div_euclid(60) * 60).unwrap();
        probes.extend((0..).map(|m| first_minute + SignedDuration::from_mins(m)).take_while(|t| *t < end));
    }
    for t in probes.into_iter().filter(|t| *t >= from && *t < end) {
        prop_assert!(!wanted(t), "{t} already qualifies, before the result {result:?}");
    }
    Ok(())
}

fn samples() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(0.0f64..1.0, 50)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn is_open_matches_the_definition((s, at) in scenario(), offsets in prop::collection::vec(-200_000i64..200_000, 20)) {
        for t in std::iter::once(at).chain(offsets.iter().map(|o| at + SignedDuration::from_secs(*o))) {
            prop_assert_eq!(s.is_open(t), oracle(&s, t), "at {}", t);
        }
    }

    #[test]
    fn next_open_is_the_earliest_open_instant_at_or_after((s, after) in scenario(), samples in samples()) {
        let p = s.prepared().unwrap();
        let result = s.next_open(after);
        assert_earliest(after, result, &samples, |t| p.is_open(t))?;
        if let Some(r) = result {
            prop_assert!(oracle(&s, r));
        }
    }

    #[test]
    fn next_close_is_the_earliest_closed_instant_at_or_after((s, at) in scenario(), samples in samples()) {
        let p = s.prepared().unwrap();
        assert_earliest(at, s.next_close(at), &samples, |t| !p.is_open(t))?;
    }

    #[test]
    fn next_open_for_is_the_earliest_instant_both_are_open(
        (s, after) in scenario(),
        recipient in prop::sample::select(ZONES),
        start in clock_time(),
        end in clock_time(),
        samples in samples(),
    ) {
        let (hours, rtz) = (LocalHours::new(start, end), TimeZone::get(recipient).unwrap());
        let p = s.prepared().unwrap();
        let result = next_open_for(&s, &hours, &rtz, after);
        assert_earliest(after, result, &samples, |t| p.is_open(t) && hours.is_open(&rtz, t))?;
    }

    #[test]
    fn avoid_period_is_the_earliest_open_instant_outside_the_period(
        (s, after) in scenario(),
        start in clock_time(),
        end in clock_time(),
        samples in samples(),
    ) {
        let (period, tz) = (LocalHours::new(start, end), s.time_zone().unwrap());
        let p = s.prepared().unwrap();
        let result = avoid_period(&s, &period, &tz, after);
        assert_earliest(after, result, &samples, |t| p.is_open(t) && !period.is_open(&tz, t))?;
    }

    #[test]
    fn next_open_in_all_is_the_earliest_instant_open_in_every_zone(
        (s, after) in scenario(),
        recipients in prop::collection::vec(prop::sample::select(ZONES), 1..5),
        start in clock_time(),
        end in clock_time(),
        samples in samples(),
    ) {
        let hours = LocalHours::new(start, end);
        let zones: Vec<TimeZone> = recipients.iter().map(|z| TimeZone::get(z).unwrap()).collect();
        let p = s.prepared().unwrap();
        let result = next_open_in_all(&s, &hours, &zones, after);
        let wanted = |t| p.is_open(t) && zones.iter().all(|tz| hours.is_open(tz, t));
        assert_earliest(after, result, &samples, wanted)?;
        if let Some(r) = result {
            prop_assert!(is_open_in_all(&s, &hours, &zones, r));
        }
        // One zone is the single-zone search.
        prop_assert_eq!(next_open_in_all(&s, &hours, &zones[..1], after), next_open_for(&s, &hours, &zones[0], after));
    }

    #[test]
    fn avoid_period_in_all_is_the_earliest_open_instant_outside_the_period_everywhere(
        (s, after) in scenario(),
        recipients in prop::collection::vec(prop::sample::select(ZONES), 1..4),
        start in clock_time(),
        end in clock_time(),
        samples in samples(),
    ) {
        let period = LocalHours::new(start, end);
        let zones: Vec<TimeZone> = recipients.iter().map(|z| TimeZone::get(z).unwrap()).collect();
        let p = s.prepared().unwrap();
        let result = avoid_period_in_all(&s, &period, &zones, after);
        assert_earliest(after, result, &samples, |t| p.is_open(t) && zones.iter().all(|tz| !period.is_open(tz, t)))?;
    }

    #[test]
    fn schedules_survive_a_json_round_trip((s, _) in scenario()) {
        let json = serde_json::to_string(&s).unwrap();
        prop_assert_eq!(serde_json::from_str::<Schedule>(&json).unwrap(), s);
    }
}
