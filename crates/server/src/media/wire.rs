//! The media-stream wire: the JSON text frames Exotel (Voicebot / AgentStream) and Twilio
//! (Media Streams) exchange with dialtone over the WebSocket.
//!
//! Sources: developer.exotel.com/docs/agentstream/websocket-protocol and
//! twilio.com/docs/voice/media-streams/websocket-messages (summarised in VOICE.md §1).
//!
//! Inbound, both providers send the same events (`connected`, `start`, `media`, `mark`,
//! `dtmf`, `stop`) that differ only in spelling (`stream_sid` vs `streamSid`, `call_sid` vs
//! `callSid`, `custom_parameters` vs `customParameters`, …) and in that Exotel often
//! writes numbers as strings: [`StreamIn`] accepts every spelling from either and reads
//! numbers leniently. An unknown event is [`StreamIn::Unknown`]; a frame that is not JSON
//! or lacks a required field is an error from [`StreamIn::parse`], never a panic.
//!
//! Outbound ([`StreamOut`]: `media`, `mark`, `clear`) is written in each provider's own
//! spelling by [`Dialect::encode`]: `stream_sid` to Exotel, `streamSid` to Twilio.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::HashMap;

/// Which provider's spelling and audio format a stream uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Base64 16-bit little-endian PCM at 8 kHz; outbound chunks multiples of 320 B, ≥ 3,200 B.
    Exotel,
    /// Base64 headerless G.711 μ-law at 8 kHz; 20 ms (160 B) frames.
    Twilio,
}

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Exotel => "exotel",
            Dialect::Twilio => "twilio",
        }
    }

    /// The JSON text frame for `out` on stream `stream_sid`.
    pub fn encode(self, stream_sid: &str, out: &StreamOut) -> String {
        let json = match self {
            Dialect::Exotel => serde_json::to_string(&ExotelOut::new(stream_sid, out)),
            Dialect::Twilio => serde_json::to_string(&TwilioOut::new(stream_sid, out)),
        };
        // Serialising plain strings into JSON cannot fail.
        json.unwrap_or_default()
    }
}

/// One inbound frame from Exotel or Twilio.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum StreamIn {
    /// The socket is open (Twilio adds `protocol` and `version`).
    Connected,
    /// The stream starts: who the call is, and the audio format.
    Start {
        #[serde(default, alias = "streamSid")]
        stream_sid: Option<String>,
        start: Start,
    },
    /// ~100 ms (Exotel) or 20 ms (Twilio) of the callee's audio.
    Media {
        #[serde(default, alias = "streamSid")]
        stream_sid: Option<String>,
        media: Media,
    },
    /// Our audio up to the mark named `name` has been played (or was cleared).
    Mark {
        #[serde(default, alias = "streamSid")]
        stream_sid: Option<String>,
        mark: Mark,
    },
    /// A key the callee pressed.
    Dtmf {
        #[serde(default, alias = "streamSid")]
        stream_sid: Option<String>,
        dtmf: Dtmf,
    },
    /// The stream ended (Exotel `reason`: `stopped` | `callended`).
    Stop {
        #[serde(default, alias = "streamSid")]
        stream_sid: Option<String>,
        #[serde(default)]
        stop: Stop,
    },
    /// Any event this version does not know: ignored.
    #[serde(other)]
    Unknown,
}

impl StreamIn {
    /// Parses one text frame. Errors: not JSON, no `event`, or a known event without a
    /// field it needs (e.g. `media` without `media.payload`).
    pub fn parse(text: &str) -> Result<StreamIn, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// `start.start`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Start {
    #[serde(alias = "streamSid")]
    pub stream_sid: Option<String>,
    #[serde(alias = "callSid")]
    pub call_sid: Option<String>,
    #[serde(alias = "accountSid")]
    pub account_sid: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Exotel: up to 3 query parameters of the stream URL, echoed; Twilio: the
    /// `<Parameter>`s of `<Stream>`. Values that are not strings are dropped.
    #[serde(alias = "customParameters", deserialize_with = "string_map")]
    pub custom_parameters: HashMap<String, String>,
    #[serde(alias = "mediaFormat")]
    pub media_format: Option<MediaFormat>,
}

/// `start.media_format` / `start.mediaFormat`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct MediaFormat {
    /// `audio/x-raw` (Exotel, 16-bit PCM) or `audio/x-mulaw` (Twilio).
    pub encoding: Option<String>,
    /// Hz; Exotel writes `"8000"`, Twilio `8000`.
    #[serde(alias = "sampleRate", deserialize_with = "lenient_u64")]
    pub sample_rate: Option<u64>,
}

