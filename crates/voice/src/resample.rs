//! Sample-rate conversion between the phone's 8,000 Hz and the 16,000/24,000 Hz that VADs and
//! TTS engines use (earshot needs 16 kHz; flite writes 16 kHz; many cloud TTS voices 24 kHz).
//!
//! Own code, with a reason: the crates (rubato, samplerate) are built for fixed-size blocks of
//! f32 frames and for arbitrary ratios; a phone stream arrives in chunks of any size (Exotel
//! ~100 ms, Twilio 20 ms, TTS whatever it likes) and only needs small integer ratios. A
//! polyphase windowed-sinc FIR (Kaiser window, ~70 dB stop band) streaming sample by sample is
//! ~150 lines, carries its state across chunks and costs ~30 multiply-adds per output sample.
//!
//! Filter: pass band up to 42.5 % of the lower rate (3,400 Hz at 8 kHz, the telephone band's
//! top), stop band from 57.5 % (4,600 Hz), so images (upsampling) and aliases (downsampling)
//! that would land in the telephone band are ≥ 70 dB down. The filter's group delay is taken
//! out: output sample `k` lines up with input time `k / to_hz` seconds.

use std::f64::consts::PI;

/// The largest reduced interpolation or decimation factor accepted (8 k ↔ 16 k ↔ 24 k ↔ 48 k
/// all reduce to ≤ 6); keeps the filter small.
pub const MAX_FACTOR: u32 = 12;

/// Stop-band attenuation the Kaiser window is designed for (dB).
const STOP_BAND_DB: f64 = 70.0;

/// A sample-rate pair this resampler does not handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot resample {from_hz} Hz to {to_hz} Hz: rates must be positive with a ratio of small integers (each ≤ {MAX_FACTOR} after reduction)")]
pub struct UnsupportedRates {
    pub from_hz: u32,
    pub to_hz: u32,
}

/// A streaming resampler from `from_hz` to `to_hz` for 16-bit mono PCM.
///
/// Feed chunks of any size with [`Resampler::process`]; call [`Resampler::finish`] at the end
/// of a stream (e.g. the end of one TTS utterance) to flush the filter's tail. After `finish`
/// the total output is `ceil(n_in × to_hz / from_hz)` samples.
#[derive(Debug, Clone)]
pub struct Resampler {
    from_hz: u32,
    to_hz: u32,
    /// Interpolation factor L and decimation factor M (to/from reduced).
    up: usize,
    down: usize,
    /// Taps per phase; the prototype filter has `up × taps` taps at `from_hz × up`.
    taps: usize,
    /// Polyphase filter: `phases[p][j] = h[p + j·L] · L`.
    phases: Vec<Vec<f32>>,
    /// Input samples from absolute index `base` on.
    history: Vec<f32>,
    base: u64,
    /// Input samples received since the start (or the last `finish`).
    n_in: u64,
    /// Next output index of the (delayed) filter output.
    k: u64,
    /// Leading outputs dropped to take the group delay out.
    skip: u64,
}

impl Resampler {
    /// A resampler from `from_hz` to `to_hz`.
    ///
    /// # Errors
    /// [`UnsupportedRates`] when a rate is zero or the reduced ratio has a factor above [`MAX_FACTOR`].
    pub fn new(from_hz: u32, to_hz: u32) -> Result<Self, UnsupportedRates> {
        let err = UnsupportedRates { from_hz, to_hz };
        if from_hz == 0 || to_hz == 0 {
            return Err(err);
        }
        let g = gcd(from_hz, to_hz);
        let (up, down) = (to_hz / g, from_hz / g);
        if up > MAX_FACTOR || down > MAX_FACTOR {
            return Err(err);
        }
        let (up, down) = (up as usize, down as usize);
        let fu = f64::from(from_hz) * up as f64;
        let low = f64::from(from_hz.min(to_hz));
        // Kaiser design (Oppenheim & Schafer 7.6): N ≈ (A − 8) / (2.285 Δω).
        let transition = 2.0 * PI * (0.15 * low) / fu;
        let n_est = ((STOP_BAND_DB - 8.0) / (2.285 * transition)).ceil() as usize + 1;
        let taps = if up == 1 && down == 1 { 1 } else { (n_est + up).div_ceil(up).max(2) };
        let n = taps * up;
        // An odd-length prototype whose centre is a whole number of output samples, so the
        // group delay comes out exactly; the taps past its end stay zero.
        let centre = down * ((n - 1) / (2 * down));
        let len = 2 * centre + 1;
        let beta = 0.1102 * (STOP_BAND_DB - 8.7);
        let cutoff = 0.5 * low / fu; // cycles per sample at fu
        let h: Vec<f64> = (0..n)
            .map(|i| {
                if i >= len {
                    return 0.0;
                }
                let t = i as f64 - centre as f64;
                let sinc = if t == 0.0 { 2.0 * cutoff } else { (2.0 * PI * cutoff * t).sin() / (PI * t) };
                let r = if len > 1 { t / centre as f64 } else { 0.0 };
                sinc * bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / bessel_i0(beta)
            })
            .collect();
        let sum: f64 = h.iter().sum();
        let phases = (0..up).map(|p| (0..taps).map(|j| (h[p + j * up] / sum * up as f64) as f32).collect()).collect();
        let skip = (centre / down) as u64;
        Ok(Self { from_hz, to_hz, up, down, taps, phases, history: Vec::new(), base: 0, n_in: 0, k: 0, skip })
    }

