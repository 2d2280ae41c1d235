//! One row type per table, decoded the same way on both backends (`#[derive(FromRow)]`:
//! every integer column is BIGINT/INTEGER, every time unix milliseconds, booleans BOOLEAN
//! on PostgreSQL and 0/1 on SQLite), and its conversion to the model: text and integers at
//! the database edge, enums and timestamps inside.
//!
//! `call(&row)` and `call_event(&row)` read a model from a row of either backend; elsewhere
//! a query decodes its row type directly (`db.fetch_all::<CampaignRow>(…)`).

use crate::common::{extension_of, opt_parse, opt_ts, read_zones};
pub use crate::common::{json, json_map, ms, parse, retry_policy, ts};
use crate::{Assistant, Call, CallEvent, Campaign, Contact, PhoneNumberEntry, Result, StoreError, Suppression, Waiting};
use dialtone_core::{Agent, AgentId, CallId, CampaignId, ContactId, ContactStatus, PhoneNumber, ProviderAccountId, WorkspaceId};
use sqlx::{FromRow, Row};

/// A `campaigns` row.
#[derive(Debug, Clone, FromRow)]
pub struct CampaignRow {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub provider: String,
    pub assistant_id: String,
    pub phone_number_id: String,
    pub mode: String,
    pub max_concurrent: i64,
    pub max_attempts: i64,
    pub retry_policy: String,
    pub schedule: String,
    pub calling_hours: String,
    pub recurrence: String,
    pub max_call_duration_secs: Option<i64>,
    pub assume_campaign_timezone_for_ambiguous: bool,
    pub kind: String,
    pub default_region: String,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub archived_at: Option<i64>,
    pub agent_id: Option<String>,
    pub batch: bool,
    pub caller_numbers: String,
    pub caller_number_strategy: String,
    pub fallback_strategy: String,
    pub calls_per_minute: Option<i64>,
    pub start_at: Option<i64>,
    #[sqlx(default)]
    pub account_id: Option<String>,
}

impl TryFrom<CampaignRow> for Campaign {
    type Error = StoreError;

    fn try_from(r: CampaignRow) -> Result<Campaign> {
        Ok(Campaign {
            id: CampaignId::from_db(r.id),
            workspace_id: WorkspaceId::from_db(r.workspace_id),
            name: r.name,
            provider: parse(&r.provider)?,
            account_id: r.account_id.map(ProviderAccountId::from_db),
            assistant_id: r.assistant_id,
            phone_number_id: r.phone_number_id,
            mode: parse(&r.mode)?,
            max_concurrent: r.max_concurrent as u32,
            max_attempts: r.max_attempts as u32,
            retry: retry_policy(&r.retry_policy)?,
            schedule: json(&r.schedule, "schedule")?,
            calling_hours: json(&r.calling_hours, "calling_hours")?,
            recurrence: json(&r.recurrence, "recurrence")?,
            max_call_duration_secs: r.max_call_duration_secs.map(|s| s as u32),
            assume_campaign_timezone_for_ambiguous: r.assume_campaign_timezone_for_ambiguous,
            kind: parse(&r.kind)?,
            batch: r.batch,
            caller_numbers: json(&r.caller_numbers, "caller_numbers")?,
            caller_number_strategy: parse(&r.caller_number_strategy)?,
            fallback_strategy: parse(&r.fallback_strategy)?,
            calls_per_minute: r.calls_per_minute.map(|n| n as u32),
            start_at: opt_ts(r.start_at)?,
            default_region: r.default_region,
            status: parse(&r.status)?,
            created_at: ts(r.created_at)?,
            updated_at: ts(r.updated_at)?,
            started_at: opt_ts(r.started_at)?,
            completed_at: opt_ts(r.completed_at)?,
            archived_at: opt_ts(r.archived_at)?,
            agent_id: r.agent_id.map(AgentId::from_db),
        })
    }
}

/// A `contacts` row.
#[derive(Debug, Clone, FromRow)]
pub struct ContactRow {
    pub id: String,
    pub campaign_id: String,
    pub phone: String,
    pub extension: String,
    pub name: Option<String>,
    pub variables: String,
    pub timezone: Option<String>,
    pub timezone_source: Option<String>,
    pub timezones: Option<String>,
    pub recurrence: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_outcome: Option<String>,
    pub wait_reason: Option<String>,
    pub created_at: i64,
    #[sqlx(default)]
    pub caller_number: Option<String>,
}

impl TryFrom<ContactRow> for Contact {
    type Error = StoreError;

