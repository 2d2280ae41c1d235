//! Fixtures shared by the suite: a fixed clock, campaigns, contacts and provider events.

use dialtone_core::{
    CallId, CallStatus, CampaignId, CampaignStatus, ContactId, EventId, EventKind, Mode, Outcome, PhoneNumber, ProviderEvent, ProviderKind, RetryPolicy,
    WorkspaceId,
};
use dialtone_store::{Applied, Call, CallFilter, Campaign, Contact, Dial, NewCampaign, NewContact, Page, Store};
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;

pub type S = Arc<dyn Store>;

/// The node the suite claims and places as, unless a test names others.
pub const NODE: &str = "node_test";

/// The lease the suite's nodes hold: three five-second heartbeats, as the engine's default.
pub const LEASE: std::time::Duration = std::time::Duration::from_secs(15);

/// Every test runs on this fixed clock; time moves only by the offsets a test names.
pub fn t0() -> Timestamp {
    "2030-03-01T12:00:00Z".parse().unwrap()
}

pub fn at(secs: i64) -> Timestamp {
    t0() + SignedDuration::from_secs(secs)
}

pub fn retry_base() -> SignedDuration {
    SignedDuration::from_mins(5)
}

pub fn retry_policy() -> RetryPolicy {
    RetryPolicy::uniform(10, retry_base())
}

/// A distinct, valid US number per `i`.
pub fn phone(i: u32) -> PhoneNumber {
    let raw = format!("+1415{:07}", 2_000_000 + i);
    PhoneNumber::parse(&raw, "US").unwrap_or_else(|e| panic!("{raw}: {e}"))
}

/// Contacts for numbers `range`, each reported at line `i + 1`.
pub fn new_contacts(range: std::ops::Range<u32>) -> Vec<NewContact> {
    range
        .map(|i| NewContact {
            extension: None,
            phone: phone(i),
            name: Some(format!("Contact {i}")),
            variables: Default::default(),
            timezone: None,
            line: i as u64 + 1,
        })
        .collect()
}

pub async fn draft_campaign(store: &S, ws: &WorkspaceId, mode: Mode, cap: u32, max_attempts: u32) -> Campaign {
    store.create_campaign(new_campaign(ws, mode, cap, max_attempts), t0()).await.expect("create campaign")
}

/// The fixture campaign's settings (sim, round the clock, UTC).
pub fn new_campaign(ws: &WorkspaceId, mode: Mode, cap: u32, max_attempts: u32) -> NewCampaign {
    NewCampaign {
        workspace_id: ws.clone(),
        name: "conformance".into(),
        provider: ProviderKind::Sim,
        assistant_id: "asst_test".into(),
        phone_number_id: "pn_test".into(),
        mode,
        max_concurrent: cap,
        max_attempts,
        retry: retry_policy(),
        default_region: "US".into(),
        schedule: dialtone_core::schedule::Schedule::always("UTC"),
        // Round the clock, so these tests do not depend on recipients' hours.
        calling_hours: dialtone_core::schedule::LocalHours::new(jiff::civil::Time::midnight(), jiff::civil::Time::midnight()),
        recurrence: dialtone_core::frequency::Recurrence::new(dialtone_core::frequency::Frequency::Once),
        max_call_duration_secs: None,
        assume_campaign_timezone_for_ambiguous: false,
        agent_id: None,
        caller_pool: Default::default(),
        calls_per_minute: None,
        account_id: None,
    }
}

pub async fn add_contacts(store: &S, ws: &WorkspaceId, cmp: &CampaignId, range: std::ops::Range<u32>) {
    let n = range.len() as u64;
    let report = store.insert_contacts(ws, cmp, &new_contacts(range), t0()).await.expect("insert contacts");
    assert_eq!((report.inserted, report.duplicates.len()), (n, 0), "fixture contacts must all be new");
}

pub async fn start(store: &S, ws: &WorkspaceId, cmp: &CampaignId) {
    let moved = store.transition_campaign(ws, cmp, &[CampaignStatus::Draft], CampaignStatus::Starting, t0()).await.unwrap();
    assert!(moved, "a draft campaign starts");
}

