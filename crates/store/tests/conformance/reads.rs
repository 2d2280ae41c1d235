//! Reads for the API: filters, pagination, workspace isolation, counts, API keys.

use crate::support::*;
use dialtone_core::{CallId, CallStatus, Mode, Outcome, WorkspaceId};
use dialtone_store::{CallFilter, Page};
use std::collections::{BTreeMap, BTreeSet};

fn ids(calls: &[dialtone_store::Call]) -> BTreeSet<CallId> {
    calls.iter().map(|c| c.id.clone()).collect()
}

pub async fn list_calls_filters_by_campaign_status_outcome_and_phone(store: S) {
    let (ws, a) = running(&store, Mode::Continuous, 10, 3, 6).await;
    let b = draft_campaign(&store, &ws, Mode::Continuous, 10, 3).await;
    add_contacts(&store, &ws, &b.id, 4..7).await; // shares two numbers with campaign a
    start(&store, &ws, &b.id).await;
    let da = claim(&store, &a.id, at(0)).await;
    let db = claim(&store, &b.id, at(0)).await;
    assert_eq!((da.len(), db.len()), (6, 3));
    end(&store, &da[0].call_id, Outcome::Completed, at(10)).await;
    end(&store, &da[1].call_id, Outcome::Completed, at(10)).await;
    end(&store, &da[2].call_id, Outcome::NoAnswer, at(10)).await;
    place(&store, &da[3], at(10)).await;

    let set = |ds: &[&dialtone_store::Dial]| ds.iter().map(|d| d.call_id.clone()).collect::<BTreeSet<_>>();
    let filter = |f: CallFilter| {
        let store = store.clone();
        let ws = ws.clone();
        async move { ids(&calls_where(&store, &ws, f).await) }
    };

    assert_eq!(filter(CallFilter { campaign_id: Some(a.id.clone()), ..Default::default() }).await, set(&da.iter().collect::<Vec<_>>()));
    assert_eq!(filter(CallFilter { campaign_id: Some(b.id.clone()), ..Default::default() }).await, set(&db.iter().collect::<Vec<_>>()));
    assert_eq!(filter(CallFilter::default()).await.len(), 9);
    assert_eq!(filter(CallFilter { status: Some(CallStatus::Ended), ..Default::default() }).await, set(&[&da[0], &da[1], &da[2]]));
    assert_eq!(filter(CallFilter { status: Some(CallStatus::Dialing), ..Default::default() }).await, set(&[&da[3]]));
    assert_eq!(filter(CallFilter { status: Some(CallStatus::Queued), ..Default::default() }).await.len(), 5);
    assert_eq!(filter(CallFilter { campaign_id: Some(a.id.clone()), status: Some(CallStatus::Queued), ..Default::default() }).await, set(&[&da[4], &da[5]]));
    assert_eq!(filter(CallFilter { outcome: Some(Outcome::Completed), ..Default::default() }).await, set(&[&da[0], &da[1]]));
    assert_eq!(filter(CallFilter { outcome: Some(Outcome::NoAnswer), ..Default::default() }).await, set(&[&da[2]]));
    assert!(filter(CallFilter { outcome: Some(Outcome::Busy), ..Default::default() }).await.is_empty());

    let shared = phone(4);
    let with_shared: Vec<_> = da.iter().chain(&db).filter(|d| d.phone == shared).collect();
    assert_eq!(with_shared.len(), 2);
    assert_eq!(filter(CallFilter { phone: Some(shared.clone()), ..Default::default() }).await, set(&with_shared));
    let in_b: Vec<_> = db.iter().filter(|d| d.phone == shared).collect();
    assert_eq!(filter(CallFilter { campaign_id: Some(b.id.clone()), phone: Some(shared), ..Default::default() }).await, set(&in_b));
    assert!(filter(CallFilter { phone: Some(phone(99)), ..Default::default() }).await.is_empty());
}

