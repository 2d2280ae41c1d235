//! Do-not-call lists: `/api/v1/dnc` (workspace-wide) and `/api/v1/campaigns/{id}/dnc`.
//! A listed number is never dialled: the dispatcher checks the lists at claim time.

use super::openapi::ErrorBody;
use super::Path;
use super::{paged, ApiError, Auth, Json, PageQuery, Paged, Query};
use crate::app::AppState;
use crate::import::{CsvContacts, ImportReport};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use dialtone_core::{CampaignId, PhoneNumber, WorkspaceId};
use dialtone_store::{RejectedRow, Suppression};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_ws, add_ws))
        .routes(routes!(check))
        .routes(routes!(remove_ws))
        .routes(routes!(list_cmp, add_cmp))
        .routes(routes!(remove_cmp))
}

/// The answer of adding numbers to a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct DncAdded {
    /// Numbers newly listed.
    pub added: u64,
    /// Numbers that were on the list already.
    pub already_listed: u64,
    pub rejected_count: u64,
    /// Each number that could not be read, by line (1-based: the array index + 1, or the CSV line).
    pub rejected: Vec<RejectedRow>,
}

/// The answer of `GET /dnc/check`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DncCheck {
    /// The number as read, E.164.
    pub phone: PhoneNumber,
    /// Whether a call to it would be turned away.
    pub suppressed: bool,
    /// The entries that list it.
    pub matches: Vec<Suppression>,
}

/// The list a request is about, and how to read its numbers.
struct Scope {
    campaign: Option<CampaignId>,
    region: String,
}

async fn campaign_scope(app: &AppState, ws: &WorkspaceId, id: &str) -> Result<Scope, ApiError> {
    let id = CampaignId::parse(id).ok_or_else(|| ApiError::not_found("campaign"))?;
    let c = app.store.get_campaign(ws, &id).await?.ok_or_else(|| ApiError::not_found("campaign"))?;
    Ok(Scope { campaign: Some(c.id), region: c.default_region })
}

fn workspace_scope() -> Scope {
    Scope { campaign: None, region: "US".into() }
}

/// `?region=IN` (or `"region"` in a JSON body): read this request's national numbers in
/// that region instead of the list's own (the campaign's `default_region`; `US` for the
/// workspace list). Without it an Indian `9188097679` sent to the workspace list would be
/// read as the US number +1 918-809-7679 and the Indian one left callable.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RegionQuery {
    /// ISO 3166 alpha-2 region national numbers are read in, e.g. `IN`.
    region: Option<String>,
}

impl Scope {
    fn read_in(mut self, region: Option<&str>) -> Result<Self, ApiError> {
        if let Some(region) = region {
            if !dialtone_core::phone::is_known_region(region) {
                return Err(ApiError::invalid("region", format!("{region:?} is not an ISO 3166 alpha-2 region with a numbering plan, such as US, GB, IN")));
            }
            self.region = region.trim().to_ascii_uppercase();
        }
        Ok(self)
    }
}

/// The JSON body of adding numbers to a list.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AddBody {
    numbers: Vec<String>,
    reason: Option<String>,
    region: Option<String>,
}

/// JSON `{"numbers": [...], "reason": "..."}` or a CSV with a phone column.
async fn add(app: &AppState, ws: &WorkspaceId, scope: Scope, headers: &HeaderMap, body: Bytes) -> Result<Json<DncAdded>, ApiError> {
    let campaign = scope.campaign.clone();
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let mut report = ImportReport::default();
    let (phones, reason) = if content_type.starts_with("application/json") {
        let body: AddBody = super::error::from_json(&body)?;
        let scope = scope.read_in(body.region.as_deref())?;
        let mut phones = vec![];
        for (i, raw) in body.numbers.iter().enumerate() {
            report.rows += 1;
            match PhoneNumber::parse(raw, &scope.region) {
                Ok(p) => phones.push(p),
                Err(e) => report.reject(RejectedRow { line: i as u64 + 1, reason: format!("invalid phone number {raw:?}: {e}") }),
            }
        }
        (phones, body.reason)
    } else if content_type.starts_with("text/csv") || content_type.starts_with("text/plain") {
        // An extension on a listed number is not kept: the whole line is not to be called.
        let bad_csv = |e: crate::import::ImportError| {
            let details = match e.line() {
                Some(line) => json!({ "field": "body", "line": line }),
                None => json!({ "field": "body" }),
            };
            ApiError::invalid("body", e).with_details(details)
        };
        let mut rows = CsvContacts::new(&body[..], &scope.region, "UTC").map_err(bad_csv)?;
        let mut phones = vec![];
        while let Some(chunk) = rows.next_chunk(1000, &mut report).map_err(bad_csv)? {
            phones.extend(chunk.into_iter().map(|c| c.phone));
        }
        (phones, None)
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send {\"numbers\": [...]} as JSON, or a CSV with a phone column as text/csv",
        ));
    };
    let added = app.store.add_suppressions(ws, campaign.as_ref(), &phones, reason.as_deref(), app.now()).await?;
    Ok(Json(DncAdded { added, already_listed: phones.len() as u64 - added, rejected_count: report.rejected_count, rejected: report.rejected }))
}

/// Adds numbers to the workspace's do-not-call list.
#[utoipa::path(post, path = "/dnc", tag = "dnc", params(RegionQuery), request_body(description = "JSON `{\"numbers\": [...], \"reason\", \"region\"}`, or a CSV with a phone column as `text/csv`.",
        content((AddBody = "application/json"), (String = "text/csv"))),
    responses((status = 200, description = "How many were added; bad numbers by line.", body = DncAdded),
        (status = 413, description = "The body is over the limit.", body = ErrorBody),
        (status = 415, description = "Neither JSON nor CSV.", body = ErrorBody)))]
