//! Applying provider events: dedupe, forward-only, matching, and what an end does to the
//! contact.

use crate::support::*;
use dialtone_core::{CallId, CallStatus, ContactStatus, EventKind, Mode, Outcome};

async fn stored_with_key(store: &S, ws: &dialtone_core::WorkspaceId, call: &CallId, key: &str) -> usize {
    let payload = serde_json::json!({ "test": key });
    store.call_events(ws, call).await.unwrap().iter().filter(|e| e.payload == payload).count()
}

pub async fn a_duplicate_event_is_stored_once_and_reported_duplicate(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 1, 3, 1).await;
    let dial = claim(&store, &cmp.id, at(0)).await.pop().unwrap();
    let pid = place(&store, &dial, at(1)).await;

    let ringing = event(None, Some(&pid), EventKind::Progress(CallStatus::Ringing), "evt-ringing");
    let first = apply1(&store, ringing.clone(), at(2)).await;
    assert!(!first.duplicate);
    assert_eq!(first.transition.map(|t| t.to), Some(CallStatus::Ringing));
    let replay = apply1(&store, ringing.clone(), at(3)).await;
    assert!(replay.duplicate, "a replayed webhook is reported duplicate");
    assert!(replay.transition.is_none());
    assert_eq!(stored_with_key(&store, &ws, &dial.call_id, "evt-ringing").await, 1);
    // Not even a sign of life: a replay (e.g. a provider's retry storm) must not keep a
    // stuck call away from the reaper.
    assert_eq!(load_call(&store, &ws, &dial.call_id).await.last_event_at, at(2));
    let stuck = store.stuck_calls(at(3), 10).await.unwrap();
    assert_eq!(stuck.iter().map(|c| &c.id).collect::<Vec<_>>(), vec![&dial.call_id]);

    // Twice in one group commit: the second copy is the duplicate.
    let end = event(None, Some(&pid), EventKind::Ended { outcome: Outcome::NoAnswer, reason: None }, "evt-end");
    let out = store.apply_events(&[end.clone(), end.clone()], at(4)).await.unwrap();
    assert_eq!(out.iter().map(|a| a.duplicate).collect::<Vec<_>>(), vec![false, true]);
    assert!(out[0].ended_call() && !out[1].ended_call());
    assert_eq!(stored_with_key(&store, &ws, &dial.call_id, "evt-end").await, 1);

    let contact = load_contact(&store, &ws, &dial.contact_id).await;
    assert_eq!((contact.attempts, contact.next_attempt_at), (1, at(4) + retry_base()), "the end was applied once");
    assert!(apply1(&store, end, at(500)).await.duplicate);
    let again = load_contact(&store, &ws, &dial.contact_id).await;
    assert_eq!((again.attempts, again.next_attempt_at), (1, at(4) + retry_base()), "a late replay changes nothing");
}

pub async fn each_events_payload_is_stored_as_it_came_whatever_else_is_in_its_batch(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 1, 3, 1).await;
    let dial = claim(&store, &cmp.id, at(0)).await.pop().unwrap();
    let pid = place(&store, &dial, at(1)).await;
    // Texts of different lengths side by side in one batch (a payload's place in the
    // batch is counted in bytes): multi-byte UTF-8, escapes, whitespace, a big one.
    let texts = [
        r#"{"test":"p-1","text":"café – 東京 🎧"}"#.to_string(),
        r#"{ "test" : "p-2", "quote": "say \"hi\"\n", "u": "\u00e9\ud83c\udfa7" }"#.to_string(),
        format!(r#"{{"test":"p-3","transcript":"{}"}}"#, "ünïcödé and plain words ".repeat(200)),
        r#"{"test":"p-4"}"#.to_string(),
    ];
    let kinds = [
        EventKind::Progress(CallStatus::Ringing),
        EventKind::Progress(CallStatus::InProgress),
        EventKind::Info,
        EventKind::Ended { outcome: Outcome::Completed, reason: None },
    ];
    let events: Vec<_> = texts
        .iter()
        .zip(kinds)
        .enumerate()
        .map(|(i, (text, kind))| {
            let mut e = event(None, Some(&pid), kind, &format!("payload-{i}"));
            e.raw = dialtone_core::RawJson::parse(text).unwrap();
            e
        })
        .collect();
    store.apply_events(&events, at(2)).await.unwrap();
    let stored = store.call_events(&ws, &dial.call_id).await.unwrap();
    for text in &texts {
        let want: serde_json::Value = serde_json::from_str(text).unwrap();
        let got: Vec<_> = stored.iter().filter(|e| e.payload["test"] == want["test"]).map(|e| &e.payload).collect();
        assert_eq!(got, vec![&want], "{}", text.chars().take(60).collect::<String>());
    }
}

