//! Twilio Programmable Voice (https://api.twilio.com/2010-04-01): REST client (form
//! bodies, Basic auth), `X-Twilio-Signature` verification and status-callback parsing.
//!
//! Twilio does not carry our metadata, so our call id rides in the status callback URL
//! (`?dialtone_call_id=call_…`), which Twilio signs along with everything else.

mod client;
mod signature;
pub use signature::{sign_base64, verify_url_signature};
mod webhook;

use crate::{ParsedWebhook, PlaceCall, Placed, Provider, ProviderError, RemoteCall, WebhookError, WebhookRequest};
use async_trait::async_trait;
use dialtone_core::{CallId, CallStatus, EventKind, Outcome, ProviderKind};
use jiff::Timestamp;
use secrecy::SecretString;
use std::time::Duration;

pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com/2010-04-01";

/// Where Twilio's status callbacks arrive, under `public_base_url`.
pub const WEBHOOK_PATH: &str = "/webhooks/twilio";

#[derive(Debug, Clone)]
pub struct TwilioConfig {
    /// `https://api.twilio.com/2010-04-01`, or a fake's `http://127.0.0.1:PORT`.
    pub base_url: String,
    pub account_sid: String,
    /// Basic-auth password for the REST API and the HMAC key of `X-Twilio-Signature`.
    pub auth_token: SecretString,
    /// Our public URL as Twilio reaches it (e.g. `https://dialer.example.com`). Builds the
    /// StatusCallback and, followed by the path and query our server saw, rebuilds the URL
    /// Twilio signed, so it must include any prefix a proxy strips.
    pub public_base_url: String,
    /// TwiML fetched when the call connects (`Url`). Used when both this and `twiml` are set.
    pub twiml_url: Option<String>,
    /// Inline TwiML (`Twiml`), e.g. `<Response><Connect><Stream url="wss://…"/></Connect></Response>`.
    pub twiml: Option<String>,
    /// Asynchronous answering-machine detection: the call proceeds while Twilio listens,
    /// and `AnsweredBy` turns a completed call into a voicemail.
    pub machine_detection: bool,
    /// How long Twilio lets the phone ring (`Timeout`).
    pub ring_timeout_secs: u32,
    pub request_timeout: Duration,
    /// The key of the media-stream tokens (`crate::media::stream_token`). A call placed
    /// with a media stream (`PlaceCall::media`) fails without it.
    pub media_secret: Option<SecretString>,
    /// Where status callbacks arrive under `public_base_url` ([`WEBHOOK_PATH`]; a
    /// workspace's own account: `/webhooks/twilio/{account id}`).
    pub webhook_path: String,
    /// Where the call's media stream opens under `public_base_url`
    /// ([`crate::media::TWILIO_MEDIA_PATH`]; a workspace's own account:
    /// `/media/twilio/{account id}`, whose upgrade is signed with that account's token).
    pub media_path: String,
}

impl TwilioConfig {
    /// Production defaults: the real API, 30 s ring, 10 s request timeout, no AMD. One of
    /// `twiml_url` / `twiml` must still be set before a call can be placed.
    pub fn new(account_sid: impl Into<String>, auth_token: SecretString, public_base_url: impl Into<String>) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_string(),
            account_sid: account_sid.into(),
            auth_token,
            public_base_url: public_base_url.into(),
            twiml_url: None,
            twiml: None,
            machine_detection: false,
            ring_timeout_secs: 30,
            request_timeout: Duration::from_secs(10),
            media_secret: None,
            webhook_path: WEBHOOK_PATH.to_string(),
            media_path: crate::media::TWILIO_MEDIA_PATH.to_string(),
        }
    }
}

pub struct TwilioProvider {
    config: TwilioConfig,
    http: reqwest::Client,
}

impl TwilioProvider {
    pub fn new(config: TwilioConfig) -> Self {
        // The timeout is set per request, so the builder has nothing that can fail but
        // the TLS backend itself, which is a broken build rather than a runtime condition.
        let http = reqwest::Client::builder().user_agent(concat!("dialtone/", env!("CARGO_PKG_VERSION"))).build().expect("reqwest client with rustls builds");
        Self { config, http }
    }
}

impl std::fmt::Debug for TwilioProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioProvider").field("config", &self.config).finish_non_exhaustive()
    }
}

