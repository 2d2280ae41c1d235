//! Do-not-call lists: checked at claim time, workspace-wide and per campaign.

use crate::support::*;
use dialtone_core::{ContactStatus, Mode};
use dialtone_store::Page;

pub async fn a_number_suppressed_while_the_campaign_runs_is_never_claimed_and_ends_as_dnc(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 10, 3, 6).await;
    // Listed after import, before the claim: the check happens at claim time.
    store.add_suppressions(&ws, None, &[phone(1)], Some("asked not to be called"), at(0)).await.unwrap();
    store.add_suppressions(&ws, Some(&cmp.id), &[phone(2), phone(3)], None, at(0)).await.unwrap();

    let dials = claim(&store, &cmp.id, at(1)).await;
    let numbers: Vec<_> = dials.iter().map(|d| d.phone.clone()).collect();
    assert_eq!(dials.len(), 3, "the three free numbers are dialled: {numbers:?}");
    for listed in [phone(1), phone(2), phone(3)] {
        assert!(!numbers.contains(&listed), "{listed} is on a do-not-call list");
    }
    let counts = store.campaign_counts(&cmp.id).await.unwrap();
    assert_eq!(counts.contacts.get("dnc"), Some(&3), "{counts:?}");
    let calls = calls_of(&store, &ws, &cmp.id).await;
    assert_eq!(calls.len(), 3, "no call row is made for a suppressed number");
    let _ = ContactStatus::Dnc;
}

pub async fn numbers_turned_away_are_replaced_in_the_same_claim(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 2, 3, 5).await;
    // The first two in due order are listed: the claim takes the next two instead.
    store.add_suppressions(&ws, None, &[phone(0), phone(1)], None, at(0)).await.unwrap();
    let dials = claim(&store, &cmp.id, at(1)).await;
    let numbers: Vec<_> = dials.iter().map(|d| d.phone.clone()).collect();
    assert_eq!(numbers, vec![phone(2), phone(3)], "a full cap in one claim, skipping the listed numbers");
    assert_eq!(store.campaign_counts(&cmp.id).await.unwrap().contacts.get("dnc"), Some(&2));
}

pub async fn a_campaign_list_does_not_reach_other_campaigns(store: S) {
    let (ws, a) = running(&store, Mode::Continuous, 10, 3, 2).await;
    let b = draft_campaign(&store, &ws, Mode::Continuous, 10, 3).await;
    add_contacts(&store, &ws, &b.id, 0..2).await;
    start(&store, &ws, &b.id).await;
    store.add_suppressions(&ws, Some(&a.id), &[phone(0)], None, at(0)).await.unwrap();

    assert_eq!(claim(&store, &a.id, at(1)).await.len(), 1);
    assert_eq!(claim(&store, &b.id, at(1)).await.len(), 2, "campaign b is not bound by campaign a's list");
}

pub async fn suppressions_are_added_once_checked_listed_and_removed(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 1, 1, 0).await;
    assert_eq!(store.add_suppressions(&ws, None, &[phone(7), phone(7), phone(8)], None, at(0)).await.unwrap(), 2);
    assert_eq!(store.add_suppressions(&ws, None, &[phone(7)], None, at(0)).await.unwrap(), 0, "already listed");
    assert_eq!(store.suppressions_for(&ws, Some(&cmp.id), &phone(7)).await.unwrap().len(), 1, "workspace lists apply to campaigns");
    assert!(store.suppressions_for(&ws, None, &phone(9)).await.unwrap().is_empty());
    assert_eq!(store.list_suppressions(&ws, None, &Page::default()).await.unwrap().len(), 2);
    assert!(store.list_suppressions(&ws, Some(&cmp.id), &Page::default()).await.unwrap().is_empty());
    assert!(store.remove_suppression(&ws, None, &phone(7)).await.unwrap());
    assert!(!store.remove_suppression(&ws, None, &phone(7)).await.unwrap());
    assert!(store.suppressions_for(&ws, None, &phone(7)).await.unwrap().is_empty());
}
