//! `/api/v1/campaigns`: create, list, get (with counts), import and list contacts, start,
//! pause, resume, cancel.

use super::callers::{caller_id, check_calls_per_minute, PoolFields};
use super::openapi::ErrorBody;
use super::steer::{self, WaitingCount};
use super::Path;
use super::{paged, ApiError, Auth, Json, Paged, Query};
use crate::app::AppState;
use crate::import::{self, CsvContacts, ImportReport};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{header, StatusCode};
use dialtone_core::frequency::{Frequency, Recurrence};
use dialtone_core::schedule::{LocalHours, Schedule};
use dialtone_core::{CampaignId, CampaignStatus, Mode, ProviderKind, RetryPolicy, WorkspaceId};
use dialtone_store::{Assistant, Campaign, CampaignCounts, NewCampaign, NewContact};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

/// Rows parsed and stored per step of an import.
const CHUNK: usize = 1000;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show, steer::patch, steer::archive))
        // Uploads have their own limit (`max_upload_bytes`), checked as the body streams in.
        .routes(routes!(import_contacts, steer::list_contacts).layer(DefaultBodyLimit::disable()))
        .routes(routes!(steer::export))
        .routes(routes!(start))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(cancel))
}

/// The body of `POST /campaigns`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Spring renewals", "provider": "sim", "assistant_id": "asst_renewals", "phone_number_id": "pn_main", "max_concurrent": 4}))]
pub struct CreateCampaign {
    #[schema(min_length = 1)]
    pub name: String,
    /// One of [`ProviderKind::ALL`] that this server has an account for.
    #[schema(value_type = ProviderKind)]
    pub provider: String,
    /// Required without `agent_id`; with one it defaults to the agent's id (the agent is
    /// the assistant) and is only a label.
    #[schema(min_length = 1)]
    pub assistant_id: Option<String>,
    /// The caller number (Twilio `From`, Exotel `CallerId`, Vapi `phoneNumberId`). Required
    /// unless `caller_numbers` is given (then it defaults to the first of them).
    #[schema(min_length = 1)]
    pub phone_number_id: Option<String>,
    /// A caller-ID pool: several E.164 numbers (on Vapi: phone-number ids, or numbers)
    /// that calls go from, picked per contact by `caller_number_strategy`; a contact keeps
    /// its number across retries. Default: none (every call from `phone_number_id`).
    #[schema(max_items = 1000)]
    pub caller_numbers: Option<Vec<String>>,
    /// `round_robin` (default), `least_used` (fewest calls today, UTC, across the
    /// workspace) or `local_presence` (a number with the callee's country and area code).
    #[schema(value_type = Option<dialtone_core::CallerStrategy>)]
    pub caller_number_strategy: Option<String>,
    /// What `local_presence` does when no pool number is local: `round_robin` (default) or
    /// `least_used`.
    #[schema(value_type = Option<dialtone_core::CallerStrategy>)]
    pub fallback_strategy: Option<String>,
    /// At most this many calls placed per rolling minute, 1–10,000 (default: no throttle).
    #[schema(minimum = 1, maximum = 10_000)]
    pub calls_per_minute: Option<u32>,
    /// `continuous` (default) or `batch`.
    #[schema(value_type = Option<Mode>)]
    pub mode: Option<String>,
    /// Calls live at once, 1–1000 (default 8).
    #[schema(minimum = 1, maximum = 1000)]
    pub max_concurrent: Option<u32>,
    /// Attempts per contact, 1–100 (default 3).
    #[schema(minimum = 1, maximum = 100)]
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
    /// Seconds a call may stay live before it is hung up and ends as `timeout`
    /// (1–86,400); default: the server's `max_call_duration_secs`.
    #[schema(minimum = 1, maximum = 86_400)]
    pub max_call_duration_secs: Option<u32>,
    /// Opt-in (default false): judge contacts whose number may be in several zones
    /// (`timezone_source: "ambiguous"`) in the schedule's zone alone, instead of requiring
    /// the calling hours in every candidate zone.
    #[serde(default)]
    pub assume_campaign_timezone_for_ambiguous: bool,
    /// An agent of this workspace (`agt_…`): dialtone's own voice pipeline handles the
    /// calls. Exotel and Twilio only (422 `invalid_agent` otherwise); checked in `create`.
    pub agent_id: Option<String>,
    /// One of the workspace's own provider accounts (`pa_…`, see `/provider-accounts`),
    /// of `provider`: the calls go through it (its credentials, concurrency limit, rate
    /// limit and circuit breaker). Default: the server's configured account of `provider`.
    /// 422 `invalid_account` for an account that is not this workspace's, disabled, or of
    /// another provider.
    pub account_id: Option<String>,
}

