//! `/api/v1/batches`: many calls in one request. A batch is a campaign underneath (its
//! `batch` flag set): caps, calling hours, retries and do-not-call lists apply as to any
//! campaign, and it starts at once (or at `start_at`). Its id is its campaign's (`cmp_…`),
//! so `/campaigns/{id}` routes (pause, resume, export) work on it too; batches are left out
//! of `GET /campaigns` and listed by `GET /batches`.
//!
//! All or nothing: one bad item (unreadable number, bad zone, a number twice) refuses the
//! whole batch with 422 `invalid_calls` listing every bad item by its 1-based position in
//! `calls` (`line`, as a JSON contact import numbers its rows) and reason, and nothing is
//! stored; the user fixes those items and sends the batch again.
//!
//! A batch whose `start_at` is still ahead shows status `scheduled` (its campaign is
//! `starting`, with every call due at `start_at`) and echoes `start_at`.

use super::calls::{read_query, ListQuery};
use super::campaigns::{remember_assistant, CreateCampaign};
use super::openapi::ErrorBody;
use super::Path;
use super::{paged, ApiError, Auth, Json, PageQuery, Paged, Query};
use crate::app::AppState;
use crate::import;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use dialtone_core::schedule::{LocalHours, Schedule};
use dialtone_core::{CampaignId, CampaignStatus, ContactStatus, RetryPolicy, WorkspaceId};
use dialtone_store::{Call, Campaign, CampaignCounts, NewContact};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

/// Most calls one batch may carry (issue 13); more is 422 `too_many_calls`.
pub const MAX_CALLS: usize = 10_000;

/// The largest `POST /batches` body: 16 MiB, room for 10,000 calls of ~1.6 KiB each
/// (variables included); other JSON routes keep axum's 2 MiB. Over it: 413 `payload_too_large`.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes({
            let (limit, said) = super::error::BodyLimit::layers(MAX_BODY_BYTES);
            routes!(create, list).layer::<_, std::convert::Infallible>(limit).layer::<_, std::convert::Infallible>(said)
        })
        .routes(routes!(show))
        .routes(routes!(calls))
        .routes(routes!(cancel))
}

/// The body of `POST /batches`: the calls, and the settings a campaign takes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Reminders 1 Dec", "provider": "sim", "assistant_id": "asst_reminders", "phone_number_id": "pn_main",
    "max_concurrent": 10, "calls": [{"phone": "+14155550100", "name": "Ada", "variables": {"due": "2026-12-03"}}, {"phone": "+14155550101"}]}))]
pub struct CreateBatch {
    /// Default: `Batch of N calls`.
    #[schema(min_length = 1)]
    pub name: Option<String>,
    /// One of [`dialtone_core::ProviderKind::ALL`] that this server has an account for.
    #[schema(value_type = dialtone_core::ProviderKind)]
    pub provider: String,
    /// As for a campaign: required without `agent_id`.
    #[schema(min_length = 1)]
    pub assistant_id: Option<String>,
    /// As for a campaign: required unless `caller_numbers` is given.
    #[schema(min_length = 1)]
    pub phone_number_id: Option<String>,
    /// A caller-ID pool, as for a campaign.
    #[schema(max_items = 1000)]
    pub caller_numbers: Option<Vec<String>>,
    /// `round_robin` (default), `least_used` or `local_presence`.
    #[schema(value_type = Option<dialtone_core::CallerStrategy>)]
    pub caller_number_strategy: Option<String>,
    /// `round_robin` (default) or `least_used`.
    #[schema(value_type = Option<dialtone_core::CallerStrategy>)]
    pub fallback_strategy: Option<String>,
    /// The batch's throttle: at most this many calls placed per rolling minute (60 s),
    /// 1–10,000; the dispatcher holds the rest back. Default: none (only `max_concurrent`).
    #[schema(minimum = 1, maximum = 10_000)]
    pub calls_per_minute: Option<u32>,
    /// An agent of this workspace (`agt_…`); Exotel and Twilio only.
    pub agent_id: Option<String>,
    /// One of the workspace's own provider accounts (`pa_…`) of `provider`, as for a
    /// campaign. Default: the server's configured account of `provider`.
    pub account_id: Option<String>,
    /// Calls of this batch live at once, 1–1000 (default 8).
    #[schema(minimum = 1, maximum = 1000)]
    pub max_concurrent: Option<u32>,
    /// Attempts per call, 1–100 (default 3).
    #[schema(minimum = 1, maximum = 100)]
    pub max_attempts: Option<u32>,
    /// Retry rules per outcome; missing fields keep their defaults.
    pub retry: Option<RetryPolicy>,
    /// ISO 3166 region for numbers written without a country code (default `US`).
    pub default_region: Option<String>,
    /// When the batch may dial (the campaign schedule: zone, windows, dates). Default: always.
    pub schedule: Option<Schedule>,
    /// Each callee's own calling hours, in the callee's zone. Default 08:00–21:00.
    pub calling_hours: Option<LocalHours>,
    /// Seconds a call may stay live (1–86,400); default: the server's.
    #[schema(minimum = 1, maximum = 86_400)]
    pub max_call_duration_secs: Option<u32>,
    /// No call before this instant (RFC 3339); default (or a past instant): at once.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(default, deserialize_with = "super::instant::optional")]
    pub start_at: Option<jiff::Timestamp>,
    /// 1 to 10,000 calls, each `{"phone", "name"?, "timezone"?, "extension"?, "variables"?}`
    /// (other keys become variables too), as a contact import reads a JSON row.
    #[schema(value_type = Vec<BatchCall>, min_items = 1, max_items = 10_000)]
    pub calls: Vec<serde_json::Value>,
}

