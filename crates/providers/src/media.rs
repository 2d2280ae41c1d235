//! Media-stream addresses for dialtone's own voice pipeline (Exotel `StreamUrl`, Twilio
//! `<Connect><Stream>`), and the token that lets only the provider we gave an address to
//! open a call's stream.
//!
//! The token is HMAC-SHA256(secret, call id), hex, first 32 characters (128 bits): it binds
//! the address to one call, needs no storage, and is checked in constant time.

use dialtone_core::CallId;

/// Where Exotel opens a call's stream, under our public URL as `wss://`:
/// `{EXOTEL_MEDIA_PATH}/{token}?call_id={call_id}` (Exotel echoes the query parameter back
/// in `start.custom_parameters`).
pub const EXOTEL_MEDIA_PATH: &str = "/media/exotel";
/// Where Twilio opens a call's stream (`<Stream url=…>`); the call id and token come as
/// `<Parameter>`s (`dialtone_call_id`, `token`) in the `start` message's `customParameters`.
pub const TWILIO_MEDIA_PATH: &str = "/media/twilio";

/// Our public base URL as a WebSocket base: `https://` → `wss://`, `http://` → `ws://`
/// (a local or test setup), trailing `/` removed. `None` for any other scheme.
pub fn websocket_base(public_base_url: &str) -> Option<String> {
    let url = public_base_url.trim_end_matches('/');
    if let Some(rest) = url.strip_prefix("https://") {
        Some(format!("wss://{rest}"))
    } else if let Some(rest) = url.strip_prefix("http://") {
        Some(format!("ws://{rest}"))
    } else if url.starts_with("wss://") || url.starts_with("ws://") {
        Some(url.to_string())
    } else {
        None
    }
}

/// Exotel's `StreamUrl` for `call_id`: `{wss base}/media/exotel/{token}?call_id={call_id}`.
/// Call ids are `call_` + base32 and tokens hex: nothing to escape.
pub fn exotel_stream_url(public_base_url: &str, secret: &[u8], call_id: &CallId) -> Option<String> {
    Some(format!("{}{EXOTEL_MEDIA_PATH}/{}?call_id={call_id}", websocket_base(public_base_url)?, stream_token(secret, call_id)))
}

/// The inline TwiML that connects a Twilio call to our stream for `call_id`, XML-escaped.
pub fn twilio_stream_twiml(public_base_url: &str, secret: &[u8], call_id: &CallId) -> Option<String> {
    let url = format!("{}{TWILIO_MEDIA_PATH}", websocket_base(public_base_url)?);
    Some(format!(
        "<Response><Connect><Stream url=\"{}\"><Parameter name=\"dialtone_call_id\" value=\"{}\"/><Parameter name=\"token\" value=\"{}\"/></Stream></Connect></Response>",
        xml_escape(&url),
        xml_escape(call_id.as_str()),
        xml_escape(&stream_token(secret, call_id)),
    ))
}

/// Escapes the five characters XML reserves, for an attribute value. Own code: five
/// replacements do not justify an XML crate in the providers.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}
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

    #[test]
    fn websocket_bases_follow_the_public_urls_scheme() {
        assert_eq!(websocket_base("https://dialer.example.com/").as_deref(), Some("wss://dialer.example.com"));
        assert_eq!(websocket_base("http://127.0.0.1:8080").as_deref(), Some("ws://127.0.0.1:8080"));
        assert_eq!(websocket_base("https://example.com/dialtone").as_deref(), Some("wss://example.com/dialtone"));
        assert_eq!(websocket_base("ftp://example.com"), None);
    }

    #[test]
    fn stream_addresses_carry_the_call_and_its_token() {
        let call = CallId::new();
        let token = stream_token(b"k", &call);
        assert_eq!(exotel_stream_url("https://d.example.com", b"k", &call).unwrap(), format!("wss://d.example.com/media/exotel/{token}?call_id={call}"));
        assert_eq!(
            twilio_stream_twiml("https://d.example.com/a&b", b"k", &call).unwrap(),
            format!(
                "<Response><Connect><Stream url=\"wss://d.example.com/a&amp;b/media/twilio\"><Parameter name=\"dialtone_call_id\" value=\"{call}\"/>\
                 <Parameter name=\"token\" value=\"{token}\"/></Stream></Connect></Response>"
            )
        );
        assert_eq!(xml_escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;");
    }
}