pub async fn an_event_stored_before_changes_nothing_in_a_later_batch_even_if_it_would_have_moved_the_call(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 1, 3, 1).await;
    let dial = claim(&store, &cmp.id, at(0)).await.pop().unwrap();
    let pid = place(&store, &dial, at(1)).await;
    // An end stored earlier under a provider id nobody knew: kept, applied to nothing.
    let early_end = |pid: &str| event(None, Some(pid), EventKind::Ended { outcome: Outcome::Completed, reason: None }, "k-end");
    assert!(apply1(&store, early_end("p-not-yet-known"), at(2)).await.call_id.is_none());
    // Its replay now names our call, followed by a new event. Were the replay applied the
    // call would end and the second event be stale; it is a duplicate, so the second moves
    // the call and is the one stored as applied.
    let live = event(None, Some(&pid), EventKind::Progress(CallStatus::InProgress), "k-live");
    let out = store.apply_events(&[early_end(&pid), live], at(3)).await.unwrap();
    assert_eq!(out.iter().map(|a| a.duplicate).collect::<Vec<_>>(), vec![true, false]);
    assert_eq!(out.iter().map(|a| a.transition.as_ref().map(|t| t.to)).collect::<Vec<_>>(), vec![None, Some(CallStatus::InProgress)]);
    let call = load_call(&store, &ws, &dial.call_id).await;
    assert_eq!((call.status, call.outcome, call.ended_at), (CallStatus::InProgress, None, None));
    assert_eq!(load_contact(&store, &ws, &dial.contact_id).await.status, ContactStatus::InCall);
    let stored = store.call_events(&ws, &dial.call_id).await.unwrap();
    let applied: Vec<(&str, bool)> = stored.iter().filter(|e| e.source == "provider").map(|e| (e.payload["test"].as_str().unwrap(), e.applied)).collect();
    assert_eq!(applied, vec![("k-live", true)]);
}

pub async fn out_of_order_events_never_move_a_call_back(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 2, 3, 2).await;
    let dials = claim(&store, &cmp.id, at(0)).await;
    for d in &dials {
        place(&store, d, at(1)).await;
    }
    let (a, b) = (&dials[0].call_id, &dials[1].call_id);

    end(&store, a, Outcome::Completed, at(10)).await;
    let late = apply1(&store, progress(a, CallStatus::InProgress), at(11)).await;
    assert!(!late.duplicate && late.transition.is_none(), "{late:?}");
    let late = apply1(&store, ended(a, Outcome::NoAnswer), at(12)).await;
    assert!(late.transition.is_none(), "a call ends once");
    let call = load_call(&store, &ws, a).await;
    assert_eq!((call.status, call.outcome), (CallStatus::Ended, Some(Outcome::Completed)));
    assert_eq!(call.ended_at, Some(at(10)));
    assert_eq!(load_contact(&store, &ws, &dials[0].contact_id).await.status, ContactStatus::Done);

    apply1(&store, progress(b, CallStatus::InProgress), at(10)).await;
    assert!(apply1(&store, progress(b, CallStatus::Ringing), at(11)).await.transition.is_none());
    assert_eq!(load_call(&store, &ws, b).await.status, CallStatus::InProgress);
    assert_eq!(active_of(&store, &ws, &cmp.id).await, 1, "the ended call stays ended and frees its slot");
}

