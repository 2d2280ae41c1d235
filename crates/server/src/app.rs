//! Wiring: config → store, providers, engine, HTTP router; one cancellation token stops
//! them all (the server drains, the engine finishes placements under way).

use crate::api::ApiError;
use crate::config::Config;
use axum::http::StatusCode;
use dialtone_core::{Clock, ProviderKind};
use dialtone_engine::{Account, Engine, Providers};
use dialtone_providers::exotel::{ExotelConfig, ExotelProvider};
use dialtone_providers::resilience::{AccountLimiter, BreakerConfig, RateLimit};
use dialtone_providers::twilio::{TwilioConfig, TwilioProvider};
use dialtone_providers::vapi::{HmacConfig, VapiConfig, VapiProvider};
use dialtone_providers::Provider;
use dialtone_store::Store;
use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub struct AppState {
    pub store: Arc<dyn Store>,
    pub engine: Arc<Engine>,
    /// Verifies and parses `/webhooks/{provider}`; Vapi and the simulator share Vapi's
    /// format and route. A provider without credentials has no entry (404).
    pub webhooks: std::collections::HashMap<ProviderKind, Arc<dyn Provider>>,
    /// Authentic, well-formed webhooks received.
    pub webhooks_received: AtomicU64,
    /// Events that had been stored already (replays), stored once and otherwise ignored.
    pub duplicate_events: AtomicU64,
    /// How long a client may take to send a request (`header_read_timeout_secs`,
    /// `body_read_timeout_secs`).
    pub http: HttpTimeouts,
    /// For each provider with no account here, the settings it lacks (from
    /// [`Config::missing_provider_settings`]): what a refusal tells the user to set.
    pub missing_settings: std::collections::HashMap<ProviderKind, Vec<&'static str>>,
    /// Contact imports: one permit each (`max_concurrent_imports`); none free → 429.
    pub imports: Arc<tokio::sync::Semaphore>,
    /// `max_upload_bytes`: a larger contact upload gets 413.
    pub max_upload_bytes: u64,
    /// Media streams (`/media/…`) and the voice pipeline's shared state.
    pub media: Arc<crate::media::Media>,
    /// `GET /api/v1/events`: the per-process fan-out of campaign and call changes.
    pub events: crate::api::events::Hub,
    /// The default workspace: the config file's provider accounts are its own.
    pub default_workspace: dialtone_core::WorkspaceId,
    /// `share_config_accounts`: every workspace may use the config file's accounts.
    pub share_config_accounts: bool,
}

/// Slow clients are cut off, so half-open connections cannot pile up.
#[derive(Debug, Clone, Copy)]
pub struct HttpTimeouts {
    /// From the moment the server waits for a request (a new connection, or an idle
    /// keep-alive one) until its headers are complete; then the connection is closed.
    pub header_read: Duration,
    /// The longest pause while a body is being read (a pause, like nginx's
    /// `client_body_timeout`, not the whole upload: a 256 MiB file may take minutes);
    /// then the request is answered 408 `request_timeout` and the connection closed.
    pub body_read: Duration,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        Self { header_read: Duration::from_secs(30), body_read: Duration::from_secs(30) }
    }
}

/// How long a shutdown waits for requests under way before closing their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

impl AppState {
    pub fn now(&self) -> Timestamp {
        self.engine.clock().now()
    }

    /// The providers this server has an account for, in [`ProviderKind::ALL`] order.
    pub fn configured_providers(&self) -> Vec<ProviderKind> {
        ProviderKind::ALL.iter().copied().filter(|k| self.is_configured(*k)).collect()
    }

    /// A provider is configured when the engine has its account and none of the settings
    /// its calls need is missing ([`Config::missing_provider_settings`]): credentials alone
    /// (a Twilio account without TwiML) would accept work that every call then fails.
    fn is_configured(&self, kind: ProviderKind) -> bool {
        self.engine.account(kind).is_some() && !self.missing_settings.contains_key(&kind)
    }

    /// Reads a provider named in a request's `field`: one dialtone knows (the list comes
    /// from [`ProviderKind::ALL`]) and one this server has an account for.
    ///
    /// Errors: 400 `invalid_request` for an unknown name (the message lists every provider
    /// and those configured here); 400 `provider_not_configured` as [`Self::require_account`].
    pub fn parse_provider(&self, field: &str, text: &str) -> Result<ProviderKind, ApiError> {
        let kind = self.parse_provider_name(field, text)?;
        self.require_account(kind, field)?;
        Ok(kind)
    }