/// The longest `max_call_duration_secs` a campaign may ask for: a day. Providers cap calls
/// well below it (Vapi's own limit is hours), so anything longer is a typo.
pub const MAX_CALL_DURATION_SECS: u32 = 86_400;

impl CreateCampaign {
    /// Errors: 400 naming the field; 400 `provider_not_configured` for a provider this
    /// server has no account for (see [`AppState::parse_provider`]).
    pub fn validate(self, ws: WorkspaceId, app: &AppState) -> Result<NewCampaign, ApiError> {
        let text = |field: &str, v: String| {
            let v = v.trim().to_string();
            if v.is_empty() {
                Err(ApiError::invalid(field, "must not be empty"))
            } else {
                Ok(v)
            }
        };
        // The workspace's own account (`account_id`) is checked by the caller against the
        // store (`AppState::check_account`); the config's, first, here.
        let provider: ProviderKind = app.parse_provider_name("provider", &self.provider)?;
        if self.account_id.is_none() {
            app.may_use_config_account(&ws, provider, "account_id")?;
            app.require_account_for(provider, "provider", self.agent_id.is_some())?;
        }
        if let Some(secs) = self.max_call_duration_secs {
            if !(1..=MAX_CALL_DURATION_SECS).contains(&secs) {
                return Err(ApiError::invalid("max_call_duration_secs", format!("must be between 1 and {MAX_CALL_DURATION_SECS} seconds")));
            }
        }
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
        let pool = PoolFields { numbers: self.caller_numbers, strategy: self.caller_number_strategy, fallback: self.fallback_strategy }.resolve(
            Default::default(),
            provider,
            &region,
        )?;
        let phone_number_id = match (self.phone_number_id, pool.numbers.first()) {
            (Some(id), _) => caller_id(provider, &id, Some(&region))?,
            (None, Some(first)) => first.clone(),
            (None, None) => return Err(ApiError::missing("phone_number_id", "required unless caller_numbers is given")),
        };
        let calls_per_minute = check_calls_per_minute(self.calls_per_minute)?;
        Ok(NewCampaign {
            workspace_id: ws,
            name: text("name", self.name)?,
            provider,
            // With an agent, the agent is the assistant: its id names it unless one is given.
            assistant_id: match self.assistant_id.or_else(|| self.agent_id.clone()) {
                Some(id) => text("assistant_id", id)?,
                None => return Err(ApiError::missing("assistant_id", "required unless agent_id is given")),
            },
            phone_number_id,
            mode,
            max_concurrent,
            max_attempts,
            retry,
            default_region: region,
            schedule,
            calling_hours: self.calling_hours.unwrap_or_default(),
            recurrence,
            max_call_duration_secs: self.max_call_duration_secs,
            assume_campaign_timezone_for_ambiguous: self.assume_campaign_timezone_for_ambiguous,
            // Checked against the store by the caller (`api::agents::check_agent_id`).
            agent_id: None,
            caller_pool: pool,
            calls_per_minute,
            // Checked against the store by the caller (`AppState::check_account`).
            account_id: None,
        })
    }
}

