//! `/api/v1/campaigns`: create, list, get (with counts), import and list contacts, start,
//! pause, resume, cancel.

use super::{paged, ApiError, Auth, Json, PageQuery, Query};
use crate::app::AppState;
use crate::import::{self, CsvContacts, ImportReport};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use dialtone_core::frequency::{Frequency, Recurrence};
use dialtone_core::schedule::{LocalHours, Schedule};
use dialtone_core::{CampaignId, CampaignStatus, Mode, ProviderKind, RetryPolicy, WorkspaceId};
use dialtone_store::{Assistant, Campaign, CampaignCounts, NewCampaign, NewContact};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Contact uploads may be large (100,000 rows is a few MB).
const MAX_UPLOAD: usize = 256 * 1024 * 1024;
const CHUNK: usize = 1000;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/campaigns", post(create).get(list))
        .route("/campaigns/{id}", get(show))
        .route("/campaigns/{id}/contacts", post(import_contacts).layer(DefaultBodyLimit::max(MAX_UPLOAD)).get(list_contacts))
        .route("/campaigns/{id}/start", post(start))
        .route("/campaigns/{id}/pause", post(pause))
        .route("/campaigns/{id}/resume", post(resume))
        .route("/campaigns/{id}/cancel", post(cancel))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCampaign {
    pub name: String,
    /// `vapi` or `sim`.
    pub provider: String,
    pub assistant_id: String,
    pub phone_number_id: String,
    /// `continuous` (default) or `batch`.
    pub mode: Option<String>,
    pub max_concurrent: Option<u32>,
    pub max_attempts: Option<u32>,
    /// ISO 3166 region used to read numbers written without a country code (default `US`).
    pub default_region: Option<String>,
    /// Retry rules per outcome; missing fields keep their defaults.
    pub retry: Option<RetryPolicy>,
    /// When the campaign may dial: `{"timezone", "windows": [{"days", "start", "end"}], "start_date",
    /// "end_date", "blackout_dates"}`. Default: always open, in UTC.
    pub schedule: Option<Schedule>,
    /// Each recipient's own calling hours, in the recipient's zone. Default 08:00–21:00.
    pub calling_hours: Option<LocalHours>,
    /// How often each contact is called: `{"frequency": {"type": "once" | "daily" | "weekly",
    /// "days": [...] | "monthly", "day_of_month": n}, "end_date", "max_occurrences"}`. Default once.
    pub recurrence: Option<Recurrence>,
    /// Opt-in (default false): judge contacts whose number may be in several zones
    /// (`timezone_source: "ambiguous"`) in the schedule's zone alone, instead of requiring
    /// the calling hours in every candidate zone.
    #[serde(default)]
    pub assume_campaign_timezone_for_ambiguous: bool,
}

impl CreateCampaign {
    pub fn validate(self, ws: WorkspaceId) -> Result<NewCampaign, ApiError> {
        let text = |field: &str, v: String| {
            let v = v.trim().to_string();
            if v.is_empty() {
                Err(ApiError::invalid(field, "must not be empty"))
            } else {
                Ok(v)
            }
        };
        let provider: ProviderKind = self.provider.parse().map_err(|_| ApiError::invalid("provider", "must be one of vapi, sim"))?;
        let mode: Mode = match self.mode {
            None => Mode::Continuous,
            Some(m) => m.parse().map_err(|_| ApiError::invalid("mode", "must be continuous or batch"))?,
        };
        let max_concurrent = self.max_concurrent.unwrap_or(8);
        if !(1..=1000).contains(&max_concurrent) {
            return Err(ApiError::invalid("max_concurrent", "must be between 1 and 1000"));
        }
        let max_attempts = self.max_attempts.unwrap_or(3);
        if !(1..=100).contains(&max_attempts) {
            return Err(ApiError::invalid("max_attempts", "must be between 1 and 100"));
        }
        let region = self.default_region.unwrap_or_else(|| "US".into()).to_ascii_uppercase();
        if dialtone_core::PhoneNumber::parse("+14155552671", &region).is_err() {
            return Err(ApiError::invalid("default_region", "must be an ISO 3166 alpha-2 region such as US, GB, IN"));
        }
        let schedule = self.schedule.unwrap_or_else(|| Schedule::always("UTC"));
        schedule.validate().map_err(|e| {
            // The error's text already starts with its field.
            ApiError::new(axum::http::StatusCode::BAD_REQUEST, "invalid_request", format!("schedule.{e}"))
                .with_details(serde_json::json!({ "field": format!("schedule.{}", e.field()) }))
        })?;
        let recurrence = self.recurrence.unwrap_or_else(|| Recurrence::new(Frequency::Once));
        recurrence.validate().map_err(|e| ApiError::invalid("recurrence", e))?;
        let retry = self.retry.unwrap_or_default();
        retry.validate().map_err(|m| ApiError::invalid("retry", m))?;
        Ok(NewCampaign {
            workspace_id: ws,
            name: text("name", self.name)?,
            provider,
            assistant_id: text("assistant_id", self.assistant_id)?,
            phone_number_id: text("phone_number_id", self.phone_number_id)?,
            mode,
            max_concurrent,
            max_attempts,
            retry,
            default_region: region,
            schedule,
            calling_hours: self.calling_hours.unwrap_or_default(),
            recurrence,
            assume_campaign_timezone_for_ambiguous: self.assume_campaign_timezone_for_ambiguous,
        })
    }
}

