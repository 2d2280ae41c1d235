//! `X-Twilio-Signature`: base64(HMAC-SHA1(auth token, URL + sorted params)). Twilio signs
//! the URL it requested, which our server never sees whole behind a proxy, so it is
//! rebuilt from `public_base_url` and the path and query as received.

use super::TwilioConfig;
use crate::rest::{form_pairs, path_and_query, query_param};
use crate::{WebhookError, WebhookRequest};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Digest;
use subtle::ConstantTimeEq;

pub(super) fn verify(config: &TwilioConfig, req: &WebhookRequest<'_>) -> Result<(), WebhookError> {
    let given = req.headers.get("x-twilio-signature").and_then(|v| v.to_str().ok()).ok_or_else(|| unauthorized("missing X-Twilio-Signature header"))?;
    let given = base64::engine::general_purpose::STANDARD.decode(given.trim()).map_err(|_| unauthorized("X-Twilio-Signature is not base64"))?;
    let token = config.auth_token.expose_secret();
    if token.is_empty() {
        return Err(unauthorized("no Twilio auth token configured"));
    }

    let url = format!("{}{}", config.public_base_url.trim_end_matches('/'), path_and_query(req.url));
    // A JSON body is not signed as params: the URL carries its hash instead, and the URL
    // is what gets signed.
    let params = match query_param(&url, "bodySHA256") {
        Some(claimed) => {
            let actual = hex::encode(sha2::Sha256::digest(req.body));
            if !bool::from(claimed.to_ascii_lowercase().as_bytes().ct_eq(actual.as_bytes())) {
                return Err(unauthorized("bodySHA256 does not match the body"));
            }
            Vec::new()
        }
        None => form_pairs(req.body),
    };

    let matched = url_variants(&url).iter().fold(subtle::Choice::from(0), |acc, candidate| acc | sign(token, candidate, &params).as_slice().ct_eq(&given));
    if bool::from(matched) {
        Ok(())
    } else {
        Err(unauthorized("X-Twilio-Signature does not match"))
    }
}

/// Whether `signature` (base64, the `X-Twilio-Signature` header) is Twilio's signature of
/// `url` with no parameters, as on the upgrade request of a Media Streams WebSocket
/// (Twilio signs the `wss://` URL it opens). The URL is tried with and without its
/// scheme's default port, like webhooks; compared in constant time.
pub fn verify_url_signature(auth_token: &str, url: &str, signature: &str) -> bool {
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else { return false };
    if auth_token.is_empty() {
        return false;
    }
    let matched = url_variants(url).iter().fold(subtle::Choice::from(0), |acc, candidate| acc | sign(auth_token, candidate, &[]).as_slice().ct_eq(&given));
    bool::from(matched)
}

/// The signature Twilio computes for `url` and `params`, base64 (what `X-Twilio-Signature`
/// carries); for tests and the simulator, which signs as Twilio does.
pub fn sign_base64(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    base64::engine::general_purpose::STANDARD.encode(sign(auth_token, url, params))
}

/// The signature Twilio computes for `url` and `params`.
pub(super) fn sign(token: &str, url: &str, params: &[(String, String)]) -> Vec<u8> {
    // Sorted by name and, for a repeated name, by value: the same as sorting the pairs.
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac.finalize().into_bytes().to_vec()
}

/// The URL as given, plus the same with the scheme's default port added (when it has no
/// port) or removed (when it has exactly that one): Twilio's own validators accept both,
/// since proxies and load balancers disagree about writing it.
pub(super) fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    let Some((scheme, rest)) = url.split_once("://") else { return out };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" | "wss" => "443",
        "http" | "ws" => "80",
        _ => return out,
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let (userinfo, host_port) = authority.split_at(host_start);
    // `[::1]:443`: the port colon is the one after the bracket.
    let colon = if host_port.starts_with('[') { host_port.find("]:").map(|i| i + 1) } else { host_port.rfind(':') };
    match colon {
        None => out.push(format!("{scheme}://{authority}:{default_port}{tail}")),
        Some(i) if &host_port[i + 1..] == default_port => {
            out.push(format!("{scheme}://{userinfo}{}{tail}", &host_port[..i]));
        }
        Some(_) => {}
    }
    out
}

fn unauthorized(why: &str) -> WebhookError {
    WebhookError::Unauthorized(why.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_variants_of_a_multi_byte_host_split_on_character_boundaries() {
        assert_eq!(url_variants("https://dïalér.example/w?x=☎"), vec!["https://dïalér.example/w?x=☎", "https://dïalér.example:443/w?x=☎"]);
        assert_eq!(url_variants("https://üser@hôst:443/ü"), vec!["https://üser@hôst:443/ü", "https://üser@hôst/ü"]);
    }

    proptest::proptest! {
        /// The URL is the one a request came in on: any text gives variants, never a panic.
        #[test]
        fn url_variants_never_panic(s in "\\PC{0,40}", scheme in proptest::sample::select(vec!["https://", "http://", ""])) {
            let url = format!("{scheme}{s}");
            proptest::prop_assert_eq!(&url_variants(&url)[0], &url);
        }
    }

    fn b64(sig: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(sig)
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_providers_md_vector() {
        let params =
            pairs(&[("CallSid", "CA1234567890ABCDE"), ("Caller", "+14158675309"), ("Digits", "1234"), ("From", "+14158675309"), ("To", "+18005551212")]);
        let sig = sign("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &params);
        assert_eq!(b64(&sig), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        // Order of arrival does not matter: the names are sorted before signing.
        let mut reversed = params.clone();
        reversed.reverse();
        assert_eq!(b64(&sign("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &reversed)), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
    }

    #[test]
    fn repeated_names_are_signed_with_their_values_sorted() {
        let a = sign("k", "https://x/", &pairs(&[("E", "ringing"), ("E", "answered")]));
        let b = sign("k", "https://x/", &pairs(&[("E", "answered"), ("E", "ringing")]));
        assert_eq!(a, b);
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"k").unwrap();
        mac.update(b"https://x/EansweredEringing");
        assert_eq!(a, mac.finalize().into_bytes().to_vec());
    }

    #[test]
    fn port_variants() {
        assert_eq!(url_variants("https://a.com/p?q=1"), ["https://a.com/p?q=1", "https://a.com:443/p?q=1"]);
        assert_eq!(url_variants("https://a.com:443/p"), ["https://a.com:443/p", "https://a.com/p"]);
        assert_eq!(url_variants("http://a.com?x"), ["http://a.com?x", "http://a.com:80?x"]);
        assert_eq!(url_variants("http://u:p@a.com:80/p"), ["http://u:p@a.com:80/p", "http://u:p@a.com/p"]);
        assert_eq!(url_variants("https://a.com:8443/p"), ["https://a.com:8443/p"]);
        assert_eq!(url_variants("https://[::1]/p"), ["https://[::1]/p", "https://[::1]:443/p"]);
        assert_eq!(url_variants("https://[::1]:443/p"), ["https://[::1]:443/p", "https://[::1]/p"]);
    }
}
