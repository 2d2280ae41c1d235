//! Importing contacts.

use crate::support::*;
use dialtone_core::{Extension, Mode, PhoneNumber};
use dialtone_store::{NewContact, RejectedRow, StoreError};
use std::time::Instant;

fn row(raw: &str, line: u64) -> NewContact {
    NewContact { extension: None, phone: PhoneNumber::parse(raw, "US").unwrap(), name: None, variables: Default::default(), timezone: None, line }
}

pub async fn duplicate_numbers_are_reported_with_their_line(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let cmp = draft_campaign(&store, &ws, Mode::Continuous, 2, 3).await;

    let batch = vec![row("+14155552671", 2), row("+14155552672", 3), row("(415) 555-2671", 4), row("+14155552673", 5)];
    let report = store.insert_contacts(&ws, &cmp.id, &batch, at(0)).await.unwrap();
    assert_eq!(report.inserted, 3);
    assert_eq!(report.duplicates.iter().map(|r| r.line).collect::<Vec<_>>(), vec![4], "the repeat within a batch: {report:?}");

    let batch = vec![row("+14155552680", 2), row("415-555-2672", 3), row("+14155552673", 4)];
    let report = store.insert_contacts(&ws, &cmp.id, &batch, at(1)).await.unwrap();
    assert_eq!(report.inserted, 1);
    let lines: Vec<u64> = report.duplicates.iter().map(|r: &RejectedRow| r.line).collect();
    assert_eq!(lines, vec![3, 4], "numbers from an earlier import: {report:?}");
    assert!(report.duplicates.iter().all(|r| !r.reason.is_empty()));

    let counts = store.campaign_counts(&cmp.id).await.unwrap();
    assert_eq!(counts.contacts.get("pending"), Some(&4), "{counts:?}");

    // The same number in another campaign is not a duplicate.
    let other = draft_campaign(&store, &ws, Mode::Continuous, 2, 3).await;
    let report = store.insert_contacts(&ws, &other.id, &[row("+14155552671", 2)], at(2)).await.unwrap();
    assert_eq!((report.inserted, report.duplicates.len()), (1, 0));
}

pub async fn contacts_cannot_be_added_to_a_completed_or_canceled_campaign(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let canceled = draft_campaign(&store, &ws, Mode::Continuous, 2, 3).await;
    add_contacts(&store, &ws, &canceled.id, 0..2).await;
    assert!(store.cancel_campaign(&ws, &canceled.id, at(1)).await.unwrap());

    let completed = draft_campaign(&store, &ws, Mode::Continuous, 2, 3).await;
    start(&store, &ws, &completed.id).await;
    assert!(store.complete_if_done(&completed.id, at(1)).await.unwrap(), "an empty started campaign completes");

    for cmp in [&canceled, &completed] {
        let err = store.insert_contacts(&ws, &cmp.id, &new_contacts(10..12), at(2)).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{}: {err:?}", cmp.id);
    }
    assert_eq!(store.campaign_counts(&completed.id).await.unwrap().contacts.values().sum::<u64>(), 0, "nothing was added");
    assert_eq!(store.campaign_counts(&canceled.id).await.unwrap().contacts.values().sum::<u64>(), 2);
}

pub async fn a_hundred_thousand_contacts_insert_completely_in_chunks_of_a_thousand(store: S) {
    const N: u32 = 100_000;
    let ws = store.default_workspace().await.unwrap();
    let cmp = draft_campaign(&store, &ws, Mode::Continuous, 8, 3).await;
    let contacts = new_contacts(0..N);

    let started = Instant::now();
    let mut inserted = 0;
    for chunk in contacts.chunks(1_000) {
        let report = store.insert_contacts(&ws, &cmp.id, chunk, at(0)).await.unwrap();
        assert!(report.duplicates.is_empty(), "{:?}", &report.duplicates[..report.duplicates.len().min(3)]);
        inserted += report.inserted;
    }
    eprintln!("inserted {N} contacts in chunks of 1000 in {:.2?}", started.elapsed());

    assert_eq!(inserted, N as u64);
    let counts = store.campaign_counts(&cmp.id).await.unwrap();
    assert_eq!(counts.contacts.get("pending"), Some(&(N as u64)), "{counts:?}");
}

/// One switchboard number with several extensions is several contacts; the extension is
/// stored, shown on the contact and handed to the placer with the claimed dial.
pub async fn an_extension_is_kept_and_one_number_may_hold_several(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let with = |ext: Option<&str>, line| NewContact { extension: ext.map(|e| Extension::parse(e).unwrap().unwrap()), ..row("+14155552671", line) };
    let mut campaigns = vec![];
    for _ in 0..2 {
        let cmp = draft_campaign(&store, &ws, Mode::Continuous, 8, 3).await;
        let report = store.insert_contacts(&ws, &cmp.id, &[with(Some("1"), 2), with(Some("2"), 3), with(None, 4), with(Some("1"), 5)], at(0)).await.unwrap();
        assert_eq!(report.inserted, 3, "{report:?}");
        assert_eq!(report.duplicates.iter().map(|r| r.line).collect::<Vec<_>>(), [5], "{report:?}");
        assert!(report.duplicates[0].reason.contains("extension 1"), "{report:?}");
        let again = store.insert_contacts(&ws, &cmp.id, &[with(Some("2"), 2), with(Some("3"), 3)], at(1)).await.unwrap();
        assert_eq!((again.inserted, again.duplicates.len()), (1, 1), "{again:?}");
        start(&store, &ws, &cmp.id).await;
        campaigns.push(cmp);
    }
    // Both claim paths: one campaign alone, several together.
    let mut claimed = vec![claim(&store, &campaigns[0].id, at(2)).await];
    claimed.push(store.claim_many(&[campaigns[1].id.clone()], NODE, at(2)).await.unwrap().remove(&campaigns[1].id).unwrap_or_default());
    for dials in claimed {
        let mut exts: Vec<Option<String>> = dials.iter().map(|d| d.extension.as_ref().map(|e| e.to_string())).collect();
        exts.sort();
        assert_eq!(exts, [None, Some("1".into()), Some("2".into()), Some("3".into())]);
        for d in &dials {
            let contact = store.get_contact(&ws, &d.contact_id).await.unwrap().unwrap();
            assert_eq!(contact.extension, d.extension);
            assert_eq!(contact.phone.as_str(), "+14155552671");
        }
    }
}

pub async fn adding_contacts_to_an_unknown_campaign_names_the_campaign_and_where_it_was_missed(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let missing = dialtone_core::CampaignId::new();
    let err = store.insert_contacts(&ws, &missing, &[row("+14155552671", 2)], at(0)).await.unwrap_err();
    let StoreError::NotFound(ref not_found) = err else { panic!("not a NotFound: {err:?}") };
    assert_eq!((not_found.what, not_found.id.as_str()), ("campaign", missing.as_str()));
    assert!(not_found.at.file().contains("crates/store/src/"), "located in the store: {}", not_found.at);
    let message = err.to_string();
    assert!(message.contains(missing.as_str()) && message.contains(not_found.at.file()), "{message}");
}