#[derive(Debug, Serialize)]
pub struct CampaignView {
    #[serde(flatten)]
    pub campaign: Campaign,
    pub counts: CampaignCounts,
    /// When the campaign's schedule is next open (now, if open); null if it never opens again.
    pub next_open_at: Option<jiff::Timestamp>,
    /// Why a running campaign is not dialling right now, if something holds it back.
    pub waiting_reason: Option<String>,
}

async fn view(app: &AppState, campaign: Campaign) -> Result<CampaignView, ApiError> {
    let counts = app.store.campaign_counts(&campaign.id).await?;
    Ok(view_with(app, campaign, counts))
}

fn view_with(app: &AppState, campaign: Campaign, counts: CampaignCounts) -> CampaignView {
    let now = app.now();
    let next_open_at = campaign.schedule.next_open(now);
    let waiting_reason = if !campaign.status.is_runnable() {
        None
    } else if let Some(why) = app.engine.account_waiting(campaign.provider) {
        Some(why)
    } else if next_open_at != Some(now) {
        Some(match next_open_at {
            Some(at) => format!("outside the campaign's calling windows; next open at {at}"),
            None => "the campaign's schedule never opens again".to_string(),
        })
    } else {
        None
    };
    CampaignView { campaign, counts, next_open_at, waiting_reason }
}

fn parse_id(id: &str) -> Result<CampaignId, ApiError> {
    CampaignId::parse(id).ok_or_else(|| ApiError::not_found("campaign"))
}

async fn load(app: &AppState, ws: &WorkspaceId, id: &str) -> Result<Campaign, ApiError> {
    app.store.get_campaign(ws, &parse_id(id)?).await?.ok_or_else(|| ApiError::not_found("campaign"))
}

async fn create(State(app): State<Arc<AppState>>, Auth(ws): Auth, Json(body): Json<CreateCampaign>) -> Result<(StatusCode, Json<CampaignView>), ApiError> {
    let new = body.validate(ws.clone())?;
    let campaign = app.store.create_campaign(new, app.now()).await?;
    // A campaign's assistant becomes known to the workspace (single calls may use it).
    if app.store.get_assistant(&ws, &campaign.assistant_id).await?.is_none() {
        let assistant = Assistant { id: campaign.assistant_id.clone(), provider: campaign.provider, phone_number_id: campaign.phone_number_id.clone(), name: None };
        app.store.upsert_assistant(&ws, &assistant, app.now()).await?;
    }
    Ok((StatusCode::CREATED, Json(view(&app, campaign).await?)))
}

async fn list(State(app): State<Arc<AppState>>, Auth(ws): Auth, Query(q): Query<PageQuery>) -> Result<Json<serde_json::Value>, ApiError> {
    let page = q.page()?;
    let campaigns = app.store.list_campaigns(&ws, &page).await?;
    // The whole page's counts in one read, not one per campaign.
    let ids: Vec<_> = campaigns.iter().map(|c| c.id.clone()).collect();
    let mut counts = app.store.campaign_counts_many(&ids).await?;
    let views: Vec<CampaignView> =
        campaigns.into_iter().map(|c| { let n = counts.remove(&c.id).unwrap_or_default(); view_with(&app, c, n) }).collect();
    Ok(Json(paged(views, page.limit, |v| v.campaign.id.to_string())))
}

/// `GET /campaigns/{id}/contacts`: the campaign's contacts, newest first, each with its
/// candidate `timezones` and, when the claim held it back, `waiting` (why, until when).
async fn list_contacts(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>, Query(q): Query<PageQuery>) -> Result<Json<serde_json::Value>, ApiError> {
    let page = q.page()?;
    let campaign = load(&app, &ws, &id).await?;
    let contacts = app.store.list_contacts(&ws, &campaign.id, &page).await?;
    Ok(Json(paged(contacts, page.limit, |c| c.id.to_string())))
}

