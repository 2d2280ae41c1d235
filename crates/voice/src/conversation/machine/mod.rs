//! The state machine behind [`Conversation`]: phases, our turn and the callee's turn;
//! [`timers`] says what is due next, [`ending`] handles voicemail, goodbye and the end.
//! docs/voice.md describes the same rules as tables.

mod ending;
mod timers;

use super::text::{played_words, speech_estimate, take_sentences};
use super::{Action, Conversation, EndReason, Input, State, Utterance};
use crate::listen::Heard;
use crate::speech::{ChatMessage, ChatRequest, SttEvent};
use dialtone_core::{Speaker, TranscriptTurn};
use ending::{enter_voicemail, finish, hang_up, provider_amd};
use jiff::{SignedDuration, Timestamp};
use timers::fire_due;
pub(super) use timers::next_timer;

#[derive(Debug, Default)]
pub(super) struct Machine {
    phase: Phase,
    /// `Started`'s time.
    started_at: Option<Timestamp>,
    /// The latest `now` handled; the clock never runs backwards.
    last_now: Option<Timestamp>,
    /// Counter behind mark names and reply ids.
    next_mark: u64,
    next_reply: u64,
    /// Our current turn: lines sent whose marks may still be outstanding.
    agent: Option<AgentTurn>,
    /// The reply being streamed (between `Action::Reply` and its done/failed/cancel).
    reply: Option<ReplyStream>,
    /// Marks of audio we cleared: their echoes are not "played".
    cleared: Vec<String>,
    /// When the greeting that stuck was sent (`None`: not yet, or withdrawn).
    greeted_at: Option<Timestamp>,
    /// Onset of the callee's open VAD segment.
    speech: Option<Timestamp>,
    /// Onset of callee speech during our turn, waiting to last `min_barge_in`.
    barge: Option<Timestamp>,
    /// The callee's turn being heard (STT text so far).
    callee: CalleeTurn,
    /// Since when neither side has said anything (our last mark, their last speech, a key).
    quiet_since: Option<Timestamp>,
    /// The no-response prompt has played and nothing came since.
    prompted: bool,
    /// The callee said something STT recognised or pressed a key.
    callee_spoke: bool,
    /// When a sentence of one of our replies last finished playing.
    reply_played_at: Option<Timestamp>,
    /// A real exchange: the callee spoke after hearing one of our replies. Disarms the
    /// long-speech voicemail rule and a provider's `Machine` verdict.
    exchanged: bool,
    /// The callee's side made a sound (a VAD onset) or a key press since the call began.
    heard_callee: bool,
    /// The provider's AMD said `Human`: long speech is not a voicemail greeting.
    amd_human: bool,
    /// A `Machine` verdict that arrived before `Started`.
    amd_machine_early: bool,
    /// Voicemail detected (and not withdrawn by `Human`).
    voicemail: bool,
}

#[derive(Debug, Default)]
enum Phase {
    #[default]
    Ringing,
    CalleeFirst {
        greet_at: Timestamp,
    },
    Talking,
    VoicemailWait {
        /// The greeting's end by silence (`None` while the callee's audio is voiced).
        silence_at: Option<Timestamp>,
        give_up_at: Timestamp,
    },
    LeavingMessage {
        mark: String,
        hang_at: Timestamp,
    },
    Closing {
        mark: String,
        reason: EndReason,
        /// Not before (max duration: `max_duration − 1 s`).
        hang_from: Option<Timestamp>,
        hang_at: Timestamp,
        mark_back: bool,
    },
    Ended,
}

#[derive(Debug)]
struct AgentTurn {
    kind: Utterance,
    started_at: Timestamp,
    lines: Vec<Line>,
}

#[derive(Debug)]
struct Line {
    mark: String,
    text: String,
    played_at: Option<Timestamp>,
    /// The playing time of its whole audio, once the driver reported it (`LineAudio`).
    audio: Option<SignedDuration>,
}

#[derive(Debug)]
struct ReplyStream {
    id: u64,
    pending: String,
}

#[derive(Debug, Default)]
struct CalleeTurn {
    started_at: Option<Timestamp>,
    ended_at: Option<Timestamp>,
    finals: Vec<String>,
    partial: String,
    /// Its latest segment began during our turn and did not interrupt us ("mhm").
    backchannel: bool,
}