/// One call of a batch (documentation of the item shape; items are read as contact rows).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct BatchCall {
    /// E.164, or national in `default_region`.
    phone: String,
    name: Option<String>,
    /// IANA zone the callee's calling hours are judged in; default: found from the number.
    timezone: Option<String>,
    /// Digits dialled once the call connects (Twilio and Exotel).
    extension: Option<String>,
    /// Passed to the assistant with the call.
    #[schema(value_type = Option<Object>)]
    variables: Option<serde_json::Value>,
}

/// A refused item of a batch: its 1-based position in `calls` (`line`, as a JSON contact
/// import reports rows) and why. Wherever the API's text names an item (a reason, the
/// error's message) it says `item N`, N being that item's `line`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BadCall {
    /// 1 for the first item of `calls`.
    pub line: usize,
    pub reason: String,
    /// A number called twice: the `line` of the item that has it first (the reason says
    /// `is also item N`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<usize>,
}

/// How far a batch is: contacts (one per call item) finished out of all.
#[derive(Debug, Serialize, ToSchema)]
pub struct Progress {
    /// Calls the batch was given.
    pub total: u64,
    /// Of them, finished: done, exhausted, dnc, invalid or canceled.
    pub finished: u64,
    /// Still pending or in a call.
    pub remaining: u64,
    /// `finished / total × 100`, one decimal.
    pub percent_done: f64,
}

/// A batch: its campaign's fields (`id`, `name`, `status`, `created_at`, `started_at`,
/// `start_at`, …), `finished_at`, counts by status and outcome, and progress. `status` is
/// the campaign's, except `scheduled` while `start_at` is ahead and no call was placed.
#[derive(Debug)]
pub struct BatchView {
    pub campaign: Campaign,
    pub batch: BatchFields,
}

/// What a batch shows beyond its campaign's fields (its `status` replaces the campaign's).
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchFields {
    /// `scheduled` while `start_at` is ahead and no call was placed; else the campaign's
    /// status (`starting`, `dialing`, `paused`, `completed`, `canceled`).
    pub status: BatchStatus,
    /// When it completed or was canceled; null while it runs.
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub finished_at: Option<jiff::Timestamp>,
    /// `contacts` by status, `calls` by status, `outcomes` of ended calls, `active_calls`.
    pub counts: CampaignCounts,
    pub progress: Progress,
}

impl utoipa::PartialSchema for BatchView {
    /// The campaign's schema, its `status` replaced and the batch's fields added.
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::Schema;
        use utoipa::openapi::RefOr;
        let (RefOr::T(Schema::Object(mut object)), RefOr::T(Schema::Object(extra))) = (Campaign::schema(), BatchFields::schema()) else {
            unreachable!("derived struct schemas are objects")
        };
        for (name, schema) in extra.properties {
            object.properties.insert(name, schema);
        }
        for name in extra.required {
            if !object.required.contains(&name) {
                object.required.push(name);
            }
        }
        object.description =
            Some("A batch: its campaign's fields, `status` (`scheduled` while `start_at` is ahead), `finished_at`, counts and progress.".into());
        RefOr::T(Schema::Object(object))
    }
}