/// `media.media`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Media {
    /// Base64 audio.
    pub payload: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub chunk: Option<u64>,
    /// ms since the stream started.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub timestamp: Option<u64>,
    /// Twilio: `inbound` (the callee). Absent on Exotel.
    #[serde(default)]
    pub track: Option<String>,
}

/// `mark.mark`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Mark {
    pub name: String,
}

/// `dtmf.dtmf`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Dtmf {
    /// `0`–`9`, `*`, `#` (Exotel may send a number).
    #[serde(deserialize_with = "lenient_string")]
    pub digit: String,
    /// ms (Exotel).
    #[serde(default, deserialize_with = "lenient_u64")]
    pub duration: Option<u64>,
}

/// `stop.stop`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Stop {
    #[serde(alias = "callSid")]
    pub call_sid: Option<String>,
    /// Exotel: `stopped` | `callended`.
    pub reason: Option<String>,
}

/// One outbound frame, provider-neutral; [`Dialect::encode`] writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamOut {
    /// Audio for the callee, already base64 in the dialect's format.
    Media { payload: String },
    /// Ask the provider to echo `name` once everything sent before it has played.
    Mark { name: String },
    /// Drop the audio the provider has buffered (barge-in).
    Clear,
}

#[derive(Serialize)]
struct Payload<'a> {
    payload: &'a str,
}

#[derive(Serialize)]
struct Name<'a> {
    name: &'a str,
}

/// What dialtone sends Exotel: `stream_sid`.
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
enum ExotelOut<'a> {
    Media { stream_sid: &'a str, media: Payload<'a> },
    Mark { stream_sid: &'a str, mark: Name<'a> },
    Clear { stream_sid: &'a str },
}

impl<'a> ExotelOut<'a> {
    fn new(stream_sid: &'a str, out: &'a StreamOut) -> Self {
        match out {
            StreamOut::Media { payload } => ExotelOut::Media { stream_sid, media: Payload { payload } },
            StreamOut::Mark { name } => ExotelOut::Mark { stream_sid, mark: Name { name } },
            StreamOut::Clear => ExotelOut::Clear { stream_sid },
        }
    }
}

/// What dialtone sends Twilio: `streamSid`.
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
enum TwilioOut<'a> {
    Media {
        #[serde(rename = "streamSid")]
        stream_sid: &'a str,
        media: Payload<'a>,
    },
    Mark {
        #[serde(rename = "streamSid")]
        stream_sid: &'a str,
        mark: Name<'a>,
    },
    Clear {
        #[serde(rename = "streamSid")]
        stream_sid: &'a str,
    },
}

impl<'a> TwilioOut<'a> {
    fn new(stream_sid: &'a str, out: &'a StreamOut) -> Self {
        match out {
            StreamOut::Media { payload } => TwilioOut::Media { stream_sid, media: Payload { payload } },
            StreamOut::Mark { name } => TwilioOut::Mark { stream_sid, mark: Name { name } },
            StreamOut::Clear => TwilioOut::Clear { stream_sid },
        }
    }
}

/// A number written as a number or as a string (`"8000"`); anything else is `None`.
fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A string, or a number written as one (`5` → `"5"`).
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    match v {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!("expected a string, found {other}"))),
    }
}

