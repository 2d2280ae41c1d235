//! Local text-to-speech through Debian's `flite` (Festival Lite, BSD-style licence): no
//! network, no key, 20–40 ms a sentence, intelligible but robotic.
//!
//! Runs `flite [-voice <voice>] -t <text> -o <tmp.wav>`, reads the 16 kHz 16-bit mono WAV
//! it writes (with `hound`) and resamples it to the rate asked for
//! ([`dialtone_voice::resample`]: 8, 16, 24, 48 kHz and other small-integer ratios).

use std::path::PathBuf;

use async_trait::async_trait;
use dialtone_voice::resample::resample;
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
    /// says how to install it), it failed (its stderr), wrote no readable WAV, or the rate
    /// asked for is not a small-integer ratio of flite's (e.g. 22,050 Hz).
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
        let audio = resample(&mono, spec.sample_rate, options.sample_rate).map_err(|e| error(SERVICE, format!("sample_rate: {e}"), false))?;
        let chunk = (options.sample_rate * CHUNK_MS / 1000).max(1) as usize;
        let chunks: Vec<Result<Vec<i16>, SpeechError>> = audio.chunks(chunk).map(|c| Ok(c.to_vec())).collect();
        Ok(Box::pin(futures::stream::iter(chunks)))
    }
}
