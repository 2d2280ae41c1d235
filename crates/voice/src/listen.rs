//! What the callee's audio contains: runs the VAD and the beep detector over inbound 8 kHz
//! 16-bit PCM and reports onsets, ends and beeps as [`Heard`] events.
//!
//! Times come from sample positions: each chunk carries the time of its first sample and
//! sample `i` of it is `i × 125 µs` later, so events do not move with scheduling jitter.
//!
//! Segmenting (endpointing) follows the usual VAD hysteresis (Pipecat's start/stop seconds,
//! LiveKit's min speech and endpointing delay; /work/shared/VOICE.md §2): an onset is confirmed
//! after [`ListenerConfig::onset_ms`] of voiced frames and reported with the time of its first
//! voiced frame; a segment ends after [`ListenerConfig::end_silence_ms`] without voice.
//!
//! The VAD scores pure tones and DTMF as voice (VOICE.md §3), so frames that are one tone in
//! 800–1200 Hz or a DTMF pair do not count as voiced: a voicemail beep is a [`Heard::Beep`],
//! not a speech onset.

use crate::beep::{BeepConfig, BeepDetector, GoertzelBank};
use crate::vad::{EarshotVad, Vad};
use jiff::{SignedDuration, Timestamp};
use std::collections::VecDeque;

/// Something heard on the callee's side of the line.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    /// The callee started speaking (VAD onset). `at` is the onset time.
    SpeechStarted { at: Timestamp },
    /// The callee stopped speaking (VAD end after the endpointing silence).
    /// `speech_ms`: how long the segment lasted, onset to last voiced frame (ms).
    /// `at` is the end of the last voiced frame; the event comes `end_silence_ms` after it.
    SpeechEnded { at: Timestamp, speech_ms: u64 },
    /// A voicemail beep: a single tone of `hz` (800–1200 Hz) lasting `ms` (≥ 160 ms).
    /// `at` is the beep's start; the event comes when the tone ends (or after 1.5 s of it).
    Beep { at: Timestamp, hz: u32, ms: u64 },
}

/// The listener's thresholds. `Default` holds the values below.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerConfig {
    /// VAD probability at or above which a frame is voiced (0.5, earshot's suggested threshold).
    pub vad_threshold: f32,
    /// Voiced time (ms) that confirms an onset (80 ms: five 16 ms frames). Shorter bursts
    /// (clicks) are never reported; the conversation itself ignores segments < 200 ms.
    pub onset_ms: u64,
    /// Unvoiced time (ms) that abandons an onset not yet confirmed (100 ms).
    pub onset_gap_ms: u64,
    /// Endpointing: unvoiced time (ms) after the last voiced frame that ends a segment (700 ms,
    /// between LiveKit's 0.5 s and Pipecat's 0.8 s; keeps a sentence's pauses in one segment).
    pub end_silence_ms: u64,
    /// Do not count frames that are a single tone or a DTMF pair as voiced (true).
    pub mask_tones: bool,
    /// The beep detector's rule (VOICE.md §5).
    pub beep: BeepConfig,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self { vad_threshold: 0.5, onset_ms: 80, onset_gap_ms: 100, end_silence_ms: 700, mask_tones: true, beep: BeepConfig::default() }
    }
}

/// Input sample rate (Hz).
const RATE: u64 = 8_000;

/// DTMF row and column frequencies (Hz), ITU-T Q.23.
const DTMF_LOW: [u32; 4] = [697, 770, 852, 941];
const DTMF_HIGH: [u32; 4] = [1209, 1336, 1477, 1633];

/// A frame is masked as a tone only above this RMS (16-bit scale, ≈ −60 dBFS).
const MASK_MIN_RMS: f32 = 30.0;