    /// Reads a provider's name (one of [`ProviderKind::ALL`]) without asking for the
    /// config's account of it: work on a workspace's own account (`account_id`).
    ///
    /// Errors: 400 `invalid_request` for an unknown name, listing every provider.
    pub fn parse_provider_name(&self, field: &str, text: &str) -> Result<ProviderKind, ApiError> {
        text.parse::<ProviderKind>().map_err(|_| {
            let all: Vec<&str> = ProviderKind::ALL.iter().map(|k| k.as_str()).collect();
            ApiError::invalid(field, format!("must be one of {} (configured on this server: {})", all.join(", "), self.configured_list()))
        })
    }

    /// The account work on `provider` goes through: the workspace's own `account_id` when
    /// given (it must be one of `ws`'s accounts, enabled, of `provider`), else the config's
    /// account of `provider` ([`Self::require_account_for`], `field` naming what chose it).
    ///
    /// Errors: 422 `invalid_account` naming `account_id` (unknown here, another
    /// workspace's, disabled, or another provider's); as [`Self::require_account_for`].
    pub async fn check_account(
        &self,
        ws: &dialtone_core::WorkspaceId,
        provider: ProviderKind,
        account_id: Option<&str>,
        field: &str,
        agent: bool,
    ) -> Result<Option<dialtone_core::ProviderAccountId>, ApiError> {
        let Some(raw) = account_id else {
            self.may_use_config_account(ws, provider, "account_id")?;
            self.require_account_for(provider, field, agent)?;
            return Ok(None);
        };
        let invalid = |message: String| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_account", format!("account_id: {message}"))
                .with_details(serde_json::json!({ "field": "account_id" }))
        };
        let shown: String = raw.chars().take(64).collect();
        let id = dialtone_core::ProviderAccountId::parse(raw.trim()).ok_or_else(|| invalid(format!("{shown:?} is not a provider account id (pa_…)")))?;
        let Some(account) = self.store.get_provider_account(ws, id.as_str()).await? else {
            return Err(invalid(format!("no provider account {id} in this workspace")));
        };
        if account.disabled_at.is_some() {
            return Err(invalid(format!("provider account {id} is disabled (PATCH it with \"enabled\": true)")));
        }
        if account.provider != provider {
            return Err(invalid(format!("provider account {id} is a {} account, and the {field} is {provider}", account.provider)));
        }
        Ok(Some(id))
    }

    /// Whether workspace `ws` may have work on the config file's account of `provider`:
    /// those accounts are the default workspace's (unless `share_config_accounts`); the
    /// simulator places no real call and is shared.
    ///
    /// Errors: 422 `invalid_account` naming `field` (what the workspace must give instead),
    /// pointing at `/api/v1/provider-accounts`; it names none of the server's settings.
    pub fn may_use_config_account(&self, ws: &dialtone_core::WorkspaceId, provider: ProviderKind, field: &str) -> Result<(), ApiError> {
        if *ws == self.default_workspace || self.share_config_accounts || provider == ProviderKind::Sim {
            return Ok(());
        }
        let message = if field == "account_id" {
            format!("{field}: this workspace calls {provider} only through its own {provider} account: register one (POST /api/v1/provider-accounts) and name it in account_id")
        } else {
            // Inbound numbers have no account_id: they are answered on the server's accounts.
            format!("{field}: inbound numbers on {provider} are answered on the server's own {provider} account, which belongs to the default workspace: its operator registers them (sim numbers are open to every workspace)")
        };
        Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_account", message)
            .with_details(serde_json::json!({ "field": field, "provider": provider })))
    }

    /// Refuses work on a provider this server has no account for, before anything is
    /// stored or dialled (otherwise every call would fail and its contact be spent).
    ///
    /// Errors: 400 `provider_not_configured`; the message and `details` name the missing
    /// settings (config name and `DIALTONE_*` variable), the request `field` that chose the
    /// provider, and the providers that are configured.
    pub fn require_account(&self, kind: ProviderKind, field: &str) -> Result<(), ApiError> {
        self.require_account_for(kind, field, false)
    }

    /// [`Self::require_account`] for work that may be an agent's (`agent`): an agent call is
    /// placed with a stream to dialtone instead of the configured TwiML or flow, so a Twilio
    /// account without `twilio_twiml_url` / `twilio_twiml`, or an Exotel account without
    /// `exotel_flow_url` / `exotel_stream_url`, takes it.
    pub fn require_account_for(&self, kind: ProviderKind, field: &str, agent: bool) -> Result<(), ApiError> {
        let mut missing = self.missing_settings.get(&kind).cloned().unwrap_or_default();
        if agent {
            missing.retain(|m| *m != "twilio_twiml_url" && *m != "exotel_flow_url");
        }
        if self.engine.account(kind).is_some() && missing.is_empty() {
            return Ok(());
        }
        let env: Vec<String> = missing.iter().map(|m| crate::config::env_name(m)).collect();
        let set: Vec<String> = missing.iter().zip(&env).map(|(m, e)| format!("{m} ({e})")).collect();
        let message = format!(
            "{field}: no {kind} account is configured on this server; set {}. Configured providers: {}",
            if set.is_empty() { "its credentials".to_string() } else { set.join(", ") },
            self.configured_list()
        );
        Err(ApiError::new(StatusCode::BAD_REQUEST, "provider_not_configured", message).with_details(serde_json::json!({
            "field": field,
            "provider": kind,
            "missing_settings": missing,
            "env": env,
            "configured": self.configured_providers(),
        })))
    }

    fn configured_list(&self) -> String {
        self.configured_providers().iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
    }
}