async fn add_ws(
    State(app): State<Arc<AppState>>,
    Auth(ws): Auth,
    Query(q): Query<RegionQuery>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<DncAdded>, ApiError> {
    let body = body?;
    add(&app, &ws, workspace_scope().read_in(q.region.as_deref())?, &headers, body).await
}

/// Adds numbers to a campaign's do-not-call list.
#[utoipa::path(post, path = "/campaigns/{id}/dnc", tag = "dnc", params(("id" = String, Path, description = "The campaign id (`cmp_…`)."), RegionQuery), request_body(description = "JSON `{\"numbers\": [...], \"reason\", \"region\"}`, or a CSV with a phone column as `text/csv`.",
        content((AddBody = "application/json"), (String = "text/csv"))),
    responses((status = 200, description = "How many were added; bad numbers by line.", body = DncAdded),
        (status = 413, description = "The body is over the limit.", body = ErrorBody),
        (status = 415, description = "Neither JSON nor CSV.", body = ErrorBody)))]
async fn add_cmp(
    State(app): State<Arc<AppState>>,
    Auth(ws): Auth,
    Path(id): Path<String>,
    Query(q): Query<RegionQuery>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<DncAdded>, ApiError> {
    let body = body?;
    let scope = campaign_scope(&app, &ws, &id).await?.read_in(q.region.as_deref())?;
    add(&app, &ws, scope, &headers, body).await
}

async fn list(app: &AppState, ws: &WorkspaceId, scope: Scope, q: PageQuery) -> Result<Json<Paged<Suppression>>, ApiError> {
    let page = q.page(super::is_suppression_id)?;
    let items = app.store.list_suppressions(ws, scope.campaign.as_ref(), &page).await?;
    Ok(Json(paged(items, page.limit, |s| s.id.clone())))
}

#[utoipa::path(get, path = "/dnc", tag = "dnc", params(PageQuery), responses((status = 200, description = "A page of the workspace's list, newest first.", body = Paged<Suppression>)))]
async fn list_ws(State(app): State<Arc<AppState>>, Auth(ws): Auth, Query(q): Query<PageQuery>) -> Result<Json<Paged<Suppression>>, ApiError> {
    list(&app, &ws, workspace_scope(), q).await
}

#[utoipa::path(get, path = "/campaigns/{id}/dnc", tag = "dnc", params(("id" = String, Path, description = "The campaign id (`cmp_…`)."), PageQuery),
    responses((status = 200, description = "A page of the campaign's list, newest first.", body = Paged<Suppression>)))]
async fn list_cmp(
    State(app): State<Arc<AppState>>,
    Auth(ws): Auth,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Paged<Suppression>>, ApiError> {
    let scope = campaign_scope(&app, &ws, &id).await?;
    list(&app, &ws, scope, q).await
}

async fn remove(app: &AppState, ws: &WorkspaceId, scope: Scope, raw: &str) -> Result<StatusCode, ApiError> {
    let phone = PhoneNumber::parse(raw, &scope.region).map_err(|e| ApiError::invalid("phone", e))?;
    if app.store.remove_suppression(ws, scope.campaign.as_ref(), &phone).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("number on this list"))
    }
}

#[utoipa::path(delete, path = "/dnc/{phone}", tag = "dnc", params(("phone" = String, Path, description = "The number, read in the list's region (or `region`)."), RegionQuery), responses((status = 204, description = "Removed.")))]
async fn remove_ws(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(phone): Path<String>, Query(q): Query<RegionQuery>) -> Result<StatusCode, ApiError> {
    remove(&app, &ws, workspace_scope().read_in(q.region.as_deref())?, &phone).await
}

#[utoipa::path(delete, path = "/campaigns/{id}/dnc/{phone}", tag = "dnc", params(("id" = String, Path, description = "The campaign id (`cmp_…`)."), ("phone" = String, Path, description = "The number, read in the list's region (or `region`)."), RegionQuery),
    responses((status = 204, description = "Removed.")))]
async fn remove_cmp(
    State(app): State<Arc<AppState>>,
    Auth(ws): Auth,
    Path((id, phone)): Path<(String, String)>,
    Query(q): Query<RegionQuery>,
) -> Result<StatusCode, ApiError> {
    let scope = campaign_scope(&app, &ws, &id).await?.read_in(q.region.as_deref())?;
    remove(&app, &ws, scope, &phone).await
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct CheckQuery {
    /// The number to check.
    phone: String,
    /// Check the campaign's list too.
    campaign_id: Option<String>,
    /// ISO 3166 alpha-2 region a national number is read in.
    region: Option<String>,
}

/// `GET /dnc/check?phone=…[&campaign_id=…]`: would this number be turned away?
#[utoipa::path(get, path = "/dnc/check", tag = "dnc", params(CheckQuery), responses((status = 200, description = "Whether the number is listed.", body = DncCheck)))]
async fn check(State(app): State<Arc<AppState>>, Auth(ws): Auth, Query(q): Query<CheckQuery>) -> Result<Json<DncCheck>, ApiError> {
    let scope = match &q.campaign_id {
        Some(id) => campaign_scope(&app, &ws, id).await?,
        None => workspace_scope(),
    }
    .read_in(q.region.as_deref())?;
    let phone = PhoneNumber::parse(&q.phone, &scope.region).map_err(|e| ApiError::invalid("phone", e))?;
    let matches = app.store.suppressions_for(&ws, scope.campaign.as_ref(), &phone).await?;
    Ok(Json(DncCheck { phone, suppressed: !matches.is_empty(), matches }))
}
