//! Vapi (https://api.vapi.ai): REST client, server-URL webhook verification and parsing.
//! The simulator speaks the same wire format, so `ProviderKind::Sim` runs through here too.

mod client;
mod outcome;
mod webhook;

pub use outcome::outcome_for;

use crate::{ParsedWebhook, PlaceCall, Placed, Provider, ProviderError, RemoteCall, WebhookError, WebhookRequest};
use async_trait::async_trait;
use dialtone_core::{CallId, CallStatus, EventKind, ProviderKind};
use jiff::Timestamp;
use secrecy::SecretString;
use serde_json::Value;
use std::time::Duration;

pub const DEFAULT_BASE_URL: &str = "https://api.vapi.ai";

#[derive(Debug, Clone)]
pub struct VapiConfig {
    /// `https://api.vapi.ai`, or the simulator's `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// Private key, sent as `Authorization: Bearer …` on every REST request.
    pub api_key: SecretString,
    pub request_timeout: Duration,
    /// Shared-secret mode: `Authorization: Bearer <s>` or the legacy `X-Vapi-Secret: <s>`.
    pub webhook_secret: Option<SecretString>,
    /// HMAC mode; takes precedence over `webhook_secret` when both are set.
    pub webhook_hmac: Option<HmacConfig>,
    pub kind: ProviderKind,
}

impl VapiConfig {
    /// Production defaults: the real API, 10 s timeout, no webhook authentication yet
    /// (every webhook is refused until one is configured).
    pub fn new(api_key: SecretString) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_string(),
            api_key,
            request_timeout: Duration::from_secs(10),
            webhook_secret: None,
            webhook_hmac: None,
            kind: ProviderKind::Vapi,
        }
    }
}

#[derive(Debug, Clone)]
pub struct HmacConfig {
    pub secret: SecretString,
    pub algorithm: HmacAlgorithm,
    pub encoding: SigEncoding,
    /// Expected in front of the encoded signature, e.g. `sha256=`.
    pub prefix: Option<String>,
    /// Replay window around `x-timestamp`.
    pub max_skew: Duration,
}

