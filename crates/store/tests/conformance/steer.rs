//! The reads and edits behind the API's campaign steering (issue 11): the filtered contact
//! list, the grouped pending counts, PATCH, archive and the export's keyset pages.

use crate::support::*;
use dialtone_core::{ContactStatus, Mode, Outcome};
use dialtone_store::{Archived, CampaignPatch, ContactFilter, Page, StoreError};
use std::collections::HashSet;

fn page(limit: u32) -> Page {
    Page { limit, before: None }
}

pub async fn contacts_are_filtered_by_status_and_searched_by_digits_or_name(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 2, 3, 5).await;
    assert_eq!(claim(&store, &cmp.id, at(0)).await.len(), 2);
    let list = |filter: ContactFilter| {
        let (store, ws, id) = (store.clone(), ws.clone(), cmp.id.clone());
        async move { store.list_contacts_filtered(&ws, &id, &filter, &page(50)).await.unwrap() }
    };
    let in_call = list(ContactFilter { statuses: vec![ContactStatus::InCall], ..Default::default() }).await;
    assert_eq!(in_call.len(), 2);
    assert!(in_call.iter().all(|c| c.status == ContactStatus::InCall));
    assert_eq!(list(ContactFilter { statuses: vec![ContactStatus::Pending, ContactStatus::InCall], ..Default::default() }).await.len(), 5);
    assert_eq!(list(ContactFilter { statuses: vec![ContactStatus::Done], ..Default::default() }).await.len(), 0);

    // phone(3) is +14152000003: its last digits find it alone; a digit run every number
    // shares finds all; wildcards in the text are literal.
    let (digits, name) = ContactFilter::search("200-0003");
    let found = list(ContactFilter { phone_digits: digits, name, ..Default::default() }).await;
    assert_eq!(found.iter().map(|c| c.phone.as_str()).collect::<Vec<_>>(), [phone(3).as_str()]);
    let (digits, name) = ContactFilter::search("+1 415");
    assert_eq!(list(ContactFilter { phone_digits: digits, name, ..Default::default() }).await.len(), 5);
    let (digits, name) = ContactFilter::search("CONTACT 4");
    let found = list(ContactFilter { phone_digits: digits, name, ..Default::default() }).await;
    assert!(found.iter().any(|c| c.name.as_deref() == Some("Contact 4")), "{found:?}");
    let (digits, name) = ContactFilter::search("contact _");
    assert_eq!(list(ContactFilter { phone_digits: digits, name, ..Default::default() }).await.len(), 0, "`_` is no wildcard");

    // Newest first, in pages, with the filter kept.
    let filter = ContactFilter { statuses: vec![ContactStatus::Pending], ..Default::default() };
    let first = store.list_contacts_filtered(&ws, &cmp.id, &filter, &page(2)).await.unwrap();
    let rest = store.list_contacts_filtered(&ws, &cmp.id, &filter, &Page { limit: 2, before: Some(first[1].id.to_string()) }).await.unwrap();
    assert_eq!((first.len(), rest.len()), (2, 1));
    assert!(first[0].id > first[1].id && first[1].id > rest[0].id);
}

pub async fn pending_contacts_are_grouped_by_hold_due_time_and_retry(store: S) {
    let (_ws, cmp) = running(&store, Mode::Continuous, 1, 3, 4).await;
    let dial = claim(&store, &cmp.id, at(0)).await.remove(0);
    place(&store, &dial, at(1)).await;
    end(&store, &dial.call_id, Outcome::NoAnswer, at(2)).await;
    let retry_at = load_contact(&store, &dial.workspace_id, &dial.contact_id).await.next_attempt_at;
    assert!(retry_at > at(2));

    let groups = store.pending_groups(&cmp.id, at(2)).await.unwrap();
    assert_eq!(groups.len(), 2, "{groups:?}");
    let due = groups.iter().find(|g| !g.later).unwrap();
    assert_eq!((due.count, due.retried, due.wait_reason.as_deref()), (3, false, None));
    let later = groups.iter().find(|g| g.later).unwrap();
    assert_eq!((later.count, later.retried, later.earliest, later.latest), (1, true, retry_at, retry_at));
    // Once the retry is due, everyone is in the one due group.
    let groups = store.pending_groups(&cmp.id, retry_at).await.unwrap();
    assert_eq!(groups.iter().map(|g| g.count).sum::<u64>(), 4);
    assert!(groups.iter().all(|g| !g.later), "{groups:?}");
}

