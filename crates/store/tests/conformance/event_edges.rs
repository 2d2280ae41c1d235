//! What providers send in the odd cases (issue 9): an answering-machine verdict in a
//! callback of its own, events that beat the provider id, events whose ids disagree, and
//! events for calls we never placed.

use crate::support::*;
use dialtone_core::{AnsweredBy, CallId, CallStatus, ContactStatus, EventKind, Mode, Outcome};

fn amd(call: &CallId, pid: &str, a: AnsweredBy, key: &str) -> dialtone_core::ProviderEvent {
    let mut e = event(Some(call), Some(pid), EventKind::Amd { answered_by: a }, key);
    e.provider_type = "amd".into();
    e
}

fn completed(call: &CallId, pid: &str, key: &str) -> dialtone_core::ProviderEvent {
    event(Some(call), Some(pid), EventKind::Ended { outcome: Outcome::Completed, reason: Some("completed".into()) }, key)
}

pub async fn a_machine_verdict_before_completed_ends_the_call_as_voicemail(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 1, 3, 1).await;
    let dial = claim(&store, &cmp.id, at(0)).await.pop().unwrap();
    let pid = place(&store, &dial, at(1)).await;
    apply1(&store, event(None, Some(&pid), EventKind::Progress(CallStatus::InProgress), "live"), at(2)).await;

    let verdict = apply1(&store, amd(&dial.call_id, &pid, AnsweredBy::Machine, "amd-1"), at(3)).await;
    assert!(!verdict.duplicate && verdict.transition.is_none(), "a verdict moves no state: {verdict:?}");
    let call = load_call(&store, &ws, &dial.call_id).await;
    assert_eq!((call.status, call.answered_by), (CallStatus::InProgress, Some(AnsweredBy::Machine)));
    // A replay, and a second opinion, change nothing: the first verdict stays.
    assert!(apply1(&store, amd(&dial.call_id, &pid, AnsweredBy::Machine, "amd-1"), at(4)).await.duplicate);
    apply1(&store, amd(&dial.call_id, &pid, AnsweredBy::Human, "amd-2"), at(4)).await;

    let end = apply1(&store, completed(&dial.call_id, &pid, "end"), at(5)).await;
    assert_eq!(end.transition.and_then(|t| t.outcome), Some(Outcome::Voicemail));
    let call = load_call(&store, &ws, &dial.call_id).await;
    assert_eq!((call.status, call.outcome, call.answered_by), (CallStatus::Ended, Some(Outcome::Voicemail), Some(AnsweredBy::Machine)));
    assert_eq!(call.ended_reason.as_deref(), Some("completed"), "the provider's own reason is kept");
    assert_eq!(load_contact(&store, &ws, &dial.contact_id).await.last_outcome, Some(Outcome::Voicemail));
    let applied: Vec<(String, bool)> =
        store.call_events(&ws, &dial.call_id).await.unwrap().into_iter().filter(|e| e.source == "provider").map(|e| (e.kind, e.applied)).collect();
    assert!(applied.contains(&("amd:machine".into(), true)) && applied.contains(&("amd:human".into(), false)), "{applied:?}");
}

pub async fn a_machine_verdict_after_completed_corrects_the_outcome_to_voicemail(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 1, 3, 1).await;
    let dial = claim(&store, &cmp.id, at(0)).await.pop().unwrap();
    let pid = place(&store, &dial, at(1)).await;
    assert!(apply1(&store, completed(&dial.call_id, &pid, "end"), at(2)).await.ended_call());
    assert_eq!(load_call(&store, &ws, &dial.call_id).await.outcome, Some(Outcome::Completed));

    let late = apply1(&store, amd(&dial.call_id, &pid, AnsweredBy::Machine, "amd"), at(3)).await;
    assert!(late.transition.is_none(), "the call ended once: {late:?}");
    let call = load_call(&store, &ws, &dial.call_id).await;
    assert_eq!((call.status, call.outcome, call.answered_by), (CallStatus::Ended, Some(Outcome::Voicemail), Some(AnsweredBy::Machine)));
    let contact = load_contact(&store, &ws, &dial.contact_id).await;
    assert_eq!((contact.status, contact.last_outcome), (ContactStatus::Done, Some(Outcome::Voicemail)));
}

