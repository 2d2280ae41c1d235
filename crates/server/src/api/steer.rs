//! Steering a campaign (issue 11): its contacts filtered and searched, each with what it
//! waits for; the campaign's `waiting` breakdown; `PATCH` and archive (`DELETE`); and the
//! streamed CSV export. Routes are mounted by `campaigns::router`.

use super::openapi::ErrorBody;
use super::{paged, ApiError, Auth, Json, PageQuery, Paged, Path, Query};
use crate::app::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use dialtone_core::frequency::Recurrence;
use dialtone_core::schedule::{LocalHours, Schedule};
use dialtone_core::{CampaignId, ContactId, ContactStatus, Mode, RetryPolicy, WorkspaceId};
use dialtone_store::{waiting_for, Archived, Campaign, CampaignHold, CampaignPatch, Contact, ContactFilter, PendingGroup, WaitingFor};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

use super::campaigns::{load, view, CampaignView};

/// What holds every due contact of `campaign` back now, judged in this order: not running
/// (nothing: the campaign's status says it), its schedule closed (until it opens), the
/// provider account's circuit breaker or capacity cool-down (until it ends), its own cap
/// (`active_calls` ≥ `max_concurrent`, or one in batch mode; until unknown).
pub fn campaign_hold(app: &AppState, campaign: &Campaign, active_calls: u64) -> Option<CampaignHold> {
    let now = app.now();
    if !campaign.status.is_runnable() {
        return None;
    }
    let next_open = campaign.schedule.next_open(now);
    if next_open != Some(now) {
        return Some(CampaignHold { reason: WaitingFor::CampaignSchedule, until: next_open });
    }
    if let Some((breaker, until)) = app.engine.account_hold(&dialtone_engine::AccountKey::of_campaign(campaign)) {
        let reason = if breaker { WaitingFor::CircuitBreaker } else { WaitingFor::AccountCap };
        return Some(CampaignHold { reason, until: Some(until) });
    }
    let cap = if campaign.mode == Mode::Batch { 1 } else { u64::from(campaign.max_concurrent) };
    (active_calls >= cap).then_some(CampaignHold { reason: WaitingFor::CampaignCap, until: None })
}

/// One line of a campaign's `waiting` breakdown: how many pending contacts wait for this,
/// and the earliest and latest moment they are due (`null` when not known).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq, ToSchema)]
pub struct WaitingCount {
    pub count: u64,
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub earliest: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub latest: Option<Timestamp>,
}

impl WaitingCount {
    fn add(&mut self, count: u64, earliest: Option<Timestamp>, latest: Option<Timestamp>) {
        self.count += count;
        self.earliest = match (self.earliest, earliest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.latest = match (self.latest, latest) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// The `waiting` breakdown from a campaign's pending groups: the same rules as each
/// contact's `waiting_for` ([`waiting_for`]), applied to groups. Only reasons with a
/// contact appear; due contacts held by nothing are not waiting and are not counted.
pub fn breakdown(groups: &[PendingGroup], hold: Option<CampaignHold>) -> BTreeMap<WaitingFor, WaitingCount> {
    let mut out: BTreeMap<WaitingFor, WaitingCount> = BTreeMap::new();
    for g in groups {
        match g.wait_reason.as_deref() {
            // No moment will do: counted, but with no time to show.
            Some("no_common_hours") | Some("hours_outside_schedule") => out.entry(WaitingFor::CallingHours).or_default().add(g.count, None, None),
            // Until the next UTC midnight, when the numbers' daily counts start again.
            Some("caller_number_limit") => out.entry(WaitingFor::CallerNumberLimit).or_default().add(g.count, Some(g.earliest), Some(g.latest)),
            Some(_) => out.entry(WaitingFor::CallingHours).or_default().add(g.count, Some(g.earliest), Some(g.latest)),
            None if g.later => {
                let why = if g.retried { WaitingFor::RetryDelay } else { WaitingFor::CampaignSchedule };
                out.entry(why).or_default().add(g.count, Some(g.earliest), Some(g.latest));
            }
            None => {
                if let Some(h) = hold {
                    out.entry(h.reason).or_default().add(g.count, h.until, h.until);
                }
            }
        }
    }
    out
}

/// The campaign's `waiting` breakdown now (one grouped read of its pending contacts).
pub async fn waiting_breakdown(app: &AppState, campaign: &Campaign, active_calls: u64) -> Result<BTreeMap<WaitingFor, WaitingCount>, ApiError> {
    let groups = app.store.pending_groups(&campaign.id, app.now()).await?;
    Ok(breakdown(&groups, campaign_hold(app, campaign, active_calls)))
}

/// `?status=&q=&limit=&before=` on `GET /campaigns/{id}/contacts`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ContactsQuery {
    /// One status or several, comma-separated (`pending,in_call`).
    status: Option<String>,
    /// Searches the number (its digits, anywhere in the E.164 form) or the name.
    q: Option<String>,
    /// Items per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// The previous page's `next_cursor`.
    before: Option<String>,
}

/// A contact as `GET /campaigns/{id}/contacts` lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactView {
    #[serde(flatten)]
    pub contact: Contact,
    /// What the contact waits for now, or `null` (not pending, or due and next in line).
    #[schema(required = true)]
    pub waiting_for: Option<WaitingFor>,
    /// Until when it waits, when known.
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub until: Option<Timestamp>,
}

/// Reads `status=a,b`: each a contact status. 400 naming `status` otherwise.
fn statuses(text: &str) -> Result<Vec<ContactStatus>, ApiError> {
    let mut out = vec![];
    for s in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let status: ContactStatus = s.parse().map_err(|e| ApiError::invalid_query("status", e))?;
        if !out.contains(&status) {
            out.push(status);
        }
    }
    if out.is_empty() {
        return Err(ApiError::invalid_query("status", "give one status or several, comma-separated"));
    }
    Ok(out)
}

