//! Node leases: which unsent calls a node may take over, and the fence that keeps a call
//! it took from being sent by its old owner. "One attempt is never dialled twice", with
//! several nodes sharing one database.

use crate::support::*;
use dialtone_core::{CallId, CallStatus, EventKind, Mode};
use dialtone_store::Call;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::Barrier;

const A: &str = "node_a";
const B: &str = "node_b";
const C: &str = "node_c";

fn ids(calls: &[Call]) -> HashSet<CallId> {
    calls.iter().map(|c| c.id.clone()).collect()
}

pub async fn a_live_owners_unsent_calls_are_never_another_nodes_orphans(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 3, 3, 3).await;
    store.heartbeat(A, at(0)).await.unwrap();
    store.heartbeat(B, at(0)).await.unwrap();
    let dials = store.claim(&cmp.id, A, at(0)).await.unwrap();
    assert_eq!(dials.len(), 3);
    // One is being sent right now, two wait for the placer.
    assert!(store.mark_placing(&dials[0].call_id, A, at(1)).await.unwrap(), "the owner passes its own fence");

    for t in [1, 10, 15] {
        assert!(store.orphaned_calls(B, LEASE, at(t), &HashSet::new()).await.unwrap().is_empty(), "at {t}s A's lease (heartbeat at 0s) still holds");
    }
    store.heartbeat(A, at(14)).await.unwrap();
    // A heartbeat written late (an older time) does not shorten the lease.
    store.heartbeat(A, at(5)).await.unwrap();
    for t in [16, 25, 29] {
        assert!(store.orphaned_calls(B, LEASE, at(t), &HashSet::new()).await.unwrap().is_empty(), "at {t}s A's lease (heartbeat at 14s) still holds");
    }
    for d in &dials {
        let call = load_call(&store, &ws, &d.call_id).await;
        assert_eq!(call.status, CallStatus::Queued, "nobody released {}", d.call_id);
    }
    assert!(store.mark_placing(&dials[1].call_id, A, at(29)).await.unwrap(), "A still owns its calls");

    // A node that restarts under the same id recovers its own calls at once.
    let own = store.orphaned_calls(A, LEASE, at(30), &HashSet::new()).await.unwrap();
    assert_eq!(ids(&own), dials.iter().map(|d| d.call_id.clone()).collect(), "a node's own unsent calls are its to recover");
    assert!(store.orphaned_calls(B, LEASE, at(29), &HashSet::new()).await.unwrap().is_empty(), "and they stay A's");
}

/// A node's own placements in flight (`busy`) are not its orphans: skipped, while its
/// other unsent calls are recovered.
pub async fn a_nodes_calls_in_flight_are_skipped(store: S) {
    let (_ws, cmp) = running(&store, Mode::Continuous, 3, 3, 3).await;
    store.heartbeat(A, at(0)).await.unwrap();
    let dials = store.claim(&cmp.id, A, at(0)).await.unwrap();
    assert_eq!(dials.len(), 3);
    let busy: HashSet<CallId> = dials[..2].iter().map(|d| d.call_id.clone()).collect();
    let found = store.orphaned_calls(A, LEASE, at(30), &busy).await.unwrap();
    assert_eq!(ids(&found), HashSet::from([dials[2].call_id.clone()]), "only the call not in flight is recovered");
    assert!(store.mark_placing(&dials[0].call_id, A, at(31)).await.unwrap(), "the calls in flight are still A's to send");
}

