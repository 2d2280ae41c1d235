//! The outbox of outbound events (issue 13): events written with the state change they
//! report, fanned out to the matching endpoints, claimed with a lease, retried on the
//! schedule, an endpoint disabled after 5 days of failures, rotation, replay.

use crate::support::*;
use dialtone_core::{CallStatus, Mode, Outcome};
use dialtone_store::{NewWebhookEndpoint, TryResult, WebhookEndpointPatch, WEBHOOK_DISABLE_AFTER, WEBHOOK_RETRY_SCHEDULE};
use secrecy::{ExposeSecret, SecretString};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn secret() -> SecretString {
    SecretString::from(SECRET)
}

/// The secrets as text, for comparing.
fn exposed<'a>(secrets: impl IntoIterator<Item = &'a SecretString>) -> Vec<&'a str> {
    secrets.into_iter().map(ExposeSecret::expose_secret).collect()
}

fn endpoint(events: &[&str]) -> NewWebhookEndpoint {
    NewWebhookEndpoint { url: "http://127.0.0.1:9/hook".into(), events: events.iter().map(|e| e.to_string()).collect(), enabled: true, description: None }
}

fn answer(status: u16) -> TryResult {
    TryResult { status_code: Some(status), latency_ms: 3, response_excerpt: Some("x".repeat(5000)), error: None }
}

/// A campaign started once sends one `campaign.started`: a resume sends `campaign.resumed`,
/// also when the campaign had placed no call yet (and so goes back to `starting`).
pub async fn a_resume_sends_campaign_resumed_never_a_second_campaign_started(store: S) {
    use dialtone_core::CampaignStatus::{Dialing, Paused, Starting};
    let ws = store.default_workspace().await.unwrap();
    let ep = store.create_webhook_endpoint(&ws, &endpoint(&["campaign.started", "campaign.paused", "campaign.resumed"]), &secret(), t0()).await.unwrap();
    let cmp = draft_campaign(&store, &ws, Mode::Continuous, 5, 1).await;
    add_contacts(&store, &ws, &cmp.id, 0..2).await;
    start(&store, &ws, &cmp.id).await;
    // Paused and resumed before its first call: back to `starting`.
    assert!(store.transition_campaign(&ws, &cmp.id, &[Starting, Dialing], Paused, at(1)).await.unwrap());
    assert!(store.transition_campaign(&ws, &cmp.id, &[Paused], Starting, at(2)).await.unwrap());
    // Then dialling, paused and resumed again.
    let dials = claim(&store, &cmp.id, at(3)).await;
    place(&store, &dials[0], at(4)).await;
    assert!(store.transition_campaign(&ws, &cmp.id, &[Starting, Dialing], Paused, at(5)).await.unwrap());
    assert!(store.transition_campaign(&ws, &cmp.id, &[Paused], Dialing, at(6)).await.unwrap());

    let page = dialtone_store::Page { limit: 100, before: None };
    let mut got: Vec<(jiff::Timestamp, String, serde_json::Value)> = store
        .list_deliveries(&ws, ep.id.as_str(), &page)
        .await
        .unwrap()
        .into_iter()
        .map(|(d, _)| (d.created_at, d.event_type, serde_json::from_str::<serde_json::Value>(&d.payload).unwrap()["data"]["status"].clone()))
        .collect();
    got.sort_by_key(|(at, ..)| *at);
    let got: Vec<(String, serde_json::Value)> = got.into_iter().map(|(_, t, s)| (t, s)).collect();
    let want: Vec<(String, serde_json::Value)> = [
        ("campaign.started", "starting"),
        ("campaign.paused", "paused"),
        ("campaign.resumed", "starting"),
        ("campaign.paused", "paused"),
        ("campaign.resumed", "dialing"),
    ]
    .into_iter()
    .map(|(t, s)| (t.to_string(), serde_json::json!(s)))
    .collect();
    assert_eq!(got, want);
}

