//! `/api/v1/calls`: list with filters and pagination; one call with its event history.

use super::stats::instant;
use super::Path;
use super::{paged, ApiError, Auth, Json, PageQuery, Query};
use crate::app::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use dialtone_core::{CallId, CampaignId, ContactId, PhoneNumber};
use dialtone_store::{Call, CallEvent, CallFilter, CallSort};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/calls", get(list)).route("/calls/{id}", get(show)).route("/calls/{id}/hangup", axum::routing::post(hangup))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    campaign_id: Option<String>,
    contact_id: Option<String>,
    status: Option<String>,
    outcome: Option<String>,
    phone: Option<String>,
    // Spelled out rather than `#[serde(flatten)] PageQuery`: a flattened query string
    // reaches serde as strings only, and `limit=10` would be refused as "not a u32".
    limit: Option<u32>,
    before: Option<String>,
    /// RFC 3339 bounds, `[from, to)`, on when the call was created / ended.
    created_from: Option<String>,
    created_to: Option<String>,
    ended_from: Option<String>,
    ended_to: Option<String>,
    /// `-created_at` (newest first, the default) or `created_at` (oldest first).
    sort: Option<String>,
}

/// `a,b,c` → each parsed, blanks skipped; a bad one names `field`.
fn any_of<T: std::str::FromStr>(field: &str, v: Option<&str>) -> Result<Vec<T>, ApiError>
where
    T::Err: std::fmt::Display,
{
    v.into_iter().flat_map(|v| v.split(',')).map(str::trim).filter(|s| !s.is_empty()).map(|s| s.parse().map_err(|e| ApiError::invalid(field, e))).collect()
}

async fn list(State(app): State<Arc<AppState>>, Auth(ws): Auth, Query(q): Query<ListQuery>) -> Result<Json<serde_json::Value>, ApiError> {
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
    let calls = app.store.list_calls(&ws, &filter, &page).await?;
    Ok(Json(paged(calls, page.limit, |c| c.id.to_string())))
}

#[derive(Serialize)]
struct CallView {
    #[serde(flatten)]
    call: Call,
    events: Vec<CallEvent>,
}

async fn show(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<CallView>, ApiError> {
    let id = CallId::parse(&id).ok_or_else(|| ApiError::not_found("call"))?;
    let call = app.store.get_call(&ws, &id).await?.ok_or_else(|| ApiError::not_found("call"))?;
    let events = app.store.call_events(&ws, &id).await?;
    Ok(Json(CallView { call, events }))
}

/// `POST /calls/{id}/hangup`: ends a live call through the provider's hang-up API; the
/// outcome is `canceled`.
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
