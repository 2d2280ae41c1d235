//! A workspace's own provider accounts as the engine uses them (issue 13): the client,
//! rate limiter and circuit breaker built from a stored account (`/api/v1/provider-accounts`)
//! the same way the config file's accounts are built ([`crate::app::providers`]), with the
//! account's own webhook routes: `/webhooks/vapi/{account}`, `/webhooks/twilio/{account}`,
//! `/webhooks/exotel/{account}/{callback_token}`, checked with that account's secrets only.

use crate::config::Config;
use dialtone_core::ProviderKind;
use dialtone_engine::{Account, AccountFactory};
use dialtone_providers::exotel::{ExotelConfig, ExotelProvider};
use dialtone_providers::resilience::{AccountLimiter, BreakerConfig, RateLimit};
use dialtone_providers::twilio::{TwilioConfig, TwilioProvider};
use dialtone_providers::vapi::{HmacConfig, VapiConfig, VapiProvider};
use dialtone_providers::Provider;
use dialtone_store::ProviderAccount;
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Builds workspace accounts with the server's settings that are not the account's own:
/// the public URL, the media-stream key, timeouts and the breaker's thresholds.
pub struct WorkspaceAccounts {
    public_url: String,
    media_secret: SecretString,
    vapi_timeout: Duration,
    breaker: BreakerConfig,
}

impl WorkspaceAccounts {
    pub fn new(config: &Config) -> Self {
        Self {
            public_url: config.public_url(),
            media_secret: config.media_secret(),
            vapi_timeout: Duration::from_millis(config.vapi_timeout_ms),
            breaker: BreakerConfig { failures_to_open: config.breaker_failures, open_for: Duration::from_secs(config.breaker_open_secs) },
        }
    }
}

/// The route under `/webhooks` (and `/media`) that an account's own webhooks arrive at.
pub fn webhook_path(kind: ProviderKind, account: &str) -> String {
    format!("/webhooks/{kind}/{account}")
}

/// The client for `account` with `secrets`: the same fields as the config file's account
/// of that provider, without the provider's prefix (see `api::provider_accounts`).
///
/// Errors: a required field missing (the API requires them at create, so only a row
/// changed by hand gets here), or a setting of the wrong type.
pub fn client(
    account: &ProviderAccount,
    secrets: &BTreeMap<String, SecretString>,
    public_url: &str,
    media_secret: &SecretString,
    vapi_timeout: Duration,
) -> Result<Arc<dyn Provider>, String> {
    let text = |name: &str| account.settings.get(name).and_then(|v| v.as_str()).map(str::to_string);
    let secret = |name: &str| secrets.get(name).cloned();
    let need = |name: &str, v: Option<SecretString>| v.ok_or_else(|| format!("{} account {} has no {name}", account.provider, account.id));
    let id = account.id.as_str();
    Ok(match account.provider {
        ProviderKind::Vapi => {
            let mut vc = VapiConfig::new(need("api_key", secret("api_key"))?);
            if let Some(url) = text("base_url") {
                vc.base_url = url;
            }
            vc.request_timeout = vapi_timeout;
            vc.webhook_secret = secret("webhook_secret");
            vc.webhook_hmac = secret("webhook_hmac_secret").map(HmacConfig::new);
            Arc::new(VapiProvider::new(vc))
        }
        ProviderKind::Twilio => {
            let sid = text("account_sid").ok_or_else(|| format!("twilio account {id} has no account_sid"))?;
            let mut tc = TwilioConfig::new(sid, need("auth_token", secret("auth_token"))?, public_url);
            if let Some(url) = text("base_url") {
                tc.base_url = url;
            }
            tc.twiml_url = text("twiml_url");
            tc.twiml = text("twiml");
            tc.machine_detection = account.settings.get("machine_detection").and_then(|v| v.as_bool()).unwrap_or(false);
            tc.media_secret = Some(media_secret.clone());
            tc.webhook_path = webhook_path(ProviderKind::Twilio, id);
            tc.media_path = format!("{}/{id}", dialtone_providers::media::TWILIO_MEDIA_PATH);
            Arc::new(TwilioProvider::new(tc))
        }
        ProviderKind::Exotel => {
            let sid = text("sid").ok_or_else(|| format!("exotel account {id} has no sid"))?;
            let key = need("api_key", secret("api_key"))?;
            let mut ec = ExotelConfig::new(
                sid,
                key.expose_secret(),
                need("api_token", secret("api_token"))?,
                public_url,
                need("callback_token", secret("callback_token"))?,
            );
            if let Some(url) = text("base_url") {
                ec.base_url = url;
            }
            ec.flow_url = text("flow_url");
            ec.stream_url = text("stream_url");
            ec.media_secret = Some(media_secret.clone());
            ec.webhook_path = webhook_path(ProviderKind::Exotel, id);
            Arc::new(ExotelProvider::new(ec))
        }
        ProviderKind::Sim => return Err(format!("account {id}: the simulator has no workspace accounts")),
    })
}

/// The limiter a `calls_per_second` gives (a burst of one second's calls). The API checks a
/// new value with this limiter's own [`RateLimit::validate`], so it never stores a rate
/// [`AccountFactory::build`] then refuses.
pub fn limit_for(per_second: f64) -> RateLimit {
    RateLimit { per_second, burst: (per_second.ceil() as u32).max(1) }
}

/// The account's call rate: its `calls_per_second`, else the provider's default (as the
/// config file's: Vapi unlimited, Twilio 1 a second, Exotel 200 a minute).
fn rate(account: &ProviderAccount) -> Option<RateLimit> {
    match (account.calls_per_second, account.provider) {
        (Some(r), _) => Some(limit_for(r)),
        (None, ProviderKind::Twilio) => Some(RateLimit::twilio()),
        (None, ProviderKind::Exotel) => Some(RateLimit::exotel()),
        (None, _) => None,
    }
}

impl AccountFactory for WorkspaceAccounts {
    fn build(&self, account: &ProviderAccount, secrets: &BTreeMap<String, SecretString>) -> Result<Arc<Account>, String> {
        let provider = client(account, secrets, &self.public_url, &self.media_secret, self.vapi_timeout)?;
        let limiter = match rate(account) {
            Some(r) => {
                r.validate().map_err(|e| format!("account {}: rate limit: {e}", account.id))?;
                AccountLimiter::new(r)
            }
            None => AccountLimiter::unlimited(),
        };
        Ok(Arc::new(Account::with(provider, limiter, self.breaker)))
    }
}

/// The client that checks a webhook for workspace account `id` of provider `kind`: the
/// engine's account (see [`dialtone_engine::Accounts::for_live_calls`]: cached, so a webhook
/// costs no read while the account's check is fresh; also while the account is disabled,
/// as its calls under way still report). `None`: no such account, or one of another
/// provider.
///
/// Errors: the row or its secrets could not be read, or do not make a client.
pub async fn webhook_client(
    app: &crate::app::AppState,
    kind: ProviderKind,
    id: &dialtone_core::ProviderAccountId,
) -> Result<Option<Arc<dyn Provider>>, String> {
    let now = app.engine.clock().now();
    let account = app.engine.accounts().for_live_calls(app.engine.store(), kind, id, now).await?;
    Ok(account.map(|a| a.provider.clone()))
}
