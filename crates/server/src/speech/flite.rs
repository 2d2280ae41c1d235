//! Local text-to-speech through Debian's `flite` (Festival Lite, BSD-style licence): no
//! network, no key, 20–40 ms a sentence, intelligible but robotic.
//!
//! Runs `flite [-voice <voice>] -t <text> -o <tmp.wav>`, reads the 16 kHz 16-bit mono WAV
//! it writes (with `hound`) and resamples it to the rate asked for.

use std::path::PathBuf;

use async_trait::async_trait;
use dialtone_voice::speech::{SpeechError, Tts, TtsOptions};
use futures::stream::BoxStream;

use super::error;

const SERVICE: &str = "flite";
/// Audio is handed out in chunks of this long (ms).
const CHUNK_MS: u32 = 100;

/// Text-to-speech by the local `flite` program.
#[derive(Clone)]
pub struct FliteTts {
    program: PathBuf,
    voice: Option<String>,
}

impl FliteTts {
    /// `program`: `flite` (looked up on `PATH`) or a path to it.
    pub fn new(program: &str) -> Self {
        Self { program: PathBuf::from(program), voice: None }
    }

    /// A flite voice (`kal`, `slt`, `awb`, `rms`, …, or a `.flitevox` path) when the request
    /// names none; else flite's default.
    pub fn with_voice(mut self, voice: Option<String>) -> Self {
        self.voice = voice;
        self
    }
}

#[async_trait]
impl Tts for FliteTts {
    /// Errors (not retryable): `flite` is not installed at the configured path (the message
    /// says how to install it), it failed (its stderr), or wrote no readable WAV.
    async fn synthesize(&self, text: &str, options: &TtsOptions) -> Result<BoxStream<'static, Result<Vec<i16>, SpeechError>>, SpeechError> {
        if options.sample_rate == 0 {
            return Err(error(SERVICE, "sample_rate: must be above 0 Hz", false));
        }
        if text.trim().is_empty() {
            return Ok(Box::pin(futures::stream::empty()));
        }
        let dir = tempfile::tempdir().map_err(|e| error(SERVICE, format!("cannot make a temporary directory: {e}"), true))?;
        let path = dir.path().join("speech.wav");
        let mut command = tokio::process::Command::new(&self.program);
        if let Some(voice) = options.voice.as_deref().or(self.voice.as_deref()) {
            command.arg("-voice").arg(voice);
        }
        command.arg("-t").arg(text).arg("-o").arg(&path).kill_on_drop(true).stdin(std::process::Stdio::null());
        let output = command.output().await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                error(
                    SERVICE,
                    format!("the flite program was not found at `{}`: install it (`apt-get install flite`) or set speech.flite_path", self.program.display()),
                    false,
                )
            } else {
                error(SERVICE, format!("cannot run `{}`: {e}", self.program.display()), false)
            }
        })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(error(SERVICE, format!("`{}` failed ({}): {}", self.program.display(), output.status, stderr.trim()), false));
        }
        let bytes = tokio::fs::read(&path).await.map_err(|e| error(SERVICE, format!("flite wrote no WAV: {e}"), false))?;
        let reader = hound::WavReader::new(std::io::Cursor::new(bytes)).map_err(|e| error(SERVICE, format!("flite's WAV is unreadable: {e}"), false))?;
        let spec = reader.spec();
        if spec.bits_per_sample != 16 || spec.sample_format != hound::SampleFormat::Int || spec.channels == 0 {
            return Err(error(SERVICE, format!("flite's WAV is not 16-bit PCM: {spec:?}"), false));
        }
        let interleaved: Vec<i16> =
            reader.into_samples::<i16>().collect::<Result<_, _>>().map_err(|e| error(SERVICE, format!("flite's WAV is unreadable: {e}"), false))?;
        // The first channel, should a voice ever give more than one.
        let mono: Vec<i16> = interleaved.iter().step_by(usize::from(spec.channels)).copied().collect();
        let audio = resample(&mono, spec.sample_rate, options.sample_rate);
        let chunk = (options.sample_rate * CHUNK_MS / 1000).max(1) as usize;
        let chunks: Vec<Result<Vec<i16>, SpeechError>> = audio.chunks(chunk).map(|c| Ok(c.to_vec())).collect();
        Ok(Box::pin(futures::stream::iter(chunks)))
    }
}

/// Band-limited resampling of `input` from `from` Hz to `to` Hz: a windowed-sinc (Hann, 16
/// zero crossings a side) low-pass at 0.95 of the lower Nyquist, normalised to unity gain.
///
/// Own code for now because the audio slice's `dialtone_voice::resample` is not merged yet;
/// replace it with that once it is.
pub fn resample(input: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == to || input.is_empty() || from == 0 || to == 0 {
        return input.to_vec();
    }
    let ratio = f64::from(to) / f64::from(from);
    let cutoff = ratio.min(1.0) * 0.95;
    let half = (16.0 / cutoff).ceil() as i64;
    let out_len = (input.len() as f64 * ratio).round() as usize;
    let mut out = Vec::with_capacity(out_len);
    for j in 0..out_len {
        let t = j as f64 / ratio;
        let center = t.floor() as i64;
        let (mut acc, mut weight) = (0.0, 0.0);
        for i in (center - half + 1)..=(center + half) {
            if i < 0 || i as usize >= input.len() {
                continue;
            }
            let x = t - i as f64;
            let sinc = if x.abs() < 1e-9 { 1.0 } else { (std::f64::consts::PI * x * cutoff).sin() / (std::f64::consts::PI * x * cutoff) };
            let window = 0.5 + 0.5 * (std::f64::consts::PI * x / half as f64).cos();
            let w = sinc * window;
            acc += f64::from(input[i as usize]) * w;
            weight += w;
        }
        let value = if weight.abs() > 1e-9 { acc / weight } else { 0.0 };
        out.push(value.round().clamp(-32768.0, 32767.0) as i16);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, rate: u32, n: usize) -> Vec<i16> {
        (0..n).map(|i| (8000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin()) as i16).collect()
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn resampling_keeps_speech_band_tones_and_removes_what_the_lower_rate_cannot_carry() {
        let down = resample(&tone(500.0, 16000, 16000), 16000, 8000);
        assert_eq!(down.len(), 8000);
        let expected = tone(500.0, 8000, 8000);
        let diff: Vec<i16> = down[200..7800].iter().zip(&expected[200..7800]).map(|(a, b)| a - b).collect();
        assert!(rms(&diff) < 100.0, "a 500 Hz tone survives 16→8 kHz: error rms {}", rms(&diff));
        let alias = resample(&tone(6000.0, 16000, 16000), 16000, 8000);
        assert!(rms(&alias[200..7800]) < 300.0, "6 kHz must not alias into 2 kHz: rms {}", rms(&alias[200..7800]));
        assert_eq!(resample(&[1, 2, 3], 8000, 8000), vec![1, 2, 3]);
        assert_eq!(resample(&tone(300.0, 8000, 800), 8000, 16000).len(), 1600);
    }
}
