//! What a batch of provider events does to the calls it names and to their contacts,
//! decided in memory: no SQL, no I/O. Both backends load (and, on PostgreSQL, lock) the
//! calls a batch names, hand them here, and write what comes back; the rules themselves
//! (`dialtone_core::call::effect`, `AfterCall::decide`) are applied only here, so SQLite and
//! PostgreSQL cannot drift apart.
//!
//! The shape of a batch:
//! 1. [`BatchCalls`]: the calls the batch names, as loaded.
//! 2. [`BatchPlan::new`] finds each event's call (the provider id wins, see
//!    `common::target`; an event's provider id is attached to a call that has none, so later
//!    events of the batch find it), and works the batch out as if every event offered is
//!    new: each is then stored already marked applied or not.
//! 3. After the insert says which dedupe keys were really new, [`BatchPlan::settle`] works
//!    the batch out again without the duplicates (a provider's retry; rare) and says which
//!    stored marks to correct.
//! 4. The caller writes [`BatchPlan::dirty_calls`], moves [`BatchPlan::ended`] contacts on
//!    ([`next_step`] for each), and corrects [`BatchPlan::corrected`] contacts' last outcome.

use crate::common::{contact_zones, facts, is_capacity_refusal, json, log_mismatch, retry_policy, single_call_due, target, Target, INBOUND_KIND};
use crate::{Applied, Call, Result};
use dialtone_core::call::{effect, Effect};
use dialtone_core::frequency::{Frequency, Recurrence};
use dialtone_core::retry::AfterCall;
use dialtone_core::schedule::Schedule;
use dialtone_core::{CallStatus, ContactStatus, EventKind, Outcome, ProviderEvent};
use jiff::Timestamp;
use std::collections::{HashMap, HashSet};

/// The calls a batch names, keyed by id and by provider call id; changed in memory.
#[derive(Clone, Default)]
pub struct BatchCalls {
    by_id: HashMap<String, Slot>,
    by_pid: HashMap<String, String>,
}

#[derive(Clone)]
struct Slot {
    call: Call,
    /// Changed since loaded: to be written.
    dirty: bool,
}

impl BatchCalls {
    pub fn new(calls: impl IntoIterator<Item = Call>) -> BatchCalls {
        let mut b = BatchCalls::default();
        b.add(calls);
        b
    }

    /// Takes in more loaded calls; a call already held is kept as it is.
    pub fn add(&mut self, calls: impl IntoIterator<Item = Call>) {
        for call in calls {
            if let Some(pid) = &call.provider_call_id {
                self.by_pid.insert(pid.clone(), call.id.as_str().to_string());
            }
            self.by_id.entry(call.id.as_str().to_string()).or_insert(Slot { call, dirty: false });
        }
    }

    /// Whether a held call has provider call id `pid`.
    pub fn has_provider_id(&self, pid: &str) -> bool {
        self.by_pid.contains_key(pid)
    }

    pub fn get(&self, id: &str) -> Option<&Call> {
        self.by_id.get(id).map(|s| &s.call)
    }

    /// The call `e` is for and whether its ids disagree (`common::target`: the provider id
    /// wins), attaching the event's provider id to a call that has none yet. Done for every
    /// event, a duplicate too: where an event is stored depends only on the ids it carries.
    fn find_and_attach(&mut self, e: &ProviderEvent) -> Option<(String, bool)> {
        let by_pid = e.provider_call_id.as_ref().and_then(|pid| self.by_pid.get(pid)).map(String::as_str);
        let by_id = match by_pid {
            Some(_) => None,
            None => e.call_id.as_ref().and_then(|c| self.by_id.get(c.as_str())).map(|c| c.call.id.as_str()),
        };
        let id = match target(e, by_pid, by_id) {
            Target::Call(id) => id,
            Target::Mismatch(id) => {
                log_mismatch(e, &id);
                return Some((id, true));
            }
            Target::Unknown => return None,
        };
        // Another account's webhook (verified with that account's secret) never changes
        // this call: stored with it, mismatched, and the provider id not attached.
        if let (Some(route), Some(c)) = (&e.webhook, self.by_id.get(&id)) {
            if c.call.account_id != route.account_id {
                log_account_mismatch(e, &id);
                return Some((id, true));
            }
        }
        if let (Some(pid), Some(c)) = (&e.provider_call_id, self.by_id.get_mut(&id)) {
            if c.call.provider_call_id.is_none() {
                c.call.provider_call_id = Some(pid.clone());
                c.dirty = true;
                self.by_pid.insert(pid.clone(), id.clone());
            }
        }
        Some((id, false))
    }
}

