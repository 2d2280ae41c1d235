//! One outbound attempt, from its claim to the provider's answer, as one state machine: the
//! order that keeps an attempt from being dialled twice.
//!
//! ```text
//!            take over (lease ran out)          take over
//!               ┌──────┐                         ┌──────┐
//!               ▼      │                         ▼      │
//!  claim ──► Claimed ──┴── mark placing ──► Placing ───┴── send (again, once certainly absent)
//!               │       (committed before        │  │
//!               │        any request)            │  └── accepted / found at the provider ──► Dialed ── end ──► Ended
//!               │                                ├── certainly not at the provider ──► Released
//!               └── never sent ──► Released      └── refused for good / cannot say ──► Ended
//! ```
//!
//! - **Claimed**: the claim's transaction inserted the QUEUED call, owned by one node
//!   (`claimed_by`), and spent the attempt. Nothing may be sent: a crash now leaves a call
//!   that certainly never reached the provider, which recovery releases.
//! - **Placing**: `placing_at` is committed (the store's `mark_placing` fence: still
//!   QUEUED, not placing yet, still ours) before any request. Only now may the request go,
//!   and a crash leaves a call that *may* be at the provider: recovery asks the provider
//!   (by our id) before anything is sent again, and ends it `timeout` if it cannot say.
//!   When the request follows the claim at once (an account with no rate limit, on a
//!   provider that can be asked for a call by our id), the claim's own transaction commits
//!   `placing_at` too (the store's `claim_placing`): `Claimed → Placing` in one commit, the
//!   same two steps in the same order, one WAL flush fewer on the path that refills a slot.
//! - **Dialed**: the provider's id is stored; events move the call on.
//! - **Released**: the call row is deleted and the attempt given back (the store's
//!   `release_unsent`); the contact is due again. Only for a call that certainly never
//!   reached the provider.
//! - **Ended**: the call ended without being dialled (refused for good, or nobody can say
//!   whether it was sent): the attempt stays spent.
//!
//! The engine's placer holds this order in its types (a `Claimed` claim becomes the
//! `Placing` permit a request is built from only through `mark_placing`); its reaper reads
//! a stored call's state with [`AttemptState::of`]; the store's fences are the SQL side of
//! each step. Crash recovery hands each unsent call to one node first (`orphaned_calls`:
//! [`Step::TakeOver`]), which keeps its state.

use crate::CallStatus;

/// Where one outbound attempt stands (see the module docs for the diagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptState {
    Claimed,
    Placing,
    Dialed,
    Released,
    Ended,
}

/// What may happen to an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// `mark_placing` committed.
    MarkPlacing,
    /// A request to the provider.
    Send,
    /// The provider accepted it, or a lookup found it there: its id is stored.
    Accepted,
    /// Given back: the call certainly never reached the provider.
    Release,
    /// Ended by the engine or the provider.
    End,
    /// Another node (or this one, restarted) took the unsent call over after the lease.
    TakeOver,
}

impl Step {
    pub const ALL: [Step; 6] = [Step::MarkPlacing, Step::Send, Step::Accepted, Step::Release, Step::End, Step::TakeOver];
}

/// A step the attempt's state does not allow: doing it could dial one attempt twice, or
/// lose one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{step:?} is not allowed for an attempt that is {from:?}")]
pub struct WrongOrder {
    pub from: AttemptState,
    pub step: Step,
}

impl AttemptState {
    pub const ALL: [AttemptState; 5] = [AttemptState::Claimed, AttemptState::Placing, AttemptState::Dialed, AttemptState::Released, AttemptState::Ended];

    /// The state after `step`, or [`WrongOrder`] when `step` is not allowed now.
    pub fn next(self, step: Step) -> Result<AttemptState, WrongOrder> {
        use AttemptState::*;
        match (self, step) {
            (Claimed, Step::MarkPlacing) => Ok(Placing),
            (Claimed, Step::Release) => Ok(Released),
            (Claimed, Step::TakeOver) => Ok(Claimed),
            (Placing, Step::Send) => Ok(Placing),
            (Placing, Step::Accepted) => Ok(Dialed),
            (Placing, Step::Release) => Ok(Released),
            (Placing, Step::End) => Ok(Ended),
            (Placing, Step::TakeOver) => Ok(Placing),
            (Dialed, Step::End) => Ok(Ended),
            (from, step) => Err(WrongOrder { from, step }),
        }
    }

