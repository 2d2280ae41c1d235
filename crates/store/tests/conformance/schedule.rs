//! When to call, over a simulated week with the clock injected as `now`: nobody is dialled
//! outside the campaign's windows or outside their own local calling hours.

use crate::support::*;
use dialtone_core::schedule::{LocalHours, Schedule, Window};
use dialtone_core::{CampaignStatus, ContactZone, Mode, Outcome, RetryPolicy, TzSource};
use dialtone_store::{NewCampaign, NewContact};
use jiff::civil::{time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use std::collections::BTreeMap;

pub async fn over_a_week_nobody_is_dialled_outside_campaign_windows_or_their_own_hours(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let schedule = Schedule {
        windows: vec![Window::weekdays(time(9, 0, 0, 0), time(17, 0, 0, 0)), Window::new(&[Weekday::Saturday], time(10, 0, 0, 0), time(14, 0, 0, 0))],
        ..Schedule::always("America/New_York")
    };
    let hours = LocalHours::default();
    let new = NewCampaign {
        workspace_id: ws.clone(),
        name: "week".into(),
        provider: dialtone_core::ProviderKind::Sim,
        assistant_id: "asst".into(),
        phone_number_id: "pn".into(),
        mode: Mode::Continuous,
        max_concurrent: 10,
        max_attempts: 1000,
        retry: RetryPolicy::uniform(1000, SignedDuration::from_mins(20)),
        default_region: "US".into(),
        schedule: schedule.clone(),
        calling_hours: hours,
        recurrence: dialtone_core::frequency::Recurrence::new(dialtone_core::frequency::Frequency::Once),
        max_call_duration_secs: None,
        assume_campaign_timezone_for_ambiguous: false,
        agent_id: None,
        caller_pool: Default::default(),
        calls_per_minute: None,
        account_id: None,
    };
    // 2026-03-02 is a Monday; the week crosses the US spring-forward on 2026-03-08.
    let monday: Timestamp = "2026-03-02T00:00:00Z".parse().unwrap();
    let cmp = store.create_campaign(new, monday).await.unwrap();
    let zones = ["America/New_York", "America/Los_Angeles", "Europe/London", "Asia/Kolkata", "Asia/Tokyo"];
    let contacts: Vec<NewContact> = zones
        .iter()
        .enumerate()
        .map(|(i, z)| NewContact {
            phone: phone(i as u32),
            extension: None,
            name: None,
            variables: Default::default(),
            timezone: Some(ContactZone::single(*z, TzSource::Explicit)),
            line: i as u64 + 1,
        })
        .collect();
    store.insert_contacts(&ws, &cmp.id, &contacts, monday).await.unwrap();
    assert!(store.transition_campaign(&ws, &cmp.id, &[CampaignStatus::Draft], CampaignStatus::Starting, monday).await.unwrap());

    let zone_of: BTreeMap<String, &str> = contacts.iter().zip(zones).map(|(c, z)| (c.phone.to_string(), z)).collect();
    let mut dials_per_zone: BTreeMap<&str, u32> = BTreeMap::new();
    let mut now = monday;
    let end = monday + SignedDuration::from_hours(7 * 24 + 12);
    while now < end {
        for dial in claim(&store, &cmp.id, now).await {
            let zone = zone_of[dial.phone.as_str()];
            let tz = TimeZone::get(zone).unwrap();
            assert!(schedule.is_open(now), "{} dialled at {now} while the campaign is closed", dial.phone);
            assert!(hours.is_open(&tz, now), "{} dialled at {} local time, outside 08:00–21:00", dial.phone, now.to_zoned(tz.clone()));
            *dials_per_zone.entry(zone).or_default() += 1;
            place(&store, &dial, now).await;
            end_call(&store, &dial.call_id, now).await;
        }
        now += SignedDuration::from_mins(5);
    }
    eprintln!("dials per zone over the week: {dials_per_zone:?}");
    // The test would pass vacuously if nobody were ever dialled: check who was.
    for zone in ["America/New_York", "America/Los_Angeles", "Europe/London", "Asia/Kolkata"] {
        assert!(dials_per_zone.get(zone).copied().unwrap_or(0) >= 6, "{zone} is reachable inside the windows: {dials_per_zone:?}");
    }
    assert_eq!(dials_per_zone.get("Asia/Tokyo"), None, "Tokyo's 08:00–21:00 never meets New York's office hours");
    // A schedule that still opens but never meets the contact's hours is a misconfiguration
    // the user can fix: the contact waits, saying why, and keeps its attempts.
    let contacts = crate::zones::contacts_by_phone(&store, &cmp).await;
    let tokyo_phone = zone_of.iter().find(|(_, z)| **z == "Asia/Tokyo").map(|(p, _)| p.clone()).expect("the Tokyo contact");
    let tokyo = &contacts[&tokyo_phone];
    assert_eq!(tokyo.status, dialtone_core::ContactStatus::Pending, "it waits, it is not given up: {tokyo:?}");
    assert_eq!(tokyo.attempts, 0, "no attempt is spent on it");
    let w = tokyo.waiting.as_ref().expect("a waiting contact says why");
    assert_eq!((w.reason, w.until), (dialtone_store::WaitReason::HoursOutsideSchedule, None), "{w:?}");
    assert!(w.message.contains("Asia/Tokyo") && w.message.contains("schedule"), "{}", w.message);
}

async fn end_call(store: &S, call: &dialtone_core::CallId, now: Timestamp) {
    end(store, call, Outcome::NoAnswer, now).await;
}

pub async fn a_daily_campaign_calls_each_contact_once_per_local_day(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let midnight = jiff::civil::Time::midnight();
    let new = NewCampaign {
        workspace_id: ws.clone(),
        name: "daily".into(),
        provider: dialtone_core::ProviderKind::Sim,
        assistant_id: "asst".into(),
        phone_number_id: "pn".into(),
        mode: Mode::Continuous,
        max_concurrent: 10,
        max_attempts: 3,
        retry: RetryPolicy::uniform(3, SignedDuration::from_mins(10)),
        default_region: "US".into(),
        schedule: Schedule::always("America/New_York"),
        calling_hours: LocalHours::new(midnight, midnight),
        recurrence: dialtone_core::frequency::Recurrence {
            max_occurrences: Some(3),
            ..dialtone_core::frequency::Recurrence::new(dialtone_core::frequency::Frequency::Daily)
        },
        max_call_duration_secs: None,
        assume_campaign_timezone_for_ambiguous: false,
        agent_id: None,
        caller_pool: Default::default(),
        calls_per_minute: None,
        account_id: None,
    };
    let start: Timestamp = "2026-04-06T12:00:00Z".parse().unwrap();
    let cmp = store.create_campaign(new, start).await.unwrap();
    let contacts: Vec<NewContact> = ["America/New_York", "Asia/Tokyo"]
        .iter()
        .enumerate()
        .map(|(i, z)| NewContact {
            phone: phone(i as u32),
            extension: None,
            name: None,
            variables: Default::default(),
            timezone: Some(ContactZone::single(*z, TzSource::Explicit)),
            line: i as u64 + 1,
        })
        .collect();
    store.insert_contacts(&ws, &cmp.id, &contacts, start).await.unwrap();
    assert!(store.transition_campaign(&ws, &cmp.id, &[CampaignStatus::Draft], CampaignStatus::Starting, start).await.unwrap());

    let mut days: BTreeMap<(String, jiff::civil::Date), u32> = BTreeMap::new();
    let mut now = start;
    let mut i = 0;
    while now < start + SignedDuration::from_hours(24 * 5) {
        for dial in claim(&store, &cmp.id, now).await {
            let zone = if dial.phone == phone(0) { "America/New_York" } else { "Asia/Tokyo" };
            let local_day = now.to_zoned(TimeZone::get(zone).unwrap()).date();
            *days.entry((zone.to_string(), local_day)).or_default() += 1;
            place(&store, &dial, now).await;
            // Alternate outcomes: a no-answer must not bring a second call the same day.
            let outcome = if i % 2 == 0 { Outcome::NoAnswer } else { Outcome::Completed };
            i += 1;
            end(&store, &dial.call_id, outcome, now).await;
        }
        now += SignedDuration::from_mins(15);
    }
    assert!(days.values().all(|n| *n == 1), "someone was called twice in one local day: {days:?}");
    for zone in ["America/New_York", "Asia/Tokyo"] {
        assert_eq!(days.keys().filter(|(z, _)| z == zone).count(), 3, "max_occurrences 3 for {zone}: {days:?}");
    }
    let counts = store.campaign_counts(&cmp.id).await.unwrap();
    assert_eq!(counts.contacts.get("pending"), None, "both recurrences ended: {counts:?}");
}
