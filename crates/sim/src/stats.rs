use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A snapshot of what the simulator saw; served at `GET /sim/stats`.
///
/// Benchmarks and tests judge the engine by these numbers (peak concurrency,
/// duplicate dials), so they are all taken under one lock. Dials, duplicates,
/// `active` and the peaks count the calls of every provider (Vapi, Twilio,
/// Exotel) together; `active` and the peaks include inbound calls, as Vapi's
/// account concurrency does.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct SimStats {
    /// Accepted call creations, all providers (Vapi `POST /call` 201, Twilio
    /// `Calls.json` 201, Exotel `connect.json` 200). Inbound calls are not dials.
    pub dials: u64,
    /// Accepted dials per provider: `"vapi"`, `"twilio"`, `"exotel"`.
    pub dials_by_provider: BTreeMap<String, u64>,
    /// Per dialled number, the digits asked for after the call connects (an extension):
    /// Vapi `customer.extension`, Twilio `SendDigits`, as sent.
    pub digits_after_connect: BTreeMap<String, String>,
    pub rejected_429: u64,
    pub rejected_503: u64,
    pub rejected_400: u64,
    pub unauthorized: u64,
    /// Calls accepted (or rung in) and not yet ended, now (hanging calls stay here).
    pub active: u64,
    pub peak_concurrent: u64,
    /// Keyed by the caller line: Vapi `phoneNumberId`, Twilio `From`, Exotel
    /// `CallerId`, and for inbound Vapi calls the number called (`to`).
    pub peak_concurrent_by_phone_number: BTreeMap<String, u64>,
    /// Keyed by dialtone campaign id: Vapi `assistantOverrides.metadata.campaignId`,
    /// Twilio/Exotel the `dialtone_campaign_id` query parameter of the StatusCallback URL.
    pub peak_concurrent_by_campaign: BTreeMap<String, u64>,
    /// `"vapi"`, `"twilio"`, `"exotel"`.
    pub peak_concurrent_by_provider: BTreeMap<String, u64>,
    /// Accepted dials whose dialtone call id had been accepted before, by any
    /// provider (Vapi `metadata.dialtoneCallId`, Twilio StatusCallback URL
    /// `dialtone_call_id`, Exotel `CustomField`).
    pub duplicate_dials: u64,
    pub duplicate_dial_ids: Vec<String>,
    pub dials_without_dialtone_id: u64,
    /// Unix ms of the first accepted dial.
    pub first_dial_at_ms: Option<i64>,
    /// Unix ms of the last call to end.
    pub last_ended_at_ms: Option<i64>,
    pub ended: u64,
    pub outcomes: OutcomeCounts,
    /// Calls that were set to hang forever.
    pub hanging: u64,
    /// Calls ended by a client's hang-up request (Vapi control `end-call`,
    /// Twilio `Status=completed|canceled`).
    pub hangups: u64,
    /// Successful (2xx) deliveries, duplicates and assistant-requests included.
    pub webhooks_sent: u64,
    /// Non-2xx answers and transport errors.
    pub webhooks_failed: u64,
    /// Webhooks withheld by the drop fault.
    pub webhooks_dropped: u64,
    /// Webhooks sent a second time by the duplicate fault.
    pub webhooks_duplicated: u64,
    /// Calls whose progress webhooks were sent after their ended webhooks.
    pub calls_reordered: u64,
    /// Inbound calls rung in through `POST /sim/inbound` (one assistant-request each).
    pub inbound_requests: u64,
    /// Answered with `{"assistantId": …}` or `{"assistant": {…}}`.
    pub inbound_answered: u64,
    /// Answered with `{"error": …}`.
    pub inbound_errors: u64,
    /// No answer within 7.5 s.
    pub inbound_timeouts: u64,
    /// Anything else: non-2xx, transport error, a body naming no assistant.
    pub inbound_invalid: u64,
}

/// How calls ended, as the provider reported it on the wire.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(default)]
pub struct OutcomeCounts {
    /// Answered by a person and completed (a Twilio `Status=completed` hang-up
    /// of an answered call reports `completed`, so it counts here).
    pub answered: u64,
    pub no_answer: u64,
    pub busy: u64,
    pub voicemail: u64,
    /// Includes inbound calls whose assistant-request was refused or unanswered.
    pub failed: u64,
    /// Vapi `manually-canceled` (control `end-call`) and Twilio `canceled`.
    pub canceled: u64,
}
