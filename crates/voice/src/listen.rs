//! What the callee's audio contains: runs the VAD and the beep detector over inbound 8 kHz
//! 16-bit PCM and reports onsets, ends and beeps as [`Heard`] events.

use jiff::Timestamp;

/// Something heard on the callee's side of the line.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    /// The callee started speaking (VAD onset). `at` is the onset time.
    SpeechStarted { at: Timestamp },
    /// The callee stopped speaking (VAD end after the endpointing silence).
    /// `speech_ms`: how long the segment lasted, onset to last voiced frame (ms).
    SpeechEnded { at: Timestamp, speech_ms: u64 },
    /// A voicemail beep: a single tone of `hz` (800–1200 Hz) lasting `ms` (≥ 160 ms).
    Beep { at: Timestamp, hz: u32, ms: u64 },
}
