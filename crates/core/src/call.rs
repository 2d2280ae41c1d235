//! The call (one attempt) state machine. States only move forward: each has a rank and an
//! event that would not raise the rank changes nothing, so late, duplicate and
//! out-of-order webhooks are harmless.

use crate::event::EventKind;
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
    pub const ACTIVE: &'static [CallStatus] =
        &[Self::Queued, Self::Dialing, Self::Ringing, Self::InProgress];

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
    Busy,
    Voicemail,
    Failed,
    InvalidNumber,
    Canceled,
    Timeout,
}

text_enum!(Outcome, "outcome", {
    Completed => "completed", NoAnswer => "no_answer", Busy => "busy", Voicemail => "voicemail",
    Failed => "failed", InvalidNumber => "invalid_number", Canceled => "canceled", Timeout => "timeout",
});

impl Outcome {
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
        EventKind::Progress(_) | EventKind::Info => return None,
        EventKind::Ended { outcome, .. } => (outcome.terminal_status(current), Some(*outcome)),
    };
    (to.rank() > current.rank()).then_some(Transition { from: current, to, outcome })
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

    fn any_event() -> impl Strategy<Value = EventKind> {
        prop_oneof![
            Just(EventKind::Info),
            prop::sample::select(CallStatus::ALL.to_vec()).prop_map(EventKind::Progress),
            prop::sample::select(Outcome::ALL.to_vec()).prop_map(ended),
        ]
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
