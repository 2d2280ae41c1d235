//! `/api/v1/phone-numbers`: our numbers and the assistant that answers each inbound call.

use super::Path;
use super::{ApiError, Auth, Json};
use crate::app::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::Router;
use dialtone_core::ProviderKind;
use dialtone_store::PhoneNumberEntry;
use serde::Deserialize;
use std::sync::Arc;

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/phone-numbers", get(list).post(add)).route("/phone-numbers/{number}", delete(remove))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewNumber {
    /// E.164; digits without `+` (as Vapi writes BYO numbers) are read as international.
    number: String,
    /// One of [`ProviderKind::ALL`] with an account on this server; default `vapi`.
    provider: Option<String>,
    assistant_id: String,
    name: Option<String>,
}

async fn add(State(app): State<Arc<AppState>>, Auth(ws): Auth, Json(body): Json<NewNumber>) -> Result<(StatusCode, Json<PhoneNumberEntry>), ApiError> {
    let number = crate::inbound::our_number(&body.number).map_err(|e| ApiError::invalid("number", e))?;
    let provider: ProviderKind = app.parse_provider("provider", body.provider.as_deref().unwrap_or(ProviderKind::Vapi.as_str()))?;
    if body.assistant_id.trim().is_empty() {
        return Err(ApiError::invalid("assistant_id", "must not be empty"));
    }
    let entry = app.store.add_phone_number(&ws, &number, provider, body.assistant_id.trim(), body.name.as_deref(), app.now()).await?;
    Ok((StatusCode::CREATED, Json(entry)))
}

async fn list(State(app): State<Arc<AppState>>, Auth(ws): Auth) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(serde_json::json!({ "data": app.store.list_phone_numbers(&ws).await? })))
}

async fn remove(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(number): Path<String>) -> Result<StatusCode, ApiError> {
    let number = crate::inbound::our_number(&number).map_err(|e| ApiError::invalid("number", e))?;
    if app.store.remove_phone_number(&ws, &number).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("phone number"))
    }
}
