//! dialtone-providers: one module per voice provider, each owning request building, the
//! HTTP client, webhook verification and parsing into core events. The engine sees only
//! the [`Provider`] trait.

pub mod exotel;
pub mod media;
pub mod resilience;
mod rest;
pub mod twilio;
pub mod vapi;

use async_trait::async_trait;
use dialtone_core::{CallId, CampaignId, ProviderEvent, ProviderKind};
use jiff::Timestamp;
use std::time::Duration;

/// Everything a provider needs to place one call (one attempt).
#[derive(Debug, Clone)]
pub struct PlaceCall {
    pub call_id: CallId,
    pub campaign_id: CampaignId,
    pub assistant_id: String,
    pub phone_number_id: String,
    /// E.164.
    pub customer_number: String,
    /// Digits to dial once the call connects (Vapi `customer.extension`, Twilio
    /// `SendDigits`); Exotel has no way to send them and refuses the call.
    pub extension: Option<dialtone_core::Extension>,
    pub customer_name: Option<String>,
    /// Passed to the assistant (Vapi: `assistantOverrides.variableValues`).
    pub variables: serde_json::Map<String, serde_json::Value>,
    /// Set when the call's campaign (or single call) has an agent: the call is placed so
    /// that the provider opens a media stream to dialtone's own voice pipeline (Exotel
    /// `StreamUrl`, Twilio `<Connect><Stream>`), whatever flow or TwiML is configured.
    /// `None`: the configured flow, stream or TwiML runs the call (Vapi ignores it).
    pub media: Option<MediaStream>,
}

/// A media stream to open for a call (see [`PlaceCall::media`] and [`media`] for the
/// addresses and their token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaStream {
    /// The agent's `max_duration_secs`: the pipeline says goodbye and hangs up then.
    pub max_duration_secs: u32,
}

impl MediaStream {
    /// Added to `max_duration_secs` for the provider's own limit (`TimeLimit`): the
    /// pipeline's goodbye and hang-up come first, the provider's cut is only the backstop.
    pub const TIME_LIMIT_MARGIN_SECS: u32 = 60;
    /// The largest `TimeLimit` Exotel and Twilio take (4 h, their documented maximum).
    pub const MAX_TIME_LIMIT_SECS: u32 = 14_400;

    /// The provider's `TimeLimit` in seconds: `max_duration_secs` + 60 s, at most 14,400.
    pub fn time_limit_secs(&self) -> u32 {
        self.max_duration_secs.saturating_add(Self::TIME_LIMIT_MARGIN_SECS).min(Self::MAX_TIME_LIMIT_SECS)
    }
}

/// The provider accepted the call.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub provider_call_id: String,
}

/// What the provider says about a call when asked (reconcile).
#[derive(Debug, Clone)]
pub struct RemoteCall {
    pub provider_call_id: String,
    /// Our id, if the provider echoes the metadata we sent.
    pub call_id: Option<CallId>,
    /// The call's state as an event, ready to go through the same path as a webhook.
    /// Its dedupe key starts with `reconcile:`.
    pub event: ProviderEvent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorClass {
    /// Worth another try after a backoff: 429, 503, 504, timeouts, connection errors.
    Retryable,
    /// Will not succeed however often it is sent: 400, 401, 403, 404, 422, …
    Final,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    pub class: ErrorClass,
    /// HTTP status, if a response came back.
    pub status: Option<u16>,
    /// The provider's own reason, as clear as the response allows.
    pub message: String,
    /// From a `Retry-After` header, when present.
    pub retry_after: Option<Duration>,
    /// The provider said the account is at its concurrency limit: slow down, don't burn attempts.
    pub concurrency_limited: bool,
    /// The request may have reached the provider and only the answer was lost (a timeout,
    /// a connection cut after sending, a gateway timeout): the call may exist.
    pub unanswered: bool,
}

impl ProviderError {
    /// A non-2xx answer. Unanswered only for a gateway timeout (504): the provider behind
    /// the gateway may have acted on the request.
    pub fn from_status(class: ErrorClass, status: u16, message: String, retry_after: Option<Duration>, concurrency_limited: bool) -> Self {
        ProviderError { class, status: Some(status), message, retry_after, concurrency_limited, unanswered: status == 504 }
    }

    pub fn is_retryable(&self) -> bool {
        self.class == ErrorClass::Retryable
    }
}

/// Why a webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// Missing or wrong credentials/signature, or outside the replay window: 401, nothing written.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// Not JSON, or not the provider's shape: 400, nothing written.
    #[error("malformed webhook: {0}")]
    Malformed(String),
}

/// One HTTP request as the webhook endpoint saw it.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
    /// The full URL as the provider requested it (needed by signature schemes that sign it).
    pub url: &'a str,
}

/// What parsing a webhook produced.
#[derive(Debug, Clone, Default)]
pub struct ParsedWebhook {
    /// Events to store and apply (possibly none: unknown message types are acknowledged
    /// and ignored).
    pub events: Vec<ProviderEvent>,
    /// A body to answer with instead of the default acknowledgement. `None` = plain 200.
    pub reply: Option<serde_json::Value>,
    /// An inbound call asks which assistant should answer it (Vapi `assistant-request`):
    /// the server must answer within the provider's budget.
    pub assistant_request: Option<AssistantRequest>,
}

/// An inbound call waiting to be told which assistant answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssistantRequest {
    pub provider_call_id: String,
    /// Our number that was dialled (E.164 as the provider sent it).
    pub to: Option<String>,
    /// The caller's number, if known.
    pub from: Option<String>,
}

#[async_trait]
pub trait Provider: Send + Sync + 'static {
    fn kind(&self) -> ProviderKind;

    /// One request, no retries: the placer owns the retry schedule.
    async fn place_call(&self, call: &PlaceCall) -> Result<Placed, ProviderError>;

    async fn get_call(&self, provider_call_id: &str) -> Result<RemoteCall, ProviderError>;

    /// Looks for a call we may have placed before a crash, by our call id, among calls
    /// created at or after `since`. `Ok(None)` means the provider has no such call.
    async fn find_call(&self, call_id: &CallId, since: Timestamp) -> Result<Option<RemoteCall>, ProviderError>;

    /// Ends a live call at the provider (the caller records the outcome `canceled`).
    async fn hang_up(&self, provider_call_id: &str) -> Result<(), ProviderError>;

    /// Checks the request's authenticity. Runs before anything else touches the body.
    fn verify_webhook(&self, req: &WebhookRequest<'_>, now: Timestamp) -> Result<(), WebhookError>;

    fn parse_webhook(&self, req: &WebhookRequest<'_>) -> Result<ParsedWebhook, WebhookError>;
}
