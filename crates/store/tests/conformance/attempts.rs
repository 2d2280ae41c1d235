//! Attempt accounting under random interleavings of everything that touches it: claims by
//! two nodes, placing, the provider accepting, the placer giving a claim back (the
//! provider at capacity on the request, no account), the breaker open before the request,
//! a refusal for good, a capacity refusal reported by an event, real ends, a node crashing
//! and another taking its unsent calls over after the lease (then resolving each: adopted,
//! absent or unknown at the provider), and time passing. After every step, for every
//! contact: its calls are numbered 1..n with no repeat and no gap, `attempts` equals the
//! attempts actually spent (claims minus those given back), and only calls refused for
//! capacity are calls that spent none.

use crate::support::*;
use dialtone_core::{CallId, CallStatus, ContactId, ContactStatus, EventKind, Mode, Outcome};
use dialtone_store::{Dial, Page};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::collections::{HashMap, HashSet};

/// The reason a provider ends a call it refused because the account was full.
const CAPACITY_REASON: &str = "call.start.error-subscription-concurrency-limit-reached";

/// What the provider says of a call a crash left possibly sent.
#[derive(Debug, Clone, Copy)]
enum AtProvider {
    Adopted,
    Absent,
    Unknown,
}

#[derive(Debug, Clone)]
enum Op {
    /// Node `n` claims what the cap allows.
    Claim(usize),
    /// The owner of an unsent, unplaced claim marks it placing (the fence before sending).
    Place(Index),
    /// The provider accepted a call being placed.
    Accept(Index),
    /// The provider answered the request "account full" (or no account on this node): the
    /// placer gives the claim back.
    GiveBack(Index),
    /// The breaker was open before the request went: the placer gives the claim back.
    BreakerOpen(Index),
    /// The provider refused a call being placed for good: it ends `failed`.
    Refuse(Index),
    /// The provider reports a dialled call ended for capacity (an event).
    CapacityRefusal(Index),
    /// A dialled call ends: completed (`true`) or no answer (`false`).
    End(Index, bool),
    /// Node `n` dies with its unsent claims in the database.
    Crash(usize),
    /// After the lease, node `n` (restarted if it was dead) resolves the unsent calls of
    /// dead nodes and its own as the engine's reaper does.
    Recover(usize, AtProvider),
    /// Minutes pass (retries come due).
    Wait(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let at = prop_oneof![Just(AtProvider::Adopted), Just(AtProvider::Absent), Just(AtProvider::Unknown)];
    prop_oneof![
        4 => (0..2usize).prop_map(Op::Claim),
        4 => any::<Index>().prop_map(Op::Place),
        3 => any::<Index>().prop_map(Op::Accept),
        1 => any::<Index>().prop_map(Op::GiveBack),
        1 => any::<Index>().prop_map(Op::BreakerOpen),
        1 => any::<Index>().prop_map(Op::Refuse),
        1 => any::<Index>().prop_map(Op::CapacityRefusal),
        3 => (any::<Index>(), any::<bool>()).prop_map(|(i, c)| Op::End(i, c)),
        1 => (0..2usize).prop_map(Op::Crash),
        1 => (0..2usize, at).prop_map(|(n, a)| Op::Recover(n, a)),
        1 => (1..15u8).prop_map(Op::Wait),
    ]
}

/// An unsent claim a live node holds in memory.
struct Held {
    dial: Dial,
    node: usize,
    placing: bool,
}

/// What the test knows, beside the store.
struct World {
    store: S,
    ws: dialtone_core::WorkspaceId,
    campaign: dialtone_core::CampaignId,
    /// The two nodes, named after the campaign: each case's heartbeats are its own.
    nodes: [String; 2],
    now: Timestamp,
    alive: [bool; 2],
    held: Vec<Held>,
    dialed: Vec<CallId>,
    /// Attempts each contact has spent, as the test counts them.
    spent: HashMap<ContactId, i64>,
}

fn pick<T>(items: &[T], i: &Index, keep: impl Fn(&T) -> bool) -> Option<usize> {
    let fits: Vec<usize> = (0..items.len()).filter(|&k| keep(&items[k])).collect();
    (!fits.is_empty()).then(|| fits[i.index(fits.len())])
}

impl World {
    fn spend(&mut self, contact: &ContactId, by: i64) {
        *self.spent.entry(contact.clone()).or_default() += by;
    }