pub async fn keyset_pagination_returns_each_call_exactly_once(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 23, 3, 23).await;
    let dials = claim(&store, &cmp.id, at(0)).await;
    assert_eq!(dials.len(), 23);
    for d in dials.iter().take(7) {
        end(&store, &d.call_id, Outcome::Busy, at(1)).await;
    }

    for (filter, limit, expected) in [
        (CallFilter::default(), 5, 23),
        (CallFilter { campaign_id: Some(cmp.id.clone()), ..Default::default() }, 1, 23),
        (CallFilter { status: Some(CallStatus::Ended), ..Default::default() }, 2, 7),
        (CallFilter { status: Some(CallStatus::Queued), ..Default::default() }, 16, 16),
    ] {
        let mut seen: Vec<CallId> = Vec::new();
        let mut before = None;
        loop {
            let page = store.list_calls(&ws, &filter, &Page { limit, before: before.clone() }).await.unwrap();
            assert!(page.len() <= limit as usize, "a page holds at most `limit` calls");
            let Some(last) = page.last() else { break };
            before = Some(last.id.to_string());
            seen.extend(page.iter().map(|c| c.id.clone()));
            assert!(seen.len() <= 23, "pagination does not terminate: {filter:?}");
        }
        assert_eq!(seen.len(), expected, "{filter:?} limit {limit}");
        assert!(seen.windows(2).all(|w| w[0] > w[1]), "newest first, no call twice: {filter:?}");
    }
    let all: BTreeSet<_> = dials.iter().map(|d| d.call_id.clone()).collect();
    assert_eq!(ids(&calls_of(&store, &ws, &cmp.id).await), all);

    // Campaigns page the same way.
    for _ in 0..4 {
        draft_campaign(&store, &ws, Mode::Batch, 1, 1).await;
    }
    let (mut seen, mut before) = (Vec::new(), None);
    loop {
        let page = store.list_campaigns(&ws, &Page { limit: 2, before: before.clone() }).await.unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.id.to_string());
        seen.extend(page.into_iter().map(|c| c.id));
        assert!(seen.len() <= 5);
    }
    assert_eq!(seen.len(), 5);
    assert!(seen.windows(2).all(|w| w[0] > w[1]));
}

pub async fn another_workspace_sees_none_of_our_campaigns_contacts_or_calls(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 2, 3, 2).await;
    let dial = claim(&store, &cmp.id, at(0)).await.pop().unwrap();
    place(&store, &dial, at(1)).await;
    let other = WorkspaceId::new();
    let all = Page { limit: 1000, before: None };

    // Our own workspace sees everything (so the checks below can fail).
    assert!(store.get_campaign(&ws, &cmp.id).await.unwrap().is_some());
    assert!(store.get_call(&ws, &dial.call_id).await.unwrap().is_some());
    assert!(store.get_contact(&ws, &dial.contact_id).await.unwrap().is_some());
    assert_eq!(store.list_campaigns(&ws, &all).await.unwrap().len(), 1);
    assert_eq!(store.list_calls(&ws, &CallFilter::default(), &all).await.unwrap().len(), 2);

    assert!(store.get_campaign(&other, &cmp.id).await.unwrap().is_none());
    assert!(store.get_call(&other, &dial.call_id).await.unwrap().is_none());
    assert!(store.get_contact(&other, &dial.contact_id).await.unwrap().is_none());
    assert!(store.list_campaigns(&other, &all).await.unwrap().is_empty());
    assert!(store.list_calls(&other, &CallFilter::default(), &all).await.unwrap().is_empty());
    let by_campaign = CallFilter { campaign_id: Some(cmp.id.clone()), ..Default::default() };
    assert!(store.list_calls(&other, &by_campaign, &all).await.unwrap().is_empty(), "naming our campaign does not help");

    end(&store, &dial.call_id, Outcome::Completed, at(2)).await;
    assert!(!store.call_events(&ws, &dial.call_id).await.unwrap().is_empty());
    assert!(store.call_events(&other, &dial.call_id).await.unwrap().is_empty());

    // Nor can it change them.
    let moved =
        store.transition_campaign(&other, &cmp.id, &[dialtone_core::CampaignStatus::Dialing], dialtone_core::CampaignStatus::Paused, at(3)).await.unwrap();
    assert!(!moved);
    assert!(!store.cancel_campaign(&other, &cmp.id, at(3)).await.unwrap());
    assert!(store.insert_contacts(&other, &cmp.id, &new_contacts(50..51), at(3)).await.is_err());
    assert_eq!(load_campaign(&store, &ws, &cmp.id).await.status, dialtone_core::CampaignStatus::Dialing);
}