/// A campaign with its counts and what holds it back (`GET /campaigns/{id}` and the list).
#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignView {
    #[serde(flatten)]
    pub campaign: Campaign,
    pub counts: CampaignCounts,
    /// When the campaign's schedule is next open (now, if open); null if it never opens again,
    /// and null for a draft (it dials nothing until started: `waiting_reason` says so) and a
    /// completed or canceled campaign.
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub next_open_at: Option<jiff::Timestamp>,
    /// Why a campaign is not dialling right now, if something holds it back: for a running
    /// one its account, its schedule; for a draft or a paused one, that it waits to be
    /// started or resumed.
    #[schema(required = true)]
    pub waiting_reason: Option<String>,
    /// Failure-rate alerts raised now for this campaign or its provider account (empty
    /// when none; see docs/api.md "Failure-rate alerts").
    pub alerts: Vec<dialtone_engine::alerts::Alert>,
    /// Pending contacts by what they wait for (`calling_hours`, `retry_delay`,
    /// `campaign_schedule`, `circuit_breaker`, `account_cap`, `campaign_cap`): each
    /// `{"count", "earliest", "latest"}`. In single-campaign responses, not in the list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<std::collections::BTreeMap<dialtone_store::WaitingFor, WaitingCount>>,
}

pub(super) async fn view(app: &AppState, campaign: Campaign) -> Result<CampaignView, ApiError> {
    let counts = app.store.campaign_counts(&campaign.id).await?;
    let waiting = steer::waiting_breakdown(app, &campaign, counts.active_calls).await?;
    let mut v = view_with(app, campaign, counts);
    v.waiting = Some(waiting);
    Ok(v)
}

pub(super) fn view_with(app: &AppState, campaign: Campaign, counts: CampaignCounts) -> CampaignView {
    let now = app.now();
    // A draft is not going to open by itself (a new user read "next open: now" on one).
    let next_open_at = match campaign.status {
        CampaignStatus::Draft | CampaignStatus::Completed | CampaignStatus::Canceled => None,
        _ => campaign.schedule.next_open(now),
    };
    let waiting_reason = if campaign.status == CampaignStatus::Draft {
        Some("a draft: nothing is dialled until it is started".to_string())
    } else if campaign.status == CampaignStatus::Paused {
        Some("paused: nothing is dialled until it is resumed".to_string())
    } else if !campaign.status.is_runnable() {
        None
    } else if let Some(why) = app.engine.account_waiting(&dialtone_engine::AccountKey::of_campaign(&campaign)) {
        Some(why)
    } else if next_open_at != Some(now) {
        Some(match next_open_at {
            Some(at) => format!("outside the campaign's calling windows; next open at {at}"),
            None => "the campaign's schedule never opens again".to_string(),
        })
    } else {
        None
    };
    let alerts = app.engine.alerts.for_campaign(campaign.id.as_str(), campaign.provider);
    CampaignView { campaign, counts, next_open_at, waiting_reason, alerts, waiting: None }
}

fn parse_id(id: &str) -> Result<CampaignId, ApiError> {
    CampaignId::parse(id).ok_or_else(|| ApiError::not_found("campaign"))
}

pub(super) async fn load(app: &AppState, ws: &WorkspaceId, id: &str) -> Result<Campaign, ApiError> {
    app.store.get_campaign(ws, &parse_id(id)?).await?.ok_or_else(|| ApiError::not_found("campaign"))
}

/// Creates a campaign (a draft: upload contacts, then start it).
#[utoipa::path(post, path = "/campaigns", tag = "campaigns", request_body = CreateCampaign,
    responses((status = 201, description = "The campaign, a draft; `Location` is its URL.", body = CampaignView,
            headers(("Location" = String, description = "`/api/v1/campaigns/{id}`"))),
        (status = 415, description = "The body is not `application/json`.", body = ErrorBody),
        (status = 422, description = "`agent_id` names no usable agent (`invalid_agent`), or `account_id` no usable account (`invalid_account`).", body = ErrorBody)))]