#[async_trait]
impl Provider for TwilioProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Twilio
    }

    #[tracing::instrument(skip_all, fields(call_id = %call.call_id, campaign_id = %call.campaign_id, provider_call_id))]
    async fn place_call(&self, call: &PlaceCall) -> Result<Placed, ProviderError> {
        let placed = client::place_call(&self.http, &self.config, call).await?;
        tracing::Span::current().record("provider_call_id", placed.provider_call_id.as_str());
        Ok(placed)
    }

    #[tracing::instrument(skip_all, fields(provider_call_id = provider_call_id))]
    async fn get_call(&self, provider_call_id: &str) -> Result<RemoteCall, ProviderError> {
        client::get_call(&self.http, &self.config, provider_call_id).await
    }

    /// Twilio keeps nothing of ours on a call and cannot filter by the StatusCallback URL,
    /// so there is no safe lookup: an error makes the reaper end the call as a timeout
    /// rather than risk dialling the same person twice.
    async fn find_call(&self, _call_id: &CallId, _since: Timestamp) -> Result<Option<RemoteCall>, ProviderError> {
        Err(crate::rest::final_error(None, "twilio cannot find a call by dialtone id".into()))
    }

    #[tracing::instrument(skip_all, fields(provider_call_id = provider_call_id))]
    async fn hang_up(&self, provider_call_id: &str) -> Result<(), ProviderError> {
        client::hang_up(&self.http, &self.config, provider_call_id).await
    }

    fn verify_webhook(&self, req: &WebhookRequest<'_>, _now: Timestamp) -> Result<(), WebhookError> {
        signature::verify(&self.config, req)
    }

    fn parse_webhook(&self, req: &WebhookRequest<'_>) -> Result<ParsedWebhook, WebhookError> {
        webhook::parse(req)
    }
}

/// Twilio call status (REST `status` or callback `CallStatus`) → event. `None` for a
/// status we do not know: the caller stores it as `Info` rather than guess.
fn status_kind(status: &str, answered_by: Option<&str>) -> Option<EventKind> {
    let ended = |outcome| EventKind::Ended { outcome, reason: Some(status.to_string()) };
    Some(match status {
        "queued" | "initiated" => EventKind::Progress(CallStatus::Dialing),
        "ringing" => EventKind::Progress(CallStatus::Ringing),
        "in-progress" => EventKind::Progress(CallStatus::InProgress),
        "completed" => match answered_by.filter(|a| !a.is_empty()) {
            // The reason keeps what AMD said, so "completed" by a human and by a machine
            // stay apart in the record.
            Some(a) => {
                EventKind::Ended { outcome: if is_machine(a) { Outcome::Voicemail } else { Outcome::Completed }, reason: Some(format!("completed:{a}")) }
            }
            None => ended(Outcome::Completed),
        },
        "busy" => ended(Outcome::Busy),
        "no-answer" => ended(Outcome::NoAnswer),
        "failed" => ended(Outcome::Failed),
        "canceled" => ended(Outcome::Canceled),
        _ => return None,
    })
}

/// AMD's verdicts other than `human` and `unknown`: a machine of any kind, or a fax.
fn is_machine(answered_by: &str) -> bool {
    answered_by.starts_with("machine_") || answered_by == "fax"
}

/// Twilio's dates: `Tue, 31 Aug 2010 20:36:28 +0000`.
fn parse_rfc2822(s: &str) -> Option<Timestamp> {
    jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(s.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(outcome: Outcome, reason: &str) -> Option<EventKind> {
        Some(EventKind::Ended { outcome, reason: Some(reason.into()) })
    }

    #[test]
    fn statuses_map_to_our_states() {
        assert_eq!(status_kind("queued", None), Some(EventKind::Progress(CallStatus::Dialing)));
        assert_eq!(status_kind("initiated", None), Some(EventKind::Progress(CallStatus::Dialing)));
        assert_eq!(status_kind("ringing", None), Some(EventKind::Progress(CallStatus::Ringing)));
        assert_eq!(status_kind("in-progress", None), Some(EventKind::Progress(CallStatus::InProgress)));
        assert_eq!(status_kind("completed", None), ended(Outcome::Completed, "completed"));
        assert_eq!(status_kind("busy", None), ended(Outcome::Busy, "busy"));
        assert_eq!(status_kind("no-answer", None), ended(Outcome::NoAnswer, "no-answer"));
        assert_eq!(status_kind("failed", None), ended(Outcome::Failed, "failed"));
        assert_eq!(status_kind("canceled", None), ended(Outcome::Canceled, "canceled"));
        assert_eq!(status_kind("teleporting", None), None);
    }

    #[test]
    fn machines_and_faxes_make_a_completed_call_a_voicemail() {
        for a in ["machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"] {
            assert_eq!(status_kind("completed", Some(a)), ended(Outcome::Voicemail, &format!("completed:{a}")), "{a}");
        }
        assert_eq!(status_kind("completed", Some("human")), ended(Outcome::Completed, "completed:human"));
        assert_eq!(status_kind("completed", Some("unknown")), ended(Outcome::Completed, "completed:unknown"));
        assert_eq!(status_kind("completed", Some("")), ended(Outcome::Completed, "completed"));
        // AMD only changes how an answered call ended.
        assert_eq!(status_kind("busy", Some("machine_start")), ended(Outcome::Busy, "busy"));
    }

    #[test]
    fn rfc2822_dates_parse() {
        let t = parse_rfc2822("Tue, 31 Aug 2010 20:36:28 +0000").unwrap();
        assert_eq!(t.to_string(), "2010-08-31T20:36:28Z");
        assert_eq!(parse_rfc2822("2010-08-31"), None);
    }
}
