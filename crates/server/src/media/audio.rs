//! Audio on the wire for each dialect: inbound payloads to 16-bit PCM, outbound chunks to
//! base64. The codecs and chunk sizes live in `dialtone_voice` (`codec`, `chunk`); this only
//! adds base64 and picks the format per provider.

use super::wire::Dialect;
use base64::Engine as _;
use dialtone_voice::chunk::Chunker;
use dialtone_voice::codec;

/// Samples per second on both providers' default streams (Hz).
pub const SAMPLE_RATE: u32 = 8000;

/// The callee's audio in one inbound `media.payload`, as 16-bit PCM at 8 kHz (Exotel:
/// 16-bit little-endian PCM, an odd trailing byte dropped; Twilio: G.711 μ-law).
/// Errors: the payload is not base64.
pub fn decode_inbound(dialect: Dialect, payload: &str) -> Result<Vec<i16>, base64::DecodeError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(payload.trim())?;
    Ok(match dialect {
        Dialect::Exotel => codec::le_bytes_to_pcm(&bytes[..bytes.len() / 2 * 2]),
        Dialect::Twilio => codec::ulaw_to_pcm(&bytes),
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

/// The chunker for a dialect: Exotel 3,200 B of 16-bit PCM (multiples of 320 B, at least
/// 3,200 B, the turn's last padded), Twilio 160 B μ-law frames.
pub fn chunker(dialect: Dialect) -> Chunker {
    match dialect {
        Dialect::Exotel => Chunker::exotel(),
        Dialect::Twilio => Chunker::twilio(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_payloads_decode_per_dialect() {
        let pcm = [0i16, 1000, -1000, 32000];
        let slin = encode_payload(&codec::pcm_to_le_bytes(&pcm));
        assert_eq!(decode_inbound(Dialect::Exotel, &slin).unwrap(), pcm);
        let ulaw = encode_payload(&codec::pcm_to_ulaw(&pcm));
        let back = decode_inbound(Dialect::Twilio, &ulaw).unwrap();
        assert_eq!(back.len(), 4);
        assert!(back.iter().zip(pcm).all(|(a, b)| (*a as i32 - b as i32).abs() <= 1024));
        // An odd byte count (a torn frame) loses the last byte, no panic.
        assert_eq!(decode_inbound(Dialect::Exotel, &encode_payload(&[1, 0, 7])).unwrap(), vec![1]);
        assert!(decode_inbound(Dialect::Exotel, "***").is_err());
    }

    #[test]
    fn play_time_follows_the_wire_format() {
        assert_eq!(play_time(Dialect::Exotel, 3200), std::time::Duration::from_millis(200));
        assert_eq!(play_time(Dialect::Twilio, 160), std::time::Duration::from_millis(20));
    }
}