/// A batch starts when it is made: its `campaign.started` is written with it (and, as for
/// any campaign, its `campaign.completed` when it is done), scheduled or not.
pub async fn a_batch_writes_campaign_started_when_it_is_made(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let ep = store.create_webhook_endpoint(&ws, &endpoint(&["campaign.started", "campaign.completed"]), &secret(), t0()).await.unwrap();
    let now_batch = store.create_batch(new_campaign(&ws, Mode::Continuous, 5, 1), &new_contacts(0..2), None, t0()).await.unwrap();
    let later = store.create_batch(new_campaign(&ws, Mode::Continuous, 5, 1), &new_contacts(0..1), Some(at(3600)), t0()).await.unwrap();
    let page = dialtone_store::Page { limit: 100, before: None };
    let mut got: Vec<(String, serde_json::Value)> = store
        .list_deliveries(&ws, ep.id.as_str(), &page)
        .await
        .unwrap()
        .into_iter()
        .map(|(d, _)| (d.event_type, serde_json::from_str::<serde_json::Value>(&d.payload).unwrap()["data"].clone()))
        .collect();
    got.sort_by_key(|(_, data)| data["campaign_id"].as_str().unwrap().to_string());
    let mut want = vec![
        ("campaign.started".to_string(), serde_json::json!({"campaign_id": now_batch.id.as_str(), "status": "starting"})),
        ("campaign.started".to_string(), serde_json::json!({"campaign_id": later.id.as_str(), "status": "starting"})),
    ];
    want.sort_by_key(|(_, data)| data["campaign_id"].as_str().unwrap().to_string());
    assert_eq!(got, want, "one campaign.started for each batch, at once");
}

/// Every event type a campaign run causes lands in the outbox of a subscribed endpoint, in
/// the transaction of its change, and only those its endpoint asked for; none for another
/// workspace's endpoint or a disabled one.
pub async fn a_campaign_run_writes_each_subscribed_event_once_to_each_matching_endpoint(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let all = store.create_webhook_endpoint(&ws, &endpoint(&dialtone_store::WEBHOOK_EVENT_TYPES), &secret(), t0()).await.unwrap();
    let ended_only = store.create_webhook_endpoint(&ws, &endpoint(&["call.ended"]), &secret(), t0()).await.unwrap();
    let off = store.create_webhook_endpoint(&ws, &NewWebhookEndpoint { enabled: false, ..endpoint(&["call.ended"]) }, &secret(), t0()).await.unwrap();

    let cmp = draft_campaign(&store, &ws, Mode::Continuous, 5, 1).await;
    add_contacts(&store, &ws, &cmp.id, 0..2).await;
    start(&store, &ws, &cmp.id).await;
    let dials = claim(&store, &cmp.id, at(1)).await;
    assert_eq!(dials.len(), 2);
    for d in &dials {
        place(&store, d, at(2)).await;
        apply1(&store, progress(&d.call_id, CallStatus::InProgress), at(3)).await;
        end(&store, &d.call_id, Outcome::Completed, at(4)).await;
    }
    assert!(store.complete_if_done(&cmp.id, at(5)).await.unwrap());

    let page = dialtone_store::Page { limit: 100, before: None };
    let types = |rows: Vec<(dialtone_store::Delivery, Vec<dialtone_store::DeliveryAttempt>)>| {
        let mut t: Vec<String> = rows.into_iter().map(|(d, _)| d.event_type).collect();
        t.sort();
        t
    };
    let got = types(store.list_deliveries(&ws, all.id.as_str(), &page).await.unwrap());
    assert_eq!(
        got,
        vec!["call.ended", "call.ended", "call.started", "call.started", "campaign.completed", "campaign.started", "contact.finished", "contact.finished"],
        "every event the run caused, once"
    );
    assert_eq!(types(store.list_deliveries(&ws, ended_only.id.as_str(), &page).await.unwrap()), vec!["call.ended", "call.ended"]);
    assert!(store.list_deliveries(&ws, off.id.as_str(), &page).await.unwrap().is_empty(), "a disabled endpoint gets nothing");

    // The payload: the Standard Webhooks shape, with what call.ended promises.
    let rows = store.list_deliveries(&ws, ended_only.id.as_str(), &page).await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&rows[0].0.payload).unwrap();
    assert_eq!(body["type"], "call.ended");
    assert!(body["timestamp"].is_string());
    for key in ["call_id", "campaign_id", "contact_id", "outcome", "duration_ms", "cost", "transcript_summary"] {
        assert!(body["data"].get(key).is_some(), "call.ended data has {key}: {body}");
    }
    assert_eq!(body["data"]["outcome"], "completed");
    // Answered at 3 s, ended at 4 s, no talk time from the provider: dialtone's own.
    assert!(body["data"]["answered_at"].is_string(), "{body}");
    assert_eq!(body["data"]["duration_ms"], 1000, "{body}");
    // One message id for both endpoints' copies of an event.
    let other = store.list_deliveries(&ws, all.id.as_str(), &page).await.unwrap();
    assert!(other.iter().any(|(d, _)| d.message_id == rows[0].0.message_id));
}