pub async fn an_event_is_matched_by_call_id_before_the_provider_id_is_stored_and_adopts_it(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 1, 3, 1).await;
    let dial = claim(&store, &cmp.id, at(0)).await.pop().unwrap();
    assert!(store.mark_placing(&dial.call_id, NODE, at(1)).await.unwrap());
    assert_eq!(load_call(&store, &ws, &dial.call_id).await.provider_call_id, None);

    let e = event(Some(&dial.call_id), Some("prov-early"), EventKind::Progress(CallStatus::Ringing), "early");
    let applied = apply1(&store, e, at(2)).await;
    assert_eq!(applied.call_id.as_ref(), Some(&dial.call_id), "matched by our call id from the metadata");
    assert_eq!(applied.campaign_id.as_ref(), Some(&cmp.id));
    let call = load_call(&store, &ws, &dial.call_id).await;
    assert_eq!((call.status, call.provider_call_id.as_deref()), (CallStatus::Ringing, Some("prov-early")));

    // From now on the provider id alone finds the call.
    let e = event(None, Some("prov-early"), EventKind::Progress(CallStatus::InProgress), "by-provider-id");
    let applied = apply1(&store, e, at(3)).await;
    assert_eq!(applied.call_id.as_ref(), Some(&dial.call_id));
    assert_eq!(load_call(&store, &ws, &dial.call_id).await.status, CallStatus::InProgress);
}

pub async fn an_event_for_an_unknown_call_is_stored_without_a_call(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 1, 3, 1).await;
    let dial = claim(&store, &cmp.id, at(0)).await.pop().unwrap();
    place(&store, &dial, at(1)).await;

    let stray = CallId::new();
    let e = event(Some(&stray), Some("prov-nobody"), EventKind::Ended { outcome: Outcome::Completed, reason: None }, "stray");
    let applied = apply1(&store, e.clone(), at(2)).await;
    assert!(applied.call_id.is_none() && applied.campaign_id.is_none() && applied.transition.is_none(), "{applied:?}");
    assert!(!applied.duplicate, "the first copy is new");
    assert!(apply1(&store, e, at(3)).await.duplicate, "it was stored: its replay is a duplicate");
    assert_eq!(load_call(&store, &ws, &dial.call_id).await.status, CallStatus::Dialing, "no other call was touched");
    assert_eq!(store.active_calls().await.unwrap(), 1);
}

pub async fn no_answer_schedules_a_retry_after_the_base_delay_and_counts_the_attempt(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 1, 3, 1).await;
    let dial = claim(&store, &cmp.id, at(0)).await.pop().unwrap();
    place(&store, &dial, at(1)).await;
    end(&store, &dial.call_id, Outcome::NoAnswer, at(30)).await;

    let c = load_contact(&store, &ws, &dial.contact_id).await;
    assert_eq!(c.status, ContactStatus::Pending);
    assert_eq!(c.attempts, 1);
    assert_eq!(c.next_attempt_at, at(30) + retry_base());
    assert_eq!(c.last_outcome, Some(Outcome::NoAnswer));
    let call = load_call(&store, &ws, &dial.call_id).await;
    assert_eq!((call.status, call.outcome), (CallStatus::Ended, Some(Outcome::NoAnswer)));

    let second = claim(&store, &cmp.id, c.next_attempt_at).await.pop().expect("due again after the delay");
    assert_eq!(second.attempt, 2);
    assert_ne!(second.call_id, dial.call_id, "each attempt is its own call");
    place(&store, &second, at(400)).await;
    end(&store, &second.call_id, Outcome::NoAnswer, at(400)).await;
    let c = load_contact(&store, &ws, &dial.contact_id).await;
    assert_eq!((c.status, c.attempts), (ContactStatus::Pending, 2));
    assert_eq!(c.next_attempt_at, at(400) + retry_base() * 2, "the delay doubles with each retry of the same outcome");
}

pub async fn a_contact_is_exhausted_after_max_attempts(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 1, 2, 1).await;
    let mut now = at(0);
    for attempt in 1..=2 {
        let dial = claim(&store, &cmp.id, now).await.pop().unwrap_or_else(|| panic!("attempt {attempt} is claimed"));
        assert_eq!(dial.attempt, attempt);
        place(&store, &dial, now).await;
        end(&store, &dial.call_id, Outcome::NoAnswer, now).await;
        now = load_contact(&store, &ws, &dial.contact_id).await.next_attempt_at;
    }
    let calls = calls_of(&store, &ws, &cmp.id).await;
    assert_eq!(calls.len(), 2);
    let c = load_contact(&store, &ws, &calls[0].contact_id).await;
    assert_eq!((c.status, c.attempts), (ContactStatus::Exhausted, 2));
    assert!(claim(&store, &cmp.id, at(1_000_000)).await.is_empty(), "an exhausted contact is never called again");
}