    fn try_from(r: ContactRow) -> Result<Contact> {
        let (timezone_source, timezones) = read_zones(r.timezone.as_deref(), r.timezone_source.as_deref(), r.timezones.as_deref())?;
        let status: ContactStatus = parse(&r.status)?;
        let next_attempt_at = ts(r.next_attempt_at)?;
        Ok(Contact {
            id: ContactId::from_db(r.id),
            campaign_id: CampaignId::from_db(r.campaign_id),
            phone: PhoneNumber::from_db(r.phone),
            extension: extension_of(r.extension),
            name: r.name,
            variables: json_map(&r.variables)?,
            timezone: r.timezone,
            timezone_source,
            recurrence: r.recurrence.map(|s| json(&s, "recurrence")).transpose()?,
            status,
            attempts: r.attempts as u32,
            next_attempt_at,
            last_outcome: opt_parse(r.last_outcome)?,
            waiting: Waiting::of(status, opt_parse(r.wait_reason)?, next_attempt_at, &timezones),
            timezones,
            caller_number: r.caller_number,
            created_at: ts(r.created_at)?,
        })
    }
}

/// A `calls` row.
#[derive(Debug, Clone, FromRow)]
pub struct CallRow {
    pub id: String,
    pub workspace_id: String,
    pub campaign_id: String,
    pub contact_id: String,
    pub attempt: i64,
    pub direction: String,
    pub provider: String,
    pub provider_call_id: Option<String>,
    pub phone: String,
    #[sqlx(default)]
    pub caller_number: Option<String>,
    #[sqlx(default)]
    pub account_id: Option<String>,
    pub status: String,
    pub outcome: Option<String>,
    pub ended_reason: Option<String>,
    pub cost: Option<f64>,
    pub duration_ms: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub scheduled_for: Option<i64>,
    pub placing_at: Option<i64>,
    pub dialed_at: Option<i64>,
    pub answered_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub last_event_at: i64,
    pub answered_by: Option<String>,
    pub transcript: Option<String>,
    pub voicemail_left: bool,
    pub summary: Option<String>,
    pub recording_url: Option<String>,
    /// The contact's name and variables (JSON text), where the query joins the contact.
    #[sqlx(default)]
    pub contact_name: Option<String>,
    #[sqlx(default)]
    pub contact_variables: Option<String>,
}

impl TryFrom<CallRow> for Call {
    type Error = StoreError;

    fn try_from(r: CallRow) -> Result<Call> {
        Ok(Call {
            id: CallId::from_db(r.id),
            workspace_id: WorkspaceId::from_db(r.workspace_id),
            campaign_id: CampaignId::from_db(r.campaign_id),
            contact_id: ContactId::from_db(r.contact_id),
            attempt: r.attempt as u32,
            direction: parse(&r.direction)?,
            provider: parse(&r.provider)?,
            account_id: r.account_id.map(ProviderAccountId::from_db),
            provider_call_id: r.provider_call_id,
            phone: PhoneNumber::from_db(r.phone),
            caller_number: r.caller_number,
            status: parse(&r.status)?,
            outcome: opt_parse(r.outcome)?,
            ended_reason: r.ended_reason,
            cost: r.cost,
            duration_ms: r.duration_ms,
            created_at: ts(r.created_at)?,
            updated_at: ts(r.updated_at)?,
            scheduled_for: opt_ts(r.scheduled_for)?,
            placing_at: opt_ts(r.placing_at)?,
            dialed_at: opt_ts(r.dialed_at)?,
            answered_at: opt_ts(r.answered_at)?,
            ended_at: opt_ts(r.ended_at)?,
            last_event_at: ts(r.last_event_at)?,
            answered_by: opt_parse(r.answered_by)?,
            transcript: r.transcript.map(|t| json(&t, "transcript")).transpose()?,
            voicemail_left: r.voicemail_left,
            duration_secs: r.duration_ms.map(|ms| ms as f64 / 1000.0),
            summary: r.summary,
            recording_url: r.recording_url,
            name: r.contact_name,
            variables: r.contact_variables.map(|v| json_map(&v)).transpose()?,
        })
    }
}

/// A `call_events` row (the columns the API shows).
#[derive(Debug, Clone, FromRow)]
pub struct CallEventRow {
    pub id: String,
    pub call_id: Option<String>,
    pub source: String,
    pub provider_type: String,
    pub kind: String,
    pub applied: bool,
    pub mismatched: bool,
    pub payload: String,
    pub occurred_at: Option<i64>,
    pub received_at: i64,
}

impl TryFrom<CallEventRow> for CallEvent {
    type Error = StoreError;