/// Webhooks reorder and get lost: a call whose in-progress came after its end, or never,
/// is on record as answered (`answered_at` its talk time before the end) and sends its
/// `call.started` once, as in order; a call nobody answered has no duration, whatever the
/// provider reported (Twilio's `CallDuration` is 0 on `no-answer`), and a late in-progress
/// does not contradict its end.
pub async fn an_answer_whose_in_progress_came_late_or_never_is_on_record_and_sends_call_started(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let ep = store.create_webhook_endpoint(&ws, &endpoint(&["call.started", "call.ended"]), &secret(), t0()).await.unwrap();
    let cmp = draft_campaign(&store, &ws, Mode::Continuous, 5, 1).await;
    add_contacts(&store, &ws, &cmp.id, 0..3).await;
    start(&store, &ws, &cmp.id).await;
    let dials = claim(&store, &cmp.id, at(1)).await;
    assert_eq!(dials.len(), 3);
    for d in &dials {
        place(&store, d, at(2)).await;
    }
    let with_duration = |call, outcome, ms| {
        let mut e = ended(call, outcome);
        e.duration_ms = Some(ms);
        e
    };
    // Late, with no talk time reported: the end at 10 s, its in-progress at 12 s.
    end(&store, &dials[0].call_id, Outcome::Completed, at(10)).await;
    assert_eq!(load_call(&store, &ws, &dials[0].call_id).await.answered_at, None, "answered, when not yet known");
    let late = apply1(&store, progress(&dials[0].call_id, CallStatus::InProgress), at(12)).await;
    assert!(late.transition.is_none(), "it does not move the ended call");
    // Never, with 4 s of talk: answered 4 s before the end; a late copy changes nothing.
    apply1(&store, with_duration(&dials[1].call_id, Outcome::Completed, 4_000), at(10)).await;
    apply1(&store, progress(&dials[1].call_id, CallStatus::InProgress), at(12)).await;
    // Nobody answered; Twilio says 0 s; an in-progress after it changes nothing.
    apply1(&store, with_duration(&dials[2].call_id, Outcome::NoAnswer, 0), at(10)).await;
    apply1(&store, progress(&dials[2].call_id, CallStatus::InProgress), at(12)).await;

    let c0 = load_call(&store, &ws, &dials[0].call_id).await;
    assert_eq!((c0.status, c0.answered_at, c0.ended_at, c0.duration_ms), (CallStatus::Ended, Some(at(10)), Some(at(10)), None), "no later than its end");
    let c1 = load_call(&store, &ws, &dials[1].call_id).await;
    assert_eq!((c1.answered_at, c1.duration_ms), (Some(at(6)), Some(4_000)));
    let c2 = load_call(&store, &ws, &dials[2].call_id).await;
    assert_eq!((c2.outcome, c2.answered_at, c2.duration_ms), (Some(Outcome::NoAnswer), None, None));
    let (store_ref, ws_ref) = (&store, &ws);
    let applied = |call| async move {
        let events = store_ref.call_events(ws_ref, call).await.unwrap();
        events.iter().filter(|e| e.source == "provider").map(|e| (e.kind.clone(), e.applied)).collect::<Vec<_>>()
    };
    let (late, ended_it) = (("in_progress".to_string(), true), ("ended:completed".to_string(), true));
    assert_eq!(applied(&dials[0].call_id).await, [ended_it.clone(), late.clone()], "the late in-progress changed the record");
    assert_eq!(applied(&dials[1].call_id).await, [ended_it, (late.0.clone(), false)], "the answer was on record already");
    assert_eq!(applied(&dials[2].call_id).await, [("ended:no_answer".to_string(), true), (late.0, false)]);

    let page = dialtone_store::Page { limit: 100, before: None };
    let mut got: Vec<(String, String, serde_json::Value)> = store
        .list_deliveries(&ws, ep.id.as_str(), &page)
        .await
        .unwrap()
        .into_iter()
        .map(|(d, _)| {
            let body: serde_json::Value = serde_json::from_str(&d.payload).unwrap();
            (body["data"]["call_id"].as_str().unwrap().to_string(), d.event_type, body["data"].clone())
        })
        .collect();
    got.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let of = |call: &dialtone_core::CallId| got.iter().filter(|g| g.0 == call.as_str()).map(|g| g.1.as_str()).collect::<Vec<_>>();
    assert_eq!(of(&dials[0].call_id), ["call.ended", "call.started"], "{got:?}");
    assert_eq!(of(&dials[1].call_id), ["call.ended", "call.started"], "{got:?}");
    assert_eq!(of(&dials[2].call_id), ["call.ended"], "{got:?}");
    let data = |call: &dialtone_core::CallId, t: &str| got.iter().find(|g| g.0 == call.as_str() && g.1 == t).unwrap().2.clone();
    assert_eq!(data(&dials[0].call_id, "call.started")["answered_at"], at(10).to_string());
    assert_eq!(data(&dials[1].call_id, "call.started")["answered_at"], at(6).to_string());
    assert_eq!(data(&dials[1].call_id, "call.ended")["duration_ms"], 4_000);
    assert_eq!(data(&dials[2].call_id, "call.ended")["duration_ms"], serde_json::Value::Null);
}