pub async fn a_human_verdict_leaves_completed_and_order_in_one_batch_does_not_matter(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 4, 3, 4).await;
    let dials = claim(&store, &cmp.id, at(0)).await;
    assert_eq!(dials.len(), 4);
    let mut pids = vec![];
    for d in &dials {
        pids.push(place(&store, d, at(1)).await);
    }
    let (h, m1, m2, m3) = (&dials[0].call_id, &dials[1].call_id, &dials[2].call_id, &dials[3].call_id);
    // One group commit: verdict then end, end then verdict, and a verdict twice.
    let out = store
        .apply_events(
            &[
                amd(h, &pids[0], AnsweredBy::Human, "h-amd"),
                completed(h, &pids[0], "h-end"),
                amd(m1, &pids[1], AnsweredBy::Machine, "m1-amd"),
                completed(m1, &pids[1], "m1-end"),
                completed(m2, &pids[2], "m2-end"),
                amd(m2, &pids[2], AnsweredBy::Machine, "m2-amd"),
                amd(m3, &pids[3], AnsweredBy::Machine, "m3-amd"),
                amd(m3, &pids[3], AnsweredBy::Machine, "m3-amd"),
                completed(m3, &pids[3], "m3-end"),
            ],
            at(2),
        )
        .await
        .unwrap();
    assert_eq!(out.iter().filter(|a| a.ended_call()).count(), 4, "each call ends once: {out:?}");
    let outcome = |id: &CallId| {
        let (store, ws, id) = (store.clone(), ws.clone(), id.clone());
        async move { load_call(&store, &ws, &id).await.outcome }
    };
    assert_eq!(outcome(h).await, Some(Outcome::Completed));
    for m in [m1, m2, m3] {
        assert_eq!(outcome(m).await, Some(Outcome::Voicemail), "{m}");
    }
    assert_eq!(load_call(&store, &ws, h).await.answered_by, Some(AnsweredBy::Human));
}

pub async fn an_event_that_beat_the_provider_id_is_applied_when_the_id_is_stored(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 1, 3, 1).await;
    let dial = claim(&store, &cmp.id, at(0)).await.pop().unwrap();
    assert!(store.mark_placing(&dial.call_id, NODE, at(1)).await.unwrap());
    // The provider answers fast: its webhooks (with no id of ours) come before its answer
    // to our request, so nothing can name the call yet.
    let pid = provider_id(&dial.call_id);
    let ringing = apply1(&store, event(None, Some(&pid), EventKind::Progress(CallStatus::Ringing), "early-ring"), at(2)).await;
    let busy = apply1(&store, event(None, Some(&pid), EventKind::Ended { outcome: Outcome::Busy, reason: Some("busy".into()) }, "early-busy"), at(3)).await;
    assert!(ringing.call_id.is_none() && busy.call_id.is_none());
    assert_eq!(load_call(&store, &ws, &dial.call_id).await.status, CallStatus::Queued);

    store.mark_dialed(&dial.call_id, &pid, at(4)).await.unwrap();
    let call = load_call(&store, &ws, &dial.call_id).await;
    assert_eq!((call.status, call.outcome), (CallStatus::Ended, Some(Outcome::Busy)), "applied at once, not left for the reaper");
    let contact = load_contact(&store, &ws, &dial.contact_id).await;
    assert_eq!((contact.status, contact.next_attempt_at), (ContactStatus::Pending, at(4) + retry_base()), "the contact moved on");
    assert_eq!(active_of(&store, &ws, &cmp.id).await, 0, "the slot is free");
    let stored: Vec<(String, bool)> =
        store.call_events(&ws, &dial.call_id).await.unwrap().into_iter().filter(|e| e.source == "provider").map(|e| (e.kind, e.applied)).collect();
    assert_eq!(stored, vec![("ringing".into(), true), ("ended:busy".into(), true)]);
    // Replays are duplicates, and find the call now.
    let replay = apply1(&store, event(None, Some(&pid), EventKind::Ended { outcome: Outcome::Busy, reason: None }, "early-busy"), at(5)).await;
    assert!(replay.duplicate);
}

