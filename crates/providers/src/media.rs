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

/// The longest `StreamUrl` Exotel takes: 600 characters (Exotel's AgentStream developer guide,
/// `POST /v1/Accounts/{sid}/Calls/connect`: "streamurl … max 600 chars"; ../shared/VOICE.md).
pub const EXOTEL_STREAM_URL_MAX: usize = 600;

/// Checks a `StreamUrl` against [`EXOTEL_STREAM_URL_MAX`]. Err: a message naming the length,
/// the limit and what to shorten.
pub fn check_exotel_stream_url(url: &str) -> Result<(), String> {
    let len = url.chars().count();
    if len > EXOTEL_STREAM_URL_MAX {
        return Err(format!(
            "the Exotel StreamUrl would be {len} characters, over Exotel's limit of {EXOTEL_STREAM_URL_MAX}; shorten public_url (DIALTONE_PUBLIC_URL) or exotel_stream_url"
        ));
    }
    Ok(())
}

/// The length of every Exotel `StreamUrl` dialtone makes under `public_base_url` (call ids
/// and tokens have fixed lengths); `None` when the URL is not http(s)/ws(s).
pub fn exotel_stream_url_len(public_base_url: &str) -> Option<usize> {
    exotel_stream_url(public_base_url, b"length only", &CallId::new()).map(|u| u.chars().count())
}

/// Exotel's `StreamUrl` for `call_id`: `{wss base}/media/exotel/{token}?call_id={call_id}`.
/// Call ids are `call_` + base32 and tokens hex: nothing to escape.
pub fn exotel_stream_url(public_base_url: &str, secret: &[u8], call_id: &CallId) -> Option<String> {
    Some(format!("{}{EXOTEL_MEDIA_PATH}/{}?call_id={call_id}", websocket_base(public_base_url)?, stream_token(secret, call_id)))
}

/// The inline TwiML that connects a Twilio call to our stream for `call_id`, XML-escaped.
/// `media_path` is where the stream opens under `public_base_url` ([`TWILIO_MEDIA_PATH`],
/// or a workspace account's own path).
pub fn twilio_stream_twiml(public_base_url: &str, media_path: &str, secret: &[u8], call_id: &CallId) -> Option<String> {
    let url = format!("{}{media_path}", websocket_base(public_base_url)?);
    Some(format!(
        "<Response><Connect><Stream url=\"{}\"><Parameter name=\"dialtone_call_id\" value=\"{}\"/><Parameter name=\"token\" value=\"{}\"/></Stream></Connect></Response>",
        xml_escape(&url),
        xml_escape(call_id.as_str()),
        xml_escape(&stream_token(secret, call_id)),
    ))
}

#[cfg(test)]
mod length_tests {
    use super::*;

    #[test]
    fn stream_urls_over_600_characters_are_refused_with_the_lengths() {
        let short = "https://dialer.example.com";
        let len = exotel_stream_url_len(short).unwrap();
        assert_eq!(len, exotel_stream_url(short, b"k", &CallId::new()).unwrap().len());
        assert!(check_exotel_stream_url(&exotel_stream_url(short, b"k", &CallId::new()).unwrap()).is_ok());
        // A base that leaves the URL exactly at the limit passes; one character more does not.
        let at_limit = format!("https://{}", "a".repeat(EXOTEL_STREAM_URL_MAX - len + short.len() - "https://".len()));
        assert_eq!(exotel_stream_url_len(&at_limit), Some(EXOTEL_STREAM_URL_MAX));
        assert!(check_exotel_stream_url(&exotel_stream_url(&at_limit, b"k", &CallId::new()).unwrap()).is_ok());
        let over = format!("{at_limit}a");
        let e = check_exotel_stream_url(&exotel_stream_url(&over, b"k", &CallId::new()).unwrap()).unwrap_err();
        assert!(e.contains("601 characters") && e.contains("600") && e.contains("public_url"), "{e}");
    }
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
            twilio_stream_twiml("https://d.example.com/a&b", TWILIO_MEDIA_PATH, b"k", &call).unwrap(),
            format!(
                "<Response><Connect><Stream url=\"wss://d.example.com/a&amp;b/media/twilio\"><Parameter name=\"dialtone_call_id\" value=\"{call}\"/>\
                 <Parameter name=\"token\" value=\"{token}\"/></Stream></Connect></Response>"
            )
        );
        assert_eq!(xml_escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;");
    }
}