    fn try_from(r: CallEventRow) -> Result<CallEvent> {
        Ok(CallEvent {
            id: r.id,
            call_id: r.call_id.map(CallId::from_db),
            source: r.source,
            provider_type: r.provider_type,
            kind: parse(&r.kind)?,
            applied: r.applied,
            mismatched: r.mismatched,
            payload: serde_json::from_str(&r.payload).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            occurred_at: opt_ts(r.occurred_at)?,
            received_at: ts(r.received_at)?,
        })
    }
}

/// A `suppressions` row.
#[derive(Debug, Clone, FromRow)]
pub struct SuppressionRow {
    pub id: String,
    pub campaign_id: Option<String>,
    pub phone: String,
    pub reason: Option<String>,
    pub created_at: i64,
}

impl TryFrom<SuppressionRow> for Suppression {
    type Error = StoreError;

    fn try_from(r: SuppressionRow) -> Result<Suppression> {
        Ok(Suppression {
            id: r.id,
            campaign_id: r.campaign_id.map(CampaignId::from_db),
            phone: PhoneNumber::from_db(r.phone),
            reason: r.reason,
            created_at: ts(r.created_at)?,
        })
    }
}

/// An `api_keys` row.
#[derive(Debug, Clone, FromRow)]
pub struct ApiKeyRow {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub key_hash: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// An `assistants` row.
#[derive(Debug, Clone, FromRow)]
pub struct AssistantRow {
    pub workspace_id: String,
    pub id: String,
    pub provider: String,
    pub phone_number_id: String,
    pub name: Option<String>,
    pub created_at: i64,
}

impl TryFrom<AssistantRow> for Assistant {
    type Error = StoreError;

    fn try_from(r: AssistantRow) -> Result<Assistant> {
        Ok(Assistant { id: r.id, provider: parse(&r.provider)?, phone_number_id: r.phone_number_id, name: r.name })
    }
}

/// An `agents` row (`deleted_at` is read by the queries, not shown).
#[derive(Debug, Clone, FromRow)]
pub struct AgentRow {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub greeting: String,
    pub system_prompt: String,
    pub no_response_prompt: String,
    pub goodbye: String,
    pub voicemail_message: Option<String>,
    pub max_duration_secs: i64,
    pub language: String,
    pub stt: String,
    pub llm: String,
    pub tts: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl TryFrom<AgentRow> for Agent {
    type Error = StoreError;

    fn try_from(r: AgentRow) -> Result<Agent> {
        Ok(Agent {
            id: AgentId::from_db(r.id),
            workspace_id: WorkspaceId::from_db(r.workspace_id),
            name: r.name,
            greeting: r.greeting,
            system_prompt: r.system_prompt,
            no_response_prompt: r.no_response_prompt,
            goodbye: r.goodbye,
            voicemail_message: r.voicemail_message,
            max_duration_secs: u32::try_from(r.max_duration_secs)
                .map_err(|_| StoreError::Corrupt(format!("agent max_duration_secs {}", r.max_duration_secs)))?,
            language: r.language,
            stt: json(&r.stt, "stt")?,
            llm: json(&r.llm, "llm")?,
            tts: json(&r.tts, "tts")?,
            created_at: ts(r.created_at)?,
            updated_at: ts(r.updated_at)?,
        })
    }
}

/// A `phone_numbers` row.
#[derive(Debug, Clone, FromRow)]
pub struct PhoneNumberRow {
    pub id: String,
    pub workspace_id: String,
    pub number: String,
    pub provider: String,
    pub assistant_id: String,
    pub name: Option<String>,
    pub created_at: i64,
}

impl TryFrom<PhoneNumberRow> for PhoneNumberEntry {
    type Error = StoreError;

    fn try_from(r: PhoneNumberRow) -> Result<PhoneNumberEntry> {
        Ok(PhoneNumberEntry {
            id: r.id,
            workspace_id: WorkspaceId::from_db(r.workspace_id),
            number: PhoneNumber::from_db(r.number),
            provider: parse(&r.provider)?,
            assistant_id: r.assistant_id,
            name: r.name,
            created_at: ts(r.created_at)?,
        })
    }
}

/// Reads a model from a row of either backend through its row type.
fn read<'r, R: Row, T: FromRow<'r, R> + TryInto<M, Error = StoreError>, M>(r: &'r R) -> Result<M> {
    T::from_row(r)?.try_into()
}

pub fn call<'r, R: Row>(r: &'r R) -> Result<Call>
where
    CallRow: FromRow<'r, R>,
{
    read::<R, CallRow, Call>(r)
}

pub fn call_event<'r, R: Row>(r: &'r R) -> Result<CallEvent>
where
    CallEventRow: FromRow<'r, R>,
{
    read::<R, CallEventRow, CallEvent>(r)
}