pub async fn a_dead_owners_unsent_call_is_taken_over_exactly_once_by_racing_nodes(store: S) {
    const CALLS: usize = 6;
    const TASKS_PER_NODE: usize = 4;
    let (ws, cmp) = running(&store, Mode::Continuous, CALLS as u32, 3, CALLS as u32).await;
    store.heartbeat(A, at(0)).await.unwrap();
    let dials = store.claim(&cmp.id, A, at(0)).await.unwrap();
    assert_eq!(dials.len(), CALLS);
    // A died while sending the first one: its takeover must carry `placing_at`, so the
    // new owner asks the provider instead of releasing it blindly.
    assert!(store.mark_placing(&dials[0].call_id, A, at(1)).await.unwrap());

    // A's last heartbeat was at 0s; at 100s B and C both look for orphans, many times at once.
    store.heartbeat(B, at(100)).await.unwrap();
    store.heartbeat(C, at(100)).await.unwrap();
    let barrier = Arc::new(Barrier::new(2 * TASKS_PER_NODE));
    let tasks: Vec<_> = (0..2 * TASKS_PER_NODE)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            let node = if i % 2 == 0 { B } else { C };
            tokio::spawn(async move {
                barrier.wait().await;
                (node, store.orphaned_calls(node, LEASE, at(100), &HashSet::new()).await.expect("orphaned_calls"))
            })
        })
        .collect();
    let mut taken: HashMap<&str, HashSet<CallId>> = HashMap::new();
    for t in tasks {
        let (node, calls) = t.await.unwrap();
        for c in &calls {
            assert_eq!(c.status, CallStatus::Queued);
            assert!(c.provider_call_id.is_none());
        }
        taken.entry(node).or_default().extend(ids(&calls));
    }
    let (b, c) = (taken.remove(B).unwrap_or_default(), taken.remove(C).unwrap_or_default());
    assert!(b.is_disjoint(&c), "a call was taken over by both nodes: {:?}", b.intersection(&c).collect::<Vec<_>>());
    let all: HashSet<CallId> = dials.iter().map(|d| d.call_id.clone()).collect();
    assert_eq!(b.union(&c).cloned().collect::<HashSet<_>>(), all, "every orphan is taken over by one of them");

    // Ownership moved: only the new owner passes the fence, and only once.
    for d in &dials {
        let (owner, other) = if b.contains(&d.call_id) { (B, C) } else { (C, B) };
        assert!(!store.mark_placing(&d.call_id, A, at(101)).await.unwrap(), "the dead owner must not send {}", d.call_id);
        assert!(!store.mark_placing(&d.call_id, other, at(101)).await.unwrap(), "{other} does not own {}", d.call_id);
        let call = load_call(&store, &ws, &d.call_id).await;
        if d.call_id == dials[0].call_id {
            assert_eq!(call.placing_at, Some(at(1)), "a takeover keeps the evidence it may have been sent");
            assert!(!store.mark_placing(&d.call_id, owner, at(101)).await.unwrap(), "it is never sent again blindly");
        } else {
            assert!(store.mark_placing(&d.call_id, owner, at(101)).await.unwrap(), "{owner} owns {} now", d.call_id);
        }
    }
    // The new owners are alive: the calls are nobody else's orphans now.
    assert!(store.orphaned_calls(A, LEASE, at(105), &HashSet::new()).await.unwrap().is_empty(), "A, back under its old id, has lost them");
}

pub async fn after_a_takeover_the_old_owners_mark_placing_fails(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 2, 3, 2).await;
    store.heartbeat(A, at(0)).await.unwrap();
    let dials = store.claim(&cmp.id, A, at(0)).await.unwrap();
    assert_eq!(dials.len(), 2);

    // A stalls (its heartbeat stops) past the lease; B takes its calls over.
    store.heartbeat(B, at(60)).await.unwrap();
    let taken = store.orphaned_calls(B, LEASE, at(60), &HashSet::new()).await.unwrap();
    assert_eq!(ids(&taken), dials.iter().map(|d| d.call_id.clone()).collect());
    assert!(store.orphaned_calls(B, LEASE, at(60), &HashSet::new()).await.unwrap().len() == 2, "B asking again finds its own calls");

    // A wakes up and carries on placing: the fence stops it.
    store.heartbeat(A, at(61)).await.unwrap();
    for d in &dials {
        assert!(!store.mark_placing(&d.call_id, A, at(61)).await.unwrap(), "the old owner must not send {}", d.call_id);
        assert_eq!(load_call(&store, &ws, &d.call_id).await.placing_at, None);
    }
    assert!(store.orphaned_calls(A, LEASE, at(62), &HashSet::new()).await.unwrap().is_empty(), "B is alive: A cannot take them back");
    assert!(store.mark_placing(&dials[0].call_id, B, at(62)).await.unwrap());
    assert!(store.release_unsent(&dials[1].call_id, "never sent", at(62)).await.unwrap(), "the new owner resolves it");
}