async fn create(
    State(app): State<Arc<AppState>>,
    Auth(ws): Auth,
    Json(body): Json<CreateCampaign>,
) -> Result<(StatusCode, [(header::HeaderName, String); 1], Json<CampaignView>), ApiError> {
    let (agent_id, account_id) = (body.agent_id.clone(), body.account_id.clone());
    let mut new = body.validate(ws.clone(), &app)?;
    new.agent_id = super::agents::check_agent_id(&app, &ws, agent_id.as_deref(), new.provider).await?;
    new.account_id = app.check_account(&ws, new.provider, account_id.as_deref(), "provider", new.agent_id.is_some()).await?;
    let campaign = app.store.create_campaign(new, app.now()).await?;
    remember_assistant(&app, &ws, &campaign).await?;
    let location = [(header::LOCATION, format!("/api/v1/campaigns/{}", campaign.id))];
    Ok((StatusCode::CREATED, location, Json(view(&app, campaign).await?)))
}

/// A campaign's (or batch's) assistant becomes known to the workspace (single calls may
/// use it), unless it is already.
pub(super) async fn remember_assistant(app: &AppState, ws: &WorkspaceId, campaign: &Campaign) -> Result<(), ApiError> {
    if app.store.get_assistant(ws, &campaign.assistant_id).await?.is_none() {
        let assistant =
            Assistant { id: campaign.assistant_id.clone(), provider: campaign.provider, phone_number_id: campaign.phone_number_id.clone(), name: None };
        app.store.upsert_assistant(ws, &assistant, app.now()).await?;
    }
    Ok(())
}

/// `GET /campaigns?archived=&limit=&before=`: newest first; archived campaigns only with
/// `archived=true`.
#[utoipa::path(get, path = "/campaigns", tag = "campaigns", params(steer::CampaignsQuery),
    responses((status = 200, description = "A page of campaigns, newest first (without `waiting`).", body = Paged<CampaignView>)))]
async fn list(State(app): State<Arc<AppState>>, Auth(ws): Auth, Query(q): Query<steer::CampaignsQuery>) -> Result<Json<Paged<CampaignView>>, ApiError> {
    let (campaigns, limit) = steer::campaigns_page(&app, &ws, q).await?;
    // The whole page's counts in one read, not one per campaign.
    let ids: Vec<_> = campaigns.iter().map(|c| c.id.clone()).collect();
    let mut counts = app.store.campaign_counts_many(&ids).await?;
    let views: Vec<CampaignView> = campaigns
        .into_iter()
        .map(|c| {
            let n = counts.remove(&c.id).unwrap_or_default();
            view_with(&app, c, n)
        })
        .collect();
    Ok(Json(paged(views, limit, |v| v.campaign.id.to_string())))
}

/// A campaign with its counts, `waiting` breakdown and alerts.
#[utoipa::path(get, path = "/campaigns/{id}", tag = "campaigns", params(("id" = String, Path, description = "The campaign id (`cmp_…`).")),
    responses((status = 200, description = "The campaign.", body = CampaignView)))]