fn log_account_mismatch(e: &ProviderEvent, call: &str) {
    let route = e.webhook.as_ref().and_then(|r| r.account_id.as_ref()).map_or("config", |a| a.as_str());
    tracing::warn!(call, event_account = route, dedupe_key = %e.dedupe_key,
        "event arrived on another provider account's webhook route than its call's: stored, not applied");
}

/// A call a batch ended.
#[derive(Debug, Clone)]
pub struct Ended {
    /// The call as it ended.
    pub call: Call,
    pub outcome: Outcome,
    /// The provider refused the call because the account was full: the attempt is given
    /// back rather than the contact moved on (`common::is_capacity_refusal`).
    pub capacity_refusal: bool,
}

/// One event row to store: the event, the call it is stored with (none: an orphan, kept
/// under its provider call id until a call takes that id), and its marks.
pub struct EventRow<'e> {
    pub event: &'e ProviderEvent,
    pub call_id: Option<&'e str>,
    pub workspace_id: Option<&'e str>,
    /// It changed its call (`Effect::changes`).
    pub applied: bool,
    /// Its ids name different calls: stored, applied to neither.
    pub mismatched: bool,
}

/// Stored marks that turned out wrong once the insert told the duplicates apart.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Remarks<'e> {
    /// Dedupe keys to mark applied.
    pub applied: Vec<&'e str>,
    /// Dedupe keys to mark not applied.
    pub not_applied: Vec<&'e str>,
}

/// What a batch of events does, worked out in memory (see the module docs).
pub struct BatchPlan<'e> {
    events: &'e [ProviderEvent],
    now: Timestamp,
    /// The calls as loaded, with the provider ids the batch attached.
    loaded: BatchCalls,
    /// The calls after the batch.
    calls: BatchCalls,
    /// Per event: the call it is stored with.
    targets: Vec<Option<String>>,
    mismatched: Vec<bool>,
    /// Per event: the first of its dedupe key in the batch (the one offered to the table).
    offered: Vec<bool>,
    /// Per event: stored by this batch (not a duplicate).
    new: Vec<bool>,
    /// Per event: the outcome reported to the caller.
    out: Vec<Applied>,
    /// Per event: it changed its call (stored marked `applied`).
    changed: Vec<bool>,
    ended: Vec<Ended>,
    corrected: Vec<Call>,
}

impl<'e> BatchPlan<'e> {
    /// Finds each event's call among `calls` and works the batch out as if every event
    /// offered (the first of each dedupe key) is new.
    pub fn new(mut calls: BatchCalls, events: &'e [ProviderEvent], now: Timestamp) -> BatchPlan<'e> {
        let found: Vec<Option<(String, bool)>> = events.iter().map(|e| calls.find_and_attach(e)).collect();
        let mut seen = HashSet::new();
        let offered: Vec<bool> = events.iter().map(|e| seen.insert(e.dedupe_key.as_str())).collect();
        let mut plan = BatchPlan {
            events,
            now,
            calls: calls.clone(),
            loaded: calls,
            targets: found.iter().map(|f| f.as_ref().map(|(id, _)| id.clone())).collect(),
            mismatched: found.iter().map(|f| f.as_ref().is_some_and(|(_, m)| *m)).collect(),
            new: offered.clone(),
            offered,
            out: vec![],
            changed: vec![],
            ended: vec![],
            corrected: vec![],
        };
        plan.work_out();
        plan
    }

    /// The rows to offer to the table, in batch order: the first event of each dedupe key
    /// (a repeat inside the batch is a duplicate like any other).
    pub fn rows(&self) -> Vec<EventRow<'_>> {
        let events = self.events;
        (0..events.len())
            .filter(|&i| self.offered[i])
            .map(|i| {
                let call = self.targets[i].as_deref().and_then(|id| self.loaded.by_id.get(id)).map(|s| &s.call);
                EventRow {
                    event: &events[i],
                    call_id: call.map(|c| c.id.as_str()),
                    workspace_id: call.map(|c| c.workspace_id.as_str()),
                    applied: self.changed[i],
                    mismatched: self.mismatched[i],
                }
            })
            .collect()
    }

