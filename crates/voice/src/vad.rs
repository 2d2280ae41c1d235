//! Voice activity detection (VAD): is there speech in this frame of the callee's audio?
//!
//! [`Vad`] is the seam (a scripted VAD in tests, another model later); [`EarshotVad`] is the
//! implementation: the pure-Rust `earshot` 1.2 network (MIT/Apache, ~100 KiB, ~7 µs per frame),
//! chosen in /work/shared/VOICE.md §3 because it gave 0.00 voiced frames on silence and
//! white/pink noise where `webrtc-vad` gave up to 1.00. earshot takes 16 kHz only, so 8 kHz
//! phone audio is upsampled ×2, on purpose by linear interpolation and not by the anti-aliased
//! [`crate::resample`]: earshot was trained on wideband audio, and noise with nothing above
//! 4 kHz looks like voice to it. Measured on the fixtures and sox noise (μ-law, 8 kHz): with the
//! clean FIR, white/pink noise at −33 dBFS RMS and louder scored 0.94–0.98 of frames voiced;
//! with linear interpolation (whose attenuated images keep some energy above 4 kHz) 0.00–0.02,
//! while the speech clips stayed at 0.62–0.93 and DTMF fell from 0.83 to 0.08.
//!
//! A slow automatic gain control ([`Agc`]) levels quiet lines first: speech peaking at
//! −40 dBFS had 0.00–0.80 of its frames voiced without it, 0.60–0.86 with it.
//!
//! Known weaknesses: very loud noise (≈ −16 dBFS RMS and up) scores as voice whatever the
//! upsampling; tones can score as voice (VOICE.md §3: 0.83 of frames; here a beep right after
//! a greeting stretched its segment), so [`crate::listen`] masks tonal frames with
//! [`crate::beep`]'s Goertzel bank.

/// Sample rate the VADs here take (Hz): the phone's.
pub const VAD_RATE_HZ: u32 = 8_000;

/// A per-frame voice activity detector over 8 kHz 16-bit PCM.
pub trait Vad: Send {
    /// Samples per frame at 8 kHz (e.g. 128 = 16 ms). Every frame passed in has exactly this length.
    fn frame_samples(&self) -> usize;

    /// The probability (0.0–1.0) that `frame` holds voice. Implementations keep state across
    /// frames (context, gain), so frames must be consecutive.
    fn voice_probability(&mut self, frame: &[i16]) -> f32;

    /// Forgets all state (a new stream).
    fn reset(&mut self);
}

/// Automatic gain control for the VAD's input (not for what the STT hears).
///
/// Follows the line's level in dB on 16 ms frames, starting from the first frame that is not
/// digital silence, with an attack of `attack_ms` (frames louder than the estimate) and a
/// release of `release_ms`, and brings that level to
/// `target_rms`: never below 1× (normal lines pass as they are), never above `max_gain`.
/// The gain moves slowly and is ramped across each frame: a gain that jumped with every
/// frame would modulate steady noise like syllables, and earshot took pink noise for voice
/// on 0.17 of frames that way (fixture measurement, instant-attack follower).
#[derive(Debug, Clone)]
pub struct Agc {
    /// RMS the followed level is brought to (1,500 ≈ −27 dBFS). Higher targets lift steady
    /// pink noise to where earshot starts calling it voice (≥ −20 dBFS in the fixture measurements).
    pub target_rms: f32,
    /// Largest gain (31.6× = +30 dB).
    pub max_gain: f32,
    /// Time constant (ms) of the level estimate rising.
    pub attack_ms: f32,
    /// Time constant (ms) of the level estimate falling.
    pub release_ms: f32,
    /// `None` until the first frame above the gate.
    level_db: Option<f32>,
    gain: f32,
}

impl Default for Agc {
    fn default() -> Self {
        Self::new(1_500.0, 31.6, 200.0, 3_000.0)
    }
}

/// Frames quieter than this RMS (16-bit scale) leave the level estimate alone: digital
/// silence is not a level to adapt to.
const AGC_GATE_RMS: f32 = 2.0;

impl Agc {
    pub fn new(target_rms: f32, max_gain: f32, attack_ms: f32, release_ms: f32) -> Self {
        let mut agc = Self { target_rms, max_gain, attack_ms, release_ms, level_db: None, gain: f32::NAN };
        agc.reset();
        agc
    }

    /// Applies the gain to `frame` (8 kHz samples) in place; returns the gain reached at its end.
    pub fn apply(&mut self, frame: &mut [i16]) -> f32 {
        let rms = rms(frame);
        let floor_db = db(self.target_rms / self.max_gain);
        if rms > AGC_GATE_RMS {
            let frame_db = db(rms);
            let level = match self.level_db {
                None => frame_db,
                Some(level) => {
                    let tau = if frame_db > level { self.attack_ms } else { self.release_ms };
                    let dur_ms = frame.len() as f32 * 1000.0 / VAD_RATE_HZ as f32;
                    level + (frame_db - level) * (1.0 - (-dur_ms / tau.max(1.0)).exp())
                }
            };
            self.level_db = Some(level.max(floor_db));
        }
        let Some(level_db) = self.level_db else { return 1.0 };
        let target = (10f32.powf((db(self.target_rms) - level_db) / 20.0)).clamp(1.0, self.max_gain);
        // The first level jumps straight to its gain; later ones ramp.
        let from = if self.gain.is_nan() { target } else { self.gain };
        let n = frame.len().max(1) as f32;
        for (i, s) in frame.iter_mut().enumerate() {
            let g = from + (target - from) * (i + 1) as f32 / n;
            *s = (f32::from(*s) * g).round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16;
        }
        self.gain = target;
        target
    }