/// Hears one call's inbound audio. Create one per call; feed every inbound chunk in order.
pub struct Listener {
    config: ListenerConfig,
    vad: Box<dyn Vad>,
    beep: BeepDetector,
    /// Beep band then DTMF low and high groups, on the VAD's frame length.
    mask: GoertzelBank,
    mask_ratios: Vec<f32>,
    /// Unprocessed samples from absolute index `buf_start`.
    buf: Vec<i16>,
    buf_start: u64,
    received: u64,
    vad_pos: u64,
    beep_pos: u64,
    /// (first sample index, its time) of recent chunks.
    anchors: VecDeque<(u64, Timestamp)>,
    state: State,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").field("config", &self.config).field("received", &self.received).field("state", &self.state).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Silent { onset: Option<Onset> },
    Speaking { start: u64, last_voiced_end: u64, last_voiced_end_at: Timestamp },
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Onset {
    start: u64,
    at: Timestamp,
    voiced: u64,
    last_voiced_end: u64,
}

impl Listener {
    /// A listener on [`EarshotVad`] with its automatic gain control.
    pub fn new(config: ListenerConfig) -> Self {
        Self::with_vad(config, Box::new(EarshotVad::default()))
    }

    /// A listener on another [`Vad`] (tests, other models). The VAD must take 8 kHz frames.
    pub fn with_vad(config: ListenerConfig, vad: Box<dyn Vad>) -> Self {
        let beep = BeepDetector::new(config.beep.clone());
        let b = &config.beep;
        let freqs: Vec<u32> = (b.min_hz..=b.max_hz).step_by(b.step_hz.max(1) as usize).chain(DTMF_LOW).chain(DTMF_HIGH).collect();
        let mask = GoertzelBank::new(freqs, vad.frame_samples().max(2), RATE as u32);
        Self {
            config,
            vad,
            beep,
            mask,
            mask_ratios: Vec::new(),
            buf: Vec::new(),
            buf_start: 0,
            received: 0,
            vad_pos: 0,
            beep_pos: 0,
            anchors: VecDeque::new(),
            state: State::Silent { onset: None },
        }
    }

    /// Is a speech segment in progress (onset reported, end not yet)?
    pub fn speaking(&self) -> bool {
        matches!(self.state, State::Speaking { .. })
    }

    /// Feeds the next inbound chunk: 8 kHz 16-bit PCM of any length, whose first sample was
    /// heard at `at` (the stream's start plus the provider's media timestamp, or the arrival
    /// time). Returns what was heard in the frames this chunk completed, in order.
    pub fn push(&mut self, at: Timestamp, pcm: &[i16]) -> Vec<Heard> {
        if pcm.is_empty() {
            return Vec::new();
        }
        self.anchors.push_back((self.received, at));
        self.received += pcm.len() as u64;
        self.buf.extend_from_slice(pcm);
        let mut heard = Vec::new();
        let (vad_len, beep_len) = (self.vad.frame_samples().max(1) as u64, self.beep.frame_samples() as u64);
        loop {
            let vad_end = self.vad_pos + vad_len;
            let beep_end = self.beep_pos + beep_len;
            let next = vad_end.min(beep_end);
            if next > self.received {
                break;
            }
            if vad_end <= beep_end {
                self.vad_frame(&mut heard);
            } else {
                self.beep_frame(&mut heard);
            }
        }
        self.trim();
        heard
    }

    /// Ends the stream: reports a segment or a beep still in progress.
    pub fn finish(&mut self) -> Vec<Heard> {
        let mut heard = Vec::new();
        if let Some(beep) = self.beep.finish() {
            heard.push(Heard::Beep { at: self.time_of(beep.start_sample), hz: beep.hz, ms: beep.ms });
        }
        if let State::Speaking { start, last_voiced_end, last_voiced_end_at } = self.state {
            heard.push(Heard::SpeechEnded { at: last_voiced_end_at, speech_ms: samples_to_ms(last_voiced_end - start) });
        }
        self.state = State::Silent { onset: None };
        heard
    }

