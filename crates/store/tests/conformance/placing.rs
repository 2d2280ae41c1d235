//! Placing: the send fence and the provider's acceptance.

use crate::support::*;
use dialtone_core::{CallStatus, CampaignStatus, EventKind, Mode};

pub async fn mark_placing_is_a_fence(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 2, 3, 2).await;
    let dials = claim(&store, &cmp.id, at(0)).await;

    assert!(store.mark_placing(&dials[0].call_id, NODE, at(1)).await.unwrap(), "the first placer wins");
    assert!(!store.mark_placing(&dials[0].call_id, NODE, at(2)).await.unwrap(), "a second placer must not send it again");
    assert_eq!(load_call(&store, &ws, &dials[0].call_id).await.placing_at, Some(at(1)));
    assert!(store.mark_placing(&dials[1].call_id, NODE, at(2)).await.unwrap(), "the fence is per call");

    store.mark_dialed(&dials[1].call_id, "prov-1", at(3)).await.unwrap();
    assert!(!store.mark_placing(&dials[1].call_id, NODE, at(4)).await.unwrap(), "a dialed call is never placed again");
}

pub async fn mark_dialed_moves_queued_to_dialing_and_starts_the_campaign_only_once(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 2, 3, 2).await;
    let dials = claim(&store, &cmp.id, at(0)).await;
    let before = load_campaign(&store, &ws, &cmp.id).await;
    assert_eq!((before.status, before.started_at), (CampaignStatus::Starting, None));

    for d in &dials {
        assert!(store.mark_placing(&d.call_id, NODE, at(1)).await.unwrap());
    }
    assert!(store.mark_dialed(&dials[0].call_id, "prov-a", at(2)).await.unwrap(), "the first accepted call starts the campaign");
    let call = load_call(&store, &ws, &dials[0].call_id).await;
    assert_eq!(call.status, CallStatus::Dialing);
    assert_eq!(call.provider_call_id.as_deref(), Some("prov-a"));
    assert_eq!(call.dialed_at, Some(at(2)));
    let started = load_campaign(&store, &ws, &cmp.id).await;
    assert_eq!((started.status, started.started_at), (CampaignStatus::Dialing, Some(at(2))));

    assert!(!store.mark_dialed(&dials[1].call_id, "prov-b", at(3)).await.unwrap(), "only the first call starts it");
    assert_eq!(load_call(&store, &ws, &dials[1].call_id).await.status, CallStatus::Dialing);
    assert!(!store.mark_dialed(&dials[0].call_id, "prov-a", at(4)).await.unwrap(), "a repeated mark_dialed starts nothing");
    let still = load_campaign(&store, &ws, &cmp.id).await;
    assert_eq!((still.status, still.started_at), (CampaignStatus::Dialing, Some(at(2))), "started_at is set once");
}

pub async fn a_webhook_that_arrived_before_mark_dialed_is_not_moved_back(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 2, 3, 2).await;
    let dials = claim(&store, &cmp.id, at(0)).await;
    let (ringing, answered) = (&dials[0], &dials[1]);
    for d in &dials {
        assert!(store.mark_placing(&d.call_id, NODE, at(1)).await.unwrap());
    }

    // The provider's webhooks beat its HTTP response to us.
    let pid = provider_id(&ringing.call_id);
    let e = event(Some(&ringing.call_id), Some(&pid), EventKind::Progress(CallStatus::Ringing), "early-ringing");
    assert!(apply1(&store, e, at(2)).await.transition.is_some());
    apply1(&store, progress(&answered.call_id, CallStatus::InProgress), at(2)).await;

    store.mark_dialed(&ringing.call_id, &pid, at(3)).await.unwrap();
    store.mark_dialed(&answered.call_id, "prov-late", at(3)).await.unwrap();

    let r = load_call(&store, &ws, &ringing.call_id).await;
    assert_eq!((r.status, r.provider_call_id.as_deref()), (CallStatus::Ringing, Some(pid.as_str())));
    let a = load_call(&store, &ws, &answered.call_id).await;
    assert_eq!((a.status, a.provider_call_id.as_deref()), (CallStatus::InProgress, Some("prov-late")));
    assert_eq!(active_of(&store, &ws, &cmp.id).await, 2);
}
