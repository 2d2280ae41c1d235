//! The call's conversation as a pure state machine on the engine's clock.
//!
//! The server (crates/server/src/media/) owns the socket, the speech services and the
//! clock. It feeds [`Input`]s to [`Conversation::handle`] with the time they happened and
//! carries out the [`Action`]s it returns; when nothing happens it calls
//! `handle(now, Input::Tick)` at [`Conversation::next_deadline`].
//!
//! Rules (docs/voice.md has the full table): greeting first; replies sentence by sentence,
//! each followed by a mark; barge-in sends `Clear` and truncates our turn at the last played
//! mark; no response → prompt 10 s after our audio finished playing (from the mark),
//! goodbye 5 s later; voicemail → wait for the beep or the greeting's end, leave the message,
//! hang up; `max_duration` → goodbye and hang up.
//!
//! Own code rather than a crate: this is dialtone's core (the charter), and the frameworks
//! that have one (Pipecat, LiveKit) are Python pipelines with I/O inside.

mod machine;
mod text;

#[cfg(test)]
mod tests;

use crate::speech::ChatRequest;
use dialtone_core::{AnsweredBy, TranscriptTurn};
use jiff::{SignedDuration, Timestamp};

pub use text::{played_words, speech_estimate, take_sentences};

/// What the agent says, taken from its `Agent`. Empty (all-whitespace) lines are not said.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// Said first, as soon as the line is open (or after the callee's opening "Hello?").
    pub greeting: String,
    /// The LLM's system prompt, first message of every [`ChatRequest`].
    pub system_prompt: String,
    /// Said after [`Timing::no_response`] of silence following our last audio.
    pub no_response_prompt: String,
    /// Said before we hang up (no response, maximum duration).
    pub goodbye: String,
    /// Left after a voicemail greeting; `None` (or empty): hang up without a message.
    pub voicemail_message: Option<String>,
    /// The conversation ends (goodbye, then hang-up) this long after [`Input::Started`].
    pub max_duration: SignedDuration,
}

impl Script {
    /// Added: the script of an agent (`max_duration_secs` → `max_duration`).
    pub fn from_agent(agent: &dialtone_core::Agent) -> Self {
        Self {
            greeting: agent.greeting.clone(),
            system_prompt: agent.system_prompt.clone(),
            no_response_prompt: agent.no_response_prompt.clone(),
            goodbye: agent.goodbye.clone(),
            voicemail_message: agent.voicemail_message.clone(),
            max_duration: SignedDuration::from_secs(i64::from(agent.max_duration_secs)),
        }
    }
}

/// The conversation's timers and thresholds. `Default` holds the values docs/voice.md gives.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// Silence after our audio finished playing before `no_response_prompt` (10 s).
    pub no_response: SignedDuration,
    /// Silence after the prompt before `goodbye` and hang-up (5 s).
    pub no_response_goodbye: SignedDuration,
    /// When the callee speaks first, the longest we wait for their utterance to end before
    /// greeting (2 s), counted from their onset (or from `Started` if they spoke before it).
    pub callee_first_wait: SignedDuration,
    /// Speech shorter than this does not interrupt us (200 ms: coughs, "mhm").
    pub min_barge_in: SignedDuration,
    /// An uninterrupted opening longer than this is a voicemail greeting (8 s).
    pub voicemail_speech: SignedDuration,
    /// Added: callee speech starting no later than this after our greeting was sent (before
    /// its first frame can be audible; the target is 300 ms) is the callee speaking first:
    /// the greeting is withdrawn and said after their utterance (300 ms).
    pub greeting_lead: SignedDuration,
    /// Added: silence after a voicemail greeting's last speech that counts as its end when
    /// no beep comes (1.5 s after the VAD's `SpeechEnded`; Twilio's AMD uses 1.2 s).
    pub voicemail_silence: SignedDuration,
    /// Added: the longest we wait for a voicemail greeting to end (beep or silence) before
    /// leaving the message anyway (30 s, Twilio AMD's timeout).
    pub voicemail_wait_max: SignedDuration,
    /// Added: how long past [`speech_estimate`] of a closing line (goodbye, voicemail message)
    /// we wait for its mark before hanging up anyway (5 s).
    pub mark_grace: SignedDuration,
    /// Added: a line silent this long after our greeting played (no VAD onset, no key, AMD
    /// not `Human`) is taken for a voicemail (the "long silence"). `None` (the
    /// default): a silent line is a person who does not answer, handled by the no-response
    /// prompt and goodbye (outcome `NoResponse`); a silent mailbox is still caught by its beep.
    pub voicemail_opening_silence: Option<SignedDuration>,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            no_response: SignedDuration::from_secs(10),
            no_response_goodbye: SignedDuration::from_secs(5),
            callee_first_wait: SignedDuration::from_secs(2),
            min_barge_in: SignedDuration::from_millis(200),
            voicemail_speech: SignedDuration::from_secs(8),
            greeting_lead: SignedDuration::from_millis(300),
            voicemail_silence: SignedDuration::from_millis(1500),
            voicemail_wait_max: SignedDuration::from_secs(30),
            mark_grace: SignedDuration::from_secs(5),
            voicemail_opening_silence: None,
        }
    }
}