/// `GET /campaigns/{id}/contacts`: the campaign's contacts, newest first, filtered by
/// `status` and `q`, each with `waiting_for` and `until`.
#[utoipa::path(get, path = "/campaigns/{id}/contacts", tag = "campaigns", params(("id" = String, Path, description = "The campaign id."), ContactsQuery),
    responses((status = 200, description = "A page of contacts, newest first.", body = Paged<ContactView>)))]
pub async fn list_contacts(
    State(app): State<Arc<AppState>>,
    Auth(ws): Auth,
    Path(id): Path<String>,
    Query(q): Query<ContactsQuery>,
) -> Result<Json<Paged<ContactView>>, ApiError> {
    let page = PageQuery { limit: q.limit, before: q.before }.page(|c| ContactId::parse(c).is_some())?;
    let mut filter = ContactFilter { statuses: q.status.as_deref().map(statuses).transpose()?.unwrap_or_default(), ..Default::default() };
    if let Some(text) = &q.q {
        if text.chars().count() > 200 {
            return Err(ApiError::invalid_query("q", "at most 200 characters"));
        }
        (filter.phone_digits, filter.name) = ContactFilter::search(text);
    }
    let campaign = load(&app, &ws, &id).await?;
    let contacts = app.store.list_contacts_filtered(&ws, &campaign.id, &filter, &page).await?;
    let hold = if contacts.iter().any(|c| c.status == ContactStatus::Pending) {
        let counts = app.store.campaign_counts(&campaign.id).await?;
        campaign_hold(&app, &campaign, counts.active_calls)
    } else {
        None
    };
    let now = app.now();
    let views: Vec<ContactView> = contacts
        .into_iter()
        .map(|contact| {
            let w = waiting_for(&contact, now, hold);
            ContactView { waiting_for: w.map(|w| w.0), until: w.and_then(|w| w.1), contact }
        })
        .collect();
    Ok(Json(paged(views, page.limit, |v| v.contact.id.to_string())))
}