/// A started campaign with `contacts` due contacts, in the default workspace.
pub async fn running(store: &S, mode: Mode, cap: u32, max_attempts: u32, contacts: u32) -> (WorkspaceId, Campaign) {
    let ws = store.default_workspace().await.unwrap();
    let cmp = draft_campaign(store, &ws, mode, cap, max_attempts).await;
    add_contacts(store, &ws, &cmp.id, 0..contacts).await;
    start(store, &ws, &cmp.id).await;
    (ws, cmp)
}

pub async fn claim(store: &S, cmp: &CampaignId, now: Timestamp) -> Vec<Dial> {
    store.claim(cmp, NODE, now).await.expect("claim")
}

/// Placer's happy path: fence, then the provider accepted it as `call_<id>` upstream.
pub async fn place(store: &S, dial: &Dial, now: Timestamp) -> String {
    let pid = provider_id(&dial.call_id);
    assert!(store.mark_placing(&dial.call_id, NODE, now).await.unwrap());
    store.mark_dialed(&dial.call_id, &pid, now).await.unwrap();
    pid
}

pub fn provider_id(call: &CallId) -> String {
    format!("prov-{call}")
}

pub fn event(call: Option<&CallId>, provider_call_id: Option<&str>, kind: EventKind, dedupe_key: &str) -> ProviderEvent {
    ProviderEvent {
        provider_type: "status-update".into(),
        provider_call_id: provider_call_id.map(str::to_string),
        call_id: call.cloned(),
        kind,
        dedupe_key: dedupe_key.to_string(),
        occurred_at: None,
        cost: None,
        duration_ms: None,
        report: None,
        raw: serde_json::json!({ "test": dedupe_key }).into(),
        webhook: None,
    }
}

pub fn fresh_key() -> String {
    EventId::new().to_string()
}

pub fn progress(call: &CallId, status: CallStatus) -> ProviderEvent {
    event(Some(call), None, EventKind::Progress(status), &fresh_key())
}

pub fn ended(call: &CallId, outcome: Outcome) -> ProviderEvent {
    let mut e = event(Some(call), None, EventKind::Ended { outcome, reason: Some(format!("test {outcome}")) }, &fresh_key());
    e.provider_type = "end-of-call-report".into();
    e
}

pub async fn apply1(store: &S, e: ProviderEvent, now: Timestamp) -> Applied {
    let mut out = store.apply_events(&[e], now).await.expect("apply event");
    assert_eq!(out.len(), 1, "one Applied per event");
    out.pop().unwrap()
}

/// Ends a call through a provider webhook, asserting that it did end.
pub async fn end(store: &S, call: &CallId, outcome: Outcome, now: Timestamp) {
    let applied = apply1(store, ended(call, outcome), now).await;
    assert!(applied.ended_call(), "ending {call} with {outcome}: {applied:?}");
}

pub async fn load_call(store: &S, ws: &WorkspaceId, id: &CallId) -> Call {
    store.get_call(ws, id).await.unwrap().unwrap_or_else(|| panic!("call {id} exists"))
}

pub async fn load_contact(store: &S, ws: &WorkspaceId, id: &ContactId) -> Contact {
    store.get_contact(ws, id).await.unwrap().unwrap_or_else(|| panic!("contact {id} exists"))
}

pub async fn load_campaign(store: &S, ws: &WorkspaceId, id: &CampaignId) -> Campaign {
    store.get_campaign(ws, id).await.unwrap().unwrap_or_else(|| panic!("campaign {id} exists"))
}

/// Every call matching `filter`, in one page.
pub async fn calls_where(store: &S, ws: &WorkspaceId, filter: CallFilter) -> Vec<Call> {
    store.list_calls(ws, &filter, &Page { limit: 100_000, before: None }).await.unwrap()
}

pub async fn calls_of(store: &S, ws: &WorkspaceId, cmp: &CampaignId) -> Vec<Call> {
    calls_where(store, ws, CallFilter { campaign_id: Some(cmp.clone()), ..Default::default() }).await
}

/// Active calls of a campaign, counted two ways (the call rows and `campaign_counts`),
/// which must agree.
pub async fn active_of(store: &S, ws: &WorkspaceId, cmp: &CampaignId) -> u64 {
    let from_rows = calls_of(store, ws, cmp).await.iter().filter(|c| c.status.is_active()).count() as u64;
    let from_counts = store.campaign_counts(cmp).await.unwrap().active_calls;
    assert_eq!(from_rows, from_counts, "active calls by rows vs campaign_counts");
    from_rows
}