async fn show(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<CampaignView>, ApiError> {
    let campaign = load(&app, &ws, &id).await?;
    Ok(Json(view(&app, campaign).await?))
}

/// `POST /campaigns/{id}/contacts`: a CSV (multipart `file` parts, or a `text/csv` body)
/// or a JSON array. All or nothing: every part is received and checked (header, quoting)
/// before the first row is stored, so a bad part, a broken upload or a 413 stores nothing;
/// bad rows are reported by line and the rest imported. CSV bodies are spooled to an
/// anonymous temporary file as they arrive and read back in chunks of [`CHUNK`] rows, so
/// memory stays flat whatever the size. At most `max_concurrent_imports` run at once (429).
#[utoipa::path(post, path = "/campaigns/{id}/contacts", tag = "campaigns", params(("id" = String, Path, description = "The campaign id (`cmp_…`).")),
    request_body(description = "A CSV with a header row and a phone column (`phone`, `number`, …; other columns become variables), \
        as `text/csv` or as `file` parts of `multipart/form-data`; or a JSON array of contacts (`{\"phone\", \"name\", \"timezone\", …variables}`).",
        content((String = "text/csv"), (import::ContactsUpload = "multipart/form-data"), (Vec<Object> = "application/json"))),
    responses((status = 200, description = "What was imported; bad rows by line with the reason.", body = ImportReport),
        (status = 413, description = "Over `max_upload_bytes`.", body = ErrorBody),
        (status = 415, description = "Not CSV, multipart or JSON.", body = ErrorBody),
        (status = 429, description = "Too many imports running (`too_many_imports`).", body = ErrorBody)))]
async fn import_contacts(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>, req: Request) -> Result<Json<ImportReport>, ApiError> {
    let campaign = load(&app, &ws, &id).await?;
    // Refused rather than queued: a waiting upload would hold its connection and body open.
    let _permit = app.imports.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_imports",
            "other contact imports are running (max_concurrent_imports); send this one again when they finish",
        )
    })?;
    let limit = app.max_upload_bytes;
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::too_large(limit));
    }
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let mut report = ImportReport::default();
    let extensions = import::dials_extensions(campaign.provider);
    if content_type.starts_with("application/json") {
        // JSON is parsed whole (it is one value); the size limit bounds it.
        let mut body = Vec::new();
        let mut stream = req.into_body().into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ApiError::body(&e))?;
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(ApiError::too_large(limit));
            }
            body.extend_from_slice(&chunk);
        }
        // Not `from_json`: a row holding a NUL is a bad row here (`import::json_row`), not a
        // refused upload; broken JSON is worded as for every body.
        let value: serde_json::Value =
            serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&body)).map_err(|e| super::error::json_data_error(&e))?;
        drop(body);
        let rows = import::from_json(&value, &campaign.default_region, &campaign.schedule.timezone, extensions, &mut report)
            .map_err(|e| ApiError::invalid("body", e))?;
        for chunk in rows.chunks(CHUNK) {
            insert(&app, &campaign, chunk, &mut report).await?;
        }
    } else if content_type.starts_with("multipart/form-data") {
        let mut multipart = Multipart::from_request(req, &()).await.map_err(|e| ApiError::invalid("body", e.body_text()))?;
        let mut files = vec![];
        let mut total = 0u64;
        while let Some(mut field) = multipart.next_field().await.map_err(|e| multipart_error(e, limit))? {
            let mut spool = (field.name() == Some("file")).then(Spool::new).transpose()?;
            while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, limit))? {
                total += chunk.len() as u64;
                if total > limit {
                    return Err(ApiError::too_large(limit));
                }
                if let Some(spool) = &mut spool {
                    spool.write(&chunk).await?;
                }
            }
            files.extend(spool);
        }
        if files.is_empty() {
            return Err(ApiError::invalid("file", "multipart upload needs a `file` field holding the CSV"));
        }
        import_csv(&app, &campaign, files, &mut report).await?;
    } else if content_type.starts_with("text/csv") || content_type.starts_with("text/plain") {
        let mut spool = Spool::new()?;
        let mut stream = req.into_body().into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ApiError::body(&e))?;
            if spool.len + chunk.len() as u64 > limit {
                return Err(ApiError::too_large(limit));
            }
            spool.write(&chunk).await?;
        }
        import_csv(&app, &campaign, vec![spool], &mut report).await?;
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send contacts as multipart/form-data (field `file`), text/csv, or a JSON array",
        ));
    }
    tracing::info!(campaign_id = %campaign.id, imported = report.imported, rejected = report.rejected_count, "contacts imported");
    app.engine.wake_everywhere();
    Ok(Json(report))
}

