//! Outbound events to the user's systems: webhook endpoints, the durable outbox of
//! messages and their deliveries, and the delivery log, written once for both backends.
//!
//! An event is stored once, as a message, by [`emit`], inside the caller's transaction (the
//! one that commits the state change the event reports), so a crash either loses both or
//! neither; a message is written only when its workspace has an enabled endpoint subscribed
//! to its type, so a workspace with no endpoint pays one indexed lookup per event and writes
//! nothing. The delivery worker (`dialtone_engine::outbox`) fans messages out to their
//! endpoints, one `webhook_deliveries` row per message and endpoint, at the start of each
//! claim ([`claim`]: off the ingest's commits, which then write one row per event however
//! many endpoints there are), claims due deliveries with a lease, sends them, and records
//! each try ([`finish`]); a lease that runs out (its node died) makes the row due again on
//! any node. The endpoints a message goes to are those enabled and subscribed when it is
//! fanned out (normally the next worker pass); until then the delivery log shows it as
//! pending to each of them.
//!
//! Retry schedule (Standard Webhooks / Svix): immediately, 5 s, 5 min, 30 min, 2 h, 5 h,
//! 10 h, 10 h ([`RETRY_SCHEDULE`]); after the eighth failure the delivery is `failed`. An
//! endpoint whose tries have failed without a success for 5 days ([`DISABLE_AFTER`]) is
//! disabled (`disabled_reason = 'failing'`, visible in the API).

use super::Pools;
use crate::common::{ms, opt_ts, ts};
use crate::secrets::{self, Keyring};
use crate::sql::{args, Arg, Db, Dialect};
use crate::{Page, Result};
use dialtone_core::{DeliveryAttemptId, MessageId, WebhookEndpointId, WorkspaceId};
use jiff::{SignedDuration, Timestamp};
use secrecy::{ExposeSecret, SecretString};

/// Every event type an endpoint can subscribe to.
pub const EVENT_TYPES: [&str; 9] = [
    "campaign.started",
    "campaign.paused",
    "campaign.resumed",
    "campaign.completed",
    "campaign.canceled",
    "call.started",
    "call.ended",
    "contact.finished",
    "alert.failure_rate",
];

/// The wait before each try: the n-th entry before try n+1 (the first is immediate).
/// Eight tries in all, over about 27.6 h.
pub const RETRY_SCHEDULE: [SignedDuration; 8] = [
    SignedDuration::ZERO,
    SignedDuration::from_secs(5),
    SignedDuration::from_mins(5),
    SignedDuration::from_mins(30),
    SignedDuration::from_hours(2),
    SignedDuration::from_hours(5),
    SignedDuration::from_hours(10),
    SignedDuration::from_hours(10),
];

/// An endpoint failing (no successful try) for this long is disabled: 5 days.
pub const DISABLE_AFTER: SignedDuration = SignedDuration::from_hours(24 * 5);

/// How long the old secret keeps signing after a rotation: 24 h.
pub const ROTATION_OVERLAP: SignedDuration = SignedDuration::from_hours(24);

/// The answer excerpt kept per try: at most 1 KiB (cut at a character boundary).
pub const EXCERPT_BYTES: usize = 1024;

/// How long a `call.ended` waits for the provider's end-of-call report (Vapi and the
/// simulator send it in a webhook of its own, a moment after the status that ends the
/// call): 30 s. The message is held ([`OutboxEvent::held_for_report`]) until the report is
/// in (see `fan_out`) or this wait is over, whichever comes first; the worker then fills in its `cost`,
/// `duration_ms` and `transcript_summary` from the call's row as it stands, and fans it out.
pub const REPORT_WAIT: SignedDuration = SignedDuration::from_secs(30);

/// How long after its report's event is stored a held `call.ended` waits for the report's
/// content (summary, recording) to be saved on the call, when none is seen: 1 s. The ingest
/// saves a report's content on the call right after the commit that stores its event
/// (`dialtone_engine::ingest`), so the content is normally there first and releases the
/// message; this covers a report without content, or one whose save failed (the provider's
/// retry saves it again).
pub const REPORT_SAVE_GRACE: SignedDuration = SignedDuration::from_secs(1);

/// One event to put in the outbox: the workspace it belongs to, its type (one of
/// [`EVENT_TYPES`]) and its `data` object. The body sent is
/// `{"type": …, "timestamp": RFC 3339, "data": …}` (the Standard Webhooks payload shape).
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub workspace_id: String,
    pub event_type: &'static str,
    /// The `data` object; with [`OutboxBody::FromCall`], only what its call's row does not
    /// say (the rest is filled in at fan-out, see [`CALL_FIELDS`]).
    pub data: serde_json::Value,
    pub body: OutboxBody,
}

/// How an [`OutboxEvent`]'s body is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxBody {
    /// `data` is the whole of it; fanned out at once.
    Whole,
    /// The message is written with only `data`'s own fields and call `call_id`, and the
    /// worker completes it from the call's row as it stands when it fans it out
    /// ([`CallFill`]). The ingest writes its `call.started`, `call.ended` and
    /// `contact.finished` so: a call's row already holds their ids, phone, times and figures,
    /// and writing each of them again into every message in the ingest's commits was the
    /// outbox's cost to the ingest (BENCHMARKS.md, issue 13).
    FromCall {
        call_id: String,
        /// A `call.ended` held for its call's end-of-call report, at most [`REPORT_WAIT`];
        /// `false`: fanned out at once.
        held_for_report: bool,
    },
}

impl OutboxEvent {
    /// An event fanned out at once, its `data` as given.
    pub fn new(workspace_id: impl Into<String>, event_type: &'static str, data: serde_json::Value) -> OutboxEvent {
        OutboxEvent { workspace_id: workspace_id.into(), event_type, data, body: OutboxBody::Whole }
    }

    /// An event about call `call_id` whose `data` is completed from the call's row at
    /// fan-out ([`CALL_FIELDS`]); `held`: wait for the call's report first.
    pub fn from_call(
        workspace_id: impl Into<String>,
        event_type: &'static str,
        call_id: impl Into<String>,
        data: serde_json::Value,
        held: bool,
    ) -> OutboxEvent {
        let body = OutboxBody::FromCall { call_id: call_id.into(), held_for_report: held };
        OutboxEvent { workspace_id: workspace_id.into(), event_type, data, body }
    }
}