    /// Input rate (Hz).
    pub fn from_hz(&self) -> u32 {
        self.from_hz
    }

    /// Output rate (Hz).
    pub fn to_hz(&self) -> u32 {
        self.to_hz
    }

    /// Output samples dropped at the start of a stream to take out the filter's group delay.
    /// Prepending this many zeros to the output gives a stream whose sample `k` lags the input
    /// by exactly this many output samples and that yields exactly `n × to/from` samples for
    /// `n` in (when `n × to/from` is whole).
    pub fn delay(&self) -> usize {
        self.skip as usize
    }

    /// Resamples `input`, appending what can be computed so far to `out`. The last few
    /// samples wait for more input (or [`Resampler::finish`]).
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        self.history.extend(input.iter().map(|&s| f32::from(s)));
        self.n_in += input.len() as u64;
        while self.input_index(self.k) < self.n_in {
            self.emit(out);
        }
        self.trim();
    }

    /// Flushes the filter's tail into `out` and makes the resampler ready for a new stream.
    pub fn finish(&mut self, out: &mut Vec<i16>) {
        let total = (self.n_in * self.up as u64).div_ceil(self.down as u64) + self.skip;
        while self.k < total {
            self.emit(out);
        }
        self.history.clear();
        self.base = 0;
        self.n_in = 0;
        self.k = 0;
    }

    /// Drops any buffered input and starts over (e.g. on barge-in).
    pub fn reset(&mut self) {
        self.finish(&mut Vec::new());
    }

    /// Index of the newest input sample output `k` reads.
    fn input_index(&self, k: u64) -> u64 {
        k * self.down as u64 / self.up as u64
    }

    fn emit(&mut self, out: &mut Vec<i16>) {
        let t = self.k * self.down as u64;
        let n = t / self.up as u64;
        let phase = &self.phases[(t % self.up as u64) as usize];
        let mut acc = 0.0f32;
        for (j, &c) in phase.iter().enumerate() {
            let Some(idx) = n.checked_sub(j as u64) else { break };
            if idx < self.base {
                break;
            }
            if let Some(&x) = self.history.get((idx - self.base) as usize) {
                acc += c * x;
            }
        }
        if self.k >= self.skip {
            out.push(acc.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16);
        }
        self.k += 1;
    }

    /// Keeps only the input the next output still needs.
    fn trim(&mut self) {
        let keep_from = (self.input_index(self.k) + 1).saturating_sub(self.taps as u64);
        if keep_from > self.base {
            let drop = ((keep_from - self.base) as usize).min(self.history.len());
            self.history.drain(..drop);
            self.base += drop as u64;
        }
    }
}