    /// Takes the dedupe keys the insert stored (`inserted`): if an event offered was stored
    /// before (a provider's retry), works the batch out again without it and returns the
    /// marks that differ. Every mark is right afterwards.
    pub fn settle(&mut self, inserted: &HashSet<String>) -> Remarks<'e> {
        let events = self.events;
        let new: Vec<bool> = events.iter().zip(&self.offered).map(|(e, &o)| o && inserted.contains(e.dedupe_key.as_str())).collect();
        if new == self.new {
            return Remarks::default();
        }
        let stored = std::mem::take(&mut self.changed);
        self.new = new;
        self.calls = self.loaded.clone();
        self.work_out();
        let mut remarks = Remarks::default();
        for (i, e) in events.iter().enumerate() {
            if self.new[i] && self.changed[i] != stored[i] {
                let to = if self.changed[i] { &mut remarks.applied } else { &mut remarks.not_applied };
                to.push(e.dedupe_key.as_str());
            }
        }
        remarks
    }

    /// Applies each new, unmismatched event to its call, in batch order.
    fn work_out(&mut self) {
        let (mut out, mut changed, mut ended, mut corrected) = (vec![], vec![], vec![], vec![]);
        for (i, e) in self.events.iter().enumerate() {
            let slot = self.targets[i].as_ref().and_then(|id| self.calls.by_id.get_mut(id));
            let mut applied = Applied {
                call_id: slot.as_ref().map(|s| s.call.id.clone()),
                campaign_id: slot.as_ref().map(|s| s.call.campaign_id.clone()),
                duplicate: !self.new[i],
                transition: None,
                mismatched: self.mismatched[i],
            };
            let mut changes = false;
            if let (true, false, Some(s)) = (self.new[i], self.mismatched[i], slot) {
                let fx = apply_event(&mut s.call, &e.kind, e.cost, e.duration_ms, self.now);
                s.dirty = true;
                changes = fx.changes();
                if fx.corrected.is_some() {
                    corrected.push(s.call.clone());
                }
                if let Some(t) = fx.transition.as_ref().filter(|t| t.ends_call()) {
                    if let Some(outcome) = t.outcome {
                        ended.push(Ended { call: s.call.clone(), outcome, capacity_refusal: is_capacity_refusal(&e.kind) });
                    }
                }
                applied.transition = fx.transition;
            }
            changed.push(changes);
            out.push(applied);
        }
        (self.out, self.changed, self.ended, self.corrected) = (out, changed, ended, corrected);
    }

    /// The calls the batch changed (provider id attached, moved, or touched by a stale
    /// event), as they now stand.
    pub fn dirty_calls(&self) -> Vec<&Call> {
        let mut dirty: Vec<&Call> = self.calls.by_id.values().filter(|s| s.dirty).map(|s| &s.call).collect();
        dirty.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        dirty
    }

    /// A call as it stands after the batch.
    pub fn call(&self, id: &str) -> Option<&Call> {
        self.calls.get(id)
    }

    /// The calls the batch answered (their `answered_at` set by it), as they now stand.
    pub fn answered(&self) -> Vec<&Call> {
        self.dirty_calls().into_iter().filter(|c| c.answered_at.is_some() && self.loaded.get(c.id.as_str()).is_none_or(|l| l.answered_at.is_none())).collect()
    }

    /// The summary a report in this batch gives of `call`'s conversation (the last one).
    pub fn summary_of(&self, call: &str) -> Option<&str> {
        self.events
            .iter()
            .zip(&self.targets)
            .filter(|(_, t)| t.as_deref() == Some(call))
            .filter_map(|(e, _)| e.report.as_ref().and_then(|r| r.summary.as_deref()))
            .next_back()
    }

    /// Whether the batch stores the provider's end-of-call report on `call`
    /// ([`REPORT_TYPE`]): an event of the batch, new to the call, of that type.
    pub fn reports(&self, call: &str) -> bool {
        (0..self.events.len())
            .any(|i| self.new[i] && !self.mismatched[i] && self.targets[i].as_deref() == Some(call) && self.events[i].provider_type == REPORT_TYPE)
    }

    /// The calls the batch ended, in event order.
    pub fn ended(&self) -> &[Ended] {
        &self.ended
    }

    /// Ended calls whose outcome a late AMD verdict corrected, as corrected, in event order.
    pub fn corrected(&self) -> &[Call] {
        &self.corrected
    }

    /// One per event, in order.
    pub fn into_applied(self) -> Vec<Applied> {
        self.out
    }
}