pub async fn an_event_whose_ids_name_different_calls_moves_neither(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 2, 3, 2).await;
    let dials = claim(&store, &cmp.id, at(0)).await;
    let (a, b) = (&dials[0], &dials[1]);
    let pid_a = place(&store, a, at(1)).await;
    let pid_b = place(&store, b, at(1)).await;

    // A's provider id, B's id of ours in the metadata: the provider id wins, B is not
    // moved, and the event is kept with A, marked, not applied.
    let e = event(Some(&b.call_id), Some(&pid_a), EventKind::Ended { outcome: Outcome::Busy, reason: None }, "crossed");
    let applied = apply1(&store, e.clone(), at(2)).await;
    assert!(applied.mismatched && applied.transition.is_none() && !applied.duplicate, "{applied:?}");
    assert_eq!(applied.call_id.as_ref(), Some(&a.call_id));
    // In one batch with a matching event too.
    let ok = event(Some(&a.call_id), Some(&pid_a), EventKind::Progress(CallStatus::Ringing), "fine");
    let crossed = event(Some(&a.call_id), Some(&pid_b), EventKind::Ended { outcome: Outcome::NoAnswer, reason: None }, "crossed-2");
    let out = store.apply_events(&[crossed, ok], at(4)).await.unwrap();
    assert_eq!(out.iter().map(|o| (o.mismatched, o.transition.is_some())).collect::<Vec<_>>(), vec![(true, false), (false, true)]);

    for (d, status) in [(a, CallStatus::Ringing), (b, CallStatus::Dialing)] {
        let call = load_call(&store, &ws, &d.call_id).await;
        assert_eq!((call.status, call.outcome), (status, None), "{}", d.call_id);
        assert_eq!(load_contact(&store, &ws, &d.contact_id).await.status, ContactStatus::InCall);
    }
    assert_eq!(load_call(&store, &ws, &b.call_id).await.provider_call_id.as_deref(), Some(pid_b.as_str()), "B keeps its provider id");
    let marks = |id: &CallId| {
        let (store, ws, id) = (store.clone(), ws.clone(), id.clone());
        async move {
            store
                .call_events(&ws, &id)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.source == "provider")
                .map(|e| (e.payload["test"].as_str().unwrap().to_string(), e.applied, e.mismatched))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(marks(&a.call_id).await, vec![("crossed".into(), false, true), ("fine".into(), true, false)]);
    assert_eq!(marks(&b.call_id).await, vec![("crossed-2".into(), false, true)]);
    assert!(apply1(&store, e, at(5)).await.duplicate, "stored once");
}

pub async fn events_for_calls_never_placed_are_purged_after_the_retention(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 1, 3, 1).await;
    let dial = claim(&store, &cmp.id, at(0)).await.pop().unwrap();
    let pid = place(&store, &dial, at(1)).await;
    let day = 86_400;
    let stranger = |key: &str| event(None, Some(&format!("prov-{key}")), EventKind::Progress(CallStatus::Ringing), key);
    assert!(apply1(&store, stranger("old"), at(1)).await.unknown());
    assert!(apply1(&store, stranger("new"), at(6 * day)).await.unknown());
    let ours = apply1(&store, event(None, Some(&pid), EventKind::Progress(CallStatus::Ringing), "ours"), at(2)).await;
    assert!(!ours.unknown());

    // Seven days after the first: only it is older than the retention.
    assert_eq!(store.purge_unknown_events(at(7 * day + 2) - jiff::SignedDuration::from_hours(7 * 24), 1000).await.unwrap(), 1);
    assert!(!apply1(&store, stranger("old"), at(7 * day + 2)).await.duplicate, "purged: its replay is stored anew");
    assert!(apply1(&store, stranger("new"), at(7 * day + 2)).await.duplicate, "kept until its own time");
    assert_eq!(store.call_events(&ws, &dial.call_id).await.unwrap().iter().filter(|e| e.source == "provider").count(), 1, "ours stays");
    // Bounded: one pass deletes at most `limit`.
    for i in 0..5 {
        apply1(&store, stranger(&format!("batch-{i}")), at(8 * day)).await;
    }
    assert_eq!(store.purge_unknown_events(at(30 * day), 3).await.unwrap(), 3);
    assert_eq!(store.purge_unknown_events(at(30 * day), 100).await.unwrap(), 4);
    assert_eq!(store.purge_unknown_events(at(30 * day), 100).await.unwrap(), 0);
    assert_eq!(store.call_events(&ws, &dial.call_id).await.unwrap().iter().filter(|e| e.source == "provider").count(), 1);
}