/// An event is stored once, as a message, and fanned out by the worker's claims to the
/// endpoints enabled and subscribed at that moment: meanwhile the delivery log shows it
/// pending under the message id and body it keeps after; more messages than one claim fans
/// out (as many as it may claim) are fanned out by the claims that follow, each to each
/// endpoint once.
pub async fn an_event_is_one_message_until_a_claim_fans_it_out_to_the_endpoints_receiving_it_then(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let early = store.create_webhook_endpoint(&ws, &endpoint(&["call.ended"]), &secret(), t0()).await.unwrap();
    let disabled_since = store.create_webhook_endpoint(&ws, &endpoint(&["call.ended"]), &secret(), t0()).await.unwrap();
    let other_type = store.create_webhook_endpoint(&ws, &endpoint(&["call.started"]), &secret(), t0()).await.unwrap();
    let events: Vec<dialtone_store::OutboxEvent> =
        (0..1201).map(|n| dialtone_store::OutboxEvent::new(ws.as_str(), "call.ended", serde_json::json!({ "n": n }))).collect();
    store.emit_events(&events, t0()).await.unwrap();

    let page = dialtone_store::Page { limit: 5, before: None };
    let before = store.list_deliveries(&ws, early.id.as_str(), &page).await.unwrap();
    assert_eq!(before.len(), 5);
    assert!(before.iter().all(|(d, tries)| d.status == "pending" && d.attempts == 0 && tries.is_empty()), "waiting to be fanned out: {before:?}");
    assert!(store.list_deliveries(&ws, other_type.id.as_str(), &page).await.unwrap().is_empty(), "not subscribed: not listed");

    // Changes before the fan-out count: an endpoint created since receives the messages,
    // one disabled since does not.
    let late = store.create_webhook_endpoint(&ws, &endpoint(&["call.ended"]), &secret(), at(1)).await.unwrap();
    let off = WebhookEndpointPatch { enabled: Some(false), ..Default::default() };
    store.update_webhook_endpoint(&ws, disabled_since.id.as_str(), &off, at(1)).await.unwrap().unwrap();

    let lease = jiff::SignedDuration::from_secs(60);
    let mut claimed = std::collections::BTreeSet::new();
    loop {
        let got = store.claim_deliveries("n1", at(2), lease, 500).await.unwrap();
        if got.is_empty() {
            break;
        }
        for c in got {
            assert!(
                claimed.insert((c.delivery.message_id.as_str().to_string(), c.delivery.endpoint_id.as_str().to_string())),
                "claimed twice: {:?}",
                c.delivery
            );
        }
    }
    assert_eq!(claimed.len(), 2 * 1201, "every message to each of the two endpoints receiving it");
    let to = |ep: &dialtone_store::WebhookEndpoint| claimed.iter().filter(|(_, e)| e == ep.id.as_str()).count();
    assert_eq!((to(&early), to(&late), to(&disabled_since), to(&other_type)), (1201, 1201, 0, 0));

    let after = store.list_deliveries(&ws, early.id.as_str(), &page).await.unwrap();
    let key = |rows: &[(dialtone_store::Delivery, Vec<dialtone_store::DeliveryAttempt>)]| {
        rows.iter().map(|(d, _)| (d.message_id.clone(), d.payload.clone())).collect::<Vec<_>>()
    };
    assert_eq!(key(&after), key(&before), "the same messages, ids and bodies, before and after the fan-out");
    assert!(after.iter().all(|(d, _)| d.attempts == 1), "claimed once each: {after:?}");
    assert!(store.list_deliveries(&ws, disabled_since.id.as_str(), &page).await.unwrap().is_empty(), "disabled before the fan-out: nothing");
}

