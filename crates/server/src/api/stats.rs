//! `GET /api/v1/stats`: the workspace's call statistics over a range (definitions in
//! `dialtone_store::Stats` and docs/api.md).
//!
//! The range: `from` and `to` (RFC 3339; `to` defaults to now, `from` to 24 h before `to`),
//! or a `preset` instead: `today` (since 00:00 UTC), `week` (the last 7 days), `month` (the
//! last 30 days), each up to now. A preset with `from` or `to` is refused, as is a range
//! that is empty, reversed or longer than 92 days (its hourly series has a point per hour).

use super::{ApiError, Auth, Json, Query};
use crate::app::AppState;
use axum::extract::State;
use dialtone_core::CampaignId;
use dialtone_store::{Stats, StatsQuery, MAX_RANGE_HOURS};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use std::sync::Arc;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(stats))
}

/// `?campaign_id=&from=&to=&preset=` on `GET /stats`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct StatsParams {
    /// One campaign's calls only.
    campaign_id: Option<String>,
    /// Start of the range, RFC 3339 (default: 24 h before `to`).
    #[param(format = DateTime)]
    from: Option<String>,
    /// End of the range, exclusive, RFC 3339 (default: now).
    #[param(format = DateTime)]
    to: Option<String>,
    /// `today`, `week` or `month`, up to now; not with `from` or `to`.
    #[param(pattern = "^(today|week|month)$")]
    preset: Option<String>,
}

pub(crate) fn instant(field: &str, v: &str) -> Result<Timestamp, ApiError> {
    super::instant::parse(v).map_err(|m| ApiError::invalid_query(field, m))
}

/// The range asked for, `[from, to)`.
fn range(p: &StatsParams, now: Timestamp) -> Result<(Timestamp, Timestamp), ApiError> {
    let day = SignedDuration::from_hours(24);
    if let Some(preset) = &p.preset {
        if p.from.is_some() || p.to.is_some() {
            let field = if p.from.is_some() { "from" } else { "to" };
            return Err(ApiError::invalid_query(field, "give either a preset or from/to, not both"));
        }
        let from = match preset.as_str() {
            "today" => {
                let midnight = now.to_zoned(jiff::tz::TimeZone::UTC).start_of_day().map_err(ApiError::internal)?;
                midnight.timestamp()
            }
            "week" => now.saturating_sub(day * 7).map_err(ApiError::internal)?,
            "month" => now.saturating_sub(day * 30).map_err(ApiError::internal)?,
            _ => return Err(ApiError::invalid_query("preset", "must be today, week or month")),
        };
        // `to` is exclusive: one millisecond past now, so a call created this instant counts.
        return Ok((from, now.saturating_add(SignedDuration::from_millis(1)).map_err(ApiError::internal)?));
    }
    let to = match &p.to {
        Some(v) => instant("to", v)?,
        None => now.saturating_add(SignedDuration::from_millis(1)).map_err(ApiError::internal)?,
    };
    let from = match &p.from {
        Some(v) => instant("from", v)?,
        None => to.saturating_sub(day).map_err(ApiError::internal)?,
    };
    if from >= to {
        return Err(ApiError::invalid_query("from", "must be before to"));
    }
    if to.duration_since(from) > SignedDuration::from_hours(MAX_RANGE_HOURS) {
        return Err(ApiError::invalid_query("from", format!("the range may span at most {} days", MAX_RANGE_HOURS / 24)));
    }
    Ok((from, to))
}

#[utoipa::path(get, path = "/stats", tag = "stats", params(StatsParams), responses((status = 200, description = "The workspace's call statistics over the range.", body = Stats)))]
async fn stats(State(app): State<Arc<AppState>>, Auth(ws): Auth, Query(p): Query<StatsParams>) -> Result<Json<Stats>, ApiError> {
    let now = app.now();
    let campaign_id =
        p.campaign_id.as_deref().map(|c| CampaignId::parse(c).ok_or_else(|| ApiError::invalid_query("campaign_id", "not a campaign id"))).transpose()?;
    if let Some(id) = &campaign_id {
        // Another workspace's campaign is not found, as on every route.
        app.store.get_campaign(&ws, id).await?.ok_or_else(|| ApiError::not_found("campaign"))?;
    }
    let (from, to) = range(&p, now)?;
    let stats = app.store.stats(&StatsQuery { workspace_id: ws, campaign_id, from, to, now }).await?;
    Ok(Json(stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(from: Option<&str>, to: Option<&str>, preset: Option<&str>) -> StatsParams {
        StatsParams { campaign_id: None, from: from.map(Into::into), to: to.map(Into::into), preset: preset.map(Into::into) }
    }

    fn field(e: ApiError) -> String {
        e.details["field"].as_str().unwrap_or_default().to_string()
    }

    #[test]
    fn presets_and_defaults_end_now() {
        let now: Timestamp = "2030-03-05T15:30:00Z".parse().unwrap();
        let end = now + SignedDuration::from_millis(1);
        let (from, to) = range(&params(None, None, Some("today")), now).unwrap();
        assert_eq!((from, to), ("2030-03-05T00:00:00Z".parse().unwrap(), end));
        assert_eq!(range(&params(None, None, Some("week")), now).unwrap().0, "2030-02-26T15:30:00Z".parse().unwrap());
        assert_eq!(range(&params(None, None, Some("month")), now).unwrap().0, "2030-02-03T15:30:00Z".parse().unwrap());
        assert_eq!(range(&params(None, None, None), now).unwrap(), (end - SignedDuration::from_hours(24), end));
        let (from, to) = range(&params(Some("2030-03-01T00:00:00Z"), Some("2030-03-02T00:00:00+01:00"), None), now).unwrap();
        assert_eq!((from, to), ("2030-03-01T00:00:00Z".parse().unwrap(), "2030-03-01T23:00:00Z".parse().unwrap()));
    }

    #[test]
    fn a_bad_range_names_its_field() {
        let now: Timestamp = "2030-03-05T15:30:00Z".parse().unwrap();
        assert_eq!(field(range(&params(None, None, Some("year")), now).unwrap_err()), "preset");
        assert_eq!(field(range(&params(Some("2030-03-01"), None, Some("week")), now).unwrap_err()), "from");
        assert_eq!(field(range(&params(None, Some("x"), Some("week")), now).unwrap_err()), "to");
        assert_eq!(field(range(&params(Some("yesterday"), None, None), now).unwrap_err()), "from");
        assert_eq!(field(range(&params(None, Some("2030-13-01T00:00:00Z"), None), now).unwrap_err()), "to");
        assert_eq!(field(range(&params(Some("2030-03-02T00:00:00Z"), Some("2030-03-01T00:00:00Z"), None), now).unwrap_err()), "from");
        assert_eq!(field(range(&params(Some("2029-01-01T00:00:00Z"), None, None), now).unwrap_err()), "from");
    }
}