/// Dialed marks written together (`Store::mark_dialed_many`, what the engine's group commit
/// sends on a one-writer backend) do what each would alone: the batch's first call starts
/// the campaign and no other does, and an event that beat its provider id is adopted by
/// its own call only.
pub async fn dialed_marks_written_together_adopt_their_own_orphans_and_start_the_campaign_once(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 3, 3, 3).await;
    let dials = claim(&store, &cmp.id, at(0)).await;
    assert_eq!(dials.len(), 3);
    for d in &dials {
        assert!(store.mark_placing(&d.call_id, NODE, at(1)).await.unwrap());
    }
    let pids: Vec<String> = dials.iter().map(|d| provider_id(&d.call_id)).collect();
    // The second call's provider reports it busy before its answer to our request.
    let early =
        apply1(&store, event(None, Some(&pids[1]), EventKind::Ended { outcome: Outcome::Busy, reason: Some("busy".into()) }, "early-busy"), at(2)).await;
    assert!(early.call_id.is_none(), "an orphan until the id is stored");

    let marks: Vec<(CallId, String)> = dials.iter().zip(&pids).map(|(d, p)| (d.call_id.clone(), p.clone())).collect();
    let started = store.mark_dialed_many(&marks, at(3)).await.unwrap();
    assert_eq!(started, vec![true, false, false], "the batch's first call started the campaign, no other");
    assert_eq!(load_campaign(&store, &ws, &cmp.id).await.started_at, Some(at(3)));
    let status = |i: usize| {
        let (store, ws, id) = (store.clone(), ws.clone(), dials[i].call_id.clone());
        async move {
            let c = load_call(&store, &ws, &id).await;
            (c.status, c.outcome, c.provider_call_id)
        }
    };
    assert_eq!(status(0).await, (CallStatus::Dialing, None, Some(pids[0].clone())));
    assert_eq!(status(1).await, (CallStatus::Ended, Some(Outcome::Busy), Some(pids[1].clone())), "its orphan applied at once");
    assert_eq!(status(2).await, (CallStatus::Dialing, None, Some(pids[2].clone())));
    assert_eq!(active_of(&store, &ws, &cmp.id).await, 2);
    // Marked again (a retried group): nothing moves back, nobody starts the campaign twice.
    assert_eq!(store.mark_dialed_many(&marks, at(4)).await.unwrap(), vec![false, false, false]);
    assert_eq!(status(1).await.0, CallStatus::Ended);
}

/// `Store::apply_events_with_reports` (the ingest's write): the events apply as
/// `apply_events` would, and each report is saved on the call its event matched; an event
/// that matched no call, or whose ids name different calls, saves none.
pub async fn a_batch_saves_the_reports_of_the_events_that_matched_their_call(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 2, 3, 2).await;
    let dials = claim(&store, &cmp.id, at(0)).await;
    let (a, b) = (&dials[0], &dials[1]);
    let (pid_a, pid_b) = (place(&store, a, at(1)).await, place(&store, b, at(1)).await);
    let report = |s: &str| Some(Box::new(dialtone_core::CallReport { summary: Some(s.into()), ..Default::default() }));
    let mut ended_a = completed(&a.call_id, &pid_a, "a-ended");
    ended_a.report = report("a went well");
    // A's provider id with B's id of ours: stored, applied to neither, its report saved on neither.
    let mut crossed = event(Some(&b.call_id), Some(&pid_a), EventKind::Progress(CallStatus::InProgress), "crossed");
    crossed.report = report("crossed");
    let mut unknown = completed(&CallId::new(), "call_not_ours", "unknown");
    unknown.report = report("not ours");
    let applied = store.apply_events_with_reports(&[ended_a, crossed, unknown], at(2)).await.unwrap();
    assert_eq!(applied.len(), 3);
    assert!(applied[0].ended_call() && applied[1].mismatched && applied[2].unknown(), "{applied:?}");
    assert_eq!(load_call(&store, &ws, &a.call_id).await.summary.as_deref(), Some("a went well"));
    assert_eq!(load_call(&store, &ws, &b.call_id).await.summary, None);
    assert_eq!(load_call(&store, &ws, &b.call_id).await.provider_call_id, Some(pid_b));
}