pub async fn a_patch_holds_from_the_next_claim_and_archive_waits_for_live_calls(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 1, 3, 5).await;
    let first = claim(&store, &cmp.id, at(0)).await;
    assert_eq!(first.len(), 1);
    assert!(claim(&store, &cmp.id, at(1)).await.is_empty(), "at its cap");

    let patch = CampaignPatch { max_concurrent: Some(3), name: Some("renamed".into()), max_attempts: Some(5), ..Default::default() };
    let changed = store.update_campaign(&ws, &cmp.id, &patch, at(2)).await.unwrap();
    assert_eq!((changed.max_concurrent, changed.name.as_str(), changed.max_attempts), (3, "renamed", 5));
    assert_eq!(changed.mode, cmp.mode, "fields not given are kept");
    let more = claim(&store, &cmp.id, at(3)).await;
    assert_eq!(more.len(), 2, "the new cap holds from the next claim");

    match store.archive_campaign(&ws, &cmp.id, at(4)).await.unwrap() {
        Archived::ActiveCalls(n) => assert_eq!(n, 3),
        Archived::Done(c) => panic!("archived with calls in flight: {c:?}"),
    }
    assert!(load_campaign(&store, &ws, &cmp.id).await.archived_at.is_none());
    for d in first.iter().chain(&more) {
        store.end_call(&d.call_id, Outcome::Completed, "test", at(5)).await.unwrap();
    }
    let Archived::Done(archived) = store.archive_campaign(&ws, &cmp.id, at(6)).await.unwrap() else { panic!("no call is live") };
    assert_eq!(archived.archived_at, Some(at(6)));
    assert_eq!(archived.status, dialtone_core::CampaignStatus::Canceled);
    assert!(claim(&store, &cmp.id, at(7)).await.is_empty(), "an archived campaign dials no one");
    let counts = store.campaign_counts(&cmp.id).await.unwrap();
    assert_eq!(counts.contacts.get("canceled"), Some(&2), "{counts:?}");

    let listed = store.list_campaigns(&ws, &page(50)).await.unwrap();
    assert!(listed.iter().all(|c| c.id != cmp.id));
    let archived_list = store.list_campaigns_archived(&ws, true, &page(50)).await.unwrap();
    assert_eq!(archived_list.iter().map(|c| &c.id).collect::<Vec<_>>(), [&cmp.id]);
    let err = store.update_campaign(&ws, &cmp.id, &patch, at(8)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let missing = dialtone_core::CampaignId::new();
    assert!(matches!(store.update_campaign(&ws, &missing, &patch, at(8)).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.archive_campaign(&ws, &missing, at(8)).await, Err(StoreError::NotFound(_))));
}

pub async fn export_pages_walk_every_contact_once_with_its_last_call_and_every_key(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let cmp = draft_campaign(&store, &ws, Mode::Continuous, 1, 3).await;
    let mut contacts = new_contacts(0..5);
    contacts[0].variables.insert("plan".into(), "gold".into());
    contacts[1].variables.insert("score".into(), 3.into());
    contacts[1].variables.insert("a b".into(), "x, \"y\"".into());
    // The first contact alone at first, called twice (the export shows the second call);
    // the others arrive after.
    store.insert_contacts(&ws, &cmp.id, &contacts[..1], at(0)).await.unwrap();
    start(&store, &ws, &cmp.id).await;
    let d1 = claim(&store, &cmp.id, at(1)).await.remove(0);
    place(&store, &d1, at(1)).await;
    end(&store, &d1.call_id, Outcome::NoAnswer, at(2)).await;
    store.retry_contact_now(&ws, &d1.contact_id, at(3)).await.unwrap();
    let d2 = claim(&store, &cmp.id, at(4)).await.remove(0);
    assert_eq!(d2.contact_id, d1.contact_id);
    place(&store, &d2, at(4)).await;
    end(&store, &d2.call_id, Outcome::Completed, at(9)).await;
    store.insert_contacts(&ws, &cmp.id, &contacts[1..], at(10)).await.unwrap();

    assert_eq!(store.variable_keys(&cmp.id).await.unwrap(), ["a b", "plan", "score"]);
    let mut seen = vec![];
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let rows = store.export_page(&cmp.id, after.as_deref(), 2).await.unwrap();
        pages += 1;
        if rows.is_empty() {
            break;
        }
        after = rows.last().map(|r| r.id.clone());
        seen.extend(rows);
    }
    assert_eq!(pages, 4, "pages of 2, 2, 1, then the end");
    assert_eq!(seen.len(), 5);
    assert_eq!(seen.iter().map(|r| r.id.clone()).collect::<HashSet<_>>().len(), 5, "no contact twice");
    assert!(seen.windows(2).all(|w| w[0].id < w[1].id), "in id order");
    let called = seen.iter().find(|r| r.id == d1.contact_id.as_str()).unwrap();
    assert_eq!((called.status.as_str(), called.outcome.as_deref(), called.attempts), ("done", Some("completed"), 2));
    assert!(called.last_call_at.is_some());
    let other = seen.iter().find(|r| r.id != d1.contact_id.as_str()).unwrap();
    assert_eq!((other.outcome.as_deref(), other.last_call_at, other.duration_ms), (None, None, None));
    let with_vars = seen.iter().find(|r| r.phone == phone(1).as_str()).unwrap();
    let vars: serde_json::Value = serde_json::from_str(&with_vars.variables).unwrap();
    assert_eq!(vars["a b"], "x, \"y\"");
}
