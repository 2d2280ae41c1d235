//! Scheduled single calls: `POST /api/v1/calls` places one call now or at `scheduled_for`,
//! `PUT /api/v1/calls/{id}` moves it while it has not started, `DELETE` cancels it; and the
//! assistants a workspace may call with (`/api/v1/assistants`).

use super::openapi::ErrorBody;
use super::Path;
use super::{ApiError, Auth, Json, Listed};
use crate::app::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use dialtone_core::frequency::Recurrence;
use dialtone_core::schedule::LocalHours;
use dialtone_core::{contact_timezone, CallId, Extension, PhoneNumber, ProviderKind, RetryPolicy, WorkspaceId};
use dialtone_store::{Assistant, Call, NewSingleCall, Variables};
use jiff::Timestamp;
use serde::Deserialize;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `/assistants`; the single-call routes share their paths with `/calls` and are mounted
/// by [`super::calls::router`] (one path, one `routes!`).
pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(list_assistants, add_assistant))
}

/// The body of `POST /calls`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewCall {
    /// Required without `agent_id`. With one and without this, the call uses the assistant
    /// registered under the agent's id (a campaign with the agent registers it), or else the
    /// `provider` and `phone_number_id` given here.
    assistant_id: Option<String>,
    /// With `agent_id` and no `assistant_id`: the provider (`exotel`, `twilio`) to call on.
    provider: Option<String>,
    /// With `agent_id` and no `assistant_id`: the caller number's id on that provider.
    phone_number_id: Option<String>,
    /// E.164, e.g. +14155552671.
    phone: String,
    /// Digits dialled after the call connects (`"22"`; `"ext. 22"` is read too).
    extension: Option<String>,
    name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    variables: Variables,
    /// The recipient's IANA zone; derived from the number when absent.
    timezone: Option<String>,
    /// When to place it (RFC 3339); now when absent. Must be in the future.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(default, deserialize_with = "super::instant::optional")]
    scheduled_for: Option<Timestamp>,
    /// Move the time into the recipient's business hours (08:00–21:00 local) if it falls
    /// outside: in every zone the number may be in, when it may be in several.
    #[serde(default)]
    respect_business_hours: bool,
    /// Repeat daily / weekly / monthly, with an end date or a maximum number of occurrences.
    recurrence: Option<Recurrence>,
    /// Attempts, 1–100 (default 1).
    #[schema(minimum = 1, maximum = 100)]
    max_attempts: Option<u32>,
    retry: Option<RetryPolicy>,
    /// An agent of this workspace: dialtone's own voice pipeline handles the call. The
    /// assistant's provider must be exotel or twilio (422 `invalid_agent` otherwise).
    agent_id: Option<String>,
    /// One of the workspace's own provider accounts (`pa_…`) of the assistant's provider:
    /// the call goes through it. Default: the server's configured account of that provider.
    account_id: Option<String>,
}

/// A single call has no default region, so its number must carry its country code (`+`);
/// libphonenumber reads the rest as written (`+91 91880 97679` → `+919188097679`), and an
/// extension written after it (`… ext. 22`) is kept, as in contact imports.
fn e164(raw: &str) -> Result<(PhoneNumber, Option<Extension>), ApiError> {
    if !raw.trim_start().starts_with('+') {
        return Err(ApiError::invalid("phone", "must start with + and the country code, e.g. +14155552671"));
    }
    dialtone_core::parse_with_extension(raw, "US").map_err(|e| ApiError::invalid("phone", e))
}

fn future(at: Timestamp, now: Timestamp) -> Result<Timestamp, ApiError> {
    if at <= now {
        return Err(ApiError::invalid("scheduled_for", format!("must be in the future (it is now {now})")));
    }
    Ok(at)
}

/// The first instant at or after `at` inside business hours (08:00–21:00) in every zone the
/// recipient may be in (all candidates of an ambiguous number). An error if those zones never
/// share such an instant, rather than a call at night in one of them.
fn business_hours(at: Timestamp, zones: &[String]) -> Result<Timestamp, ApiError> {
    let tzs: Vec<jiff::tz::TimeZone> = zones.iter().map(|z| jiff::tz::TimeZone::get(z).unwrap_or(jiff::tz::TimeZone::UTC)).collect();
    let tzs = if tzs.is_empty() { vec![jiff::tz::TimeZone::UTC] } else { tzs };
    LocalHours::default().next_open_in_all(&tzs, at).ok_or_else(|| {
        ApiError::invalid(
            "respect_business_hours",
            format!("the number may be in any of {}, which never share a moment between 08:00 and 21:00; give `timezone`", zones.join(", ")),
        )
    })
}

