//! G.711 μ-law, written here so the simulator stands alone (it shares no code with
//! dialtone, on purpose). ITU-T G.711, the classic Sun reference formulation.

const BIAS: i32 = 0x84;
const CLIP: i32 = 32635;

/// One μ-law byte → a 16-bit linear sample.
pub(crate) fn decode(byte: u8) -> i16 {
    let u = !byte;
    let sign = u & 0x80;
    let exponent = i32::from((u >> 4) & 0x07);
    let mantissa = i32::from(u & 0x0F);
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

/// A 16-bit linear sample → μ-law byte.
pub(crate) fn encode(sample: i16) -> u8 {
    let mut s = i32::from(sample);
    let sign = if s < 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s;
    }
    s = s.min(CLIP) + BIAS;
    // Position of the highest set bit of s >> 7 (1..=255 here): the segment, 0..=7.
    let exponent = (31 - ((s >> 7) as u32).leading_zeros()) as u8;
    let mantissa = ((s >> (i32::from(exponent) + 3)) & 0x0F) as u8;
    !(sign | (exponent << 4) | mantissa)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_survives_a_round_trip_and_known_values_decode() {
        for byte in 0..=255u8 {
            let back = encode(decode(byte));
            // 0x7F and 0xFF are both zero: +0 and −0.
            assert_eq!(decode(back), decode(byte), "code {byte:#04x}");
        }
        assert_eq!(decode(0xFF), 0);
        assert_eq!(decode(0x00), -32124);
        assert_eq!(decode(0x80), 32124);
        assert_eq!(encode(0), 0xFF);
        assert_eq!(encode(32767), 0x80);
        assert_eq!(encode(-32768), 0x00);
    }
}