pub async fn campaign_counts_reflect_contacts_calls_outcomes_and_active_calls(store: S) {
    let (_ws, cmp) = running(&store, Mode::Continuous, 3, 2, 5).await;
    let empty = store.campaign_counts(&cmp.id).await.unwrap();
    assert_eq!(empty.contacts, BTreeMap::from([("pending".to_string(), 5)]));
    assert!(empty.calls.is_empty() && empty.outcomes.is_empty() && empty.active_calls == 0);

    let dials = claim(&store, &cmp.id, at(0)).await;
    for d in &dials {
        place(&store, d, at(1)).await;
    }
    end(&store, &dials[0].call_id, Outcome::Completed, at(10)).await;
    end(&store, &dials[1].call_id, Outcome::NoAnswer, at(10)).await;
    apply1(&store, progress(&dials[2].call_id, CallStatus::Ringing), at(10)).await;

    let counts = store.campaign_counts(&cmp.id).await.unwrap();
    let map = |pairs: &[(&str, u64)]| pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>();
    assert_eq!(counts.contacts, map(&[("pending", 3), ("in_call", 1), ("done", 1)]));
    assert_eq!(counts.calls, map(&[("ended", 2), ("ringing", 1)]));
    assert_eq!(counts.outcomes, map(&[("completed", 1), ("no_answer", 1)]));
    assert_eq!(counts.active_calls, 1);
}

pub async fn find_api_key_finds_a_created_key_by_its_hash_only(store: S) {
    let ws = store.default_workspace().await.unwrap();
    assert_eq!(store.default_workspace().await.unwrap(), ws, "the default workspace is stable");
    let id = store.create_api_key(&ws, "ci", "hash-of-secret", at(0)).await.unwrap();
    let other = store.create_api_key(&ws, "ops", "hash-of-other", at(0)).await.unwrap();
    assert_ne!(id, other);

    assert_eq!(store.find_api_key("hash-of-secret").await.unwrap(), Some((id, ws.clone())));
    assert_eq!(store.find_api_key("hash-of-other").await.unwrap(), Some((other, ws)));
    assert_eq!(store.find_api_key("hash-of-nothing").await.unwrap(), None);
    assert_eq!(store.find_api_key("").await.unwrap(), None);
}

pub async fn counts_of_several_campaigns_read_together_match_each_campaigns_own(store: S) {
    let (ws, a) = running(&store, Mode::Continuous, 3, 3, 5).await;
    let b = draft_campaign(&store, &ws, Mode::Continuous, 2, 3).await;
    add_contacts(&store, &ws, &b.id, 100..104).await;
    start(&store, &ws, &b.id).await;
    let empty = draft_campaign(&store, &ws, Mode::Continuous, 2, 3).await;
    let dials = claim(&store, &a.id, at(0)).await;
    place(&store, &dials[0], at(1)).await;
    end(&store, &dials[0].call_id, Outcome::Completed, at(2)).await;
    end(&store, &dials[1].call_id, Outcome::NoAnswer, at(2)).await;
    claim(&store, &b.id, at(3)).await;

    let ids = [a.id.clone(), b.id.clone(), empty.id.clone()];
    let together = store.campaign_counts_many(&ids).await.unwrap();
    for id in &ids {
        let alone = store.campaign_counts(id).await.unwrap();
        let got = together.get(id).cloned().unwrap_or_default();
        assert_eq!(format!("{got:?}"), format!("{alone:?}"), "campaign {id}");
    }
    let a_counts = &together[&a.id];
    assert_eq!((a_counts.active_calls, a_counts.outcomes.get("completed"), a_counts.outcomes.get("no_answer")), (1, Some(&1), Some(&1)));
    assert_eq!(together[&b.id].active_calls, 2);
    assert_eq!(together.get(&empty.id).map_or(0, |c| c.active_calls + c.contacts.values().sum::<u64>()), 0);
}

