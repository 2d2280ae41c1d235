//! Our numbers and inbound calls (Vapi `assistant-request`): the numbers table, recording
//! an inbound call in its hidden campaign, and events that arrive before the record.

use crate::support::*;
use dialtone_core::{
    CallId, CallStatus, CampaignStatus, ContactStatus, Direction, EventKind, Mode, Outcome, PhoneNumber, ProviderEvent, ProviderKind, WorkspaceId,
};
use dialtone_store::{Call, CallFilter, Page, PhoneNumberEntry, StoreError};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::Barrier;

/// Our number (distinct from the callers' `phone(i)`).
fn our_number(i: u32) -> PhoneNumber {
    PhoneNumber::parse(&format!("+1628{:07}", 5_000_000 + i), "US").unwrap()
}

async fn registered(store: &S, ws: &WorkspaceId, i: u32) -> PhoneNumberEntry {
    store.add_phone_number(ws, &our_number(i), ProviderKind::Vapi, "asst_inbound", Some("front desk"), t0()).await.expect("add phone number")
}

/// An event the provider sent for its call `pid`, naming no call of ours (an inbound call
/// carries no metadata of ours).
fn by_pid(pid: &str, kind: EventKind, key: &str) -> ProviderEvent {
    event(None, Some(pid), kind, key)
}

fn ended_by_pid(pid: &str, outcome: Outcome, key: &str) -> ProviderEvent {
    let mut e = by_pid(pid, EventKind::Ended { outcome, reason: Some("customer-ended-call".into()) }, key);
    e.provider_type = "end-of-call-report".into();
    e.raw =
        serde_json::json!({ "message": { "type": "end-of-call-report", "endedReason": "customer-ended-call", "cost": 0.05, "call": { "id": pid } } }).into();
    e
}

async fn all_calls(store: &S, ws: &WorkspaceId) -> Vec<Call> {
    calls_where(store, ws, CallFilter::default()).await
}

pub async fn phone_numbers_are_added_listed_found_by_exact_number_and_removed(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let a = registered(&store, &ws, 1).await;
    assert_eq!(
        (a.number.as_str(), a.provider, a.assistant_id.as_str(), a.name.as_deref()),
        ("+16285000001", ProviderKind::Vapi, "asst_inbound", Some("front desk"))
    );
    assert_eq!((&a.workspace_id, a.created_at), (&ws, t0()));
    let b = store.add_phone_number(&ws, &our_number(2), ProviderKind::Sim, "asst_other", None, at(1)).await.unwrap();
    assert_ne!(a.id, b.id);

    let listed = store.list_phone_numbers(&ws).await.unwrap();
    assert_eq!(listed.iter().map(|e| e.number.as_str()).collect::<Vec<_>>(), vec!["+16285000001", "+16285000002"]);
    assert!(store.list_phone_numbers(&WorkspaceId::new()).await.unwrap().is_empty(), "another workspace lists none of ours");

    let found = store.find_phone_number("+16285000002").await.unwrap().expect("found by its E.164 form");
    assert_eq!((found.id.as_str(), found.assistant_id.as_str(), found.provider), (b.id.as_str(), "asst_other", ProviderKind::Sim));
    assert!(store.find_phone_number("16285000002").await.unwrap().is_none(), "exact match only");
    assert!(store.find_phone_number("+16285000003").await.unwrap().is_none());

    assert!(!store.remove_phone_number(&WorkspaceId::new(), &our_number(1)).await.unwrap(), "another workspace cannot remove ours");
    assert!(store.remove_phone_number(&ws, &our_number(1)).await.unwrap());
    assert!(!store.remove_phone_number(&ws, &our_number(1)).await.unwrap(), "removed once");
    assert!(store.find_phone_number("+16285000001").await.unwrap().is_none());
    assert_eq!(store.list_phone_numbers(&ws).await.unwrap().len(), 1);
    // Free again once removed.
    registered(&store, &ws, 1).await;
}