/// The provider event type of an end-of-call report sent in a webhook of its own after the
/// end: Vapi's `end-of-call-report` (https://docs.vapi.ai/server-url/events), which the
/// simulator sends too. A `call.ended` waits for it (`shared::outbox::REPORT_WAIT`).
pub const REPORT_TYPE: &str = "end-of-call-report";

/// What an event does to `call` as it stands, as `dialtone_core::call::effect` decides:
/// moves it forward only, stores an AMD verdict it did not have and the outcome a late
/// verdict corrects, records the answer a late in-progress event brings, or, for a stale or
/// informational event, notes that the call is alive (`last_event_at`, for the reaper) and
/// fills in what the end did not carry (cost, duration). Then settles what an ended call's
/// record says of its answer ([`settle_answer`]). Changes `call` in memory.
pub fn apply_event(call: &mut Call, kind: &EventKind, cost: Option<f64>, duration_ms: Option<i64>, now: Timestamp) -> Effect {
    let fx = effect(&facts(call), kind);
    call.last_event_at = call.last_event_at.max(now);
    if let Some(answered_by) = fx.answered_by {
        call.answered_by = Some(answered_by);
        call.outcome = fx.corrected.or(call.outcome);
        call.updated_at = now;
    } else if let (Some(corrected), None) = (fx.corrected, &fx.transition) {
        // The voice pipeline's verdict on a call the provider already ended `completed`.
        call.outcome = Some(corrected);
        call.updated_at = now;
    } else if let Some(t) = fx.transition.clone() {
        if let EventKind::Ended { reason, .. } = kind {
            call.outcome = t.outcome;
            call.ended_reason = reason.clone().or(call.ended_reason.take());
        }
        if let EventKind::Voice { .. } = kind {
            call.outcome = t.outcome;
            call.ended_reason = call.ended_reason.take().or(Some("voice".to_string()));
        }
        call.cost = cost.or(call.cost);
        call.duration_ms = duration_ms.or(call.duration_ms);
        if t.to == CallStatus::InProgress && call.answered_at.is_none() {
            call.answered_at = Some(now);
        }
        if t.to.is_terminal() {
            call.ended_at = Some(now);
        }
        call.status = t.to;
        call.updated_at = now;
    } else {
        call.cost = call.cost.or(cost);
        call.duration_ms = call.duration_ms.or(duration_ms);
    }
    settle_answer(call, fx.late_answer, now);
    fx
}

/// Makes an ended call's record say the same of its answer whatever order its events came
/// in, and whether or not its in-progress event came at all (webhooks get lost and reorder):
/// - a call that was never answered (no `answered_at`, an outcome that is not
///   [`Outcome::is_answered`], no late in-progress) has no talk time: `duration_ms` null,
///   whatever the provider reported (Twilio's `CallDuration` is `0` on `no-answer` and
///   `busy`; Vapi's `endedAt − startedAt` of an unanswered call is its ringing);
/// - an answered call without `answered_at` (its in-progress came after the end, or never)
///   was answered `duration_ms` before it ended, when the provider reported its talk time;
///   without a duration, a late in-progress puts it at the end (no later than that), and an
///   answered outcome alone leaves it unknown until the report brings the duration.
///
/// Setting `answered_at` here is what makes the batch send the call's `call.started`
/// ([`BatchPlan::answered`]), as it would have in order.
fn settle_answer(call: &mut Call, late_answer: bool, now: Timestamp) {
    if !call.status.is_terminal() {
        return;
    }
    let answered = call.answered_at.is_some() || late_answer || call.outcome.is_some_and(Outcome::is_answered);
    if !answered {
        call.duration_ms = None;
        return;
    }
    if call.answered_at.is_some() {
        return;
    }
    let ended = call.ended_at.unwrap_or(now);
    let earliest = call.dialed_at.unwrap_or(call.created_at);
    let at = match call.duration_ms {
        Some(ms) => ended.checked_sub(jiff::SignedDuration::from_millis(ms)).unwrap_or(earliest).max(earliest).min(ended),
        None if late_answer => ended,
        None => return,
    };
    call.answered_at = Some(at);
    call.updated_at = now;
}

