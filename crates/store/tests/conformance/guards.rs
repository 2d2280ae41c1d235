//! Guard rails: calls past their maximum duration are found for the reaper, and a
//! scheduled single call whose number was listed before its time ends `canceled`, `dnc`, as
//! one whose campaign was canceled ends `canceled`.

use crate::support::*;
use dialtone_core::{CallStatus, ContactStatus, ContactZone, Mode, Outcome, ProviderKind, TzSource};
use dialtone_store::{Assistant, NewSingleCall};
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

/// A started campaign with one contact whose own maximum call duration is `max`.
async fn campaign_with_max(store: &S, ws: &dialtone_core::WorkspaceId, max: Option<u32>, contact: u32) -> dialtone_store::Campaign {
    let midnight = jiff::civil::Time::midnight();
    let new = dialtone_store::NewCampaign {
        workspace_id: ws.clone(),
        name: "max duration".into(),
        provider: ProviderKind::Sim,
        assistant_id: "asst_test".into(),
        phone_number_id: "pn_test".into(),
        mode: Mode::Continuous,
        max_concurrent: 5,
        max_attempts: 3,
        retry: retry_policy(),
        default_region: "US".into(),
        schedule: dialtone_core::schedule::Schedule::always("UTC"),
        calling_hours: dialtone_core::schedule::LocalHours::new(midnight, midnight),
        recurrence: dialtone_core::frequency::Recurrence::new(dialtone_core::frequency::Frequency::Once),
        max_call_duration_secs: max,
        assume_campaign_timezone_for_ambiguous: false,
        agent_id: None,
        caller_pool: Default::default(),
        calls_per_minute: None,
        account_id: None,
    };
    let cmp = store.create_campaign(new, t0()).await.unwrap();
    assert_eq!(cmp.max_call_duration_secs, max, "stored as given");
    assert_eq!(load_campaign(store, ws, &cmp.id).await.max_call_duration_secs, max, "read back as stored");
    add_contacts(store, ws, &cmp.id, contact..contact + 1).await;
    start(store, ws, &cmp.id).await;
    cmp
}

pub async fn overdue_calls_are_live_calls_past_their_campaigns_or_the_default_maximum(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let default = campaign_with_max(&store, &ws, None, 0).await;
    let short = campaign_with_max(&store, &ws, Some(120), 1).await;
    let a = claim(&store, &default.id, at(0)).await.pop().unwrap();
    let b = claim(&store, &short.id, at(0)).await.pop().unwrap();
    place(&store, &a, at(10)).await;
    place(&store, &b, at(0)).await;
    apply1(&store, progress(&b.call_id, CallStatus::InProgress), at(30)).await;
    // Claimed, never sent: not live at the provider, and the orphan recovery's business.
    let unsent = campaign_with_max(&store, &ws, Some(1), 2).await;
    claim(&store, &unsent.id, at(0)).await.pop().unwrap();

    let ids = |v: Vec<(dialtone_store::Call, u64)>| v.into_iter().map(|(c, max)| (c.id, max)).collect::<Vec<_>>();
    assert!(store.overdue_calls(at(119), HOUR, 100).await.unwrap().is_empty(), "events do not restart the count, but 119 s < 120 s");
    assert_eq!(ids(store.overdue_calls(at(120), HOUR, 100).await.unwrap()), vec![(b.call_id.clone(), 120)], "counted from dialed_at");
    assert_eq!(ids(store.overdue_calls(at(3609), HOUR, 100).await.unwrap()), vec![(b.call_id.clone(), 120)]);
    assert_eq!(
        ids(store.overdue_calls(at(3610), HOUR, 100).await.unwrap()),
        vec![(b.call_id.clone(), 120), (a.call_id.clone(), 3600)],
        "oldest first, each with the limit it broke"
    );
    assert_eq!(store.overdue_calls(at(3610), HOUR, 1).await.unwrap().len(), 1, "at most `limit`");
    assert_eq!(
        ids(store.overdue_calls(at(3610), Duration::from_secs(7200), 100).await.unwrap()),
        vec![(b.call_id.clone(), 120)],
        "the default is the caller's"
    );

    store.end_call(&b.call_id, Outcome::Timeout, "max duration", at(3610)).await.unwrap();
    assert_eq!(ids(store.overdue_calls(at(3610), HOUR, 100).await.unwrap()), vec![(a.call_id.clone(), 3600)], "an ended call is not live");
}

/// A single call to `phone(i)`, scheduled for `at(60)`, tried once.
fn single(ws: &dialtone_core::WorkspaceId, i: u32) -> NewSingleCall {
    NewSingleCall {
        workspace_id: ws.clone(),
        assistant: Assistant { id: "asst".into(), provider: ProviderKind::Sim, phone_number_id: "pn".into(), name: None },
        phone: phone(i),
        extension: None,
        name: None,
        variables: Default::default(),
        timezone: ContactZone::single("UTC", TzSource::Explicit),
        scheduled_for: at(60),
        recurrence: None,
        respect_business_hours: false,
        max_attempts: 1,
        retry: retry_policy(),
        agent_id: None,
        account_id: None,
    }
}

pub async fn a_scheduled_single_call_whose_number_is_listed_by_its_time_ends_canceled_dnc(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let listed = store.create_single_call(single(&ws, 1), t0()).await.unwrap();
    let free = store.create_single_call(single(&ws, 2), t0()).await.unwrap();
    store.add_suppressions(&ws, None, &[phone(1)], Some("opted out"), at(10)).await.unwrap();

    assert!(claim(&store, &listed.campaign_id, at(60)).await.is_empty(), "a listed number is not dialled");
    let call = load_call(&store, &ws, &listed.id).await;
    assert_eq!((call.status, call.outcome, call.ended_reason.as_deref()), (CallStatus::Canceled, Some(Outcome::Canceled), Some("dnc")), "{call:?}");
    assert_eq!(call.ended_at, Some(at(60)));
    assert_eq!(load_contact(&store, &ws, &listed.contact_id).await.status, ContactStatus::Dnc);
    assert!(store.complete_if_done(&listed.campaign_id, at(61)).await.unwrap(), "nothing is left of it");

    let dials = claim(&store, &free.campaign_id, at(60)).await;
    assert_eq!(dials.iter().map(|d| d.call_id.clone()).collect::<Vec<_>>(), vec![free.id.clone()], "an unlisted number is dialled");
}

pub async fn a_canceled_campaigns_scheduled_call_is_canceled_and_never_dialled(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let call = store.create_single_call(single(&ws, 1), t0()).await.unwrap();
    assert_eq!(call.status, CallStatus::Scheduled);

    assert!(store.cancel_campaign(&ws, &call.campaign_id, at(10)).await.unwrap());
    let canceled = load_call(&store, &ws, &call.id).await;
    assert_eq!((canceled.status, canceled.outcome, canceled.ended_at), (CallStatus::Canceled, Some(Outcome::Canceled), Some(at(10))), "{canceled:?}");
    assert_eq!(load_contact(&store, &ws, &call.contact_id).await.status, ContactStatus::Canceled);
    assert!(claim(&store, &call.campaign_id, at(60)).await.is_empty(), "nothing is dialled at its time");
    assert!(!store.reschedule_call(&ws, &call.id, at(120), at(11)).await.unwrap(), "it is no longer scheduled");
}
