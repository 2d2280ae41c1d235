//! A provider event, parsed from a webhook (or a reconcile lookup) into our terms.

use crate::call::{CallStatus, Outcome};
use crate::ids::CallId;
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
    pub raw: serde_json::Value,
}