/// One-shot resampling of a whole buffer (flushes the tail): `ceil(len × to_hz / from_hz)` samples.
///
/// # Errors
/// As [`Resampler::new`].
pub fn resample(input: &[i16], from_hz: u32, to_hz: u32) -> Result<Vec<i16>, UnsupportedRates> {
    let mut r = Resampler::new(from_hz, to_hz)?;
    let mut out = Vec::with_capacity(input.len() * to_hz as usize / from_hz as usize + 1);
    r.process(input, &mut out);
    r.finish(&mut out);
    Ok(out)
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Zeroth-order modified Bessel function of the first kind (power series), for the Kaiser window.
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..50 {
        term *= (half / k as f64) * (half / k as f64);
        sum += term;
        if term < sum * 1e-12 {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tone(hz: f64, rate: u32, n: usize, amp: f64) -> Vec<i16> {
        (0..n).map(|i| (amp * (2.0 * PI * hz * i as f64 / f64::from(rate)).sin()).round() as i16).collect()
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
    }

    /// Amplitude of `hz` in `x` (single-bin DFT), skipping the edges.
    fn amplitude(x: &[i16], hz: f64, rate: u32) -> f64 {
        let x = &x[x.len() / 8..x.len() * 7 / 8];
        let (mut re, mut im) = (0.0, 0.0);
        for (i, &s) in x.iter().enumerate() {
            let w = 2.0 * PI * hz * i as f64 / f64::from(rate);
            re += f64::from(s) * w.cos();
            im += f64::from(s) * w.sin();
        }
        2.0 * (re * re + im * im).sqrt() / x.len() as f64
    }

    #[test]
    fn rejects_odd_rates() {
        assert!(Resampler::new(0, 8000).is_err());
        assert!(Resampler::new(44_100, 8000).is_err());
        for (a, b) in [(8000, 16000), (16000, 8000), (24000, 8000), (8000, 24000), (48000, 8000), (16000, 24000), (8000, 8000)] {
            assert!(Resampler::new(a, b).is_ok(), "{a}->{b}");
        }
    }

    #[test]
    fn lengths_follow_the_ratio() {
        for (a, b) in [(8000, 16000), (16000, 8000), (24000, 8000), (8000, 8000), (16000, 24000)] {
            for n in [0usize, 1, 2, 3, 159, 160, 1000] {
                let out = resample(&vec![100; n], a, b).unwrap();
                assert_eq!(out.len() as u64, (n as u64 * u64::from(b)).div_ceil(u64::from(a)), "{a}->{b} n={n}");
            }
        }
    }

    #[test]
    fn pass_band_tone_keeps_its_level_and_place() {
        for (a, b) in [(8000, 16000), (16000, 8000), (24000, 8000)] {
            let x = tone(1000.0, a, a as usize / 2, 10_000.0);
            let y = resample(&x, a, b).unwrap();
            let amp = amplitude(&y, 1000.0, b);
            assert!((amp - 10_000.0).abs() < 300.0, "{a}->{b}: {amp}");
            // Group delay taken out: the output's sample k matches the input at time k / b.
            let k = y.len() / 2;
            let expect = 10_000.0 * (2.0 * PI * 1000.0 * k as f64 / f64::from(b)).sin();
            assert!((f64::from(y[k]) - expect).abs() < 1500.0, "{a}->{b}: y[{k}]={} want {expect}", y[k]);
        }
    }

    #[test]
    fn downsampling_removes_what_would_alias() {
        // 6 kHz at 16 kHz would fold to 2 kHz at 8 kHz; 10 kHz at 24 kHz to 2 kHz as well.
        for (a, hz) in [(16000, 6000.0), (24000, 10_000.0)] {
            let y = resample(&tone(hz, a, a as usize / 2, 10_000.0), a, 8000).unwrap();
            assert!(rms(&y[200..y.len() - 200]) < 10.0, "{a} Hz, {hz} Hz tone leaked: rms {}", rms(&y));
        }
    }

    #[test]
    fn upsampling_leaves_no_image() {
        // A 1 kHz tone at 8 kHz has its image at 7 kHz once zero-stuffed to 16 kHz.
        let y = resample(&tone(1000.0, 8000, 4000, 10_000.0), 8000, 16000).unwrap();
        assert!(amplitude(&y, 7000.0, 16000) < 10.0);
    }

    proptest! {
        #[test]
        fn chunking_does_not_change_the_output(x in proptest::collection::vec(any::<i16>(), 0..600), cuts in proptest::collection::vec(0usize..600, 0..5), pair in 0usize..4) {
            let (a, b) = [(8000, 16000), (16000, 8000), (24000, 8000), (8000, 24000)][pair];
            let whole = resample(&x, a, b).unwrap();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(x.len())).collect();
            cuts.sort_unstable();
            let mut r = Resampler::new(a, b).unwrap();
            let mut got = Vec::new();
            let mut start = 0;
            for c in cuts.into_iter().chain([x.len()]) {
                r.process(&x[start..c], &mut got);
                start = c;
            }
            r.finish(&mut got);
            prop_assert_eq!(got, whole);
        }
    }
}
