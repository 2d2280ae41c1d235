//! Claiming: the concurrency cap, batch mode, runnable campaigns only, due contacts only.

use crate::support::*;
use dialtone_core::{CampaignStatus, ContactStatus, Mode, Outcome};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::Barrier;

pub async fn claim_never_exceeds_max_concurrent_and_tops_up_to_the_cap_in_continuous_mode(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 5, 3, 20).await;

    let first = claim(&store, &cmp.id, at(0)).await;
    assert_eq!(first.len(), 5, "an idle campaign claims up to its cap");
    let contacts: HashSet<_> = first.iter().map(|d| d.contact_id.clone()).collect();
    assert_eq!(contacts.len(), 5, "each claim is a different contact");
    for d in &first {
        assert_eq!(d.attempt, 1);
        assert_eq!(d.campaign_id, cmp.id);
        assert_eq!(load_contact(&store, &ws, &d.contact_id).await.status, ContactStatus::InCall);
        assert!(load_call(&store, &ws, &d.call_id).await.status.is_active(), "a claim holds a slot as a QUEUED call");
    }
    for i in 1..=3 {
        assert!(claim(&store, &cmp.id, at(i)).await.is_empty(), "a full campaign claims nothing");
        assert_eq!(active_of(&store, &ws, &cmp.id).await, 5);
    }

    place(&store, &first[0], at(5)).await;
    end(&store, &first[0].call_id, Outcome::Completed, at(10)).await;
    end(&store, &first[1].call_id, Outcome::Completed, at(10)).await;
    assert_eq!(active_of(&store, &ws, &cmp.id).await, 3);

    let top_up = claim(&store, &cmp.id, at(11)).await;
    assert_eq!(top_up.len(), 2, "claim tops up exactly to the cap");
    assert_eq!(active_of(&store, &ws, &cmp.id).await, 5);
    assert!(claim(&store, &cmp.id, at(12)).await.is_empty());
}

pub async fn batch_mode_claims_only_when_no_call_is_active(store: S) {
    let (ws, cmp) = running(&store, Mode::Batch, 3, 3, 10).await;

    let batch = claim(&store, &cmp.id, at(0)).await;
    assert_eq!(batch.len(), 3);
    end(&store, &batch[0].call_id, Outcome::Completed, at(10)).await;
    end(&store, &batch[1].call_id, Outcome::Completed, at(10)).await;
    assert_eq!(active_of(&store, &ws, &cmp.id).await, 1);
    assert!(claim(&store, &cmp.id, at(11)).await.is_empty(), "batch mode waits while any call of the batch is active");

    end(&store, &batch[2].call_id, Outcome::Completed, at(20)).await;
    assert_eq!(claim(&store, &cmp.id, at(21)).await.len(), 3, "the next batch starts once the last call ended");
}

pub async fn claim_returns_nothing_for_draft_paused_or_canceled_campaigns(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let cmp = draft_campaign(&store, &ws, Mode::Continuous, 2, 3).await;
    add_contacts(&store, &ws, &cmp.id, 0..10).await;
    assert!(claim(&store, &cmp.id, at(0)).await.is_empty(), "draft");

    start(&store, &ws, &cmp.id).await;
    let dials = claim(&store, &cmp.id, at(1)).await;
    assert_eq!(dials.len(), 2, "the same campaign, once started, does claim");
    for d in &dials {
        end(&store, &d.call_id, Outcome::Completed, at(2)).await;
    }

    let paused = store
        .transition_campaign(&ws, &cmp.id, &[CampaignStatus::Starting, CampaignStatus::Dialing], CampaignStatus::Paused, at(3))
        .await
        .unwrap();
    assert!(paused);
    assert!(claim(&store, &cmp.id, at(4)).await.is_empty(), "paused");

    assert!(store.transition_campaign(&ws, &cmp.id, &[CampaignStatus::Paused], CampaignStatus::Starting, at(5)).await.unwrap());
    assert_eq!(claim(&store, &cmp.id, at(6)).await.len(), 2, "resumed campaigns claim again");

    assert!(store.cancel_campaign(&ws, &cmp.id, at(7)).await.unwrap());
    assert!(claim(&store, &cmp.id, at(8)).await.is_empty(), "canceled");
    assert!(claim(&store, &cmp.id, at(100_000)).await.is_empty(), "canceled, much later");
}

pub async fn contacts_due_in_the_future_are_not_claimed(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 5, 3, 1).await;
    let dial = claim(&store, &cmp.id, at(0)).await.pop().expect("the contact is due");
    place(&store, &dial, at(1)).await;
    end(&store, &dial.call_id, Outcome::NoAnswer, at(60)).await;

    let due = load_contact(&store, &ws, &dial.contact_id).await.next_attempt_at;
    assert!(due > at(60));
    assert!(claim(&store, &cmp.id, at(61)).await.is_empty(), "not due yet");
    let just_before = due - jiff::SignedDuration::from_millis(1);
    assert!(claim(&store, &cmp.id, just_before).await.is_empty(), "not due one millisecond early");

    let retry = claim(&store, &cmp.id, due).await;
    assert_eq!(retry.len(), 1, "due at next_attempt_at");
    assert_eq!((retry[0].contact_id.clone(), retry[0].attempt), (dial.contact_id, 2));
}

pub async fn concurrent_claims_from_many_tasks_never_exceed_the_cap(store: S) {
    const CAP: usize = 7;
    const TASKS: usize = 20;
    let (ws, cmp) = running(&store, Mode::Continuous, CAP as u32, 3, 300).await;
    let mut seen_calls = HashSet::new();
    let mut active: Vec<_> = Vec::new();

    for round in 0..5i64 {
        let barrier = Arc::new(Barrier::new(TASKS));
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (store, cmp, barrier) = (store.clone(), cmp.id.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.claim(&cmp, NODE, at(round * 100)).await.expect("claim")
                })
            })
            .collect();
        let mut claimed = Vec::new();
        for t in tasks {
            claimed.extend(t.await.unwrap());
        }
        let expected = CAP - active.len();
        assert_eq!(claimed.len(), expected, "round {round}: {TASKS} racing claims fill exactly the free slots");
        for d in &claimed {
            assert!(seen_calls.insert(d.call_id.clone()), "call {} claimed twice", d.call_id);
        }
        let contacts: HashSet<_> = claimed.iter().map(|d| &d.contact_id).collect();
        assert_eq!(contacts.len(), claimed.len(), "round {round}: a contact was claimed twice");
        active.extend(claimed);
        assert_eq!(active_of(&store, &ws, &cmp.id).await, CAP as u64);

        // Free a different number of slots each round.
        for d in active.drain(..(round as usize % 3) + 2) {
            end(&store, &d.call_id, Outcome::Completed, at(round * 100 + 50)).await;
        }
    }
}