/// Places one call now, or schedules it (`scheduled_for`), optionally recurring.
#[utoipa::path(post, path = "/calls", tag = "calls", request_body = NewCall,
    responses((status = 201, description = "The call, scheduled or queued; `Location` is its URL.", body = Call,
            headers(("Location" = String, description = "`/api/v1/calls/{id}`"))),
        (status = 409, description = "The number is on the do-not-call list (`dnc`).", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = ErrorBody),
        (status = 422, description = "`agent_id` names no usable agent (`invalid_agent`).", body = ErrorBody)))]
pub(super) async fn create(
    State(app): State<Arc<AppState>>,
    Auth(ws): Auth,
    Json(body): Json<NewCall>,
) -> Result<(StatusCode, [(axum::http::HeaderName, String); 1], Json<Call>), ApiError> {
    let now = app.now();
    let (phone, inline) = e164(&body.phone)?;
    let assistant = assistant_for(&app, &ws, &body).await?;
    let account_id = app.check_account(&ws, assistant.provider, body.account_id.as_deref(), "assistant_id", body.agent_id.is_some()).await?;
    let agent_id = super::agents::check_agent_id(&app, &ws, body.agent_id.as_deref(), assistant.provider).await?;
    // Refused now rather than left waiting: the claim would turn it away at its time.
    let listed = app.store.suppressions_for(&ws, None, &phone).await?;
    if !listed.is_empty() {
        return Err(ApiError::new(StatusCode::CONFLICT, "dnc", format!("phone: {phone} is on the workspace's do-not-call list"))
            .with_details(serde_json::json!({ "field": "phone", "matches": listed })));
    }
    let given = body.extension.as_deref().map(Extension::parse).transpose().map_err(|e| ApiError::invalid("extension", e))?.flatten();
    let extension = match (inline, given) {
        (Some(a), Some(b)) if a != b => return Err(ApiError::invalid("extension", format!("{b} differs from the extension written in phone ({a})"))),
        (a, b) => a.or(b),
    };
    if extension.is_some() && !crate::import::dials_extensions(assistant.provider) {
        return Err(ApiError::invalid("extension", crate::import::NO_EXTENSIONS));
    }
    let zone = contact_timezone(body.timezone.as_deref(), &phone, "UTC").map_err(|e| ApiError::invalid("timezone", e))?;
    let mut at = match body.scheduled_for {
        Some(at) => future(at, now)?,
        None => now,
    };
    if body.respect_business_hours {
        at = business_hours(at, &zone.timezones)?;
    }
    if let Some(r) = &body.recurrence {
        r.validate().map_err(|e| ApiError::invalid("recurrence", e))?;
    }
    let retry = body.retry.unwrap_or_default();
    retry.validate().map_err(|m| ApiError::invalid("retry", m))?;
    let max_attempts = body.max_attempts.unwrap_or(1);
    if !(1..=100).contains(&max_attempts) {
        return Err(ApiError::invalid("max_attempts", "must be between 1 and 100"));
    }
    let call = app
        .store
        .create_single_call(
            NewSingleCall {
                workspace_id: ws,
                assistant,
                phone,
                extension,
                name: body.name,
                variables: body.variables,
                timezone: zone,
                scheduled_for: at,
                recurrence: body.recurrence,
                max_attempts,
                retry,
                respect_business_hours: body.respect_business_hours,
                agent_id,
                account_id,
            },
            now,
        )
        .await?;
    app.engine.wake_everywhere();
    let location = [(axum::http::header::LOCATION, format!("/api/v1/calls/{}", call.id))];
    Ok((StatusCode::CREATED, location, Json(call)))
}

/// The assistant a new call is placed with: `assistant_id`'s; or, for an agent's call without
/// one, the agent is the assistant: made from `provider` and `phone_number_id` when given,
/// else the one registered under the agent's id (a campaign with the agent registers it).
/// Errors: 400 naming the field.
async fn assistant_for(app: &AppState, ws: &WorkspaceId, body: &NewCall) -> Result<Assistant, ApiError> {
    let (Some(agent_id), None) = (&body.agent_id, &body.assistant_id) else {
        let Some(id) = &body.assistant_id else { return Err(ApiError::missing("assistant_id", "required unless agent_id is given")) };
        return app
            .store
            .get_assistant(ws, id)
            .await?
            .ok_or_else(|| ApiError::invalid("assistant_id", "unknown assistant: register it with POST /api/v1/assistants (or use it in a campaign)"));
    };
    let agent_id = agent_id.trim();
    match (&body.provider, &body.phone_number_id) {
        (Some(provider), Some(phone_number_id)) => {
            // The account is checked by the caller (`AppState::check_account`).
            let provider: ProviderKind = app.parse_provider_name("provider", provider)?;
            let phone_number_id = super::callers::caller_id(provider, phone_number_id, None)?;
            Ok(Assistant { id: agent_id.to_string(), provider, phone_number_id, name: None })
        }
        (provider, _) => match app.store.get_assistant(ws, agent_id).await? {
            Some(assistant) if provider.is_none() && body.phone_number_id.is_none() => Ok(assistant),
            _ => Err(ApiError::invalid(
                if provider.is_none() { "provider" } else { "phone_number_id" },
                "an agent's call without assistant_id needs provider and phone_number_id (or none of the two, when a campaign with the agent registered it as an assistant)",
            )),
        },
    }
}

