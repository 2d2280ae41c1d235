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

/// The scopes a key may carry: `read` for every `GET`, `write` for `POST`, `PUT`, `PATCH`
/// and `DELETE`, `admin` for workspace and key management (issue 13). Order is canonical.
pub const SCOPES: [&str; 3] = ["read", "write", "admin"];

/// What a key made at first start or by `dialtone keys create` without `--scopes` carries
/// (as do keys made before scopes existed: the migration's default).
pub const ALL_SCOPES: &str = "read,write,admin";

/// `scopes` checked and written canonically (known names, each once, in [`SCOPES`]
/// order, comma-separated); an error names the first unknown scope or says it is empty.
pub fn normalize_scopes<S: AsRef<str>>(scopes: &[S]) -> Result<String, String> {
    let mut have = [false; 3];
    for s in scopes {
        let s = s.as_ref().trim();
        match SCOPES.iter().position(|k| *k == s) {
            Some(i) => have[i] = true,
            None => return Err(format!("unknown scope {s:?}: scopes are read, write and admin")),
        }
    }
    let out: Vec<&str> = SCOPES.iter().zip(have).filter(|(_, h)| *h).map(|(s, _)| *s).collect();
    if out.is_empty() {
        return Err("at least one scope is needed (read, write, admin)".into());
    }
    Ok(out.join(","))
}

/// Whether the stored, comma-separated `scopes` include `scope`.
pub fn has_scope(scopes: &str, scope: &str) -> bool {
    scopes.split(',').any(|s| s.trim() == scope)
}

#[cfg(test)]
mod tests {
    #[test]
    fn scopes_are_checked_and_canonical() {
        assert_eq!(super::normalize_scopes(&["admin", "read", "read"]).unwrap(), "read,admin");
        assert!(super::normalize_scopes(&["root"]).unwrap_err().contains("root"));
        assert!(super::normalize_scopes::<&str>(&[]).is_err());
        assert!(super::has_scope("read,write", "write") && !super::has_scope("read,write", "admin"));
    }

    #[test]
    fn keys_are_random_and_hashes_stable() {
        let (a, b) = (super::generate(), super::generate());
        assert_ne!(a, b);
        assert!(a.starts_with("dt_") && a.len() == 35);
        assert_eq!(super::hash(&a), super::hash(&a));
        assert_ne!(super::hash(&a), super::hash(&b));
    }
}