pub async fn a_call_report_is_stored_and_calls_filter_by_several_statuses_dates_and_sort(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 10, 3, 4).await;
    let d = claim(&store, &cmp.id, at(0)).await;
    end(&store, &d[0].call_id, Outcome::Completed, at(10)).await;
    end(&store, &d[1].call_id, Outcome::Busy, at(20)).await;

    let turn = |text: &str| dialtone_core::TranscriptTurn {
        speaker: dialtone_core::Speaker::Agent,
        text: text.into(),
        started_at: at(1),
        ended_at: at(2),
        interrupted: false,
    };
    let report =
        dialtone_core::CallReport { summary: Some("went well".into()), recording_url: Some("https://r/1.wav".into()), transcript: Some(vec![turn("hi")]) };
    assert!(store.save_call_report(&d[0].call_id, &report, at(11)).await.unwrap());
    // A later report with only a summary replaces the summary and keeps the rest; a
    // transcript already stored is never replaced.
    let later = dialtone_core::CallReport { summary: Some("went very well".into()), transcript: Some(vec![turn("other")]), ..Default::default() };
    assert!(store.save_call_report(&d[0].call_id, &later, at(12)).await.unwrap());
    assert!(!store.save_call_report(&CallId::new(), &report, at(12)).await.unwrap(), "no such call");
    let call = store.get_call(&ws, &d[0].call_id).await.unwrap().unwrap();
    assert_eq!((call.summary.as_deref(), call.recording_url.as_deref()), (Some("went very well"), Some("https://r/1.wav")));
    assert_eq!(call.transcript.unwrap()[0].text, "hi");
    assert!(call.name.as_deref().is_some_and(|n| n.starts_with("Contact ")), "the contact's name is joined: {:?}", call.name);
    // A batch's reports in one transaction: each saved on its own call, by the same rules;
    // a call that does not exist is passed over, not an error.
    let (second, missing) = (dialtone_core::CallReport { summary: Some("busy line".into()), ..Default::default() }, CallId::new());
    let third = dialtone_core::CallReport { summary: Some("never dialled".into()), ..Default::default() };
    store.save_call_reports(&[(&d[1].call_id, &second), (&missing, &report), (&d[2].call_id, &third), (&d[0].call_id, &later)], at(13)).await.unwrap();
    for (dial, want) in [(&d[0], "went very well"), (&d[1], "busy line"), (&d[2], "never dialled")] {
        let got = store.get_call(&ws, &dial.call_id).await.unwrap().unwrap();
        assert_eq!(got.summary.as_deref(), Some(want), "call {}", dial.call_id);
    }
    assert_eq!(store.get_call(&ws, &d[0].call_id).await.unwrap().unwrap().transcript.unwrap()[0].text, "hi", "the first transcript stays");
    // Two reports of one call in one batch: as one after the other — the later summary and
    // recording, the earlier transcript (d[1] had none).
    let first = dialtone_core::CallReport { summary: Some("first".into()), recording_url: Some("https://r/2.wav".into()), transcript: Some(vec![turn("one")]) };
    let second_of_two = dialtone_core::CallReport { summary: Some("second".into()), transcript: Some(vec![turn("two")]), ..Default::default() };
    store.save_call_reports(&[(&d[1].call_id, &first), (&d[1].call_id, &second_of_two)], at(14)).await.unwrap();
    let got = store.get_call(&ws, &d[1].call_id).await.unwrap().unwrap();
    assert_eq!((got.summary.as_deref(), got.recording_url.as_deref()), (Some("second"), Some("https://r/2.wav")));
    assert_eq!(got.transcript.unwrap()[0].text, "one", "the batch's first transcript");
    assert_eq!(call.variables, Some(Default::default()), "the contact's variables are joined");

    let set = |ds: &[&dialtone_store::Dial]| ds.iter().map(|d| d.call_id.clone()).collect::<BTreeSet<_>>();
    let filter = |f: CallFilter| {
        let store = store.clone();
        let ws = ws.clone();
        async move { store.list_calls(&ws, &f, &Page { limit: 100, before: None }).await.unwrap() }
    };
    let f = CallFilter { statuses: vec![CallStatus::Ended, CallStatus::Failed], ..Default::default() };
    assert_eq!(ids(&filter(f).await), set(&[&d[0], &d[1]]));
    let f = CallFilter { outcomes: vec![Outcome::Busy, Outcome::NoAnswer], ..Default::default() };
    assert_eq!(ids(&filter(f).await), set(&[&d[1]]));
    let f = CallFilter { ended_from: Some(at(15)), ended_to: Some(at(25)), ..Default::default() };
    assert_eq!(ids(&filter(f).await), set(&[&d[1]]));
    let f = CallFilter { created_from: Some(at(0)), created_to: Some(at(1)), ..Default::default() };
    assert_eq!(filter(f).await.len(), 4);
    assert!(filter(CallFilter { created_from: Some(at(1)), ..Default::default() }).await.is_empty());

    let newest: Vec<CallId> = filter(CallFilter::default()).await.into_iter().map(|c| c.id).collect();
    let oldest: Vec<CallId> =
        filter(CallFilter { sort: dialtone_store::CallSort::OldestFirst, ..Default::default() }).await.into_iter().map(|c| c.id).collect();
    assert_eq!(newest.iter().rev().cloned().collect::<Vec<_>>(), oldest);
    let page2 = store
        .list_calls(
            &ws,
            &CallFilter { sort: dialtone_store::CallSort::OldestFirst, ..Default::default() },
            &Page { limit: 10, before: Some(oldest[1].to_string()) },
        )
        .await
        .unwrap();
    assert_eq!(page2.into_iter().map(|c| c.id).collect::<Vec<_>>(), oldest[2..]);
}

