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

    let paused = store.transition_campaign(&ws, &cmp.id, &[CampaignStatus::Starting, CampaignStatus::Dialing], CampaignStatus::Paused, at(3)).await.unwrap();
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

pub async fn claim_many_claims_for_each_campaign_up_to_its_own_cap(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let campaign = |mode, cap, contacts: std::ops::Range<u32>, started: bool| {
        let (store, ws) = (store.clone(), ws.clone());
        async move {
            let cmp = draft_campaign(&store, &ws, mode, cap, 3).await;
            add_contacts(&store, &ws, &cmp.id, contacts).await;
            if started {
                start(&store, &ws, &cmp.id).await;
            }
            cmp.id
        }
    };
    let continuous = campaign(Mode::Continuous, 3, 0..10, true).await;
    let batch = campaign(Mode::Batch, 2, 10..20, true).await;
    let half_full = campaign(Mode::Continuous, 4, 20..30, true).await;
    let draft = campaign(Mode::Continuous, 5, 30..40, false).await;
    let few = campaign(Mode::Continuous, 5, 40..42, true).await;
    let empty = campaign(Mode::Continuous, 5, 0..0, true).await;
    let before = claim(&store, &half_full, at(0)).await;
    for d in &before[..2] {
        end(&store, &d.call_id, Outcome::Completed, at(1)).await;
    }

    let asked = [empty.clone(), half_full.clone(), draft.clone(), continuous.clone(), few.clone(), batch.clone()];
    let mut got = store.claim_many(&asked, NODE, at(2)).await.expect("claim_many");
    let counts: Vec<usize> = asked.iter().map(|c| got.get(c).map_or(0, Vec::len)).collect();
    assert_eq!(counts, vec![0, 2, 0, 3, 2, 2], "each campaign fills its own free slots, no more");
    assert!(!got.contains_key(&empty) && !got.contains_key(&draft), "only campaigns that got dials are listed");
    let mut contacts = HashSet::new();
    for (cmp, dials) in &got {
        for d in dials {
            assert_eq!(&d.campaign_id, cmp, "a dial is listed under its own campaign");
            assert!(contacts.insert(d.contact_id.clone()), "contact {} claimed twice", d.contact_id);
            assert!(load_call(&store, &ws, &d.call_id).await.status.is_active());
        }
    }
    for (cmp, cap) in [(&continuous, 3), (&half_full, 4), (&batch, 2), (&few, 2)] {
        assert_eq!(active_of(&store, &ws, cmp).await, cap, "campaign {cmp}");
    }
    // Dialled in due order, like a claim of one campaign.
    let dials = got.remove(&continuous).unwrap();
    let lines: Vec<String> = dials.iter().map(|d| d.phone.to_string()).collect();
    assert_eq!(lines, (0..3).map(|i| phone(i).to_string()).collect::<Vec<_>>());

    assert!(store.claim_many(&asked, NODE, at(3)).await.unwrap().is_empty(), "every campaign is at its cap or has nothing due");
}

pub async fn campaigns_claimed_together_share_their_account_limit_fairly(store: S) {
    store.set_account_limit(dialtone_core::ProviderKind::Sim, Some(5), t0()).await.unwrap();
    let mut ids = vec![];
    for _ in 0..3 {
        ids.push(running(&store, Mode::Continuous, 4, 3, 10).await.1.id);
    }
    let ws = store.default_workspace().await.unwrap();
    let got = store.claim_many(&ids, NODE, at(0)).await.unwrap();
    let counts: Vec<usize> = ids.iter().map(|c| got.get(c).map_or(0, Vec::len)).collect();
    assert_eq!(counts.iter().sum::<usize>(), 5, "the account's five slots, not the campaigns' twelve: {counts:?}");
    assert!(counts.iter().all(|&n| (1..=2).contains(&n)), "a fair share (two of five) each: {counts:?}");
    assert!(store.claim_many(&ids, NODE, at(1)).await.unwrap().is_empty(), "the account is full");

    // Two slots come back to the account, both from one campaign: they are filled again,
    // and nobody goes past the fair share.
    let (_, dials) = got.iter().find(|(_, d)| d.len() == 2).unwrap();
    for d in dials {
        end(&store, &d.call_id, Outcome::Completed, at(2)).await;
    }
    let again = store.claim_many(&ids, NODE, at(3)).await.unwrap();
    assert_eq!(again.values().map(Vec::len).sum::<usize>(), 2, "{again:?}");
    let mut active = 0;
    for c in &ids {
        let n = active_of(&store, &ws, c).await;
        assert!(n <= 2, "campaign {c} holds {n} of the account's five slots");
        active += n;
    }
    assert_eq!(active, 5);
}

/// `claim_placing` commits the placing fence with the claim for the campaigns it is asked
/// to, and only for those: their calls are `Placing` at once (a second fence fails, so one
/// attempt is never marked placing twice), the others stay `Claimed` until their own
/// `mark_placing`. Recovery reads the first kind as possibly sent (it asks the provider),
/// the second as never sent (`dialtone_core::attempt`).
pub async fn a_claim_commits_the_placing_fence_only_for_the_campaigns_asked(store: S) {
    use dialtone_core::AttemptState;
    let (ws, fenced) = running(&store, Mode::Continuous, 3, 3, 10).await;
    let (_, plain) = running(&store, Mode::Continuous, 2, 3, 10).await;
    let now = at(5);
    let placing: HashSet<_> = [fenced.id.clone()].into();
    let got = store.claim_placing(&[fenced.id.clone(), plain.id.clone()], &placing, NODE, now).await.expect("claim_placing");
    assert_eq!((got[&fenced.id].len(), got[&plain.id].len()), (3, 2), "the caps, fence or not");
    let state = |call: &dialtone_store::Call| AttemptState::of(call.status, call.placing_at.is_some(), call.provider_call_id.is_some());
    for d in &got[&fenced.id] {
        assert_eq!(d.placing_at, Some(now), "the dial says its fence is committed");
        let call = load_call(&store, &ws, &d.call_id).await;
        assert_eq!((state(&call), call.placing_at), (Some(AttemptState::Placing), Some(now)), "committed with the claim");
        assert!(!store.mark_placing(&d.call_id, NODE, at(6)).await.unwrap(), "an attempt is marked placing once");
    }
    for d in &got[&plain.id] {
        assert_eq!(d.placing_at, None);
        let call = load_call(&store, &ws, &d.call_id).await;
        assert_eq!(state(&call), Some(AttemptState::Claimed), "claimed only");
        assert!(store.mark_placing(&d.call_id, NODE, at(6)).await.unwrap(), "its own fence comes next");
    }
    // A fenced claim that is given back (nothing was sent) frees its slot and its attempt.
    let back = &got[&fenced.id][0];
    assert!(store.release_unsent(&back.call_id, "test", at(7)).await.unwrap());
    let again = store.claim_placing(std::slice::from_ref(&fenced.id), &placing, NODE, at(8)).await.unwrap();
    assert_eq!(again[&fenced.id].len(), 1, "the slot given back is claimed again");
    assert_eq!(again[&fenced.id][0].attempt, 1, "with the attempt given back");
}