/// What moving a contact on after its call ended needs to know: the contact, its campaign,
/// and how many of its calls ended with this outcome (`occurrences`, this one included).
/// Read by `AFTER_CALL_COLUMNS` on both backends.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AfterCallRow {
    pub contact_id: String,
    pub attempts: i64,
    pub timezone: Option<String>,
    pub timezones: Option<String>,
    pub contact_recurrence: Option<String>,
    pub max_attempts: i64,
    pub retry_policy: String,
    pub assume_campaign_timezone_for_ambiguous: bool,
    pub calling_hours: String,
    pub campaign_status: String,
    pub campaign_recurrence: String,
    pub kind: String,
    pub schedule: String,
    pub provider: String,
    pub workspace_id: String,
    pub occurrences: i64,
}

/// The select list of an [`AfterCallRow`], over `contacts c`, `campaigns cam` and a row `t`
/// holding the ended call's `outcome`.
pub const AFTER_CALL_COLUMNS: &str = "c.id AS contact_id, c.attempts, c.timezone, c.timezones, c.recurrence AS contact_recurrence,
    cam.max_attempts, cam.retry_policy, cam.assume_campaign_timezone_for_ambiguous, cam.calling_hours,
    cam.status AS campaign_status, cam.recurrence AS campaign_recurrence, cam.kind, cam.schedule, cam.provider, cam.workspace_id,
    (SELECT COUNT(*) FROM calls k WHERE k.contact_id = c.id AND k.outcome = t.outcome) AS occurrences";

/// A contact's next step after its call ended.
#[derive(Debug, Clone, PartialEq)]
pub struct NextStep {
    pub status: ContactStatus,
    /// `contacts.next_attempt_at`: when it is due again (now, if finished).
    pub next_at: Timestamp,
    pub last_outcome: Outcome,
    /// A recurring single call shows its next occurrence as a `scheduled` call row of this
    /// attempt number, due at `next_at`.
    pub schedule_attempt: Option<u32>,
}

