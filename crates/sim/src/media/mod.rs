//! Media streams from the provider's side: when an answered call asked for one (Exotel
//! `StreamUrl`, Twilio `<Connect><Stream url=…>`), the sim opens the WebSocket to that URL as
//! the provider does, plays a scripted callee ([`Callee`]) into it at real-time pace, plays
//! dialtone's audio on a virtual speaker (echoing marks, honouring `clear`) and keeps a
//! [`crate::MediaCallRecord`] of what it heard.
//!
//! Media always runs in real time (tokio time), whatever [`crate::SimConfig::time_scale`] is:
//! audio has no fast-forward.

pub(crate) mod callee;
pub(crate) mod session;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

pub use callee::Callee;
pub(crate) use session::{HungUpBy, StreamSpec, Wire};
use session::{Session, TICK_MS};

use crate::stats::MediaCallRecord;
use crate::Shared;

/// Exotel: the bot must answer within 10 s or the session fails; the sim gives any URL that long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a media session ended.
pub(crate) struct MediaEnd {
    pub by: HungUpBy,
    /// Real seconds from `start` to the end.
    pub secs: f64,
}

/// Runs the stream of call `call_sid` until someone hangs up. `None` when the socket could not
/// be opened (recorded with its error); the caller then lets the call run without media.
pub(crate) async fn run(shared: &Shared, call_sid: &str, spec: &StreamSpec, callee: Callee) -> Option<MediaEnd> {
    let mut request = match spec.url.as_str().into_client_request() {
        Ok(request) => request,
        Err(e) => return failed(shared, call_sid, spec, callee, e.to_string()),
    };
    // Twilio signs the WebSocket upgrade like a webhook: X-Twilio-Signature over the URL, no params.
    if let (Wire::Twilio, Some(token)) = (spec.wire, shared.config.twilio_auth_token.as_deref()) {
        if let Ok(value) = crate::twilio::signature::<&str, &str>(token, &spec.url, &[]).parse() {
            request.headers_mut().insert("x-twilio-signature", value);
        }
    }
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(request)).await;
    let ws = match connected {
        Ok(Ok((ws, _response))) => ws,
        Ok(Err(e)) => return failed(shared, call_sid, spec, callee, e.to_string()),
        Err(_) => return failed(shared, call_sid, spec, callee, "timed out after 10 s".into()),
    };
    let (mut tx, mut rx) = ws.split();
    let stream_sid = match spec.wire {
        Wire::Exotel => crate::ids::random_hex32(),
        Wire::Twilio => format!("MZ{}", crate::ids::random_hex32()),
    };
    let mut session = Session::new(spec, call_sid, stream_sid, callee);
    let (from, to) = match spec.wire {
        // Exotel dials the contact first (From) and bridges the ExoPhone's flow (CallerId).
        Wire::Exotel => (spec.number.as_str(), spec.caller.as_str()),
        Wire::Twilio => (spec.caller.as_str(), spec.number.as_str()),
    };
    let t0 = Instant::now();
    let ms = || u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut by = None;
    for text in session.opening(from, to) {
        if tx.send(Message::text(text)).await.is_err() {
            by = Some(HungUpBy::Error);
            break;
        }
    }
    let mut ticker = tokio::time::interval_at(t0, Duration::from_millis(TICK_MS));
    // Late ticks catch up, so the callee's audio keeps its real-time rate on average.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut tick_no: u64 = 0;
    while by.is_none() {
        tokio::select! {
            _ = shared.stopped() => by = Some(HungUpBy::Sim),
            incoming = rx.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    // On the stream clock: within the current tick's 20 ms, even when ticks run late.
                    let now = ms().clamp(tick_no.saturating_sub(1) * TICK_MS, (tick_no.max(1)) * TICK_MS - 1);
                    for reply in session.on_text(now, text.as_str()) {
                        if tx.send(Message::text(reply)).await.is_err() {
                            by = Some(HungUpBy::Dialtone);
                            break;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None => by = Some(HungUpBy::Dialtone),
                Some(Ok(Message::Binary(_))) => session.bad_message(),
                Some(Ok(_)) => {}
                Some(Err(_)) => by = Some(HungUpBy::Error),
            },
            _ = ticker.tick() => {
                // The tick's scheduled time: the stream clock, which late ticks catch up on.
                let out = session.tick(tick_no * TICK_MS);
                tick_no += 1;
                for text in out.messages {
                    if tx.send(Message::text(text)).await.is_err() {
                        by = Some(HungUpBy::Dialtone);
                        break;
                    }
                }
                if by.is_none() && out.hangup {
                    let _ = tx.send(Message::text(session.stop())).await;
                    let _ = tx.close().await;
                    by = Some(HungUpBy::Callee);
                }
                // Ended through the API (Twilio `Status=completed`): the provider stops the stream.
                if by.is_none() && tick_no.is_multiple_of(5) && call_ended(shared, call_sid) {
                    let _ = tx.send(Message::text(session.stop())).await;
                    let _ = tx.close().await;
                    by = Some(HungUpBy::Dialtone);
                }
            }
        }
    }
    let by = by.unwrap_or(HungUpBy::Error);
    let secs = t0.elapsed().as_secs_f64();
    let record = session.finish(tick_no.saturating_sub(1) * TICK_MS, by);
    shared.lock().push_media(record);
    Some(MediaEnd { by, secs })
}