/// A webhook endpoint as stored (the secrets included, as [`SecretString`]s, so `Debug`
/// and logs show `[REDACTED]`; the API shows a secret only at creation and rotation).
#[derive(Debug, Clone)]
pub struct WebhookEndpoint {
    pub id: WebhookEndpointId,
    pub workspace_id: WorkspaceId,
    pub url: String,
    pub description: Option<String>,
    pub events: Vec<String>,
    pub enabled: bool,
    /// `whsec_` + base64.
    pub secret: SecretString,
    /// The secret before the last rotation, while it still signs.
    pub previous_secret: Option<SecretString>,
    pub previous_secret_until: Option<Timestamp>,
    /// First failed try since the last success.
    pub failing_since: Option<Timestamp>,
    /// `failing`: dialtone disabled it after [`DISABLE_AFTER`] of failures.
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl WebhookEndpoint {
    /// The secrets that sign a message sent at `now`: the current one, and the previous one
    /// within [`ROTATION_OVERLAP`] of a rotation.
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<&SecretString> {
        let mut out = vec![&self.secret];
        if let (Some(prev), Some(until)) = (&self.previous_secret, self.previous_secret_until) {
            if now < until {
                out.push(prev);
            }
        }
        out
    }
}

/// A new endpoint (validated by the caller: an http(s) URL, known event types).
#[derive(Debug, Clone)]
pub struct NewWebhookEndpoint {
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub description: Option<String>,
}

/// What a PATCH changes; `None` leaves a field as it is. Enabling clears a
/// `disabled_reason` and the failure streak.
#[derive(Debug, Clone, Default)]
pub struct WebhookEndpointPatch {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
    /// `Some(None)` clears it.
    pub description: Option<Option<String>>,
}

/// One message for one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub message_id: MessageId,
    pub endpoint_id: WebhookEndpointId,
    pub workspace_id: WorkspaceId,
    pub event_type: String,
    /// The JSON body, exactly as signed.
    pub payload: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Tries claimed since it was written or last replayed: the index into
    /// [`RETRY_SCHEDULE`] (a replay restarts the schedule). The delivery log numbers tries
    /// across replays instead ([`DeliveryAttempt::attempt`]).
    pub attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// One try, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryAttempt {
    pub id: DeliveryAttemptId,
    pub message_id: MessageId,
    pub endpoint_id: WebhookEndpointId,
    /// The try's number among every try of this message to this endpoint: 1 for the first,
    /// and a replay continues the count (tries 1, 2 then a replay's 3), so the log never
    /// shows two tries with the same number.
    pub attempt: u32,
    pub attempted_at: Timestamp,
    /// The HTTP status; `None` when no answer came (timeout, refused connection).
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    /// The first [`EXCERPT_BYTES`] of the answer's body.
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    pub succeeded: bool,
}

/// A delivery claimed by a worker, with where and how to send it.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery: Delivery,
    pub url: String,
    /// The secrets to sign with at claim time ([`WebhookEndpoint::signing_secrets`]),
    /// redacted in `Debug`.
    pub secrets: Vec<SecretString>,
}

/// What one try came to.
#[derive(Debug, Clone)]
pub struct TryResult {
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
}