    fn beep_frame(&mut self, heard: &mut Vec<Heard>) {
        let len = self.beep.frame_samples() as u64;
        let pos = self.beep_pos;
        let from = (pos - self.buf_start) as usize;
        let found = self.beep.push_frame(&self.buf[from..from + len as usize]);
        self.beep_pos += len;
        if let Some(beep) = found {
            heard.push(Heard::Beep { at: self.time_of(beep.start_sample), hz: beep.hz, ms: beep.ms });
        }
    }

    fn vad_frame(&mut self, heard: &mut Vec<Heard>) {
        let len = self.vad.frame_samples().max(1) as u64;
        let pos = self.vad_pos;
        let end = pos + len;
        let from = (pos - self.buf_start) as usize;
        let p = self.vad.voice_probability(&self.buf[from..from + len as usize]);
        let voiced = p >= self.config.vad_threshold && !(self.config.mask_tones && self.is_tone(pos, len));
        self.vad_pos = end;
        let (pos_at, end_at) = (self.time_of(pos), self.time_of(end));
        let cfg = &self.config;
        self.state = match self.state {
            State::Silent { onset } => {
                let onset = match (voiced, onset) {
                    (true, None) => Some(Onset { start: pos, at: pos_at, voiced: len, last_voiced_end: end }),
                    (true, Some(o)) => Some(Onset { voiced: o.voiced + len, last_voiced_end: end, ..o }),
                    (false, Some(o)) if samples_to_ms(end - o.last_voiced_end) > cfg.onset_gap_ms => None,
                    (false, onset) => onset,
                };
                match onset {
                    Some(o) if samples_to_ms(o.voiced) >= cfg.onset_ms => {
                        heard.push(Heard::SpeechStarted { at: o.at });
                        State::Speaking { start: o.start, last_voiced_end: end, last_voiced_end_at: end_at }
                    }
                    onset => State::Silent { onset },
                }
            }
            State::Speaking { start, .. } if voiced => State::Speaking { start, last_voiced_end: end, last_voiced_end_at: end_at },
            State::Speaking { start, last_voiced_end, last_voiced_end_at } if samples_to_ms(end - last_voiced_end) >= cfg.end_silence_ms => {
                heard.push(Heard::SpeechEnded { at: last_voiced_end_at, speech_ms: samples_to_ms(last_voiced_end - start) });
                State::Silent { onset: None }
            }
            state => state,
        };
    }

    /// Is the frame one tone in the beep band, or a DTMF pair?
    fn is_tone(&mut self, pos: u64, len: u64) -> bool {
        let frame = {
            let from = (pos - self.buf_start) as usize;
            &self.buf[from..from + len as usize]
        };
        let rms = self.mask.ratios(frame, &mut self.mask_ratios);
        if rms <= MASK_MIN_RMS {
            return false;
        }
        let n = self.mask_ratios.len() - DTMF_LOW.len() - DTMF_HIGH.len();
        let (band, dtmf) = self.mask_ratios.split_at(n);
        let (low, high) = dtmf.split_at(DTMF_LOW.len());
        let max = |r: &[f32]| r.iter().copied().fold(0.0f32, f32::max);
        let threshold = self.config.beep.min_tone_ratio;
        max(band) >= threshold || max(low) + max(high) >= threshold
    }

    /// The time of absolute sample `idx`, from the chunk it arrived in.
    fn time_of(&self, idx: u64) -> Timestamp {
        let (start, at) = self.anchors.iter().rev().find(|(s, _)| *s <= idx).or(self.anchors.front()).copied().unwrap_or((0, Timestamp::UNIX_EPOCH));
        let nanos = (i128::from(idx) - i128::from(start)) * 1_000_000_000 / i128::from(RATE);
        at.checked_add(SignedDuration::from_nanos(nanos as i64)).unwrap_or(at)
    }

