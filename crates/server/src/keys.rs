//! API keys: random, shown once, stored as a SHA-256 hash (they carry 190 bits of
//! entropy, so a slow password hash would add nothing but latency to every request).

use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "dt_";

pub fn generate() -> String {
    let body: String = rand::thread_rng().sample_iter(&Alphanumeric).take(32).map(char::from).collect();
    format!("{PREFIX}{body}")
}

pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// How many characters of a key `dialtone keys list` shows (`dt_` and 5 more): enough to
/// tell keys apart, far too few to guess the rest (27 random characters remain).
pub const SHOWN: usize = 8;

/// The part of `key` kept to tell it apart.
pub fn shown_prefix(key: &str) -> &str {
    key.get(..SHOWN).unwrap_or(key)
}

/// Whether this server should note a use of `id` now: at most once a minute per key, so
/// authenticating stays a read.
pub fn due_for_touch(id: &dialtone_core::ApiKeyId) -> bool {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    use std::time::{Duration, Instant};
    static LAST: OnceLock<Mutex<HashMap<String, Instant>>> = OnceLock::new();
    let mut last = LAST.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    match last.get(id.as_str()) {
        Some(t) if now.duration_since(*t) < Duration::from_secs(60) => false,
        _ => {
            last.insert(id.as_str().to_string(), now);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_random_and_hashes_stable() {
        let (a, b) = (super::generate(), super::generate());
        assert_ne!(a, b);
        assert!(a.starts_with("dt_") && a.len() == 35);
        assert_eq!(super::hash(&a), super::hash(&a));
        assert_ne!(super::hash(&a), super::hash(&b));
    }
}
