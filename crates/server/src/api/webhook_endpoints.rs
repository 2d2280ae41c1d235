//! `/api/v1/webhook-endpoints`: where a workspace's outbound events go (issue 13). An
//! endpoint has an http(s) `url`, the `events` it receives (of [`WEBHOOK_EVENT_TYPES`]) and
//! `enabled`; its signing secret (`whsec_…`, Standard Webhooks) is shown once, in the answer
//! to the create and to `rotate-secret`. The delivery log (`…/{id}/deliveries`) shows each
//! message with its tries (status, latency, answer excerpt); `…/deliveries/{message_id}/replay`
//! sends one again. An endpoint dialtone disabled after 5 days of failures shows
//! `enabled: false` and `disabled_reason: "failing"`; a PATCH with `enabled: true` turns
//! it back on.

use super::idempotency::ShownOnce;
use super::openapi::ErrorBody;
use super::Path;
use super::{paged, ApiError, Auth, Json, PageQuery, Paged, Query};
use crate::app::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use dialtone_core::{MessageId, WebhookEndpointId, WorkspaceId};
use dialtone_store::{Delivery, DeliveryAttempt, NewWebhookEndpoint, WebhookEndpoint, WebhookEndpointPatch, WEBHOOK_EVENT_TYPES};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show, update, remove))
        .routes(routes!(rotate_secret))
        .routes(routes!(deliveries))
        .routes(routes!(replay))
}

const MAX_URL: usize = 2_000;
const MAX_DESCRIPTION: usize = 500;

/// The body of `POST /webhook-endpoints`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://example.com/dialtone", "events": ["call.ended", "campaign.completed"], "enabled": true}))]
struct NewEndpoint {
    /// An http(s) URL.
    url: String,
    /// Event types it receives, at least one (the enum lists them; docs/api.md says when each is sent).
    #[schema(schema_with = event_types)]
    events: Vec<String>,
    /// Default true.
    enabled: Option<bool>,
    description: Option<String>,
}

/// The schema of `events`: a non-empty array of [`WEBHOOK_EVENT_TYPES`], so clients read the
/// list from the OpenAPI document rather than from a copy of their own.
fn event_types() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(WEBHOOK_EVENT_TYPES))).min_items(Some(1)).build()
}

/// A PATCH body: an absent field stays; `description: null` removes it; `enabled: true`
/// also clears `disabled_reason`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct EndpointPatch {
    #[serde(default, deserialize_with = "super::patch::not_null")]
    url: Option<String>,
    #[serde(default, deserialize_with = "super::patch::not_null")]
    #[schema(schema_with = event_types)]
    events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "super::patch::not_null")]
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "super::patch::nullable")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
}

/// An endpoint as the API shows it (never its secret, but on create and rotation).
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    /// `ep_…`.
    id: String,
    url: String,
    #[schema(required = true)]
    description: Option<String>,
    events: Vec<String>,
    enabled: bool,
    /// `failing` when dialtone disabled it after 5 days of failed deliveries.
    #[schema(required = true)]
    disabled_reason: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    disabled_at: Option<jiff::Timestamp>,
    /// Since when its deliveries have failed without a success; `null` while healthy.
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    failing_since: Option<jiff::Timestamp>,
    /// Until when the secret the last rotation replaced still signs (a second signature).
    /// Only that one is kept: a rotation within the overlap of the one before ends the
    /// older secret's signing at once, and this is the replaced secret's end, not the older's.
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    previous_secret_expires_at: Option<jiff::Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    created_at: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    updated_at: jiff::Timestamp,
}

