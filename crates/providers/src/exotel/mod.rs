//! Exotel (https://api.exotel.com/v1): `Calls/connect` with a flow or a voice-bot stream,
//! status callbacks authenticated by a secret path segment (Exotel signs nothing), and
//! an optional IP allow-list.

mod client;
mod webhook;

use crate::rest::final_error;
use crate::{ParsedWebhook, PlaceCall, Placed, Provider, ProviderError, RemoteCall, WebhookError, WebhookRequest};
use async_trait::async_trait;
use dialtone_core::{CallId, CallStatus, EventKind, Outcome, ProviderKind};
use jiff::Timestamp;
use secrecy::SecretString;
use std::net::IpAddr;
use std::time::Duration;

pub const DEFAULT_BASE_URL: &str = "https://api.exotel.com";

/// Where Exotel's status callbacks arrive, under `public_base_url`, followed by
/// `/{callback_token}`.
pub const WEBHOOK_PATH: &str = "/webhooks/exotel";

/// Set by our server from the socket's peer address, never taken from the client: the
/// server must overwrite any value a caller sent. Read by the IP allow-list.
pub const PEER_IP_HEADER: &str = "x-dialtone-peer-ip";

/// Checks a callback token (the config's `exotel_callback_token`, an account's
/// `callback_token`): at least one character, each from `A-Z a-z 0-9 - _` (RFC 3986's
/// unreserved set without `.` and `~`), because it is written into the StatusCallback and
/// voice-bot URLs as one path segment and compared as is: a `/`, `%` or `?` in it would make
/// a URL whose callbacks never authenticate. Errors: why, for the setting's message.
pub fn check_callback_token(token: &str) -> Result<(), String> {
    if token.is_empty() {
        return Err("must not be empty".into());
    }
    match token.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
        Some(c) => Err(format!("may hold only A-Z, a-z, 0-9, - and _ (it is a URL path segment), not {c:?}")),
        None => Ok(()),
    }
}

#[derive(Debug, Clone)]
pub struct ExotelConfig {
    /// `https://api.exotel.com` (Mumbai: `https://api.in.exotel.com`), without `/v1`.
    pub base_url: String,
    pub account_sid: String,
    /// Basic-auth user; `api_token` is the password.
    pub api_key: String,
    pub api_token: SecretString,
    /// Our public URL as Exotel reaches it (e.g. `https://dialer.example.com`).
    pub public_base_url: String,
    /// The secret last path segment of the StatusCallback URL. URL-safe characters only
    /// (`A-Z a-z 0-9 - _`, [`check_callback_token`]): it is written into the URL as is and
    /// compared as is.
    pub callback_token: SecretString,
    /// An Exotel flow (`Url`). Used when both this and `stream_url` are set.
    pub flow_url: Option<String>,
    /// A bidirectional voice-bot WebSocket (`StreamUrl`, `wss://…`).
    pub stream_url: Option<String>,
    /// When non-empty, callbacks are accepted only from these addresses (see [`PEER_IP_HEADER`]).
    pub ip_allowlist: Vec<IpAddr>,
    pub request_timeout: Duration,
    /// The key of the media-stream tokens (`crate::media::stream_token`). A call placed
    /// with a media stream (`PlaceCall::media`) fails without it.
    pub media_secret: Option<SecretString>,
    /// Where status callbacks arrive under `public_base_url`, before `/{callback_token}`
    /// ([`WEBHOOK_PATH`]; a workspace's own account: `/webhooks/exotel/{account id}`).
    pub webhook_path: String,
}

impl ExotelConfig {
    /// Production defaults: the global API, 10 s timeout, no allow-list. One of
    /// `flow_url` / `stream_url` must still be set before a call can be placed.
    pub fn new(
        account_sid: impl Into<String>,
        api_key: impl Into<String>,
        api_token: SecretString,
        public_base_url: impl Into<String>,
        callback_token: SecretString,
    ) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_string(),
            account_sid: account_sid.into(),
            api_key: api_key.into(),
            api_token,
            public_base_url: public_base_url.into(),
            callback_token,
            flow_url: None,
            stream_url: None,
            ip_allowlist: Vec::new(),
            request_timeout: Duration::from_secs(10),
            media_secret: None,
            webhook_path: WEBHOOK_PATH.to_string(),
        }
    }
}

