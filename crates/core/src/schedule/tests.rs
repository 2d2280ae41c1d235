use super::*;
use jiff::civil::{date, time};
use jiff::tz::TimeZone;

const NY: &str = "America/New_York";

fn local(tz: &str, civil: &str) -> Timestamp {
    civil.parse::<DateTime>().unwrap().to_zoned(TimeZone::get(tz).unwrap()).unwrap().timestamp()
}

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn office_hours() -> Schedule {
    Schedule { windows: vec![Window::weekdays(time(9, 0, 0, 0), time(17, 0, 0, 0))], ..Schedule::always(NY) }
}

#[test]
fn after_closing_time_it_opens_at_nine_the_next_morning() {
    // 2026-03-03 is a Tuesday.
    let s = office_hours();
    assert_eq!(s.next_open(local(NY, "2026-03-03T20:00")), Some(local(NY, "2026-03-04T09:00")));
    assert!(!s.is_open(local(NY, "2026-03-03T17:00")));
    assert!(s.is_open(local(NY, "2026-03-03T16:59:59")));
}

#[test]
fn inside_a_window_next_open_is_now() {
    let s = office_hours();
    let now = local(NY, "2026-03-03T10:17:23.5");
    assert_eq!(s.next_open(now), Some(now));
}

#[test]
fn on_a_saturday_it_opens_on_monday_morning() {
    assert_eq!(office_hours().next_open(local(NY, "2026-03-07T11:00")), Some(local(NY, "2026-03-09T09:00")));
}

#[test]
fn on_friday_evening_it_opens_on_monday_morning() {
    assert_eq!(office_hours().next_open(local(NY, "2026-03-06T18:00")), Some(local(NY, "2026-03-09T09:00")));
}

#[test]
fn a_blackout_monday_moves_the_opening_to_tuesday() {
    let s = Schedule { blackout_dates: vec![date(2026, 3, 9)], ..office_hours() };
    assert_eq!(s.next_open(local(NY, "2026-03-06T18:00")), Some(local(NY, "2026-03-10T09:00")));
    assert!(!s.is_open(local(NY, "2026-03-09T12:00")));
}

#[test]
fn a_window_starting_in_the_spring_forward_gap_opens_when_the_clocks_jump() {
    // 2026-03-08 02:00 EST becomes 03:00 EDT: 02:30 never happens, 03:00 EDT is 07:00 UTC.
    let s = Schedule { windows: vec![Window::new(&[Weekday::Sunday], time(2, 30, 0, 0), time(4, 0, 0, 0))], ..Schedule::always(NY) };
    assert_eq!(s.next_open(local(NY, "2026-03-08T00:00")), Some(ts("2026-03-08T07:00:00Z")));
    assert!(!s.is_open(ts("2026-03-08T06:59:59.999999999Z")));
    assert_eq!(s.next_close(ts("2026-03-08T07:00:00Z")), Some(ts("2026-03-08T08:00:00Z")));
}

#[test]
fn a_time_repeated_by_fall_back_is_open_both_times() {
    // 2026-11-01 02:00 EDT becomes 01:00 EST, so 01:00–01:30 happens twice.
    let s = Schedule { windows: vec![Window::new(&[Weekday::Sunday], time(1, 0, 0, 0), time(1, 30, 0, 0))], ..Schedule::always(NY) };
    assert!(s.is_open(ts("2026-11-01T01:15-04:00")));
    assert!(s.is_open(ts("2026-11-01T01:15-05:00")));
    assert!(!s.is_open(ts("2026-11-01T01:45-04:00")));
    assert_eq!(s.next_close(ts("2026-11-01T01:15-04:00")), Some(ts("2026-11-01T01:30-04:00")));
    assert_eq!(s.next_open(ts("2026-11-01T01:30-04:00")), Some(ts("2026-11-01T01:00-05:00")));

    // Even when that repeat is the last open time the schedule will ever have.
    let last_day = Schedule { end_date: Some(date(2026, 11, 1)), ..s };
    assert_eq!(last_day.next_open(ts("2026-11-01T01:45-04:00")), Some(ts("2026-11-01T01:00-05:00")));
    assert_eq!(last_day.next_open(ts("2026-11-01T01:30-05:00")), None);
}