fn vapi_config(config: &Config, kind: ProviderKind, base_url: &str, api_key: &SecretString) -> VapiConfig {
    let mut vc = VapiConfig::new(api_key.clone());
    vc.kind = kind;
    vc.base_url = base_url.to_string();
    vc.request_timeout = Duration::from_millis(config.vapi_timeout_ms);
    vc.webhook_secret = config.vapi_webhook_secret.clone();
    vc.webhook_hmac = config.vapi_webhook_hmac_secret.clone().map(HmacConfig::new);
    vc
}

fn account(config: &Config, provider: Arc<dyn Provider>, rate: Option<RateLimit>) -> anyhow::Result<Arc<Account>> {
    let limiter = match rate {
        Some(r) => {
            r.validate().map_err(|e| anyhow::anyhow!("{} rate limit: {e}", provider.kind()))?;
            AccountLimiter::new(r)
        }
        None => AccountLimiter::unlimited(),
    };
    let breaker = BreakerConfig { failures_to_open: config.breaker_failures, open_for: Duration::from_secs(config.breaker_open_secs) };
    Ok(Arc::new(Account::with(provider, limiter, breaker)))
}

fn per_second(rate: Option<f64>) -> Option<RateLimit> {
    rate.map(|r| RateLimit { per_second: r, burst: (r.ceil() as u32).max(1) })
}

/// The provider accounts campaigns can use: `sim` always (pointed at `sim_base_url`), the
/// others when their credentials are configured. One account per provider, shared by all
/// campaigns on it (rate limiter, circuit breaker, concurrency limit).
pub fn providers(config: &Config) -> anyhow::Result<Providers> {
    let mut providers: Providers = Providers::new();
    let sim = vapi_config(config, ProviderKind::Sim, &config.sim_base_url, &config.sim_api_key);
    providers.insert(ProviderKind::Sim, account(config, Arc::new(VapiProvider::new(sim)), per_second(config.sim_rate_per_sec))?);
    if let Some(key) = &config.vapi_api_key {
        let vapi = vapi_config(config, ProviderKind::Vapi, &config.vapi_base_url, key);
        providers.insert(ProviderKind::Vapi, account(config, Arc::new(VapiProvider::new(vapi)), per_second(config.vapi_rate_per_sec))?);
    }
    if let (Some(sid), Some(token)) = (&config.twilio_account_sid, &config.twilio_auth_token) {
        let mut tc = TwilioConfig::new(sid.clone(), token.clone(), config.public_url());
        tc.base_url = config.twilio_base_url.clone();
        tc.twiml_url = config.twilio_twiml_url.clone();
        tc.twiml = config.twilio_twiml.clone();
        tc.machine_detection = config.twilio_machine_detection;
        tc.media_secret = Some(config.media_secret());
        let rate = RateLimit { per_second: config.twilio_rate_per_sec, burst: 1 };
        providers.insert(ProviderKind::Twilio, account(config, Arc::new(TwilioProvider::new(tc)), Some(rate))?);
    }
    if let (Some(sid), Some(key), Some(token)) = (&config.exotel_sid, &config.exotel_api_key, &config.exotel_api_token) {
        let callback = config.exotel_callback_token.clone().ok_or_else(|| anyhow::anyhow!("exotel_callback_token is required with Exotel credentials"))?;
        let mut ec = ExotelConfig::new(sid.clone(), key.expose_secret(), token.clone(), config.public_url(), callback);
        ec.base_url = config.exotel_base_url.clone();
        ec.flow_url = config.exotel_flow_url.clone();
        ec.stream_url = config.exotel_stream_url.clone();
        ec.media_secret = Some(config.media_secret());
        ec.ip_allowlist =
            config.exotel_ip_allowlist.iter().map(|ip| ip.parse()).collect::<Result<_, _>>().map_err(|e| anyhow::anyhow!("exotel_ip_allowlist: {e}"))?;
        let rate = RateLimit::per_minute(config.exotel_rate_per_min).with_burst(10);
        providers.insert(ProviderKind::Exotel, account(config, Arc::new(ExotelProvider::new(ec)), Some(rate))?);
    }
    Ok(providers)
}