/// A `call.ended` whose provider sends its end-of-call report in a webhook of its own
/// (Vapi, the simulator) waits for it: it is not fanned out while only the `ended` status is
/// stored (the delivery log shows it pending until the end of its wait), and once the report
/// is stored it goes with the report's cost, duration and summary. A report that never comes
/// lets it go when the wait is over, with dialtone's own duration; a call whose end is its
/// report is not held.
pub async fn a_call_ended_waits_for_the_providers_report_and_carries_its_figures(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let ep = store.create_webhook_endpoint(&ws, &endpoint(&["call.ended"]), &secret(), t0()).await.unwrap();
    let cmp = draft_campaign(&store, &ws, Mode::Continuous, 5, 1).await;
    add_contacts(&store, &ws, &cmp.id, 0..3).await;
    start(&store, &ws, &cmp.id).await;
    let dials = claim(&store, &cmp.id, at(1)).await;
    assert_eq!(dials.len(), 3);
    let (reported, silent, at_once) = (&dials[0].call_id, &dials[1].call_id, &dials[2].call_id);
    for d in &dials {
        place(&store, d, at(2)).await;
        apply1(&store, progress(&d.call_id, CallStatus::InProgress), at(3)).await;
    }
    // Two calls end by their status (Vapi's `status-update` `ended`), the third by its report.
    for call in [reported, silent] {
        let mut status = ended(call, Outcome::Completed);
        status.provider_type = "status-update".into();
        assert!(apply1(&store, status, at(4)).await.ended_call());
    }
    end(&store, at_once, Outcome::Completed, at(4)).await;

    let lease = jiff::SignedDuration::from_secs(60);
    let claim_ended = |now| {
        let store = store.clone();
        async move {
            let got = store.claim_deliveries("n1", now, lease, 100).await.unwrap();
            got.into_iter()
                .map(|c| {
                    let body: serde_json::Value = serde_json::from_str(&c.delivery.payload).unwrap();
                    (body["data"]["call_id"].as_str().unwrap().to_string(), body["data"].clone())
                })
                .collect::<std::collections::BTreeMap<String, serde_json::Value>>()
        }
    };
    let first = claim_ended(at(5)).await;
    assert_eq!(first.keys().collect::<Vec<_>>(), vec![at_once.as_str()], "only the call ended by its report goes at once: {first:?}");
    let page = dialtone_store::Page { limit: 10, before: None };
    let pending: Vec<_> = store.list_deliveries(&ws, ep.id.as_str(), &page).await.unwrap().into_iter().filter(|(d, _)| d.attempts == 0).collect();
    assert_eq!(pending.len(), 2, "the held two are listed pending: {pending:?}");
    assert!(pending.iter().all(|(d, _)| d.next_attempt_at == Some(at(4 + 30))), "due at the end of their wait at the latest: {pending:?}");

    // The report on the first comes after its end: its event is stored, then (as the ingest
    // does, right after the commit) its content is saved on the call, which lets it go.
    let content = dialtone_core::CallReport { summary: Some("Booked a visit.".into()), ..Default::default() };
    let mut report = ended(reported, Outcome::Completed);
    report.cost = Some(0.42);
    report.duration_ms = Some(2500);
    report.report = Some(Box::new(content.clone()));
    apply1(&store, report, at(6)).await;
    assert!(claim_ended(at(6)).await.is_empty(), "the report's content is not on the call yet");
    assert!(store.save_call_report(reported, &content, at(6)).await.unwrap());
    let second = claim_ended(at(6)).await;
    assert_eq!(second.keys().collect::<Vec<_>>(), vec![reported.as_str()], "released by its report: {second:?}");
    let data = &second[reported.as_str()];
    assert_eq!(
        (data["cost"].as_f64(), data["duration_ms"].as_i64(), data["transcript_summary"].as_str()),
        (Some(0.42), Some(2500), Some("Booked a visit.")),
        "{data}"
    );
    assert_eq!(data["outcome"], "completed");

    // No report for the second: it goes when its wait is over, with what dialtone saw.
    assert!(claim_ended(at(4 + 29)).await.is_empty(), "still within its wait");
    let last = claim_ended(at(4 + 30)).await;
    assert_eq!(last.keys().collect::<Vec<_>>(), vec![silent.as_str()]);
    let data = &last[silent.as_str()];
    assert!(data["cost"].is_null() && data["transcript_summary"].is_null(), "{data}");
    assert_eq!(data["duration_ms"], 1000, "answered at 3 s, ended at 4 s: {data}");
}

