//! Secrets at rest: provider-account credentials and webhook-endpoint signing secrets are
//! stored encrypted with an AEAD cipher (XChaCha20-Poly1305: ChaCha20-Poly1305 of RFC 8439
//! with a 24-byte random nonce, so random nonces never collide in practice) under a
//! master key the operator gives in the config (`master_key`) or the environment
//! (`DIALTONE_MASTER_KEY`): 32 bytes, base64.
//!
//! A stored secret reads `dtenc1:{key id}:{base64(nonce ‖ ciphertext ‖ tag)}`. The key id is
//! the first 16 hex digits of SHA-256 over a label and the key, so a row names the key
//! that sealed it without revealing it. Each secret is sealed with associated data naming
//! where it is stored (table, row id, column): a ciphertext copied into another row or
//! column fails to open.
//!
//! Rotation ([`Keyring`]): the current key seals, the current and every previous key
//! (`previous_master_keys`) open. Re-encrypting every stored secret under the current key
//! (the store's `rotate_secrets`, run at every start and by `dialtone secrets rotate`)
//! makes the previous keys unnecessary; they may then be removed from the config.
//!
//! Plaintext only ever leaves this module as a [`SecretString`] (its `Debug` is redacted).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::fmt;

/// What every encrypted value starts with (format version 1).
pub const PREFIX: &str = "dtenc1";
/// Bytes of a master key.
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;

/// A master key is not usable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("a master key must be base64 (standard alphabet, with padding): {0}")]
    NotBase64(String),
    #[error("a master key must be {KEY_LEN} bytes, base64 (e.g. `openssl rand -base64 32`); this one is {0} bytes")]
    WrongLength(usize),
}

/// A stored secret cannot be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    /// Not of the form `dtenc1:{key id}:{base64}`.
    #[error("not an encrypted secret (dtenc1:…)")]
    Malformed,
    /// Sealed by a key that is neither `master_key` nor one of `previous_master_keys`.
    #[error("sealed by master key {0}, which is not configured (add it to previous_master_keys)")]
    UnknownKey(String),
    /// The key is known but authentication failed: the value was altered, or it was
    /// sealed for another row or column.
    #[error("sealed by master key {0} but does not authenticate (altered, or moved from another row)")]
    Tampered(String),
}

/// One 32-byte master key and its id. `Debug` shows the id only.
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl MasterKey {
    /// A key from its base64 text (32 bytes once decoded; surrounding blanks ignored).
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let bytes = zeroize::Zeroizing::new(BASE64.decode(text.trim()).map_err(|e| KeyError::NotBase64(e.to_string()))?);
        if bytes.len() != KEY_LEN {
            return Err(KeyError::WrongLength(bytes.len()));
        }
        Ok(Self::from_bytes(&bytes))
    }

    fn from_bytes(bytes: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(b"dialtone master key id\0");
        h.update(bytes);
        let id = hex::encode(&h.finalize()[..8]);
        Self { id, cipher: XChaCha20Poly1305::new_from_slice(bytes).expect("32-byte key") }
    }

    /// A new random key and its base64 text (`dialtone demo`'s ephemeral key, tests).
    pub fn generate() -> (Self, SecretString) {
        use chacha20poly1305::aead::rand_core::RngCore;
        let mut key = zeroize::Zeroizing::new([0u8; KEY_LEN]);
        OsRng.fill_bytes(&mut *key);
        (Self::from_bytes(&*key), SecretString::from(BASE64.encode(*key)))
    }

    /// 16 hex digits naming the key in every value it seals.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The keys secrets are sealed and opened with: the current one seals, any opens.
#[derive(Debug, Clone)]
pub struct Keyring {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

impl Keyring {
    /// `current` seals; `current` and `previous` open.
    pub fn new(current: MasterKey, previous: Vec<MasterKey>) -> Self {
        Self { current, previous }
    }

    /// The keyring of the config's `master_key` and `previous_master_keys` (base64 each).
    pub fn from_base64(current: &SecretString, previous: &[SecretString]) -> Result<Self, KeyError> {
        let current = MasterKey::from_base64(current.expose_secret())?;
        let previous = previous.iter().map(|k| MasterKey::from_base64(k.expose_secret())).collect::<Result<_, _>>()?;
        Ok(Self::new(current, previous))
    }

    /// A keyring of one new random key, lost when the process ends (`dialtone demo`).
    pub fn ephemeral() -> Self {
        Self::new(MasterKey::generate().0, vec![])
    }

    /// The id of the key that seals.
    pub fn current_id(&self) -> &str {
        self.current.id()
    }

    /// Seals `plaintext` under the current key, bound to `context` (where it is stored,
    /// e.g. `provider_accounts:pa_…:secrets`): `dtenc1:{key id}:{base64}`.
    pub fn encrypt(&self, plaintext: &str, context: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .current
            .cipher
            .encrypt(&nonce, Payload { msg: plaintext.as_bytes(), aad: context.as_bytes() })
            .expect("XChaCha20-Poly1305 seals any message below 256 GiB");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        format!("{PREFIX}:{}:{}", self.current.id, BASE64.encode(out))
    }