#[test]
fn a_window_crossing_midnight_closes_the_next_morning() {
    // 2026-03-06 is a Friday.
    let s = Schedule { windows: vec![Window::new(&[Weekday::Friday], time(22, 0, 0, 0), time(2, 0, 0, 0))], ..Schedule::always(NY) };
    assert!(s.is_open(local(NY, "2026-03-06T23:00")));
    assert!(s.is_open(local(NY, "2026-03-07T01:00")));
    assert!(!s.is_open(local(NY, "2026-03-07T03:00")));
    assert!(!s.is_open(local(NY, "2026-03-06T01:00")), "only Friday's occurrence has a tail, on Saturday");
    assert_eq!(s.next_close(local(NY, "2026-03-06T23:00")), Some(local(NY, "2026-03-07T02:00")));
}

#[test]
fn a_crossing_windows_tail_is_closed_on_a_blackout_date() {
    let s = Schedule {
        windows: vec![Window::new(&[Weekday::Friday], time(22, 0, 0, 0), time(2, 0, 0, 0))],
        blackout_dates: vec![date(2026, 3, 7)],
        ..Schedule::always(NY)
    };
    assert!(!s.is_open(local(NY, "2026-03-07T01:00")));
    assert_eq!(s.next_close(local(NY, "2026-03-06T23:00")), Some(local(NY, "2026-03-07T00:00")));
}

#[test]
fn equal_start_and_end_is_open_all_day() {
    let s = Schedule { windows: vec![Window::new(&[Weekday::Monday], time(6, 0, 0, 0), time(6, 0, 0, 0))], ..Schedule::always(NY) };
    assert!(s.is_open(local(NY, "2026-03-02T06:00")));
    assert!(s.is_open(local(NY, "2026-03-03T05:59")));
    assert!(!s.is_open(local(NY, "2026-03-03T06:00")));
}

#[test]
fn past_the_end_date_it_never_opens_again() {
    let s = Schedule { end_date: Some(date(2026, 3, 6)), ..office_hours() };
    assert_eq!(s.next_open(local(NY, "2026-03-06T18:00")), None);
    assert_eq!(s.next_open(local(NY, "2026-03-06T16:00")), Some(local(NY, "2026-03-06T16:00")));
}

#[test]
fn before_the_start_date_it_waits_for_the_start_date() {
    let s = Schedule { start_date: Some(date(2026, 6, 1)), ..office_hours() };
    assert_eq!(s.next_open(local(NY, "2026-03-03T10:00")), Some(local(NY, "2026-06-01T09:00")));
}

#[test]
fn a_window_without_days_never_opens() {
    let s = Schedule { windows: vec![Window::new(&[], time(9, 0, 0, 0), time(17, 0, 0, 0))], ..Schedule::always(NY) };
    assert_eq!(s.next_open(local(NY, "2026-03-03T10:00")), None);
}

#[test]
fn an_always_schedule_never_closes_unless_its_dates_run_out() {
    let now = local(NY, "2026-03-03T10:00");
    assert!(Schedule::always(NY).is_open(now));
    assert_eq!(Schedule::always(NY).next_close(now), None);
    let s = Schedule { end_date: Some(date(2026, 3, 20)), ..Schedule::always(NY) };
    assert_eq!(s.next_close(now), Some(local(NY, "2026-03-21T00:00")));
}

#[test]
fn next_close_is_the_end_of_the_current_window_or_now_when_closed() {
    let s = office_hours();
    assert_eq!(s.next_close(local(NY, "2026-03-03T10:00")), Some(local(NY, "2026-03-03T17:00")));
    let closed = local(NY, "2026-03-03T20:00");
    assert_eq!(s.next_close(closed), Some(closed));
}

#[test]
fn an_unknown_zone_is_never_open() {
    let s = Schedule::always("Mars/Olympus_Mons");
    assert!(!s.is_open(ts("2026-03-03T10:00Z")));
    assert_eq!(s.next_open(ts("2026-03-03T10:00Z")), None);
}

#[test]
fn validation_errors_name_the_field() {
    let err = Schedule::always("Mars/Olympus_Mons").validate().unwrap_err();
    assert_eq!(err.field(), "timezone");
    assert!(err.to_string().starts_with("timezone"));

    let s = Schedule { start_date: Some(date(2026, 5, 1)), end_date: Some(date(2026, 4, 1)), ..office_hours() };
    assert!(s.validate().unwrap_err().to_string().starts_with("start_date"));

    let mut s = office_hours();
    s.windows.push(Window::new(&[], time(1, 0, 0, 0), time(2, 0, 0, 0)));
    let err = s.validate().unwrap_err();
    assert_eq!(err.field(), "windows[1].days");
    assert!(err.to_string().starts_with("windows[1].days"));

    assert_eq!(office_hours().validate(), Ok(()));
}