    /// The state of a stored outbound call: `placing` is whether `placing_at` is set,
    /// `dialed` whether it has a provider id. `None` for a call that is not (or no longer)
    /// an attempt in flight from the engine's side: scheduled, or ended.
    pub fn of(status: CallStatus, placing: bool, dialed: bool) -> Option<AttemptState> {
        match status {
            _ if dialed => Some(if status.is_terminal() { AttemptState::Ended } else { AttemptState::Dialed }),
            CallStatus::Queued if placing => Some(AttemptState::Placing),
            CallStatus::Queued => Some(AttemptState::Claimed),
            s if s.is_terminal() => Some(AttemptState::Ended),
            _ => None,
        }
    }

    /// Whether a request to the provider may go now: only once `placing_at` is committed.
    pub fn may_send(self) -> bool {
        self.next(Step::Send).is_ok()
    }

    /// Whether the attempt may be given back (deleted, attempt not spent): only while it
    /// certainly never reached the provider, which the caller must know (never sent, or the
    /// provider said it has no such call).
    pub fn may_release(self) -> bool {
        self.next(Step::Release).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::AttemptState::*;
    use super::*;

    #[test]
    fn a_request_may_go_only_after_placing_is_marked() {
        assert!(!Claimed.may_send(), "sending before mark_placing would leave a crash unable to tell a sent call from an unsent one");
        assert_eq!(Claimed.next(Step::MarkPlacing), Ok(Placing));
        assert!(Placing.may_send());
        for s in [Dialed, Released, Ended] {
            assert!(!s.may_send(), "{s:?} must never send");
        }
    }

    #[test]
    fn the_happy_path_is_claim_mark_placing_send_accepted_end() {
        let path = [Step::MarkPlacing, Step::Send, Step::Accepted, Step::End];
        let end = path.iter().try_fold(Claimed, |s, step| s.next(*step));
        assert_eq!(end, Ok(Ended));
    }

    #[test]
    fn a_dialled_or_finished_attempt_is_never_released_or_placed_again() {
        for from in [Dialed, Released, Ended] {
            for step in [Step::MarkPlacing, Step::Send, Step::Release, Step::Accepted] {
                assert_eq!(from.next(step), Err(WrongOrder { from, step }));
            }
        }
        assert_eq!(Released.next(Step::End), Err(WrongOrder { from: Released, step: Step::End }));
    }

    #[test]
    fn placing_is_marked_once() {
        assert_eq!(Placing.next(Step::MarkPlacing), Err(WrongOrder { from: Placing, step: Step::MarkPlacing }));
    }

    #[test]
    fn a_takeover_keeps_the_state_so_recovery_knows_whether_to_ask_the_provider() {
        assert_eq!(Claimed.next(Step::TakeOver), Ok(Claimed));
        assert_eq!(Placing.next(Step::TakeOver), Ok(Placing));
        assert!(Dialed.next(Step::TakeOver).is_err(), "a call with a provider id is never an orphan");
    }

    #[test]
    fn an_unplaced_claim_is_released_not_ended_and_not_accepted() {
        assert!(Claimed.may_release());
        assert!(Claimed.next(Step::End).is_err(), "recovery releases a claim that was never placing");
        assert!(Claimed.next(Step::Accepted).is_err(), "nothing was sent, so nothing can be accepted");
    }

    #[test]
    fn exactly_the_documented_transitions_are_allowed() {
        let allowed: Vec<(AttemptState, Step)> =
            AttemptState::ALL.iter().flat_map(|s| Step::ALL.iter().map(move |t| (*s, *t))).filter(|(s, t)| s.next(*t).is_ok()).collect();
        assert_eq!(
            allowed,
            vec![
                (Claimed, Step::MarkPlacing),
                (Claimed, Step::Release),
                (Claimed, Step::TakeOver),
                (Placing, Step::Send),
                (Placing, Step::Accepted),
                (Placing, Step::Release),
                (Placing, Step::End),
                (Placing, Step::TakeOver),
                (Dialed, Step::End),
            ]
        );
    }

    #[test]
    fn a_stored_call_reads_as_its_state() {
        assert_eq!(AttemptState::of(CallStatus::Queued, false, false), Some(Claimed));
        assert_eq!(AttemptState::of(CallStatus::Queued, true, false), Some(Placing));
        assert_eq!(AttemptState::of(CallStatus::Dialing, true, true), Some(Dialed));
        assert_eq!(AttemptState::of(CallStatus::InProgress, true, true), Some(Dialed));
        assert_eq!(AttemptState::of(CallStatus::Ended, true, true), Some(Ended));
        assert_eq!(AttemptState::of(CallStatus::Failed, true, false), Some(Ended));
        assert_eq!(AttemptState::of(CallStatus::Scheduled, false, false), None);
    }
}