    /// Opens a value [`Keyring::encrypt`] sealed with the same `context`, with whichever
    /// configured key its id names.
    pub fn decrypt(&self, stored: &str, context: &str) -> Result<SecretString, SecretError> {
        let (kid, body) = split(stored).ok_or(SecretError::Malformed)?;
        let key = std::iter::once(&self.current).chain(&self.previous).find(|k| k.id == kid).ok_or_else(|| SecretError::UnknownKey(kid.to_string()))?;
        let bytes = BASE64.decode(body).map_err(|_| SecretError::Malformed)?;
        if bytes.len() < NONCE_LEN {
            return Err(SecretError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let plain = key
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: context.as_bytes() })
            .map_err(|_| SecretError::Tampered(kid.to_string()))?;
        String::from_utf8(plain).map(SecretString::from).map_err(|_| SecretError::Malformed)
    }

    /// Whether `stored` is sealed by the current key (a rotation leaves such values alone).
    pub fn is_current(&self, stored: &str) -> bool {
        key_id(stored) == Some(self.current.id())
    }
}

/// The key id of an encrypted value; `None` if `stored` is not one (e.g. a plaintext
/// `whsec_…` written before secrets were encrypted).
pub fn key_id(stored: &str) -> Option<&str> {
    split(stored).map(|(kid, _)| kid)
}

/// Whether `stored` is an encrypted value (see [`PREFIX`]).
pub fn is_encrypted(stored: &str) -> bool {
    key_id(stored).is_some()
}

fn split(stored: &str) -> Option<(&str, &str)> {
    let rest = stored.strip_prefix(PREFIX)?.strip_prefix(':')?;
    let (kid, body) = rest.split_once(':')?;
    (kid.len() == 16 && kid.bytes().all(|b| b.is_ascii_hexdigit())).then_some((kid, body))
}

/// The last four characters of a secret, as the API shows it (`…` and the four; all of a
/// secret of eight characters or fewer stays hidden: `…`).
pub fn last_four(secret: &SecretString) -> String {
    let s = secret.expose_secret();
    let n = s.chars().count();
    if n <= 8 {
        return "…".to_string();
    }
    format!("…{}", s.chars().skip(n - 4).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(keys: &[&MasterKey]) -> Keyring {
        Keyring::new(keys[0].clone(), keys[1..].iter().map(|k| (*k).clone()).collect())
    }

    #[test]
    fn a_sealed_secret_opens_with_its_key_and_context_and_never_shows_the_plaintext() {
        let (k, _) = MasterKey::generate();
        let r = ring(&[&k]);
        let sealed = r.encrypt("sk_live_abcdef123456", "t:1:c");
        assert!(sealed.starts_with(&format!("dtenc1:{}:", k.id())), "{sealed}");
        assert!(!sealed.contains("abcdef"), "{sealed}");
        assert_eq!(r.decrypt(&sealed, "t:1:c").unwrap().expose_secret(), "sk_live_abcdef123456");
        // Two seals of one secret differ (random nonces).
        assert_ne!(sealed, r.encrypt("sk_live_abcdef123456", "t:1:c"));
        assert_eq!(format!("{:?}", r.decrypt(&sealed, "t:1:c").unwrap()), "SecretBox<str>([REDACTED])");
    }

    #[test]
    fn the_wrong_key_an_altered_value_or_another_context_fail() {
        let (a, _) = MasterKey::generate();
        let (b, _) = MasterKey::generate();
        let sealed = ring(&[&a]).encrypt("secret-value", "t:1:c");
        assert_eq!(ring(&[&b]).decrypt(&sealed, "t:1:c").unwrap_err(), SecretError::UnknownKey(a.id().to_string()));
        // Same key id, other key bytes: a forged id does not help.
        let forged = sealed.replace(a.id(), b.id());
        assert_eq!(ring(&[&b]).decrypt(&forged, "t:1:c").unwrap_err(), SecretError::Tampered(b.id().to_string()));
        assert_eq!(ring(&[&a]).decrypt(&sealed, "t:2:c").unwrap_err(), SecretError::Tampered(a.id().to_string()));
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 3;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert!(matches!(ring(&[&a]).decrypt(std::str::from_utf8(&altered).unwrap(), "t:1:c"), Err(SecretError::Tampered(_) | SecretError::Malformed)));
        assert_eq!(ring(&[&a]).decrypt("whsec_plain", "t:1:c").unwrap_err(), SecretError::Malformed);
    }

    #[test]
    fn keys_come_from_32_bytes_of_base64_and_old_keys_still_open_after_a_rotation() {
        assert!(matches!(MasterKey::from_base64("not base64!"), Err(KeyError::NotBase64(_))));
        assert_eq!(MasterKey::from_base64(&BASE64.encode([1u8; 16])).unwrap_err(), KeyError::WrongLength(16));
        let (old, old_text) = MasterKey::generate();
        let (new, new_text) = MasterKey::generate();
        assert_eq!(MasterKey::from_base64(old_text.expose_secret()).unwrap().id(), old.id(), "the id is the key's");
        let sealed_old = ring(&[&old]).encrypt("v", "c");
        let rotated = Keyring::from_base64(&new_text, &[old_text]).unwrap();
        assert_eq!(rotated.decrypt(&sealed_old, "c").unwrap().expose_secret(), "v");
        assert!(!rotated.is_current(&sealed_old));
        let resealed = rotated.encrypt("v", "c");
        assert!(rotated.is_current(&resealed));
        assert_eq!(key_id(&resealed), Some(new.id()));
        assert_eq!(Keyring::from_base64(&new_text, &[]).unwrap().decrypt(&resealed, "c").unwrap().expose_secret(), "v");
    }

    #[test]
    fn only_the_last_four_characters_of_a_long_secret_show() {
        assert_eq!(last_four(&SecretString::from("AC0123456789abcdef")), "…cdef");
        assert_eq!(last_four(&SecretString::from("short")), "…");
    }
}