/// Decides what a contact does after `call` ended with `outcome`: retry later, finish, or
/// (recurring) wait for its next occurrence (`AfterCall::decide`). An inbound caller is
/// never called back: done whatever the outcome. A single call's retry or next occurrence
/// is moved into its calling hours (`common::single_call_due`). Errors only on a stored
/// column that cannot be read.
pub fn next_step(row: &AfterCallRow, call: &Call, outcome: Outcome, now: Timestamp) -> Result<NextStep> {
    let policy = retry_policy(&row.retry_policy)?;
    let attempts = row.attempts as u32;
    let recurrence: Recurrence = json(row.contact_recurrence.as_deref().unwrap_or(&row.campaign_recurrence), "recurrence")?;
    let schedule: Schedule = json(&row.schedule, "schedule")?;
    let zones = contact_zones(row.timezone.as_deref(), row.timezones.as_deref(), &schedule, row.assume_campaign_timezone_for_ambiguous);
    let (status, next_at) = if row.kind == INBOUND_KIND {
        (ContactStatus::Done, now)
    } else {
        AfterCall {
            outcome,
            occurrences: row.occurrences as u32,
            attempts,
            max_attempts: row.max_attempts as u32,
            policy: &policy,
            recurrence: &recurrence,
            zones: &zones,
            campaign_canceled: row.campaign_status == "canceled",
            call_id: call.id.as_str(),
            now,
        }
        .decide()
    };
    let next_at = match status {
        ContactStatus::Pending => single_call_due(&row.kind, next_at, &schedule, &row.calling_hours, &zones)?,
        _ => next_at,
    };
    let recurring_single = status == ContactStatus::Pending && row.kind == "single_calls" && recurrence.frequency != Frequency::Once;
    Ok(NextStep { status, next_at, last_outcome: outcome, schedule_attempt: recurring_single.then_some(attempts + 1) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dialtone_core::{AnsweredBy, CallId, CampaignId, ContactId, Direction, PhoneNumber, ProviderKind, WorkspaceId};

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_900_000_000 + secs).unwrap()
    }

    fn call(id: &str, pid: Option<&str>, status: CallStatus) -> Call {
        Call {
            id: CallId::from_db(id.to_string()),
            workspace_id: WorkspaceId::from_db("ws_1".to_string()),
            campaign_id: CampaignId::from_db("cmp_1".to_string()),
            contact_id: ContactId::from_db(format!("ct_{id}")),
            attempt: 1,
            direction: Direction::Outbound,
            provider: ProviderKind::Sim,
            account_id: None,
            provider_call_id: pid.map(str::to_string),
            phone: PhoneNumber::from_db("+14155550100".to_string()),
            caller_number: None,
            status,
            outcome: None,
            ended_reason: None,
            cost: None,
            duration_ms: None,
            created_at: t(0),
            updated_at: t(0),
            scheduled_for: None,
            placing_at: None,
            dialed_at: None,
            answered_at: None,
            ended_at: None,
            last_event_at: t(0),
            answered_by: None,
            transcript: None,
            voicemail_left: false,
            duration_secs: None,
            summary: None,
            recording_url: None,
            name: None,
            variables: None,
        }
    }

    fn ev(key: &str, ours: Option<&str>, pid: Option<&str>, kind: EventKind) -> ProviderEvent {
        ProviderEvent {
            provider_type: "status-update".into(),
            provider_call_id: pid.map(str::to_string),
            call_id: ours.map(|c| CallId::from_db(c.to_string())),
            kind,
            dedupe_key: key.into(),
            occurred_at: None,
            cost: None,
            duration_ms: None,
            report: None,
            raw: dialtone_core::RawJson::null(),
            webhook: None,
        }
    }

    fn ended(o: Outcome, reason: Option<&str>) -> EventKind {
        EventKind::Ended { outcome: o, reason: reason.map(str::to_string) }
    }

    #[test]
    fn a_provider_id_attached_by_an_event_finds_the_call_for_the_later_events_of_the_batch() {
        let calls = BatchCalls::new([call("call_a", None, CallStatus::Queued)]);
        let events = [ev("1", Some("call_a"), Some("p1"), EventKind::Progress(CallStatus::Ringing)), ev("2", None, Some("p1"), ended(Outcome::Busy, None))];
        let plan = BatchPlan::new(calls, &events, t(5));
        let rows = plan.rows();
        assert_eq!(rows.iter().map(|r| (r.call_id, r.applied)).collect::<Vec<_>>(), vec![(Some("call_a"), true), (Some("call_a"), true)]);
        let a = plan.call("call_a").unwrap();
        assert_eq!((a.provider_call_id.as_deref(), a.status, a.outcome, a.ended_at), (Some("p1"), CallStatus::Ended, Some(Outcome::Busy), Some(t(5))));
        assert_eq!(plan.ended().iter().map(|e| (e.outcome, e.capacity_refusal)).collect::<Vec<_>>(), vec![(Outcome::Busy, false)]);
        assert_eq!(plan.dirty_calls().len(), 1);
    }

    #[test]
    fn a_webhook_changes_only_calls_of_the_account_whose_route_brought_it() {
        use dialtone_core::{ProviderAccountId, WebhookRoute};
        let (acct_a, acct_b) = (ProviderAccountId::from_db("pa_a".to_string()), ProviderAccountId::from_db("pa_b".to_string()));
        let mut on_a = call("call_a", None, CallStatus::Dialing);
        on_a.account_id = Some(acct_a.clone());
        let on_config = call("call_c", Some("p3"), CallStatus::Dialing);
        let via = |account: Option<&ProviderAccountId>, mut e: ProviderEvent| {
            e.webhook = Some(WebhookRoute { account_id: account.cloned() });
            e
        };
        let live = || EventKind::Progress(CallStatus::InProgress);
        let events = [
            // B's route names A's call (by our id, with a provider id): stored with it, not applied, no id attached.
            via(Some(&acct_b), ev("b", Some("call_a"), Some("p1"), live())),
            // The config's route: the same.
            via(None, ev("cfg", Some("call_a"), None, live())),
            // A's own route applies; so does the config's route to a config call.
            via(Some(&acct_a), ev("a", Some("call_a"), None, live())),
            via(None, ev("c", None, Some("p3"), live())),
            // A workspace route never reaches a config call.
            via(Some(&acct_a), ev("a-on-c", None, Some("p3"), ended(Outcome::Busy, None))),
            // No route (the engine's own, or a lookup through the call's account): applies.
            ev("engine", Some("call_a"), None, ended(Outcome::Completed, None)),
        ];
        let plan = BatchPlan::new(BatchCalls::new([on_a, on_config]), &events, t(5));
        let rows: Vec<_> = plan.rows().iter().map(|r| (r.call_id, r.applied, r.mismatched)).collect();
        assert_eq!(
            rows,
            vec![
                (Some("call_a"), false, true),
                (Some("call_a"), false, true),
                (Some("call_a"), true, false),
                (Some("call_c"), true, false),
                (Some("call_c"), false, true),
                (Some("call_a"), true, false),
            ]
        );
        let a = plan.call("call_a").unwrap();
        assert_eq!(
            (a.provider_call_id.as_deref(), a.status, a.outcome),
            (None, CallStatus::Ended, Some(Outcome::Completed)),
            "B's provider id was not attached"
        );
        assert_eq!(plan.call("call_c").unwrap().status, CallStatus::InProgress);
    }

    #[test]
    fn an_event_stored_before_is_left_out_and_the_marks_it_changed_are_corrected() {
        let calls = BatchCalls::new([call("call_a", Some("p1"), CallStatus::Dialing)]);
        let events = [ev("old-end", None, Some("p1"), ended(Outcome::Completed, None)), ev("live", None, Some("p1"), EventKind::Progress(CallStatus::Ringing))];
        let mut plan = BatchPlan::new(calls, &events, t(5));
        // As if new: the end moves the call, and the later progress is stale.
        assert_eq!(plan.rows().iter().map(|r| r.applied).collect::<Vec<_>>(), vec![true, false]);
        let remarks = plan.settle(&HashSet::from(["live".to_string()]));
        assert_eq!(remarks, Remarks { applied: vec!["live"], not_applied: vec![] }, "the stored duplicate keeps its own mark");
        assert_eq!(plan.call("call_a").unwrap().status, CallStatus::Ringing);
        assert!(plan.ended().is_empty());
        let out = plan.into_applied();
        assert_eq!(out.iter().map(|a| a.duplicate).collect::<Vec<_>>(), vec![true, false]);
    }

    #[test]
    fn ids_naming_different_calls_move_neither_and_a_late_machine_verdict_corrects_the_outcome() {
        let mut done = call("call_b", Some("p2"), CallStatus::Ended);
        done.outcome = Some(Outcome::Completed);
        let calls = BatchCalls::new([call("call_a", Some("p1"), CallStatus::Ringing), done]);
        let events = [
            ev("x", Some("call_a"), Some("p2"), ended(Outcome::Busy, None)),
            ev("amd", None, Some("p2"), EventKind::Amd { answered_by: AnsweredBy::Machine }),
            ev("cap", None, Some("p1"), ended(Outcome::Failed, Some(crate::common::CAPACITY_REASONS[0]))),
        ];
        let plan = BatchPlan::new(calls, &events, t(7));
        let rows = plan.rows();
        assert_eq!((rows[0].call_id, rows[0].mismatched, rows[0].applied), (Some("call_b"), true, false), "stored with the provider id's call");
        assert_eq!(plan.corrected().iter().map(|c| (c.id.as_str(), c.outcome)).collect::<Vec<_>>(), vec![("call_b", Some(Outcome::Voicemail))]);
        assert_eq!(plan.ended().iter().map(|e| (e.call.id.as_str(), e.capacity_refusal)).collect::<Vec<_>>(), vec![("call_a", true)]);
    }

    fn answered_and_duration(events: &[ProviderEvent]) -> (Option<Timestamp>, Option<i64>, usize) {
        let mut dialed = call("call_a", Some("p1"), CallStatus::Dialing);
        dialed.dialed_at = Some(t(1));
        let mut started = 0;
        let mut calls = BatchCalls::new([dialed]);
        // One batch per event, at 10 s apart: the order of arrival is the order of the list.
        for (i, e) in events.iter().enumerate() {
            let plan = BatchPlan::new(calls, std::slice::from_ref(e), t(10 * (i as i64 + 1)));
            started += plan.answered().len();
            calls = BatchCalls::new(plan.dirty_calls().into_iter().cloned());
        }
        let c = calls.get("call_a").unwrap();
        (c.answered_at, c.duration_ms, started)
    }

    #[test]
    fn an_answered_call_is_on_record_as_answered_whatever_order_its_events_came_in() {
        let live = ev("live", None, Some("p1"), EventKind::Progress(CallStatus::InProgress));
        let mut end = ev("end", None, Some("p1"), ended(Outcome::Completed, Some("completed")));
        end.duration_ms = Some(7_000);
        // In order: answered when the in-progress came (t 10), the end at t 20.
        assert_eq!(answered_and_duration(&[live.clone(), end.clone()]), (Some(t(10)), Some(7_000), 1));
        // The end first: answered its talk time before it ended (t 10 − 7 s), once.
        assert_eq!(answered_and_duration(&[end.clone(), live.clone()]), (Some(t(3)), Some(7_000), 1));
        // The in-progress never came: the same, from the end alone.
        assert_eq!(answered_and_duration(std::slice::from_ref(&end)), (Some(t(3)), Some(7_000), 1));
        // No duration at all: a late in-progress says answered, no later than the end.
        let mut bare = end.clone();
        bare.duration_ms = None;
        assert_eq!(answered_and_duration(&[bare.clone(), live.clone()]), (Some(t(10)), None, 1));
        // … and the end alone leaves the answer time unknown until a report brings the talk time.
        assert_eq!(answered_and_duration(std::slice::from_ref(&bare)), (None, None, 0));
        let mut report = ev("report", None, Some("p1"), EventKind::Info);
        report.duration_ms = Some(4_000);
        assert_eq!(answered_and_duration(&[bare, report]), (Some(t(6)), Some(4_000), 1));
        // A talk time longer than the call was placed: no earlier than it was dialled.
        let mut long = end;
        long.duration_ms = Some(60_000);
        assert_eq!(answered_and_duration(&[long]).0, Some(t(1)));
    }

    #[test]
    fn a_call_nobody_answered_has_no_duration_whatever_the_provider_reported() {
        for o in [Outcome::NoAnswer, Outcome::Busy, Outcome::Failed, Outcome::InvalidNumber, Outcome::Canceled, Outcome::Timeout] {
            // Twilio's `CallDuration` is 0 on `no-answer`; Vapi's times give the ringing.
            for reported in [0, 12_000] {
                let mut end = ev("end", None, Some("p1"), ended(o, None));
                end.duration_ms = Some(reported);
                let mut late = ev("late", None, Some("p1"), EventKind::Info);
                late.duration_ms = Some(reported);
                assert_eq!(answered_and_duration(&[end, late]), (None, None, 0), "{o} {reported}");
            }
        }
        // An in-progress after an end that says nobody picked up: the end stands.
        let live = ev("live", None, Some("p1"), EventKind::Progress(CallStatus::InProgress));
        assert_eq!(answered_and_duration(&[ev("end", None, Some("p1"), ended(Outcome::NoAnswer, None)), live]), (None, None, 0));
        // Answered before it failed (a pipeline error mid-call): the talk time stands.
        let live = ev("live", None, Some("p1"), EventKind::Progress(CallStatus::InProgress));
        let mut end = ev("end", None, Some("p1"), ended(Outcome::Failed, Some("pipeline-error-openai-llm-failed")));
        end.duration_ms = Some(5_000);
        assert_eq!(answered_and_duration(&[live, end]), (Some(t(10)), Some(5_000), 1));
    }

    fn after_call(kind: &str, recurrence: &str) -> AfterCallRow {
        AfterCallRow {
            contact_id: "ct_call_a".into(),
            attempts: 1,
            timezone: None,
            timezones: None,
            contact_recurrence: None,
            max_attempts: 3,
            retry_policy: serde_json::to_string(&dialtone_core::RetryPolicy::uniform(3, jiff::SignedDuration::from_mins(5))).unwrap(),
            assume_campaign_timezone_for_ambiguous: false,
            calling_hours: r#"{"start":"00:00","end":"00:00"}"#.into(),
            campaign_status: "running".into(),
            campaign_recurrence: recurrence.into(),
            kind: kind.into(),
            schedule: serde_json::to_string(&Schedule::always("UTC")).unwrap(),
            provider: "sim".into(),
            workspace_id: "ws_1".into(),
            occurrences: 1,
        }
    }

    #[test]
    fn an_inbound_caller_is_done_whatever_the_outcome_and_a_campaign_contact_retries() {
        let once = serde_json::to_string(&Recurrence::new(Frequency::Once)).unwrap();
        let c = call("call_a", None, CallStatus::Ended);
        let inbound = next_step(&after_call(INBOUND_KIND, &once), &c, Outcome::NoAnswer, t(9)).unwrap();
        assert_eq!((inbound.status, inbound.next_at, inbound.schedule_attempt), (ContactStatus::Done, t(9), None));
        let retry = next_step(&after_call("campaign", &once), &c, Outcome::NoAnswer, t(9)).unwrap();
        assert_eq!((retry.status, retry.last_outcome, retry.schedule_attempt), (ContactStatus::Pending, Outcome::NoAnswer, None));
        assert!(retry.next_at > t(9));
    }
}
