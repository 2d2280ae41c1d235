//! The timers: which one is due next, and what each does when it fires.

use super::ending::{begin_closing, enter_voicemail, hang_up, leave_message};
use super::{confirm_barge_in, greet, plus, say, Machine, Phase};
use crate::conversation::text::speech_estimate;
use crate::conversation::{Action, Conversation, EndReason, Utterance};
use jiff::Timestamp;

/// Timers fired in one `handle` call at most; each firing changes the phase or disarms its
/// timer, so this only guards against a bug looping forever.
const MAX_FIRINGS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::conversation) enum Timer {
    Barge,
    Greet,
    LongSpeech,
    OpeningSilence,
    NoResponse,
    VoicemailEnd,
    Hang,
    MaxGoodbye,
    MaxEnd,
}

/// The earliest armed timer.
pub(in crate::conversation) fn next_timer(c: &Conversation) -> Option<(Timestamp, Timer)> {
    let m = &c.m;
    let t = &c.timing;
    let started = m.started_at?;
    let max_end = plus(started, c.script.max_duration);
    let mut timers: Vec<(Timestamp, Timer)> = Vec::with_capacity(4);
    match &m.phase {
        Phase::Ringing | Phase::Ended => return None,
        Phase::CalleeFirst { greet_at } => timers.push((*greet_at, Timer::Greet)),
        Phase::Talking => {
            if let Some(onset) = m.barge {
                timers.push((plus(onset, t.min_barge_in), Timer::Barge));
            }
            if let (Some(q), None, false, false) = (m.quiet_since, m.speech, m.our_turn(), m.barge.is_some()) {
                if let (Some(d), false, false, false) = (t.voicemail_opening_silence, m.heard_callee, m.amd_human, m.prompted) {
                    timers.push((plus(q, d), Timer::OpeningSilence));
                }
                let wait = if m.prompted { t.no_response_goodbye } else { t.no_response };
                timers.push((plus(q, wait), Timer::NoResponse));
            }
        }
        Phase::VoicemailWait { silence_at, give_up_at } => {
            timers.push((*give_up_at, Timer::VoicemailEnd));
            if let Some(s) = silence_at {
                timers.push((*s, Timer::VoicemailEnd));
            }
        }
        Phase::LeavingMessage { hang_at, .. } => timers.push((*hang_at, Timer::Hang)),
        Phase::Closing { hang_from, hang_at, mark_back, .. } => {
            timers.push((*hang_at, Timer::Hang));
            if let (true, Some(from)) = (mark_back, hang_from) {
                timers.push((*from, Timer::Hang));
            }
        }
    }
    if matches!(m.phase, Phase::CalleeFirst { .. } | Phase::Talking) {
        if let (Some(onset), true) = (m.speech, long_speech_armed(m)) {
            timers.push((plus(onset, t.voicemail_speech), Timer::LongSpeech));
        }
        let lead = speech_estimate(&c.script.goodbye);
        timers.push((plus(max_end, -lead).max(started), Timer::MaxGoodbye));
    }
    timers.push((max_end, Timer::MaxEnd));
    let (at, timer) = timers.into_iter().min_by_key(|&(at, _)| at)?;
    // Everything due by the last `handle` has fired there; this only guards the promise.
    Some((m.last_now.map_or(at, |last| at.max(last)), timer))
}

fn long_speech_armed(m: &Machine) -> bool {
    !m.exchanged && !m.amd_human
}

pub(super) fn fire_due(c: &mut Conversation, now: Timestamp, acts: &mut Vec<Action>) {
    for _ in 0..MAX_FIRINGS {
        if c.ending.is_some() {
            return;
        }
        let Some((at, timer)) = next_timer(c) else { return };
        if at > now {
            return;
        }
        fire(c, now, timer, acts);
    }
}

fn fire(c: &mut Conversation, now: Timestamp, timer: Timer, acts: &mut Vec<Action>) {
    match timer {
        Timer::Barge => confirm_barge_in(c, now, acts),
        Timer::Greet => greet(c, now, acts),
        Timer::LongSpeech | Timer::OpeningSilence => enter_voicemail(c, now, false, acts),
        Timer::NoResponse => {
            if c.m.prompted {
                begin_closing(c, now, EndReason::AgentHungUp, acts);
            } else {
                let prompt = c.script.no_response_prompt.clone();
                if say(c, now, Utterance::NoResponsePrompt, &prompt, acts).is_none() {
                    // Nothing to say: count the prompt as played.
                    c.m.prompted = true;
                    c.m.quiet_since = Some(now);
                }
            }
        }
        Timer::VoicemailEnd => leave_message(c, now, acts),
        Timer::Hang => match &c.m.phase {
            Phase::Closing { reason, .. } => {
                let reason = *reason;
                hang_up(c, now, reason, acts)
            }
            _ => hang_up(c, now, EndReason::VoicemailDone, acts),
        },
        Timer::MaxGoodbye => begin_closing(c, now, EndReason::MaxDuration, acts),
        Timer::MaxEnd => hang_up(c, now, EndReason::MaxDuration, acts),
    }
}