fn call_ended(shared: &Shared, call_sid: &str) -> bool {
    shared.lock().call_mut(call_sid).is_none_or(|call| call.is_ended())
}

fn failed(shared: &Shared, call_sid: &str, spec: &StreamSpec, callee: Callee, error: String) -> Option<MediaEnd> {
    tracing::warn!(call_sid, url = %spec.url, %error, "sim: could not open the media stream");
    let record = MediaCallRecord {
        call_sid: call_sid.to_string(),
        provider: spec.wire.as_str().into(),
        callee: callee.as_str().into(),
        number: spec.number.clone(),
        connect_error: Some(error),
        custom_parameters: spec.custom_parameters.iter().cloned().collect(),
        ..MediaCallRecord::default()
    };
    shared.lock().push_media(record);
    None
}

/// Exotel echoes at most three of the StreamUrl's query parameters in `custom_parameters`.
pub(crate) fn exotel_custom_parameters(stream_url: &str) -> Vec<(String, String)> {
    url::Url::parse(stream_url).map(|u| u.query_pairs().take(3).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()).unwrap_or_default()
}

/// The `url` and `<Parameter>`s of `<Connect><Stream>` in inline TwiML (a bidirectional
/// stream); `None` without one (`<Start><Stream>` is a one-way fork and is not played).
///
/// A hand-rolled scan rather than an XML crate: two tags' attributes are all the sim needs,
/// and TwiML from a client is small; the five predefined XML entities are decoded.
pub(crate) fn twiml_stream(twiml: &str) -> Option<(String, Vec<(String, String)>)> {
    let connect = twiml.find("<Connect")?;
    let inner = &twiml[connect..];
    let inner = &inner[..inner.find("</Connect>").unwrap_or(inner.len())];
    let stream_at = inner.find("<Stream")?;
    let stream = &inner[stream_at..];
    let stream_tag = &stream[..stream.find('>')? + 1];
    let url = attribute(stream_tag, "url")?;
    if !(url.starts_with("ws://") || url.starts_with("wss://")) {
        return None;
    }
    let body = &stream[stream_tag.len()..];
    let body = &body[..body.find("</Stream>").unwrap_or(body.len())];
    let mut params = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.find("<Parameter") {
        let tag_end = rest[at..].find('>').map_or(rest.len(), |e| at + e + 1);
        let tag = &rest[at..tag_end];
        if let (Some(name), Some(value)) = (attribute(tag, "name"), attribute(tag, "value")) {
            params.push((name, value));
        }
        rest = &rest[tag_end..];
    }
    Some((url, params))
}

/// The value of attribute `name` in one tag, entity-decoded.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let mut rest = tag;
    while let Some(at) = rest.find(name) {
        let before_ok = at > 0 && rest.as_bytes()[at - 1].is_ascii_whitespace();
        let after = rest[at + name.len()..].trim_start();
        if before_ok {
            if let Some(after_eq) = after.strip_prefix('=') {
                let after_eq = after_eq.trim_start();
                let quote = after_eq.chars().next().filter(|q| *q == '"' || *q == '\'')?;
                let value = &after_eq[1..];
                let end = value.find(quote)?;
                return Some(unescape(&value[..end]));
            }
        }
        rest = &rest[at + name.len()..];
    }
    None
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twiml_connect_stream_with_parameters() {
        let twiml = r#"<?xml version="1.0"?><Response><Connect><Stream url="wss://bot.test/voice/twilio/t?a=1&amp;b=2"><Parameter name="call" value="call_1"/><Parameter value="x &amp; y" name="note" /></Stream></Connect></Response>"#;
        let (url, params) = twiml_stream(twiml).unwrap();
        assert_eq!(url, "wss://bot.test/voice/twilio/t?a=1&b=2");
        assert_eq!(params, [("call".to_string(), "call_1".to_string()), ("note".to_string(), "x & y".to_string())]);
        assert_eq!(twiml_stream("<Response><Start><Stream url=\"wss://x/y\"/></Start></Response>"), None, "a one-way fork");
        assert_eq!(twiml_stream("<Response><Connect><Stream url=\"https://x/y\"/></Connect></Response>"), None);
        assert_eq!(twiml_stream("<Response><Connect><Stream url='ws://x/y'/></Connect></Response>").unwrap().0, "ws://x/y");
        assert_eq!(twiml_stream("<Response><Connect><Stream"), None, "truncated input is no stream, not a panic");
    }

    #[test]
    fn exotel_echoes_three_query_parameters() {
        let params = exotel_custom_parameters("wss://bot.test/voice/exotel/tok?call=c1&b=2&c=3&d=4");
        assert_eq!(params.len(), 3);
        assert_eq!(params[0], ("call".to_string(), "c1".to_string()));
        assert!(exotel_custom_parameters("not a url").is_empty());
    }
}