/// A multipart error: 413 when the body ran past a limit, else 400 naming the `file` field.
fn multipart_error(e: axum::extract::multipart::MultipartError, limit: u64) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::too_large(limit);
    }
    // A body that stopped arriving is the client's pause, not a bad file: 408, as elsewhere.
    let by_body = ApiError::body(&e);
    if by_body.status == StatusCode::REQUEST_TIMEOUT {
        return by_body;
    }
    ApiError::invalid("file", e.body_text())
}

/// One uploaded CSV as it arrives: an anonymous temporary file (deleted when dropped, even
/// if the process dies), so an upload costs disk, not memory.
struct Spool {
    file: tokio::fs::File,
    len: u64,
}

impl Spool {
    fn new() -> Result<Self, ApiError> {
        let file = tempfile::tempfile().map_err(ApiError::internal)?;
        Ok(Self { file: tokio::fs::File::from_std(file), len: 0 })
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ApiError> {
        use tokio::io::AsyncWriteExt;
        self.file.write_all(bytes).await.map_err(ApiError::internal)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// The file, flushed and rewound for reading.
    async fn into_file(mut self) -> Result<std::fs::File, ApiError> {
        use tokio::io::AsyncWriteExt;
        self.file.flush().await.map_err(ApiError::internal)?;
        let mut file = self.file.into_std().await;
        std::io::Seek::rewind(&mut file).map_err(ApiError::internal)?;
        Ok(file)
    }
}

/// A refused CSV part: 400 naming the `file` field, with the part (1-based), the line of
/// a quoting fault, or the headers seen and the names accepted.
fn csv_error(e: import::ImportError, part: usize) -> ApiError {
    use import::ImportError;
    let mut details = serde_json::json!({ "field": "file", "part": part });
    match &e {
        ImportError::Io(_) => return ApiError::internal(e),
        ImportError::NoPhoneColumn { seen } => {
            details["headers_seen"] = serde_json::json!(seen);
            details["accepted"] = serde_json::json!(import::PHONE_COLUMNS);
        }
        _ => {}
    }
    if let Some(line) = e.line() {
        details["line"] = line.into();
    }
    ApiError::invalid("file", e).with_details(details)
}

type Rows = CsvContacts<std::io::BufReader<std::fs::File>>;

fn open_rows(file: std::fs::File, campaign: &Campaign, part: usize) -> Result<Rows, ApiError> {
    let rows = CsvContacts::new(std::io::BufReader::new(file), &campaign.default_region, &campaign.schedule.timezone).map_err(|e| csv_error(e, part))?;
    Ok(if import::dials_extensions(campaign.provider) { rows } else { rows.refuse_extensions() })
}

/// Checks every part, then imports them: nothing is stored unless every part reads.
async fn import_csv(app: &AppState, campaign: &Campaign, spools: Vec<Spool>, report: &mut ImportReport) -> Result<(), ApiError> {
    let mut files = Vec::with_capacity(spools.len());
    for spool in spools {
        files.push(spool.into_file().await?);
    }
    // File reads and parsing block: they run on the blocking pool, a chunk at a time.
    let checking = campaign.clone();
    let files = tokio::task::spawn_blocking(move || -> Result<Vec<std::fs::File>, ApiError> {
        let mut checked = Vec::with_capacity(files.len());
        for (i, file) in files.into_iter().enumerate() {
            let again = file.try_clone().map_err(ApiError::internal)?;
            open_rows(file, &checking, i + 1)?.scan().map_err(|e| csv_error(e, i + 1))?;
            let mut again = again;
            std::io::Seek::rewind(&mut again).map_err(ApiError::internal)?;
            checked.push(again);
        }
        Ok(checked)
    })
    .await
    .map_err(ApiError::internal)??;
    for (i, file) in files.into_iter().enumerate() {
        let mut rows = open_rows(file, campaign, i + 1)?;
        let mut taken = std::mem::take(report);
        taken.next_file();
        loop {
            let (back, mut rep, chunk) = tokio::task::spawn_blocking(move || {
                let chunk = rows.next_chunk(CHUNK, &mut taken);
                (rows, taken, chunk)
            })
            .await
            .map_err(ApiError::internal)?;
            rows = back;
            let chunk = chunk.map_err(|e| csv_error(e, i + 1))?;
            let Some(chunk) = chunk else {
                *report = rep;
                break;
            };
            insert(app, campaign, &chunk, &mut rep).await?;
            taken = rep;
        }
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
    // Whatever its mode: every call it placed would fail for want of an account.
    if to.is_runnable() && from.contains(&campaign.status) {
        let account_id = campaign.account_id.as_ref().map(|a| a.as_str());
        app.check_account(ws, campaign.provider, account_id, "provider", campaign.agent_id.is_some()).await?;
    }
    if !app.store.transition_campaign(ws, &campaign.id, from, to, app.now()).await? {
        return Err(
            ApiError::conflict(format!("cannot {verb} a campaign that is {}", campaign.status)).with_details(serde_json::json!({ "status": campaign.status }))
        );
    }
    app.engine.wake_everywhere();
    Ok(Json(view(app, load(app, ws, id).await?).await?))
}

/// Starts a draft campaign.
#[utoipa::path(post, path = "/campaigns/{id}/start", tag = "campaigns", params(("id" = String, Path, description = "The campaign id (`cmp_…`).")),
    responses((status = 200, description = "The campaign, starting.", body = CampaignView), (status = 409, description = "Not a draft.", body = ErrorBody)))]
async fn start(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<CampaignView>, ApiError> {
    act(&app, &ws, &id, &[CampaignStatus::Draft], CampaignStatus::Starting, "start").await
}

/// Pauses a running campaign: no new calls; live calls go on.
#[utoipa::path(post, path = "/campaigns/{id}/pause", tag = "campaigns", params(("id" = String, Path, description = "The campaign id (`cmp_…`).")),
    responses((status = 200, description = "The campaign, paused.", body = CampaignView), (status = 409, description = "Not running.", body = ErrorBody)))]
