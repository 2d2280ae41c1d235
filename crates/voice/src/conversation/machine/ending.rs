//! How the conversation ends: voicemail, goodbye, the provider's AMD verdict, and the
//! ending itself.

use super::{greet, plus, record, record_agent_turn, say, stop_talking, Phase};
use crate::conversation::text::speech_estimate;
use crate::conversation::{Action, Conversation, EndReason, Ending, Utterance, VoiceOutcome};
use dialtone_core::{AnsweredBy, Speaker, TranscriptTurn};
use jiff::{SignedDuration, Timestamp};

pub(super) fn provider_amd(c: &mut Conversation, now: Timestamp, verdict: AnsweredBy, acts: &mut Vec<Action>) {
    match verdict {
        AnsweredBy::Unknown => {}
        AnsweredBy::Machine => match c.m.phase {
            Phase::Ringing => c.m.amd_machine_early = true,
            Phase::CalleeFirst { .. } | Phase::Talking if !c.m.exchanged => enter_voicemail(c, now, false, acts),
            _ => {}
        },
        AnsweredBy::Human => {
            c.m.amd_human = true;
            c.m.amd_machine_early = false;
            if matches!(c.m.phase, Phase::VoicemailWait { .. }) {
                // A person after all (the beep would have moved us on already).
                c.m.voicemail = false;
                c.m.quiet_since = Some(now);
                if c.m.greeted_at.is_some() {
                    c.m.phase = Phase::Talking;
                } else if let Some(onset) = c.m.speech {
                    c.m.phase = Phase::CalleeFirst { greet_at: plus(onset.max(now), c.timing.callee_first_wait) };
                } else {
                    greet(c, now, acts);
                }
            }
        }
    }
}

/// Voicemail: stop talking, then leave the message at the beep (`beep`) or when the
/// greeting ends; with no message, hang up at once.
pub(super) fn enter_voicemail(c: &mut Conversation, now: Timestamp, beep: bool, acts: &mut Vec<Action>) {
    c.m.voicemail = true;
    stop_talking(c, now, acts);
    let has_message = c.script.voicemail_message.as_deref().is_some_and(|m| !m.trim().is_empty());
    if !has_message {
        return hang_up(c, now, EndReason::VoicemailDone, acts);
    }
    if beep {
        return leave_message(c, now, acts);
    }
    let silence_at = c.m.speech.is_none().then(|| plus(now, c.timing.voicemail_silence));
    let give_up_at = plus(now, c.timing.voicemail_wait_max);
    if !matches!(c.m.phase, Phase::VoicemailWait { .. }) {
        c.m.phase = Phase::VoicemailWait { silence_at, give_up_at };
    }
}

pub(super) fn leave_message(c: &mut Conversation, now: Timestamp, acts: &mut Vec<Action>) {
    let message = c.script.voicemail_message.clone().unwrap_or_default();
    match say(c, now, Utterance::Voicemail, &message, acts) {
        Some(mark) => {
            let hang_at = plus(now, speech_estimate(&message).saturating_add(c.timing.mark_grace)).min(max_end(c).max(now));
            c.m.phase = Phase::LeavingMessage { mark, hang_at };
        }
        None => hang_up(c, now, EndReason::VoicemailDone, acts),
    }
}

fn max_end(c: &Conversation) -> Timestamp {
    let started = c.m.started_at.unwrap_or(Timestamp::MAX);
    plus(started, c.script.max_duration)
}

/// Goodbye, then hang-up when its mark comes back (bounded).
pub(super) fn begin_closing(c: &mut Conversation, now: Timestamp, reason: EndReason, acts: &mut Vec<Action>) {
    stop_talking(c, now, acts);
    let goodbye = c.script.goodbye.clone();
    let Some(mark) = say(c, now, Utterance::Goodbye, &goodbye, acts) else {
        return hang_up(c, now, reason, acts);
    };
    let max_end = max_end(c).max(now);
    let (hang_from, hang_at) = match reason {
        EndReason::MaxDuration => (Some(plus(max_end, -SignedDuration::from_secs(1)).max(now)), max_end),
        _ => (None, plus(now, speech_estimate(&goodbye).saturating_add(c.timing.mark_grace)).min(max_end)),
    };
    c.m.phase = Phase::Closing { mark, reason, hang_from, hang_at, mark_back: false };
}

fn outcome(c: &Conversation) -> VoiceOutcome {
    if c.m.voicemail {
        VoiceOutcome::Voicemail
    } else if c.m.callee_spoke {
        VoiceOutcome::Completed
    } else {
        VoiceOutcome::NoResponse
    }
}

pub(super) fn hang_up(c: &mut Conversation, now: Timestamp, reason: EndReason, acts: &mut Vec<Action>) {
    finish(c, now, reason, false, acts)
}

/// The ending: flushes both sides' turns into the transcript and returns `Hangup`.
pub(super) fn finish(c: &mut Conversation, now: Timestamp, reason: EndReason, voicemail_left: bool, acts: &mut Vec<Action>) {
    if let Some(turn) = c.m.agent.take() {
        let cut = c.m.reply.is_some() || turn.lines.iter().any(|l| l.played_at.is_none());
        record_agent_turn(c, turn, now, cut);
    }
    // Settled text the STT had not closed, or what it last guessed.
    let mut heard = std::mem::take(&mut c.m.callee);
    if heard.finals.is_empty() && !heard.partial.trim().is_empty() {
        heard.finals.push(heard.partial.trim().to_string());
    }
    if !heard.finals.is_empty() {
        let started_at = heard.started_at.unwrap_or(now).min(now);
        let ended_at = heard.ended_at.unwrap_or(now).clamp(started_at, now);
        record(c, TranscriptTurn { speaker: Speaker::Callee, text: heard.finals.join(" "), started_at, ended_at, interrupted: false });
        c.m.callee_spoke = true;
    }
    c.m.reply = None;
    c.m.barge = None;
    let ending = Ending { outcome: outcome(c), reason, voicemail_left };
    c.ending = Some(ending);
    c.m.phase = Phase::Ended;
    acts.push(Action::Hangup(ending));
}