#[test]
fn schedules_travel_as_hh_mm_and_short_weekday_names() {
    let s = Schedule { blackout_dates: vec![date(2026, 12, 25)], ..office_hours() };
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "timezone": NY,
            "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}],
            "blackout_dates": ["2026-12-25"],
        })
    );
    assert_eq!(serde_json::from_value::<Schedule>(json).unwrap(), s);

    let parsed: Schedule = serde_json::from_str(r#"{"timezone":"UTC","start_date":"2026-01-02"}"#).unwrap();
    assert_eq!(parsed, Schedule { start_date: Some(date(2026, 1, 2)), ..Schedule::always("UTC") });
    assert!(serde_json::from_str::<Window>(r#"{"days":["mo"],"start":"09:00","end":"10:00"}"#).is_err());
    assert!(serde_json::from_str::<Window>(r#"{"days":["mon"],"start":"9am","end":"10:00"}"#).is_err());
}

#[test]
fn recipient_hours_default_to_eight_to_nine_pm_in_their_zone() {
    let la = TimeZone::get("America/Los_Angeles").unwrap();
    let hours = LocalHours::default();
    assert!(!hours.is_open(&la, local("America/Los_Angeles", "2026-03-03T07:59")));
    assert!(hours.is_open(&la, local("America/Los_Angeles", "2026-03-03T08:00")));
    assert!(!hours.is_open(&la, local("America/Los_Angeles", "2026-03-03T21:00")));
    assert_eq!(hours.next_open(&la, local("America/Los_Angeles", "2026-03-03T22:00")), local("America/Los_Angeles", "2026-03-04T08:00"));
    assert_eq!(hours.next_close(&la, local("America/Los_Angeles", "2026-03-03T12:00")), Some(local("America/Los_Angeles", "2026-03-03T21:00")));
    assert_eq!(LocalHours::new(time(0, 0, 0, 0), time(0, 0, 0, 0)).next_close(&la, Timestamp::UNIX_EPOCH), None);
}

#[test]
fn a_west_coast_recipient_is_first_called_at_eight_their_time() {
    let la = TimeZone::get("America/Los_Angeles").unwrap();
    let got = next_open_for(&office_hours(), &LocalHours::default(), &la, local(NY, "2026-03-03T09:00"));
    assert_eq!(got, Some(local(NY, "2026-03-03T11:00")));
}

#[test]
fn a_recipient_in_india_is_only_reachable_early_in_the_new_york_day() {
    // 09:00 EST is 19:30 IST; 21:00 IST is 10:30 EST.
    let india = TimeZone::get("Asia/Kolkata").unwrap();
    let (s, hours) = (office_hours(), LocalHours::default());
    assert_eq!(next_open_for(&s, &hours, &india, local(NY, "2026-03-03T08:00")), Some(local(NY, "2026-03-03T09:00")));
    assert_eq!(next_open_for(&s, &hours, &india, local(NY, "2026-03-03T10:30")), Some(local(NY, "2026-03-04T09:00")));
    assert!(!is_open_for(&s, &hours, &india, local(NY, "2026-03-03T10:30")));
}

#[test]
fn schedule_and_hours_that_never_overlap_give_none() {
    let s = Schedule { windows: vec![Window::every_day(time(1, 0, 0, 0), time(2, 0, 0, 0))], ..Schedule::always(NY) };
    let ny = TimeZone::get(NY).unwrap();
    assert_eq!(next_open_for(&s, &LocalHours::default(), &ny, local(NY, "2026-03-03T09:00")), None);
}

#[test]
fn retries_can_be_kept_out_of_a_peak_period() {
    let ny = TimeZone::get(NY).unwrap();
    let peak = LocalHours::new(time(17, 0, 0, 0), time(19, 0, 0, 0));
    let s = Schedule::always(NY);
    assert_eq!(avoid_period(&s, &peak, &ny, local(NY, "2026-03-03T17:30")), Some(local(NY, "2026-03-03T19:00")));
    assert_eq!(avoid_period(&s, &peak, &ny, local(NY, "2026-03-03T16:00")), Some(local(NY, "2026-03-03T16:00")));
    // Office hours end at 17:00, so after 16:59 the next non-peak open time is tomorrow at 09:00.
    let got = avoid_period(&office_hours(), &peak, &ny, local(NY, "2026-03-03T17:00"));
    assert_eq!(got, Some(local(NY, "2026-03-04T09:00")));
}

#[test]
fn a_blackout_near_the_end_of_the_calendar_does_not_close_the_schedule_for_ever() {
    // Friday evening: the next opening is Monday 09:00, whatever is blacked out in 9999.
    let now = local(NY, "2026-03-06T18:00");
    for blackout in [date(2100, 6, 1), date(9999, 12, 25), date(9999, 12, 31)] {
        let s = Schedule { blackout_dates: vec![blackout], ..office_hours() };
        assert_eq!(s.next_open(now), Some(local(NY, "2026-03-09T09:00")), "{blackout}");
        let ny = TimeZone::get(NY).unwrap();
        assert_eq!(next_open_for(&s, &LocalHours::default(), &ny, now), Some(local(NY, "2026-03-09T09:00")), "{blackout}");
    }
}

#[test]
fn a_start_date_in_the_last_week_of_the_calendar_still_opens() {
    // 9999-12-24 is a Friday; a week later there are no dates left to look at.
    let s = Schedule { start_date: Some(date(9999, 12, 24)), ..office_hours() };
    assert_eq!(s.next_open(local(NY, "2026-03-06T18:00")), Some(local(NY, "9999-12-24T09:00")));
}

#[test]
fn a_far_blackout_does_not_make_a_never_agreeing_search_walk_to_it() {
    // The campaign opens 01:00–02:00 New York time, the recipient's hours are 08:00–21:00
    // New York time: never both. The answer is the same with a blackout in the year 9000,
    // and it comes as fast (the walk to the blackout took seconds).
    let ny = TimeZone::get(NY).unwrap();
    let night =
        Schedule { windows: vec![Window::every_day(time(1, 0, 0, 0), time(2, 0, 0, 0))], blackout_dates: vec![date(9000, 1, 1)], ..Schedule::always(NY) };
    let now = local(NY, "2026-03-03T09:00");
    let started = std::time::Instant::now();
    assert_eq!(next_open_for(&night, &LocalHours::default(), &ny, now), None);
    let peak_all_day = LocalHours::new(time(0, 0, 0, 0), time(0, 0, 0, 0));
    assert_eq!(avoid_period(&night, &peak_all_day, &ny, now), None);
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(1), "took {took:?}");
}

#[test]
fn blackouts_covering_the_only_overlap_days_move_the_answer_past_them() {
    // Mondays 09:00–17:00 New York; the recipient is reachable any time. The next three
    // Mondays are holidays, the fourth is the answer: blackouts are honoured, not skipped.
    let ny = TimeZone::get(NY).unwrap();
    let s = Schedule {
        windows: vec![Window::new(&[Weekday::Monday], time(9, 0, 0, 0), time(17, 0, 0, 0))],
        blackout_dates: vec![date(2026, 3, 9), date(2026, 3, 16), date(2026, 3, 23), date(2030, 1, 7)],
        ..Schedule::always(NY)
    };
    let now = local(NY, "2026-03-06T18:00");
    assert_eq!(next_open_for(&s, &LocalHours::default(), &ny, now), Some(local(NY, "2026-03-30T09:00")));
    let peak = LocalHours::new(time(9, 0, 0, 0), time(10, 0, 0, 0));
    assert_eq!(avoid_period(&s, &peak, &ny, now), Some(local(NY, "2026-03-30T10:00")));
}

#[test]
fn schedules_are_bounded_and_the_error_names_the_field() {
    let many_windows = Schedule { windows: vec![Window::weekdays(time(9, 0, 0, 0), time(10, 0, 0, 0)); MAX_WINDOWS + 1], ..Schedule::always(NY) };
    assert_eq!(many_windows.validate().unwrap_err().field(), "windows");
    let at_most = Schedule { windows: vec![Window::weekdays(time(9, 0, 0, 0), time(10, 0, 0, 0)); MAX_WINDOWS], ..Schedule::always(NY) };
    assert_eq!(at_most.validate(), Ok(()));

    let day = date(2026, 1, 1);
    let blackouts = |n: usize| (0..n as i64).map(|i| day.checked_add(jiff::Span::new().days(i)).unwrap()).collect::<Vec<_>>();
    let s = Schedule { blackout_dates: blackouts(MAX_BLACKOUT_DATES + 1), ..office_hours() };
    let err = s.validate().unwrap_err();
    assert_eq!(err.field(), "blackout_dates");
    assert!(err.to_string().starts_with("blackout_dates: 1001 dates"), "{err}");
    let s = Schedule { blackout_dates: blackouts(MAX_BLACKOUT_DATES), ..office_hours() };
    assert_eq!(s.validate(), Ok(()));

    let long = Schedule { start_date: Some(date(2026, 1, 1)), end_date: Some(date(2036, 1, 10)), ..office_hours() };
    let err = long.validate().unwrap_err();
    assert_eq!(err.field(), "end_date");
    assert!(err.to_string().contains("3661 days after start_date"), "{err}");
    let ten_years = Schedule { end_date: Some(date(2036, 1, 9)), ..long };
    assert_eq!(ten_years.validate(), Ok(()));

    let twice = Schedule {
        windows: vec![Window::new(&[Weekday::Monday, Weekday::Tuesday, Weekday::Monday], time(9, 0, 0, 0), time(10, 0, 0, 0))],
        ..Schedule::always(NY)
    };
    let err = twice.validate().unwrap_err();
    assert_eq!(err.field(), "windows[0].days");
    assert!(err.to_string().contains("mon is listed twice"), "{err}");
}

#[test]
fn an_australian_mobile_is_called_only_when_it_is_day_in_perth_and_in_sydney() {
    // Candidates of an AU mobile, east to west. In June (no DST) Lord Howe is UTC+10:30,
    // Cocos UTC+6:30: 08:00 at Cocos is 01:30Z, 21:00 at Lord Howe is 10:30Z.
    let zones: Vec<TimeZone> =
        ["Australia/Lord_Howe", "Australia/Sydney", "Australia/Perth", "Indian/Cocos"].iter().map(|z| TimeZone::get(z).unwrap()).collect();
    let hours = LocalHours::default();
    let s = Schedule::always("UTC");
    // 06:37 in Perth, 08:37 in Sydney: Sydney alone would dial, the set waits.
    let perth_early = local("Australia/Perth", "2026-06-10T06:37");
    assert!(hours.is_open(&zones[1], perth_early));
    assert!(!is_open_in_all(&s, &hours, &zones, perth_early));
    assert_eq!(next_open_in_all(&s, &hours, &zones, perth_early), Some(ts("2026-06-10T01:30:00Z")));
    assert_eq!(hours.next_open_in_all(&zones, perth_early), Some(ts("2026-06-10T01:30:00Z")));
    // After 21:00 at Lord Howe nothing is open until the next Cocos morning.
    assert_eq!(next_open_in_all(&s, &hours, &zones, ts("2026-06-10T10:30:00Z")), Some(ts("2026-06-11T01:30:00Z")));
}

#[test]
fn zones_further_apart_than_the_hours_never_share_a_moment() {
    // Kaliningrad (UTC+2) and Kamchatka (UTC+12) are ten hours apart: 09:00–17:00 never
    // holds in both, 08:00–21:00 does for three hours a day.
    let zones: Vec<TimeZone> = ["Europe/Kaliningrad", "Asia/Kamchatka"].iter().map(|z| TimeZone::get(z).unwrap()).collect();
    let after = ts("2026-06-10T00:00:00Z");
    let office = LocalHours::new(time(9, 0, 0, 0), time(17, 0, 0, 0));
    assert_eq!(office.next_open_in_all(&zones, after), None);
    assert_eq!(LocalHours::default().next_open_in_all(&zones, after), Some(ts("2026-06-10T06:00:00Z")));
}

#[test]
fn a_retry_avoids_the_peak_in_every_candidate_zone() {
    let zones: Vec<TimeZone> = ["Europe/Paris", "Europe/London"].iter().map(|z| TimeZone::get(z).unwrap()).collect();
    let peak = LocalHours::new(time(12, 0, 0, 0), time(14, 0, 0, 0));
    // 11:30Z is 13:30 in Paris, 12:30 in London: the peak ends at 14:00 London (13:00Z).
    let got = avoid_period_in_all(&Schedule::always("UTC"), &peak, &zones, ts("2026-06-10T11:30:00Z"));
    assert_eq!(got, Some(ts("2026-06-10T13:00:00Z")));
}