    async fn release(&mut self, dial: &Dial, why: &str) -> Result<(), String> {
        if !self.store.release_unsent(&dial.call_id, why, self.now).await.unwrap() {
            return Err(format!("release_unsent of {} ({why}) refused", dial.call_id));
        }
        self.spend(&dial.contact_id, -1);
        Ok(())
    }

    async fn end_with(&mut self, call: &CallId, outcome: Outcome, reason: Option<&str>) -> Result<(), String> {
        let mut e = ended(call, outcome);
        e.kind = EventKind::Ended { outcome, reason: reason.map(str::to_string) };
        let applied = apply1(&self.store, e, self.now).await;
        if !applied.ended_call() {
            return Err(format!("ending dialled call {call} did not end it: {applied:?}"));
        }
        Ok(())
    }

    async fn step(&mut self, op: &Op) -> Result<(), String> {
        let store = self.store.clone();
        match op {
            Op::Claim(n) => {
                if !self.alive[*n] {
                    return Ok(());
                }
                store.heartbeat(self.nodes[*n].as_str(), self.now).await.unwrap();
                for dial in store.claim(&self.campaign, self.nodes[*n].as_str(), self.now).await.unwrap() {
                    self.spend(&dial.contact_id, 1);
                    self.held.push(Held { dial, node: *n, placing: false });
                }
            }
            Op::Place(i) => {
                let Some(k) = pick(&self.held, i, |h| !h.placing) else { return Ok(()) };
                let h = &mut self.held[k];
                if !store.mark_placing(&h.dial.call_id, self.nodes[h.node].as_str(), self.now).await.unwrap() {
                    return Err(format!("a live owner's mark_placing of {} failed", h.dial.call_id));
                }
                h.placing = true;
            }
            Op::Accept(i) => {
                let Some(k) = pick(&self.held, i, |h| h.placing) else { return Ok(()) };
                let h = self.held.remove(k);
                store.mark_dialed(&h.dial.call_id, &provider_id(&h.dial.call_id), self.now).await.unwrap();
                self.dialed.push(h.dial.call_id);
            }
            Op::GiveBack(i) => {
                let Some(k) = pick(&self.held, i, |h| h.placing) else { return Ok(()) };
                let h = self.held.remove(k);
                self.release(&h.dial, "provider at its concurrency limit").await?;
            }
            Op::BreakerOpen(i) => {
                let Some(k) = pick(&self.held, i, |_| true) else { return Ok(()) };
                let h = self.held.remove(k);
                self.release(&h.dial, "circuit breaker open").await?;
            }
            Op::Refuse(i) => {
                let Some(k) = pick(&self.held, i, |h| h.placing) else { return Ok(()) };
                let h = self.held.remove(k);
                let applied = store.end_call(&h.dial.call_id, Outcome::Failed, "422 invalid assistant", self.now).await.unwrap();
                if !applied.is_some_and(|a| a.ended_call()) {
                    return Err(format!("end_call of refused {} did not end it", h.dial.call_id));
                }
            }
            Op::CapacityRefusal(i) => {
                let Some(k) = pick(&self.dialed, i, |_| true) else { return Ok(()) };
                let call = self.dialed.remove(k);
                let contact = load_call(&store, &self.ws, &call).await.contact_id;
                self.end_with(&call, Outcome::Failed, Some(CAPACITY_REASON)).await?;
                self.spend(&contact, -1);
            }
            Op::End(i, completed) => {
                let Some(k) = pick(&self.dialed, i, |_| true) else { return Ok(()) };
                let call = self.dialed.remove(k);
                let outcome = if *completed { Outcome::Completed } else { Outcome::NoAnswer };
                self.end_with(&call, outcome, Some("test end")).await?;
            }
            Op::Crash(n) => {
                self.alive[*n] = false;
                self.held.retain(|h| h.node != *n);
            }
            Op::Recover(n, at_provider) => {
                self.alive[*n] = true;
                self.now += SignedDuration::try_from(LEASE).unwrap() + SignedDuration::from_secs(1);
                for (k, node) in self.nodes.iter().enumerate() {
                    if self.alive[k] {
                        store.heartbeat(node, self.now).await.unwrap();
                    }
                }
                let orphans = store.orphaned_calls(self.nodes[*n].as_str(), LEASE, self.now, &HashSet::new()).await.unwrap();
                for call in orphans {
                    // As the engine: a call this node is still placing is not an orphan. (Other
                    // cases' campaigns are left alone.)
                    if self.held.iter().any(|h| h.dial.call_id == call.id) || call.campaign_id != self.campaign {
                        continue;
                    }
                    let dial = Dial { call_id: call.id.clone(), contact_id: call.contact_id.clone(), ..self.any_dial() };
                    match (call.placing_at, at_provider) {
                        (None, _) | (Some(_), AtProvider::Absent) => self.release(&dial, "recovered unsent").await?,
                        (Some(_), AtProvider::Adopted) => {
                            store.mark_dialed(&call.id, &provider_id(&call.id), self.now).await.unwrap();
                            self.dialed.push(call.id);
                        }
                        (Some(_), AtProvider::Unknown) => {
                            store.end_call(&call.id, Outcome::Timeout, "interrupted while placing; unknown", self.now).await.unwrap();
                        }
                    }
                }
            }
            Op::Wait(mins) => self.now += SignedDuration::from_mins(i64::from(*mins)),
        }
        Ok(())
    }