async fn pause(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<CampaignView>, ApiError> {
    act(&app, &ws, &id, &[CampaignStatus::Starting, CampaignStatus::Dialing], CampaignStatus::Paused, "pause").await
}

/// Resumes a paused campaign.
#[utoipa::path(post, path = "/campaigns/{id}/resume", tag = "campaigns", params(("id" = String, Path, description = "The campaign id (`cmp_…`).")),
    responses((status = 200, description = "The campaign, dialing again.", body = CampaignView), (status = 409, description = "Not paused.", body = ErrorBody)))]
async fn resume(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<CampaignView>, ApiError> {
    let campaign = load(&app, &ws, &id).await?;
    let to = CampaignStatus::resumed(campaign.started_at.is_some());
    act(&app, &ws, &id, &[CampaignStatus::Paused], to, "resume").await
}

/// Cancels a campaign: its pending contacts are not called.
#[utoipa::path(post, path = "/campaigns/{id}/cancel", tag = "campaigns", params(("id" = String, Path, description = "The campaign id (`cmp_…`).")),
    responses((status = 200, description = "The campaign, canceled.", body = CampaignView), (status = 409, description = "Already over.", body = ErrorBody)))]
async fn cancel(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<CampaignView>, ApiError> {
    let campaign = load(&app, &ws, &id).await?;
    if !app.store.cancel_campaign(&ws, &campaign.id, app.now()).await? {
        return Err(ApiError::conflict(format!("cannot cancel a campaign that is {}", campaign.status)));
    }
    Ok(Json(view(&app, load(&app, &ws, &id).await?).await?))
}