fn plus(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.saturating_add(d).unwrap_or(t)
}

impl Machine {
    pub(super) fn state(&self) -> State {
        match self.phase {
            Phase::Ringing => State::Ringing,
            Phase::CalleeFirst { .. } => State::CalleeFirst,
            Phase::Talking => State::Talking,
            Phase::VoicemailWait { .. } => State::VoicemailWait,
            Phase::LeavingMessage { .. } => State::LeavingMessage,
            Phase::Closing { .. } => State::Closing,
            Phase::Ended => State::Ended,
        }
    }

    /// Our turn is on: audio may still be queued or playing, or a reply is coming.
    fn our_turn(&self) -> bool {
        self.agent.is_some() || self.reply.is_some()
    }

    fn mark(&mut self, kind: Utterance) -> String {
        self.next_mark += 1;
        let prefix = match kind {
            Utterance::Greeting => "greeting",
            Utterance::Reply => "reply",
            Utterance::NoResponsePrompt => "prompt",
            Utterance::Goodbye => "goodbye",
            Utterance::Voicemail => "voicemail",
        };
        format!("{prefix}-{}", self.next_mark)
    }
}

pub(super) fn handle(c: &mut Conversation, now: Timestamp, input: Input) -> Vec<Action> {
    let now = c.m.last_now.map_or(now, |last| now.max(last));
    let mut acts = Vec::new();
    // Timers that came due before a heard event happened fire first, so a late
    // `SpeechEnded` of a cough does not cancel a barge-in that was already due, and an
    // early one does.
    if let Input::Heard(h) = &input {
        let at = heard_at(h).min(now);
        fire_due(c, at, &mut acts);
    }
    if c.ending.is_none() {
        apply(c, now, input, &mut acts);
    }
    if c.ending.is_none() {
        fire_due(c, now, &mut acts);
    }
    c.m.last_now = Some(now);
    acts
}

fn heard_at(h: &Heard) -> Timestamp {
    match h {
        Heard::SpeechStarted { at } | Heard::SpeechEnded { at, .. } | Heard::Beep { at, .. } => *at,
    }
}

fn apply(c: &mut Conversation, now: Timestamp, input: Input, acts: &mut Vec<Action>) {
    let ringing = matches!(c.m.phase, Phase::Ringing);
    match input {
        Input::Started => {
            if ringing {
                start(c, now, acts)
            }
        }
        Input::Stopped => hang_up(c, now, EndReason::CalleeHungUp, acts),
        Input::Tick => {}
        Input::Heard(Heard::SpeechStarted { at }) => speech_started(c, at.min(now)),
        Input::Heard(Heard::SpeechEnded { at, speech_ms }) => speech_ended(c, now, at.min(now), speech_ms, acts),
        Input::Heard(Heard::Beep { .. }) => {
            if matches!(c.m.phase, Phase::CalleeFirst { .. } | Phase::Talking | Phase::VoicemailWait { .. }) {
                enter_voicemail(c, now, true, acts);
            }
        }
        Input::Stt(SttEvent::Partial { text }) => c.m.callee.partial = text,
        Input::Stt(SttEvent::Final { text, speech_final }) => {
            let text = text.trim();
            if !text.is_empty() {
                c.m.callee.finals.push(text.to_string());
            }
            c.m.callee.partial.clear();
            if speech_final && c.m.speech.is_none() {
                callee_turn_done(c, now, acts);
            }
        }
        Input::ReplyDelta { reply, text } => reply_delta(c, now, reply, &text, acts),
        Input::ReplyDone { reply } => reply_finished(c, now, reply, true, acts),
        Input::ReplyFailed { reply } => reply_finished(c, now, reply, false, acts),
        Input::MarkPlayed { mark } => mark_played(c, now, &mark, acts),
        Input::Dtmf { .. } => {
            if matches!(c.m.phase, Phase::Talking | Phase::CalleeFirst { .. }) {
                c.m.callee_spoke = true;
                c.m.heard_callee = true;
                c.m.prompted = false;
                c.m.quiet_since = Some(now);
            }
        }
        Input::ProviderAmd(verdict) => provider_amd(c, now, verdict, acts),
        Input::LineAudio { mark, duration } => {
            if let Some(line) = c.m.agent.as_mut().and_then(|t| t.lines.iter_mut().find(|l| l.mark == mark)) {
                line.audio = Some(duration);
            }
        }
    }
}

