//! Rows as the rest of dialtone sees them.

use dialtone_core::frequency::Recurrence;
use dialtone_core::schedule::{LocalHours, Schedule};
use dialtone_core::{AgentId, CallerStrategy, ContactZone, Extension, TranscriptTurn, TzSource};
use dialtone_core::{
    AnsweredBy, CallId, CallStatus, CampaignId, CampaignStatus, ContactId, ContactStatus, Direction, Mode, Outcome, PhoneNumber, ProviderAccountId,
    ProviderKind, RetryPolicy, Transition, WorkspaceId,
};
use jiff::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;

pub type Variables = serde_json::Map<String, serde_json::Value>;

#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub provider: ProviderKind,
    pub assistant_id: String,
    pub phone_number_id: String,
    pub mode: Mode,
    pub max_concurrent: u32,
    pub max_attempts: u32,
    pub retry: RetryPolicy,
    pub default_region: String,
    /// Weekly windows, dates and blackouts, in the campaign's zone (its `timezone`).
    pub schedule: Schedule,
    /// Each recipient's own calling hours, judged in the recipient's zone.
    pub calling_hours: LocalHours,
    /// How often a contact may be called: once (until it succeeds or runs out of
    /// attempts), or daily / weekly / monthly, one attempt per period.
    pub recurrence: Recurrence,
    /// Seconds a call may stay live after the provider accepted it before it is hung up
    /// and ends as `timeout`; `None` = the server's `max_call_duration_secs`.
    pub max_call_duration_secs: Option<u32>,
    /// Opt-in: judge contacts whose number may be in several zones (`ambiguous`) in the
    /// schedule's zone alone, instead of in every candidate zone. Default false.
    pub assume_campaign_timezone_for_ambiguous: bool,
    /// An agent of this workspace (Exotel and Twilio only): dialtone's own voice pipeline
    /// handles the calls, placed with a media stream. The API checks both.
    pub agent_id: Option<AgentId>,
    /// The caller-ID pool; empty `numbers`: every call goes from `phone_number_id`.
    pub caller_pool: CallerPool,
    /// At most this many calls placed per rolling minute; `None`: no throttle.
    pub calls_per_minute: Option<u32>,
    /// The workspace's own provider account the calls go through (`pa_…`, of `provider`;
    /// the API checks both); `None`: the config file's account of `provider`.
    pub account_id: Option<ProviderAccountId>,
}

