//! Audio on the wire for each dialect: inbound payloads to 16-bit PCM, outbound PCM to
//! provider-sized chunks. The codecs and chunk sizes live in `dialtone-voice`; this only
//! adds base64 and picks the format per provider.

use super::wire::Dialect;
use base64::Engine as _;

/// Samples per second on both providers' default streams (Hz).
pub const SAMPLE_RATE: u32 = 8000;

/// The callee's audio in one inbound `media.payload`, as 16-bit PCM at 8 kHz.
/// Errors: the payload is not base64. An odd trailing byte of Exotel PCM is dropped.
pub fn decode_inbound(dialect: Dialect, payload: &str) -> Result<Vec<i16>, base64::DecodeError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(payload.trim())?;
    Ok(match dialect {
        Dialect::Exotel => bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect(),
        Dialect::Twilio => bytes.iter().map(|&b| ulaw_to_linear(b)).collect(),
    })
}

/// Base64 for one outbound chunk of wire bytes.
pub fn encode_payload(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Playing time of `bytes` of the dialect's wire audio (8 kHz: 16 B/ms PCM, 8 B/ms μ-law).
pub fn play_time(dialect: Dialect, bytes: usize) -> std::time::Duration {
    let per_ms = match dialect {
        Dialect::Exotel => 16,
        Dialect::Twilio => 8,
    };
    std::time::Duration::from_micros((bytes as u64 * 1000) / per_ms)
}

/// Cuts a turn's PCM into the chunks a provider plays without gaps:
/// Exotel 3,200 B of 16-bit PCM (100 ms; a multiple of 320 B, at least 3,200 B, as
/// Exotel's AgentStream docs require), the turn's last padded with silence to a multiple
/// of 320 B; Twilio 160 B of μ-law (20 ms), the last padded to 160 B.
#[derive(Debug)]
pub struct Chunker {
    dialect: Dialect,
    pending: Vec<u8>,
}

impl Chunker {
    pub fn new(dialect: Dialect) -> Self {
        Self { dialect, pending: Vec::new() }
    }

    fn size(&self) -> usize {
        match self.dialect {
            Dialect::Exotel => 3200,
            Dialect::Twilio => 160,
        }
    }

    /// Adds PCM; returns the whole chunks now ready, in wire bytes.
    pub fn push(&mut self, pcm: &[i16]) -> Vec<Vec<u8>> {
        match self.dialect {
            Dialect::Exotel => self.pending.extend(pcm.iter().flat_map(|s| s.to_le_bytes())),
            Dialect::Twilio => self.pending.extend(pcm.iter().map(|&s| linear_to_ulaw(s))),
        }
        let size = self.size();
        let whole = self.pending.len() / size * size;
        self.pending.drain(..whole).collect::<Vec<u8>>().chunks(size).map(<[u8]>::to_vec).collect()
    }

    /// The turn's last chunk, padded with silence; `None` when nothing is left.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if self.pending.is_empty() {
            return None;
        }
        let (unit, silence) = match self.dialect {
            Dialect::Exotel => (320, 0u8),
            Dialect::Twilio => (160, 0xFF),
        };
        let mut last = std::mem::take(&mut self.pending);
        let padded = last.len().div_ceil(unit) * unit;
        last.resize(padded, silence);
        Some(last)
    }

    /// Drops what is pending (barge-in).
    pub fn reset(&mut self) {
        self.pending.clear();
    }
}

/// G.711 μ-law decoding (ITU-T G.711), as `dialtone_voice::codec` does it.
fn ulaw_to_linear(u: u8) -> i16 {
    let u = !u;
    let t = ((((u & 0x0F) as i32) << 3) + 0x84) << ((u & 0x70) >> 4);
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

/// G.711 μ-law encoding (ITU-T G.711).
fn linear_to_ulaw(s: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut pcm = s as i32;
    let sign = if pcm < 0 {
        pcm = -pcm;
        0x80
    } else {
        0
    };
    pcm = pcm.min(CLIP) + BIAS;
    let exponent = (7 - (pcm as u32).leading_zeros().saturating_sub(17).min(7)) as i32;
    let mantissa = (pcm >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exotel_chunks_are_3200_bytes_and_the_last_is_padded_to_320() {
        let mut c = Chunker::new(Dialect::Exotel);
        let chunks = c.push(&vec![100i16; 4000]); // 8,000 B
        assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), vec![3200, 3200]);
        let last = c.finish().unwrap();
        assert_eq!(last.len(), 1600);
        assert_eq!(c.push(&[1; 7]), Vec::<Vec<u8>>::new());
        assert_eq!(c.finish().unwrap().len(), 320);
        assert_eq!(c.finish(), None);
    }

    #[test]
    fn twilio_frames_are_160_bytes_of_ulaw_that_decode_back() {
        let mut c = Chunker::new(Dialect::Twilio);
        let pcm: Vec<i16> = (0..400).map(|i| ((i as f64 / 8.0).sin() * 8000.0) as i16).collect();
        let frames = c.push(&pcm);
        assert_eq!(frames.iter().map(Vec::len).collect::<Vec<_>>(), vec![160, 160]);
        assert_eq!(c.finish().unwrap().len(), 160);
        let back = decode_inbound(Dialect::Twilio, &encode_payload(&frames[0])).unwrap();
        for (a, b) in pcm.iter().zip(&back) {
            assert!((*a as i32 - *b as i32).abs() <= (a.unsigned_abs() as i32 / 16).max(8), "{a} vs {b}");
        }
    }

    #[test]
    fn bad_base64_is_an_error() {
        assert!(decode_inbound(Dialect::Exotel, "***").is_err());
    }
}