/// The body of `PUT /calls/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Reschedule {
    #[schema(value_type = String, format = DateTime)]
    #[serde(deserialize_with = "super::instant::required")]
    scheduled_for: Timestamp,
    #[serde(default)]
    respect_business_hours: bool,
}

async fn load(app: &AppState, ws: &WorkspaceId, id: &str) -> Result<Call, ApiError> {
    let id = CallId::parse(id).ok_or_else(|| ApiError::not_found("call"))?;
    app.store.get_call(ws, &id).await?.ok_or_else(|| ApiError::not_found("call"))
}

/// Moves a scheduled call that has not started.
#[utoipa::path(put, path = "/calls/{id}", tag = "calls", params(("id" = String, Path, description = "The call id.")), request_body = Reschedule,
    responses((status = 200, description = "The call at its new time.", body = Call),
        (status = 409, description = "The call has started.", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = ErrorBody)))]
pub(super) async fn reschedule(
    State(app): State<Arc<AppState>>,
    Auth(ws): Auth,
    Path(id): Path<String>,
    Json(body): Json<Reschedule>,
) -> Result<Json<Call>, ApiError> {
    let call = load(&app, &ws, &id).await?;
    let mut at = future(body.scheduled_for, app.now())?;
    if body.respect_business_hours {
        let contact = app.store.get_contact(&ws, &call.contact_id).await?.ok_or_else(|| ApiError::not_found("contact"))?;
        at = business_hours(at, &contact.timezones)?;
    }
    if !app.store.reschedule_call(&ws, &call.id, at, app.now()).await? {
        // Its status now, not as read before the conditional update (which may have lost a race).
        let now = load(&app, &ws, &id).await?;
        return Err(ApiError::conflict(format!("the call is {} and can no longer be rescheduled", now.status)));
    }
    Ok(Json(load(&app, &ws, &id).await?))
}

/// Cancels a scheduled call that has not started.
#[utoipa::path(delete, path = "/calls/{id}", tag = "calls", params(("id" = String, Path, description = "The call id.")),
    responses((status = 200, description = "The call, canceled.", body = Call), (status = 409, description = "The call has started.", body = ErrorBody)))]
pub(super) async fn cancel(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<Call>, ApiError> {
    let call = load(&app, &ws, &id).await?;
    if !app.store.cancel_scheduled_call(&ws, &call.id, app.now()).await? {
        // Its status now, not as read before the conditional update (which may have lost a race).
        let now = load(&app, &ws, &id).await?;
        let hint = if now.status.is_active() { format!(" (a live one is hung up: POST /calls/{id}/hangup)") } else { String::new() };
        return Err(ApiError::conflict(format!("the call is {}; only a scheduled call can be canceled{hint}", now.status)));
    }
    Ok(Json(load(&app, &ws, &id).await?))
}

/// The body of `POST /assistants`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewAssistant {
    id: String,
    provider: String,
    phone_number_id: String,
    name: Option<String>,
}

/// Registers (or updates) an assistant that single calls may use.
#[utoipa::path(post, path = "/assistants", tag = "assistants", request_body = NewAssistant,
    responses((status = 201, description = "The assistant.", body = Assistant), (status = 415, description = "The body is not `application/json`.", body = ErrorBody)))]
async fn add_assistant(State(app): State<Arc<AppState>>, Auth(ws): Auth, Json(body): Json<NewAssistant>) -> Result<(StatusCode, Json<Assistant>), ApiError> {
    let provider: ProviderKind = app.parse_provider_name("provider", &body.provider)?;
    // A workspace that may call through the server's account of the provider needs it
    // configured; another calls through its own accounts (`account_id` on each call).
    if app.may_use_config_account(&ws, provider, "provider").is_ok() {
        app.require_account(provider, "provider")?;
    }
    if body.id.trim().is_empty() {
        return Err(ApiError::invalid("id", "must not be empty"));
    }
    let phone_number_id = super::callers::caller_id(provider, &body.phone_number_id, None)?;
    let a = Assistant { id: body.id.trim().into(), provider, phone_number_id, name: body.name };
    app.store.upsert_assistant(&ws, &a, app.now()).await?;
    Ok((StatusCode::CREATED, Json(a)))
}

#[utoipa::path(get, path = "/assistants", tag = "assistants", responses((status = 200, description = "Every assistant of the workspace.", body = Listed<Assistant>)))]
async fn list_assistants(State(app): State<Arc<AppState>>, Auth(ws): Auth) -> Result<Json<Listed<Assistant>>, ApiError> {
    Ok(Json(Listed { data: app.store.list_assistants(&ws).await? }))
}