pub async fn a_number_registered_already_in_any_workspace_is_a_conflict(store: S) {
    let ws = store.default_workspace().await.unwrap();
    registered(&store, &ws, 1).await;
    let again = store.add_phone_number(&ws, &our_number(1), ProviderKind::Sim, "asst_x", None, at(1)).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let elsewhere = store.add_phone_number(&WorkspaceId::new(), &our_number(1), ProviderKind::Vapi, "asst_y", None, at(1)).await;
    assert!(matches!(elsewhere, Err(StoreError::Conflict(_))), "{elsewhere:?}");
    let kept = store.find_phone_number(our_number(1).as_str()).await.unwrap().unwrap();
    assert_eq!((kept.assistant_id.as_str(), &kept.workspace_id), ("asst_inbound", &ws), "the first registration stands");
}

pub async fn an_inbound_call_is_recorded_ringing_counts_as_active_and_is_idempotent_on_the_provider_id(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let entry = registered(&store, &ws, 1).await;
    let call = store.record_inbound_call(&entry, "vapi-in-1", "+14155550100", at(1)).await.unwrap();
    assert_eq!((call.direction, call.status, call.provider), (Direction::Inbound, CallStatus::Ringing, ProviderKind::Vapi));
    assert_eq!((call.provider_call_id.as_deref(), call.phone.as_str(), call.attempt), (Some("vapi-in-1"), "+14155550100", 1));
    assert_eq!((&call.workspace_id, call.created_at, call.last_event_at), (&ws, at(1), at(1)));
    assert_eq!(load_call(&store, &ws, &call.id).await.status, CallStatus::Ringing, "stored as returned");

    let cmp = load_campaign(&store, &ws, &call.campaign_id).await;
    assert_eq!((cmp.kind.as_str(), cmp.name.as_str()), ("inbound", "inbound calls to +16285000001"));
    assert_eq!((cmp.provider, cmp.assistant_id.as_str(), cmp.phone_number_id.as_str()), (ProviderKind::Vapi, "asst_inbound", "+16285000001"));
    assert_eq!((cmp.status, cmp.started_at), (CampaignStatus::Dialing, Some(at(1))));
    let contact = load_contact(&store, &ws, &call.contact_id).await;
    assert_eq!((contact.status, contact.attempts, contact.phone.as_str()), (ContactStatus::InCall, 1, "+14155550100"));

    assert_eq!(active_of(&store, &ws, &call.campaign_id).await, 1, "an inbound call holds a slot");
    assert_eq!(store.active_calls().await.unwrap(), 1);

    let again = store.record_inbound_call(&entry, "vapi-in-1", "+14155550100", at(2)).await.unwrap();
    assert_eq!(again.id, call.id, "a repeated assistant-request returns the recorded call");
    assert_eq!(all_calls(&store, &ws).await.len(), 1);
    assert_eq!(store.active_calls().await.unwrap(), 1);

    // A second call to the same number lands in the same hidden campaign; an anonymous
    // caller is recorded as given.
    let anon = store.record_inbound_call(&entry, "vapi-in-2", "anonymous", at(3)).await.unwrap();
    assert_eq!((anon.campaign_id.clone(), anon.phone.as_str()), (call.campaign_id.clone(), "anonymous"));
    assert_eq!(active_of(&store, &ws, &call.campaign_id).await, 2);

    // Events now find the call by the provider id alone.
    let applied = apply1(&store, by_pid("vapi-in-1", EventKind::Progress(CallStatus::InProgress), "in-1-answered"), at(4)).await;
    assert_eq!(applied.call_id.as_ref(), Some(&call.id));
    assert_eq!(load_call(&store, &ws, &call.id).await.answered_at, Some(at(4)));
}

