//! Row ↔ model mapping: text and integers at the database edge, enums and timestamps inside.

pub use crate::common::{json, json_map, ms, parse, retry_policy, ts};
use crate::common::{opt_parse, opt_ts, read_zones};
use crate::{Call, CallEvent, Campaign, Contact, Result, StoreError, Suppression, Waiting};
use dialtone_core::{CallId, CampaignId, ContactId, ContactStatus, PhoneNumber, WorkspaceId};
use sqlx::postgres::PgRow;
use sqlx::Row;

pub fn campaign(r: &PgRow) -> Result<Campaign> {
    Ok(Campaign {
        id: CampaignId::from_db(r.try_get("id")?),
        workspace_id: WorkspaceId::from_db(r.try_get("workspace_id")?),
        name: r.try_get("name")?,
        provider: parse(r.try_get("provider")?)?,
        assistant_id: r.try_get("assistant_id")?,
        phone_number_id: r.try_get("phone_number_id")?,
        mode: parse(r.try_get("mode")?)?,
        max_concurrent: r.try_get::<i64, _>("max_concurrent")? as u32,
        max_attempts: r.try_get::<i64, _>("max_attempts")? as u32,
        retry: retry_policy(r.try_get("retry_policy")?)?,
        schedule: json(r.try_get("schedule")?, "schedule")?,
        calling_hours: json(r.try_get("calling_hours")?, "calling_hours")?,
        recurrence: json(r.try_get("recurrence")?, "recurrence")?,
        max_call_duration_secs: r.try_get::<Option<i64>, _>("max_call_duration_secs")?.map(|s| s as u32),
        assume_campaign_timezone_for_ambiguous: r.try_get("assume_campaign_timezone_for_ambiguous")?,
        kind: parse(r.try_get("kind")?)?,
        default_region: r.try_get("default_region")?,
        status: parse(r.try_get("status")?)?,
        created_at: ts(r.try_get("created_at")?)?,
        updated_at: ts(r.try_get("updated_at")?)?,
        started_at: opt_ts(r.try_get("started_at")?)?,
        completed_at: opt_ts(r.try_get("completed_at")?)?,
    })
}

pub fn contact(r: &PgRow) -> Result<Contact> {
    let timezone: Option<String> = r.try_get("timezone")?;
    let (timezone_source, timezones) = read_zones(
        timezone.as_deref(),
        r.try_get::<Option<&str>, _>("timezone_source")?,
        r.try_get::<Option<&str>, _>("timezones")?,
    )?;
    let status: ContactStatus = parse(r.try_get("status")?)?;
    let next_attempt_at = ts(r.try_get("next_attempt_at")?)?;
    Ok(Contact {
        id: ContactId::from_db(r.try_get("id")?),
        campaign_id: CampaignId::from_db(r.try_get("campaign_id")?),
        phone: PhoneNumber::from_db(r.try_get("phone")?),
        extension: crate::common::extension_of(r.try_get("extension")?),
        name: r.try_get("name")?,
        variables: json_map(r.try_get("variables")?)?,
        timezone: timezone.clone(),
        timezone_source,
        recurrence: r.try_get::<Option<String>, _>("recurrence")?.map(|s| json(&s, "recurrence")).transpose()?,
        status,
        attempts: r.try_get::<i64, _>("attempts")? as u32,
        next_attempt_at,
        last_outcome: opt_parse(r.try_get("last_outcome")?)?,
        waiting: Waiting::of(status, opt_parse(r.try_get("wait_reason")?)?, next_attempt_at, &timezones),
        timezones,
        created_at: ts(r.try_get("created_at")?)?,
    })
}

pub fn call(r: &PgRow) -> Result<Call> {
    Ok(Call {
        id: CallId::from_db(r.try_get("id")?),
        workspace_id: WorkspaceId::from_db(r.try_get("workspace_id")?),
        campaign_id: CampaignId::from_db(r.try_get("campaign_id")?),
        contact_id: ContactId::from_db(r.try_get("contact_id")?),
        attempt: r.try_get::<i64, _>("attempt")? as u32,
        direction: parse(r.try_get("direction")?)?,
        provider: parse(r.try_get("provider")?)?,
        provider_call_id: r.try_get("provider_call_id")?,
        phone: PhoneNumber::from_db(r.try_get("phone")?),
        status: parse(r.try_get("status")?)?,
        outcome: opt_parse(r.try_get("outcome")?)?,
        ended_reason: r.try_get("ended_reason")?,
        cost: r.try_get("cost")?,
        duration_ms: r.try_get("duration_ms")?,
        created_at: ts(r.try_get("created_at")?)?,
        updated_at: ts(r.try_get("updated_at")?)?,
        scheduled_for: opt_ts(r.try_get("scheduled_for")?)?,
        placing_at: opt_ts(r.try_get("placing_at")?)?,
        dialed_at: opt_ts(r.try_get("dialed_at")?)?,
        answered_at: opt_ts(r.try_get("answered_at")?)?,
        ended_at: opt_ts(r.try_get("ended_at")?)?,
        last_event_at: ts(r.try_get("last_event_at")?)?,
        answered_by: opt_parse(r.try_get("answered_by")?)?,
    })
}

pub fn call_event(r: &PgRow) -> Result<CallEvent> {
    let payload: String = r.try_get("payload")?;
    Ok(CallEvent {
        id: r.try_get("id")?,
        call_id: r.try_get::<Option<String>, _>("call_id")?.map(CallId::from_db),
        source: r.try_get("source")?,
        provider_type: r.try_get("provider_type")?,
        kind: r.try_get("kind")?,
        applied: r.try_get("applied")?,
        mismatched: r.try_get("mismatched")?,
        payload: serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        occurred_at: opt_ts(r.try_get("occurred_at")?)?,
        received_at: ts(r.try_get("received_at")?)?,
    })
}

pub fn suppression(r: &PgRow) -> Result<Suppression> {
    Ok(Suppression {
        id: r.try_get("id")?,
        campaign_id: r.try_get::<Option<String>, _>("campaign_id")?.map(CampaignId::from_db),
        phone: PhoneNumber::from_db(r.try_get("phone")?),
        reason: r.try_get("reason")?,
        created_at: ts(r.try_get("created_at")?)?,
    })
}