/// Each account's concurrency limit, checked by every claim (across nodes too), for every
/// one of [`ProviderKind::ALL`].
pub fn account_limits(config: &Config) -> Vec<(ProviderKind, Option<u32>)> {
    ProviderKind::ALL
        .iter()
        .map(|&kind| {
            let limit = match kind {
                ProviderKind::Vapi => config.vapi_max_concurrent,
                ProviderKind::Sim => config.sim_max_concurrent,
                ProviderKind::Twilio => config.twilio_max_concurrent,
                ProviderKind::Exotel => config.exotel_max_concurrent,
            };
            (kind, limit)
        })
        .collect()
}

/// Opens (and migrates) the config's database with its master keys, then re-seals under
/// `master_key` every stored secret sealed by a previous key or stored in plaintext
/// (`Store::rotate_secrets`: a no-op when all are current). Without a master key, secrets
/// stay as they are and provider accounts cannot be created.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let keyring = config.keyring()?;
    let store = dialtone_store::connect_with(config.database_url.expose_secret(), keyring).await?;
    if let Some(keyring) = store.keyring() {
        let key_id = keyring.current_id().to_string();
        let resealed = store.rotate_secrets().await.map_err(|e| {
            anyhow::anyhow!("re-encrypting stored secrets under master_key {key_id}: {e} (keep the old key in previous_master_keys until this succeeds)")
        })?;
        if resealed > 0 {
            tracing::info!(resealed, key_id, "stored secrets re-encrypted under the current master key");
        }
    } else {
        tracing::warn!("no master_key configured: provider accounts cannot be created, webhook-endpoint secrets are stored unencrypted");
    }
    Ok(store)
}