pub async fn the_hidden_inbound_campaign_is_never_listed_dialled_from_or_completed(store: S) {
    let (ws, visible) = running(&store, Mode::Continuous, 1, 3, 1).await;
    let entry = registered(&store, &ws, 1).await;
    let call = store.record_inbound_call(&entry, "vapi-in-1", "+14155550100", at(1)).await.unwrap();
    let hidden = call.campaign_id.clone();

    let listed = store.list_campaigns(&ws, &Page::default()).await.unwrap();
    assert_eq!(listed.iter().map(|c| &c.id).collect::<Vec<_>>(), vec![&visible.id], "only the real campaign is listed");
    assert!(!store.runnable_campaigns(at(2)).await.unwrap().contains(&hidden));
    assert!(store.claim(&hidden, NODE, at(2)).await.unwrap().is_empty(), "nothing to dial in it");

    end(&store, &call.id, Outcome::NoAnswer, at(30)).await;
    // Nothing active, nothing pending: a campaign would now complete; this one must not.
    assert!(!store.runnable_campaigns(at(31)).await.unwrap().contains(&hidden));
    assert!(!store.complete_if_done(&hidden, at(31)).await.unwrap());
    assert_eq!(load_campaign(&store, &ws, &hidden).await.status, CampaignStatus::Dialing);
    assert!(store.runnable_campaigns(at(31)).await.unwrap().contains(&visible.id), "the real one is still runnable");

    // It keeps taking calls.
    let next = store.record_inbound_call(&entry, "vapi-in-2", "+14155550100", at(40)).await.unwrap();
    assert_eq!((next.campaign_id, next.status), (hidden, CallStatus::Ringing));
}

pub async fn an_ended_inbound_call_finishes_its_contact_as_done_whatever_the_outcome(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let entry = registered(&store, &ws, 1).await;
    for (i, outcome) in [Outcome::NoAnswer, Outcome::Busy, Outcome::Failed, Outcome::Completed].into_iter().enumerate() {
        let pid = format!("vapi-in-{i}");
        let call = store.record_inbound_call(&entry, &pid, "+14155550100", at(1)).await.unwrap();
        let applied = apply1(&store, ended_by_pid(&pid, outcome, &format!("end-{i}")), at(60)).await;
        assert!(applied.ended_call(), "{outcome}: {applied:?}");
        let contact = load_contact(&store, &ws, &call.contact_id).await;
        assert_eq!((contact.status, contact.last_outcome), (ContactStatus::Done, Some(outcome)), "{outcome}: never called back");
        assert!(store.claim(&call.campaign_id, NODE, at(1_000_000)).await.unwrap().is_empty());
    }
    assert_eq!(store.active_calls().await.unwrap(), 0);
}