/// The body of `PATCH /campaigns/{id}`: every field optional; those given are checked as at
/// creation and replace the stored value (`retry`, `schedule`, `calling_hours`,
/// `recurrence` whole).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchCampaign {
    #[schema(min_length = 1)]
    #[serde(default, deserialize_with = "super::patch::not_null")]
    pub name: Option<String>,
    /// 1–1000.
    #[schema(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "super::patch::not_null")]
    pub max_concurrent: Option<u32>,
    /// `continuous` or `batch`.
    #[schema(value_type = Option<Mode>)]
    #[serde(default, deserialize_with = "super::patch::not_null")]
    pub mode: Option<String>,
    /// 1–100.
    #[schema(minimum = 1, maximum = 100)]
    #[serde(default, deserialize_with = "super::patch::not_null")]
    pub max_attempts: Option<u32>,
    #[serde(default, deserialize_with = "super::patch::not_null")]
    pub retry: Option<RetryPolicy>,
    #[serde(default, deserialize_with = "super::patch::not_null")]
    pub schedule: Option<Schedule>,
    #[serde(default, deserialize_with = "super::patch::not_null")]
    pub calling_hours: Option<LocalHours>,
    #[serde(default, deserialize_with = "super::patch::not_null")]
    pub recurrence: Option<Recurrence>,
    /// A new caller-ID pool (`[]` removes it). Contacts keep their number while it stays in
    /// the pool; others pick anew at their next attempt.
    #[schema(max_items = 1000)]
    #[serde(default, deserialize_with = "super::patch::not_null")]
    pub caller_numbers: Option<Vec<String>>,
    /// `round_robin`, `least_used` or `local_presence`.
    #[schema(value_type = Option<dialtone_core::CallerStrategy>)]
    #[serde(default, deserialize_with = "super::patch::not_null")]
    pub caller_number_strategy: Option<String>,
    /// `round_robin` or `least_used`.
    #[schema(value_type = Option<dialtone_core::CallerStrategy>)]
    #[serde(default, deserialize_with = "super::patch::not_null")]
    pub fallback_strategy: Option<String>,
    /// 1–10,000 calls per rolling minute; `null` removes the throttle.
    #[serde(default, deserialize_with = "super::patch::nullable")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 10_000)]
    pub calls_per_minute: Option<Option<u32>>,
}

impl PatchCampaign {
    /// Errors: 400 naming the field, with the rules of `POST /campaigns`; the pool is
    /// checked against `current` (its provider and region, and the fields not given).
    pub fn validate(self, current: &dialtone_store::Campaign) -> Result<CampaignPatch, ApiError> {
        let name = match self.name {
            Some(n) if n.trim().is_empty() => return Err(ApiError::invalid("name", "must not be empty")),
            n => n.map(|n| n.trim().to_string()),
        };
        if self.max_concurrent.is_some_and(|n| !(1..=1000).contains(&n)) {
            return Err(ApiError::invalid("max_concurrent", "must be between 1 and 1000"));
        }
        if self.max_attempts.is_some_and(|n| !(1..=100).contains(&n)) {
            return Err(ApiError::invalid("max_attempts", "must be between 1 and 100"));
        }
        let mode = self.mode.map(|m| m.parse::<Mode>().map_err(|_| ApiError::invalid("mode", "must be continuous or batch"))).transpose()?;
        if let Some(schedule) = &self.schedule {
            schedule.validate().map_err(|e| {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", format!("schedule.{e}"))
                    .with_details(serde_json::json!({ "field": format!("schedule.{}", e.field()) }))
            })?;
        }
        if let Some(r) = &self.recurrence {
            r.validate().map_err(|e| ApiError::invalid("recurrence", e))?;
        }
        if let Some(r) = &self.retry {
            r.validate().map_err(|m| ApiError::invalid("retry", m))?;
        }
        let pool = super::callers::PoolFields { numbers: self.caller_numbers, strategy: self.caller_number_strategy, fallback: self.fallback_strategy };
        let caller_pool = if pool.is_empty() {
            None
        } else {
            let now = dialtone_store::CallerPool {
                numbers: current.caller_numbers.clone(),
                strategy: current.caller_number_strategy,
                fallback: current.fallback_strategy,
            };
            Some(pool.resolve(now, current.provider, &current.default_region)?)
        };
        let calls_per_minute = match self.calls_per_minute {
            Some(n) => Some(super::callers::check_calls_per_minute(n)?),
            None => None,
        };
        Ok(CampaignPatch {
            caller_pool,
            calls_per_minute,
            name,
            max_concurrent: self.max_concurrent,
            mode,
            max_attempts: self.max_attempts,
            retry: self.retry,
            schedule: self.schedule,
            calling_hours: self.calling_hours,
            recurrence: self.recurrence,
        })
    }
}

fn parse_id(id: &str) -> Result<CampaignId, ApiError> {
    CampaignId::parse(id).ok_or_else(|| ApiError::not_found("campaign"))
}

/// `PATCH /campaigns/{id}`: changes the given settings of a campaign that is not over or
/// archived (409 otherwise); the dispatcher reads them at its next claim.
#[utoipa::path(patch, path = "/campaigns/{id}", tag = "campaigns", params(("id" = String, Path, description = "The campaign id.")), request_body = PatchCampaign,
    responses((status = 200, description = "The campaign with the new settings.", body = CampaignView),
        (status = 409, description = "The campaign is over or archived.", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = ErrorBody)))]
