//! `/api/v1/provider-accounts`: a workspace's own Vapi, Twilio or Exotel credentials
//! (issue 13), several per provider allowed (two Twilio sub-accounts, say), each with its
//! own concurrency limit and call rate.
//!
//! `credentials` takes the fields the config file has for that provider, without the
//! provider's prefix (`twilio_auth_token` → `auth_token`). The secret ones are stored
//! encrypted under the server's master key (`master_key`, `DIALTONE_MASTER_KEY`; see
//! `dialtone_store::secrets`) and never shown again: answers show `…` and their last four
//! characters. Without a master key a create is refused (400 `master_key_missing`).
//! `DELETE` disables the account (it stays listed, `enabled: false`); a PATCH with
//! `enabled: true` turns it back on.

use super::openapi::ErrorBody;
use super::Path;
use super::{paged, ApiError, Auth, Json, PageQuery, Paged, Query};
use crate::app::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use dialtone_core::{ProviderAccountId, ProviderKind, WorkspaceId};
use dialtone_store::{NewProviderAccount, ProviderAccount, ProviderAccountPatch};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(create, list)).routes(routes!(show, update, disable))
}

const MAX_NAME: usize = 100;
const MAX_VALUE: usize = 4_000;
/// The highest `calls_per_second` accepted.
const MAX_RATE: f64 = 1_000.0;

/// Whether a credential is secret (stored encrypted, shown by its last four characters)
/// or a setting (stored and shown as is).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Secret,
    /// A secret written into a URL as one path segment (Exotel's `callback_token`):
    /// [`dialtone_providers::exotel::check_callback_token`]'s characters only.
    PathSecret,
    Url,
    Text,
    Flag,
}

/// The credentials each provider takes: the config file's fields of that provider.
fn fields(kind: ProviderKind) -> &'static [(&'static str, Role)] {
    match kind {
        ProviderKind::Vapi => &[("api_key", Role::Secret), ("webhook_secret", Role::Secret), ("webhook_hmac_secret", Role::Secret), ("base_url", Role::Url)],
        ProviderKind::Twilio => &[
            ("account_sid", Role::Text),
            ("auth_token", Role::Secret),
            ("base_url", Role::Url),
            ("twiml_url", Role::Url),
            ("twiml", Role::Text),
            ("machine_detection", Role::Flag),
        ],
        ProviderKind::Exotel => &[
            ("sid", Role::Text),
            ("api_key", Role::Secret),
            ("api_token", Role::Secret),
            ("base_url", Role::Url),
            ("flow_url", Role::Url),
            ("stream_url", Role::Url),
            ("callback_token", Role::PathSecret),
        ],
        ProviderKind::Sim => &[],
    }
}

/// What a new account must have, each entry a set of which at least one is needed (the
/// same the config requires, [`crate::config::Config::missing_provider_settings`]; plus a
/// webhook secret, as each account's webhooks are checked with its own).
fn required(kind: ProviderKind) -> &'static [&'static [&'static str]] {
    match kind {
        ProviderKind::Vapi => &[&["api_key"], &["webhook_secret", "webhook_hmac_secret"]],
        ProviderKind::Twilio => &[&["account_sid"], &["auth_token"], &["twiml_url", "twiml"]],
        ProviderKind::Exotel => &[&["sid"], &["api_key"], &["api_token"], &["flow_url", "stream_url"], &["callback_token"]],
        ProviderKind::Sim => &[],
    }
}

/// The body of `POST /provider-accounts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"provider": "twilio", "name": "Sub-account EU", "credentials": {"account_sid": "AC0123456789abcdef0123456789abcdef",
    "auth_token": "0123456789abcdef0123456789abcdef", "twiml_url": "https://example.com/twiml"}, "max_concurrent": 20, "calls_per_second": 1}))]
struct NewAccount {
    /// `vapi`, `twilio` or `exotel`.
    #[schema(value_type = String)]
    provider: String,
    /// 1–100 characters.
    name: String,
    /// The provider's credentials and settings: the config file's fields of that provider
    /// without its prefix. Vapi: `api_key`, `webhook_secret` or `webhook_hmac_secret`,
    /// optional `base_url`. Twilio: `account_sid`, `auth_token`, `twiml_url` or `twiml`,
    /// optional `base_url`, `machine_detection`. Exotel: `sid`, `api_key`, `api_token`,
    /// `flow_url` or `stream_url`, `callback_token` (the secret path segment of its
    /// webhooks), optional `base_url` (e.g. the Mumbai cluster `https://api.in.exotel.com`).
    #[schema(value_type = Object)]
    credentials: serde_json::Map<String, Value>,
    /// Calls at once on this account (inbound included), at least 1; absent: no limit.
    max_concurrent: Option<u32>,
    /// Calls placed per second on this account, above 0 and at most 1000; absent: the
    /// provider's default (Vapi unlimited, Twilio 1, Exotel 200 a minute).
    calls_per_second: Option<f64>,
}