/// An end-of-call report that came before its call had the provider's id (an orphan) is
/// the call's report once adopted: the `call.ended` it causes goes at once, with the
/// report's cost, not held waiting for a report that already came.
pub async fn an_adopted_orphan_report_releases_its_call_ended_at_once(store: S) {
    let ws = store.default_workspace().await.unwrap();
    store.create_webhook_endpoint(&ws, &endpoint(&["call.ended"]), &secret(), t0()).await.unwrap();
    let cmp = draft_campaign(&store, &ws, Mode::Continuous, 5, 1).await;
    add_contacts(&store, &ws, &cmp.id, 0..1).await;
    start(&store, &ws, &cmp.id).await;
    let dials = claim(&store, &cmp.id, at(1)).await;
    let call = &dials[0].call_id;
    assert!(store.mark_placing(call, NODE, at(2)).await.unwrap());
    // The report arrives before the provider's answer is stored, naming only its own id.
    let pid = provider_id(call);
    let mut report = event(None, Some(&pid), dialtone_core::EventKind::Ended { outcome: Outcome::Completed, reason: None }, &fresh_key());
    report.provider_type = dialtone_store::apply::REPORT_TYPE.into();
    report.raw = serde_json::json!({"message": {"type": "end-of-call-report", "cost": 0.37, "endedReason": "customer-ended-call"}}).into();
    assert!(apply1(&store, report, at(3)).await.call_id.is_none(), "stored as an orphan");
    store.mark_dialed(call, &pid, at(3)).await.unwrap();
    let call_row = load_call(&store, &ws, call).await;
    assert_eq!(call_row.status, CallStatus::Ended, "the adopted report ended the call");

    let got = store.claim_deliveries("n1", at(3), jiff::SignedDuration::from_secs(60), 100).await.unwrap();
    assert_eq!(got.len(), 1, "the call.ended goes at once, not after a wait for a report that came: {got:?}");
    let body: serde_json::Value = serde_json::from_str(&got[0].delivery.payload).unwrap();
    assert_eq!((body["type"].as_str(), body["data"]["cost"].as_f64()), (Some("call.ended"), Some(0.37)), "{body}");
}

