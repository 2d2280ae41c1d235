//! Voicemail beep detection: a single steady tone of 800–1200 Hz lasting at least 160 ms.
//!
//! The rule is /work/shared/VOICE.md §5's, measured there on the project's fixtures (850/1000 Hz
//! beeps, a beep in pink noise, zero hits on 24 speech files, DTMF, 440/1400 Hz): a bank of
//! Goertzel filters on 20 ms Hann-windowed frames, bins 800–1200 Hz every 25 Hz; a frame is
//! tonal when its strongest bin holds ≥ 0.6 of the frame's energy and its RMS is > 300; a beep
//! is ≥ 160 ms of tonal frames whose frequency stays within ±50 Hz. Beeps in the field are
//! single tones around 1 kHz (Genesys: 1000 ± 50 Hz; LumenVox: 70 ms–1.5 s).
//!
//! Own code, with a reason: the crates (`goertzel` 0.2, `rustfft`) would give us one bin or a
//! whole spectrum; the bank, the energy ratio and the stability rule are the detector, and the
//! whole is ~100 lines that cost ~0.6 ms per audio second.

use std::f32::consts::PI;

/// The detector's thresholds. `Default` is VOICE.md §5.
#[derive(Debug, Clone, PartialEq)]
pub struct BeepConfig {
    /// Sample rate of the input (Hz). [`crate::listen::Listener`] takes 8,000 Hz only.
    pub sample_rate: u32,
    /// Analysis frame (ms); 20 ms = 160 samples at 8 kHz.
    pub frame_ms: u32,
    /// Lowest and highest bin (Hz) and the bins' spacing (Hz).
    pub min_hz: u32,
    pub max_hz: u32,
    pub step_hz: u32,
    /// Share of the frame's (windowed) energy the strongest bin must hold (0.6).
    pub min_tone_ratio: f32,
    /// Frame RMS a tonal frame must exceed (300 on the 16-bit scale, ≈ −41 dBFS).
    pub min_rms: f32,
    /// Shortest beep (ms).
    pub min_ms: u64,
    /// How far (Hz) a beep's frames may stray from its first frame's frequency.
    pub max_drift_hz: u32,
    /// A tone still going after this long (ms) is reported without waiting for its end.
    pub report_after_ms: u64,
}

impl Default for BeepConfig {
    fn default() -> Self {
        Self {
            sample_rate: 8_000,
            frame_ms: 20,
            min_hz: 800,
            max_hz: 1_200,
            step_hz: 25,
            min_tone_ratio: 0.6,
            min_rms: 300.0,
            min_ms: 160,
            max_drift_hz: 50,
            report_after_ms: 1_500,
        }
    }
}

/// The strongest single tone in one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tone {
    /// Frequency of the strongest bin (Hz).
    pub hz: u32,
    /// Its share of the frame's windowed energy (0–1; 1 for a pure tone on the bin).
    pub ratio: f32,
    /// The frame's RMS (16-bit scale).
    pub rms: f32,
}

/// A bank of Goertzel filters over Hann-windowed frames of one length.
#[derive(Debug, Clone)]
pub struct GoertzelBank {
    /// (Hz, 2·cos ω) per bin.
    bins: Vec<(u32, f32)>,
    window: Vec<f32>,
    /// 2·Σw² / (Σw)²: turns |X|²/E into 1 for a pure tone on a bin.
    norm: f32,
}

impl GoertzelBank {
    /// Bins at `freqs` (Hz) for frames of `frame_len` samples at `sample_rate` Hz.
    pub fn new(freqs: impl IntoIterator<Item = u32>, frame_len: usize, sample_rate: u32) -> Self {
        let n = frame_len.max(2);
        let window: Vec<f32> = (0..n).map(|i| 0.5 - 0.5 * (2.0 * PI * i as f32 / (n - 1) as f32).cos()).collect();
        let sum: f32 = window.iter().sum();
        let sum_sq: f32 = window.iter().map(|w| w * w).sum();
        let bins = freqs.into_iter().map(|hz| (hz, 2.0 * (2.0 * PI * hz as f32 / sample_rate as f32).cos())).collect();
        Self { bins, window, norm: 2.0 * sum_sq / (sum * sum) }
    }

    /// Frame length (samples) the bank is built for.
    pub fn frame_len(&self) -> usize {
        self.window.len()
    }

