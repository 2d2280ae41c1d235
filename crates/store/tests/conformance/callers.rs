//! Caller-ID pools, the per-number daily limit and the per-campaign throttle (issue 13).

use crate::support::*;
use dialtone_core::{CallerStrategy, CampaignStatus, ContactStatus, Mode, Outcome, PhoneNumber, WorkspaceId};
use dialtone_store::{CallerPool, Campaign, Dial, NewCampaign, NewContact, Page, WaitReason};
use jiff::{SignedDuration, Timestamp};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Barrier;

const SF: &str = "+14152220100";
const NY: &str = "+12122220100";
const NY2: &str = "+12122220101";
const CHI: &str = "+13122220100";

/// A started campaign of the workspace calling from `pool` by `strategy`, with `callees`
/// (E.164) as its due contacts, all claimable at once (cap 100).
async fn pool_campaign(store: &S, ws: &WorkspaceId, pool: &[&str], strategy: CallerStrategy, fallback: CallerStrategy, callees: &[String]) -> Campaign {
    let base = draft_campaign(store, ws, Mode::Continuous, 100, 3).await;
    let new = NewCampaign {
        workspace_id: ws.clone(),
        name: "pool".into(),
        provider: base.provider,
        assistant_id: base.assistant_id.clone(),
        phone_number_id: pool[0].to_string(),
        mode: Mode::Continuous,
        max_concurrent: 100,
        max_attempts: 3,
        retry: base.retry,
        default_region: "US".into(),
        schedule: base.schedule.clone(),
        calling_hours: base.calling_hours,
        recurrence: base.recurrence.clone(),
        max_call_duration_secs: None,
        assume_campaign_timezone_for_ambiguous: false,
        agent_id: None,
        caller_pool: CallerPool { numbers: pool.iter().map(|s| s.to_string()).collect(), strategy, fallback },
        calls_per_minute: None,
        account_id: None,
    };
    let cmp = store.create_campaign(new, t0()).await.unwrap();
    let contacts: Vec<NewContact> = callees
        .iter()
        .enumerate()
        .map(|(i, p)| NewContact {
            extension: None,
            phone: PhoneNumber::parse(p, "US").unwrap(),
            name: None,
            variables: Default::default(),
            timezone: None,
            line: i as u64 + 1,
        })
        .collect();
    store.insert_contacts(ws, &cmp.id, &contacts, t0()).await.unwrap();
    start(store, ws, &cmp.id).await;
    cmp
}

fn callees(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| phone(i).as_str().to_string()).collect()
}

/// The caller number of each dial, by callee.
fn by_callee(dials: &[Dial]) -> HashMap<String, String> {
    dials.iter().map(|d| (d.phone.as_str().to_string(), d.phone_number_id.clone())).collect()
}

