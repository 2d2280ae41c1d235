//! Releasing unsent claims, completing and canceling campaigns.

use crate::support::*;
use dialtone_core::{CallStatus, CampaignStatus, ContactStatus, EventKind, Mode, Outcome};
use std::collections::HashSet;

pub async fn release_unsent_deletes_the_call_and_gives_back_the_attempt(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 1, 3, 1).await;
    let dial = claim(&store, &cmp.id, at(0)).await.pop().unwrap();
    assert_eq!(load_contact(&store, &ws, &dial.contact_id).await.attempts, 1);
    assert_eq!(store.orphaned_calls(NODE, LEASE, at(0), &HashSet::new()).await.unwrap().len(), 1);

    assert!(store.release_unsent(&dial.call_id, "crashed before sending", at(60)).await.unwrap());
    assert!(store.get_call(&ws, &dial.call_id).await.unwrap().is_none(), "the never-sent call is gone");
    let c = load_contact(&store, &ws, &dial.contact_id).await;
    assert_eq!((c.status, c.attempts, c.next_attempt_at), (ContactStatus::Pending, 0, at(60)), "the attempt is given back, due now");
    assert_eq!(active_of(&store, &ws, &cmp.id).await, 0);
    assert!(store.orphaned_calls(NODE, LEASE, at(0), &HashSet::new()).await.unwrap().is_empty());
    assert!(!store.release_unsent(&dial.call_id, "again", at(61)).await.unwrap(), "releasing twice does nothing");

    let again = claim(&store, &cmp.id, at(60)).await.pop().expect("due again at once");
    assert_eq!((again.contact_id, again.attempt), (dial.contact_id, 1));
}

pub async fn release_unsent_refuses_a_call_with_a_provider_id(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 2, 3, 2).await;
    let dials = claim(&store, &cmp.id, at(0)).await;
    let (dialed, adopted) = (&dials[0], &dials[1]);
    place(&store, dialed, at(1)).await;
    // Still QUEUED, but an informational webhook told us the provider's id: it was sent.
    assert!(store.mark_placing(&adopted.call_id, NODE, at(1)).await.unwrap());
    let info = event(Some(&adopted.call_id), Some("prov-info"), EventKind::Info, "info-1");
    apply1(&store, info, at(2)).await;
    let call = load_call(&store, &ws, &adopted.call_id).await;
    assert_eq!((call.status, call.provider_call_id.as_deref()), (CallStatus::Queued, Some("prov-info")));

    for d in &dials {
        assert!(!store.release_unsent(&d.call_id, "reaper", at(3)).await.unwrap(), "{} reached the provider", d.call_id);
        assert!(store.get_call(&ws, &d.call_id).await.unwrap().is_some());
        let c = load_contact(&store, &ws, &d.contact_id).await;
        assert_eq!((c.status, c.attempts), (ContactStatus::InCall, 1));
    }
    assert_eq!(active_of(&store, &ws, &cmp.id).await, 2);
}

pub async fn complete_if_done_waits_for_every_contact_and_call_to_finish(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 1, 1, 2).await;
    assert!(!store.complete_if_done(&cmp.id, at(0)).await.unwrap(), "contacts pending");

    let first = claim(&store, &cmp.id, at(1)).await.pop().unwrap();
    place(&store, &first, at(1)).await;
    assert!(!store.complete_if_done(&cmp.id, at(2)).await.unwrap(), "a call active, a contact pending");
    end(&store, &first.call_id, Outcome::Completed, at(3)).await;
    assert!(!store.complete_if_done(&cmp.id, at(4)).await.unwrap(), "a contact pending");

    let last = claim(&store, &cmp.id, at(5)).await.pop().unwrap();
    place(&store, &last, at(5)).await;
    assert!(!store.complete_if_done(&cmp.id, at(6)).await.unwrap(), "the last call is active");
    assert_eq!(load_campaign(&store, &ws, &cmp.id).await.status, CampaignStatus::Dialing);
    end(&store, &last.call_id, Outcome::NoAnswer, at(7)).await;
    assert_eq!(load_contact(&store, &ws, &last.contact_id).await.status, ContactStatus::Exhausted);

    assert!(store.complete_if_done(&cmp.id, at(8)).await.unwrap(), "everything finished");
    let done = load_campaign(&store, &ws, &cmp.id).await;
    assert_eq!((done.status, done.completed_at), (CampaignStatus::Completed, Some(at(8))));
    assert!(!store.complete_if_done(&cmp.id, at(9)).await.unwrap(), "completes once");
    assert_eq!(load_campaign(&store, &ws, &cmp.id).await.completed_at, Some(at(8)));
}