/// A PATCH body: an absent field stays. `credentials` are merged field by field (a
/// setting given as `null` is removed; a secret cannot be removed, only replaced);
/// `max_concurrent: null` lifts the limit, `calls_per_second: null` restores the default.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AccountPatch {
    #[serde(default, deserialize_with = "super::patch::not_null")]
    name: Option<String>,
    #[schema(value_type = Option<Object>)]
    #[serde(default, deserialize_with = "super::patch::not_null")]
    credentials: Option<serde_json::Map<String, Value>>,
    #[serde(default, deserialize_with = "super::patch::nullable")]
    #[schema(value_type = Option<u32>)]
    max_concurrent: Option<Option<u32>>,
    #[serde(default, deserialize_with = "super::patch::nullable")]
    #[schema(value_type = Option<f64>)]
    calls_per_second: Option<Option<f64>>,
    /// `false` disables (as `DELETE`), `true` enables.
    #[serde(default, deserialize_with = "super::patch::not_null")]
    enabled: Option<bool>,
}

/// An account as the API shows it: never a secret, only `…` and its last four characters.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    /// `pa_…`.
    id: String,
    /// `vapi`, `twilio` or `exotel`.
    provider: String,
    name: String,
    /// The settings as given, and each secret as `…` and its last four characters (`…`
    /// alone for a secret of 8 characters or fewer).
    #[schema(value_type = Object)]
    credentials: BTreeMap<String, Value>,
    #[schema(required = true)]
    max_concurrent: Option<u32>,
    #[schema(required = true)]
    calls_per_second: Option<f64>,
    enabled: bool,
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    disabled_at: Option<jiff::Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    created_at: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    updated_at: jiff::Timestamp,
}

impl From<&ProviderAccount> for AccountView {
    fn from(a: &ProviderAccount) -> Self {
        let mut credentials = a.settings.clone();
        credentials.extend(a.secret_hints.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))));
        AccountView {
            id: a.id.to_string(),
            provider: a.provider.as_str().to_string(),
            name: a.name.clone(),
            credentials,
            max_concurrent: a.max_concurrent,
            calls_per_second: a.calls_per_second,
            enabled: a.disabled_at.is_none(),
            disabled_at: a.disabled_at,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

fn provider(v: &str) -> Result<ProviderKind, ApiError> {
    match v.trim().parse::<ProviderKind>() {
        Ok(k) if !fields(k).is_empty() => Ok(k),
        _ => Err(ApiError::invalid("provider", format!("{v:?} is not a provider an account can be registered for; one of vapi, twilio, exotel"))),
    }
}

fn name(v: &str) -> Result<String, ApiError> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > MAX_NAME {
        return Err(ApiError::invalid("name", format!("must be 1 to {MAX_NAME} characters")));
    }
    Ok(v.to_string())
}

fn max_concurrent(v: Option<u32>) -> Result<Option<u32>, ApiError> {
    match v {
        Some(0) => Err(ApiError::invalid("max_concurrent", "must be at least 1 (leave it out for no limit)")),
        v => Ok(v),
    }
}

fn calls_per_second(v: Option<f64>) -> Result<Option<f64>, ApiError> {
    match v {
        // The engine's own rule (at least one a day), so a rate stored here is one its
        // limiter takes; at most MAX_RATE is the API's.
        Some(r) if r > MAX_RATE || crate::accounts::limit_for(r).validate().is_err() => {
            Err(ApiError::invalid("calls_per_second", format!("must be from one a day ({:.3e}) to {MAX_RATE}", dialtone_providers::resilience::MIN_PER_SECOND)))
        }
        v => Ok(v),
    }
}

/// A URL a tenant's account may name: http(s) (`stream_url`: ws(s)), and outside the
/// operator's (default) workspace a public address only, as for webhook endpoints: a
/// tenant may not make dialtone send its requests to a service on dialtone's own network.
fn url(field: &str, v: &str, operator: bool) -> Result<String, ApiError> {
    let (scheme, example) = if field.ends_with("stream_url") { ("ws", "wss://example.com/stream") } else { ("http", "https://example.com/api") };
    let parsed = super::error::absolute_url(field, v, scheme, example)?;
    if !operator {
        if let Some(why) = dialtone_engine::outbox::non_public_host(&parsed) {
            return Err(ApiError::invalid(field, format!("must reach a public address: {why}")));
        }
    }
    Ok(v.trim().to_string())
}