pub async fn each_strategy_picks_as_its_rule_says_and_the_call_records_the_number(store: S) {
    let ws = store.default_workspace().await.unwrap();
    // Round-robin: the pool in turn, in due order, and on across claims.
    let rr = pool_campaign(&store, &ws, &[SF, NY, CHI], CallerStrategy::RoundRobin, CallerStrategy::RoundRobin, &callees(0..4)).await;
    let first = claim(&store, &rr.id, t0()).await;
    let picked: Vec<&str> = first.iter().map(|d| d.phone_number_id.as_str()).collect();
    assert_eq!(picked, [SF, NY, CHI, SF], "round-robin in due order");
    for d in &first {
        let call = load_call(&store, &ws, &d.call_id).await;
        assert_eq!(call.caller_number.as_deref(), Some(d.phone_number_id.as_str()), "the call records its number");
        let contact = store.get_contact(&ws, &d.contact_id).await.unwrap().unwrap();
        assert_eq!(contact.caller_number.as_deref(), Some(d.phone_number_id.as_str()), "the contact keeps it");
    }
    store.insert_contacts(&ws, &rr.id, &new_contacts(10..12), t0()).await.unwrap();
    let next: Vec<String> = claim(&store, &rr.id, at(1)).await.into_iter().map(|d| d.phone_number_id).collect();
    assert_eq!(next, [NY, CHI], "the next claim goes on from where the last stopped");

    // Least used today, across the workspace: SF has 2 calls, NY 2 (from the campaign
    // above), NY2 none.
    let lu = pool_campaign(&store, &ws, &[SF, NY, NY2], CallerStrategy::LeastUsed, CallerStrategy::RoundRobin, &callees(20..25)).await;
    let picked: Vec<String> = claim(&store, &lu.id, at(2)).await.into_iter().map(|d| d.phone_number_id).collect();
    // Counts before: SF 2, NY 2, NY2 0 → NY2, NY2, then all at 2: SF, NY, NY2.
    assert_eq!(picked, [NY2, NY2, SF, NY, NY2], "fewest calls today first, ties in pool order");

    // Local presence: a New York callee gets a 212 number, a San Francisco one the 415;
    // Chicago has no local number: the fallback (least used) decides.
    let ny_callee = "+12123337001".to_string();
    let sf_callee = "+14153337002".to_string();
    let chi_callee = "+13123337003".to_string();
    let lp = pool_campaign(
        &store,
        &ws,
        &[SF, NY],
        CallerStrategy::LocalPresence,
        CallerStrategy::LeastUsed,
        &[ny_callee.clone(), sf_callee.clone(), chi_callee.clone()],
    )
    .await;
    let dials = claim(&store, &lp.id, at(3)).await;
    let got = by_callee(&dials);
    assert_eq!(got[&ny_callee], NY, "a 212 callee is called from the 212 number");
    assert_eq!(got[&sf_callee], SF, "a 415 callee from the 415 number");
    // Before the Chicago pick: SF 3+1, NY 3+1 today (ties) → pool order: SF.
    assert_eq!(got[&chi_callee], SF, "no local number: the fallback strategy");
}

pub async fn a_contact_keeps_its_caller_number_across_retries(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let cmp = pool_campaign(&store, &ws, &[SF, NY], CallerStrategy::RoundRobin, CallerStrategy::RoundRobin, &callees(0..3)).await;
    let first = claim(&store, &cmp.id, t0()).await;
    let numbers: HashMap<_, _> = first.iter().map(|d| (d.contact_id.clone(), d.phone_number_id.clone())).collect();
    assert_eq!(first.iter().map(|d| d.phone_number_id.as_str()).collect::<Vec<_>>(), [SF, NY, SF]);
    for d in &first {
        end(&store, &d.call_id, Outcome::NoAnswer, at(10)).await;
    }
    // Round-robin would now start at NY; each retry keeps its first number instead.
    for round in 1..3 {
        let retries = claim(&store, &cmp.id, at(round * 3600)).await;
        assert_eq!(retries.len(), 3, "round {round}: every contact is due again");
        for d in &retries {
            assert_eq!(d.attempt, round as u32 + 1);
            assert_eq!(d.phone_number_id, numbers[&d.contact_id], "round {round}: the retry goes from the contact's first number");
            let call = load_call(&store, &ws, &d.call_id).await;
            assert_eq!(call.caller_number.as_deref(), Some(numbers[&d.contact_id].as_str()));
            end(&store, &d.call_id, Outcome::NoAnswer, at(round * 3600 + 10)).await;
        }
    }
}