async fn show(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<CampaignView>, ApiError> {
    let campaign = load(&app, &ws, &id).await?;
    Ok(Json(view(&app, campaign).await?))
}

async fn import_contacts(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>, req: Request) -> Result<Json<ImportReport>, ApiError> {
    let campaign = load(&app, &ws, &id).await?;
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let mut report = ImportReport::default();
    if content_type.starts_with("application/json") {
        let body = Bytes::from_request(req, &()).await.map_err(|e| ApiError::invalid("body", e.body_text()))?;
        let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string()))?;
        let rows = import::from_json(&value, &campaign.default_region, &campaign.schedule.timezone, &mut report).map_err(|e| ApiError::invalid("body", e))?;
        for chunk in rows.chunks(CHUNK) {
            insert(&app, &campaign, chunk, &mut report).await?;
        }
    } else if content_type.starts_with("multipart/form-data") {
        let mut multipart = Multipart::from_request(req, &()).await.map_err(|e| ApiError::invalid("body", e.body_text()))?;
        let mut found = false;
        while let Some(field) = multipart.next_field().await.map_err(|e| ApiError::invalid("file", e))? {
            if field.name() == Some("file") {
                let bytes = field.bytes().await.map_err(|e| ApiError::invalid("file", e))?;
                import_csv(&app, &campaign, &bytes, &mut report).await?;
                found = true;
            }
        }
        if !found {
            return Err(ApiError::invalid("file", "multipart upload needs a `file` field holding the CSV"));
        }
    } else if content_type.starts_with("text/csv") || content_type.starts_with("text/plain") {
        let body = Bytes::from_request(req, &()).await.map_err(|e| ApiError::invalid("body", e.body_text()))?;
        import_csv(&app, &campaign, &body, &mut report).await?;
    } else {
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
            "send contacts as multipart/form-data (field `file`), text/csv, or a JSON array"));
    }
    tracing::info!(campaign_id = %campaign.id, imported = report.imported, rejected = report.rejected_count, "contacts imported");
    app.engine.wake_everywhere();
    Ok(Json(report))
}

async fn import_csv(app: &AppState, campaign: &Campaign, bytes: &[u8], report: &mut ImportReport) -> Result<(), ApiError> {
    let mut rows = CsvContacts::new(bytes, &campaign.default_region, &campaign.schedule.timezone).map_err(|e| ApiError::invalid("file", e))?;
    while let Some(chunk) = rows.next_chunk(CHUNK, report) {
        insert(app, campaign, &chunk, report).await?;
    }
    Ok(())
}

async fn insert(app: &AppState, campaign: &Campaign, chunk: &[NewContact], report: &mut ImportReport) -> Result<(), ApiError> {
    if chunk.is_empty() {
        return Ok(());
    }
    let done = app.store.insert_contacts(&campaign.workspace_id, &campaign.id, chunk, app.now()).await?;
    report.imported += done.inserted;
    for d in done.duplicates {
        report.reject(d);
    }
    Ok(())
}

async fn act(app: &AppState, ws: &WorkspaceId, id: &str, from: &[CampaignStatus], to: CampaignStatus, verb: &str) -> Result<Json<CampaignView>, ApiError> {
    let campaign = load(app, ws, id).await?;
    if !app.store.transition_campaign(ws, &campaign.id, from, to, app.now()).await? {
        return Err(ApiError::conflict(format!("cannot {verb} a campaign that is {}", campaign.status))
            .with_details(serde_json::json!({ "status": campaign.status })));
    }
    app.engine.wake_everywhere();
    Ok(Json(view(app, load(app, ws, id).await?).await?))
}

async fn start(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<CampaignView>, ApiError> {
    act(&app, &ws, &id, &[CampaignStatus::Draft], CampaignStatus::Starting, "start").await
}

async fn pause(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<CampaignView>, ApiError> {
    act(&app, &ws, &id, &[CampaignStatus::Starting, CampaignStatus::Dialing], CampaignStatus::Paused, "pause").await
}

async fn resume(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<CampaignView>, ApiError> {
    let campaign = load(&app, &ws, &id).await?;
    let to = CampaignStatus::resumed(campaign.started_at.is_some());
    act(&app, &ws, &id, &[CampaignStatus::Paused], to, "resume").await
}

async fn cancel(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<CampaignView>, ApiError> {
    let campaign = load(&app, &ws, &id).await?;
    if !app.store.cancel_campaign(&ws, &campaign.id, app.now()).await? {
        return Err(ApiError::conflict(format!("cannot cancel a campaign that is {}", campaign.status)));
    }
    Ok(Json(view(&app, load(&app, &ws, &id).await?).await?))
}