/// Something that happened on the call, fed to [`Conversation::handle`].
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The media stream started (`start`): the callee's line is open. Later ones are ignored.
    Started,
    /// From the VAD and beep detector ([`crate::listen::Heard`]). `at` later than the
    /// `now` passed to `handle` is taken as `now`.
    Heard(crate::listen::Heard),
    /// From the speech-to-text session.
    Stt(crate::speech::SttEvent),
    /// A piece of reply `reply`'s text from the LLM.
    ReplyDelta { reply: u64, text: String },
    /// Reply `reply` is complete.
    ReplyDone { reply: u64 },
    /// Reply `reply` could not be produced (the LLM failed).
    ReplyFailed { reply: u64 },
    /// The provider echoed our mark: everything we sent before it has been played. Marks
    /// echoed for audio we cleared (Twilio returns them on `clear`) and unknown marks are ignored.
    MarkPlayed { mark: String },
    /// A key the callee pressed (`dtmf`).
    Dtmf { digit: char },
    /// Added: the playing time of the whole audio of line `mark` (the driver knows it once
    /// the line's audio is complete: from the cache at once, from TTS when it finishes).
    /// Used to save the part of a line that played when our turn is cut before any of its
    /// marks came back; unknown marks are ignored.
    LineAudio { mark: String, duration: SignedDuration },
    /// The provider's own answering-machine verdict (Twilio AsyncAmd), when it has one.
    /// `Machine` → voicemail unless a real exchange already happened; `Human` cancels a
    /// voicemail suspicion from long speech or an earlier `Machine` (not a beep); `Unknown`
    /// changes nothing.
    ProviderAmd(AnsweredBy),
    /// The stream stopped or the socket closed: the call is over.
    Stopped,
    /// Time passed; nothing else happened.
    Tick,
}

/// Which of the agent's lines a [`Action::Say`] is. The greeting may come from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Utterance {
    Greeting,
    /// One sentence of an LLM reply.
    Reply,
    NoResponsePrompt,
    Goodbye,
    Voicemail,
}

/// What the server must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Synthesise `text`, send its audio (paced, at most ~300 ms ahead of real time), then a
    /// mark named `mark`. The provider echoes the mark when the audio has played. Mark names
    /// are unique within a conversation (`{kind}-{n}`, e.g. `greeting-1`, `reply-4`).
    Say { mark: String, text: String, kind: Utterance },
    /// Ask the LLM for reply `reply`; feed its text back as `ReplyDelta`/`ReplyDone`.
    /// `request.model` is `None`: the server fills in the agent's model.
    Reply { reply: u64, request: ChatRequest },
    /// Stop producing reply `reply` (barge-in); its further deltas are ignored.
    CancelReply { reply: u64 },
    /// Drop our queued audio (including text not yet synthesised) and send `clear` to the provider.
    Clear,
    /// Tell the STT session the callee's turn ended (`SttInput::Finalize`).
    FinalizeStt,
    /// Close the stream and end the call. Always the last action; nothing follows it.
    Hangup(Ending),
}