impl TryResult {
    /// A 2xx answer: delivered.
    pub fn succeeded(&self) -> bool {
        self.status_code.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Cuts `s` to at most [`EXCERPT_BYTES`] bytes, at a character boundary.
pub fn excerpt(s: &str) -> String {
    let mut end = s.len().min(EXCERPT_BYTES);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn events_column(events: &[String]) -> String {
    format!(",{},", events.join(","))
}

fn events_of(column: &str) -> Vec<String> {
    column.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect()
}

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: String,
    workspace_id: String,
    url: String,
    description: Option<String>,
    events: String,
    enabled: bool,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_until: Option<i64>,
    failing_since: Option<i64>,
    disabled_reason: Option<String>,
    disabled_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

/// The associated data an endpoint's secrets are sealed with: the row, not the column, as
/// a rotation moves `secret` to `previous_secret` as it is.
fn secret_context(id: &str) -> String {
    format!("webhook_endpoints:{id}")
}

/// A signing secret as stored: sealed under the current master key when there is one,
/// else as given (no master key configured: plaintext, as before 0024).
fn seal_secret(keyring: Option<&Keyring>, id: &str, secret: &str) -> String {
    match keyring {
        Some(k) => k.encrypt(secret, &secret_context(id)),
        None => secret.to_string(),
    }
}

/// A stored signing secret opened: sealed ones with `keyring`, plaintext ones (written
/// before 0024 or without a master key, until `rotate_secrets` seals them) as they are.
fn open_secret(keyring: Option<&Keyring>, id: &str, stored: String) -> Result<SecretString> {
    if !secrets::is_encrypted(&stored) {
        return Ok(SecretString::from(stored));
    }
    let keyring = keyring.ok_or_else(|| crate::StoreError::Corrupt(format!("webhook endpoint {id}'s secret is encrypted and no master key is configured")))?;
    let plain = keyring.decrypt(&stored, &secret_context(id)).map_err(|e| crate::StoreError::Corrupt(format!("webhook endpoint {id}'s secret: {e}")))?;
    Ok(plain)
}

impl EndpointRow {
    fn open(self, keyring: Option<&Keyring>) -> Result<WebhookEndpoint> {
        let secret = open_secret(keyring, &self.id, self.secret)?;
        let previous_secret = self.previous_secret.map(|s| open_secret(keyring, &self.id, s)).transpose()?;
        Ok(WebhookEndpoint {
            id: WebhookEndpointId::from_db(self.id),
            workspace_id: WorkspaceId::from_db(self.workspace_id),
            url: self.url,
            description: self.description,
            events: events_of(&self.events),
            enabled: self.enabled,
            secret,
            previous_secret,
            previous_secret_until: opt_ts(self.previous_secret_until)?,
            failing_since: opt_ts(self.failing_since)?,
            disabled_reason: self.disabled_reason,
            disabled_at: opt_ts(self.disabled_at)?,
            created_at: ts(self.created_at)?,
            updated_at: ts(self.updated_at)?,
        })
    }
}

/// A delivery as the claim's `RETURNING` gives it: without its message's payload.
#[derive(sqlx::FromRow)]
struct ClaimedRow {
    message_id: String,
    endpoint_id: String,
    workspace_id: String,
    event_type: String,
    status: String,
    attempts: i64,
    next_attempt_at: Option<i64>,
    created_at: i64,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    message_id: String,
    endpoint_id: String,
    workspace_id: String,
    event_type: String,
    payload: String,
    status: String,
    attempts: i64,
    next_attempt_at: Option<i64>,
    created_at: i64,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = crate::StoreError;
    fn try_from(r: DeliveryRow) -> Result<Self> {
        Ok(Delivery {
            message_id: MessageId::from_db(r.message_id),
            endpoint_id: WebhookEndpointId::from_db(r.endpoint_id),
            workspace_id: WorkspaceId::from_db(r.workspace_id),
            event_type: r.event_type,
            payload: r.payload,
            status: r.status,
            attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
            next_attempt_at: opt_ts(r.next_attempt_at)?,
            created_at: ts(r.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    id: String,
    message_id: String,
    endpoint_id: String,
    attempt: i64,
    attempted_at: i64,
    status_code: Option<i64>,
    latency_ms: i64,
    response_excerpt: Option<String>,
    error: Option<String>,
    succeeded: bool,
}

impl TryFrom<AttemptRow> for DeliveryAttempt {
    type Error = crate::StoreError;
    fn try_from(r: AttemptRow) -> Result<Self> {
        Ok(DeliveryAttempt {
            id: DeliveryAttemptId::from_db(r.id),
            message_id: MessageId::from_db(r.message_id),
            endpoint_id: WebhookEndpointId::from_db(r.endpoint_id),
            attempt: u32::try_from(r.attempt).unwrap_or(u32::MAX),
            attempted_at: ts(r.attempted_at)?,
            status_code: r.status_code.and_then(|s| u16::try_from(s).ok()),
            latency_ms: u64::try_from(r.latency_ms).unwrap_or(0),
            response_excerpt: r.response_excerpt,
            error: r.error,
            succeeded: r.succeeded,
        })
    }
}

/// A delivery's columns, its message's payload included (`d`: the delivery, `m`: its message).
const DELIVERY_COLUMNS: &str = "d.message_id, d.endpoint_id, d.workspace_id, d.event_type, m.payload, d.status, d.attempts, d.next_attempt_at, d.created_at";

/// Whether endpoint `e` receives message `m` (of its workspace, enabled, subscribed to its
/// type): the one rule of who gets what, for [`emit`], the fan-out and the delivery log.
const RECEIVES: &str = "e.workspace_id = m.workspace_id AND e.enabled AND e.events LIKE '%,' || m.event_type || ',%'";

/// Puts `events` in the outbox, inside the caller's transaction: one message per event whose
/// workspace has an enabled endpoint subscribed to its type (the worker fans it out to
/// those endpoints, see the module's docs). One statement for them all (the events travel as
/// one JSON array, `crate::sql::json_elements`); nothing
/// is written for a workspace without such an endpoint. A message about a call
/// ([`OutboxBody::FromCall`]) is written with its call's id, and one held for its report
/// with the end of its wait.
pub async fn emit(db: &mut Db<'_>, events: &[OutboxEvent], now: Timestamp) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let stamp = now.to_string();
    let until = ms(now.saturating_add(REPORT_WAIT).unwrap_or(now));
    let rows: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            let body = serde_json::json!({ "type": e.event_type, "timestamp": stamp, "data": e.data }).to_string();
            let (call_id, held) = match &e.body {
                OutboxBody::Whole => (None, None),
                OutboxBody::FromCall { call_id, held_for_report } => (Some(call_id.as_str()), held_for_report.then_some(until)),
            };
            serde_json::json!({ "id": MessageId::new().as_str(), "workspace_id": e.workspace_id.as_str(), "event_type": e.event_type,
                "payload": body, "call_id": call_id, "not_before": held })
        })
        .collect();
    let sql = format!(
        "INSERT INTO webhook_messages (id, workspace_id, event_type, payload, created_at, call_id, not_before)
         SELECT m.id, m.workspace_id, m.event_type, m.payload, $1, m.call_id, m.not_before
         FROM (SELECT value ->> 'id' AS id, value ->> 'workspace_id' AS workspace_id, value ->> 'event_type' AS event_type,
                      value ->> 'payload' AS payload, value ->> 'call_id' AS call_id, CAST(value ->> 'not_before' AS BIGINT) AS not_before
               FROM {}) AS m
         WHERE EXISTS (SELECT 1 FROM webhook_endpoints e WHERE {RECEIVES})",
        crate::sql::json_elements(db.dialect(), 2)
    );
    db.execute(&sql, args![ms(now), serde_json::Value::Array(rows).to_string()]).await?;
    Ok(())
}

/// Emits `events` in a transaction of their own (for what no other write commits, such as
/// a failure-rate alert).
pub async fn emit_now(p: Pools<'_>, events: &[OutboxEvent], now: Timestamp) -> Result<()> {
    let mut tx = p.begin().await?;
    emit(&mut tx.db(), events, now).await?;
    tx.commit().await
}

/// Stores a new endpoint; `secret` is sealed under the current master key if `keyring`
/// is given (see [`crate::secrets`]).
pub async fn create(
    p: Pools<'_>,
    ws: &WorkspaceId,
    new: &NewWebhookEndpoint,
    secret: &SecretString,
    keyring: Option<&Keyring>,
    now: Timestamp,
) -> Result<WebhookEndpoint> {
    let id = WebhookEndpointId::new();
    let row: EndpointRow = p
        .write()
        .fetch_one(
            "INSERT INTO webhook_endpoints (id, workspace_id, url, description, events, enabled, secret, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING *",
            args![
                id.as_str(),
                ws.as_str(),
                &new.url,
                new.description.as_deref(),
                events_column(&new.events),
                new.enabled,
                seal_secret(keyring, id.as_str(), secret.expose_secret()),
                ms(now)
            ],
        )
        .await?;
    row.open(keyring)
}

pub async fn get(p: Pools<'_>, ws: &WorkspaceId, id: &str, keyring: Option<&Keyring>) -> Result<Option<WebhookEndpoint>> {
    let row: Option<EndpointRow> =
        p.read().fetch_optional("SELECT * FROM webhook_endpoints WHERE workspace_id = $1 AND id = $2", args![ws.as_str(), id]).await?;
    row.map(|r| r.open(keyring)).transpose()
}

/// A workspace's endpoints, newest first.
pub async fn list(p: Pools<'_>, ws: &WorkspaceId, page: &Page, keyring: Option<&Keyring>) -> Result<Vec<WebhookEndpoint>> {
    let rows: Vec<EndpointRow> = p
        .read()
        .fetch_all(
            "SELECT * FROM webhook_endpoints WHERE workspace_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
            args![ws.as_str(), page.before.as_deref(), page.limit],
        )
        .await?;
    rows.into_iter().map(|r| r.open(keyring)).collect()
}

/// Applies `patch`; `None` if there is no such endpoint in `ws`.
pub async fn update(
    p: Pools<'_>,
    ws: &WorkspaceId,
    id: &str,
    patch: &WebhookEndpointPatch,
    keyring: Option<&Keyring>,
    now: Timestamp,
) -> Result<Option<WebhookEndpoint>> {
    let (set_description, description) = match &patch.description {
        Some(d) => (true, d.clone()),
        None => (false, None),
    };
    let row: Option<EndpointRow> = p
        .write()
        .fetch_optional(
            "UPDATE webhook_endpoints SET url = COALESCE($3, url), events = COALESCE($4, events), enabled = COALESCE($5, enabled),
                description = CASE WHEN $6 THEN $7 ELSE description END,
                failing_since = CASE WHEN $5 THEN NULL ELSE failing_since END,
                disabled_reason = CASE WHEN $5 THEN NULL ELSE disabled_reason END,
                disabled_at = CASE WHEN $5 THEN NULL ELSE disabled_at END,
                updated_at = $8
             WHERE workspace_id = $1 AND id = $2 RETURNING *",
            args![ws.as_str(), id, patch.url.as_deref(), patch.events.as_ref().map(|e| events_column(e)), patch.enabled, set_description, description, ms(now)],
        )
        .await?;
    row.map(|r| r.open(keyring)).transpose()
}

/// Deletes the endpoint with its deliveries and their log; false if there is none.
pub async fn delete(p: Pools<'_>, ws: &WorkspaceId, id: &str) -> Result<bool> {
    let mut tx = p.begin().await?;
    let mut db = tx.db();
    let found: Option<(String,)> = db.fetch_optional("SELECT id FROM webhook_endpoints WHERE workspace_id = $1 AND id = $2", args![ws.as_str(), id]).await?;
    if found.is_none() {
        return Ok(false);
    }
    db.execute("DELETE FROM webhook_attempts WHERE endpoint_id = $1", args![id]).await?;
    db.execute("DELETE FROM webhook_deliveries WHERE endpoint_id = $1", args![id]).await?;
    db.execute("DELETE FROM webhook_endpoints WHERE id = $1", args![id]).await?;
    tx.commit().await?;
    Ok(true)
}

/// Makes `secret` the endpoint's secret; the one it replaces keeps signing for
/// [`ROTATION_OVERLAP`]. Only that one previous secret is kept: the one before it (still
/// in its own overlap after a rotation less than 24 h earlier) stops signing at once.
/// `None` if there is no such endpoint.
pub async fn rotate_secret(
    p: Pools<'_>,
    ws: &WorkspaceId,
    id: &str,
    secret: &SecretString,
    keyring: Option<&Keyring>,
    now: Timestamp,
) -> Result<Option<WebhookEndpoint>> {
    let until = now.saturating_add(ROTATION_OVERLAP).unwrap_or(now);
    let row: Option<EndpointRow> = p
        .write()
        .fetch_optional(
            "UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_until = $3, secret = $4, updated_at = $5
             WHERE workspace_id = $1 AND id = $2 RETURNING *",
            args![ws.as_str(), id, ms(until), seal_secret(keyring, id, secret.expose_secret()), ms(now)],
        )
        .await?;
    row.map(|r| r.open(keyring)).transpose()
}

/// A `call.ended`'s `duration_ms`: the provider's talk time when it is known, else the time
/// between the answer and the end as dialtone saw them (`None` for a call never answered).
pub fn ended_duration_ms(provider: Option<i64>, answered_at: Option<Timestamp>, ended_at: Option<Timestamp>) -> Option<i64> {
    provider.or_else(|| Some(ended_at?.duration_since(answered_at?).as_millis() as i64).filter(|ms| *ms >= 0))
}

/// What a message about a call takes from the call's row at fan-out, by event type: the
/// field of its `data`, and the row's value for it. A field the message was written with
/// stands (a `call.ended`'s outcome as its end decided, a summary that came in the same
/// batch, a `contact.finished`'s final status), except a report's figures
/// ([`REPORT_FIELDS`]) where the row has them; the others are the row's as it stands. The
/// ids, phone, provider and attempt never change once a call is placed, nor its times and
/// end once it ended; its `cost`, `duration_ms` and summary come with the provider's report,
/// which a held `call.ended` waits for ([`REPORT_WAIT`]).
pub const CALL_FIELDS: [(&str, &[&str]); 3] = [
    ("call.started", &["call_id", "campaign_id", "contact_id", "attempt", "phone", "provider", "answered_at"]),
    (
        "call.ended",
        &[
            "call_id",
            "campaign_id",
            "contact_id",
            "attempt",
            "phone",
            "provider",
            "answered_at",
            "ended_reason",
            "duration_ms",
            "cost",
            "transcript_summary",
            "ended_at",
        ],
    ),
    ("contact.finished", &["contact_id", "campaign_id", "last_call_id", "attempts"]),
];

/// The fields of [`CALL_FIELDS`] that come with the provider's end-of-call report: the
/// call's row has the last word on them whenever it has a value.
const REPORT_FIELDS: [&str; 3] = ["cost", "duration_ms", "transcript_summary"];

/// The columns [`CallFill`] reads: a message (`m`) and its call's row (`c`, absent when the
/// message is about no call).
const FILL_COLUMNS: &str = "m.id, m.event_type, m.payload, m.call_id, c.campaign_id, c.contact_id, c.attempt, c.phone, c.provider, \
     c.answered_at, c.ended_at, c.ended_reason, c.cost, c.duration_ms, c.summary";

/// A message the fan-out is about to fan out, with its call's row where it is about one.
#[derive(sqlx::FromRow)]
struct CallFill {
    id: String,
    event_type: String,
    payload: String,
    call_id: Option<String>,
    campaign_id: Option<String>,
    contact_id: Option<String>,
    attempt: Option<i64>,
    phone: Option<String>,
    provider: Option<String>,
    answered_at: Option<i64>,
    ended_at: Option<i64>,
    ended_reason: Option<String>,
    cost: Option<f64>,
    duration_ms: Option<i64>,
    summary: Option<String>,
}

impl CallFill {
    /// The row's value for `field` of [`CALL_FIELDS`] (JSON `null` where the row has none).
    fn value(&self, field: &str) -> Result<serde_json::Value> {
        use serde_json::Value;
        let time = |v: Option<i64>| -> Result<Value> { Ok(v.map(ts).transpose()?.map_or(Value::Null, |t| Value::from(t.to_string()))) };
        Ok(match field {
            "call_id" | "last_call_id" => Value::from(self.call_id.clone()),
            "campaign_id" => Value::from(self.campaign_id.clone()),
            "contact_id" => Value::from(self.contact_id.clone()),
            "attempt" | "attempts" => Value::from(self.attempt),
            "phone" => Value::from(self.phone.clone()),
            "provider" => Value::from(self.provider.clone()),
            "answered_at" => time(self.answered_at)?,
            "ended_at" => time(self.ended_at)?,
            "ended_reason" => Value::from(self.ended_reason.clone()),
            "cost" => self.cost.map_or(Value::Null, Value::from),
            "duration_ms" => Value::from(ended_duration_ms(self.duration_ms, self.answered_at.map(ts).transpose()?, self.ended_at.map(ts).transpose()?)),
            "transcript_summary" => Value::from(self.summary.clone()),
            other => return Err(crate::StoreError::Corrupt(format!("no call field {other} for webhook message {}", self.id))),
        })
    }

    /// The message's body completed from its call's row ([`CALL_FIELDS`]); `None` for a
    /// message about no call, or whose call is gone (it goes as it was written).
    fn completed(&self) -> Result<Option<String>> {
        let Some(fields) = CALL_FIELDS.iter().find(|(t, _)| *t == self.event_type).map(|(_, f)| *f) else { return Ok(None) };
        if self.call_id.is_none() || self.campaign_id.is_none() {
            return Ok(None);
        }
        let mut body: serde_json::Value =
            serde_json::from_str(&self.payload).map_err(|e| crate::StoreError::Corrupt(format!("webhook message {}'s payload is not JSON: {e}", self.id)))?;
        let Some(data) = body.get_mut("data").and_then(serde_json::Value::as_object_mut) else { return Ok(None) };
        for field in fields {
            let value = self.value(field)?;
            // The report's figures replace what was written when the row has them: a
            // `call.ended` written whole (before narrow messages, or held at an upgrade)
            // still gets the report it waited for.
            let report = REPORT_FIELDS.contains(field) && !value.is_null();
            if report || !data.contains_key(*field) {
                data.insert((*field).to_string(), value);
            }
        }
        Ok(Some(body.to_string()))
    }
}

/// Fans out up to `limit` messages not fanned out yet, oldest first, and up to `limit` held
/// `call.ended` messages whose report is in (its content saved on the call, or its event
/// stored [`REPORT_SAVE_GRACE`] ago) or whose wait is over ([`REPORT_WAIT`]). A message
/// about a call is completed from the call's row first ([`CallFill::completed`]). Each gives one
/// delivery or more, so a claim of `limit` never waits on the fan-out; the caller keeps it
/// to one statement's `IN` list, well under either backend's limit of arguments: one
/// delivery per endpoint receiving it ([`RECEIVES`]), due when the message was written.
/// PostgreSQL: nodes fanning out at once take different messages (`SKIP
/// LOCKED`), and a delivery already written is left as it is (`ON CONFLICT DO NOTHING`).
async fn fan_out(db: &mut Db<'_>, limit: u32, now: Timestamp) -> Result<()> {
    let lock = match db.dialect() {
        Dialect::Postgres => "FOR UPDATE OF m SKIP LOCKED",
        Dialect::Sqlite => "",
    };
    let mut ready: Vec<CallFill> = db
        .fetch_all(
            &format!(
                "SELECT {FILL_COLUMNS} FROM webhook_messages m LEFT JOIN calls c ON c.id = m.call_id
                 WHERE m.fanned_out_at IS NULL AND m.not_before IS NULL ORDER BY m.created_at LIMIT $1 {lock}"
            ),
            args![limit],
        )
        .await?;
    let held: Vec<CallFill> = db
        .fetch_all(
            &format!(
                "SELECT {FILL_COLUMNS}
                 FROM webhook_messages m LEFT JOIN calls c ON c.id = m.call_id
                 WHERE m.fanned_out_at IS NULL AND m.not_before IS NOT NULL
                   AND (m.not_before <= $2 OR c.summary IS NOT NULL OR c.recording_url IS NOT NULL
                        OR EXISTS (SELECT 1 FROM call_events e WHERE e.call_id = m.call_id AND e.provider_type = '{}' AND e.received_at <= $3))
                 ORDER BY m.not_before LIMIT $1 {lock}",
                crate::apply::REPORT_TYPE
            ),
            args![limit, ms(now), ms(now.saturating_sub(REPORT_SAVE_GRACE).unwrap_or(now))],
        )
        .await?;
    ready.extend(held);
    // Their bodies completed, in one statement (`crate::sql::json_elements`).
    let mut bodies = Vec::new();
    for m in &ready {
        if let Some(body) = m.completed()? {
            bodies.push(serde_json::json!({ "id": m.id.as_str(), "payload": body }));
        }
    }
    if !bodies.is_empty() {
        let sql = format!(
            "UPDATE webhook_messages SET payload = v.payload
             FROM (SELECT value ->> 'id' AS id, value ->> 'payload' AS payload FROM {}) AS v WHERE webhook_messages.id = v.id",
            crate::sql::json_elements(db.dialect(), 1)
        );
        db.execute(&sql, args![serde_json::Value::Array(bodies).to_string()]).await?;
    }
    let ids: Vec<String> = ready.into_iter().map(|m| m.id).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let list = crate::sql::in_json_list(db.dialect(), 2);
    let with_ids = || args![ms(now), crate::sql::json_list(&ids)];
    // SQLite needs the WHERE before ON CONFLICT in an INSERT … SELECT (its parser's rule).
    db.execute(
        &format!(
            "INSERT INTO webhook_deliveries (message_id, endpoint_id, workspace_id, event_type, status, attempts, next_attempt_at, created_at, updated_at)
             SELECT m.id, e.id, m.workspace_id, m.event_type, 'pending', 0, m.created_at, m.created_at, $1
             FROM webhook_messages m JOIN webhook_endpoints e ON {RECEIVES}
             WHERE m.id IN ({list})
             ON CONFLICT DO NOTHING"
        ),
        with_ids(),
    )
    .await?;
    db.execute(&format!("UPDATE webhook_messages SET fanned_out_at = $1 WHERE id IN ({list})"), with_ids()).await?;
    Ok(())
}

/// How much one [`claim`] takes: up to `deliveries` due deliveries, after fanning out up to
/// `fan_out` waiting messages.
#[derive(Debug, Clone, Copy)]
pub struct ClaimLimits {
    pub deliveries: u32,
    pub fan_out: u32,
}

/// Most messages fanned out per claim: 1,000 (one statement's `IN` list).
const MAX_FAN_OUT: u32 = 1000;

/// Fans out up to `fan_out_limit` waiting messages (at most [`MAX_FAN_OUT`]), then claims up to `limit` due deliveries of enabled endpoints
/// for `node` until `now + lease`, oldest due first, counting a try on each, none to an
/// endpoint in `skip` (the worker's endpoints that have as many tries in flight as one
/// endpoint may: a slow receiver does not take every slot). A row whose lease ran out is
/// due again.
pub async fn claim(
    p: Pools<'_>,
    node: &str,
    now: Timestamp,
    lease: SignedDuration,
    limits: ClaimLimits,
    skip: &[WebhookEndpointId],
    keyring: Option<&Keyring>,
) -> Result<Vec<Claimed>> {
    let ClaimLimits { deliveries: limit, fan_out: fan_out_limit } = limits;
    let mut tx = p.begin().await?;
    let mut db = tx.db();
    fan_out(&mut db, fan_out_limit.clamp(1, MAX_FAN_OUT), now).await?;
    // With statistics that still said "nearly empty" after a burst, PostgreSQL claimed by
    // reading every due delivery, joining and sorting them for a `LIMIT 48`: 117 ms a claim
    // with 125,000 due, against 0.5 ms walking `webhook_deliveries_due` in order
    // (BENCHMARKS.md, issue 13).
    super::planner::analyze_if_grown(&mut db, super::planner::OUTBOX_TABLES).await?;
    // PostgreSQL: several nodes claim at once; SKIP LOCKED lets each take rows the others
    // are not taking, rather than wait for them. SQLite's one writer needs no lock.
    let lock = match db.dialect() {
        Dialect::Postgres => "FOR UPDATE SKIP LOCKED",
        Dialect::Sqlite => "",
    };
    let due = "status = 'pending' AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until <= $2)";
    let skipped = if skip.is_empty() { String::new() } else { format!("AND d.endpoint_id NOT IN ({})", crate::sql::in_json_list(db.dialect(), 5)) };
    let sql = format!(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, claimed_by = $1, lease_until = $3, updated_at = $2
         WHERE (message_id, endpoint_id) IN (
            SELECT d.message_id, d.endpoint_id FROM webhook_deliveries d
            WHERE d.{due} {skipped} AND EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = d.endpoint_id AND e.enabled)
            ORDER BY d.next_attempt_at LIMIT $4 {lock})
           AND {due}
         RETURNING message_id, endpoint_id, workspace_id, event_type, status, attempts, next_attempt_at, created_at"
    );
    let until = now.saturating_add(lease).unwrap_or(now);
    let mut a = args![node, ms(now), ms(until), limit];
    if !skip.is_empty() {
        a.push(Arg::from(crate::sql::json_list(&skip.iter().map(|e| e.as_str()).collect::<Vec<_>>())));
    }
    let claimed: Vec<ClaimedRow> = db.fetch_all(&sql, a).await?;
    if claimed.is_empty() {
        tx.commit().await?;
        return Ok(vec![]);
    }
    // Their messages' payloads, each read once.
    let mut ids: Vec<&str> = claimed.iter().map(|r| r.message_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let payloads: Vec<(String, String)> = db
        .fetch_all(
            &format!("SELECT id, payload FROM webhook_messages WHERE id IN ({})", crate::sql::in_json_list(db.dialect(), 1)),
            args![crate::sql::json_list(&ids)],
        )
        .await?;
    let payloads: std::collections::HashMap<String, String> = payloads.into_iter().collect();
    let mut rows: Vec<DeliveryRow> = Vec::with_capacity(claimed.len());
    for r in claimed {
        let payload =
            payloads.get(&r.message_id).cloned().ok_or_else(|| crate::StoreError::Corrupt(format!("delivery of message {} has no message", r.message_id)))?;
        rows.push(DeliveryRow {
            message_id: r.message_id,
            endpoint_id: r.endpoint_id,
            workspace_id: r.workspace_id,
            event_type: r.event_type,
            payload,
            status: r.status,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            created_at: r.created_at,
        });
    }
    rows.sort_by_key(|r| r.next_attempt_at);
    let mut endpoints: std::collections::HashMap<String, Option<WebhookEndpoint>> = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let d = Delivery::try_from(r)?;
        if !endpoints.contains_key(d.endpoint_id.as_str()) {
            let ep: Option<EndpointRow> = db.fetch_optional("SELECT * FROM webhook_endpoints WHERE id = $1", args![d.endpoint_id.as_str()]).await?;
            endpoints.insert(d.endpoint_id.as_str().to_string(), ep.map(|e| e.open(keyring)).transpose()?);
        }
        let Some(Some(ep)) = endpoints.get(d.endpoint_id.as_str()) else { continue };
        let secrets = ep.signing_secrets(now).into_iter().cloned().collect();
        out.push(Claimed { delivery: d, url: ep.url.clone(), secrets });
    }
    tx.commit().await?;
    Ok(out)
}

/// Records try number `attempt` (since the write or the last replay) of a claimed delivery
/// and schedules what follows: delivered on a 2xx; else due again after the next wait of
/// [`RETRY_SCHEDULE`], or `failed` after the last. The log numbers the try after every try
/// logged before it ([`DeliveryAttempt::attempt`]). The endpoint's failure streak is reset on success, started on failure, and the
/// endpoint disabled once the streak is [`DISABLE_AFTER`] old. False (nothing written) if
/// the claim is no longer `node`'s (its lease ran out and another node took the row).
pub async fn finish(p: Pools<'_>, claimed: &Delivery, attempt: u32, node: &str, result: &TryResult, now: Timestamp) -> Result<bool> {
    let mut tx = p.begin().await?;
    let recorded = finish_in(&mut tx.db(), claimed, attempt, node, result, now).await?;
    tx.commit().await?;
    Ok(recorded)
}

/// [`finish`] for several tries in one transaction (one WAL sync on SQLite's one writer,
/// where each try's own commit queued with the ingest's): whether each was recorded.
pub async fn finish_many(p: Pools<'_>, tries: &[FinishedTry], node: &str, now: Timestamp) -> Result<Vec<bool>> {
    let mut tx = p.begin().await?;
    let mut recorded = Vec::with_capacity(tries.len());
    for t in tries {
        recorded.push(finish_in(&mut tx.db(), &t.delivery, t.attempt, node, &t.result, now).await?);
    }
    tx.commit().await?;
    Ok(recorded)
}

/// One try to record: the claimed delivery, the try's number and what came of it.
#[derive(Debug, Clone)]
pub struct FinishedTry {
    pub delivery: Delivery,
    pub attempt: u32,
    pub result: TryResult,
}

async fn finish_in(db: &mut Db<'_>, claimed: &Delivery, attempt: u32, node: &str, result: &TryResult, now: Timestamp) -> Result<bool> {
    let ok = result.succeeded();
    let next = RETRY_SCHEDULE.get(attempt as usize).map(|wait| ms(now.saturating_add(*wait).unwrap_or(now)));
    let status = match (ok, next) {
        (true, _) => "delivered",
        (false, Some(_)) => "pending",
        (false, None) => "failed",
    };
    let n = db
        .execute(
            "UPDATE webhook_deliveries SET status = $1, next_attempt_at = $2, claimed_by = NULL, lease_until = NULL, updated_at = $3
             WHERE message_id = $4 AND endpoint_id = $5 AND attempts = $6 AND claimed_by = $7 AND status = 'pending'",
            args![status, if ok { None } else { next }, ms(now), claimed.message_id.as_str(), claimed.endpoint_id.as_str(), attempt, node],
        )
        .await?;
    if n == 0 {
        return Ok(false);
    }
    // The row is this node's claim: no other try of it is being logged meanwhile.
    let (logged,): (i64,) = db
        .fetch_one(
            "SELECT CAST(COALESCE(MAX(attempt), 0) AS BIGINT) FROM webhook_attempts WHERE message_id = $1 AND endpoint_id = $2",
            args![claimed.message_id.as_str(), claimed.endpoint_id.as_str()],
        )
        .await?;
    db.execute(
        "INSERT INTO webhook_attempts (id, message_id, endpoint_id, attempt, attempted_at, status_code, latency_ms, response_excerpt, error, succeeded)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        args![
            DeliveryAttemptId::new().as_str(),
            claimed.message_id.as_str(),
            claimed.endpoint_id.as_str(),
            logged + 1,
            ms(now),
            result.status_code.map(i64::from),
            i64::try_from(result.latency_ms).unwrap_or(i64::MAX),
            result.response_excerpt.as_deref().map(excerpt),
            result.error.as_deref().map(excerpt),
            ok
        ],
    )
    .await?;
    if ok {
        db.execute("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL", args![claimed.endpoint_id.as_str()])
            .await?;
    } else {
        let cutoff = ms(now.saturating_sub(DISABLE_AFTER).unwrap_or(now));
        db.execute("UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $1) WHERE id = $2", args![ms(now), claimed.endpoint_id.as_str()])
            .await?;
        db.execute(
            "UPDATE webhook_endpoints SET enabled = FALSE, disabled_reason = 'failing', disabled_at = $1, updated_at = $1
             WHERE id = $2 AND enabled AND failing_since <= $3",
            args![ms(now), claimed.endpoint_id.as_str(), cutoff],
        )
        .await?;
    }
    Ok(true)
}

/// An endpoint's deliveries, newest first (`page.before`: a message id), each with its tries
/// in order.
pub async fn deliveries(p: Pools<'_>, ws: &WorkspaceId, endpoint: &str, page: &Page) -> Result<Vec<(Delivery, Vec<DeliveryAttempt>)>> {
    let mut db = p.read();
    // Its deliveries, and the messages for it the worker has not fanned out yet (shown
    // pending, no try yet; a held `call.ended` due at the end of its wait at the latest).
    let mut rows: Vec<DeliveryRow> = db
        .fetch_all(
            &format!(
                "SELECT * FROM (
                    SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhook_messages m ON m.id = d.message_id
                    WHERE d.workspace_id = $1 AND d.endpoint_id = $2 AND ($3 IS NULL OR d.message_id < $3)
                    UNION ALL
                    SELECT m.id, e.id, m.workspace_id, m.event_type, m.payload, 'pending', 0, COALESCE(m.not_before, m.created_at), m.created_at
                    FROM webhook_messages m JOIN webhook_endpoints e ON e.id = $2 AND {RECEIVES}
                    WHERE m.fanned_out_at IS NULL AND m.workspace_id = $1 AND ($3 IS NULL OR m.id < $3)
                 ) AS r ORDER BY message_id DESC LIMIT $4"
            ),
            args![ws.as_str(), endpoint, page.before.as_deref(), page.limit],
        )
        .await?;
    if rows.is_empty() {
        return Ok(vec![]);
    }
    // A message not fanned out yet shows the body it will go with: one about a call is
    // completed from the call's row as the fan-out will ([`CallFill::completed`]).
    let list = crate::sql::in_json_list(db.dialect(), 1);
    let ids = crate::sql::json_list(&rows.iter().map(|r| r.message_id.as_str()).collect::<Vec<_>>());
    let unfanned: Vec<CallFill> = db
        .fetch_all(
            &format!("SELECT {FILL_COLUMNS} FROM webhook_messages m LEFT JOIN calls c ON c.id = m.call_id WHERE m.fanned_out_at IS NULL AND m.id IN ({list})"),
            args![ids.as_str()],
        )
        .await?;
    let mut completed = std::collections::HashMap::new();
    for m in &unfanned {
        if let Some(body) = m.completed()? {
            completed.insert(m.id.as_str(), body);
        }
    }
    for r in &mut rows {
        if let Some(body) = completed.get(r.message_id.as_str()) {
            r.payload = body.clone();
        }
    }
    let list = crate::sql::in_json_list(db.dialect(), 2);
    let attempts: Vec<AttemptRow> = db
        .fetch_all(
            &format!("SELECT * FROM webhook_attempts WHERE endpoint_id = $1 AND message_id IN ({list}) ORDER BY attempted_at, id"),
            args![endpoint, ids.as_str()],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let d = Delivery::try_from(r)?;
        let tries = attempts.iter().filter(|a| a.message_id == d.message_id.as_str()).map(|a| clone_attempt(a).try_into()).collect::<Result<Vec<_>>>()?;
        out.push((d, tries));
    }
    Ok(out)
}

fn clone_attempt(a: &AttemptRow) -> AttemptRow {
    AttemptRow {
        id: a.id.clone(),
        message_id: a.message_id.clone(),
        endpoint_id: a.endpoint_id.clone(),
        attempt: a.attempt,
        attempted_at: a.attempted_at,
        status_code: a.status_code,
        latency_ms: a.latency_ms,
        response_excerpt: a.response_excerpt.clone(),
        error: a.error.clone(),
        succeeded: a.succeeded,
    }
}

/// Gives back deliveries `node` claimed and will not try now (their endpoint has as many
/// tries in flight as it may): unclaimed, their try uncounted, due as they were. Returns how
/// many were given back (a claim no longer `node`'s is left alone).
pub async fn give_back(p: Pools<'_>, node: &str, deliveries: &[Delivery]) -> Result<u64> {
    let mut tx = p.begin().await?;
    let mut n = 0;
    for d in deliveries {
        n += tx
            .db()
            .execute(
                "UPDATE webhook_deliveries SET attempts = attempts - 1, claimed_by = NULL, lease_until = NULL
                 WHERE message_id = $1 AND endpoint_id = $2 AND claimed_by = $3 AND attempts = $4 AND status = 'pending'",
                args![d.message_id.as_str(), d.endpoint_id.as_str(), node, d.attempts],
            )
            .await?;
    }
    tx.commit().await?;
    Ok(n)
}

/// Sends a message to the endpoint again: the delivery is pending and due at `now`, its
/// retry schedule restarted (the log keeps the earlier tries, and numbers the new ones
/// after them). False if there is no such
/// delivery in `ws`.
pub async fn replay(p: Pools<'_>, ws: &WorkspaceId, endpoint: &str, message: &str, now: Timestamp) -> Result<bool> {
    let n = p
        .write()
        .execute(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1, claimed_by = NULL, lease_until = NULL, updated_at = $1
             WHERE workspace_id = $2 AND endpoint_id = $3 AND message_id = $4",
            args![ms(now), ws.as_str(), endpoint, message],
        )
        .await?;
    Ok(n == 1)
}

/// The workspace of a campaign (for events the engine raises about it, such as a
/// failure-rate alert); `None` if there is no such campaign.
pub async fn campaign_workspace(p: Pools<'_>, campaign: &str) -> Result<Option<WorkspaceId>> {
    let row: Option<(String,)> = p.read().fetch_optional("SELECT workspace_id FROM campaigns WHERE id = $1", args![campaign]).await?;
    Ok(row.map(|(ws,)| WorkspaceId::from_db(ws)))
}

/// Seals under `keyring`'s current key every endpoint secret not sealed by it (plaintext
/// ones from before 0024 included): the number of values re-sealed. A row changed
/// meanwhile keeps its new value (each update names the value it replaces).
pub async fn rotate_secrets(p: Pools<'_>, keyring: &Keyring) -> Result<u64> {
    let current = format!("{}:{}:%", secrets::PREFIX, keyring.current_id());
    let rows: Vec<(String, String, Option<String>)> = p
        .read()
        .fetch_all(
            "SELECT id, secret, previous_secret FROM webhook_endpoints WHERE secret NOT LIKE $1 OR (previous_secret IS NOT NULL AND previous_secret NOT LIKE $1)",
            args![&current],
        )
        .await?;
    let mut n = 0;
    for (id, secret, previous) in rows {
        for (column, stored) in [("secret", Some(secret)), ("previous_secret", previous)] {
            let Some(stored) = stored.filter(|s| !keyring.is_current(s)) else { continue };
            let plain = open_secret(Some(keyring), &id, stored.clone())?;
            let sealed = seal_secret(Some(keyring), &id, plain.expose_secret());
            // The column name comes from the list above, never from input.
            n += p.write().execute(&format!("UPDATE webhook_endpoints SET {column} = $1 WHERE id = $2 AND {column} = $3"), args![sealed, &id, stored]).await?;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(event_type: &str, payload: serde_json::Value, call: bool) -> CallFill {
        CallFill {
            id: "msg_1".into(),
            event_type: event_type.into(),
            payload: payload.to_string(),
            call_id: Some("call_1".into()),
            campaign_id: call.then(|| "cmp_1".into()),
            contact_id: call.then(|| "ct_1".into()),
            attempt: call.then_some(2),
            phone: call.then(|| "+14155550123".into()),
            provider: call.then(|| "vapi".into()),
            answered_at: call.then_some(1_700_000_001_000),
            ended_at: call.then_some(1_700_000_004_500),
            ended_reason: call.then(|| "customer-ended-call".into()),
            cost: call.then_some(0.25),
            duration_ms: None,
            summary: call.then(|| "Booked.".into()),
        }
    }

    fn data(f: &CallFill) -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&f.completed().unwrap().expect("completed")).unwrap()["data"].clone()
    }

    #[test]
    fn a_narrow_call_event_is_completed_from_its_calls_row_and_keeps_what_it_was_written_with() {
        let started = data(&fill("call.started", serde_json::json!({"type": "call.started", "timestamp": "t", "data": {}}), true));
        assert_eq!(
            started,
            serde_json::json!({"call_id": "call_1", "campaign_id": "cmp_1", "contact_id": "ct_1", "attempt": 2, "phone": "+14155550123",
                               "provider": "vapi", "answered_at": "2023-11-14T22:13:21Z"})
        );
        // The outcome as the end decided it stands, whatever the row says; the duration is
        // dialtone's own (no talk time from the provider): ended − answered.
        let ended = data(&fill("call.ended", serde_json::json!({"type": "call.ended", "timestamp": "t", "data": {"outcome": "voicemail"}}), true));
        assert_eq!(ended["outcome"], "voicemail");
        assert_eq!(ended["duration_ms"], 3500);
        assert_eq!(ended["ended_at"], "2023-11-14T22:13:24.5Z");
        assert_eq!((ended["cost"].clone(), ended["transcript_summary"].clone()), (serde_json::json!(0.25), serde_json::json!("Booked.")));
        let finished = data(&fill(
            "contact.finished",
            serde_json::json!({"type": "contact.finished", "timestamp": "t", "data": {"status": "done", "last_outcome": "completed"}}),
            true,
        ));
        assert_eq!(
            finished,
            serde_json::json!({"status": "done", "last_outcome": "completed", "contact_id": "ct_1", "campaign_id": "cmp_1", "last_call_id": "call_1", "attempts": 2})
        );
    }

    #[test]
    fn a_call_ended_written_whole_still_gets_its_report_and_other_messages_go_as_written() {
        // Held at an upgrade, written whole before narrow messages: the report's figures
        // come from the row, what else it was written with stands.
        let whole = serde_json::json!({"type": "call.ended", "timestamp": "t", "data": {
            "call_id": "call_1", "outcome": "completed", "phone": "+14155550123", "cost": null, "transcript_summary": null, "duration_ms": 900}});
        let ended = data(&fill("call.ended", whole.clone(), true));
        assert_eq!((ended["cost"].clone(), ended["transcript_summary"].clone()), (serde_json::json!(0.25), serde_json::json!("Booked.")));
        assert_eq!(ended["duration_ms"], 3500, "the row's answer and end give the duration");
        // A campaign event names no call; a call that is gone leaves the body as written.
        let mut campaign = fill("campaign.started", serde_json::json!({"type": "campaign.started", "timestamp": "t", "data": {"campaign_id": "cmp_1"}}), true);
        campaign.call_id = None;
        assert!(campaign.completed().unwrap().is_none());
        assert!(fill("call.ended", whole, false).completed().unwrap().is_none());
        let bad = fill("call.ended", serde_json::json!("not an object"), true);
        assert!(bad.completed().unwrap().is_none(), "a body without data goes as written");
    }

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const PREVIOUS: &str = "whsec_C2FsdGVkIGFuZCBwcmV2aW91cyBzZWNyZXQ=";

    #[test]
    fn debug_of_an_endpoint_or_a_claimed_delivery_never_shows_a_signing_secret() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let ep = WebhookEndpoint {
            id: WebhookEndpointId::new(),
            workspace_id: WorkspaceId::new(),
            url: "https://example.com/hook".into(),
            description: None,
            events: vec!["call.ended".into()],
            enabled: true,
            secret: SecretString::from(SECRET),
            previous_secret: Some(SecretString::from(PREVIOUS)),
            previous_secret_until: Some(now.saturating_add(ROTATION_OVERLAP).unwrap()),
            failing_since: None,
            disabled_reason: None,
            disabled_at: None,
            created_at: now,
            updated_at: now,
        };
        let delivery = Delivery {
            message_id: MessageId::new(),
            endpoint_id: ep.id.clone(),
            workspace_id: ep.workspace_id.clone(),
            event_type: "call.ended".into(),
            payload: "{}".into(),
            status: "pending".into(),
            attempts: 1,
            next_attempt_at: None,
            created_at: now,
        };
        let claimed = Claimed { delivery, url: ep.url.clone(), secrets: ep.signing_secrets(now).into_iter().cloned().collect() };
        assert_eq!(claimed.secrets.iter().map(|s| s.expose_secret()).collect::<Vec<_>>(), [SECRET, PREVIOUS], "both sign during the overlap");
        for shown in [format!("{ep:?}"), format!("{ep:#?}"), format!("{claimed:?}")] {
            assert!(!shown.contains("whsec_"), "a secret in {shown}");
            assert!(shown.contains("REDACTED"), "{shown}");
        }
    }
}