impl HmacConfig {
    /// Vapi's defaults: hex HMAC-SHA256, no prefix, 5 minute window.
    pub fn new(secret: SecretString) -> Self {
        Self { secret, algorithm: HmacAlgorithm::default(), encoding: SigEncoding::default(), prefix: None, max_skew: Duration::from_secs(5 * 60) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HmacAlgorithm {
    #[default]
    Sha256,
    Sha512,
    Sha1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SigEncoding {
    #[default]
    Hex,
    Base64,
}

pub struct VapiProvider {
    config: VapiConfig,
    http: reqwest::Client,
}

impl VapiProvider {
    pub fn new(config: VapiConfig) -> Self {
        // The timeout is set per request, so the builder has nothing that can fail but
        // the TLS backend itself, which is a broken build rather than a runtime condition.
        let http = reqwest::Client::builder().user_agent(concat!("dialtone/", env!("CARGO_PKG_VERSION"))).build().expect("reqwest client with rustls builds");
        Self { config, http }
    }
}

impl std::fmt::Debug for VapiProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapiProvider").field("config", &self.config).finish_non_exhaustive()
    }
}

#[async_trait]
impl Provider for VapiProvider {
    fn kind(&self) -> ProviderKind {
        self.config.kind
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

    #[tracing::instrument(skip_all, fields(call_id = %call_id, provider_call_id))]
    async fn find_call(&self, call_id: &CallId, since: Timestamp) -> Result<Option<RemoteCall>, ProviderError> {
        let found = client::find_call(&self.http, &self.config, call_id, since).await?;
        if let Some(remote) = &found {
            tracing::Span::current().record("provider_call_id", remote.provider_call_id.as_str());
        }
        Ok(found)
    }

    #[tracing::instrument(skip_all, fields(provider_call_id = provider_call_id))]
    async fn hang_up(&self, provider_call_id: &str) -> Result<(), ProviderError> {
        client::hang_up(&self.http, &self.config, provider_call_id).await
    }

    fn verify_webhook(&self, req: &WebhookRequest<'_>, now: Timestamp) -> Result<(), WebhookError> {
        webhook::verify(&self.config, req, now)
    }

    fn parse_webhook(&self, req: &WebhookRequest<'_>) -> Result<ParsedWebhook, WebhookError> {
        webhook::parse(req)
    }
}

// What follows reads Vapi's Call object; webhooks and REST lookups share it.

/// Vapi call status → event. `None` for a status we do not know: the caller stores it
/// as `Info` rather than guess.
fn status_kind(status: &str, ended_reason: Option<&str>) -> Option<EventKind> {
    Some(match status {
        "queued" | "scheduled" => EventKind::Progress(CallStatus::Dialing),
        "ringing" => EventKind::Progress(CallStatus::Ringing),
        "in-progress" | "forwarding" => EventKind::Progress(CallStatus::InProgress),
        "ended" => ended_kind(ended_reason),
        _ => return None,
    })
}

fn ended_kind(ended_reason: Option<&str>) -> EventKind {
    EventKind::Ended { outcome: outcome_for(ended_reason.unwrap_or_default()), reason: ended_reason.map(str::to_string) }
}

/// Our id travels in `assistantOverrides.metadata` (what we send); a top-level
/// `metadata` is accepted too because Vapi has moved it between versions.
fn dialtone_call_id(call: &Value) -> Option<CallId> {
    let from = |v: &Value| v.get("metadata")?.get("dialtoneCallId")?.as_str().and_then(CallId::parse);
    call.get("assistantOverrides").and_then(from).or_else(|| from(call))
}

/// Unix milliseconds (what Vapi sends in `timestamp`) or an RFC 3339 string (`startedAt`).
fn parse_time(v: &Value) -> Option<Timestamp> {
    match v {
        Value::Number(n) => Timestamp::from_millisecond(n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))?).ok(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn duration_ms(started_at: Option<&Value>, ended_at: Option<&Value>) -> Option<i64> {
    let started = parse_time(started_at?)?;
    let ended = parse_time(ended_at?)?;
    let ms = ended.as_millisecond() - started.as_millisecond();
    (ms >= 0).then_some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dialtone_core::Outcome;
    use serde_json::json;

    #[test]
    fn statuses_map_to_our_states() {
        assert_eq!(status_kind("queued", None), Some(EventKind::Progress(CallStatus::Dialing)));
        assert_eq!(status_kind("scheduled", None), Some(EventKind::Progress(CallStatus::Dialing)));
        assert_eq!(status_kind("ringing", None), Some(EventKind::Progress(CallStatus::Ringing)));
        assert_eq!(status_kind("in-progress", None), Some(EventKind::Progress(CallStatus::InProgress)));
        assert_eq!(status_kind("forwarding", None), Some(EventKind::Progress(CallStatus::InProgress)));
        assert_eq!(status_kind("ended", Some("voicemail")), Some(EventKind::Ended { outcome: Outcome::Voicemail, reason: Some("voicemail".into()) }));
        assert_eq!(status_kind("teleporting", None), None);
    }

    #[test]
    fn call_id_is_read_from_either_metadata_place() {
        let id = CallId::new();
        let a = json!({"assistantOverrides": {"metadata": {"dialtoneCallId": id.as_str()}}});
        let b = json!({"metadata": {"dialtoneCallId": id.as_str()}});
        assert_eq!(dialtone_call_id(&a), Some(id.clone()));
        assert_eq!(dialtone_call_id(&b), Some(id));
        assert_eq!(dialtone_call_id(&json!({"metadata": {"dialtoneCallId": "cmp_x"}})), None);
    }

    #[test]
    fn duration_comes_from_start_and_end() {
        let d = duration_ms(Some(&json!("2026-01-01T10:00:00.000Z")), Some(&json!("2026-01-01T10:01:30.500Z")));
        assert_eq!(d, Some(90_500));
        assert_eq!(duration_ms(Some(&json!("2026-01-01T10:00:00Z")), Some(&Value::Null)), None);
        assert_eq!(duration_ms(None, Some(&json!("2026-01-01T10:00:00Z"))), None);
    }
}