/// An object of parameters; non-string values are written as JSON text, `null` → empty.
fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<HashMap<String, String>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    let serde_json::Value::Object(map) = v else { return Ok(HashMap::new()) };
    Ok(map
        .into_iter()
        .map(|(k, v)| {
            let s = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            (k, s)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exotel_frames_parse_with_numbers_as_strings() {
        let start = r#"{"event":"start","sequence_number":"1","stream_sid":"st_1","start":{"stream_sid":"st_1","call_sid":"ca_9","account_sid":"acme","from":"+919876543210","to":"+918047112233","custom_parameters":{"call_id":"call_01","token":"abc"},"media_format":{"encoding":"audio/x-raw","sample_rate":"8000","bit_rate":"16"}}}"#;
        let StreamIn::Start { stream_sid, start } = StreamIn::parse(start).unwrap() else { panic!("not a start") };
        assert_eq!(stream_sid.as_deref(), Some("st_1"));
        assert_eq!(start.call_sid.as_deref(), Some("ca_9"));
        assert_eq!(start.custom_parameters["call_id"], "call_01");
        assert_eq!(start.media_format.unwrap().sample_rate, Some(8000));

        let media = r#"{"event":"media","sequence_number":"3","stream_sid":"st_1","media":{"chunk":"2","timestamp":"200","payload":"AAABAA=="}}"#;
        let StreamIn::Media { media, .. } = StreamIn::parse(media).unwrap() else { panic!("not media") };
        assert_eq!((media.chunk, media.timestamp, media.payload.as_str()), (Some(2), Some(200), "AAABAA=="));

        assert_eq!(
            StreamIn::parse(r#"{"event":"dtmf","stream_sid":"st_1","dtmf":{"digit":5,"duration":"120"}}"#).unwrap(),
            StreamIn::Dtmf { stream_sid: Some("st_1".into()), dtmf: Dtmf { digit: "5".into(), duration: Some(120) } }
        );
        assert_eq!(
            StreamIn::parse(r#"{"event":"stop","stream_sid":"st_1","stop":{"call_sid":"ca_9","account_sid":"acme","reason":"callended"}}"#).unwrap(),
            StreamIn::Stop { stream_sid: Some("st_1".into()), stop: Stop { call_sid: Some("ca_9".into()), reason: Some("callended".into()) } }
        );
        assert_eq!(StreamIn::parse(r#"{"event":"connected"}"#).unwrap(), StreamIn::Connected);
    }

    #[test]
    fn twilio_frames_parse_in_camel_case() {
        let start = r#"{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{"dialtone_call_id":"call_01","token":"abc"}},"streamSid":"MZ1"}"#;
        let StreamIn::Start { stream_sid, start } = StreamIn::parse(start).unwrap() else { panic!("not a start") };
        assert_eq!(stream_sid.as_deref(), Some("MZ1"));
        assert_eq!(start.call_sid.as_deref(), Some("CA1"));
        assert_eq!(start.custom_parameters["dialtone_call_id"], "call_01");
        assert_eq!(start.media_format.unwrap().encoding.as_deref(), Some("audio/x-mulaw"));

        let media = r#"{"event":"media","sequenceNumber":"4","media":{"track":"inbound","chunk":"2","timestamp":"5","payload":"fw=="},"streamSid":"MZ1"}"#;
        let StreamIn::Media { media, .. } = StreamIn::parse(media).unwrap() else { panic!("not media") };
        assert_eq!(media.track.as_deref(), Some("inbound"));
        let mark = r#"{"event":"mark","sequenceNumber":"4","streamSid":"MZ1","mark":{"name":"greeting"}}"#;
        assert_eq!(StreamIn::parse(mark).unwrap(), StreamIn::Mark { stream_sid: Some("MZ1".into()), mark: Mark { name: "greeting".into() } });
        let stop = r#"{"event":"stop","sequenceNumber":"5","streamSid":"MZ1","stop":{"accountSid":"AC1","callSid":"CA1"}}"#;
        assert!(matches!(StreamIn::parse(stop).unwrap(), StreamIn::Stop { .. }));
        let connected = r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#;
        assert_eq!(StreamIn::parse(connected).unwrap(), StreamIn::Connected);
    }

    #[test]
    fn unknown_events_are_ignored_and_bad_frames_are_errors_not_panics() {
        assert_eq!(StreamIn::parse(r#"{"event":"keepalive","x":1}"#).unwrap(), StreamIn::Unknown);
        for bad in ["", "not json", "[]", "{}", r#"{"event":"media"}"#, r#"{"event":"media","media":{"payload":7}}"#, r#"{"event":"mark","mark":{}}"#, "\u{0}"]
        {
            assert!(StreamIn::parse(bad).is_err(), "{bad:?}");
        }
        // A `start` whose inner fields are odd still parses: the driver checks what it needs.
        let odd = r#"{"event":"start","start":{"custom_parameters":null,"media_format":{"sample_rate":[1]}}}"#;
        let StreamIn::Start { start, .. } = StreamIn::parse(odd).unwrap() else { panic!("not a start") };
        assert!(start.custom_parameters.is_empty());
        assert_eq!(start.media_format.unwrap().sample_rate, None);
    }

    #[test]
    fn outbound_frames_use_each_providers_spelling() {
        let media = StreamOut::Media { payload: "AAA=".into() };
        assert_eq!(Dialect::Exotel.encode("st_1", &media), r#"{"event":"media","stream_sid":"st_1","media":{"payload":"AAA="}}"#);
        assert_eq!(Dialect::Twilio.encode("MZ1", &media), r#"{"event":"media","streamSid":"MZ1","media":{"payload":"AAA="}}"#);
        let mark = StreamOut::Mark { name: "m1".into() };
        assert_eq!(Dialect::Exotel.encode("st_1", &mark), r#"{"event":"mark","stream_sid":"st_1","mark":{"name":"m1"}}"#);
        assert_eq!(Dialect::Twilio.encode("MZ1", &mark), r#"{"event":"mark","streamSid":"MZ1","mark":{"name":"m1"}}"#);
        assert_eq!(Dialect::Exotel.encode("st_1", &StreamOut::Clear), r#"{"event":"clear","stream_sid":"st_1"}"#);
        assert_eq!(Dialect::Twilio.encode("MZ1", &StreamOut::Clear), r#"{"event":"clear","streamSid":"MZ1"}"#);
    }
}
