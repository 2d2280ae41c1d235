//! The project's own callee clips (embedded by [`crate::fixtures`]),
//! and a recogniser that finds them in a stream of audio by fingerprint.
//!
//! Why not a real recogniser: the fake speech-to-text only has to recognise the clips the
//! simulated callees play, and it must be exact and instant. The audio dialtone sends on is
//! those clips' μ-law decoded to linear16 (exact for Exotel's PCM; a μ-law round trip, also
//! exact, for Twilio), split at any boundary, with silence or other sound around it. So each
//! incoming sample is re-encoded to μ-law (which also absorbs ±1 LSB differences) and every
//! 32-sample window (4 ms) is looked up among the clips' voiced windows.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Samples per fingerprint window (4 ms at 8 kHz).
const WINDOW: usize = 32;
/// Clip windows are indexed every `STRIDE` samples; the stream is looked up at every sample.
const STRIDE: usize = 16;
/// A window is voiced (worth indexing) when a sample reaches this amplitude.
const VOICED: i16 = 300;
/// Share of a clip's indexed windows that must be heard before its text is reported.
const COMPLETE_SHARE: f64 = 0.5;
/// Share after which an interim (partial) result is reported.
const PARTIAL_SHARE: f64 = 0.3;

/// Share a cut-off clip needs to be reported at all on a flush.
const FLUSH_SHARE: f64 = 0.1;

/// One clip the recogniser knows.
pub(crate) struct Clip {
    pub(crate) text: &'static str,
    /// Indexed (voiced) windows.
    windows: u32,
    /// Clip offset (samples) of the last indexed window.
    last_window: u32,
}

struct Index {
    clips: Vec<Clip>,
    /// Window hash → (clip, clip offset).
    windows: HashMap<u64, Vec<(u16, u32)>>,
}

/// The clips the recogniser knows: those with words (a cough or a DTMF tone is not speech).
fn spoken() -> impl Iterator<Item = (&'static str, &'static [u8], &'static str)> {
    crate::fixtures::CLIPS.iter().filter_map(|(name, codes)| crate::fixtures::text(name).filter(|t| !t.is_empty()).map(|text| (*name, *codes, text)))
}

/// Multiplier of the polynomial (Rabin–Karp) window hash, so the stream's window hash rolls
/// in O(1) a sample.
const BASE: u64 = 0x0100_0000_01b3;

fn window_hash(codes: &[u8]) -> u64 {
    codes.iter().fold(0, |h, &c| h.wrapping_mul(BASE).wrapping_add(u64::from(c) + 1))
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut clips = Vec::new();
        let mut windows: HashMap<u64, Vec<(u16, u32)>> = HashMap::new();
        for (i, (_, codes, text)) in spoken().enumerate() {
            let mut count = 0;
            let mut last = 0;
            let mut start = 0;
            while start + WINDOW <= codes.len() {
                let window = &codes[start..start + WINDOW];
                if window.iter().any(|&c| audio_codec_algorithms::decode_ulaw(c).unsigned_abs() >= VOICED as u16) {
                    windows.entry(window_hash(window)).or_default().push((i as u16, start as u32));
                    count += 1;
                    last = start as u32;
                }
                start += STRIDE;
            }
            clips.push(Clip { text, windows: count, last_window: last });
        }
        Index { clips, windows }
    })
}

/// What the recogniser has to say.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Heard {
    /// Interim text for the utterance in progress.
    Partial { text: String },
    /// A clip's audio ended at stream sample `end` (its first window was at `start`).
    Complete { text: String, start: u64, end: u64 },
}

#[derive(Default, Clone, Copy)]
struct Track {
    matched: u32,
    last_offset: u32,
    first_pos: u64,
    last_pos: u64,
}

/// Streaming recogniser state for one session.
pub(crate) struct Recogniser {
    /// The last `WINDOW` codes, a ring indexed by `pos % WINDOW`.
    recent: [u8; WINDOW],
    /// `window_hash` of the codes in `recent`, oldest first.
    hash: u64,
    /// `BASE^WINDOW`, to roll the oldest code out.
    drop_factor: u64,
    /// Samples received so far.
    pos: u64,
    tracks: Vec<Track>,
    partial_sent: bool,
}

