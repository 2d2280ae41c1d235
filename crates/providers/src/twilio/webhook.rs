//! Twilio status callbacks (form POSTs) as core events. Our call id comes from the
//! callback URL we gave Twilio; the signature over that URL vouches for it.

use super::{parse_rfc2822, status_kind};
use crate::rest::{form_pairs, pairs_to_json, query_param, seconds_to_ms};
use crate::{ParsedWebhook, WebhookError, WebhookRequest};
use dialtone_core::{AnsweredBy, CallId, CallReport, EventKind, ProviderEvent};
use sha2::Digest;

pub(super) fn parse(req: &WebhookRequest<'_>) -> Result<ParsedWebhook, WebhookError> {
    let pairs = form_pairs(req.body);
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
    let sid = get("CallSid").ok_or_else(|| WebhookError::Malformed("form body without `CallSid`".into()))?;
    let status = get("CallStatus");
    let answered_by = get("AnsweredBy");

    let known = status.and_then(|s| status_kind(s, answered_by).map(|kind| (s, kind)));
    let (provider_type, kind, key_tail) = match (known, status, answered_by) {
        (Some((s, kind)), _, _) => (get("CallbackSource").unwrap_or("status-callback"), kind, s.to_string()),
        // The async AMD verdict (AsyncAmdStatusCallback): no CallStatus, and the call goes
        // on. It arrives in any order with `completed`, which then carries no AnsweredBy;
        // `dialtone_core::call::effect` makes a machine's completed call a voicemail.
        (None, None, Some(a)) => ("amd", EventKind::Amd { answered_by: AnsweredBy::from_twilio(a) }, format!("amd:{a}")),
        // The recording status callback (`RecordingStatusCallback`): `RecordingSid`,
        // `RecordingUrl`, `RecordingStatus`, no `CallStatus`. Moves nothing; its URL is
        // stored on the call (below).
        (None, None, None) if get("RecordingSid").is_some() => {
            ("recording", EventKind::Info, format!("recording:{}:{}", get("RecordingSid").unwrap_or_default(), get("RecordingStatus").unwrap_or("none")))
        }
        (None, s, _) => {
            // A status we do not know may repeat with new content: the sequence number
            // (or, failing that, the body) keeps distinct callbacks distinct.
            let seq = get("SequenceNumber").map_or_else(|| hex::encode(&sha2::Sha256::digest(req.body)[..8]), str::to_string);
            (get("CallbackSource").unwrap_or("status-callback"), EventKind::Info, format!("{}:{seq}", s.unwrap_or("none")))
        }
    };
    let duration_ms = match kind {
        // Seconds. (`Duration` is whole billed minutes, not a duration to store.)
        EventKind::Ended { .. } => get("CallDuration").and_then(seconds_to_ms),
        _ => None,
    };
    // Twilio's recording URL is sent on the recording callback once the recording is
    // `completed` (earlier statuses have no file yet); a status callback may carry one too.
    let recording_url = get("RecordingUrl").filter(|_| get("RecordingStatus").is_none_or(|s| s == "completed"));
    let report = recording_url.map(|url| Box::new(CallReport { recording_url: Some(url.to_string()), ..CallReport::default() }));
    let event = ProviderEvent {
        provider_type: provider_type.to_string(),
        provider_call_id: Some(sid.to_string()),
        call_id: query_param(req.url, "dialtone_call_id").and_then(|id| CallId::parse(&id)),
        kind,
        dedupe_key: format!("twilio:{sid}:{key_tail}"),
        occurred_at: get("Timestamp").and_then(parse_rfc2822),
        cost: None,
        duration_ms,
        report,
        // `SequenceNumber` stays here: events are ordered by state rank downstream.
        raw: pairs_to_json(&pairs).into(),
        webhook: None,
    };
    Ok(ParsedWebhook { events: vec![event], ..ParsedWebhook::default() })
}
