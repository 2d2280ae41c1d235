//! `/api/v1/contacts/{id}`: a contact with its attempt history; retry it now (ignoring
//! the retry limits, recorded as manual) or cancel its pending retries.

use super::Path;
use super::{ApiError, Auth, Json};
use crate::app::AppState;
use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use dialtone_core::{ContactId, WorkspaceId};
use dialtone_store::{CallFilter, Page};
use serde_json::{json, Value};
use std::sync::Arc;

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/contacts/{id}", get(show)).route("/contacts/{id}/retry", post(retry)).route("/contacts/{id}/cancel", post(cancel))
}

fn parse_id(id: &str) -> Result<ContactId, ApiError> {
    ContactId::parse(id).ok_or_else(|| ApiError::not_found("contact"))
}

async fn view(app: &AppState, ws: &WorkspaceId, id: &ContactId) -> Result<Json<Value>, ApiError> {
    let contact = app.store.get_contact(ws, id).await?.ok_or_else(|| ApiError::not_found("contact"))?;
    let filter = CallFilter { contact_id: Some(id.clone()), ..Default::default() };
    let mut attempts = app.store.list_calls(ws, &filter, &Page { limit: 500, before: None }).await?;
    attempts.reverse();
    let mut body = serde_json::to_value(&contact).map_err(ApiError::internal)?;
    body["attempt_history"] = json!(attempts);
    Ok(Json(body))
}

async fn show(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    view(&app, &ws, &parse_id(&id)?).await
}

async fn retry(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    app.store.get_contact(&ws, &id).await?.ok_or_else(|| ApiError::not_found("contact"))?;
    if !app.store.retry_contact_now(&ws, &id, app.now()).await? {
        return Err(ApiError::conflict("the contact is in a call, or its campaign is over"));
    }
    app.engine.wake_everywhere();
    view(&app, &ws, &id).await
}

async fn cancel(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    app.store.get_contact(&ws, &id).await?.ok_or_else(|| ApiError::not_found("contact"))?;
    if !app.store.cancel_contact(&ws, &id, app.now()).await? {
        return Err(ApiError::conflict("the contact has no pending attempt to cancel"));
    }
    view(&app, &ws, &id).await
}