pub async fn build(config: &Config, engine_config: dialtone_engine::EngineConfig, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<AppState>> {
    build_with(config, engine_config, clock, VoiceParts::default()).await
}

/// What [`build_with`] may be given instead of making it from the config (tests, the
/// simulator's demo).
#[derive(Default)]
pub struct VoiceParts {
    /// The agents' speech services; `None`: the clients the config names.
    pub speech: Option<Arc<dyn crate::media::SpeechFactory>>,
    /// Where calls' agents are read and transcripts saved; `None`: the store.
    pub records: Option<Arc<dyn crate::media::CallRecords>>,
    /// Changes to the media streams' settings (e.g. a short `max_tick` under a manual clock).
    pub configure: Option<fn(&mut crate::media::MediaConfig)>,
}

/// [`build`], with parts of the voice pipeline given.
pub async fn build_with(
    config: &Config,
    engine_config: dialtone_engine::EngineConfig,
    clock: Arc<dyn Clock>,
    voice: VoiceParts,
) -> anyhow::Result<Arc<AppState>> {
    let store = open_store(config).await?;
    let default_workspace = store.default_workspace().await?;
    for (kind, limit) in account_limits(config) {
        store.set_account_limit(kind, limit, Timestamp::now()).await?;
    }
    let providers = providers(config)?;
    let has_secret = config.vapi_webhook_secret.is_some() || config.vapi_webhook_hmac_secret.is_some();
    if !has_secret {
        tracing::warn!("no vapi_webhook_secret configured: /webhooks/vapi will refuse every request");
    }
    let mut webhooks = std::collections::HashMap::new();
    if has_secret {
        let kind = if config.vapi_api_key.is_some() { ProviderKind::Vapi } else { ProviderKind::Sim };
        webhooks.insert(ProviderKind::Vapi, providers[&kind].provider.clone());
    }
    // Every other provider's webhooks go to its own account (Vapi's were routed above).
    for kind in ProviderKind::ALL.iter().filter(|k| !matches!(k, ProviderKind::Vapi | ProviderKind::Sim)) {
        if let Some(a) = providers.get(kind) {
            webhooks.insert(*kind, a.provider.clone());
        }
    }
    let engine = Engine::new(store.clone(), providers, clock, engine_config);
    engine.accounts().set_factory(Arc::new(crate::accounts::WorkspaceAccounts::new(config)));
    let mut media_config = crate::media::media_config(config);
    if let Some(configure) = voice.configure {
        configure(&mut media_config);
    }
    let media = crate::media::Media::new(
        media_config,
        match voice.speech {
            Some(s) => s,
            None => crate::media::speech_from_config(config)?,
        },
        voice.records.unwrap_or_else(|| Arc::new(crate::media::StoreRecords { store: store.clone(), clock: engine.clock().clone() })),
    );
    // Greetings are synthesised at dial time, while the phone rings, and at start for the
    // agents of campaigns under way (the cache is per process).
    engine.observe_placements(Arc::new(crate::media::WarmOnPlacement(media.clone())));
    media.warm_in_use(store.clone(), crate::media::WARM_AT_START);
    Ok(Arc::new(AppState {
        store,
        engine,
        webhooks,
        webhooks_received: AtomicU64::new(0),
        duplicate_events: AtomicU64::new(0),
        http: HttpTimeouts { header_read: Duration::from_secs(config.header_read_timeout_secs), body_read: Duration::from_secs(config.body_read_timeout_secs) },
        missing_settings: ProviderKind::ALL.iter().map(|k| (*k, config.missing_provider_settings(*k))).filter(|(_, m)| !m.is_empty()).collect(),
        imports: Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_imports as usize)),
        max_upload_bytes: config.max_upload_bytes,
        media,
        events: crate::api::events::Hub::default(),
        default_workspace,
        share_config_accounts: config.share_config_accounts,
    }))
}

/// Runs the HTTP server and the engine until `cancel` fires.
pub async fn serve(state: Arc<AppState>, listener: TcpListener, cancel: CancellationToken) -> anyhow::Result<()> {
    let router = router(state.clone());
    let engine = tokio::spawn(state.engine.clone().run(cancel.clone()));
    // Live event streams never end by themselves: they are closed as shutdown starts.
    let events = state.clone();
    let stop = cancel.clone();
    tokio::spawn(async move {
        stop.cancelled().await;
        events.events.close();
    });
    let served = serve_http(listener, router, state.http, cancel.clone()).await;
    cancel.cancel();
    engine.await?;
    served
}

/// The API with its panic guard and request spans, as served.
fn router(state: Arc<AppState>) -> axum::Router {
    crate::api::router(state)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(request_span))
}

/// The request span names the route pattern (`/webhooks/exotel/{token}`), never the URL:
/// a path or query string can carry a secret (the Exotel callback token) or a number.
fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let route = request.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str()).unwrap_or("<unmatched>");
    tracing::debug_span!("request", method = %request.method(), route, version = ?request.version())
}

/// A handler that panics answers 500 in our shape; the cause goes to the log only.
fn panic_response(cause: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let what = cause.downcast_ref::<String>().map(String::as_str).or_else(|| cause.downcast_ref::<&str>().copied()).unwrap_or("a panic");
    crate::api::ApiError::internal(format!("handler panicked: {what}")).into_response()
}