pub async fn events_that_arrived_before_the_record_are_adopted_and_applied_in_order(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let entry = registered(&store, &ws, 1).await;
    let pid = "vapi-early";
    let early = [
        by_pid(pid, EventKind::Progress(CallStatus::Ringing), "early-ringing"),
        by_pid(pid, EventKind::Progress(CallStatus::InProgress), "early-answered"),
        ended_by_pid(pid, Outcome::Completed, "early-ended"),
    ];
    for (i, e) in early.iter().enumerate() {
        let applied = apply1(&store, e.clone(), at(i as i64)).await;
        assert!(applied.call_id.is_none() && applied.transition.is_none() && !applied.duplicate, "kept, with no call yet: {applied:?}");
    }
    // Something else racing ahead for another call stays out of this one.
    apply1(&store, by_pid("vapi-other", EventKind::Progress(CallStatus::Ringing), "other-ringing"), at(3)).await;

    let call = store.record_inbound_call(&entry, pid, "+14155550100", at(10)).await.unwrap();
    assert_eq!((call.status, call.outcome), (CallStatus::Ended, Some(Outcome::Completed)), "the orphaned end ended the call");
    assert_eq!((call.answered_at, call.ended_at), (Some(at(10)), Some(at(10))), "applied as if they arrived now");
    assert_eq!((call.ended_reason.as_deref(), call.cost), (Some("customer-ended-call"), Some(0.05)), "reason and cost from the stored payload");
    assert_eq!(load_call(&store, &ws, &call.id).await.status, CallStatus::Ended);
    let contact = load_contact(&store, &ws, &call.contact_id).await;
    assert_eq!((contact.status, contact.last_outcome), (ContactStatus::Done, Some(Outcome::Completed)));
    assert_eq!(store.active_calls().await.unwrap(), 0);
    assert_eq!(active_of(&store, &ws, &call.campaign_id).await, 0);

    let events = store.call_events(&ws, &call.id).await.unwrap();
    let keys: Vec<String> = events.iter().map(|e| e.payload.get("test").and_then(|v| v.as_str()).unwrap_or("end").to_string()).collect();
    assert_eq!(keys, vec!["early-ringing", "early-answered", "end"], "all three listed under the call, in the order received");
    assert!(events.iter().all(|e| e.call_id.as_ref() == Some(&call.id)));
    // Ringing changed nothing (the call was recorded ringing); the other two moved it.
    assert_eq!(events.iter().map(|e| e.applied).collect::<Vec<_>>(), vec![false, true, true]);

    // Adopted once: a replay is a duplicate, and recording again changes nothing.
    assert!(apply1(&store, early[2].clone(), at(20)).await.duplicate);
    let again = store.record_inbound_call(&entry, pid, "+14155550100", at(21)).await.unwrap();
    assert_eq!((again.id, again.status, again.ended_at), (call.id.clone(), CallStatus::Ended, Some(at(10))));
    assert_eq!(store.call_events(&ws, &call.id).await.unwrap().len(), 3);
}

pub async fn an_orphan_that_does_not_end_the_call_is_applied_and_later_events_find_the_call(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let entry = registered(&store, &ws, 1).await;
    apply1(&store, by_pid("vapi-r", EventKind::Progress(CallStatus::InProgress), "r-answered"), at(0)).await;
    let call = store.record_inbound_call(&entry, "vapi-r", "+14155550100", at(5)).await.unwrap();
    assert_eq!((call.status, call.answered_at), (CallStatus::InProgress, Some(at(5))));
    end(&store, &call.id, Outcome::Completed, at(50)).await;
    assert_eq!(load_contact(&store, &ws, &call.contact_id).await.status, ContactStatus::Done);
    assert_eq!(store.call_events(&ws, &call.id).await.unwrap().len(), 2);
}

pub async fn two_concurrent_inbound_calls_from_the_same_caller_are_both_recorded(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let entry = registered(&store, &ws, 1).await;
    let (a, b) =
        tokio::join!(store.record_inbound_call(&entry, "vapi-a", "+14155550100", at(1)), store.record_inbound_call(&entry, "vapi-b", "+14155550100", at(1)),);
    let (a, b) = (a.expect("first call recorded"), b.expect("second call recorded"));
    assert_ne!(a.id, b.id);
    assert_ne!(a.contact_id, b.contact_id, "a contact per call");
    assert_eq!(a.campaign_id, b.campaign_id, "one hidden campaign per number");
    assert_eq!(active_of(&store, &ws, &a.campaign_id).await, 2);
    let counts = store.campaign_counts(&a.campaign_id).await.unwrap();
    assert_eq!(counts.contacts.get("in_call"), Some(&2));

    // The first calls to two numbers at once each get their campaign, created once.
    let other = registered(&store, &ws, 2).await;
    let racing = record_at_once(&store, &other, 8).await;
    let campaigns: HashSet<_> = racing.iter().map(|c| c.campaign_id.clone()).collect();
    assert_eq!(campaigns.len(), 1, "eight first calls at once share one hidden campaign");
    assert_ne!(racing[0].campaign_id, a.campaign_id);
}