impl Default for Recogniser {
    fn default() -> Self {
        Self::new()
    }
}

impl Recogniser {
    pub(crate) fn new() -> Self {
        Self {
            recent: [0xFF; WINDOW],
            hash: window_hash(&[0xFF; WINDOW]),
            drop_factor: BASE.wrapping_pow(WINDOW as u32),
            pos: 0,
            tracks: vec![Track::default(); index().clips.len()],
            partial_sent: false,
        }
    }

    /// Samples received so far.
    pub(crate) fn position(&self) -> u64 {
        self.pos
    }

    /// Feeds μ-law codes; returns what was recognised on the way.
    pub(crate) fn push_codes(&mut self, codes: impl IntoIterator<Item = u8>) -> Vec<Heard> {
        let index = index();
        let mut heard = Vec::new();
        for code in codes {
            let slot = (self.pos % WINDOW as u64) as usize;
            let oldest = self.recent[slot];
            self.recent[slot] = code;
            self.hash = self.hash.wrapping_mul(BASE).wrapping_add(u64::from(code) + 1).wrapping_sub((u64::from(oldest) + 1).wrapping_mul(self.drop_factor));
            self.pos += 1;
            if self.pos < WINDOW as u64 {
                continue;
            }
            let Some(hits) = index.windows.get(&self.hash) else { continue };
            for &(clip, offset) in hits {
                let track = &mut self.tracks[clip as usize];
                if track.matched > 0 && offset <= track.last_offset {
                    continue;
                }
                if track.matched == 0 {
                    track.first_pos = self.pos - WINDOW as u64;
                }
                track.matched += 1;
                track.last_offset = offset;
                track.last_pos = self.pos;
            }
            if let Some(h) = self.check() {
                heard.push(h);
            }
        }
        heard
    }

    /// Feeds linear samples (re-encoded to μ-law, see the module doc).
    pub(crate) fn push_samples(&mut self, samples: &[i16]) -> Vec<Heard> {
        self.push_codes(samples.iter().map(|&s| audio_codec_algorithms::encode_ulaw(s)).collect::<Vec<_>>())
    }

    fn share(&self, clip: usize) -> f64 {
        let windows = index().clips[clip].windows.max(1);
        f64::from(self.tracks[clip].matched) / f64::from(windows)
    }

    fn best(&self) -> Option<usize> {
        (0..self.tracks.len()).filter(|&i| self.tracks[i].matched > 0).max_by(|&a, &b| self.share(a).total_cmp(&self.share(b)))
    }

    fn check(&mut self) -> Option<Heard> {
        let clips = &index().clips;
        for (i, clip) in clips.iter().enumerate() {
            let track = self.tracks[i];
            if track.matched > 0 && track.last_offset >= clip.last_window && self.share(i) >= COMPLETE_SHARE {
                let heard = Heard::Complete { text: clip.text.to_owned(), start: track.first_pos, end: track.last_pos };
                self.reset();
                return Some(heard);
            }
        }
        if !self.partial_sent {
            if let Some(best) = self.best().filter(|&b| self.share(b) >= PARTIAL_SHARE) {
                self.partial_sent = true;
                return Some(Heard::Partial { text: words(clips[best].text, 0.5) });
            }
        }
        None
    }

    /// The utterance must end now (Deepgram `Finalize`, `CloseStream`, or a batch
    /// transcription's end): whatever was heard of the best clip, as far as it got.
    pub(crate) fn flush(&mut self) -> Option<Heard> {
        // A stray bit of a clip (a voicemail's beep after its greeting was reported) is not speech.
        let best = self.best().filter(|&b| self.share(b) >= FLUSH_SHARE)?;
        let clip = &index().clips[best];
        let track = self.tracks[best];
        let share = (self.share(best) / COMPLETE_SHARE).min(1.0);
        let heard = Heard::Complete { text: words(clip.text, share), start: track.first_pos, end: track.last_pos };
        self.reset();
        Some(heard)
    }