pub struct ExotelProvider {
    config: ExotelConfig,
    http: reqwest::Client,
}

impl ExotelProvider {
    pub fn new(config: ExotelConfig) -> Self {
        // The timeout is set per request, so the builder has nothing that can fail but
        // the TLS backend itself, which is a broken build rather than a runtime condition.
        let http = reqwest::Client::builder().user_agent(concat!("dialtone/", env!("CARGO_PKG_VERSION"))).build().expect("reqwest client with rustls builds");
        Self { config, http }
    }
}

impl std::fmt::Debug for ExotelProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExotelProvider").field("config", &self.config).finish_non_exhaustive()
    }
}

#[async_trait]
impl Provider for ExotelProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Exotel
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

    /// Exotel's call list cannot be searched by `CustomField`, so there is no safe
    /// lookup: an error makes the reaper end the call as a timeout rather than risk
    /// dialling the same person twice.
    async fn find_call(&self, _call_id: &CallId, _since: Timestamp) -> Result<Option<RemoteCall>, ProviderError> {
        Err(final_error(None, "exotel cannot find a call by dialtone id".into()))
    }

    async fn hang_up(&self, _provider_call_id: &str) -> Result<(), ProviderError> {
        Err(final_error(None, "exotel has no documented API to hang up a connect call".into()))
    }

    fn verify_webhook(&self, req: &WebhookRequest<'_>, _now: Timestamp) -> Result<(), WebhookError> {
        webhook::verify(&self.config, req)
    }

    fn parse_webhook(&self, req: &WebhookRequest<'_>) -> Result<ParsedWebhook, WebhookError> {
        webhook::parse(req)
    }
}

/// Exotel call status → event. `None` for a status we do not know: the caller stores it
/// as `Info` rather than guess.
fn status_kind(status: &str) -> Option<EventKind> {
    let ended = |outcome| EventKind::Ended { outcome, reason: Some(status.to_string()) };
    Some(match status {
        "queued" => EventKind::Progress(CallStatus::Dialing),
        "ringing" => EventKind::Progress(CallStatus::Ringing),
        "in-progress" => EventKind::Progress(CallStatus::InProgress),
        "completed" => ended(Outcome::Completed),
        "busy" => ended(Outcome::Busy),
        "no-answer" => ended(Outcome::NoAnswer),
        "failed" => ended(Outcome::Failed),
        // Not in Exotel's list, but the same word as Twilio's and plain in meaning.
        "canceled" => ended(Outcome::Canceled),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_our_states() {
        let ended = |outcome, r: &str| Some(EventKind::Ended { outcome, reason: Some(r.into()) });
        assert_eq!(status_kind("queued"), Some(EventKind::Progress(CallStatus::Dialing)));
        assert_eq!(status_kind("ringing"), Some(EventKind::Progress(CallStatus::Ringing)));
        assert_eq!(status_kind("in-progress"), Some(EventKind::Progress(CallStatus::InProgress)));
        assert_eq!(status_kind("completed"), ended(Outcome::Completed, "completed"));
        assert_eq!(status_kind("busy"), ended(Outcome::Busy, "busy"));
        assert_eq!(status_kind("no-answer"), ended(Outcome::NoAnswer, "no-answer"));
        assert_eq!(status_kind("failed"), ended(Outcome::Failed, "failed"));
        assert_eq!(status_kind("answered"), None);
    }

    #[test]
    fn a_callback_token_is_one_url_path_segment() {
        for ok in ["exotel-callback-4444", "A_b-9", "x"] {
            assert_eq!(check_callback_token(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a/b", "a%2Fb", "a?b", "a b", "a.b", "..", "tök"] {
            assert!(check_callback_token(bad).is_err(), "{bad:?} is refused");
        }
    }
}