    pub fn reset(&mut self) {
        self.level_db = None;
        self.gain = f32::NAN;
    }
}

fn db(rms: f32) -> f32 {
    20.0 * rms.max(1e-3).log10()
}

/// Root mean square of 16-bit samples (0 for an empty slice).
pub fn rms(x: &[i16]) -> f32 {
    if x.is_empty() {
        return 0.0;
    }
    let sum: f64 = x.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / x.len() as f64).sqrt() as f32
}

/// earshot's frame: 256 samples at 16 kHz (16 ms).
const EARSHOT_FRAME: usize = 256;

/// [`Vad`] on the `earshot` network, with optional [`Agc`], for 8 kHz input in 128-sample
/// (16 ms) frames. About 8 KiB of state per call.
pub struct EarshotVad {
    detector: Box<earshot::Detector>,
    agc: Option<Agc>,
    /// The previous input sample (after gain), for interpolation across frames.
    prev: i16,
    scratch: Vec<i16>,
    wide: Vec<i16>,
}

impl std::fmt::Debug for EarshotVad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EarshotVad").field("agc", &self.agc).finish_non_exhaustive()
    }
}

impl Default for EarshotVad {
    fn default() -> Self {
        Self::new(Some(Agc::default()))
    }
}

impl EarshotVad {
    /// `agc`: `None` feeds earshot the line as it is.
    pub fn new(agc: Option<Agc>) -> Self {
        let mut vad = Self { detector: earshot::Detector::default_boxed(), agc, prev: 0, scratch: Vec::new(), wide: Vec::new() };
        vad.reset();
        vad
    }
}

impl Vad for EarshotVad {
    fn frame_samples(&self) -> usize {
        EARSHOT_FRAME / 2
    }

    fn voice_probability(&mut self, frame: &[i16]) -> f32 {
        self.scratch.clear();
        self.scratch.extend_from_slice(frame);
        if let Some(agc) = &mut self.agc {
            agc.apply(&mut self.scratch);
        }
        // Linear interpolation ×2, half a sample (62.5 µs) late: the midpoint, then the sample.
        self.wide.clear();
        for &s in &self.scratch {
            self.wide.push(((i32::from(self.prev) + i32::from(s)) / 2) as i16);
            self.wide.push(s);
            self.prev = s;
        }
        if self.wide.len() != EARSHOT_FRAME {
            return 0.0;
        }
        self.detector.predict_i16(&self.wide).clamp(0.0, 1.0)
    }

    fn reset(&mut self) {
        self.detector.reset();
        if let Some(agc) = &mut self.agc {
            agc.reset();
        }
        self.prev = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(agc: &mut Agc, amplitude: i16, frames: usize) -> f32 {
        let mut g = 0.0;
        for _ in 0..frames {
            g = agc.apply(&mut [amplitude, -amplitude].repeat(64));
        }
        g
    }

    #[test]
    fn agc_lifts_a_quiet_line_and_leaves_a_loud_one() {
        let mut agc = Agc::default();
        assert_eq!(feed(&mut agc, 8_000, 100), 1.0);
        let mut agc = Agc::default();
        // −40 dBFS (RMS 328) is brought to the 1,500 target: a gain of ~4.6×.
        let g = feed(&mut agc, 328, 100);
        assert!((g - 4.57).abs() < 0.1, "{g}");
        let mut frame = [328i16, -328].repeat(64);
        agc.apply(&mut frame);
        assert!((1_450..=1_550).contains(&frame[127].abs()), "{}", frame[127]);
    }

    #[test]
    fn agc_gain_is_capped_and_silence_stays_silent() {
        let mut agc = Agc::default();
        assert!((feed(&mut agc, 10, 100) - 31.6).abs() < 0.01);
        let mut silence = vec![0i16; 128];
        agc.apply(&mut silence);
        assert!(silence.iter().all(|&s| s == 0));
    }

    #[test]
    fn agc_gain_ramps_without_jumps() {
        let mut agc = Agc::default();
        feed(&mut agc, 300, 50);
        let before = agc.gain;
        // A sudden loud frame: the gain falls along the frame, not at its start.
        let mut frame = vec![10_000i16; 128];
        let after = agc.apply(&mut frame);
        assert!(after < before);
        let first = f32::from(frame[0]) / 10_000.0;
        assert!((first - before).abs() < (before - after) / 64.0 + 0.01 || frame[0] == i16::MAX, "{first} vs {before}");
    }

    #[test]
    fn every_frame_gets_a_score_and_wrong_sizes_none() {
        let mut vad = EarshotVad::default();
        for _ in 0..5 {
            let p = vad.voice_probability(&[0; 128]);
            assert!((0.0..=1.0).contains(&p));
        }
        assert_eq!(vad.voice_probability(&[0; 127]), 0.0);
    }
}