impl ToSchema for BatchView {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        <Campaign as ToSchema>::schemas(schemas);
        <BatchFields as ToSchema>::schemas(schemas);
    }
}

/// What `status` a batch shows: its campaign's, or `scheduled` (see [`BatchFields`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    Scheduled,
    Starting,
    Dialing,
    Paused,
    Completed,
    Canceled,
}

impl BatchStatus {
    /// `scheduled` while `start_at` is after `now` and no call was placed; else the campaign's.
    fn of(c: &Campaign, now: jiff::Timestamp) -> Self {
        match c.status {
            CampaignStatus::Starting if c.started_at.is_none() && c.start_at.is_some_and(|at| at > now) => Self::Scheduled,
            // A batch is never a draft (it starts when made); shown as starting if it were.
            CampaignStatus::Draft | CampaignStatus::Starting => Self::Starting,
            CampaignStatus::Dialing => Self::Dialing,
            CampaignStatus::Paused => Self::Paused,
            CampaignStatus::Completed => Self::Completed,
            CampaignStatus::Canceled => Self::Canceled,
        }
    }
}

impl Serialize for BatchView {
    /// The campaign's fields and the batch's in one object, the batch's `status` replacing
    /// the campaign's.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut v = serde_json::to_value(&self.campaign).map_err(S::Error::custom)?;
        let serde_json::Value::Object(extra) = serde_json::to_value(&self.batch).map_err(S::Error::custom)? else {
            return Err(S::Error::custom("batch fields serialize to an object"));
        };
        let map = v.as_object_mut().ok_or_else(|| S::Error::custom("a campaign serializes to an object"))?;
        map.extend(extra);
        v.serialize(s)
    }
}

fn view(campaign: Campaign, counts: CampaignCounts, now: jiff::Timestamp) -> BatchView {
    let status = BatchStatus::of(&campaign, now);
    let total: u64 = counts.contacts.values().sum();
    let finished: u64 = counts.contacts.iter().filter(|(s, _)| s.parse::<ContactStatus>().is_ok_and(|s| s.is_finished())).map(|(_, n)| n).sum();
    let percent_done = if total == 0 { 0.0 } else { (finished as f64 * 1000.0 / total as f64).round() / 10.0 };
    let progress = Progress { total, finished, remaining: total - finished, percent_done };
    BatchView { batch: BatchFields { status, finished_at: campaign.completed_at, counts, progress }, campaign }
}

async fn load(app: &AppState, ws: &WorkspaceId, id: &str) -> Result<Campaign, ApiError> {
    let id = CampaignId::parse(id).ok_or_else(|| ApiError::not_found("batch"))?;
    app.store.get_campaign(ws, &id).await?.filter(|c| c.batch).ok_or_else(|| ApiError::not_found("batch"))
}

async fn show_view(app: &AppState, campaign: Campaign) -> Result<BatchView, ApiError> {
    let counts = app.store.campaign_counts(&campaign.id).await?;
    Ok(view(campaign, counts, app.now()))
}

/// Reads every item; all the bad ones are reported, by 1-based position, or the contacts returned.
fn read_calls(items: &[serde_json::Value], region: &str, zone: &str, extensions: bool) -> Result<Vec<NewContact>, Vec<BadCall>> {
    let mut good = Vec::with_capacity(items.len());
    let mut bad = vec![];
    let mut first: HashMap<(String, Option<String>), usize> = HashMap::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let line = index + 1;
        match import::json_row(item, region, zone, extensions, line as u64) {
            Ok(c) => {
                let key = (c.phone.as_str().to_string(), c.extension.as_ref().map(|e| e.to_string()));
                if let Some(earlier) = first.get(&key) {
                    bad.push(BadCall {
                        line,
                        reason: format!("{} is also item {earlier}: a batch calls each number once", c.phone),
                        duplicate_of: Some(*earlier),
                    });
                } else {
                    first.insert(key, line);
                    good.push(c);
                }
            }
            Err(reason) => bad.push(BadCall { line, reason, duplicate_of: None }),
        }
    }
    if bad.is_empty() {
        Ok(good)
    } else {
        Err(bad)
    }
}

