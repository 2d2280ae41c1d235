//! Wiring: config → store, providers, engine, HTTP router; one cancellation token stops
//! them all (the server drains, the engine finishes placements under way).

use crate::config::Config;
use dialtone_core::{Clock, ProviderKind};
use dialtone_engine::{Account, Engine, Providers};
use dialtone_providers::resilience::{AccountLimiter, BreakerConfig, RateLimit};
use dialtone_providers::exotel::{ExotelConfig, ExotelProvider};
use dialtone_providers::twilio::{TwilioConfig, TwilioProvider};
use dialtone_providers::vapi::{HmacConfig, VapiConfig, VapiProvider};
use dialtone_providers::Provider;
use dialtone_store::Store;
use jiff::Timestamp;
use secrecy::SecretString;
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
    /// Contact imports: one permit each (`max_concurrent_imports`); none free → 429.
    pub imports: Arc<tokio::sync::Semaphore>,
    /// `max_upload_bytes`: a larger contact upload gets 413.
    pub max_upload_bytes: u64,
}

impl AppState {
    pub fn now(&self) -> Timestamp {
        self.engine.clock().now()
    }
}

fn vapi_config(config: &Config, kind: ProviderKind, base_url: &str, api_key: &str) -> VapiConfig {
    let mut vc = VapiConfig::new(SecretString::from(api_key.to_string()));
    vc.kind = kind;
    vc.base_url = base_url.to_string();
    vc.request_timeout = Duration::from_millis(config.vapi_timeout_ms);
    vc.webhook_secret = config.vapi_webhook_secret.clone().map(SecretString::from);
    vc.webhook_hmac = config.vapi_webhook_hmac_secret.clone().map(|s| HmacConfig::new(SecretString::from(s)));
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
        let mut tc = TwilioConfig::new(sid.clone(), SecretString::from(token.clone()), config.public_url());
        tc.base_url = config.twilio_base_url.clone();
        tc.twiml_url = config.twilio_twiml_url.clone();
        tc.twiml = config.twilio_twiml.clone();
        tc.machine_detection = config.twilio_machine_detection;
        let rate = RateLimit { per_second: config.twilio_rate_per_sec, burst: 1 };
        providers.insert(ProviderKind::Twilio, account(config, Arc::new(TwilioProvider::new(tc)), Some(rate))?);
    }
    if let (Some(sid), Some(key), Some(token)) = (&config.exotel_sid, &config.exotel_api_key, &config.exotel_api_token) {
        let callback = config.exotel_callback_token.clone().ok_or_else(|| anyhow::anyhow!("exotel_callback_token is required with Exotel credentials"))?;
        let mut ec = ExotelConfig::new(sid.clone(), key.clone(), SecretString::from(token.clone()), config.public_url(), SecretString::from(callback));
        ec.base_url = config.exotel_base_url.clone();
        ec.flow_url = config.exotel_flow_url.clone();
        ec.stream_url = config.exotel_stream_url.clone();
        ec.ip_allowlist = config.exotel_ip_allowlist.iter().map(|ip| ip.parse()).collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("exotel_ip_allowlist: {e}"))?;
        let rate = RateLimit::per_minute(config.exotel_rate_per_min).with_burst(10);
        providers.insert(ProviderKind::Exotel, account(config, Arc::new(ExotelProvider::new(ec)), Some(rate))?);
    }
    Ok(providers)
}

/// Each account's concurrency limit, checked by every claim (across nodes too).
pub fn account_limits(config: &Config) -> [(ProviderKind, Option<u32>); 4] {
    [
        (ProviderKind::Vapi, config.vapi_max_concurrent),
        (ProviderKind::Sim, config.sim_max_concurrent),
        (ProviderKind::Twilio, config.twilio_max_concurrent),
        (ProviderKind::Exotel, config.exotel_max_concurrent),
    ]
}

pub async fn build(config: &Config, engine_config: dialtone_engine::EngineConfig, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<AppState>> {
    let store = dialtone_store::connect(&config.database_url).await?;
    store.default_workspace().await?;
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
    for kind in [ProviderKind::Twilio, ProviderKind::Exotel] {
        if let Some(a) = providers.get(&kind) {
            webhooks.insert(kind, a.provider.clone());
        }
    }
    let engine = Engine::new(store.clone(), providers, clock, engine_config);
    Ok(Arc::new(AppState {
        store,
        engine,
        webhooks,
        webhooks_received: AtomicU64::new(0),
        duplicate_events: AtomicU64::new(0),
        imports: Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_imports as usize)),
        max_upload_bytes: config.max_upload_bytes,
    }))
}

/// Runs the HTTP server and the engine until `cancel` fires.
pub async fn serve(state: Arc<AppState>, listener: TcpListener, cancel: CancellationToken) -> anyhow::Result<()> {
    let router = crate::api::router(state.clone()).layer(tower_http::trace::TraceLayer::new_for_http());
    let engine = tokio::spawn(state.engine.clone().run(cancel.clone()));
    let shutdown = cancel.clone();
    axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    cancel.cancel();
    engine.await?;
    Ok(())
}