/// How a conversation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoiceOutcome {
    /// A person answered and spoke with the agent (said something STT recognised, or
    /// pressed a key).
    Completed,
    /// A person answered but never spoke.
    NoResponse,
    /// A voicemail greeting or answering machine answered.
    Voicemail,
}

/// Why the conversation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The provider stopped the stream or the socket closed (the callee hung up).
    CalleeHungUp,
    /// The agent said goodbye (no response, or the conversation ended).
    AgentHungUp,
    /// `max_duration` was reached.
    MaxDuration,
    /// The voicemail message was left (or there was none to leave).
    VoicemailDone,
}

/// The end of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    pub outcome: VoiceOutcome,
    pub reason: EndReason,
    /// Our voicemail message was played to the end (its mark came back).
    pub voicemail_left: bool,
}

/// Added: where the conversation stands, for logs and the simulator's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Created; the stream has not started (the phone rings).
    Ringing,
    /// The callee spoke first; we greet when their utterance ends (at most
    /// [`Timing::callee_first_wait`]).
    CalleeFirst,
    /// Greeting said or queued: listening, thinking, replying.
    Talking,
    /// Voicemail detected: waiting for the beep or the end of the greeting.
    VoicemailWait,
    /// Playing the voicemail message; hang-up when its mark comes back.
    LeavingMessage,
    /// Saying goodbye; hang-up when its mark comes back.
    Closing,
    /// Over: [`Conversation::ending`] is set and every input is ignored.
    Ended,
}

/// One call's conversation. Created at dial time (while the phone rings).
#[derive(Debug)]
pub struct Conversation {
    script: Script,
    timing: Timing,
    transcript: Vec<TranscriptTurn>,
    ending: Option<Ending>,
    m: machine::Machine,
}

impl Conversation {
    pub fn new(script: Script, timing: Timing) -> Self {
        Self { script, timing, transcript: Vec::new(), ending: None, m: machine::Machine::default() }
    }

    /// Applies one input that happened at `now`; returns what to do, in order.
    ///
    /// Timers due at or before `now` fire inside this call (those due before a `Heard`
    /// event's `at` first, the rest after the input), so a driver that is late with its
    /// `Tick` still gets every action. `now` earlier than a previous call's is taken as that
    /// time (the clock never runs backwards). After the ending, returns nothing.
    pub fn handle(&mut self, now: Timestamp, input: Input) -> Vec<Action> {
        if self.ending.is_some() {
            return Vec::new();
        }
        machine::handle(self, now, input)
    }

    /// When to call `handle(now, Input::Tick)` if nothing else happens first. Always later
    /// than the `now` of the last `handle` call; `None` while nothing is timed (before
    /// `Started`, after the ending).
    pub fn next_deadline(&self) -> Option<Timestamp> {
        if self.ending.is_some() {
            return None;
        }
        machine::next_timer(self).map(|(at, _)| at)
    }

    /// The turns so far, ordered by start; an interrupted agent turn holds only what was
    /// played: the sentences whose marks came back, or, when none had come back (a greeting,
    /// a reply cut in its first sentence), the words of its first line that had started
    /// playing ([`played_words`]). Turns still in progress are added when they finish (or at
    /// the ending).
    pub fn transcript(&self) -> &[TranscriptTurn] {
        &self.transcript
    }

    /// `Some` once the conversation has ended.
    pub fn ending(&self) -> Option<Ending> {
        self.ending
    }

    /// Added: where the conversation stands.
    pub fn state(&self) -> State {
        if self.ending.is_some() {
            return State::Ended;
        }
        self.m.state()
    }
}