pub async fn patch(
    State(app): State<Arc<AppState>>,
    Auth(ws): Auth,
    Path(id): Path<String>,
    Json(body): Json<PatchCampaign>,
) -> Result<Json<CampaignView>, ApiError> {
    let current = load(&app, &ws, &id).await?;
    let patch = body.validate(&current)?;
    let campaign = app.store.update_campaign(&ws, &current.id, &patch, app.now()).await?;
    app.engine.wake_everywhere();
    Ok(Json(view(&app, campaign).await?))
}

/// `DELETE /campaigns/{id}`: archives the campaign (canceling it first if it is not over);
/// 409 `conflict` with `details.active_calls` while calls are in flight.
#[utoipa::path(delete, path = "/campaigns/{id}", tag = "campaigns", params(("id" = String, Path, description = "The campaign id.")),
    responses((status = 200, description = "The campaign, archived.", body = CampaignView),
        (status = 409, description = "Calls are in flight (`details.active_calls`).", body = ErrorBody)))]
pub async fn archive(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<CampaignView>, ApiError> {
    match app.store.archive_campaign(&ws, &parse_id(&id)?, app.now()).await? {
        Archived::Done(c) => Ok(Json(view(&app, *c).await?)),
        Archived::ActiveCalls(n) => {
            Err(ApiError::conflict(format!("the campaign has {n} call(s) in flight; pause or cancel it and archive it once they have ended"))
                .with_details(serde_json::json!({ "active_calls": n })))
        }
    }
}

/// `GET /campaigns/{id}/export.csv`: one row per contact (see [`crate::export::header`]), streamed
/// as `text/csv` in keyset pages; memory stays at one page whatever the size.
#[utoipa::path(get, path = "/campaigns/{id}/export.csv", tag = "campaigns", params(("id" = String, Path, description = "The campaign id.")),
    responses((status = 200, description = "One CSV row per contact: final status, outcome, attempts, last call, duration, summary, every variable.", content_type = "text/csv", body = String)))]
pub async fn export(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Response, ApiError> {
    let campaign = load(&app, &ws, &id).await?;
    let keys = app.store.variable_keys(&campaign.id).await?;
    let body = Body::from_stream(crate::export::stream(app.store.clone(), campaign.id.clone(), keys, None));
    let file = format!("attachment; filename=\"{}.csv\"", campaign.id);
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, file)], body).into_response())
}

/// `?archived=` on `GET /campaigns` with the page.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CampaignsQuery {
    /// Items per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub before: Option<String>,
    /// `true`: only archived campaigns; `false` (default): only the others.
    pub archived: Option<bool>,
}

/// The campaigns of a list page, archived or not.
pub async fn campaigns_page(app: &AppState, ws: &WorkspaceId, q: CampaignsQuery) -> Result<(Vec<Campaign>, u32), ApiError> {
    let page = PageQuery { limit: q.limit, before: q.before }.page(|c| CampaignId::parse(c).is_some())?;
    let list = app.store.list_campaigns_archived(ws, q.archived.unwrap_or(false), &page).await?;
    Ok((list, page.limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn group(reason: Option<&str>, later: bool, retried: bool, count: u64, e: i64, l: i64) -> PendingGroup {
        PendingGroup { wait_reason: reason.map(str::to_string), later, retried, count, earliest: t(e), latest: t(l) }
    }

    #[test]
    fn breakdown_sorts_groups_into_reasons_with_their_bounds() {
        let groups = [
            group(Some("calling_hours"), true, false, 2, 100, 200),
            group(Some("no_common_hours"), true, true, 1, 50, 50),
            group(None, true, true, 3, 300, 400),
            group(None, true, false, 4, 500, 600),
            group(None, false, false, 5, 10, 20),
        ];
        let hold = CampaignHold { reason: WaitingFor::CircuitBreaker, until: Some(t(700)) };
        let b = breakdown(&groups, Some(hold));
        assert_eq!(b[&WaitingFor::CallingHours], WaitingCount { count: 3, earliest: Some(t(100)), latest: Some(t(200)) });
        assert_eq!(b[&WaitingFor::RetryDelay], WaitingCount { count: 3, earliest: Some(t(300)), latest: Some(t(400)) });
        assert_eq!(b[&WaitingFor::CampaignSchedule], WaitingCount { count: 4, earliest: Some(t(500)), latest: Some(t(600)) });
        assert_eq!(b[&WaitingFor::CircuitBreaker], WaitingCount { count: 5, earliest: Some(t(700)), latest: Some(t(700)) });
        // Due and held by nothing: not waiting.
        let free = breakdown(&groups[4..], None);
        assert!(free.is_empty(), "{free:?}");
    }
}
