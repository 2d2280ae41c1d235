//! Numbers that may be in several zones (issue 9): a simulated week over numbers of
//! multi-zone countries, with the clock injected as `now`. Nobody is dialled outside the
//! calling hours in any zone their number may be in; contacts whose zones never share a
//! calling hour wait, and say why; a campaign may opt into judging them in its own zone.

use crate::support::*;
use dialtone_core::schedule::{LocalHours, Schedule};
use dialtone_core::{contact_timezone, CampaignStatus, ContactZone, Mode, Outcome, PhoneNumber, RetryPolicy, TzSource};
use dialtone_store::{Campaign, Contact, NewCampaign, NewContact, Page, WaitReason};
use jiff::civil::time;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use std::collections::BTreeMap;

/// Numbers of countries that span several zones, written as E.164. Each keeps every zone
/// its prefix leaves open (see `dialtone_core::timezone`).
const MULTI_ZONE: &[&str] = &[
    "+61412345678",   // AU mobile: Perth to Lord Howe, Christmas Island, Cocos
    "+61892221234",   // AU 08: Perth and Adelaide
    "+79141234567",   // RU mobile: Kaliningrad side to Kamchatka, and Kazakhstan
    "+77012345678",   // KZ mobile (+7 is shared with Russia)
    "+18005550199",   // US/CA toll-free: every NANP clock
    "+18885550100",   // US/CA toll-free
    "+12082991234",   // 208 (Idaho): Pacific and Mountain
    "+19075551234",   // 907 unlisted exchange: Alaska and Hawaii-Aleutian
    "+5215512345678", // MX, old mobile form
    "+5508001234567", // BR, not tied to an area
    "+243812345678",  // CD mobile: Kinshasa and Lubumbashi
    "+628001234567",  // ID toll-free: Jakarta, Makassar, Jayapura
    "+6281112345678", // ID mobile whose prefix spans Jakarta and Makassar
];

/// Single-zone numbers, so that the week is seen to dial at all.
const ONE_ZONE: &[&str] = &["+12125550123", "+442079460018", "+525512345678"];

fn zone_of(e164: &str, campaign_tz: &str) -> ContactZone {
    contact_timezone(None, &PhoneNumber::from_db(e164.to_string()), campaign_tz).unwrap()
}

fn contact(e164: &str, zone: ContactZone, line: u64) -> NewContact {
    NewContact { phone: PhoneNumber::from_db(e164.to_string()), extension: None, name: None, variables: Default::default(), timezone: Some(zone), line }
}

fn tzs(names: &[String]) -> Vec<TimeZone> {
    names.iter().map(|z| TimeZone::get(z).unwrap()).collect()
}

async fn campaign(store: &S, schedule: Schedule, hours: LocalHours, assume_campaign_tz: bool, now: Timestamp) -> Campaign {
    let ws = store.default_workspace().await.unwrap();
    let new = NewCampaign {
        workspace_id: ws,
        name: "zones".into(),
        provider: dialtone_core::ProviderKind::Sim,
        assistant_id: "asst".into(),
        phone_number_id: "pn".into(),
        mode: Mode::Continuous,
        max_concurrent: 50,
        max_attempts: 1000,
        retry: RetryPolicy::uniform(1000, SignedDuration::from_mins(20)),
        default_region: "US".into(),
        schedule,
        calling_hours: hours,
        recurrence: dialtone_core::frequency::Recurrence::new(dialtone_core::frequency::Frequency::Once),
        assume_campaign_timezone_for_ambiguous: assume_campaign_tz,
        agent_id: None,
        caller_pool: Default::default(),
        calls_per_minute: None,
        max_call_duration_secs: None,
        account_id: None,
    };
    store.create_campaign(new, now).await.unwrap()
}

pub async fn contacts_by_phone(store: &S, cmp: &Campaign) -> BTreeMap<String, Contact> {
    let page = Page { limit: 500, before: None };
    let all = store.list_contacts(&cmp.workspace_id, &cmp.id, &page).await.unwrap();
    all.into_iter().map(|c| (c.phone.to_string(), c)).collect()
}