fn start(c: &mut Conversation, now: Timestamp, acts: &mut Vec<Action>) {
    c.m.started_at = Some(now);
    c.m.phase = Phase::Talking;
    c.m.quiet_since = Some(now);
    if c.m.amd_machine_early {
        enter_voicemail(c, now, false, acts);
    } else if let Some(onset) = c.m.speech {
        // The callee is already speaking: greet when they stop.
        c.m.phase = Phase::CalleeFirst { greet_at: plus(onset.max(now), c.timing.callee_first_wait) };
    } else {
        greet(c, now, acts);
    }
}

fn greet(c: &mut Conversation, now: Timestamp, acts: &mut Vec<Action>) {
    c.m.phase = Phase::Talking;
    c.m.quiet_since = Some(now);
    // Set even for a blank greeting: the callee's turns after this are answered.
    c.m.greeted_at = Some(now);
    let greeting = c.script.greeting.clone();
    say(c, now, Utterance::Greeting, &greeting, acts);
}

/// Sends one line: a `Say` with a fresh mark, added to our current turn (or a new one).
/// `None` when `text` is blank (nothing is sent).
fn say(c: &mut Conversation, now: Timestamp, kind: Utterance, text: &str, acts: &mut Vec<Action>) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mark = c.m.mark(kind);
    let turn = c.m.agent.get_or_insert_with(|| AgentTurn { kind, started_at: now, lines: Vec::new() });
    turn.lines.push(Line { mark: mark.clone(), text: text.to_string(), played_at: None, audio: None });
    acts.push(Action::Say { mark: mark.clone(), text: text.to_string(), kind });
    Some(mark)
}

fn speech_started(c: &mut Conversation, at: Timestamp) {
    if c.m.speech.is_some() {
        return;
    }
    c.m.speech = Some(at);
    c.m.heard_callee = true;
    c.m.callee.started_at.get_or_insert(at);
    let during_our_turn = matches!(c.m.phase, Phase::Talking) && c.m.our_turn();
    c.m.callee.backchannel = during_our_turn;
    match &mut c.m.phase {
        Phase::Talking if during_our_turn => {
            c.m.barge.get_or_insert(at);
        }
        Phase::VoicemailWait { silence_at, .. } => *silence_at = None,
        _ => {}
    }
}

fn speech_ended(c: &mut Conversation, now: Timestamp, at: Timestamp, speech_ms: u64, acts: &mut Vec<Action>) {
    let min_ms = u64::try_from(c.timing.min_barge_in.as_millis()).unwrap_or(0);
    if c.m.barge.is_some() {
        if speech_ms >= min_ms {
            // Long enough, and its deadline had not come yet: interrupt now.
            confirm_barge_in(c, now, acts);
        } else {
            // A cough or "mhm": we keep talking.
            c.m.barge = None;
        }
    }
    c.m.speech = None;
    c.m.callee.ended_at = Some(at);
    if matches!(c.m.phase, Phase::Ringing | Phase::Ended) {
        return;
    }
    c.m.quiet_since = Some(c.m.quiet_since.map_or(at, |q| q.max(at)));
    acts.push(Action::FinalizeStt);
    match &mut c.m.phase {
        Phase::CalleeFirst { .. } => greet(c, now, acts),
        Phase::VoicemailWait { silence_at, .. } => *silence_at = Some(plus(at, c.timing.voicemail_silence)),
        _ => {}
    }
}

