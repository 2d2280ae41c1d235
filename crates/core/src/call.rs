//! The call (one attempt) state machine. States only move forward: each has a rank and an
//! event that would not raise the rank changes nothing, so late, duplicate and
//! out-of-order webhooks are harmless.

use crate::event::{AnsweredBy, EventKind};
use crate::text_enum;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// A single call waiting for its time (`scheduled_for`); holds no slot yet.
    Scheduled,
    /// Created before the provider request; already holds a slot.
    Queued,
    /// The provider accepted the call; its id is stored.
    Dialing,
    Ringing,
    InProgress,
    Ended,
    /// The provider refused the call for good.
    Failed,
    Canceled,
}

text_enum!(CallStatus, "call status", {
    Scheduled => "scheduled", Queued => "queued", Dialing => "dialing", Ringing => "ringing", InProgress => "in_progress",
    Ended => "ended", Failed => "failed", Canceled => "canceled",
});

impl CallStatus {
    pub const ACTIVE: &'static [CallStatus] = &[Self::Queued, Self::Dialing, Self::Ringing, Self::InProgress];

    pub fn rank(self) -> u8 {
        match self {
            Self::Scheduled => 0,
            Self::Queued => 1,
            Self::Dialing => 2,
            Self::Ringing => 3,
            Self::InProgress => 4,
            Self::Ended | Self::Failed | Self::Canceled => 5,
        }
    }

    /// Active calls hold a concurrency slot.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Queued | Self::Dialing | Self::Ringing | Self::InProgress)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Ended | Self::Failed | Self::Canceled)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Completed,
    NoAnswer,
    /// Answered by a person who never spoke to dialtone's own voice pipeline (an agent's
    /// `no_response_prompt` and `goodbye` went unanswered). Only an agent call ends so.
    NoResponse,
    Busy,
    Voicemail,
    Failed,
    InvalidNumber,
    Canceled,
    Timeout,
}

text_enum!(Outcome, "outcome", {
    Completed => "completed", NoAnswer => "no_answer", NoResponse => "no_response", Busy => "busy", Voicemail => "voicemail",
    Failed => "failed", InvalidNumber => "invalid_number", Canceled => "canceled", Timeout => "timeout",
});

impl Outcome {
    /// Whether a call that ends so was picked up, by a person or a machine: `completed`,
    /// `voicemail`, `no_response`. Such a call has talk time and an answer time even when
    /// the provider's in-progress event never came or came after the end.
    pub fn is_answered(self) -> bool {
        matches!(self, Outcome::Completed | Outcome::Voicemail | Outcome::NoResponse)
    }

    /// Whether an end with this outcome says nobody picked up: `no_answer`, `busy`,
    /// `invalid_number`. (A `failed`, `canceled` or `timeout` call may or may not have been
    /// answered first: its in-progress event says.)
    pub fn is_unanswered(self) -> bool {
        matches!(self, Outcome::NoAnswer | Outcome::Busy | Outcome::InvalidNumber)
    }

    /// The terminal status an outcome puts a call in. A call that fails before the
    /// provider accepted it (still QUEUED) is FAILED rather than ENDED.
    pub fn terminal_status(self, current: CallStatus) -> CallStatus {
        match self {
            Outcome::Canceled => CallStatus::Canceled,
            Outcome::Failed if current.rank() <= CallStatus::Queued.rank() => CallStatus::Failed,
            _ => CallStatus::Ended,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    Outbound,
    Inbound,
}

text_enum!(Direction, "direction", { Outbound => "outbound", Inbound => "inbound" });

/// What applying an event does to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: CallStatus,
    pub to: CallStatus,
    /// Set when the call ends with this transition.
    pub outcome: Option<Outcome>,
}

impl Transition {
    pub fn ends_call(&self) -> bool {
        self.from.is_active() && self.to.is_terminal()
    }
}

/// Decides what an event does to a call now in `current`. `None` means the event is
/// stale, duplicate or informational: it is recorded but changes nothing.
pub fn apply(current: CallStatus, event: &EventKind) -> Option<Transition> {
    let (to, outcome) = match event {
        EventKind::Progress(status) if status.is_active() => (*status, None),
        EventKind::Progress(_) | EventKind::Info | EventKind::Amd { .. } => return None,
        EventKind::Ended { outcome, .. } | EventKind::Voice { outcome } => (outcome.terminal_status(current), Some(*outcome)),
    };
    (to.rank() > current.rank()).then_some(Transition { from: current, to, outcome })
}

/// What the event rules need to know of a call as it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallFacts {
    pub status: CallStatus,
    pub outcome: Option<Outcome>,
    /// The AMD verdict stored on the call, if one came.
    pub answered_by: Option<AnsweredBy>,
    /// Whether the call's answer is on record (`answered_at` is set).
    pub answered: bool,
}