pub async fn over_a_week_no_multi_zone_number_is_dialled_outside_the_hours_of_any_of_its_zones(store: S) {
    let hours = LocalHours::default();
    // 2026-03-02 is a Monday; the week crosses the US spring-forward on 2026-03-08, and
    // Australia and Brazil are on their summer clocks.
    let monday: Timestamp = "2026-03-02T00:00:00Z".parse().unwrap();
    let cmp = campaign(&store, Schedule::always("America/Chicago"), hours, false, monday).await;
    let ws = cmp.workspace_id.clone();
    let mut zones: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut rows = Vec::new();
    for (i, number) in MULTI_ZONE.iter().chain(ONE_ZONE).enumerate() {
        let zone = zone_of(number, "America/Chicago");
        if MULTI_ZONE.contains(number) {
            assert_eq!(zone.source, TzSource::Ambiguous, "{number}: {zone:?}");
        }
        zones.insert(number.to_string(), zone.timezones.clone());
        rows.push(contact(number, zone, i as u64 + 1));
    }
    store.insert_contacts(&ws, &cmp.id, &rows, monday).await.unwrap();
    // Stored and read back with every candidate, on both backends.
    for (number, c) in contacts_by_phone(&store, &cmp).await {
        assert_eq!(c.timezones, zones[&number], "{number}");
        let want = if MULTI_ZONE.contains(&number.as_str()) { TzSource::Ambiguous } else { c.timezone_source.unwrap() };
        assert_eq!(c.timezone_source, Some(want), "{number}");
        assert!(c.timezones.contains(c.timezone.as_ref().unwrap()), "{number}: {c:?}");
    }
    assert!(store.transition_campaign(&ws, &cmp.id, &[CampaignStatus::Draft], CampaignStatus::Starting, monday).await.unwrap());

    let mut dials: BTreeMap<String, u32> = BTreeMap::new();
    let mut held_seen = 0;
    let mut now = monday;
    let week_end = monday + SignedDuration::from_hours(7 * 24);
    while now < week_end {
        for dial in claim(&store, &cmp.id, now).await {
            for tz in tzs(&zones[dial.phone.as_str()]) {
                assert!(hours.is_open(&tz, now), "{} dialled at {} ({})", dial.phone, now.to_zoned(tz.clone()), tz.iana_name().unwrap_or("?"));
            }
            *dials.entry(dial.phone.to_string()).or_default() += 1;
            place(&store, &dial, now).await;
            end(&store, &dial.call_id, Outcome::NoAnswer, now).await;
        }
        // Every held contact says why, and until a moment that is inside the hours everywhere.
        if now.as_second() % (6 * 3600) == 0 {
            for (number, c) in contacts_by_phone(&store, &cmp).await {
                let Some(w) = &c.waiting else { continue };
                assert_eq!(w.reason, WaitReason::CallingHours, "{number}: {w:?}");
                let until = w.until.expect("a calling-hours wait has an end");
                assert_eq!(until, c.next_attempt_at, "{number}");
                assert!(tzs(&zones[&number]).iter().all(|tz| hours.is_open(tz, until)), "{number} waits until {until}");
                assert!(!w.message.is_empty());
                held_seen += 1;
            }
        }
        now += SignedDuration::from_mins(5);
    }
    eprintln!("dials per number over the week: {dials:?}");
    // Not vacuous: every number shares some daily hours across its zones, so each is dialled.
    for number in MULTI_ZONE.iter().chain(ONE_ZONE) {
        assert!(dials.get(*number).copied().unwrap_or(0) >= 7, "{number} has common hours every day: {dials:?}");
    }
    assert!(held_seen > 0, "contacts were held back for their hours and said so");
}