pub async fn api_keys_are_listed_without_their_hash_touched_and_revoked(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let id = store.create_api_key(&ws, "ops", "hash-of-ops", at(0)).await.unwrap();
    store.set_api_key_prefix(&id, "dt_abcde").await.unwrap();
    store.touch_api_key(&id, at(50)).await.unwrap();
    store.touch_api_key(&id, at(40)).await.unwrap();
    let keys = store.list_api_keys(&ws).await.unwrap();
    let k = keys.iter().find(|k| k.id == id.as_str()).unwrap();
    assert_eq!(
        (k.prefix.as_deref(), k.name.as_str(), k.last_used_at, k.revoked_at),
        (Some("dt_abcde"), "ops", Some(at(50).as_millisecond()), None),
        "never moved back"
    );
    assert!(store.revoke_api_key(&ws, id.as_str(), at(60)).await.unwrap());
    assert!(!store.revoke_api_key(&ws, id.as_str(), at(61)).await.unwrap(), "already revoked");
    assert!(!store.revoke_api_key(&ws, "key_nope", at(61)).await.unwrap());
    assert_eq!(store.find_api_key("hash-of-ops").await.unwrap(), None, "a revoked key authenticates nothing");
    let keys = store.list_api_keys(&ws).await.unwrap();
    assert_eq!(keys.iter().find(|k| k.id == id.as_str()).unwrap().revoked_at, Some(at(60).as_millisecond()));
}

pub async fn workspaces_are_created_renamed_disabled_and_their_keys_follow(store: S) {
    let default = store.default_workspace().await.unwrap();
    let full = store.create_api_key(&default, "first", "hash-first", at(0)).await.unwrap();
    let grant = store.authenticate_api_key("hash-first").await.unwrap().unwrap();
    assert_eq!((grant.key_id, grant.workspace_id.clone(), grant.scopes.as_str(), grant.operator), (full, default.clone(), "read,write,admin", true));

    let acme = store.create_workspace("Acme", at(1)).await.unwrap();
    assert!(!acme.is_default && acme.disabled_at.is_none());
    let acme_id = dialtone_core::WorkspaceId::from_db(acme.id.clone());
    let reader = store.create_scoped_api_key(&acme_id, "reader", "hash-reader", "dt_abcde", "read", at(2)).await.unwrap();
    let grant = store.authenticate_api_key("hash-reader").await.unwrap().unwrap();
    assert_eq!((grant.workspace_id, grant.scopes.as_str(), grant.operator), (acme_id.clone(), "read", false));
    assert_eq!(store.api_key_workspace(reader.as_str()).await.unwrap(), Some(acme_id.clone()));
    assert_eq!(store.list_api_keys(&acme_id).await.unwrap()[0].scopes, "read");

    let all = store.list_workspaces().await.unwrap();
    assert_eq!(all.iter().map(|w| w.is_default).collect::<Vec<_>>(), vec![true, false], "the default one first");
    let renamed = store.update_workspace(&acme.id, Some("Acme Ltd"), None, at(3)).await.unwrap().unwrap();
    assert_eq!(renamed.name, "Acme Ltd");
    let disabled = store.update_workspace(&acme.id, None, Some(true), at(4)).await.unwrap().unwrap();
    assert_eq!(disabled.disabled_at, Some(at(4).as_millisecond()));
    assert_eq!(store.authenticate_api_key("hash-reader").await.unwrap(), None, "a disabled workspace's key authenticates nothing");
    assert_eq!(store.find_api_key("hash-reader").await.unwrap(), None);
    store.update_workspace(&acme.id, None, Some(false), at(5)).await.unwrap();
    assert!(store.authenticate_api_key("hash-reader").await.unwrap().is_some());

    let kept = store.update_workspace(default.as_str(), None, Some(true), at(6)).await.unwrap().unwrap();
    assert!(kept.disabled_at.is_none(), "the default workspace is never disabled");
    assert_eq!(store.update_workspace("ws_nothing", Some("x"), None, at(7)).await.unwrap(), None);
    assert_eq!(store.get_workspace("ws_nothing").await.unwrap(), None);
}