/// An account's settings by name (JSON values; `null`: remove, in a PATCH).
type Settings = BTreeMap<String, Value>;
/// An account's secrets by name.
type Secrets = BTreeMap<String, SecretString>;

/// Credentials split into settings and secrets, each checked against the provider's
/// fields; `null` values are kept (a PATCH removes those settings).
fn credentials(kind: ProviderKind, given: serde_json::Map<String, Value>, operator: bool) -> Result<(Settings, Secrets), ApiError> {
    let spec = fields(kind);
    let (mut settings, mut secrets) = (BTreeMap::new(), BTreeMap::new());
    for (k, v) in given {
        let field = format!("credentials.{k}");
        let Some((_, role)) = spec.iter().find(|(f, _)| *f == k) else {
            let known: Vec<&str> = spec.iter().map(|(f, _)| *f).collect();
            return Err(ApiError::invalid(&field, format!("not a {kind} credential; {kind} takes {}", known.join(", "))));
        };
        match (role, v) {
            (Role::Secret | Role::PathSecret, Value::Null) => return Err(ApiError::invalid(&field, "a secret cannot be removed, only replaced")),
            (_, Value::Null) => {
                settings.insert(k, Value::Null);
            }
            (Role::Flag, Value::Bool(b)) => {
                settings.insert(k, Value::Bool(b));
            }
            (Role::Flag, _) => return Err(ApiError::invalid(&field, "must be true or false")),
            (_, Value::String(s)) if s.trim().is_empty() || s.len() > MAX_VALUE => {
                return Err(ApiError::invalid(&field, format!("must be 1 to {MAX_VALUE} characters")));
            }
            (Role::PathSecret, Value::String(s)) => {
                let s = s.trim();
                dialtone_providers::exotel::check_callback_token(s).map_err(|e| ApiError::invalid(&field, e))?;
                secrets.insert(k, SecretString::from(s.to_string()));
            }
            (Role::Secret, Value::String(s)) => {
                secrets.insert(k, SecretString::from(s.trim().to_string()));
            }
            (Role::Url, Value::String(s)) => {
                settings.insert(k.clone(), Value::String(url(&field, &s, operator)?));
            }
            (Role::Text, Value::String(s)) => {
                settings.insert(k, Value::String(s.trim().to_string()));
            }
            (_, _) => return Err(ApiError::invalid(&field, "must be a string")),
        }
    }
    Ok((settings, secrets))
}

/// The master key is missing: no secret can be stored.
fn no_master_key() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "master_key_missing",
        "this server has no master key to encrypt the credentials with: its operator must set master_key (DIALTONE_MASTER_KEY)",
    )
    .with_details(serde_json::json!({ "field": "credentials", "env": "DIALTONE_MASTER_KEY" }))
}

fn is_operator(app: &AppState, ws: &WorkspaceId) -> bool {
    *ws == app.default_workspace
}

/// Registers an account; its secrets are encrypted at rest and never shown again.
#[utoipa::path(post, path = "/provider-accounts", tag = "provider-accounts", request_body = NewAccount,
    responses((status = 201, description = "The account, its secrets shown by their last four characters.", body = AccountView),
        (status = 400, description = "A field is missing or wrong (`details.field` names it), or `master_key_missing`.", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = ErrorBody)))]
async fn create(State(app): State<Arc<AppState>>, Auth(ws): Auth, Json(body): Json<NewAccount>) -> Result<(StatusCode, Json<AccountView>), ApiError> {
    let kind = provider(&body.provider)?;
    let name = name(&body.name)?;
    let (mut settings, secrets) = credentials(kind, body.credentials, is_operator(&app, &ws))?;
    settings.retain(|_, v| !v.is_null());
    for need in required(kind) {
        if !need.iter().any(|f| settings.contains_key(*f) || secrets.contains_key(*f)) {
            return Err(ApiError::invalid(&format!("credentials.{}", need[0]), format!("{kind} needs {}", need.join(" or "))));
        }
    }
    if app.store.keyring().is_none() {
        return Err(no_master_key());
    }
    let new = NewProviderAccount {
        provider: kind,
        name,
        settings,
        secrets,
        max_concurrent: max_concurrent(body.max_concurrent)?,
        calls_per_second: calls_per_second(body.calls_per_second)?,
    };
    let account = app.store.create_provider_account(&ws, &new, app.now()).await?;
    Ok((StatusCode::CREATED, Json((&account).into())))
}