/// Creates a batch and starts it (its calls are due at once, or at `start_at`).
///
/// Errors: 422 `too_many_calls` over [`MAX_CALLS`]; 422 `invalid_calls` with
/// `details.items = [{"line", "reason"}]` (`line`: 1-based position in `calls`) for every
/// bad item (nothing is created); 400
/// naming a bad setting, as `POST /campaigns`.
#[utoipa::path(post, path = "/batches", tag = "batches", request_body = CreateBatch,
    responses((status = 202, description = "The batch, accepted and starting; `Location` is its URL.", body = BatchView,
            headers(("Location" = String, description = "`/api/v1/batches/{id}`"))),
        (status = 413, description = "The body is over 16 MiB (`MAX_BODY_BYTES`).", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = ErrorBody),
        (status = 422, description = "Over 10,000 calls (`too_many_calls`), bad items (`invalid_calls`, each by its 1-based `line` in `calls`), or a bad `agent_id`.", body = ErrorBody)))]
async fn create(State(app): State<Arc<AppState>>, Auth(ws): Auth, Json(body): Json<CreateBatch>) -> Result<(StatusCode, HeaderMap, Json<BatchView>), ApiError> {
    let count = body.calls.len();
    if count > MAX_CALLS {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_calls",
            format!("calls: {count} calls; a batch takes at most {MAX_CALLS} (send several batches)"),
        )
        .with_details(json!({ "field": "calls", "limit": MAX_CALLS, "count": count })));
    }
    if count == 0 {
        return Err(ApiError::invalid("calls", "must hold at least one call"));
    }
    let (agent_id, account_id) = (body.agent_id.clone(), body.account_id.clone());
    let settings = CreateCampaign {
        name: body.name.unwrap_or_else(|| format!("Batch of {count} calls")),
        provider: body.provider,
        assistant_id: body.assistant_id,
        phone_number_id: body.phone_number_id,
        caller_numbers: body.caller_numbers,
        caller_number_strategy: body.caller_number_strategy,
        fallback_strategy: body.fallback_strategy,
        calls_per_minute: body.calls_per_minute,
        mode: None,
        max_concurrent: body.max_concurrent,
        max_attempts: body.max_attempts,
        default_region: body.default_region,
        retry: body.retry,
        schedule: body.schedule,
        calling_hours: body.calling_hours,
        recurrence: None,
        max_call_duration_secs: body.max_call_duration_secs,
        assume_campaign_timezone_for_ambiguous: false,
        agent_id: body.agent_id,
        account_id: body.account_id,
    };
    let mut new = settings.validate(ws.clone(), &app)?;
    new.agent_id = super::agents::check_agent_id(&app, &ws, agent_id.as_deref(), new.provider).await?;
    // It starts at once: refused now, as a start would be, if no call could be placed.
    new.account_id = app.check_account(&ws, new.provider, account_id.as_deref(), "provider", new.agent_id.is_some()).await?;
    let contacts = read_calls(&body.calls, &new.default_region, &new.schedule.timezone, import::dials_extensions(new.provider)).map_err(|bad| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_calls",
            format!("calls: {} of {count} calls are invalid (first: item {}: {}); nothing was created", bad.len(), bad[0].line, bad[0].reason),
        )
        .with_details(json!({ "field": "calls", "items": bad }))
    })?;
    let now = app.now();
    let campaign = app.store.create_batch(new, &contacts, body.start_at, now).await?;
    remember_assistant(&app, &ws, &campaign).await?;
    tracing::info!(campaign_id = %campaign.id, calls = count, "batch created");
    app.engine.wake_everywhere();
    let mut headers = HeaderMap::new();
    let location = format!("/api/v1/batches/{}", campaign.id);
    headers.insert(header::LOCATION, HeaderValue::from_str(&location).map_err(ApiError::internal)?);
    Ok((StatusCode::ACCEPTED, headers, Json(show_view(&app, campaign).await?)))
}

/// `GET /batches?limit=&before=`: newest first, with counts and progress.
#[utoipa::path(get, path = "/batches", tag = "batches", params(PageQuery),
    responses((status = 200, description = "A page of batches, newest first.", body = Paged<BatchView>)))]
