//! Provider ids and Vapi's timestamp format.

use jiff::Timestamp;

/// RFC 3339 with milliseconds and `Z`, as Vapi writes timestamps.
pub(crate) fn rfc3339_ms(ts: Timestamp) -> String {
    format!("{ts:.3}")
}

/// 32 random lowercase hex digits, from the OS rng (not the seeded one, so a
/// restarted sim with the same seed never reuses an id the engine has stored).
pub(crate) fn random_hex32() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Vapi ids are UUIDv7, from the OS rng for the reason above.
pub(crate) fn uuid_v7_like(now: Timestamp) -> String {
    let ms = now.as_millisecond() as u64 & 0xFFFF_FFFF_FFFF;
    let r: u128 = rand::random();
    let rand_a = (r & 0xFFF) as u16;
    let rand_b = (r >> 12) as u64 & 0x3FFF_FFFF_FFFF_FFFF;
    let hi = (ms << 16) | 0x7000 | u64::from(rand_a);
    let lo = 0x8000_0000_0000_0000 | rand_b;
    format!("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", hi >> 32, (hi >> 16) & 0xFFFF, hi & 0xFFFF, lo >> 48, lo & 0xFFFF_FFFF_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_uuid_v7() {
        let id = uuid_v7_like(Timestamp::now());
        let parts: Vec<_> = id.split('-').map(str::len).collect();
        assert_eq!(parts, vec![8, 4, 4, 4, 12]);
        assert_eq!(&id[14..15], "7");
        assert_ne!(id, uuid_v7_like(Timestamp::now()));
    }

    #[test]
    fn timestamps_have_millis_and_z() {
        let ts: Timestamp = "2026-01-01T10:00:00Z".parse().unwrap();
        assert_eq!(rfc3339_ms(ts), "2026-01-01T10:00:00.000Z");
    }
}