pub async fn a_completed_call_finishes_its_contact_as_done(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 1, 3, 1).await;
    let dial = claim(&store, &cmp.id, at(0)).await.pop().unwrap();
    place(&store, &dial, at(1)).await;
    apply1(&store, progress(&dial.call_id, CallStatus::InProgress), at(5)).await;
    end(&store, &dial.call_id, Outcome::Completed, at(60)).await;

    let c = load_contact(&store, &ws, &dial.contact_id).await;
    assert_eq!((c.status, c.attempts, c.last_outcome), (ContactStatus::Done, 1, Some(Outcome::Completed)));
    let call = load_call(&store, &ws, &dial.call_id).await;
    assert_eq!((call.answered_at, call.ended_at), (Some(at(5)), Some(at(60))));
    assert!(claim(&store, &cmp.id, at(1_000_000)).await.is_empty());
}

pub async fn an_end_in_a_canceled_campaign_cancels_the_contact_instead_of_retrying(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 1, 3, 1).await;
    let dial = claim(&store, &cmp.id, at(0)).await.pop().unwrap();
    place(&store, &dial, at(1)).await;
    assert!(store.cancel_campaign(&ws, &cmp.id, at(2)).await.unwrap());
    assert_eq!(load_contact(&store, &ws, &dial.contact_id).await.status, ContactStatus::InCall, "its call is still live");

    end(&store, &dial.call_id, Outcome::NoAnswer, at(30)).await;
    let c = load_contact(&store, &ws, &dial.contact_id).await;
    assert_eq!((c.status, c.last_outcome), (ContactStatus::Canceled, Some(Outcome::NoAnswer)));
    assert_eq!(load_call(&store, &ws, &dial.call_id).await.outcome, Some(Outcome::NoAnswer), "the call is still recorded");
}

pub async fn end_call_on_a_queued_call_with_failed_is_failed_and_schedules_a_retry(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 1, 3, 1).await;
    let dial = claim(&store, &cmp.id, at(0)).await.pop().unwrap();
    assert!(store.mark_placing(&dial.call_id, NODE, at(1)).await.unwrap());

    let applied = store.end_call(&dial.call_id, Outcome::Failed, "provider said 400", at(2)).await.unwrap().expect("applied");
    assert!(applied.ended_call());
    let call = load_call(&store, &ws, &dial.call_id).await;
    assert_eq!((call.status, call.outcome), (CallStatus::Failed, Some(Outcome::Failed)), "refused before acceptance: failed, not ended");
    assert_eq!(call.ended_at, Some(at(2)));
    let c = load_contact(&store, &ws, &dial.contact_id).await;
    assert_eq!((c.status, c.attempts, c.next_attempt_at), (ContactStatus::Pending, 1, at(2) + retry_base()));
    assert_eq!(active_of(&store, &ws, &cmp.id).await, 0, "the slot is free");
    assert!(store.end_call(&dial.call_id, Outcome::Failed, "again", at(3)).await.unwrap().is_none(), "a call ends once");
    let events = store.call_events(&ws, &dial.call_id).await.unwrap();
    assert!(events.iter().any(|e| e.source == "engine" && e.applied), "the decision is recorded: {events:?}");
}

pub async fn a_call_refused_because_the_account_is_full_spends_no_attempt(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 1, 1, 1).await;
    let dial = claim(&store, &cmp.id, at(0)).await.pop().unwrap();
    place(&store, &dial, at(1)).await;
    let refused = EventKind::Ended { outcome: Outcome::Failed, reason: Some("call.start.error-subscription-concurrency-limit-reached".into()) };
    apply1(&store, event(Some(&dial.call_id), None, refused, "capacity-refusal"), at(2)).await;
    let c = load_contact(&store, &ws, &dial.contact_id).await;
    assert_eq!((c.status, c.attempts), (ContactStatus::Pending, 0), "max_attempts 1, yet the contact is due again");
    assert_eq!(c.next_attempt_at, at(2) + jiff::SignedDuration::from_secs(5));
    assert_eq!(claim(&store, &cmp.id, at(8)).await.len(), 1, "and is dialled again");
}