/// The callee's speech during our turn lasted `min_barge_in`: stop talking.
fn confirm_barge_in(c: &mut Conversation, now: Timestamp, acts: &mut Vec<Action>) {
    let Some(onset) = c.m.barge.take() else { return };
    c.m.callee.backchannel = false;
    let greeting_unheard = c.m.agent.as_ref().is_some_and(|t| t.kind == Utterance::Greeting && t.lines.iter().all(|l| l.played_at.is_none()));
    let callee_first = greeting_unheard && c.m.greeted_at.is_some_and(|g| onset <= plus(g, c.timing.greeting_lead));
    if callee_first {
        // They said "Hello?" before our greeting could be heard: withdraw it (not in the
        // transcript) and greet after their utterance.
        let turn = c.m.agent.take();
        clear_lines(c, turn.as_ref(), acts);
        c.m.greeted_at = None;
        c.m.phase = Phase::CalleeFirst { greet_at: plus(onset, c.timing.callee_first_wait).max(now) };
        return;
    }
    stop_talking(c, now, acts);
}

/// Drops our turn: `Clear` for unplayed audio, `CancelReply` for a streaming reply, and the
/// turn into the transcript truncated at its last played mark (`interrupted: true`).
fn stop_talking(c: &mut Conversation, now: Timestamp, acts: &mut Vec<Action>) {
    c.m.barge = None;
    let turn = c.m.agent.take();
    clear_lines(c, turn.as_ref(), acts);
    let streaming = c.m.reply.take();
    if let Some(reply) = &streaming {
        acts.push(Action::CancelReply { reply: reply.id });
    }
    let streaming = streaming.is_some();
    if let Some(turn) = turn {
        let interrupted = streaming || turn.lines.iter().any(|l| l.played_at.is_none());
        record_agent_turn(c, turn, now, interrupted);
    }
    c.m.quiet_since = Some(now);
}

fn clear_lines(c: &mut Conversation, turn: Option<&AgentTurn>, acts: &mut Vec<Action>) {
    let Some(turn) = turn else { return };
    let unplayed: Vec<String> = turn.lines.iter().filter(|l| l.played_at.is_none()).map(|l| l.mark.clone()).collect();
    if !unplayed.is_empty() {
        acts.push(Action::Clear);
        c.m.cleared.extend(unplayed);
    }
}

/// Records our turn with the lines that played; `interrupted`: it was cut short (ends `now`).
///
/// A turn cut before any of its marks came back (a greeting, or a reply in its first
/// sentence) keeps the words of its first line that had started playing: the line began
/// playing when the turn was said (the driver sends audio as soon as it has it) and has
/// played `now − started_at` of its audio (`LineAudio`, or [`speech_estimate`] when the
/// audio was not complete yet); see [`played_words`].
fn record_agent_turn(c: &mut Conversation, turn: AgentTurn, now: Timestamp, interrupted: bool) {
    let mut played: Vec<String> = turn.lines.iter().filter(|l| l.played_at.is_some()).map(|l| l.text.clone()).collect();
    if interrupted && played.is_empty() {
        if let Some(first) = turn.lines.first() {
            let total = first.audio.unwrap_or_else(|| speech_estimate(&first.text));
            let words = played_words(&first.text, now.duration_since(turn.started_at), total);
            if !words.is_empty() {
                played.push(words);
            }
        }
    }
    let ended_at = if interrupted { now } else { turn.lines.iter().filter_map(|l| l.played_at).max().unwrap_or(now) };
    record(c, TranscriptTurn { speaker: Speaker::Agent, text: played.join(" "), started_at: turn.started_at, ended_at, interrupted });
}

/// Inserts a turn keeping the transcript ordered by start (a callee's final text can come
/// after our next turn began).
fn record(c: &mut Conversation, turn: TranscriptTurn) {
    let at = c.transcript.partition_point(|t| t.started_at <= turn.started_at);
    c.transcript.insert(at, turn);
}

