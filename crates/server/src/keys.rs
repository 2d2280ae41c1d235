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
