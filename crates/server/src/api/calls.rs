//! `/api/v1/calls`: list with filters and pagination; one call with its event history.

use super::openapi::ErrorBody;
use super::stats::instant;
use super::Path;
use super::{paged, ApiError, Auth, Json, PageQuery, Paged, Query};
use crate::app::AppState;
use axum::extract::State;
use dialtone_core::{CallId, CampaignId, ContactId, PhoneNumber};
use dialtone_store::{Call, CallEvent, CallFilter, CallSort};
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

/// `?campaign_id=&contact_id=&status=&outcome=&phone=&created_from=&created_to=&ended_from=&ended_to=&sort=&limit=&before=`
/// on `GET /calls`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// Only this campaign's calls (`cmp_…`).
    pub(super) campaign_id: Option<String>,
    /// Only this contact's calls (`ct_…`).
    pub(super) contact_id: Option<String>,
    /// One or more call statuses, comma-separated (`completed,failed`): calls in any of them.
    #[param(example = "queued,dialing")]
    pub(super) status: Option<String>,
    /// One or more outcomes, comma-separated (`no_answer,busy`): calls with any of them.
    #[param(example = "no_answer,busy")]
    pub(super) outcome: Option<String>,
    /// Only calls to this number (E.164; national numbers are read as US).
    pub(super) phone: Option<String>,
    // Spelled out rather than `#[serde(flatten)] PageQuery`: a flattened query string
    // reaches serde as strings only, and `limit=10` would be refused as "not a u32".
    /// Items per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub(super) limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub(super) before: Option<String>,
    /// Calls created at or after this instant (RFC 3339).
    #[param(format = DateTime)]
    pub(super) created_from: Option<String>,
    /// Calls created before this instant (RFC 3339).
    #[param(format = DateTime)]
    pub(super) created_to: Option<String>,
    /// Calls that ended at or after this instant (RFC 3339).
    #[param(format = DateTime)]
    pub(super) ended_from: Option<String>,
    /// Calls that ended before this instant (RFC 3339).
    #[param(format = DateTime)]
    pub(super) ended_to: Option<String>,
    /// `-created_at` (newest first, the default) or `created_at` (oldest first).
    #[param(pattern = "^-?created_at$")]
    pub(super) sort: Option<String>,
}

/// `a,b,c` → each parsed, blanks skipped; a bad one names `field`.
fn any_of<T: std::str::FromStr>(field: &str, v: Option<&str>) -> Result<Vec<T>, ApiError>
where
    T::Err: std::fmt::Display,
{
    v.into_iter().flat_map(|v| v.split(',')).map(str::trim).filter(|s| !s.is_empty()).map(|s| s.parse().map_err(|e| ApiError::invalid(field, e))).collect()
}

/// The workspace's calls, newest first, filtered.
#[utoipa::path(get, path = "/calls", tag = "calls", params(ListQuery), responses((status = 200, description = "A page of calls.", body = Paged<Call>)))]
async fn list(State(app): State<Arc<AppState>>, Auth(ws): Auth, Query(q): Query<ListQuery>) -> Result<Json<Paged<Call>>, ApiError> {
    let (filter, page) = read_query(q)?;
    let calls = app.store.list_calls(&ws, &filter, &page).await?;
    Ok(Json(paged(calls, page.limit, |c| c.id.to_string())))
}

/// The filter and page a [`ListQuery`] asks for (also `GET /batches/{id}/calls`); a bad
/// value is a 400 naming its parameter.
pub(super) fn read_query(q: ListQuery) -> Result<(CallFilter, dialtone_store::Page), ApiError> {
    let filter = CallFilter {
        campaign_id: q.campaign_id.as_deref().map(|c| CampaignId::parse(c).ok_or_else(|| ApiError::invalid("campaign_id", "not a campaign id"))).transpose()?,
        status: None,
        outcome: None,
        statuses: any_of("status", q.status.as_deref())?,
        outcomes: any_of("outcome", q.outcome.as_deref())?,
        created_from: q.created_from.as_deref().map(|v| instant("created_from", v)).transpose()?,
        created_to: q.created_to.as_deref().map(|v| instant("created_to", v)).transpose()?,
        ended_from: q.ended_from.as_deref().map(|v| instant("ended_from", v)).transpose()?,
        ended_to: q.ended_to.as_deref().map(|v| instant("ended_to", v)).transpose()?,
        sort: match q.sort.as_deref() {
            None | Some("-created_at") => CallSort::NewestFirst,
            Some("created_at") => CallSort::OldestFirst,
            Some(_) => return Err(ApiError::invalid("sort", "expected created_at or -created_at")),
        },
        phone: q.phone.as_deref().map(|p| PhoneNumber::parse(p, "US").map_err(|e| ApiError::invalid("phone", e))).transpose()?,
        contact_id: q.contact_id.as_deref().map(|c| ContactId::parse(c).ok_or_else(|| ApiError::invalid("contact_id", "not a contact id"))).transpose()?,
    };
    let page = PageQuery { limit: q.limit, before: q.before }.page(|c| CallId::parse(c).is_some())?;
    Ok((filter, page))
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
    let provider =
        app.engine.provider_for_call(&call).await.ok_or_else(|| ApiError::unavailable(format!("the call's {} account cannot be used here", call.provider)))?;
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