    /// A dial to carry a recovered call's ids (only `call_id` and `contact_id` are read).
    fn any_dial(&self) -> Dial {
        Dial {
            call_id: CallId::new(),
            workspace_id: self.ws.clone(),
            campaign_id: self.campaign.clone(),
            contact_id: ContactId::new(),
            attempt: 0,
            provider: dialtone_core::ProviderKind::Sim,
            account_id: None,
            assistant_id: String::new(),
            phone_number_id: String::new(),
            phone: phone(0),
            extension: None,
            name: None,
            variables: Default::default(),
            agent: None,
            placing_at: None,
        }
    }

    /// The invariants, checked against the store after every step.
    async fn check(&self, after: &Op) -> Result<(), String> {
        let contacts = self.store.list_contacts(&self.ws, &self.campaign, &Page { limit: 1000, before: None }).await.unwrap();
        let calls = calls_of(&self.store, &self.ws, &self.campaign).await;
        for contact in &contacts {
            let mut mine: Vec<_> = calls.iter().filter(|c| c.contact_id == contact.id).collect();
            mine.sort_by_key(|c| c.attempt);
            let numbers: Vec<u32> = mine.iter().map(|c| c.attempt).collect();
            let expected: Vec<u32> = (1..=mine.len() as u32).collect();
            if numbers != expected {
                return Err(format!("after {after:?}: contact {} has attempt numbers {numbers:?}, not 1..n", contact.id));
            }
            let spent = self.spent.get(&contact.id).copied().unwrap_or(0);
            if i64::from(contact.attempts) != spent {
                return Err(format!("after {after:?}: contact {} has attempts {} but spent {spent}", contact.id, contact.attempts));
            }
            let refused_for_capacity = mine.iter().filter(|c| c.ended_reason.as_deref() == Some(CAPACITY_REASON)).count();
            if contact.attempts as usize != mine.len() - refused_for_capacity {
                return Err(format!(
                    "after {after:?}: contact {} has attempts {} but {} calls, {refused_for_capacity} of them refused for capacity",
                    contact.id,
                    contact.attempts,
                    mine.len()
                ));
            }
            let active = mine.iter().filter(|c| c.status.is_active()).count();
            if active > 1 || (active == 1) != (contact.status == ContactStatus::InCall) {
                return Err(format!("after {after:?}: contact {} is {:?} with {active} active calls", contact.id, contact.status));
            }
        }
        // Nothing the test still holds as dialled has ended behind its back, and the reverse.
        for call in calls.iter().filter(|c| c.status == CallStatus::Dialing) {
            if !self.dialed.contains(&call.id) {
                return Err(format!("after {after:?}: call {} is dialing but the test did not dial it", call.id));
            }
        }
        Ok(())
    }
}

async fn run_case(store: &S, ops: &[Op]) -> Result<(), TestCaseError> {
    // Three contacts, a cap of two, up to four attempts each, retried after five minutes.
    let ws = store.default_workspace().await.unwrap();
    let campaign = draft_campaign(store, &ws, Mode::Continuous, 2, 4).await;
    add_contacts(store, &ws, &campaign.id, 0..3).await;
    start(store, &ws, &campaign.id).await;
    let mut world = World {
        store: store.clone(),
        ws,
        nodes: [format!("node_a_{}", campaign.id), format!("node_b_{}", campaign.id)],
        campaign: campaign.id,
        now: t0(),
        alive: [true, true],
        held: vec![],
        dialed: vec![],
        spent: HashMap::new(),
    };
    for op in ops {
        world.now += SignedDuration::from_millis(10);
        world.step(op).await.map_err(TestCaseError::fail)?;
        world.check(op).await.map_err(TestCaseError::fail)?;
    }
    Ok(())
}

pub async fn attempt_numbers_never_repeat_or_skip_and_only_spent_attempts_count(store: S) {
    // Each case runs in a campaign of its own on this one store (a fresh database per case
    // would make the PostgreSQL run slow); the campaigns share nothing but the nodes.
    let mut runner = TestRunner::new(Config { cases: 48, failure_persistence: None, ..Config::default() });
    let handle = tokio::runtime::Handle::current();
    let result = runner.run(&proptest::collection::vec(op(), 1..40), |ops| tokio::task::block_in_place(|| handle.block_on(run_case(&store, &ops))));
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// A recurring single call's next occurrence is numbered after every call the contact has,
/// not after the attempts it spent: a capacity refusal gave one back, yet its call keeps
/// its number.
pub async fn a_recurring_single_calls_next_occurrence_is_numbered_after_a_capacity_refused_call(store: S) {
    use dialtone_core::frequency::{Frequency, Recurrence};
    use dialtone_core::{ContactZone, ProviderKind, TzSource};
    use dialtone_store::{Assistant, NewSingleCall};
    let ws = store.default_workspace().await.unwrap();
    let first = store
        .create_single_call(
            NewSingleCall {
                workspace_id: ws.clone(),
                assistant: Assistant { id: "asst".into(), provider: ProviderKind::Sim, phone_number_id: "pn".into(), name: None },
                phone: phone(1),
                extension: None,
                name: None,
                variables: Default::default(),
                timezone: ContactZone::single("UTC", TzSource::Explicit),
                scheduled_for: at(60),
                recurrence: Some(Recurrence::new(Frequency::Daily)),
                respect_business_hours: false,
                max_attempts: 3,
                retry: retry_policy(),
                agent_id: None,
                account_id: None,
            },
            t0(),
        )
        .await
        .unwrap();
    let dials = claim(&store, &first.campaign_id, at(60)).await;
    assert_eq!(dials.iter().map(|d| (d.call_id.clone(), d.attempt)).collect::<Vec<_>>(), vec![(first.id.clone(), 1)]);
    place(&store, &dials[0], at(60)).await;
    let refused = event(Some(&first.id), None, EventKind::Ended { outcome: Outcome::Failed, reason: Some(CAPACITY_REASON.into()) }, "cap-1");
    assert!(apply1(&store, refused, at(61)).await.ended_call());
    assert_eq!(load_contact(&store, &ws, &first.contact_id).await.attempts, 0, "the refused attempt came back");

    let retry = claim(&store, &first.campaign_id, at(120)).await;
    assert_eq!(retry.iter().map(|d| d.attempt).collect::<Vec<_>>(), vec![2], "the retry is a new call, number 2");
    place(&store, &retry[0], at(120)).await;
    end(&store, &retry[0].call_id, Outcome::Completed, at(180)).await;

    let mut calls = calls_of(&store, &ws, &first.campaign_id).await;
    calls.sort_by_key(|c| c.attempt);
    let shape: Vec<(u32, CallStatus)> = calls.iter().map(|c| (c.attempt, c.status)).collect();
    assert_eq!(shape, vec![(1, CallStatus::Ended), (2, CallStatus::Ended), (3, CallStatus::Scheduled)], "the next occurrence is number 3");
    assert_eq!(load_contact(&store, &ws, &first.contact_id).await.attempts, 1);
}
