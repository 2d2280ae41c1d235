//! The call's conversation as a pure state machine on the engine's clock.
//!
//! The server (crates/server/src/media/) owns the socket, the speech services and the
//! clock. It feeds [`Input`]s to [`Conversation::handle`] with the time they happened and
//! carries out the [`Action`]s it returns; when nothing happens it calls
//! `handle(now, Input::Tick)` at [`Conversation::next_deadline`].
//!
//! Rules (docs/voice.md): greeting first; replies sentence by sentence, each followed by a
//! mark; barge-in sends `Clear` and truncates our turn at the last played mark; no response
//! → prompt 10 s after our audio finished playing (from the mark), goodbye 5 s later;
//! voicemail → wait for the beep or the greeting's end, leave the message, hang up;
//! `max_duration` → goodbye and hang up.

use crate::listen::Heard;
use crate::speech::{ChatRequest, SttEvent};
use dialtone_core::{AnsweredBy, TranscriptTurn};
use jiff::{SignedDuration, Timestamp};

/// What the agent says, taken from its `Agent`.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub greeting: String,
    pub system_prompt: String,
    pub no_response_prompt: String,
    pub goodbye: String,
    pub voicemail_message: Option<String>,
    pub max_duration: SignedDuration,
}

/// The conversation's timers and thresholds. `Default` holds the values docs/voice.md gives.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// Silence after our audio finished playing before `no_response_prompt` (10 s).
    pub no_response: SignedDuration,
    /// Silence after the prompt before `goodbye` and hang-up (5 s).
    pub no_response_goodbye: SignedDuration,
    /// When the callee speaks first, the longest we wait for their utterance to end before greeting (2 s).
    pub callee_first_wait: SignedDuration,
    /// Speech shorter than this does not interrupt us (200 ms: coughs, "mhm").
    pub min_barge_in: SignedDuration,
    /// An uninterrupted opening longer than this is a voicemail greeting (8 s).
    pub voicemail_speech: SignedDuration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            no_response: SignedDuration::from_secs(10),
            no_response_goodbye: SignedDuration::from_secs(5),
            callee_first_wait: SignedDuration::from_secs(2),
            min_barge_in: SignedDuration::from_millis(200),
            voicemail_speech: SignedDuration::from_secs(8),
        }
    }
}

/// Something that happened on the call, fed to [`Conversation::handle`].
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The media stream started (`start`): the callee's line is open.
    Started,
    /// From the VAD and beep detector ([`crate::listen::Listener`]).
    Heard(Heard),
    /// From the speech-to-text session.
    Stt(SttEvent),
    /// A piece of reply `reply`'s text from the LLM.
    ReplyDelta { reply: u64, text: String },
    /// Reply `reply` is complete.
    ReplyDone { reply: u64 },
    /// Reply `reply` could not be produced (the LLM failed).
    ReplyFailed { reply: u64 },
    /// The provider echoed our mark: everything we sent before it has been played.
    MarkPlayed { mark: String },
    /// A key the callee pressed (`dtmf`).
    Dtmf { digit: char },
    /// The provider's own answering-machine verdict (Twilio AsyncAmd), when it has one.
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
    Reply,
    NoResponsePrompt,
    Goodbye,
    Voicemail,
}

/// What the server must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Synthesise `text`, send its audio (paced, at most ~300 ms ahead of real time), then a
    /// mark named `mark`. The provider echoes the mark when the audio has played.
    Say { mark: String, text: String, kind: Utterance },
    /// Ask the LLM for reply `reply`; feed its text back as `ReplyDelta`/`ReplyDone`.
    Reply { reply: u64, request: ChatRequest },
    /// Stop producing reply `reply` (barge-in); its further deltas are ignored.
    CancelReply { reply: u64 },
    /// Drop our queued audio and send `clear` to the provider.
    Clear,
    /// Tell the STT session the callee's turn ended (`SttInput::Finalize`).
    FinalizeStt,
    /// Close the stream and end the call.
    Hangup(Ending),
}

/// How a conversation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoiceOutcome {
    /// A person answered and spoke with the agent.
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

/// One call's conversation. Created at dial time (while the phone rings).
#[derive(Debug)]
pub struct Conversation {
    script: Script,
    timing: Timing,
    transcript: Vec<TranscriptTurn>,
    ending: Option<Ending>,
}

impl Conversation {
    pub fn new(script: Script, timing: Timing) -> Self {
        Self { script, timing, transcript: Vec::new(), ending: None }
    }

    /// Applies one input that happened at `now`; returns what to do, in order.
    pub fn handle(&mut self, now: Timestamp, input: Input) -> Vec<Action> {
        let _ = (now, input, &self.script, &self.timing);
        Vec::new()
    }

    /// When to call `handle(now, Input::Tick)` if nothing else happens first.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        None
    }

    /// The turns so far; an interrupted agent turn holds only what was played.
    pub fn transcript(&self) -> &[TranscriptTurn] {
        &self.transcript
    }

    /// `Some` once the conversation has ended.
    pub fn ending(&self) -> Option<Ending> {
        self.ending
    }
}
