//! `/api/v1/phone-numbers`: our numbers and the assistant that answers each inbound call.

use super::openapi::ErrorBody;
use super::Path;
use super::{ApiError, Auth, Json, Listed};
use crate::app::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use dialtone_core::ProviderKind;
use dialtone_store::PhoneNumberEntry;
use serde::Deserialize;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(list, add)).routes(routes!(remove))
}

/// The body of `POST /phone-numbers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewNumber {
    /// E.164; digits without `+` (as Vapi writes BYO numbers) are read as international.
    number: String,
    /// One of [`ProviderKind::ALL`] with an account on this server; default `vapi`.
    provider: Option<String>,
    assistant_id: String,
    name: Option<String>,
}

/// Registers one of our numbers and the assistant that answers its inbound calls.
#[utoipa::path(post, path = "/phone-numbers", tag = "phone-numbers", request_body = NewNumber,
    responses((status = 201, description = "The number.", body = PhoneNumberEntry),
        (status = 409, description = "The number is already registered.", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = ErrorBody)))]
async fn add(State(app): State<Arc<AppState>>, Auth(ws): Auth, Json(body): Json<NewNumber>) -> Result<(StatusCode, Json<PhoneNumberEntry>), ApiError> {
    let number = crate::inbound::our_number(&body.number).map_err(|e| ApiError::invalid("number", e))?;
    let provider: ProviderKind = app.parse_provider_name("provider", body.provider.as_deref().unwrap_or(ProviderKind::Vapi.as_str()))?;
    // Inbound calls are answered on the config file's accounts only.
    app.may_use_config_account(&ws, provider, "provider")?;
    app.require_account(provider, "provider")?;
    if body.assistant_id.trim().is_empty() {
        return Err(ApiError::invalid("assistant_id", "must not be empty"));
    }
    let entry = app.store.add_phone_number(&ws, &number, provider, body.assistant_id.trim(), body.name.as_deref(), app.now()).await?;
    Ok((StatusCode::CREATED, Json(entry)))
}

#[utoipa::path(get, path = "/phone-numbers", tag = "phone-numbers", responses((status = 200, description = "Every number of the workspace.", body = Listed<PhoneNumberEntry>)))]
async fn list(State(app): State<Arc<AppState>>, Auth(ws): Auth) -> Result<Json<Listed<PhoneNumberEntry>>, ApiError> {
    Ok(Json(Listed { data: app.store.list_phone_numbers(&ws).await? }))
}

#[utoipa::path(delete, path = "/phone-numbers/{number}", tag = "phone-numbers", params(("number" = String, Path, description = "The number, E.164.")),
    responses((status = 204, description = "Removed.")))]
async fn remove(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(number): Path<String>) -> Result<StatusCode, ApiError> {
    let number = crate::inbound::our_number(&number).map_err(|e| ApiError::invalid("number", e))?;
    if app.store.remove_phone_number(&ws, &number).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("phone number"))
    }
}