/// Claims are leased and exclusive; a failure is retried after the schedule's next wait,
/// the eighth failure fails it; a lost claim writes nothing; replay sends it again.
pub async fn deliveries_are_leased_retried_on_the_schedule_and_replayed(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let ep = store.create_webhook_endpoint(&ws, &endpoint(&["campaign.paused"]), &secret(), t0()).await.unwrap();
    let cmp = draft_campaign(&store, &ws, Mode::Continuous, 1, 1).await;
    start(&store, &ws, &cmp.id).await;
    assert!(store.transition_campaign(&ws, &cmp.id, &[dialtone_core::CampaignStatus::Starting], dialtone_core::CampaignStatus::Paused, t0()).await.unwrap());

    let lease = jiff::SignedDuration::from_secs(60);
    let mut now = t0();
    for attempt in 1..=8u32 {
        let got = store.claim_deliveries("n1", now, lease, 10).await.unwrap();
        assert_eq!(got.len(), 1, "try {attempt} is due at {now}");
        assert_eq!(exposed(&got[0].secrets), [SECRET]);
        assert_eq!(got[0].delivery.attempts, attempt);
        assert!(store.claim_deliveries("n2", now, lease, 10).await.unwrap().is_empty(), "a claimed delivery is nobody else's");
        assert!(store.finish_delivery(&got[0].delivery, attempt, "n1", &answer(503), now).await.unwrap());
        if attempt < 8 {
            let wait = WEBHOOK_RETRY_SCHEDULE[attempt as usize];
            let early = now.checked_add(wait - jiff::SignedDuration::from_millis(1)).unwrap();
            assert!(store.claim_deliveries("n1", early, lease, 10).await.unwrap().is_empty(), "not before the wait of try {}", attempt + 1);
            now = now.checked_add(wait).unwrap();
        }
    }
    let page = dialtone_store::Page { limit: 10, before: None };
    let rows = store.list_deliveries(&ws, ep.id.as_str(), &page).await.unwrap();
    assert_eq!(rows[0].0.status, "failed");
    assert_eq!(rows[0].1.len(), 8, "the log has every try");
    assert_eq!(rows[0].1[0].status_code, Some(503));
    assert_eq!(rows[0].1[0].response_excerpt.as_ref().unwrap().len(), 1024, "the answer is cut to 1 KiB");

    // Replay: due at once, a dead node's claim is retaken after its lease, and its late
    // finish writes nothing.
    let message = rows[0].0.message_id.clone();
    assert!(store.replay_delivery(&ws, ep.id.as_str(), message.as_str(), now).await.unwrap());
    let dead = store.claim_deliveries("dead", now, lease, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(store.claim_deliveries("n1", now.checked_add(jiff::SignedDuration::from_secs(59)).unwrap(), lease, 10).await.unwrap().is_empty());
    let later = now.checked_add(lease).unwrap();
    let retaken = store.claim_deliveries("n1", later, lease, 10).await.unwrap();
    assert_eq!(retaken.len(), 1, "a dead node's claim is due again after its lease");
    assert!(!store.finish_delivery(&dead[0].delivery, 1, "dead", &answer(200), later).await.unwrap(), "the dead node's claim is lost");
    assert!(store.finish_delivery(&retaken[0].delivery, 2, "n1", &answer(204), later).await.unwrap());
    let rows = store.list_deliveries(&ws, ep.id.as_str(), &page).await.unwrap();
    assert_eq!(rows[0].0.status, "delivered");
    let numbers: Vec<u32> = rows[0].1.iter().map(|t| t.attempt).collect();
    assert_eq!(numbers, (1..=9).collect::<Vec<u32>>(), "the replay's try is numbered after the eight before it");
    assert!(store.claim_deliveries("n1", later.checked_add(jiff::SignedDuration::from_hours(48)).unwrap(), lease, 10).await.unwrap().is_empty());
    assert!(!store.replay_delivery(&ws, ep.id.as_str(), "msg_01JZZZZZZZZZZZZZZZZZZZZZZZ", now).await.unwrap());
}

/// Five days of failures disable an endpoint (and a PATCH turns it back on); a rotation
/// signs with both secrets for 24 h, and a second one keeps only the secret it replaced.
pub async fn an_endpoint_failing_for_five_days_is_disabled_and_rotation_keeps_two_secrets_a_day(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let ep = store.create_webhook_endpoint(&ws, &endpoint(&["campaign.paused", "campaign.canceled"]), &secret(), t0()).await.unwrap();
    let cmp = draft_campaign(&store, &ws, Mode::Continuous, 1, 1).await;
    start(&store, &ws, &cmp.id).await;
    assert!(store.transition_campaign(&ws, &cmp.id, &[dialtone_core::CampaignStatus::Starting], dialtone_core::CampaignStatus::Paused, t0()).await.unwrap());
    let lease = jiff::SignedDuration::from_secs(60);
    let got = store.claim_deliveries("n1", t0(), lease, 10).await.unwrap();
    store.finish_delivery(&got[0].delivery, 1, "n1", &answer(500), t0()).await.unwrap();
    let first = store.get_webhook_endpoint(&ws, ep.id.as_str()).await.unwrap().unwrap();
    assert_eq!(first.failing_since, Some(t0()));
    assert!(first.enabled);

    // Another event, failing five days later: the endpoint is disabled.
    let five_days = t0().checked_add(WEBHOOK_DISABLE_AFTER).unwrap();
    assert!(store.cancel_campaign(&ws, &cmp.id, five_days).await.unwrap());
    let got = store.claim_deliveries("n1", five_days, lease, 10).await.unwrap();
    let canceled = got.iter().find(|c| c.delivery.event_type == "campaign.canceled").expect("campaign.canceled is due");
    let attempt = canceled.delivery.attempts;
    store
        .finish_delivery(
            &canceled.delivery,
            attempt,
            "n1",
            &TryResult { status_code: None, latency_ms: 10_000, response_excerpt: None, error: Some("timeout".into()) },
            five_days,
        )
        .await
        .unwrap();
    let off = store.get_webhook_endpoint(&ws, ep.id.as_str()).await.unwrap().unwrap();
    assert!(!off.enabled);
    assert_eq!(off.disabled_reason.as_deref(), Some("failing"));
    let far = five_days.checked_add(jiff::SignedDuration::from_hours(30)).unwrap();
    assert!(store.claim_deliveries("n1", far, lease, 10).await.unwrap().is_empty(), "a disabled endpoint's deliveries wait");
    let on =
        store.update_webhook_endpoint(&ws, ep.id.as_str(), &WebhookEndpointPatch { enabled: Some(true), ..Default::default() }, far).await.unwrap().unwrap();
    assert!(on.enabled && on.disabled_reason.is_none() && on.failing_since.is_none());

    // Rotation.
    let rotated = store.rotate_webhook_secret(&ws, ep.id.as_str(), &"whsec_bmV3bmV3bmV3bmV3bmV3bmV3".into(), far).await.unwrap().unwrap();
    assert_eq!(exposed(rotated.signing_secrets(far)), ["whsec_bmV3bmV3bmV3bmV3bmV3bmV3", SECRET]);
    let day = far.checked_add(jiff::SignedDuration::from_hours(24)).unwrap();
    assert_eq!(exposed(rotated.signing_secrets(day)), ["whsec_bmV3bmV3bmV3bmV3bmV3bmV3"], "the old secret stops signing after 24 h");
    // A second rotation within the overlap keeps one previous secret: the one it replaced.
    let hour = far.checked_add(jiff::SignedDuration::from_hours(1)).unwrap();
    let again = store.rotate_webhook_secret(&ws, ep.id.as_str(), &"whsec_dGhpcmR0aGlyZHRoaXJkdGhp".into(), hour).await.unwrap().unwrap();
    assert_eq!(exposed(again.signing_secrets(hour)), ["whsec_dGhpcmR0aGlyZHRoaXJkdGhp", "whsec_bmV3bmV3bmV3bmV3bmV3bmV3"], "the original stops at once");
    assert_eq!(again.previous_secret_until, hour.checked_add(jiff::SignedDuration::from_hours(24)).ok());

    // Another workspace sees nothing of it; delete takes its deliveries.
    let page = dialtone_store::Page { limit: 10, before: None };
    assert_eq!(store.list_webhook_endpoints(&ws, &page).await.unwrap().len(), 1);
    assert!(store.delete_webhook_endpoint(&ws, ep.id.as_str()).await.unwrap());
    assert!(store.get_webhook_endpoint(&ws, ep.id.as_str()).await.unwrap().is_none());
    assert!(store.list_deliveries(&ws, ep.id.as_str(), &page).await.unwrap().is_empty());
}