async fn list(State(app): State<Arc<AppState>>, Auth(ws): Auth, Query(q): Query<PageQuery>) -> Result<Json<Paged<BatchView>>, ApiError> {
    let page = q.page(|c| CampaignId::parse(c).is_some())?;
    let batches = app.store.list_batches(&ws, &page).await?;
    let ids: Vec<_> = batches.iter().map(|c| c.id.clone()).collect();
    let mut counts = app.store.campaign_counts_many(&ids).await?;
    let now = app.now();
    let views: Vec<BatchView> = batches
        .into_iter()
        .map(|c| {
            let n = counts.remove(&c.id).unwrap_or_default();
            view(c, n, now)
        })
        .collect();
    Ok(Json(paged(views, page.limit, |v| v.campaign.id.to_string())))
}

/// A batch's progress: counts by status and outcome, percent done, created, started, finished.
#[utoipa::path(get, path = "/batches/{id}", tag = "batches", params(("id" = String, Path, description = "The batch id (its campaign's, `cmp_…`).")),
    responses((status = 200, description = "The batch.", body = BatchView)))]
async fn show(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<BatchView>, ApiError> {
    let campaign = load(&app, &ws, &id).await?;
    Ok(Json(show_view(&app, campaign).await?))
}

/// `?contact_id=&status=&outcome=&phone=&created_from=&created_to=&ended_from=&ended_to=&sort=&limit=&before=`,
/// as on `GET /calls`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct CallsQuery {
    /// Only this contact's calls (`ct_…`).
    contact_id: Option<String>,
    /// One or more call statuses, comma-separated.
    #[param(example = "queued,dialing")]
    status: Option<String>,
    /// One or more outcomes, comma-separated.
    #[param(example = "no_answer,busy")]
    outcome: Option<String>,
    /// Only calls to this number (E.164; national numbers are read as US).
    phone: Option<String>,
    /// Items per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// The previous page's `next_cursor`.
    before: Option<String>,
    /// Calls created at or after this instant (RFC 3339).
    #[param(format = DateTime)]
    created_from: Option<String>,
    /// Calls created before this instant (RFC 3339).
    #[param(format = DateTime)]
    created_to: Option<String>,
    /// Calls that ended at or after this instant (RFC 3339).
    #[param(format = DateTime)]
    ended_from: Option<String>,
    /// Calls that ended before this instant (RFC 3339).
    #[param(format = DateTime)]
    ended_to: Option<String>,
    /// `-created_at` (newest first, the default) or `created_at` (oldest first).
    #[param(pattern = "^-?created_at$")]
    sort: Option<String>,
}

/// The batch's calls (every attempt), filtered and paged as `GET /calls`.
#[utoipa::path(get, path = "/batches/{id}/calls", tag = "batches", params(("id" = String, Path, description = "The batch id (`cmp_…`)."), CallsQuery),
    responses((status = 200, description = "A page of the batch's calls.", body = Paged<Call>)))]
async fn calls(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>, Query(q): Query<CallsQuery>) -> Result<Json<Paged<Call>>, ApiError> {
    let campaign = load(&app, &ws, &id).await?;
    let (mut filter, page) = read_query(ListQuery {
        campaign_id: None,
        contact_id: q.contact_id,
        status: q.status,
        outcome: q.outcome,
        phone: q.phone,
        limit: q.limit,
        before: q.before,
        created_from: q.created_from,
        created_to: q.created_to,
        ended_from: q.ended_from,
        ended_to: q.ended_to,
        sort: q.sort,
    })?;
    filter.campaign_id = Some(campaign.id);
    let calls = app.store.list_calls(&ws, &filter, &page).await?;
    Ok(Json(paged(calls, page.limit, |c: &Call| c.id.to_string())))
}

/// Cancels a batch: calls not yet placed are not placed (its pending contacts and
/// scheduled calls end as canceled); live calls finish and are recorded.
#[utoipa::path(post, path = "/batches/{id}/cancel", tag = "batches", params(("id" = String, Path, description = "The batch id (`cmp_…`).")),
    responses((status = 200, description = "The batch, canceled.", body = BatchView), (status = 409, description = "Already completed or canceled.", body = ErrorBody)))]
async fn cancel(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<BatchView>, ApiError> {
    let campaign = load(&app, &ws, &id).await?;
    if !app.store.cancel_campaign(&ws, &campaign.id, app.now()).await? {
        return Err(ApiError::conflict(format!("cannot cancel a batch that is {}", campaign.status)).with_details(json!({ "status": campaign.status })));
    }
    let campaign = load(&app, &ws, &id).await?;
    Ok(Json(show_view(&app, campaign).await?))
}