#[utoipa::path(get, path = "/provider-accounts", tag = "provider-accounts", params(PageQuery),
    responses((status = 200, description = "A page of the workspace's accounts, newest first (disabled ones included).", body = Paged<AccountView>)))]
async fn list(State(app): State<Arc<AppState>>, Auth(ws): Auth, Query(q): Query<PageQuery>) -> Result<Json<Paged<AccountView>>, ApiError> {
    let page = q.page(|c| ProviderAccountId::parse(c).is_some())?;
    let accounts = app.store.list_provider_accounts(&ws, &page).await?;
    Ok(Json(paged(accounts.iter().map(AccountView::from).collect(), page.limit, |a| a.id.clone())))
}

async fn load(app: &AppState, ws: &WorkspaceId, id: &str) -> Result<ProviderAccount, ApiError> {
    let id = ProviderAccountId::parse(id).ok_or_else(|| ApiError::not_found("provider account"))?;
    app.store.get_provider_account(ws, id.as_str()).await?.ok_or_else(|| ApiError::not_found("provider account"))
}

#[utoipa::path(get, path = "/provider-accounts/{id}", tag = "provider-accounts", params(("id" = String, Path, description = "The account id (`pa_…`).")),
    responses((status = 200, description = "The account.", body = AccountView)))]
async fn show(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<AccountView>, ApiError> {
    Ok(Json((&load(&app, &ws, &id).await?).into()))
}

/// Changes the given fields; secrets given replace the stored ones (encrypted again).
#[utoipa::path(patch, path = "/provider-accounts/{id}", tag = "provider-accounts", params(("id" = String, Path, description = "The account id (`pa_…`).")),
    request_body = AccountPatch, responses((status = 200, description = "The account.", body = AccountView), (status = 415, description = "The body is not `application/json`.", body = ErrorBody)))]
async fn update(
    State(app): State<Arc<AppState>>,
    Auth(ws): Auth,
    Path(id): Path<String>,
    Json(body): Json<AccountPatch>,
) -> Result<Json<AccountView>, ApiError> {
    let account = load(&app, &ws, &id).await?;
    let (settings, secrets) = match body.credentials {
        Some(c) => credentials(account.provider, c, is_operator(&app, &ws))?,
        None => Default::default(),
    };
    // A setting that one of the required sets needs may not be removed if it is the last of its set.
    for need in required(account.provider) {
        let left = need.iter().any(|f| {
            secrets.contains_key(*f) || account.secret_hints.contains_key(*f) || settings.get(*f).map_or(account.settings.contains_key(*f), |v| !v.is_null())
        });
        if !left {
            return Err(ApiError::invalid(&format!("credentials.{}", need[0]), format!("{} needs {}", account.provider, need.join(" or "))));
        }
    }
    if !secrets.is_empty() && app.store.keyring().is_none() {
        return Err(no_master_key());
    }
    let patch = ProviderAccountPatch {
        name: body.name.as_deref().map(name).transpose()?,
        settings,
        secrets,
        max_concurrent: body.max_concurrent.map(max_concurrent).transpose()?,
        calls_per_second: body.calls_per_second.map(calls_per_second).transpose()?,
        enabled: body.enabled,
    };
    let account =
        app.store.update_provider_account(&ws, account.id.as_str(), &patch, app.now()).await?.ok_or_else(|| ApiError::not_found("provider account"))?;
    // This node uses the change at once; others within `dialtone_engine::accounts::RECHECK`.
    app.engine.accounts().forget(&account.id);
    app.engine.wake();
    Ok(Json((&account).into()))
}

/// Disables the account: it stays listed with `enabled: false` (a PATCH with `enabled:
/// true` turns it back on).
#[utoipa::path(delete, path = "/provider-accounts/{id}", tag = "provider-accounts", params(("id" = String, Path, description = "The account id (`pa_…`).")),
    responses((status = 204, description = "Disabled.")))]
async fn disable(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let account = load(&app, &ws, &id).await?;
    let patch = ProviderAccountPatch { enabled: Some(false), ..Default::default() };
    if app.store.update_provider_account(&ws, account.id.as_str(), &patch, app.now()).await?.is_none() {
        return Err(ApiError::not_found("provider account"));
    }
    app.engine.accounts().forget(&account.id);
    Ok(StatusCode::NO_CONTENT)
}