pub async fn complete_if_done_leaves_a_canceled_campaign_canceled(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 1, 1, 3).await;
    assert!(store.cancel_campaign(&ws, &cmp.id, at(1)).await.unwrap());
    assert!(!store.complete_if_done(&cmp.id, at(2)).await.unwrap());
    let c = load_campaign(&store, &ws, &cmp.id).await;
    assert_eq!((c.status, c.completed_at), (CampaignStatus::Canceled, Some(at(1))));
}

pub async fn cancel_campaign_cancels_pending_contacts_and_lets_active_calls_end(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 2, 3, 5).await;
    let dials = claim(&store, &cmp.id, at(0)).await;
    for d in &dials {
        place(&store, d, at(1)).await;
    }

    assert!(store.cancel_campaign(&ws, &cmp.id, at(2)).await.unwrap());
    assert_eq!(load_campaign(&store, &ws, &cmp.id).await.status, CampaignStatus::Canceled);
    let counts = store.campaign_counts(&cmp.id).await.unwrap();
    assert_eq!(counts.contacts.get("canceled"), Some(&3), "{counts:?}");
    assert_eq!(counts.contacts.get("in_call"), Some(&2), "{counts:?}");
    assert_eq!(counts.contacts.get("pending"), None, "{counts:?}");
    assert_eq!(active_of(&store, &ws, &cmp.id).await, 2, "live calls are not cut off");
    assert!(!store.cancel_campaign(&ws, &cmp.id, at(3)).await.unwrap(), "cancels once");

    apply1(&store, progress(&dials[0].call_id, CallStatus::InProgress), at(4)).await;
    end(&store, &dials[0].call_id, Outcome::Completed, at(5)).await;
    end(&store, &dials[1].call_id, Outcome::Busy, at(5)).await;
    assert_eq!(load_contact(&store, &ws, &dials[0].contact_id).await.status, ContactStatus::Done);
    assert_eq!(load_contact(&store, &ws, &dials[1].contact_id).await.status, ContactStatus::Canceled);
    assert_eq!(active_of(&store, &ws, &cmp.id).await, 0);
    assert!(claim(&store, &cmp.id, at(1_000_000)).await.is_empty());
}

pub async fn release_unsent_refuses_a_call_the_provider_already_reported_on(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 1, 3, 1).await;
    let dial = claim(&store, &cmp.id, at(0)).await.pop().unwrap();
    assert!(store.mark_placing(&dial.call_id, NODE, at(1)).await.unwrap());
    // A webhook echoing only our call id: the provider has the call, though we never
    // learned its id and the call is still QUEUED.
    let info = event(Some(&dial.call_id), None, EventKind::Info, "info-no-provider-id");
    assert_eq!(apply1(&store, info, at(2)).await.call_id.as_ref(), Some(&dial.call_id));
    assert_eq!(load_call(&store, &ws, &dial.call_id).await.status, CallStatus::Queued);

    let released = store.release_unsent(&dial.call_id, "reaper", at(3)).await;
    assert!(matches!(released, Ok(false)), "the provider knows this call, it must not be re-dialled: {released:?}");
    assert!(store.get_call(&ws, &dial.call_id).await.unwrap().is_some());
    assert_eq!(store.call_events(&ws, &dial.call_id).await.unwrap().len(), 1, "its history is kept");
}

pub async fn a_contact_can_be_retried_now_past_its_limits_and_its_pending_retries_canceled(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 5, 1, 2).await;
    let dials = claim(&store, &cmp.id, at(0)).await;
    assert_eq!(dials.len(), 2);
    for d in &dials {
        place(&store, d, at(1)).await;
        end(&store, &d.call_id, Outcome::NoAnswer, at(2)).await;
    }
    let (a, b) = (&dials[0].contact_id, &dials[1].contact_id);
    assert_eq!(load_contact(&store, &ws, a).await.status, ContactStatus::Exhausted, "max_attempts 1 is used up");

    assert!(store.retry_contact_now(&ws, a, at(10)).await.unwrap(), "an exhausted contact can be retried by hand");
    let again = claim(&store, &cmp.id, at(10)).await;
    assert_eq!(again.len(), 1, "only the retried contact is due");
    assert_eq!((&again[0].contact_id, again[0].attempt), (a, 2), "the manual retry is the contact's second attempt");
    assert!(!store.retry_contact_now(&ws, a, at(11)).await.unwrap(), "a contact in a call cannot be retried");

    assert!(store.retry_contact_now(&ws, b, at(12)).await.unwrap());
    assert!(store.cancel_contact(&ws, b, at(13)).await.unwrap(), "a pending contact's retries can be canceled");
    assert_eq!(load_contact(&store, &ws, b).await.status, ContactStatus::Canceled);
    assert!(claim(&store, &cmp.id, at(14)).await.is_empty(), "a canceled contact is not dialled");
    assert!(!store.cancel_contact(&ws, b, at(15)).await.unwrap(), "nothing left to cancel");
}