impl From<&WebhookEndpoint> for EndpointView {
    fn from(e: &WebhookEndpoint) -> Self {
        EndpointView {
            id: e.id.to_string(),
            url: e.url.clone(),
            description: e.description.clone(),
            events: e.events.clone(),
            enabled: e.enabled,
            disabled_reason: e.disabled_reason.clone(),
            disabled_at: e.disabled_at,
            failing_since: e.failing_since,
            previous_secret_expires_at: e.previous_secret_until,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// The answer to a create or a rotation: the endpoint and its (new) secret, shown once
/// (in the JSON body only: `Debug` redacts it).
#[derive(Debug, Serialize, ToSchema)]
struct EndpointWithSecret {
    #[serde(flatten)]
    endpoint: EndpointView,
    /// `whsec_` + base64 of 24 random bytes: the key of the Standard Webhooks signature.
    #[serde(serialize_with = "shown_once")]
    #[schema(value_type = String)]
    secret: SecretString,
}

/// Writes the new secret into the answer: the one place the API exposes a signing secret.
fn shown_once<S: serde::Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose_secret())
}

/// One try in the delivery log.
#[derive(Debug, Serialize, ToSchema)]
struct AttemptView {
    /// The try's number among all tries of this message to this endpoint, 1 for the
    /// first: a replay continues the count.
    attempt: u32,
    #[schema(value_type = String, format = DateTime)]
    attempted_at: jiff::Timestamp,
    /// The receiver's HTTP status; `null` when none came (timeout, refused).
    #[schema(required = true)]
    status_code: Option<u16>,
    latency_ms: u64,
    /// The first 1 KiB of the answer's body.
    #[schema(required = true)]
    response_excerpt: Option<String>,
    #[schema(required = true)]
    error: Option<String>,
    succeeded: bool,
}

/// One message for this endpoint with its tries.
#[derive(Debug, Serialize, ToSchema)]
struct DeliveryView {
    /// `msg_…`: the `webhook-id` header.
    message_id: String,
    event_type: String,
    /// `pending`, `delivered` or `failed` (all 8 tries failed).
    status: String,
    /// Tries made so far, replays included: the number of `tries` (the last one's
    /// `attempt`).
    attempts: u32,
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    next_attempt_at: Option<jiff::Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    created_at: jiff::Timestamp,
    /// The body sent, as JSON.
    #[schema(value_type = Object)]
    payload: serde_json::Value,
    tries: Vec<AttemptView>,
}

fn delivery_view((d, tries): (Delivery, Vec<DeliveryAttempt>)) -> DeliveryView {
    DeliveryView {
        message_id: d.message_id.to_string(),
        event_type: d.event_type,
        status: d.status,
        attempts: u32::try_from(tries.len()).unwrap_or(u32::MAX),
        next_attempt_at: d.next_attempt_at,
        created_at: d.created_at,
        payload: serde_json::from_str(&d.payload).unwrap_or(serde_json::Value::Null),
        tries: tries
            .into_iter()
            .map(|t| AttemptView {
                attempt: t.attempt,
                attempted_at: t.attempted_at,
                status_code: t.status_code,
                latency_ms: t.latency_ms,
                response_excerpt: t.response_excerpt,
                error: t.error,
                succeeded: t.succeeded,
            })
            .collect(),
    }
}

/// A new `whsec_` secret: 24 random bytes, base64 (what Svix and the Standard Webhooks
/// libraries generate).
pub(crate) fn new_secret() -> SecretString {
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 24]>())).into()
}

/// A checked endpoint URL. Outside the operator's (default) workspace it must not name a
/// local or private address (`dialtone_engine::outbox::non_public_host`; host names are
/// checked again when the delivery resolves them): a tenant may not make dialtone call a
/// service on its own network and read the answer in the delivery log.
async fn tenant_url(app: &AppState, ws: &WorkspaceId, v: &str) -> Result<String, ApiError> {
    let checked = url(v)?;
    if *ws != app.default_workspace {
        let parsed = reqwest::Url::parse(&checked).map_err(|e| ApiError::internal(format!("a checked URL does not parse: {e}")))?;
        if let Some(why) = dialtone_engine::outbox::non_public_host(&parsed) {
            return Err(ApiError::invalid("url", format!("must reach a public address: {why}")));
        }
    }
    Ok(checked)
}

