//! A provider event, parsed from a webhook (or a reconcile lookup) into our terms.

use crate::call::{CallStatus, Outcome};
use crate::ids::CallId;
use crate::text_enum;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The call reached an active state (dialing, ringing, in progress).
    Progress(CallStatus),
    /// The call ended; `reason` is the provider's raw reason, kept as sent.
    Ended { outcome: Outcome, reason: Option<String> },
    /// Accepted and stored, moves nothing (transcripts, reports after the end, …).
    Info,
    /// An answering-machine detection (AMD) verdict that came on its own (Twilio's
    /// `AsyncAmdStatusCallback`): moves no state, but decides whether a `completed` call
    /// was a voicemail (`dialtone_core::call::effect`).
    Amd { answered_by: AnsweredBy },
    /// The verdict of dialtone's own voice pipeline (Exotel/Twilio media streams) when its
    /// conversation ended: `completed`, `no_response` or `voicemail`. It heard the whole
    /// call, so it wins over the provider's plain `completed` whichever arrives first
    /// (`dialtone_core::call::effect`).
    Voice { outcome: Outcome },
}

/// Who answered a call, as the provider's answering-machine detection (AMD) judged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnsweredBy {
    Human,
    /// An answering machine or voicemail greeting of any kind, or a fax.
    Machine,
    /// AMD could not tell (Twilio `unknown`, or a verdict we do not know).
    Unknown,
}

text_enum!(AnsweredBy, "answered by", { Human => "human", Machine => "machine", Unknown => "unknown" });

impl AnsweredBy {
    /// Twilio's `AnsweredBy`: `human`, `machine_start`, `machine_end_beep`,
    /// `machine_end_silence`, `machine_end_other`, `fax` or `unknown`
    /// (https://www.twilio.com/docs/voice/answering-machine-detection). A fax line is
    /// treated as a machine: no person will take the call either way.
    pub fn from_twilio(verdict: &str) -> Self {
        match verdict {
            "human" => Self::Human,
            v if v.starts_with("machine_") || v == "fax" => Self::Machine,
            _ => Self::Unknown,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderEvent {
    /// The provider's own name for the event (`status-update`, `end-of-call-report`, …).
    pub provider_type: String,
    pub provider_call_id: Option<String>,
    /// Our id, echoed back by the provider from the metadata we sent: matches an event
    /// to its call even before the provider id is stored.
    pub call_id: Option<CallId>,
    pub kind: EventKind,
    /// Same key = same event: a replay is stored once.
    pub dedupe_key: String,
    pub occurred_at: Option<Timestamp>,
    /// Provider-reported cost, duration and the like, when the event carries them.
    pub cost: Option<f64>,
    pub duration_ms: Option<i64>,
    /// What the provider reported about the call's content (summary, recording,
    /// transcript), when this event carries any of it: stored on the call as it comes,
    /// whatever the event does to the call's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<Box<CallReport>>,
    /// The event as received (the webhook's JSON body, a form's fields as a JSON object,
    /// or what the engine wrote), stored as `call_events.payload`.
    pub raw: RawJson,
    /// The webhook route that brought the event, when a webhook did; `None` for what the
    /// engine makes or reads from the provider itself (a status lookup through the call's
    /// own account). A webhook's event applies only to a call placed on the account whose
    /// route (and secret) it came through: another account's event is stored, marked
    /// mismatched, and changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookRoute>,
}

/// A JSON payload kept as its text. A Vapi webhook's body is stored as it came (after
/// `without_nul`, trimmed of surrounding whitespace; its own whitespace and key order
/// kept); what is built as a tree (a Twilio or Exotel callback's fields, a reconcile
/// lookup, an engine event) is serialised once, when the event is made. No payload is turned
/// back into text on its way into the database: re-serialising and re-escaping each one
/// (~1–2 KB for a Vapi end-of-call-report) was ~12 % of the SQLite engine's CPU
/// (BENCHMARKS.md, issue 10). The text is JSON as serde_json's `RawValue` checks it (its
/// syntax: a lone surrogate escape or a number out of `f64`'s range passes there and fails
/// [`RawJson::value`]).
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawJson(Box<serde_json::value::RawValue>);

impl RawJson {
    /// The JSON `null`.
    pub fn null() -> Self {
        Self::from(&serde_json::Value::Null)
    }

    /// `json` (text, or a body's bytes), checked to be one UTF-8 JSON value (syntax, as
    /// `RawValue` checks it). Errors: not UTF-8 or not JSON (serde_json's error, with its
    /// line and column).
    pub fn parse(json: impl AsRef<[u8]>) -> Result<Self, serde_json::Error> {
        serde_json::from_slice::<Box<serde_json::value::RawValue>>(json.as_ref()).map(Self)
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The payload parsed (a copy), for reading fields where speed does not matter. Errors:
    /// what `RawValue`'s syntax check lets through and a `serde_json::Value` refuses (a lone
    /// surrogate escape, a number out of range, nesting deeper than 128).
    pub fn value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }
}

impl From<&serde_json::Value> for RawJson {
    fn from(v: &serde_json::Value) -> Self {
        Self(serde_json::value::to_raw_value(v).expect("a serde_json::Value always serialises"))
    }
}

impl From<serde_json::Value> for RawJson {
    fn from(v: serde_json::Value) -> Self {
        Self::from(&v)
    }
}

impl std::fmt::Debug for RawJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.get())
    }
}

impl std::fmt::Display for RawJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.get())
    }
}

/// Which provider account's webhook route an event came through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRoute {
    /// The workspace's own account (`/webhooks/{provider}/{account}`, verified with its
    /// secret); `None`: the config file's account (`/webhooks/{provider}`).
    pub account_id: Option<crate::ProviderAccountId>,
}

/// The content of a call as a provider reports it, each part `None` when not reported:
/// Vapi's end-of-call-report (`analysis.summary`, `artifact.recordingUrl`,
/// `artifact.messages`), a Twilio recording callback or an Exotel status callback
/// (`RecordingUrl`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CallReport {
    /// A short summary of the conversation, as the provider wrote it.
    pub summary: Option<String>,
    /// Where the provider keeps the call's recording (an `https://` URL of the provider's).
    pub recording_url: Option<String>,
    /// What was said, turn by turn (Vapi's `artifact.messages`).
    pub transcript: Option<Vec<crate::TranscriptTurn>>,
}

impl CallReport {
    /// Whether the report carries anything to store.
    pub fn is_empty(&self) -> bool {
        self.summary.is_none() && self.recording_url.is_none() && self.transcript.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::RawJson;

    #[test]
    fn a_payload_keeps_its_text_and_what_a_value_refuses_is_an_error_not_a_panic() {
        let text = r#"{ "b": 1,  "a": "é" }"#;
        assert_eq!(RawJson::parse(text).unwrap().get(), text, "whitespace and key order kept");
        assert!(RawJson::parse("{\"a\":").is_err());
        // The syntax check lets these through; reading them as a Value fails cleanly.
        for odd in [r#""\ud800""#, "1e400"] {
            assert!(RawJson::parse(odd).unwrap().value().is_err(), "{odd}");
        }
        assert_eq!(RawJson::from(serde_json::json!({"b": 1, "a": 2})).get(), r#"{"a":2,"b":1}"#);
        assert_eq!(RawJson::null().get(), "null");
        assert!(RawJson::parse(b"\"\xff\"").is_err(), "not UTF-8");
    }
}