pub async fn contacts_whose_zones_never_share_a_calling_hour_wait_and_say_why(store: S) {
    // 09:00–17:00 is eight hours; a Russian mobile's zones span ten.
    let office = LocalHours::new(time(9, 0, 0, 0), time(17, 0, 0, 0));
    let start: Timestamp = "2026-06-08T00:00:00Z".parse().unwrap();
    let cmp = campaign(&store, Schedule::always("Europe/Moscow"), office, false, start).await;
    let ws = cmp.workspace_id.clone();
    let rows = vec![
        contact("+79141234567", zone_of("+79141234567", "Europe/Moscow"), 1),
        contact("+61412345678", zone_of("+61412345678", "Europe/Moscow"), 2),
        contact("+74951234567", ContactZone::single("Europe/Moscow", TzSource::Explicit), 3),
    ];
    store.insert_contacts(&ws, &cmp.id, &rows, start).await.unwrap();
    assert!(store.transition_campaign(&ws, &cmp.id, &[CampaignStatus::Draft], CampaignStatus::Starting, start).await.unwrap());

    let mut dialled: BTreeMap<String, u32> = BTreeMap::new();
    let mut now = start;
    while now < start + SignedDuration::from_hours(3 * 24) {
        for dial in claim(&store, &cmp.id, now).await {
            *dialled.entry(dial.phone.to_string()).or_default() += 1;
            place(&store, &dial, now).await;
            end(&store, &dial.call_id, Outcome::NoAnswer, now).await;
        }
        now += SignedDuration::from_mins(10);
    }
    assert_eq!(dialled.get("+79141234567"), None, "never a moment inside 09–17 from Kaliningrad's side to Kamchatka: {dialled:?}");
    assert!(dialled.get("+61412345678").copied().unwrap_or(0) >= 3, "Australia's zones share office hours: {dialled:?}");
    assert!(dialled.get("+74951234567").copied().unwrap_or(0) >= 3, "{dialled:?}");

    let contacts = contacts_by_phone(&store, &cmp).await;
    let ru = &contacts["+79141234567"];
    assert_eq!(ru.status, dialtone_core::ContactStatus::Pending, "it waits, it is not given up: {ru:?}");
    assert_eq!(ru.attempts, 0, "no attempt is spent on it");
    let w = ru.waiting.as_ref().expect("a waiting contact says why");
    assert_eq!((w.reason, w.until), (WaitReason::NoCommonHours, None), "{w:?}");
    assert!(w.message.contains("Asia/Kamchatka") && w.message.contains("assume_campaign_timezone_for_ambiguous"), "{}", w.message);
    assert!(ru.next_attempt_at > now - SignedDuration::from_hours(25), "looked at again daily, not every tick: {ru:?}");
}

pub async fn a_campaign_may_opt_into_its_own_zone_for_ambiguous_numbers(store: S) {
    // 08:37 in Sydney is 06:37 in Perth: the call at dawn.
    let at: Timestamp = "2026-06-09T22:37:00Z".parse().unwrap();
    let hours = LocalHours::default();
    let mobile = "+61412345678";
    let mut dialled = Vec::new();
    for opt_in in [false, true] {
        let cmp = campaign(&store, Schedule::always("Australia/Sydney"), hours, opt_in, at).await;
        let ws = cmp.workspace_id.clone();
        store.insert_contacts(&ws, &cmp.id, &[contact(mobile, zone_of(mobile, "Australia/Sydney"), 1)], at).await.unwrap();
        assert!(store.transition_campaign(&ws, &cmp.id, &[CampaignStatus::Draft], CampaignStatus::Starting, at).await.unwrap());
        assert!(load_campaign(&store, &ws, &cmp.id).await.assume_campaign_timezone_for_ambiguous == opt_in);
        let got = claim(&store, &cmp.id, at).await;
        dialled.push(got.len());
        let c = contacts_by_phone(&store, &cmp).await.remove(mobile).unwrap();
        assert_eq!(c.timezone_source, Some(TzSource::Ambiguous), "the contact still shows its candidates: {c:?}");
        if !opt_in {
            // By default it waits for 08:00 at Cocos (UTC+6:30), the last candidate to wake.
            let w = c.waiting.expect("held back");
            assert_eq!((w.reason, w.until), (WaitReason::CallingHours, Some("2026-06-10T01:30:00Z".parse().unwrap())));
        } else {
            assert_eq!(c.waiting, None);
        }
    }
    assert_eq!(dialled, vec![0, 1], "held by default, dialled at 08:37 Sydney time when the campaign opts in");
}

pub async fn contacts_stored_with_one_zone_keep_reading_as_one_zone(store: S) {
    let cmp = campaign(&store, Schedule::always("UTC"), LocalHours::default(), false, t0()).await;
    let ws = cmp.workspace_id.clone();
    let rows = vec![
        contact("+12125550123", ContactZone::single("America/New_York", TzSource::AreaCode), 1),
        NewContact { timezone: None, ..contact("+12125550124", ContactZone::single("UTC", TzSource::Campaign), 2) },
    ];
    store.insert_contacts(&ws, &cmp.id, &rows, t0()).await.unwrap();
    let got = contacts_by_phone(&store, &cmp).await;
    let ny = &got["+12125550123"];
    assert_eq!(
        (ny.timezone.as_deref(), ny.timezone_source, ny.timezones.clone()),
        (Some("America/New_York"), Some(TzSource::AreaCode), vec!["America/New_York".to_string()])
    );
    let none = &got["+12125550124"];
    assert_eq!((none.timezone.as_deref(), none.timezone_source, none.timezones.len()), (None, None, 0));
    assert_eq!((ny.waiting.clone(), none.waiting.clone()), (None, None));
}