fn url(v: &str) -> Result<String, ApiError> {
    let v = v.trim();
    if v.len() > MAX_URL {
        return Err(ApiError::invalid("url", format!("must be at most {MAX_URL} characters")));
    }
    let parsed = super::error::absolute_url("url", v, "http", "https://example.com/dialtone")?;
    // Shown in every GET of the endpoint and in delivery logs: no place for a password.
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ApiError::invalid("url", "must not carry credentials (user:password@): put a token in the path or use the signature"));
    }
    Ok(v.to_string())
}

fn events(v: Vec<String>) -> Result<Vec<String>, ApiError> {
    if v.is_empty() {
        return Err(ApiError::invalid("events", "must name at least one event type"));
    }
    let mut out: Vec<String> = Vec::with_capacity(v.len());
    for e in v {
        let e = e.trim().to_string();
        if !WEBHOOK_EVENT_TYPES.contains(&e.as_str()) {
            return Err(ApiError::invalid("events", format!("{e:?} is not an event type; one of {}", WEBHOOK_EVENT_TYPES.join(", "))));
        }
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok(out)
}

fn description(v: Option<String>) -> Result<Option<String>, ApiError> {
    match v.map(|d| d.trim().to_string()) {
        Some(d) if d.chars().count() > MAX_DESCRIPTION => Err(ApiError::invalid("description", format!("must be at most {MAX_DESCRIPTION} characters"))),
        Some(d) if d.is_empty() => Ok(None),
        d => Ok(d),
    }
}

/// Creates an endpoint; the answer carries its secret, shown only here.
#[utoipa::path(post, path = "/webhook-endpoints", tag = "webhook-endpoints", request_body = NewEndpoint,
    responses((status = 201, description = "The endpoint and its secret.", body = EndpointWithSecret), (status = 415, description = "The body is not `application/json`.", body = ErrorBody)))]
async fn create(
    State(app): State<Arc<AppState>>,
    Auth(ws): Auth,
    Json(body): Json<NewEndpoint>,
) -> Result<(StatusCode, ShownOnce<EndpointWithSecret>), ApiError> {
    let new = NewWebhookEndpoint {
        url: tenant_url(&app, &ws, &body.url).await?,
        events: events(body.events)?,
        enabled: body.enabled.unwrap_or(true),
        description: description(body.description)?,
    };
    let secret = new_secret();
    let ep = app.store.create_webhook_endpoint(&ws, &new, &secret, app.now()).await?;
    Ok((StatusCode::CREATED, ShownOnce(EndpointWithSecret { endpoint: (&ep).into(), secret })))
}

#[utoipa::path(get, path = "/webhook-endpoints", tag = "webhook-endpoints", params(PageQuery),
    responses((status = 200, description = "A page of endpoints, newest first.", body = Paged<EndpointView>)))]
async fn list(State(app): State<Arc<AppState>>, Auth(ws): Auth, Query(q): Query<PageQuery>) -> Result<Json<Paged<EndpointView>>, ApiError> {
    let page = q.page(|c| WebhookEndpointId::parse(c).is_some())?;
    let eps = app.store.list_webhook_endpoints(&ws, &page).await?;
    Ok(Json(paged(eps.iter().map(EndpointView::from).collect(), page.limit, |e| e.id.clone())))
}

async fn load(app: &AppState, ws: &WorkspaceId, id: &str) -> Result<WebhookEndpoint, ApiError> {
    let id = WebhookEndpointId::parse(id).ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
    app.store.get_webhook_endpoint(ws, id.as_str()).await?.ok_or_else(|| ApiError::not_found("webhook endpoint"))
}

#[utoipa::path(get, path = "/webhook-endpoints/{id}", tag = "webhook-endpoints", params(("id" = String, Path, description = "The endpoint id (`ep_…`).")),
    responses((status = 200, description = "The endpoint.", body = EndpointView)))]
async fn show(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<EndpointView>, ApiError> {
    Ok(Json((&load(&app, &ws, &id).await?).into()))
}

/// Changes the given fields.
#[utoipa::path(patch, path = "/webhook-endpoints/{id}", tag = "webhook-endpoints", params(("id" = String, Path, description = "The endpoint id (`ep_…`).")),
    request_body = EndpointPatch, responses((status = 200, description = "The endpoint.", body = EndpointView), (status = 415, description = "The body is not `application/json`.", body = ErrorBody)))]