/// Everything one event does to a call: both store backends write exactly this.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Effect {
    /// The state move, if any (see [`apply`]); its outcome already accounts for AMD.
    pub transition: Option<Transition>,
    /// An AMD verdict the call did not have: store it on the call.
    pub answered_by: Option<AnsweredBy>,
    /// A late verdict rewrites the outcome of a call that already ended: set the call's
    /// (and its contact's last) outcome to this. The contact's next step is not decided
    /// again (it was decided when the call ended).
    pub corrected: Option<Outcome>,
    /// An in-progress event that came after the call's end, on a call whose answer is not on
    /// record: the call was answered, so record it (`answered_at`) as the events in order
    /// would have. Nothing else about the ended call changes.
    pub late_answer: bool,
}

impl Effect {
    /// Whether the event changed anything (it is then stored marked `applied`).
    pub fn changes(&self) -> bool {
        self.transition.is_some() || self.answered_by.is_some() || self.corrected.is_some() || self.late_answer
    }
}

/// Decides what `event` does to `call`. The rule for answering-machine detection, which
/// Twilio reports in a callback of its own (`AsyncAmdStatusCallback`), in any order with
/// the call's `completed` status callback, which then carries no `AnsweredBy`:
/// - the first verdict stored on a call is kept: a replay or a second opinion changes
///   nothing, so the outcome does not depend on how many copies arrived;
/// - a `machine` verdict (any `machine_*`, or `fax`) makes a call that ends `completed`
///   a `voicemail`, whether it came before the end (the end is recorded as `voicemail`)
///   or after it (the ended call's outcome is corrected to `voicemail`);
/// - a `human` or `unknown` verdict is stored and leaves the outcome as the end says;
/// - any other outcome (busy, no answer, …) is never changed by a verdict.
///
/// The voice pipeline's verdict ([`EventKind::Voice`]) ends an active call with its own
/// outcome (an AMD verdict stored before does not turn it into `voicemail`: the pipeline
/// listened to the callee and decides), and corrects a call the provider already ended
/// plain `completed` (the status callback won the race), like a late AMD verdict.
///
/// An in-progress event that comes after the end (webhooks are not ordered: Twilio's
/// `in-progress` and `completed` callbacks are separate requests) cannot move the call back,
/// but says it was answered: [`Effect::late_answer`], unless the call never reached the
/// provider (status `failed`), its end says nobody picked up ([`Outcome::is_unanswered`]:
/// the end stands, as it does against a second end) or its answer is already on record.
pub fn effect(call: &CallFacts, event: &EventKind) -> Effect {
    if let EventKind::Progress(CallStatus::InProgress) = event {
        let contradicted = call.outcome.is_some_and(Outcome::is_unanswered);
        if call.status.is_terminal() && call.status != CallStatus::Failed && !call.answered && !contradicted {
            return Effect { late_answer: true, ..Effect::default() };
        }
    }
    if let EventKind::Voice { outcome } = event {
        if call.status == CallStatus::Ended && call.outcome == Some(Outcome::Completed) && *outcome != Outcome::Completed {
            return Effect { corrected: Some(*outcome), ..Effect::default() };
        }
        return Effect { transition: apply(call.status, event), ..Effect::default() };
    }
    if let EventKind::Amd { answered_by } = event {
        if call.answered_by.is_some() {
            return Effect::default();
        }
        let late_machine = *answered_by == AnsweredBy::Machine && call.status == CallStatus::Ended && call.outcome == Some(Outcome::Completed);
        return Effect { answered_by: Some(*answered_by), corrected: late_machine.then_some(Outcome::Voicemail), ..Effect::default() };
    }
    let mut transition = apply(call.status, event);
    if let Some(t) = &mut transition {
        if t.outcome == Some(Outcome::Completed) && call.answered_by == Some(AnsweredBy::Machine) {
            t.outcome = Some(Outcome::Voicemail);
        }
    }
    Effect { transition, ..Effect::default() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ended(o: Outcome) -> EventKind {
        EventKind::Ended { outcome: o, reason: None }
    }

    #[test]
    fn a_call_moves_forward_through_its_lifecycle() {
        let t = apply(CallStatus::Dialing, &EventKind::Progress(CallStatus::Ringing)).unwrap();
        assert_eq!(t.to, CallStatus::Ringing);
        let t = apply(CallStatus::Ringing, &EventKind::Progress(CallStatus::InProgress)).unwrap();
        assert_eq!(t.to, CallStatus::InProgress);
        let t = apply(CallStatus::InProgress, &ended(Outcome::Completed)).unwrap();
        assert_eq!((t.to, t.outcome), (CallStatus::Ended, Some(Outcome::Completed)));
        assert!(t.ends_call());
    }

    #[test]
    fn late_events_never_move_a_call_back() {
        assert_eq!(apply(CallStatus::InProgress, &EventKind::Progress(CallStatus::Ringing)), None);
        assert_eq!(apply(CallStatus::Ended, &EventKind::Progress(CallStatus::InProgress)), None);
        assert_eq!(apply(CallStatus::Ended, &ended(Outcome::Busy)), None);
        assert_eq!(apply(CallStatus::Ringing, &EventKind::Progress(CallStatus::Ringing)), None);
    }

    #[test]
    fn an_end_can_arrive_before_any_progress() {
        let t = apply(CallStatus::Queued, &ended(Outcome::NoAnswer)).unwrap();
        assert_eq!(t.to, CallStatus::Ended);
        let t = apply(CallStatus::Dialing, &ended(Outcome::Canceled)).unwrap();
        assert_eq!(t.to, CallStatus::Canceled);
    }

    #[test]
    fn a_refused_placement_is_failed_not_ended() {
        assert_eq!(apply(CallStatus::Queued, &ended(Outcome::Failed)).unwrap().to, CallStatus::Failed);
        assert_eq!(apply(CallStatus::Ringing, &ended(Outcome::Failed)).unwrap().to, CallStatus::Ended);
    }

    #[test]
    fn the_voice_verdict_ends_a_live_call_and_corrects_a_plain_completed_one() {
        let voice = |o| EventKind::Voice { outcome: o };
        // Before the provider's end: the call ends with the pipeline's outcome, even over a
        // machine verdict (the pipeline listened to the whole call).
        let fx = effect(&facts(CallStatus::InProgress, None, Some(AnsweredBy::Machine)), &voice(Outcome::Completed));
        assert_eq!(fx.transition.unwrap().outcome, Some(Outcome::Completed));
        // After the provider's plain `completed`: corrected, like a late AMD verdict.
        let fx = effect(&facts(CallStatus::Ended, Some(Outcome::Completed), None), &voice(Outcome::Voicemail));
        assert_eq!((fx.transition, fx.corrected), (None, Some(Outcome::Voicemail)));
        // Agreeing, or after any other end (busy, failed): nothing changes.
        assert!(!effect(&facts(CallStatus::Ended, Some(Outcome::Completed), None), &voice(Outcome::Completed)).changes());
        assert!(!effect(&facts(CallStatus::Ended, Some(Outcome::Busy), None), &voice(Outcome::Voicemail)).changes());
        // And the provider's end after the verdict is stale.
        assert_eq!(apply(CallStatus::Ended, &ended(Outcome::Completed)), None);
    }

    fn facts(status: CallStatus, outcome: Option<Outcome>, answered_by: Option<AnsweredBy>) -> CallFacts {
        CallFacts { status, outcome, answered_by, answered: false }
    }

    fn amd(a: AnsweredBy) -> EventKind {
        EventKind::Amd { answered_by: a }
    }

    #[test]
    fn a_machine_verdict_before_completed_makes_the_end_a_voicemail() {
        let live = facts(CallStatus::InProgress, None, None);
        let e = effect(&live, &amd(AnsweredBy::Machine));
        assert_eq!(e, Effect { answered_by: Some(AnsweredBy::Machine), ..Effect::default() });
        let heard = facts(CallStatus::InProgress, None, Some(AnsweredBy::Machine));
        let end = effect(&heard, &ended(Outcome::Completed)).transition.unwrap();
        assert_eq!((end.to, end.outcome), (CallStatus::Ended, Some(Outcome::Voicemail)));
    }

    #[test]
    fn a_machine_verdict_after_completed_corrects_the_outcome() {
        let done = facts(CallStatus::Ended, Some(Outcome::Completed), None);
        let e = effect(&done, &amd(AnsweredBy::Machine));
        assert_eq!((&e.transition, e.answered_by, e.corrected), (&None, Some(AnsweredBy::Machine), Some(Outcome::Voicemail)));
        assert!(e.changes());
    }

    #[test]
    fn a_human_or_unknown_verdict_leaves_completed_completed() {
        for a in [AnsweredBy::Human, AnsweredBy::Unknown] {
            let heard = facts(CallStatus::InProgress, None, Some(a));
            assert_eq!(effect(&heard, &ended(Outcome::Completed)).transition.unwrap().outcome, Some(Outcome::Completed));
            let done = facts(CallStatus::Ended, Some(Outcome::Completed), None);
            assert_eq!(effect(&done, &amd(a)).corrected, None, "{a}");
        }
    }

    #[test]
    fn the_first_verdict_stays_and_a_duplicate_changes_nothing() {
        let heard = facts(CallStatus::InProgress, None, Some(AnsweredBy::Human));
        assert!(!effect(&heard, &amd(AnsweredBy::Machine)).changes());
        let done = facts(CallStatus::Ended, Some(Outcome::Voicemail), Some(AnsweredBy::Machine));
        assert!(!effect(&done, &amd(AnsweredBy::Machine)).changes());
    }

    #[test]
    fn a_verdict_never_changes_an_outcome_other_than_completed() {
        for o in [Outcome::Busy, Outcome::NoAnswer, Outcome::NoResponse, Outcome::Failed, Outcome::Canceled, Outcome::Timeout] {
            let done = facts(o.terminal_status(CallStatus::Ringing), Some(o), None);
            assert_eq!(effect(&done, &amd(AnsweredBy::Machine)).corrected, None, "{o}");
            let heard = facts(CallStatus::Ringing, None, Some(AnsweredBy::Machine));
            assert_eq!(effect(&heard, &ended(o)).transition.unwrap().outcome, Some(o), "{o}");
        }
    }

    #[test]
    fn an_in_progress_after_the_end_records_the_answer_and_nothing_else() {
        let progress = EventKind::Progress(CallStatus::InProgress);
        for status in [CallStatus::Ended, CallStatus::Canceled] {
            let fx = effect(&facts(status, Some(Outcome::Completed), None), &progress);
            assert_eq!(fx, Effect { late_answer: true, ..Effect::default() }, "{status}");
            assert!(fx.changes());
        }
        // Once on record, a second copy changes nothing; a call that never reached the
        // provider was not answered; a live call simply moves forward.
        let on_record = CallFacts { answered: true, ..facts(CallStatus::Ended, Some(Outcome::Completed), None) };
        assert!(!effect(&on_record, &progress).changes());
        assert!(!effect(&facts(CallStatus::Failed, Some(Outcome::Failed), None), &progress).changes());
        assert!(effect(&facts(CallStatus::Ended, Some(Outcome::Failed), None), &progress).late_answer, "failed mid-call");
        for nobody in [Outcome::NoAnswer, Outcome::Busy, Outcome::InvalidNumber] {
            assert!(!effect(&facts(CallStatus::Ended, Some(nobody), None), &progress).changes(), "the end stands: {nobody}");
        }
        let live = effect(&facts(CallStatus::Ringing, None, None), &progress);
        assert_eq!((live.late_answer, live.transition.map(|t| t.to)), (false, Some(CallStatus::InProgress)));
        // Ringing after the end says nothing about an answer.
        assert!(!effect(&facts(CallStatus::Ended, Some(Outcome::Completed), None), &EventKind::Progress(CallStatus::Ringing)).changes());
    }

    #[test]
    fn answered_outcomes_are_the_picked_up_ones() {
        let answered: Vec<_> = Outcome::ALL.iter().copied().filter(|o| o.is_answered()).collect();
        assert_eq!(answered, [Outcome::Completed, Outcome::NoResponse, Outcome::Voicemail]);
        let nobody: Vec<_> = Outcome::ALL.iter().copied().filter(|o| o.is_unanswered()).collect();
        assert_eq!(nobody, [Outcome::NoAnswer, Outcome::Busy, Outcome::InvalidNumber]);
    }

    #[test]
    fn twilio_verdicts_map_to_machine_human_or_unknown() {
        for v in ["machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"] {
            assert_eq!(AnsweredBy::from_twilio(v), AnsweredBy::Machine, "{v}");
        }
        assert_eq!(AnsweredBy::from_twilio("human"), AnsweredBy::Human);
        assert_eq!(AnsweredBy::from_twilio("unknown"), AnsweredBy::Unknown);
        assert_eq!(AnsweredBy::from_twilio("ß-not-a-verdict"), AnsweredBy::Unknown);
    }

    fn any_event() -> impl Strategy<Value = EventKind> {
        prop_oneof![
            Just(EventKind::Info),
            prop::sample::select(CallStatus::ALL.to_vec()).prop_map(EventKind::Progress),
            prop::sample::select(Outcome::ALL.to_vec()).prop_map(ended),
            prop::sample::select(AnsweredBy::ALL.to_vec()).prop_map(amd),
        ]
    }

    proptest! {
        /// Whatever order and however often a machine verdict and a `completed` end
        /// arrive, with anything else in between, the call ends once and ends `voicemail`.
        #[test]
        fn a_machine_verdict_in_any_order_makes_a_completed_call_a_voicemail(
            mut events in prop::collection::vec(any_event().prop_filter("no other verdict or end", |e| matches!(e, EventKind::Progress(_) | EventKind::Info)), 0..6),
            verdicts in 1..3usize, at in any::<prop::sample::Index>(), end_at in any::<prop::sample::Index>(),
        ) {
            for _ in 0..verdicts {
                events.insert(at.index(events.len() + 1), amd(AnsweredBy::Machine));
            }
            events.insert(end_at.index(events.len() + 1), ended(Outcome::Completed));
            let mut call = facts(CallStatus::Dialing, None, None);
            for e in &events {
                let fx = effect(&call, e);
                if let Some(t) = fx.transition {
                    call.status = t.to;
                    call.outcome = t.outcome.or(call.outcome);
                }
                call.answered_by = fx.answered_by.or(call.answered_by);
                call.outcome = fx.corrected.or(call.outcome);
            }
            prop_assert_eq!((call.status, call.outcome), (CallStatus::Ended, Some(Outcome::Voicemail)));
        }
    }

    proptest! {
        /// Whatever order and however often events arrive, the rank never decreases and
        /// a call ends at most once.
        #[test]
        fn any_event_sequence_is_monotonic(events in prop::collection::vec(any_event(), 0..20)) {
            let mut status = CallStatus::Queued;
            let mut ends = 0;
            for e in &events {
                if let Some(t) = apply(status, e) {
                    prop_assert!(t.to.rank() > status.rank());
                    if t.ends_call() { ends += 1; }
                    status = t.to;
                }
            }
            prop_assert!(ends <= 1);
        }
    }
}
