//! dialtone-voice: dialtone's own voice pipeline for Exotel and Twilio media streams, pure.
//!
//! - [`codec`], [`resample`], [`chunk`]: μ-law / 16-bit PCM, 8 ↔ 16 kHz, outbound chunk sizes
//!   (Exotel: multiples of 320 B, at least 3,200 B; Twilio: 160 B μ-law frames).
//! - [`vad`], [`beep`], [`listen`]: what the callee's audio contains (speech onsets and ends,
//!   voicemail beeps), as [`listen::Heard`] events.
//! - [`conversation`]: the call's state machine on the engine's clock (greeting, listening,
//!   replies, barge-in, no response, voicemail, maximum duration). It takes [`conversation::Input`]s
//!   and returns [`conversation::Action`]s; the server does the I/O.
//! - [`speech`]: the `Stt`, `Llm` and `Tts` traits the server's clients implement.
//!
//! No sockets, no files, no clocks of its own: the server feeds it frames and times.

pub mod beep;
pub mod chunk;
pub mod codec;
pub mod conversation;
pub mod listen;
pub mod resample;
pub mod speech;
pub mod vad;