/// STT settled the callee's utterance: record it and, when it is ours to answer, ask for a reply.
fn callee_turn_done(c: &mut Conversation, now: Timestamp, acts: &mut Vec<Action>) {
    let heard = std::mem::take(&mut c.m.callee);
    if heard.finals.is_empty() {
        return;
    }
    let started_at = heard.started_at.unwrap_or(now).min(now);
    let ended_at = heard.ended_at.unwrap_or(now).clamp(started_at, now);
    record(c, TranscriptTurn { speaker: Speaker::Callee, text: heard.finals.join(" "), started_at, ended_at, interrupted: false });
    c.m.callee_spoke = true;
    c.m.prompted = false;
    if c.m.reply_played_at.is_some_and(|p| started_at >= p) {
        c.m.exchanged = true;
    }
    // Not answered: an opening utterance the greeting answers, a backchannel ("mhm") that
    // did not interrupt us (even when its text comes after our turn ended), anything while
    // voicemail or closing.
    let opening = !matches!(c.m.greeted_at, Some(g) if started_at >= g);
    if !matches!(c.m.phase, Phase::Talking) || opening || heard.backchannel || c.m.our_turn() {
        return;
    }
    c.m.next_reply += 1;
    let id = c.m.next_reply;
    let mut messages = vec![ChatMessage { role: "system".into(), content: c.script.system_prompt.clone() }];
    messages.extend(c.transcript.iter().filter(|t| !t.text.is_empty()).map(|t| ChatMessage {
        role: match t.speaker {
            Speaker::Agent => "assistant".into(),
            Speaker::Callee => "user".into(),
        },
        content: t.text.clone(),
    }));
    c.m.reply = Some(ReplyStream { id, pending: String::new() });
    acts.push(Action::Reply { reply: id, request: ChatRequest { model: None, messages } });
}

fn current_reply(c: &mut Conversation, id: u64) -> Option<&mut ReplyStream> {
    c.m.reply.as_mut().filter(|r| r.id == id && matches!(c.m.phase, Phase::Talking))
}

fn reply_delta(c: &mut Conversation, now: Timestamp, id: u64, text: &str, acts: &mut Vec<Action>) {
    let Some(reply) = current_reply(c, id) else { return };
    reply.pending.push_str(text);
    let sentences = take_sentences(&mut reply.pending);
    for s in sentences {
        say(c, now, Utterance::Reply, &s, acts);
    }
}

fn reply_finished(c: &mut Conversation, now: Timestamp, id: u64, done: bool, acts: &mut Vec<Action>) {
    let Some(reply) = current_reply(c, id) else { return };
    let rest = std::mem::take(&mut reply.pending);
    c.m.reply = None;
    if done {
        // The LLM's last words need no terminator.
        say(c, now, Utterance::Reply, &rest, acts);
    }
    if c.m.agent.is_none() {
        c.m.quiet_since = Some(now);
    }
    close_turn_if_played(c, now);
}

/// Our turn is over when every line's mark came back and no reply is still coming.
fn close_turn_if_played(c: &mut Conversation, now: Timestamp) {
    let done = c.m.agent.as_ref().is_some_and(|t| t.lines.iter().all(|l| l.played_at.is_some())) && c.m.reply.is_none();
    if !done {
        return;
    }
    let Some(turn) = c.m.agent.take() else { return };
    if turn.kind == Utterance::NoResponsePrompt {
        c.m.prompted = true;
    }
    record_agent_turn(c, turn, now, false);
    c.m.quiet_since = Some(now);
}

fn mark_played(c: &mut Conversation, now: Timestamp, mark: &str, acts: &mut Vec<Action>) {
    if let Some(i) = c.m.cleared.iter().position(|m| m == mark) {
        c.m.cleared.swap_remove(i);
        return;
    }
    let Some(line) = c.m.agent.as_mut().and_then(|t| t.lines.iter_mut().find(|l| l.mark == mark && l.played_at.is_none())) else { return };
    line.played_at = Some(now);
    if c.m.agent.as_ref().is_some_and(|t| t.kind == Utterance::Reply) {
        c.m.reply_played_at = Some(now);
    }
    match &mut c.m.phase {
        Phase::LeavingMessage { mark: m, .. } if m == mark => {
            finish(c, now, EndReason::VoicemailDone, true, acts);
        }
        Phase::Closing { mark: m, reason, hang_from, mark_back, .. } if m == mark => {
            if hang_from.is_some_and(|from| now < from) {
                // Max duration: hang up at `max_duration − 1 s` at the earliest.
                *mark_back = true;
                close_turn_if_played(c, now);
            } else {
                let reason = *reason;
                hang_up(c, now, reason, acts);
            }
        }
        _ => close_turn_if_played(c, now),
    }
}
