//! `/api/v1/contacts/{id}`: a contact with its attempt history; retry it now (ignoring
//! the retry limits, recorded as manual) or cancel its pending retries.

use super::openapi::ErrorBody;
use super::Path;
use super::{ApiError, Auth, Json};
use crate::app::AppState;
use axum::extract::State;
use dialtone_core::{ContactId, WorkspaceId};
use dialtone_store::{Call, CallFilter, Contact, Page};
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(show)).routes(routes!(retry)).routes(routes!(cancel))
}

/// A contact with its calls, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactDetail {
    #[serde(flatten)]
    pub contact: Contact,
    /// Its calls (at most 500), oldest first.
    pub attempt_history: Vec<Call>,
}

fn parse_id(id: &str) -> Result<ContactId, ApiError> {
    ContactId::parse(id).ok_or_else(|| ApiError::not_found("contact"))
}

async fn view(app: &AppState, ws: &WorkspaceId, id: &ContactId) -> Result<Json<ContactDetail>, ApiError> {
    let contact = app.store.get_contact(ws, id).await?.ok_or_else(|| ApiError::not_found("contact"))?;
    let filter = CallFilter { contact_id: Some(id.clone()), ..Default::default() };
    let mut attempts = app.store.list_calls(ws, &filter, &Page { limit: 500, before: None }).await?;
    attempts.reverse();
    Ok(Json(ContactDetail { contact, attempt_history: attempts }))
}

#[utoipa::path(get, path = "/contacts/{id}", tag = "contacts", params(("id" = String, Path, description = "The contact id (`ct_…`).")), responses((status = 200, description = "The contact and its calls.", body = ContactDetail)))]
async fn show(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<ContactDetail>, ApiError> {
    view(&app, &ws, &parse_id(&id)?).await
}

/// Calls the contact again now, outside its retry rules (recorded as manual).
#[utoipa::path(post, path = "/contacts/{id}/retry", tag = "contacts", params(("id" = String, Path, description = "The contact id (`ct_…`).")),
    responses((status = 200, description = "The contact, due now.", body = ContactDetail), (status = 409, description = "In a call, or its campaign is over.", body = ErrorBody)))]
async fn retry(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<ContactDetail>, ApiError> {
    let id = parse_id(&id)?;
    app.store.get_contact(&ws, &id).await?.ok_or_else(|| ApiError::not_found("contact"))?;
    if !app.store.retry_contact_now(&ws, &id, app.now()).await? {
        return Err(ApiError::conflict("the contact is in a call, or its campaign is over"));
    }
    app.engine.wake_everywhere();
    view(&app, &ws, &id).await
}

/// Cancels the contact's pending attempts.
#[utoipa::path(post, path = "/contacts/{id}/cancel", tag = "contacts", params(("id" = String, Path, description = "The contact id (`ct_…`).")),
    responses((status = 200, description = "The contact, canceled.", body = ContactDetail), (status = 409, description = "Nothing pending.", body = ErrorBody)))]
async fn cancel(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<ContactDetail>, ApiError> {
    let id = parse_id(&id)?;
    app.store.get_contact(&ws, &id).await?.ok_or_else(|| ApiError::not_found("contact"))?;
    if !app.store.cancel_contact(&ws, &id, app.now()).await? {
        return Err(ApiError::conflict("the contact has no pending attempt to cancel"));
    }
    view(&app, &ws, &id).await
}
