//! G.711 μ-law ↔ 16-bit linear PCM, and 16-bit little-endian bytes ↔ samples.
//!
//! Twilio Media Streams carry headerless μ-law at 8,000 Hz (`audio/x-mulaw`, 160 B per 20 ms);
//! Exotel AgentStream carries raw "slin": 16-bit signed little-endian mono PCM at 8,000 Hz
//! (/work/shared/VOICE.md §1). Both arrive base64-encoded; the server decodes base64, these
//! functions turn the bytes into samples and back.
//!
//! μ-law is ITU-T G.711; the per-sample tables come from the `audio-codec-algorithms` crate
//! (a well-kept codec crate beats our own: house rules).

use audio_codec_algorithms::{decode_ulaw, encode_ulaw};

/// μ-law byte for digital silence (G.711: +0 encodes as `0xFF`). Used to pad Twilio frames.
pub const ULAW_SILENCE: u8 = 0xFF;

/// Decodes G.711 μ-law bytes (one byte per sample) to 16-bit linear PCM samples.
pub fn ulaw_to_pcm(ulaw: &[u8]) -> Vec<i16> {
    ulaw.iter().map(|&b| decode_ulaw(b)).collect()
}

/// Decodes μ-law bytes, appending the samples to `out` (no allocation when `out` has room).
pub fn ulaw_to_pcm_into(ulaw: &[u8], out: &mut Vec<i16>) {
    out.extend(ulaw.iter().map(|&b| decode_ulaw(b)));
}

/// Encodes 16-bit linear PCM samples to G.711 μ-law, one byte per sample.
pub fn pcm_to_ulaw(pcm: &[i16]) -> Vec<u8> {
    pcm.iter().map(|&s| encode_ulaw(s)).collect()
}

/// Encodes PCM samples to μ-law, appending the bytes to `out`.
pub fn pcm_to_ulaw_into(pcm: &[i16], out: &mut Vec<u8>) {
    out.extend(pcm.iter().map(|&s| encode_ulaw(s)));
}

/// Reads 16-bit signed little-endian PCM bytes (Exotel "slin") as samples.
///
/// Tolerant of network input: an odd trailing byte (half a sample) is dropped, never a panic.
/// Use [`PcmBytes`] when a sample may be split across two messages.
pub fn le_bytes_to_pcm(bytes: &[u8]) -> Vec<i16> {
    bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

/// Writes samples as 16-bit signed little-endian bytes (2 B per sample).
pub fn pcm_to_le_bytes(pcm: &[i16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pcm.len() * 2);
    pcm_to_le_bytes_into(pcm, &mut out);
    out
}

/// Appends samples as 16-bit signed little-endian bytes to `out`.
pub fn pcm_to_le_bytes_into(pcm: &[i16], out: &mut Vec<u8>) {
    out.reserve(pcm.len() * 2);
    for s in pcm {
        out.extend_from_slice(&s.to_le_bytes());
    }
}

/// Streaming reader of 16-bit little-endian PCM bytes: keeps an odd trailing byte and joins it
/// with the first byte of the next message, so a sample split across two frames is not lost.
#[derive(Debug, Default, Clone)]
pub struct PcmBytes {
    pending: Option<u8>,
}

impl PcmBytes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the whole samples in `pending byte + bytes` to `out`; keeps an odd last byte.
    pub fn push_into(&mut self, mut bytes: &[u8], out: &mut Vec<i16>) {
        if let Some(lo) = self.pending.take() {
            match bytes.split_first() {
                Some((&hi, rest)) => {
                    out.push(i16::from_le_bytes([lo, hi]));
                    bytes = rest;
                }
                None => {
                    self.pending = Some(lo);
                    return;
                }
            }
        }
        let mut it = bytes.chunks_exact(2);
        out.extend(it.by_ref().map(|b| i16::from_le_bytes([b[0], b[1]])));
        self.pending = it.remainder().first().copied();
    }

    /// The whole samples in `pending byte + bytes`.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<i16> {
        let mut out = Vec::with_capacity(bytes.len() / 2 + 1);
        self.push_into(bytes, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ulaw_known_values() {
        // G.711: 0xFF and 0x7F are ±0, 0x80 is the largest positive step, 0x00 the largest negative.
        assert_eq!(ulaw_to_pcm(&[0xFF, 0x7F]), vec![0, 0]);
        assert_eq!(ulaw_to_pcm(&[0x80, 0x00]), vec![32124, -32124]);
        assert_eq!(pcm_to_ulaw(&[0]), vec![ULAW_SILENCE]);
        // The smallest negatives encode to negative zero, which decodes to 0.
        assert_eq!(ulaw_to_pcm(&pcm_to_ulaw(&[-1])), vec![0]);
    }

    #[test]
    fn odd_byte_counts_do_not_panic() {
        assert_eq!(le_bytes_to_pcm(&[]), Vec::<i16>::new());
        assert_eq!(le_bytes_to_pcm(&[1]), Vec::<i16>::new());
        assert_eq!(le_bytes_to_pcm(&[0x34, 0x12, 0x99]), vec![0x1234]);
    }

    #[test]
    fn split_sample_is_joined_across_messages() {
        let mut r = PcmBytes::new();
        assert_eq!(r.push(&[0x34]), Vec::<i16>::new());
        assert_eq!(r.push(&[]), Vec::<i16>::new());
        assert_eq!(r.push(&[0x12, 0x01, 0x80, 0xFF]), vec![0x1234, i16::from_le_bytes([0x01, 0x80])]);
        assert_eq!(r.push(&[0x7F]), vec![0x7FFF]);
    }

    proptest! {
        #[test]
        fn le_bytes_round_trip(pcm in proptest::collection::vec(any::<i16>(), 0..400)) {
            prop_assert_eq!(le_bytes_to_pcm(&pcm_to_le_bytes(&pcm)), pcm);
        }

        #[test]
        fn streaming_reader_matches_whole_read(bytes in proptest::collection::vec(any::<u8>(), 0..200), cuts in proptest::collection::vec(0usize..200, 0..6)) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut r = PcmBytes::new();
            let mut got = Vec::new();
            let mut start = 0;
            for c in cuts.into_iter().chain([bytes.len()]) {
                r.push_into(&bytes[start..c], &mut got);
                start = c;
            }
            prop_assert_eq!(got, le_bytes_to_pcm(&bytes));
        }

        #[test]
        fn ulaw_round_trip_is_close(s in any::<i16>()) {
            // G.711 μ-law keeps about 13 bits: the step near full scale is 1,024 (error ≤ half a step + clip at 32,124).
            let back = ulaw_to_pcm(&pcm_to_ulaw(&[s]))[0];
            let err = (i32::from(back) - i32::from(s)).abs();
            prop_assert!(err <= 1024 || s.unsigned_abs() > 32_124, "{s} -> {back}");
            // Decoded once, a sample is a fixed point. (Its code byte need not be: μ-law has
            // two zeros, 0x7F for the small negatives and 0xFF for 0, and both decode to 0.)
            prop_assert_eq!(ulaw_to_pcm(&pcm_to_ulaw(&[back])), vec![back]);
        }
    }
}