    /// Each bin's share of the frame's windowed energy, in bin order, into `out` (all 0 for a
    /// silent or wrongly sized frame); returns the frame's RMS. Allocation-free once `out` has
    /// room for two values per bin.
    pub fn ratios(&self, frame: &[i16], out: &mut Vec<f32>) -> f32 {
        let bins = self.bins.len();
        out.clear();
        if frame.len() != self.window.len() {
            out.resize(bins, 0.0);
            return 0.0;
        }
        // All bins run side by side over the windowed samples: out[2b], out[2b+1] = s1, s2.
        out.resize(2 * bins, 0.0);
        let (mut energy, mut raw) = (0.0f32, 0.0f32);
        for (&s, &w) in frame.iter().zip(&self.window) {
            let x = f32::from(s);
            raw += x * x;
            let v = x * w;
            energy += v * v;
            for (state, &(_, coeff)) in out.chunks_exact_mut(2).zip(&self.bins) {
                let s0 = v + coeff * state[0] - state[1];
                state[1] = state[0];
                state[0] = s0;
            }
        }
        for b in 0..bins {
            let (s1, s2, coeff) = (out[2 * b], out[2 * b + 1], self.bins[b].1);
            let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
            out[b] = if energy > 0.0 { (power / energy * self.norm).clamp(0.0, 1.0) } else { 0.0 };
        }
        out.truncate(bins);
        (raw / frame.len() as f32).sqrt()
    }

    /// The strongest bin of `frame`; `scratch` as in [`GoertzelBank::ratios`].
    pub fn strongest_with(&self, frame: &[i16], scratch: &mut Vec<f32>) -> Tone {
        let rms = self.ratios(frame, scratch);
        let (i, ratio) = scratch.iter().copied().enumerate().fold((0, 0.0f32), |best, (i, r)| if r > best.1 { (i, r) } else { best });
        Tone { hz: self.bins.get(i).map_or(0, |b| b.0), ratio, rms }
    }

    /// The strongest bin of `frame`.
    pub fn strongest(&self, frame: &[i16]) -> Tone {
        self.strongest_with(frame, &mut Vec::new())
    }
}

/// A beep the detector found, in sample positions of the stream it was fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beep {
    /// Index of the beep's first sample since the detector started.
    pub start_sample: u64,
    /// Mean frequency of its frames (Hz).
    pub hz: u32,
    /// Its length (ms), a whole number of frames.
    pub ms: u64,
}

/// Streaming beep detector. Feed it consecutive frames of [`BeepDetector::frame_samples`]
/// samples; it reports a beep when the tone ends (so a voicemail message starts after it),
/// or once the tone has lasted `report_after_ms`.
#[derive(Debug, Clone)]
pub struct BeepDetector {
    config: BeepConfig,
    bank: GoertzelBank,
    frame_ms: u64,
    frames: u64,
    run: Option<Run>,
    scratch: Vec<f32>,
}

#[derive(Debug, Clone, Copy)]
struct Run {
    first_frame: u64,
    first_hz: u32,
    hz_sum: u64,
    frames: u64,
    reported: bool,
}

impl Default for BeepDetector {
    fn default() -> Self {
        Self::new(BeepConfig::default())
    }
}

impl BeepDetector {
    pub fn new(config: BeepConfig) -> Self {
        let frame_len = (config.sample_rate as usize * config.frame_ms as usize / 1000).max(2);
        let step = config.step_hz.max(1) as usize;
        let bank = GoertzelBank::new((config.min_hz..=config.max_hz).step_by(step), frame_len, config.sample_rate);
        let frame_ms = u64::from(config.frame_ms);
        Self { config, bank, frame_ms, frames: 0, run: None, scratch: Vec::new() }
    }

    /// Samples per frame (160 at 8 kHz, 20 ms).
    pub fn frame_samples(&self) -> usize {
        self.bank.frame_len()
    }

    /// Is `frame` tonal by the beep rule (strongest bin ≥ `min_tone_ratio`, RMS > `min_rms`)?
    /// Returns the tone if so.
    pub fn tonal(&mut self, frame: &[i16]) -> Option<Tone> {
        let tone = self.bank.strongest_with(frame, &mut self.scratch);
        (tone.ratio >= self.config.min_tone_ratio && tone.rms > self.config.min_rms).then_some(tone)
    }

    /// Feeds the next frame; returns a beep that ended (or grew long enough) with it.
    pub fn push_frame(&mut self, frame: &[i16]) -> Option<Beep> {
        let index = self.frames;
        self.frames += 1;
        let tone = self.tonal(frame);
        let mut found = None;
        match (tone, &mut self.run) {
            (Some(t), Some(run)) if t.hz.abs_diff(run.first_hz) <= self.config.max_drift_hz => {
                run.frames += 1;
                run.hz_sum += u64::from(t.hz);
                if !run.reported && run.frames * self.frame_ms >= self.config.report_after_ms {
                    let run = *run;
                    found = self.beep_of(run);
                    if let Some(r) = &mut self.run {
                        r.reported = true;
                    }
                }
            }
            _ => {
                found = self.run.take().and_then(|run| self.beep_of(run));
                self.run = tone.map(|t| Run { first_frame: index, first_hz: t.hz, hz_sum: u64::from(t.hz), frames: 1, reported: false });
            }
        }
        found
    }