pub async fn a_call_with_a_provider_id_is_never_an_orphan(store: S) {
    let (ws, cmp) = running(&store, Mode::Continuous, 3, 3, 3).await;
    store.heartbeat(A, at(0)).await.unwrap();
    let dials = store.claim(&cmp.id, A, at(0)).await.unwrap();
    assert_eq!(dials.len(), 3);
    // Accepted by the provider (DIALING).
    assert!(store.mark_placing(&dials[0].call_id, A, at(1)).await.unwrap());
    store.mark_dialed(&dials[0].call_id, "prov-0", at(2)).await.unwrap();
    // Still QUEUED, but a webhook told us the provider's id: it was sent.
    assert!(store.mark_placing(&dials[1].call_id, A, at(1)).await.unwrap());
    apply1(&store, event(Some(&dials[1].call_id), Some("prov-1"), EventKind::Info, "info-1"), at(2)).await;
    let call = load_call(&store, &ws, &dials[1].call_id).await;
    assert_eq!((call.status, call.provider_call_id.as_deref()), (CallStatus::Queued, Some("prov-1")));

    // A is long dead: only the never-sent third call is an orphan, for A itself as for B.
    for node in [B, A] {
        let orphans = store.orphaned_calls(node, LEASE, at(1000), &HashSet::new()).await.unwrap();
        assert_eq!(ids(&orphans), HashSet::from([dials[2].call_id.clone()]), "{node}: a call with a provider id is never an orphan");
    }
}

pub async fn a_call_whose_owner_never_heartbeat_is_an_orphan_at_once(store: S) {
    let (_ws, cmp) = running(&store, Mode::Continuous, 1, 3, 1).await;
    // A claimed without ever recording a lease (or its row is gone): nothing vouches for it.
    let dial = store.claim(&cmp.id, A, at(0)).await.unwrap().pop().unwrap();
    store.heartbeat(B, at(1)).await.unwrap();
    let taken = store.orphaned_calls(B, LEASE, at(1), &HashSet::new()).await.unwrap();
    assert_eq!(ids(&taken), HashSet::from([dial.call_id.clone()]));
    assert!(!store.mark_placing(&dial.call_id, A, at(2)).await.unwrap());
    assert!(store.mark_placing(&dial.call_id, B, at(2)).await.unwrap());
}

/// SQLite is one node: nothing to publish to, nothing to listen to.
#[tokio::test]
async fn sqlite_wakes_are_a_no_op() {
    let (store, _guard) = crate::fresh_sqlite().await;
    store.publish_wake().await.expect("publishing is a no-op");
    assert!(store.subscribe_wakes().await.expect("subscribe").is_none());
}

/// Whether anybody else was listening: nodes other than the asker whose heartbeat is within
/// the lease, and only those.
pub async fn other_live_nodes_counts_the_other_nodes_within_their_lease(store: S) {
    let lease = std::time::Duration::from_secs(15);
    assert_eq!(store.other_live_nodes("n_me", lease, at(100)).await.unwrap(), 0, "nobody yet");
    store.heartbeat("n_me", at(100)).await.unwrap();
    store.heartbeat("n_dead", at(80)).await.unwrap();
    assert_eq!(store.other_live_nodes("n_me", lease, at(100)).await.unwrap(), 0, "itself and a node 20 s quiet do not count");
    store.heartbeat("n_live", at(85)).await.unwrap();
    assert_eq!(store.other_live_nodes("n_me", lease, at(100)).await.unwrap(), 1, "15 s ago is within the lease");
    assert_eq!(store.other_live_nodes("n_live", lease, at(100)).await.unwrap(), 1, "n_me, for n_live");
    assert_eq!(store.other_live_nodes("n_me", lease, at(101)).await.unwrap(), 0);
}