/// A campaign's caller-ID pool (issue 13; rules in `dialtone_core::caller`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerPool {
    /// E.164 numbers (or Vapi phone-number ids), in the order round-robin takes them.
    /// Empty: no pool.
    pub numbers: Vec<String>,
    /// How a contact's first attempt picks its number.
    pub strategy: CallerStrategy,
    /// `local_presence`'s order when no pool number is local to the callee (never
    /// `local_presence` itself).
    pub fallback: CallerStrategy,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Campaign {
    pub id: CampaignId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub provider: ProviderKind,
    /// The workspace's own provider account the calls go through (`pa_…`); `null`: the
    /// server's configured account of `provider`.
    #[schema(value_type = Option<String>, required = true)]
    pub account_id: Option<ProviderAccountId>,
    pub assistant_id: String,
    pub phone_number_id: String,
    pub mode: Mode,
    pub max_concurrent: u32,
    pub max_attempts: u32,
    pub retry: RetryPolicy,
    pub default_region: String,
    pub schedule: Schedule,
    pub calling_hours: LocalHours,
    pub recurrence: Recurrence,
    /// This campaign's maximum call duration in seconds; `None` = the server's default.
    #[schema(required = true)]
    pub max_call_duration_secs: Option<u32>,
    pub assume_campaign_timezone_for_ambiguous: bool,
    /// The agent whose pipeline handles the calls; `null`: the provider's own flow or TwiML.
    #[schema(required = true)]
    pub agent_id: Option<AgentId>,
    /// A user's campaign, or the hidden one behind single calls or inbound calls.
    pub kind: dialtone_core::CampaignKind,
    /// True for a campaign made by `POST /api/v1/batches` (listed under `/batches`, not
    /// `/campaigns`).
    pub batch: bool,
    /// The caller-ID pool (E.164 numbers, or Vapi phone-number ids); empty: every call goes
    /// from `phone_number_id`.
    pub caller_numbers: Vec<String>,
    /// How a contact's first attempt picks its number from `caller_numbers`; later
    /// attempts keep it.
    pub caller_number_strategy: CallerStrategy,
    /// What `local_presence` does when no pool number has the callee's country and area code.
    pub fallback_strategy: CallerStrategy,
    /// At most this many calls placed per rolling minute (60 s); `null`: no throttle.
    #[schema(required = true)]
    pub calls_per_minute: Option<u32>,
    /// A batch's `start_at`: no call before it; `null`: at once.
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub start_at: Option<Timestamp>,
    pub status: CampaignStatus,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub started_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub completed_at: Option<Timestamp>,
    /// When `DELETE /campaigns/{id}` archived it; `null` while it is not archived.
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub archived_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct NewContact {
    pub phone: PhoneNumber,
    /// Digits dialled after the number connects (`ext. 22` in the import).
    pub extension: Option<Extension>,
    pub name: Option<String>,
    pub variables: Variables,
    /// The zone this contact's calling hours are judged in, and how it was found.
    pub timezone: Option<ContactZone>,
    /// Where the row came from (CSV line or array index), to report duplicates by line.
    pub line: u64,
}

/// A row that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RejectedRow {
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct InsertReport {
    pub inserted: u64,
    /// Numbers already in the campaign (from an earlier import or earlier in this one).
    pub duplicates: Vec<RejectedRow>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Contact {
    pub id: ContactId,
    pub campaign_id: CampaignId,
    pub phone: PhoneNumber,
    /// Digits dialled after the number connects; `null` when there are none.
    #[schema(required = true)]
    pub extension: Option<Extension>,
    #[schema(required = true)]
    pub name: Option<String>,
    #[schema(value_type = Object)]
    pub variables: Variables,
    /// One IANA zone; for an `ambiguous` contact, one of `timezones`, shown for reference.
    #[schema(required = true)]
    pub timezone: Option<String>,
    #[schema(required = true)]
    pub timezone_source: Option<TzSource>,
    /// Every zone the contact may be in: several for `ambiguous`, else `[timezone]` (empty
    /// if it has no zone). Calling hours must hold in all of them.
    pub timezones: Vec<String>,
    /// A single call's own recurrence (campaign contacts follow the campaign's).
    #[schema(required = true)]
    pub recurrence: Option<Recurrence>,
    pub status: ContactStatus,
    pub attempts: u32,
    #[schema(value_type = String, format = DateTime)]
    pub next_attempt_at: Timestamp,
    #[schema(required = true)]
    pub last_outcome: Option<Outcome>,
    /// Why a pending contact was put back without a call, and until when; `null` otherwise.
    #[schema(required = true)]
    pub waiting: Option<Waiting>,
    /// The caller number its first attempt went from (kept for every retry); `null` until
    /// then, and for campaigns without a pool or daily limit.
    #[schema(required = true)]
    pub caller_number: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// Why the claim put a pending contact back without calling it (`contacts.wait_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// Not inside the calling hours in every one of its zones: due at `next_attempt_at`.
    CallingHours,
    /// Its zones never share a moment inside the campaign's calling hours.
    NoCommonHours,
    /// Its calling hours (in its zones) never fall inside the campaign's schedule, which
    /// still opens: never called until the campaign's schedule or calling hours change.
    HoursOutsideSchedule,
    /// Every caller number it may use has made its daily call limit: due at the next UTC
    /// midnight (`next_attempt_at`).
    CallerNumberLimit,
}

dialtone_core::text_enum!(WaitReason, "wait reason", {
    CallingHours => "calling_hours", NoCommonHours => "no_common_hours", HoursOutsideSchedule => "hours_outside_schedule",
    CallerNumberLimit => "caller_number_limit",
});

/// A contact's wait, as the API shows it: `{"reason", "until", "message"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Waiting {
    pub reason: WaitReason,
    /// When it is due again; `null` when no moment will do (`no_common_hours`).
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub until: Option<Timestamp>,
    pub message: String,
}

impl Waiting {
    /// The wait of a contact in `status`, due at `next`, put back for `reason`.
    pub fn of(status: ContactStatus, reason: Option<WaitReason>, next: Timestamp, timezones: &[String]) -> Option<Self> {
        if status != ContactStatus::Pending {
            return None;
        }
        let zones = timezones.join(", ");
        Some(match reason? {
            WaitReason::CallingHours => Waiting {
                reason: WaitReason::CallingHours,
                until: Some(next),
                message: format!("outside the calling hours in at least one of its time zones ({zones}); next call at {next}"),
            },
            WaitReason::NoCommonHours => Waiting {
                reason: WaitReason::NoCommonHours,
                until: None,
                message: format!(
                    "its number may be in any of {zones}, and no moment is inside the calling hours in all of them; \
                     give it an explicit timezone, widen calling_hours, or use assume_campaign_timezone_for_ambiguous"
                ),
            },
            WaitReason::HoursOutsideSchedule => Waiting {
                reason: WaitReason::HoursOutsideSchedule,
                until: None,
                message: format!(
                    "its calling hours in {zones} never fall inside the campaign's schedule: it is not called until the \
                     campaign's schedule or calling_hours change (PATCH the campaign)"
                ),
            },
            WaitReason::CallerNumberLimit => Waiting {
                reason: WaitReason::CallerNumberLimit,
                until: Some(next),
                message: format!("every caller number it may use has made the workspace's daily call limit; next call at {next} (UTC midnight)"),
            },
        })
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Call {
    pub id: CallId,
    pub workspace_id: WorkspaceId,
    pub campaign_id: CampaignId,
    pub contact_id: ContactId,
    pub attempt: u32,
    pub direction: Direction,
    pub provider: ProviderKind,
    /// The workspace's own provider account the call was placed on (`pa_…`); `null`: the
    /// server's configured account of `provider`.
    #[schema(value_type = Option<String>, required = true)]
    pub account_id: Option<ProviderAccountId>,
    #[schema(required = true)]
    pub provider_call_id: Option<String>,
    pub phone: PhoneNumber,
    /// The number the call went from (a pool number, or `phone_number_id` when the
    /// workspace has a daily limit); `null` for calls placed without either.
    #[schema(required = true)]
    pub caller_number: Option<String>,
    pub status: CallStatus,
    #[schema(required = true)]
    pub outcome: Option<Outcome>,
    #[schema(required = true)]
    pub ended_reason: Option<String>,
    #[schema(required = true)]
    pub cost: Option<f64>,
    #[schema(required = true)]
    pub duration_ms: Option<i64>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// For a scheduled single call: when it is to be placed.
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub scheduled_for: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub placing_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub dialed_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub answered_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub ended_at: Option<Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    pub last_event_at: Timestamp,
    /// The answering-machine detection verdict, when the provider sent one on its own
    /// (Twilio async AMD): `human`, `machine` or `unknown`; `null` when none came.
    pub answered_by: Option<AnsweredBy>,
    /// What was said on an agent call, turn by turn (`null` until the pipeline saved it).
    #[schema(required = true)]
    pub transcript: Option<Vec<TranscriptTurn>>,
    /// An agent call reached a voicemail box and left `voicemail_message` on it.
    pub voicemail_left: bool,
    /// `duration_ms` in seconds (milliseconds kept as the fraction): the talk time the
    /// provider reported (Vapi `endedAt - startedAt`, Twilio `CallDuration`, Exotel
    /// `ConversationDuration`).
    #[schema(required = true)]
    pub duration_secs: Option<f64>,
    /// The provider's summary of the conversation (Vapi `analysis.summary`).
    #[schema(required = true)]
    pub summary: Option<String>,
    /// The provider's recording of the call (Vapi `artifact.recordingUrl`, Twilio and
    /// Exotel `RecordingUrl`).
    #[schema(required = true)]
    pub recording_url: Option<String>,
    /// The contact's name, as it is now (`null` when it has none, or for a read that does
    /// not join the contact: only `GET /calls` and `GET /calls/{id}` do).
    #[schema(required = true)]
    pub name: Option<String>,
    /// The contact's variables, as they are now (`null` as for `name`).
    #[schema(value_type = Option<Object>, required = true)]
    pub variables: Option<Variables>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CallEvent {
    pub id: String,
    #[schema(required = true)]
    pub call_id: Option<CallId>,
    /// `provider` (a webhook or a reconcile lookup) or `engine` (a decision of ours).
    pub source: String,
    pub provider_type: String,
    pub kind: String,
    pub applied: bool,
    /// The event's provider call id and the id of ours it carried name different calls:
    /// kept for the record, never applied (the provider id decides which call it is
    /// stored with).
    pub mismatched: bool,
    pub payload: serde_json::Value,
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub occurred_at: Option<Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    pub received_at: Timestamp,
}

/// A claimed call, with everything the placer needs to send it.
#[derive(Debug, Clone)]
pub struct Dial {
    pub call_id: CallId,
    pub workspace_id: WorkspaceId,
    pub campaign_id: CampaignId,
    pub contact_id: ContactId,
    pub attempt: u32,
    pub provider: ProviderKind,
    /// The workspace's own account the call is placed on; `None`: the config's account.
    pub account_id: Option<ProviderAccountId>,
    pub assistant_id: String,
    pub phone_number_id: String,
    pub phone: PhoneNumber,
    /// Dialled after the call connects (Vapi `customer.extension`, Twilio `SendDigits`).
    pub extension: Option<Extension>,
    pub name: Option<String>,
    pub variables: Variables,
    /// The campaign's agent: the call is placed with a media stream to dialtone.
    pub agent: Option<DialAgent>,
    /// Set when the claim's own transaction also committed the placing fence
    /// (`Store::claim_placing`): the call may be sent at once, with no `mark_placing` of its
    /// own. `None`: claimed only; `mark_placing` must be committed before any request.
    pub placing_at: Option<Timestamp>,
}

/// The agent of a claimed call, as placing it needs: the stream is opened for it and the
/// provider's own time limit is set from `max_duration_secs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialAgent {
    pub id: AgentId,
    /// The agent's `max_duration_secs` when the call was claimed.
    pub max_duration_secs: u32,
}

/// What applying one event did.
#[derive(Debug, Clone)]
pub struct Applied {
    pub call_id: Option<CallId>,
    pub campaign_id: Option<CampaignId>,
    /// The event's dedupe key was already stored: nothing was written.
    pub duplicate: bool,
    pub transition: Option<Transition>,
    /// Stored, not applied: its provider call id and our id name different calls.
    pub mismatched: bool,
}

impl Applied {
    /// A new event that names no call we know (a Vapi org-wide Server URL sends events of
    /// every call on the account): kept for `unknown_event_retention`, then purged.
    pub fn unknown(&self) -> bool {
        !self.duplicate && self.call_id.is_none()
    }
}

impl Applied {
    pub fn ended_call(&self) -> bool {
        self.transition.as_ref().is_some_and(|t| t.ends_call())
    }
}

/// The content reports (summary, recording, transcript) that a batch's events carry, each
/// with the call its event was stored with: an event that matched no call, or named two
/// different calls (`mismatched`), saves none. `applied[i]` is what `events[i]` did.
pub fn reports_of<'a>(events: &'a [dialtone_core::ProviderEvent], applied: &'a [Applied]) -> Vec<(&'a CallId, &'a dialtone_core::CallReport)> {
    events
        .iter()
        .zip(applied)
        .filter_map(|(event, applied)| match (event.report.as_deref(), applied.call_id.as_ref(), applied.mismatched) {
            (Some(report), Some(call_id), false) => Some((call_id, report)),
            _ => None,
        })
        .collect()
}

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct CampaignCounts {
    pub contacts: BTreeMap<String, u64>,
    pub calls: BTreeMap<String, u64>,
    pub outcomes: BTreeMap<String, u64>,
    pub active_calls: u64,
}

#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    pub campaign_id: Option<CampaignId>,
    pub contact_id: Option<ContactId>,
    pub status: Option<CallStatus>,
    pub outcome: Option<Outcome>,
    pub phone: Option<PhoneNumber>,
    /// Several statuses (`status=a,b`): a call in any of them (ANDed with `status`).
    pub statuses: Vec<CallStatus>,
    /// Several outcomes (`outcome=a,b`): a call with any of them (ANDed with `outcome`).
    pub outcomes: Vec<Outcome>,
    /// Created at or after / before (`[from, to)`).
    pub created_from: Option<Timestamp>,
    pub created_to: Option<Timestamp>,
    /// Ended at or after / before (`[from, to)`); a call not ended matches neither.
    pub ended_from: Option<Timestamp>,
    pub ended_to: Option<Timestamp>,
    pub sort: CallSort,
}

/// The order of a call list. Both page by the call id (ids are ULIDs, so id order is
/// creation order): the cursor `before` is the last id of the previous page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CallSort {
    /// `-created_at`: newest first (the default).
    #[default]
    NewestFirst,
    /// `created_at`: oldest first.
    OldestFirst,
}

