//! Media-stream addresses for dialtone's own voice pipeline (Exotel `StreamUrl`, Twilio
//! `<Connect><Stream>`), and the token that lets only the provider we gave an address to
//! open a call's stream.
//!
//! The token is HMAC-SHA256(secret, call id), hex, first 32 characters (128 bits): it binds
//! the address to one call, needs no storage, and is checked in constant time.

use dialtone_core::CallId;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The token for `call_id` under `secret` (32 lowercase hex characters).
pub fn stream_token(secret: &[u8], call_id: &CallId) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(call_id.as_str().as_bytes());
    let mut token = hex::encode(mac.finalize().into_bytes());
    token.truncate(32);
    token
}

/// Whether `token` is `call_id`'s token under `secret` (constant time).
pub fn verify_stream_token(secret: &[u8], call_id: &CallId, token: &str) -> bool {
    use subtle::ConstantTimeEq;
    let expected = stream_token(secret, call_id);
    expected.len() == token.len() && bool::from(expected.as_bytes().ct_eq(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_only_its_own_call_under_its_own_secret() {
        let call = CallId::new();
        let token = stream_token(b"secret", &call);
        assert_eq!(token.len(), 32);
        assert!(verify_stream_token(b"secret", &call, &token));
        assert!(!verify_stream_token(b"other", &call, &token));
        assert!(!verify_stream_token(b"secret", &CallId::new(), &token));
        assert!(!verify_stream_token(b"secret", &call, &token[..31]));
    }
}