async fn update(
    State(app): State<Arc<AppState>>,
    Auth(ws): Auth,
    Path(id): Path<String>,
    Json(body): Json<EndpointPatch>,
) -> Result<Json<EndpointView>, ApiError> {
    let ep = load(&app, &ws, &id).await?;
    let url = match body.url.as_deref() {
        Some(u) => Some(tenant_url(&app, &ws, u).await?),
        None => None,
    };
    let patch = WebhookEndpointPatch {
        url,
        events: body.events.map(events).transpose()?,
        enabled: body.enabled,
        description: body.description.map(description).transpose()?,
    };
    let ep = app.store.update_webhook_endpoint(&ws, ep.id.as_str(), &patch, app.now()).await?.ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
    Ok(Json((&ep).into()))
}

/// Deletes the endpoint with its deliveries and their log.
#[utoipa::path(delete, path = "/webhook-endpoints/{id}", tag = "webhook-endpoints", params(("id" = String, Path, description = "The endpoint id (`ep_…`).")),
    responses((status = 204, description = "Deleted.")))]
async fn remove(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let id = WebhookEndpointId::parse(&id).ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
    if !app.store.delete_webhook_endpoint(&ws, id.as_str()).await? {
        return Err(ApiError::not_found("webhook endpoint"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Gives the endpoint a new secret, shown once in the answer. The old one keeps signing
/// for 24 h: meanwhile each message carries both signatures in `webhook-signature`.
#[utoipa::path(post, path = "/webhook-endpoints/{id}/rotate-secret", tag = "webhook-endpoints",
    params(("id" = String, Path, description = "The endpoint id (`ep_…`).")),
    responses((status = 200, description = "The endpoint and its new secret.", body = EndpointWithSecret)))]
async fn rotate_secret(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<ShownOnce<EndpointWithSecret>, ApiError> {
    let ep = load(&app, &ws, &id).await?;
    let secret = new_secret();
    let ep = app.store.rotate_webhook_secret(&ws, ep.id.as_str(), &secret, app.now()).await?.ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
    Ok(ShownOnce(EndpointWithSecret { endpoint: (&ep).into(), secret }))
}

/// The delivery log: the endpoint's messages, newest first, each with its tries.
#[utoipa::path(get, path = "/webhook-endpoints/{id}/deliveries", tag = "webhook-endpoints",
    params(("id" = String, Path, description = "The endpoint id (`ep_…`)."), PageQuery),
    responses((status = 200, description = "A page of deliveries, newest first; the cursor is a message id.", body = Paged<DeliveryView>)))]
async fn deliveries(
    State(app): State<Arc<AppState>>,
    Auth(ws): Auth,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Paged<DeliveryView>>, ApiError> {
    let ep = load(&app, &ws, &id).await?;
    let page = q.page(|c| MessageId::parse(c).is_some())?;
    let rows = app.store.list_deliveries(&ws, ep.id.as_str(), &page).await?;
    Ok(Json(paged(rows.into_iter().map(delivery_view).collect(), page.limit, |d| d.message_id.clone())))
}

/// Sends a message to the endpoint again, at once (whatever became of it before); the
/// tries so far stay in the log.
#[utoipa::path(post, path = "/webhook-endpoints/{id}/deliveries/{message_id}/replay", tag = "webhook-endpoints",
    params(("id" = String, Path, description = "The endpoint id (`ep_…`)."), ("message_id" = String, Path, description = "The message id (`msg_…`).")),
    responses((status = 202, description = "Queued for delivery now.")))]
async fn replay(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path((id, message_id)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    let ep = load(&app, &ws, &id).await?;
    let message = MessageId::parse(&message_id).ok_or_else(|| ApiError::not_found("delivery"))?;
    if !app.store.replay_delivery(&ws, ep.id.as_str(), message.as_str(), app.now()).await? {
        return Err(ApiError::not_found("delivery"));
    }
    Ok(StatusCode::ACCEPTED)
}