pub async fn a_whole_group_commit_is_applied_as_if_its_events_came_one_by_one(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 3, 3, 3).await;
    let dials = claim(&store, &cmp.id, at(0)).await;
    assert_eq!(dials.len(), 3);
    // Call 0 is placing, its provider id not stored yet; calls 1 and 2 are dialled.
    assert!(store.mark_placing(&dials[0].call_id, NODE, at(1)).await.unwrap());
    let p1 = place(&store, &dials[1], at(1)).await;
    let p2 = place(&store, &dials[2], at(1)).await;
    let end_of = |call: Option<&CallId>, pid: Option<&str>, outcome, key: &str| {
        let mut e = event(call, pid, EventKind::Ended { outcome, reason: Some(format!("{key} reason")) }, key);
        e.cost = Some(0.25);
        e
    };
    let batch = vec![
        // Found by our id; attaches its provider id, which the next events use alone.
        event(Some(&dials[0].call_id), Some("p0-late"), EventKind::Progress(CallStatus::Ringing), "b-0-ringing"),
        event(None, Some("p0-late"), EventKind::Progress(CallStatus::InProgress), "b-0-live"),
        end_of(None, Some("p0-late"), Outcome::Completed, "b-0-end"),
        // Ended, then a stale progress update and a second end: neither moves it back.
        end_of(None, Some(&p1), Outcome::NoAnswer, "b-1-end"),
        event(None, Some(&p1), EventKind::Progress(CallStatus::InProgress), "b-1-stale"),
        end_of(None, Some(&p1), Outcome::Completed, "b-1-end-again"),
        // A repeat inside the batch, and an event for a call nobody knows.
        event(None, Some(&p2), EventKind::Progress(CallStatus::InProgress), "b-2-live"),
        event(None, Some(&p2), EventKind::Progress(CallStatus::InProgress), "b-2-live"),
        event(None, Some("p-unknown"), EventKind::Progress(CallStatus::Ringing), "b-x"),
    ];
    let out = store.apply_events(&batch, at(5)).await.unwrap();
    let to: Vec<Option<CallStatus>> = out.iter().map(|a| a.transition.as_ref().map(|t| t.to)).collect();
    use CallStatus::*;
    assert_eq!(to, vec![Some(Ringing), Some(InProgress), Some(Ended), Some(Ended), None, None, Some(InProgress), None, None]);
    assert_eq!(out.iter().map(|a| a.duplicate).collect::<Vec<_>>(), vec![false, false, false, false, false, false, false, true, false]);
    assert!(out[..3].iter().all(|a| a.call_id.as_ref() == Some(&dials[0].call_id)), "{out:?}");
    assert!(out[8].call_id.is_none());

    let c0 = load_call(&store, &ws, &dials[0].call_id).await;
    assert_eq!((c0.status, c0.outcome, c0.provider_call_id.as_deref()), (Ended, Some(Outcome::Completed), Some("p0-late")));
    assert_eq!((c0.answered_at, c0.ended_at, c0.cost), (Some(at(5)), Some(at(5)), Some(0.25)));
    assert_eq!(c0.ended_reason.as_deref(), Some("b-0-end reason"));
    let c1 = load_call(&store, &ws, &dials[1].call_id).await;
    assert_eq!((c1.status, c1.outcome, c1.answered_at), (Ended, Some(Outcome::NoAnswer), None), "the first end stands");
    assert_eq!(load_call(&store, &ws, &dials[2].call_id).await.status, InProgress);

    let k0 = load_contact(&store, &ws, &dials[0].contact_id).await;
    assert_eq!((k0.status, k0.last_outcome), (ContactStatus::Done, Some(Outcome::Completed)));
    let k1 = load_contact(&store, &ws, &dials[1].contact_id).await;
    assert_eq!((k1.status, k1.attempts, k1.next_attempt_at), (ContactStatus::Pending, 1, at(5) + retry_base()));
    assert_eq!(active_of(&store, &ws, &cmp.id).await, 1);

    let events = store.call_events(&ws, &dials[1].call_id).await.unwrap();
    let applied: Vec<(&str, bool)> = events.iter().filter(|e| e.source == "provider").map(|e| (e.payload["test"].as_str().unwrap(), e.applied)).collect();
    assert_eq!(applied, vec![("b-1-end", true), ("b-1-stale", false), ("b-1-end-again", false)], "stored in order, applied once");
}