/// HTTP/1.1 on hyper directly, because `axum::serve` offers neither a header read timeout
/// nor a body one. Each connection gets the peer address (`ConnectInfo`, read by the Exotel
/// allow-list); `cancel` stops accepting, lets requests under way finish (at most
/// [`SHUTDOWN_GRACE`]) and closes idle connections.
async fn serve_http(listener: TcpListener, router: axum::Router, timeouts: HttpTimeouts, cancel: CancellationToken) -> anyhow::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::{Layer, Service};

    let router = axum::middleware::from_fn(crate::api::error_shape).layer(router);
    let router = axum::middleware::from_fn(crate::linger::drain_unread_body).layer(router);

    // Connections are tracked by hand rather than by hyper-util's `GracefulShutdown`, which
    // cannot watch a connection that allows upgrades (the media streams are WebSockets).
    let connections = tokio_util::task::TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(timeouts.header_read);
    loop {
        let (stream, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was taken:
                    // the listener is fine, so keep it, without spinning.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let router = router.clone();
        let service = tower::service_fn(move |request: axum::http::Request<_>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            router.clone().call(request)
        });
        let service = tower_http::timeout::RequestBodyTimeout::new(service, timeouts.body_read);
        // `with_upgrades`: the media streams are WebSockets.
        let connection = http.serve_connection(TokioIo::new(stream), hyper_util::service::TowerToHyperService::new(service)).with_upgrades();
        let stop = cancel.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                r = connection.as_mut() => r,
                _ = stop.cancelled() => {
                    // Finish the request under way, then close; idle connections close now.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            // A slow client cut off, a reset: routine for a server, not a fault of ours.
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, connections.wait()).await.is_err() {
        tracing::warn!(grace_secs = SHUTDOWN_GRACE.as_secs(), "requests still under way at shutdown were cut off");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tower::ServiceExt;

    /// Collects what the fmt subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_api_docs_name_every_provider_and_no_other() {
        let docs = include_str!("../../../docs/api.md");
        let row = docs.lines().find(|l| l.starts_with("| `provider` | yes |")).expect("the campaign `provider` row in docs/api.md");
        let named: Vec<&str> = row.split('`').skip(3).step_by(2).filter(|w| w.chars().all(|c| c.is_ascii_lowercase())).collect();
        let all: Vec<&str> = ProviderKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(named, all, "{row}");
    }

    /// A start with a new master key (the old one kept as previous) re-encrypts what the
    /// old key sealed, so the next start needs the new key only.
    #[tokio::test(flavor = "current_thread")]
    async fn a_start_re_encrypts_stored_secrets_under_the_new_master_key() {
        use dialtone_store::secrets::MasterKey;
        let dir = tempfile::tempdir().unwrap();
        let (_, old) = MasterKey::generate();
        let (_, new) = MasterKey::generate();
        let url: SecretString = format!("sqlite://{}", dir.path().join("t.db").display()).into();
        let first = Config { database_url: url.clone(), master_key: Some(old.clone()), ..Config::default() };
        let store = open_store(&first).await.unwrap();
        let ws = store.default_workspace().await.unwrap();
        let new_ep =
            dialtone_store::NewWebhookEndpoint { url: "http://127.0.0.1:9/h".into(), events: vec!["call.ended".into()], enabled: true, description: None };
        let ep = store.create_webhook_endpoint(&ws, &new_ep, &"whsec_c2VjcmV0".into(), Timestamp::now()).await.unwrap();
        drop(store);
        let rotated = Config { database_url: url.clone(), master_key: Some(new.clone()), previous_master_keys: vec![old], ..Config::default() };
        drop(open_store(&rotated).await.unwrap());
        let only_new = Config { database_url: url, master_key: Some(new), ..Config::default() };
        let store = open_store(&only_new).await.unwrap();
        assert_eq!(store.get_webhook_endpoint(&ws, ep.id.as_str()).await.unwrap().unwrap().secret.expose_secret(), "whsec_c2VjcmV0");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn request_logs_name_the_route_pattern_never_the_url() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { database_url: format!("sqlite://{}", dir.path().join("t.db").display()).into(), ..Config::default() };
        let state = build(&config, config.engine(), Arc::new(dialtone_core::SystemClock)).await.unwrap();
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt().with_max_level(tracing::Level::DEBUG).with_ansi(false).with_writer(move || writer.clone()).finish();
        let _guard = tracing::subscriber::set_default(subscriber);

        let campaign = dialtone_core::CampaignId::new();
        let secret = "cb-secret-token";
        for (method, uri) in [
            ("GET", format!("/api/v1/campaigns/{campaign}?limit=5")),
            ("POST", format!("/webhooks/exotel/{secret}")),
            ("GET", "/no/such/route/+14155552671".to_string()),
        ] {
            let request = axum::http::Request::builder().method(method).uri(uri).body(axum::body::Body::empty()).unwrap();
            router(state.clone()).oneshot(request).await.unwrap();
        }
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(log.contains("route=\"/api/v1/campaigns/{id}\""), "{log}");
        assert!(log.contains("route=\"/webhooks/exotel/{token}\""), "{log}");
        assert!(log.contains("route=\"<unmatched>\""), "{log}");
        for raw in [campaign.as_str(), secret, "limit=5", "4155552671"] {
            assert!(!log.contains(raw), "the raw URL reached the log ({raw}): {log}");
        }
    }
}