/// `n` inbound calls to `entry` from one caller, recorded at once from separate tasks.
async fn record_at_once(store: &S, entry: &PhoneNumberEntry, n: usize) -> Vec<Call> {
    let barrier = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (store, entry, barrier) = (store.clone(), entry.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.record_inbound_call(&entry, &format!("vapi-first-{i}"), "+14155550199", at(2)).await.expect("record")
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

pub async fn two_hundred_inbound_calls_racing_their_own_events_are_each_recorded_and_ended_exactly_once(store: S) {
    const N: usize = 200;
    let ws = store.default_workspace().await.unwrap();
    let entry = registered(&store, &ws, 1).await;
    let pid = |i: usize| format!("vapi-race-{i}");
    let barrier = Arc::new(Barrier::new(2 * N));
    let mut records = Vec::new();
    let mut batches = Vec::new();
    for i in 0..N {
        let (store2, entry2, barrier2) = (store.clone(), entry.clone(), barrier.clone());
        let p = pid(i);
        records.push(tokio::spawn(async move {
            barrier2.wait().await;
            // A retried assistant-request now and then: still one call.
            let call = store2.record_inbound_call(&entry2, &p, &format!("+1415555{:04}", i % 7), at(1)).await.expect("record");
            if i % 10 == 0 {
                let again = store2.record_inbound_call(&entry2, &p, "+14155550000", at(2)).await.expect("record again");
                assert_eq!(again.id, call.id);
            }
            call
        }));
        // Each group commit mixes three calls' events (so batches lock several provider
        // ids at once), racing the records.
        let (store2, barrier2) = (store.clone(), barrier.clone());
        let batch = vec![
            by_pid(&pid(i), EventKind::Progress(CallStatus::Ringing), &format!("ring-{i}")),
            by_pid(&pid((i + 7) % N), EventKind::Progress(CallStatus::InProgress), &format!("answer-{}", (i + 7) % N)),
            ended_by_pid(&pid((i + 13) % N), Outcome::Completed, &format!("end-{}", (i + 13) % N)),
        ];
        batches.push(tokio::spawn(async move {
            barrier2.wait().await;
            store2.apply_events(&batch, at(1)).await.expect("apply a batch")
        }));
    }
    let mut ended_by_events = 0;
    for b in batches {
        ended_by_events += b.await.unwrap().iter().filter(|a| a.ended_call()).count();
    }
    let mut recorded = Vec::new();
    for r in records {
        recorded.push(r.await.unwrap());
    }
    let ended_on_record = recorded.iter().filter(|c| c.status == CallStatus::Ended).count();
    assert_eq!(ended_by_events + ended_on_record, N, "every call ended exactly once: by a live event or by adopting an orphan");

    let calls = all_calls(&store, &ws).await;
    assert_eq!(calls.len(), N, "one call per provider id");
    let pids: HashSet<_> = calls.iter().filter_map(|c| c.provider_call_id.clone()).collect();
    assert_eq!(pids, (0..N).map(pid).collect::<HashSet<_>>());
    for c in &calls {
        assert_eq!((c.status, c.outcome, c.direction), (CallStatus::Ended, Some(Outcome::Completed), Direction::Inbound), "{}", c.id);
        let events = store.call_events(&ws, &c.id).await.unwrap();
        assert_eq!(events.len(), 3, "{}: its three events, none lost: {events:?}", c.id);
        let ends: Vec<_> = events.iter().filter(|e| e.kind == "ended:completed").collect();
        assert_eq!((ends.len(), ends[0].applied), (1, true), "{}", c.id);
        assert_eq!(load_contact(&store, &ws, &c.contact_id).await.status, ContactStatus::Done);
    }
    assert_eq!(store.active_calls().await.unwrap(), 0);
    let ids: HashSet<CallId> = recorded.iter().map(|c| c.id.clone()).collect();
    assert_eq!(ids.len(), N);
}