    /// Drops samples both grids have passed and anchors no event can still need.
    fn trim(&mut self) {
        let done = self.vad_pos.min(self.beep_pos);
        if done > self.buf_start {
            self.buf.drain(..(done - self.buf_start) as usize);
            self.buf_start = done;
        }
        // A beep is reported up to `report_after_ms` (plus a frame) after it started.
        let keep_ms = self.config.beep.report_after_ms + 1_000;
        let keep_from = self.beep_pos.saturating_sub(keep_ms * RATE / 1000).min(self.vad_pos);
        while self.anchors.len() > 1 && self.anchors[1].0 <= keep_from {
            self.anchors.pop_front();
        }
    }
}

fn samples_to_ms(samples: u64) -> u64 {
    samples * 1000 / RATE
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VAD that plays back a script of per-frame probabilities (then 0).
    struct Scripted(std::vec::IntoIter<f32>);

    impl Vad for Scripted {
        fn frame_samples(&self) -> usize {
            128
        }
        fn voice_probability(&mut self, _frame: &[i16]) -> f32 {
            self.0.next().unwrap_or(0.0)
        }
        fn reset(&mut self) {}
    }

    fn t(ms: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH + SignedDuration::from_millis(ms)
    }

    /// Runs `script` (1 = voiced 16 ms frame) over silence fed frame by frame; returns
    /// (event, frame index after which it was returned).
    fn run(script: &str, frames: usize) -> Vec<(Heard, u64)> {
        let probs = script.chars().filter(|c| !c.is_whitespace()).map(|c| if c == '1' { 0.9 } else { 0.1 }).collect::<Vec<_>>();
        let mut l = Listener::with_vad(ListenerConfig::default(), Box::new(Scripted(probs.into_iter())));
        let mut out = Vec::new();
        for i in 0..frames {
            for h in l.push(t(i as i64 * 16), &[0; 128]) {
                out.push((h, l.vad_pos / 128));
            }
        }
        out
    }

    #[test]
    fn onset_is_confirmed_after_80_ms_and_dated_at_its_first_frame() {
        let heard = run("00 1101 1 1 0000", 200);
        assert_eq!(heard[0], (Heard::SpeechStarted { at: t(32) }, 8));
    }

    #[test]
    fn a_gap_before_confirmation_drops_the_onset() {
        // Four voiced frames, then seven silent (112 ms > 100 ms), then five voiced from frame 11.
        let heard = run("1111 0000000 11111", 200);
        assert_eq!(heard[0], (Heard::SpeechStarted { at: t(11 * 16) }, 16));
        // Shorter bursts never start a segment.
        assert_eq!(run("1111 0000000 1111 0000000 1", 200), vec![]);
    }

    #[test]
    fn segment_ends_after_700_ms_of_silence_dated_at_the_last_voiced_frame() {
        // Voiced frames 0–9, a 640 ms pause (40 frames), voiced 50–59, then silence.
        let script = format!("{}{}{}", "1".repeat(10), "0".repeat(40), "1".repeat(10));
        let heard = run(&script, 200);
        assert_eq!(
            heard,
            vec![
                (Heard::SpeechStarted { at: t(0) }, 5),
                // Last voiced frame ends at 60 × 16 = 960 ms; 44 frames (704 ms) later the end is reported.
                (Heard::SpeechEnded { at: t(960), speech_ms: 960 }, 104),
            ]
        );
    }

    #[test]
    fn finish_closes_an_open_segment() {
        let mut l = Listener::with_vad(ListenerConfig::default(), Box::new(Scripted(vec![0.9; 20].into_iter())));
        assert_eq!(l.push(t(0), &[0; 128 * 20]), vec![Heard::SpeechStarted { at: t(0) }]);
        assert!(l.speaking());
        assert_eq!(l.finish(), vec![Heard::SpeechEnded { at: t(320), speech_ms: 320 }]);
        assert!(!l.speaking());
    }

    #[test]
    fn listener_can_move_between_tasks() {
        fn send<T: Send>() {}
        send::<Listener>();
    }
}