/// Four campaigns of one workspace share two numbers limited to 5 calls a day each; 16
/// tasks claim for them at once, with one campaign's claims and with several campaigns'
/// together (PostgreSQL's `claim_many`), round after round. No number ever passes 5; the
/// rest wait for the next UTC midnight and say so; that day the numbers call again.
pub async fn the_daily_limit_holds_under_concurrent_claims_across_campaigns(store: S) {
    const LIMIT: u32 = 5;
    let ws = store.default_workspace().await.unwrap();
    assert!(store.set_caller_number_daily_limit(ws.as_str(), Some(LIMIT), t0()).await.unwrap().is_some());
    let mut campaigns = vec![];
    for c in 0..4u32 {
        let cmp = pool_campaign(&store, &ws, &[SF, NY], CallerStrategy::LeastUsed, CallerStrategy::RoundRobin, &callees(c * 100..c * 100 + 20)).await;
        campaigns.push(cmp.id);
    }
    let mut dials: Vec<Dial> = vec![];
    for round in 0..3i64 {
        let barrier = Arc::new(Barrier::new(16));
        let tasks: Vec<_> = (0..16usize)
            .map(|k| {
                let (store, campaigns, barrier) = (store.clone(), campaigns.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let now = at(round * 60);
                    if k % 2 == 0 {
                        store.claim(&campaigns[k / 2 % 4], NODE, now).await.expect("claim")
                    } else {
                        store.claim_many(&campaigns, NODE, now).await.expect("claim_many").into_values().flatten().collect()
                    }
                })
            })
            .collect();
        for t in tasks {
            dials.extend(t.await.unwrap());
        }
    }
    let mut per_number: HashMap<String, u32> = HashMap::new();
    for d in &dials {
        *per_number.entry(d.phone_number_id.clone()).or_default() += 1;
        let call = load_call(&store, &ws, &d.call_id).await;
        assert_eq!(call.caller_number.as_deref(), Some(d.phone_number_id.as_str()));
    }
    assert_eq!(per_number.get(SF).copied(), Some(LIMIT), "SF made exactly its limit: {per_number:?}");
    assert_eq!(per_number.get(NY).copied(), Some(LIMIT), "NY made exactly its limit: {per_number:?}");
    assert_eq!(dials.len() as u32, 2 * LIMIT);

    // Everyone else waits for the next UTC day, and says why.
    let midnight: Timestamp = "2030-03-02T00:00:00Z".parse().unwrap();
    let mut waiting = 0;
    for cmp in &campaigns {
        for g in store.pending_groups(cmp, at(200)).await.unwrap() {
            assert_eq!(g.wait_reason.as_deref(), Some("caller_number_limit"), "{g:?}");
            assert_eq!((g.earliest, g.latest), (midnight, midnight), "due at the next UTC midnight");
            waiting += g.count;
        }
    }
    assert_eq!(waiting, 80 - 2 * LIMIT as u64, "every contact not called waits for the limit");
    let one = store.list_contacts(&ws, &campaigns[0], &Page { limit: 100, before: None }).await.unwrap();
    let held = one.iter().find(|c| c.status == ContactStatus::Pending).expect("a waiting contact");
    let w = held.waiting.as_ref().expect("a waiting contact says why");
    assert_eq!((w.reason, w.until), (WaitReason::CallerNumberLimit, Some(midnight)));
    assert_eq!(held.attempts, 0, "waiting for the limit spends no attempt");

    // The next day the numbers call again, from zero.
    for d in &dials {
        end(&store, &d.call_id, Outcome::Completed, at(300)).await;
    }
    let next_day: Vec<Dial> = store.claim_many(&campaigns, NODE, midnight + SignedDuration::from_secs(1)).await.unwrap().into_values().flatten().collect();
    assert_eq!(next_day.len() as u32, 2 * LIMIT, "a new day, a new count");
    let cmp = store.get_campaign(&ws, &campaigns[0]).await.unwrap().unwrap();
    assert_ne!(cmp.status, CampaignStatus::Completed);
}

pub async fn calls_per_minute_caps_the_calls_placed_in_any_rolling_minute(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let cmp = draft_campaign(&store, &ws, Mode::Continuous, 10, 3).await;
    let patch = dialtone_store::CampaignPatch { calls_per_minute: Some(Some(3)), ..Default::default() };
    let cmp = store.update_campaign(&ws, &cmp.id, &patch, t0()).await.unwrap();
    assert_eq!(cmp.calls_per_minute, Some(3));
    add_contacts(&store, &ws, &cmp.id, 0..10).await;
    start(&store, &ws, &cmp.id).await;
    let first = claim(&store, &cmp.id, t0()).await;
    assert_eq!(first.len(), 3, "three in the first minute, though seven slots are free");
    for d in &first {
        end(&store, &d.call_id, Outcome::Completed, at(5)).await;
    }
    assert!(claim(&store, &cmp.id, at(30)).await.is_empty(), "the minute is not over");
    assert!(claim(&store, &cmp.id, at(59)).await.is_empty(), "59 s after the first calls: still inside their minute");
    assert_eq!(claim(&store, &cmp.id, at(60)).await.len(), 3, "a minute on, three more");
    // Removing the throttle leaves only the cap.
    let patch = dialtone_store::CampaignPatch { calls_per_minute: Some(None), ..Default::default() };
    assert_eq!(store.update_campaign(&ws, &cmp.id, &patch, at(62)).await.unwrap().calls_per_minute, None);
    assert_eq!(claim(&store, &cmp.id, at(62)).await.len(), 4, "the rest, up to the cap");
}
