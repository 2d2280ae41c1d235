//! `/api/v1/calls`: list with filters and pagination; one call with its event history.

use super::openapi::ErrorBody;
use super::Path;
use super::{paged, ApiError, Auth, Json, PageQuery, Paged, Query};
use crate::app::AppState;
use axum::extract::State;
use dialtone_core::{CallId, CampaignId, ContactId, PhoneNumber};
use dialtone_store::{Call, CallEvent, CallFilter};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `GET /calls` and `GET /calls/{id}` (with `POST /calls` and `PUT`/`DELETE /calls/{id}`
/// from [`super::single_calls`]), and the hang-up.
pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list, super::single_calls::create))
        .routes(routes!(show, super::single_calls::reschedule, super::single_calls::cancel))
        .routes(routes!(hangup))
}

/// `?campaign_id=&contact_id=&status=&outcome=&phone=&limit=&before=` on `GET /calls`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only this campaign's calls (`cmp_…`).
    campaign_id: Option<String>,
    /// Only this contact's calls (`ct_…`).
    contact_id: Option<String>,
    #[param(value_type = Option<dialtone_core::CallStatus>)]
    status: Option<String>,
    #[param(value_type = Option<dialtone_core::Outcome>)]
    outcome: Option<String>,
    /// Only calls to this number (E.164; national numbers are read as US).
    phone: Option<String>,
    // Spelled out rather than `#[serde(flatten)] PageQuery`: a flattened query string
    // reaches serde as strings only, and `limit=10` would be refused as "not a u32".
    /// Items per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// The previous page's `next_cursor`.
    before: Option<String>,
}

/// The workspace's calls, newest first, filtered.
#[utoipa::path(get, path = "/calls", tag = "calls", params(ListQuery), responses((status = 200, description = "A page of calls.", body = Paged<Call>)))]
async fn list(State(app): State<Arc<AppState>>, Auth(ws): Auth, Query(q): Query<ListQuery>) -> Result<Json<Paged<Call>>, ApiError> {
    let filter = CallFilter {
        campaign_id: q.campaign_id.as_deref().map(|c| CampaignId::parse(c).ok_or_else(|| ApiError::invalid("campaign_id", "not a campaign id"))).transpose()?,
        status: q.status.as_deref().map(|s| s.parse().map_err(|e| ApiError::invalid("status", e))).transpose()?,
        outcome: q.outcome.as_deref().map(|s| s.parse().map_err(|e| ApiError::invalid("outcome", e))).transpose()?,
        phone: q.phone.as_deref().map(|p| PhoneNumber::parse(p, "US").map_err(|e| ApiError::invalid("phone", e))).transpose()?,
        contact_id: q.contact_id.as_deref().map(|c| ContactId::parse(c).ok_or_else(|| ApiError::invalid("contact_id", "not a contact id"))).transpose()?,
    };
    let page = PageQuery { limit: q.limit, before: q.before }.page(|c| CallId::parse(c).is_some())?;
    let calls = app.store.list_calls(&ws, &filter, &page).await?;
    Ok(Json(paged(calls, page.limit, |c| c.id.to_string())))
}

/// A call with its events, oldest first.
#[derive(Serialize, ToSchema)]
struct CallView {
    #[serde(flatten)]
    call: Call,
    events: Vec<CallEvent>,
}

#[utoipa::path(get, path = "/calls/{id}", tag = "calls", params(("id" = String, Path, description = "The call id (`call_…`).")), responses((status = 200, description = "The call and its events.", body = CallView)))]
async fn show(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<CallView>, ApiError> {
    let id = CallId::parse(&id).ok_or_else(|| ApiError::not_found("call"))?;
    let call = app.store.get_call(&ws, &id).await?.ok_or_else(|| ApiError::not_found("call"))?;
    let events = app.store.call_events(&ws, &id).await?;
    Ok(Json(CallView { call, events }))
}

/// `POST /calls/{id}/hangup`: ends a live call through the provider's hang-up API; the
/// outcome is `canceled`.
#[utoipa::path(post, path = "/calls/{id}/hangup", tag = "calls", params(("id" = String, Path, description = "The call id (`call_…`).")),
    responses((status = 200, description = "The call, ended as `canceled`.", body = CallView),
        (status = 409, description = "The call is not live.", body = ErrorBody),
        (status = 502, description = "The provider did not confirm the hang-up (`provider_error`).", body = ErrorBody)))]
async fn hangup(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<CallView>, ApiError> {
    let id = CallId::parse(&id).ok_or_else(|| ApiError::not_found("call"))?;
    let call = app.store.get_call(&ws, &id).await?.ok_or_else(|| ApiError::not_found("call"))?;
    if !call.status.is_active() {
        return Err(ApiError::conflict(format!("the call is {}; only a live call can be hung up", call.status)));
    }
    let Some(provider_call_id) = call.provider_call_id.as_deref() else {
        return Err(ApiError::conflict("the call has not reached the provider yet; try again in a moment"));
    };
    let provider = app.engine.provider(call.provider).ok_or_else(|| ApiError::unavailable(format!("no {} provider is configured", call.provider)))?;
    // Decided here before the provider hears of it: the provider's own report of the end
    // races a write made afterwards (Twilio reports an answered call it was told to end as
    // `completed`), and whichever landed first would be the outcome. The fence also settles
    // a call that ends by itself meanwhile: it keeps its real outcome and nothing is hung up.
    let applied = app.store.end_call(&call.id, dialtone_core::Outcome::Canceled, "hung up through the API", app.now()).await?;
    if !applied.as_ref().is_some_and(|a| a.ended_call()) {
        return Err(ApiError::conflict("the call ended meanwhile; only a live call can be hung up"));
    }
    app.engine.metrics.record_applied(applied.as_slice());
    app.engine.wake();
    provider.hang_up(provider_call_id).await.map_err(|e| {
        tracing::warn!(call_id = %call.id, error = %e, "a call recorded as hung up was not confirmed by the provider");
        ApiError::new(
            axum::http::StatusCode::BAD_GATEWAY,
            "provider_error",
            format!("the call is recorded as canceled, but the provider did not confirm the hang-up: {e}"),
        )
    })?;
    let call = app.store.get_call(&ws, &id).await?.ok_or_else(|| ApiError::not_found("call"))?;
    let events = app.store.call_events(&ws, &id).await?;
    Ok(Json(CallView { call, events }))
}