    /// Ends the stream: reports a beep still in progress.
    pub fn finish(&mut self) -> Option<Beep> {
        self.run.take().and_then(|run| self.beep_of(run))
    }

    /// The beep a run makes, if it is long enough and not reported yet.
    fn beep_of(&self, run: Run) -> Option<Beep> {
        let ms = run.frames * self.frame_ms;
        (!run.reported && ms >= self.config.min_ms).then(|| Beep {
            start_sample: run.first_frame * self.frame_samples() as u64,
            hz: (run.hz_sum / run.frames) as u32,
            ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: usize, hz: f32, amplitude: f32) -> Vec<i16> {
        (0..8 * ms).map(|i| (amplitude * (2.0 * PI * hz * i as f32 / 8_000.0).sin()).round() as i16).collect()
    }

    fn run(pcm: &[i16]) -> Vec<Beep> {
        let mut det = BeepDetector::default();
        let mut found: Vec<Beep> = pcm.chunks_exact(det.frame_samples()).filter_map(|f| det.push_frame(f)).collect();
        found.extend(det.finish());
        found
    }

    #[test]
    fn a_pure_tone_holds_its_frame() {
        let det = BeepDetector::default();
        assert_eq!(det.frame_samples(), 160);
        let on_bin = det.bank.strongest(&tone(20, 1_000.0, 8_000.0));
        assert_eq!(on_bin.hz, 1_000);
        assert!(on_bin.ratio > 0.95, "{on_bin:?}");
        let between = det.bank.strongest(&tone(20, 1_012.5, 8_000.0));
        assert!(between.ratio > 0.8 && between.hz.abs_diff(1_012) <= 13, "{between:?}");
        let two = det.bank.strongest(&tone(20, 770.0, 4_000.0).iter().zip(tone(20, 1_336.0, 4_000.0)).map(|(a, b)| a + b).collect::<Vec<_>>());
        assert!(two.ratio < 0.6, "DTMF is not one tone: {two:?}");
    }

    #[test]
    fn odd_frames_do_not_panic() {
        let mut det = BeepDetector::default();
        assert_eq!(det.push_frame(&[1; 7]), None);
        assert_eq!(det.push_frame(&[]), None);
        assert_eq!(det.bank.strongest(&[0; 160]).ratio, 0.0);
    }

    #[test]
    fn a_beep_is_reported_when_it_ends_with_its_start_and_length() {
        let pcm = [vec![0; 1_600], tone(300, 1_000.0, 8_000.0), vec![0; 1_600]].concat();
        let mut det = BeepDetector::default();
        let hits: Vec<(usize, Beep)> = pcm.chunks_exact(160).enumerate().filter_map(|(i, f)| det.push_frame(f).map(|b| (i, b))).collect();
        assert_eq!(hits, vec![(25, Beep { start_sample: 1_600, hz: 1_000, ms: 300 })]);
    }

    #[test]
    fn a_frequency_jump_splits_tones() {
        // 120 ms at 900 Hz then 120 ms at 1,000 Hz: neither is long enough, nor are they one tone.
        assert_eq!(run(&[tone(120, 900.0, 8_000.0), tone(120, 1_000.0, 8_000.0), vec![0; 800]].concat()), vec![]);
        let two = run(&[tone(200, 850.0, 8_000.0), tone(200, 1_150.0, 8_000.0), vec![0; 800]].concat());
        assert_eq!(two.iter().map(|b| b.hz).collect::<Vec<_>>(), vec![850, 1_150]);
    }

    #[test]
    fn a_long_tone_is_reported_once_after_1_5_s() {
        let pcm = [tone(3_000, 1_000.0, 8_000.0), vec![0; 800]].concat();
        let mut det = BeepDetector::default();
        let hits: Vec<(usize, Beep)> = pcm.chunks_exact(160).enumerate().filter_map(|(i, f)| det.push_frame(f).map(|b| (i, b))).collect();
        assert_eq!(hits, vec![(74, Beep { start_sample: 0, hz: 1_000, ms: 1_500 })]);
        assert_eq!(det.finish(), None);
    }
}