    fn reset(&mut self) {
        self.tracks.iter_mut().for_each(|t| *t = Track::default());
        self.partial_sent = false;
    }
}

/// The first `share` of `text`'s words (at least one).
fn words(text: &str, share: f64) -> String {
    let all: Vec<&str> = text.split_whitespace().collect();
    let n = ((all.len() as f64 * share).ceil() as usize).clamp(1, all.len().max(1));
    all[..n.min(all.len())].join(" ")
}

/// Every clip's text heard in `samples` (a whole recording), in order.
pub(crate) fn transcribe(samples: &[i16]) -> String {
    let mut recogniser = Recogniser::new();
    let mut texts: Vec<String> = recogniser
        .push_samples(samples)
        .into_iter()
        .filter_map(|h| match h {
            Heard::Complete { text, .. } => Some(text),
            Heard::Partial { .. } => None,
        })
        .collect();
    if let Some(Heard::Complete { text, .. }) = recogniser.flush() {
        texts.push(text);
    }
    texts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::pcm;

    fn completes(heard: &[Heard]) -> Vec<(String, u64)> {
        heard.iter().filter_map(|h| if let Heard::Complete { text, end, .. } = h { Some((text.clone(), *end)) } else { None }).collect()
    }

    #[test]
    fn every_speech_clip_is_recognised_with_silence_around_and_at_its_end() {
        for (name, _, _) in spoken() {
            let clip = pcm(name);
            let mut stream = vec![0i16; 1234];
            stream.extend(&clip);
            stream.extend(vec![0i16; 4000]);
            let mut r = Recogniser::new();
            let heard = r.push_samples(&stream);
            let done = completes(&heard);
            assert_eq!(done.len(), 1, "{name}: {heard:?}");
            assert_eq!(done[0].0, crate::fixtures::text(name).unwrap());
            let end = done[0].1 as i64;
            let clip_end = 1234 + clip.len() as i64;
            // voicemail_beep's greeting is voicemail_no_beep's: reported where the speech ends, before the beep.
            if name != "voicemail_beep" {
                assert!(end <= clip_end && end > clip_end - 4000, "{name}: ended at {end}, clip at {clip_end}");
            }
            assert_eq!(r.flush(), None, "{name}: nothing left over");
            assert!(heard.iter().any(|h| matches!(h, Heard::Partial { .. })), "{name}: an interim result first");
        }
    }

    #[test]
    fn the_rolling_hash_equals_the_window_hash() {
        let mut r = Recogniser::new();
        let codes: Vec<u8> = (0..200u32).map(|i| (i * 37 % 256) as u8).collect();
        r.push_codes(codes.iter().copied());
        assert_eq!(r.hash, window_hash(&codes[200 - WINDOW..]));
    }

    #[test]
    fn silence_noise_and_other_sounds_are_not_recognised() {
        let mut r = Recogniser::new();
        let noise: Vec<i16> = (0..16000u32).map(|i| ((i.wrapping_mul(2654435761) >> 16) as i16) / 4).collect();
        assert!(r.push_samples(&noise).is_empty());
        assert!(r.push_samples(&vec![0; 8000]).is_empty());
        assert_eq!(r.flush(), None);
        assert_eq!(transcribe(&[]), "");
    }

    #[test]
    fn two_clips_in_a_row_and_a_cut_clip() {
        let mut stream = pcm("hello");
        stream.extend(vec![0; 800]);
        stream.extend(pcm("question"));
        assert_eq!(transcribe(&stream), "Hello? What time is my appointment tomorrow?");
        let cut = pcm("interrupt");
        let mut r = Recogniser::new();
        r.push_samples(&cut[..cut.len() / 2]);
        let Some(Heard::Complete { text, .. }) = r.flush() else { panic!("half a clip is still heard") };
        assert!(text.starts_with("Sorry, wait") && text.len() < crate::fixtures::text("interrupt").unwrap().len(), "{text}");
    }
}