/// A number on a do-not-call list: workspace-wide (`campaign_id` None) or for one campaign.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Suppression {
    pub id: String,
    #[schema(required = true)]
    pub campaign_id: Option<CampaignId>,
    pub phone: PhoneNumber,
    #[schema(required = true)]
    pub reason: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// An assistant a workspace may call with (registered, or used by a campaign).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Assistant {
    pub id: String,
    pub provider: ProviderKind,
    pub phone_number_id: String,
    #[schema(required = true)]
    pub name: Option<String>,
}

/// One call to place at `scheduled_for` (now or later), optionally recurring.
#[derive(Debug, Clone)]
pub struct NewSingleCall {
    pub workspace_id: WorkspaceId,
    pub assistant: Assistant,
    pub phone: PhoneNumber,
    pub extension: Option<Extension>,
    pub name: Option<String>,
    pub variables: Variables,
    pub timezone: ContactZone,
    pub scheduled_for: Timestamp,
    pub recurrence: Option<Recurrence>,
    pub max_attempts: u32,
    pub retry: RetryPolicy,
    /// Every occurrence (and retry) only inside 08:00–21:00 in every zone the recipient may
    /// be in: the hidden campaign gets those calling hours instead of round the clock.
    pub respect_business_hours: bool,
    /// The agent whose pipeline handles the call (stored on the hidden campaign).
    pub agent_id: Option<AgentId>,
    /// The workspace's own provider account to place it on (of the assistant's
    /// provider; the API checks both); `None`: the config's account.
    pub account_id: Option<ProviderAccountId>,
}

/// One of our numbers and the assistant that answers calls to it (inbound calls).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PhoneNumberEntry {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub number: PhoneNumber,
    pub provider: ProviderKind,
    pub assistant_id: String,
    #[schema(required = true)]
    pub name: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// Keyset pagination: newest first, `before` is the last id of the previous page.
#[derive(Debug, Clone)]
pub struct Page {
    pub limit: u32,
    pub before: Option<String>,
}

impl Default for Page {
    fn default() -> Self {
        Self { limit: 50, before: None }
    }
}
