//! Reads and edits behind the API's campaign-steering routes (issue 11): the filtered
//! contact list, the grouped `waiting` counts, `PATCH` and archive of a campaign, and the
//! keyset pages of the CSV export. Written once for both backends; the one place the
//! dialects differ (listing the keys of a JSON object) says why.

use super::{pg_lock, Pools};
use crate::common::{ms, opt_ts};
use crate::rows::{CampaignRow, ContactRow};
use crate::sql::{args, Arg, Dialect};
use crate::{Campaign, Contact, Page, Result, StoreError};
use dialtone_core::frequency::Recurrence;
use dialtone_core::schedule::{LocalHours, Schedule};
use dialtone_core::{CampaignId, ContactStatus, Mode, RetryPolicy, WorkspaceId};
use jiff::Timestamp;
use serde::Serialize;

/// Which contacts `GET /campaigns/{id}/contacts` lists. Empty `statuses` = every status.
#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    /// Any of these statuses (empty: all).
    pub statuses: Vec<ContactStatus>,
    /// Digits matched anywhere in the E.164 number (`+` and separators ignored): set when
    /// the search text holds a digit.
    pub phone_digits: Option<String>,
    /// Matched, case-insensitively, anywhere in the contact's name.
    pub name: Option<String>,
}

impl ContactFilter {
    /// The filter for search text `q`: its digits (if any) search the number, the whole
    /// text searches the name; a contact matching either is listed.
    pub fn search(q: &str) -> (Option<String>, Option<String>) {
        let q = q.trim();
        if q.is_empty() {
            return (None, None);
        }
        let digits: String = q.chars().filter(char::is_ascii_digit).collect();
        // A phone-looking text (digits, `+`, spaces, dashes, dots, parentheses) searches
        // the number only; anything else searches the name (and digits within it, the number).
        let phone_like = q.chars().all(|c| c.is_ascii_digit() || "+ -.()".contains(c));
        let name = (!phone_like).then(|| q.to_lowercase());
        ((!digits.is_empty()).then_some(digits), name)
    }
}

/// `%text%` for `LIKE … ESCAPE '\'`, with `%`, `_` and `\` in `text` matched literally.
fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// A campaign's contacts matching `filter`, newest first (`Page::before`: the last id of
/// the previous page).
pub async fn list_contacts(p: Pools<'_>, ws: &WorkspaceId, campaign: &CampaignId, filter: &ContactFilter, page: &Page) -> Result<Vec<Contact>> {
    let mut sql = String::from("SELECT * FROM contacts WHERE workspace_id = $1 AND campaign_id = $2");
    let mut a: Vec<Arg> = args![ws.as_str(), campaign.as_str()];
    if let Some(before) = &page.before {
        a.push(Arg::from(before.as_str()));
        sql.push_str(&format!(" AND id < ${}", a.len()));
    }
    if !filter.statuses.is_empty() {
        let first = a.len() + 1;
        a.extend(filter.statuses.iter().map(|s| Arg::from(s.as_str())));
        sql.push_str(&format!(" AND status IN ({})", super::placeholders(first, filter.statuses.len())));
    }
    let mut search = vec![];
    if let Some(d) = &filter.phone_digits {
        a.push(Arg::from(like_pattern(d)));
        search.push(format!("phone LIKE ${} ESCAPE '\\'", a.len()));
    }
    if let Some(n) = &filter.name {
        a.push(Arg::from(like_pattern(n)));
        search.push(format!("LOWER(name) LIKE ${} ESCAPE '\\'", a.len()));
    }
    if !search.is_empty() {
        sql.push_str(&format!(" AND ({})", search.join(" OR ")));
    }
    a.push(Arg::from(page.limit));
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", a.len()));
    let rows: Vec<ContactRow> = p.read().fetch_all(&sql, a).await?;
    rows.into_iter().map(Contact::try_from).collect()
}

/// What a pending contact waits for (`waiting_for` in the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitingFor {
    /// Its own calling hours are closed in one of its zones (or its zones share none).
    CallingHours,
    /// A retry delay after an earlier attempt.
    RetryDelay,
    /// The campaign's schedule is closed (windows, dates, blackout days), or a recurring
    /// campaign's next occurrence has not come.
    CampaignSchedule,
    /// The provider account's circuit breaker is open.
    CircuitBreaker,
    /// The provider account is at its concurrency limit.
    AccountCap,
    /// The campaign has `max_concurrent` calls live (one in batch mode).
    CampaignCap,
    /// Every caller number the contact may use has made the workspace's daily call limit:
    /// until the next midnight, UTC.
    CallerNumberLimit,
}

dialtone_core::text_enum!(WaitingFor, "waiting_for", {
    CallingHours => "calling_hours", RetryDelay => "retry_delay", CampaignSchedule => "campaign_schedule",
    CircuitBreaker => "circuit_breaker", AccountCap => "account_cap", CampaignCap => "campaign_cap",
    CallerNumberLimit => "caller_number_limit",
});

/// What holds every due contact of a campaign back right now (judged by the caller from
/// the campaign's schedule, its live calls and the provider account), and until when if known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CampaignHold {
    pub reason: WaitingFor,
    pub until: Option<Timestamp>,
}

/// Why a contact is not being called at `now`, and until when (if known); `None` for a
/// contact that is not pending, or is due and held by nothing (next in line).
///
/// In order: a claim-time hold (`wait_reason`: calling hours, until `next_attempt_at`; no
/// common hours, until unknown); a future `next_attempt_at` (a retry delay if the contact
/// was attempted before, else the campaign's schedule or recurrence); else what holds the
/// whole campaign (`hold`).
pub fn waiting_for(contact: &Contact, now: Timestamp, hold: Option<CampaignHold>) -> Option<(WaitingFor, Option<Timestamp>)> {
    if contact.status != ContactStatus::Pending {
        return None;
    }
    if let Some(w) = &contact.waiting {
        let why = if w.reason == crate::WaitReason::CallerNumberLimit { WaitingFor::CallerNumberLimit } else { WaitingFor::CallingHours };
        return Some((why, w.until));
    }
    if contact.next_attempt_at > now {
        let why = if contact.attempts > 0 { WaitingFor::RetryDelay } else { WaitingFor::CampaignSchedule };
        return Some((why, Some(contact.next_attempt_at)));
    }
    hold.map(|h| (h.reason, h.until))
}

/// One group of a campaign's pending contacts for the `waiting` breakdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingGroup {
    /// `contacts.wait_reason` (`calling_hours`, `no_common_hours`) or `None`.
    pub wait_reason: Option<String>,
    /// Due after `now` (true) or due already (false).
    pub later: bool,
    /// Whether any contact of the group was attempted before (a retry).
    pub retried: bool,
    pub count: u64,
    pub earliest: Timestamp,
    pub latest: Timestamp,
}

#[derive(sqlx::FromRow)]
struct PendingGroupRow {
    wait_reason: Option<String>,
    later: i64,
    retried: i64,
    n: i64,
    earliest: i64,
    latest: i64,
}

/// A campaign's pending contacts grouped by claim-time hold, due-or-not and retried-or-not,
/// with each group's earliest and latest `next_attempt_at`: one grouped read over the
/// `contacts_campaign_status` index.
pub async fn pending_groups(p: Pools<'_>, campaign: &CampaignId, now: Timestamp) -> Result<Vec<PendingGroup>> {
    // CASTs: PostgreSQL's CASE yields INTEGER (int4), decoded here as i64 like every count.
    let rows: Vec<PendingGroupRow> = p
        .read()
        .fetch_all(
            "SELECT wait_reason, CAST(CASE WHEN next_attempt_at > $2 THEN 1 ELSE 0 END AS BIGINT) AS later,
                    CAST(CASE WHEN attempts > 0 THEN 1 ELSE 0 END AS BIGINT) AS retried,
                    COUNT(*) AS n, MIN(next_attempt_at) AS earliest, MAX(next_attempt_at) AS latest
             FROM contacts WHERE campaign_id = $1 AND status = 'pending'
             GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            args![campaign.as_str(), ms(now)],
        )
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(PendingGroup {
                wait_reason: r.wait_reason,
                later: r.later != 0,
                retried: r.retried != 0,
                count: r.n as u64,
                earliest: crate::common::ts(r.earliest)?,
                latest: crate::common::ts(r.latest)?,
            })
        })
        .collect()
}

/// The fields `PATCH /campaigns/{id}` may change; `None` leaves a field as it is. Checked by
/// the caller (as at creation).
#[derive(Debug, Clone, Default)]
pub struct CampaignPatch {
    pub name: Option<String>,
    pub max_concurrent: Option<u32>,
    pub mode: Option<Mode>,
    pub max_attempts: Option<u32>,
    pub retry: Option<RetryPolicy>,
    pub schedule: Option<Schedule>,
    pub calling_hours: Option<LocalHours>,
    pub recurrence: Option<Recurrence>,
    /// A new caller-ID pool (an empty `numbers` removes it). Contacts keep the number their
    /// first attempt used while it stays in the pool; others pick anew.
    pub caller_pool: Option<crate::CallerPool>,
    /// `Some(None)` removes the throttle.
    pub calls_per_minute: Option<Option<u32>>,
}

/// Applies `patch` to a campaign of the workspace that is neither archived nor over. The
/// claim reads the campaign row each time, so the change holds from the next claim.
/// Errors: `NotFound`; `Conflict` if the campaign is completed, canceled or archived.
///
/// New calling hours or a new schedule (its time zone is the one contacts without their
/// own are judged in) also free the contacts that were waiting for the old hours
/// (`calling_hours`, `no_common_hours`): they become due now, in the same transaction, and
/// the next claim judges them by the new rules, dialling those inside them and sending the
/// others to wait for the new hours' next opening. So they are called neither at the old
/// time nor earlier than the new hours allow. A retry delay is not a wait for the hours and
/// stays as it was.
pub async fn update(p: Pools<'_>, ws: &WorkspaceId, id: &CampaignId, patch: &CampaignPatch, now: Timestamp) -> Result<Campaign> {
    let mut tx = p.begin().await?;
    let row: Option<CampaignRow> = tx
        .db()
        .fetch_optional(
            "UPDATE campaigns SET
                name = COALESCE($3, name), max_concurrent = COALESCE($4, max_concurrent), mode = COALESCE($5, mode),
                max_attempts = COALESCE($6, max_attempts), retry_policy = COALESCE($7, retry_policy),
                schedule = COALESCE($8, schedule), calling_hours = COALESCE($9, calling_hours),
                recurrence = COALESCE($10, recurrence), updated_at = $11,
                caller_numbers = COALESCE($12, caller_numbers), caller_number_strategy = COALESCE($13, caller_number_strategy),
                fallback_strategy = COALESCE($14, fallback_strategy),
                calls_per_minute = CASE WHEN $15 THEN $16 ELSE calls_per_minute END
             WHERE workspace_id = $1 AND id = $2 AND archived_at IS NULL AND status NOT IN ('completed', 'canceled')
             RETURNING *",
            args![
                ws.as_str(),
                id.as_str(),
                patch.name.as_deref(),
                patch.max_concurrent,
                patch.mode.map(|m| m.as_str()),
                patch.max_attempts,
                patch.retry.as_ref().map(json),
                patch.schedule.as_ref().map(json),
                patch.calling_hours.as_ref().map(json),
                patch.recurrence.as_ref().map(json),
                ms(now),
                patch.caller_pool.as_ref().map(|p| json(&p.numbers)),
                patch.caller_pool.as_ref().map(|p| p.strategy.as_str()),
                patch.caller_pool.as_ref().map(|p| p.fallback.as_str()),
                patch.calls_per_minute.is_some(),
                patch.calls_per_minute.flatten(),
            ],
        )
        .await?;
    let Some(row) = row else {
        drop(tx);
        return Err(over_or_missing(p, ws, id, "changed").await);
    };
    if patch.calling_hours.is_some() || patch.schedule.is_some() {
        tx.db()
            .execute(
                "UPDATE contacts SET next_attempt_at = $1, wait_reason = NULL, updated_at = $1
                 WHERE campaign_id = $2 AND status = 'pending' AND wait_reason IN ('calling_hours', 'no_common_hours', 'hours_outside_schedule')",
                args![ms(now), id.as_str()],
            )
            .await?;
    }
    if patch.caller_pool.is_some() {
        // A new pool may have room: contacts waiting for the old numbers' daily limit are
        // judged again at the next claim.
        tx.db()
            .execute(
                "UPDATE contacts SET next_attempt_at = $1, wait_reason = NULL, updated_at = $1
                 WHERE campaign_id = $2 AND status = 'pending' AND wait_reason = 'caller_number_limit'",
                args![ms(now), id.as_str()],
            )
            .await?;
    }
    tx.commit().await?;
    row.try_into()
}

/// The error for a campaign an edit did not touch: `NotFound`, or `Conflict` saying why.
async fn over_or_missing(p: Pools<'_>, ws: &WorkspaceId, id: &CampaignId, verb: &str) -> StoreError {
    match super::campaigns::get(p, ws, id).await {
        Ok(None) => StoreError::not_found("campaign", id),
        Ok(Some(c)) if c.archived_at.is_some() => StoreError::Conflict(format!("the campaign is archived; it can no longer be {verb}")),
        Ok(Some(c)) => StoreError::Conflict(format!("the campaign is {}; it can no longer be {verb}", c.status)),
        Err(e) => e,
    }
}

/// What [`archive`] did.
#[derive(Debug, Clone)]
pub enum Archived {
    /// Archived now (a campaign not yet over was canceled first, with its pending contacts
    /// and scheduled calls).
    Done(Box<Campaign>),
    /// It has this many calls in flight: nothing changed.
    ActiveCalls(u64),
}

/// Archives a campaign with no call in flight: sets `archived_at`, and cancels it (pending
/// contacts and scheduled calls included) if it was not over, so an archived campaign never
/// dials again. Archiving an archived campaign changes nothing and returns it. `NotFound`
/// for no such campaign.
pub async fn archive(p: Pools<'_>, ws: &WorkspaceId, id: &CampaignId, now: Timestamp) -> Result<Archived> {
    let mut tx = p.begin().await?;
    let mut db = tx.db();
    // The campaign row orders this against claims (which lock it FOR UPDATE on PostgreSQL):
    // once held, no new call can start before the archive commits.
    pg_lock(&mut db, "SELECT 1 FROM campaigns WHERE workspace_id = $1 AND id = $2 FOR UPDATE", args![ws.as_str(), id.as_str()]).await?;
    let row: Option<CampaignRow> = db.fetch_optional("SELECT * FROM campaigns WHERE workspace_id = $1 AND id = $2", args![ws.as_str(), id.as_str()]).await?;
    let Some(row) = row else {
        return Err(StoreError::not_found("campaign", id));
    };
    if row.archived_at.is_some() {
        return Ok(Archived::Done(Box::new(row.try_into()?)));
    }
    let (active,): (i64,) = db.fetch_one(crate::common::LIVE_IN_CAMPAIGN_SQL, args![id.as_str()]).await?;
    if active > 0 {
        return Ok(Archived::ActiveCalls(active as u64));
    }
    db.execute(
        "UPDATE campaigns SET status = CASE WHEN status IN ('completed', 'canceled') THEN status ELSE 'canceled' END,
            completed_at = COALESCE(completed_at, $1), archived_at = $1, updated_at = $1
         WHERE id = $2",
        args![ms(now), id.as_str()],
    )
    .await?;
    db.execute("UPDATE contacts SET status = 'canceled', updated_at = $1 WHERE campaign_id = $2 AND status = 'pending'", args![ms(now), id.as_str()]).await?;
    db.execute(
        "UPDATE calls SET status = 'canceled', outcome = 'canceled', ended_at = $1, updated_at = $1 WHERE campaign_id = $2 AND status = 'scheduled'",
        args![ms(now), id.as_str()],
    )
    .await?;
    let row: CampaignRow = db.fetch_one("SELECT * FROM campaigns WHERE id = $1", args![id.as_str()]).await?;
    tx.commit().await?;
    Ok(Archived::Done(Box::new(row.try_into()?)))
}

/// A workspace's campaigns, newest first: archived ones only if `archived`, else the others.
pub async fn list_campaigns(p: Pools<'_>, ws: &WorkspaceId, archived: bool, page: &Page) -> Result<Vec<Campaign>> {
    let which = if archived { "archived_at IS NOT NULL" } else { "archived_at IS NULL" };
    let rows: Vec<CampaignRow> = p
        .read()
        .fetch_all(
            &format!("SELECT * FROM campaigns WHERE workspace_id = $1 AND kind = 'campaign' AND NOT batch AND {which} AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"),
            args![ws.as_str(), page.before.as_deref(), page.limit],
        )
        .await?;
    rows.into_iter().map(Campaign::try_from).collect()
}

/// The variable names used by a campaign's contacts, sorted: the export's extra columns.
/// One read; the keys are listed by the database (`json_each` on SQLite,
/// `jsonb_object_keys` on PostgreSQL: the dialects name these differently).
pub async fn variable_keys(p: Pools<'_>, campaign: &CampaignId) -> Result<Vec<String>> {
    let mut db = p.read();
    let sql = match db.dialect() {
        Dialect::Sqlite => "SELECT DISTINCT j.key FROM contacts c, json_each(c.variables) j WHERE c.campaign_id = $1 ORDER BY 1",
        Dialect::Postgres => "SELECT DISTINCT k FROM contacts c, jsonb_object_keys(c.variables::jsonb) k WHERE c.campaign_id = $1 ORDER BY 1",
    };
    let keys: Vec<(String,)> = db.fetch_all(sql, args![campaign.as_str()]).await?;
    Ok(keys.into_iter().map(|(k,)| k).collect())
}

/// One contact as the CSV export writes it, with its last call (highest attempt), if any.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRow {
    pub id: String,
    pub phone: String,
    /// '' when none.
    pub extension: String,
    pub name: Option<String>,
    pub status: String,
    pub attempts: u64,
    /// The contact's variables as stored (a JSON object).
    pub variables: String,
    /// The last call's outcome (`null` while it is live or if there was none).
    pub outcome: Option<String>,
    /// When the last call was created (claimed).
    pub last_call_at: Option<Timestamp>,
    /// The last call's talk time in milliseconds, as the provider reported it, else from
    /// answer to end.
    pub duration_ms: Option<i64>,
    /// The last call's summary, as the provider wrote it.
    pub summary: Option<String>,
}

#[derive(sqlx::FromRow)]
struct ExportRowDb {
    id: String,
    phone: String,
    extension: String,
    name: Option<String>,
    status: String,
    attempts: i64,
    variables: String,
    outcome: Option<String>,
    last_call_at: Option<i64>,
    duration_ms: Option<i64>,
    answered_at: Option<i64>,
    ended_at: Option<i64>,
    summary: Option<String>,
}

/// Up to `limit` contacts of a campaign in id (import) order, after the id `after`: one
/// keyset page of the export. The last call is found per contact through the calls'
/// `(contact_id, attempt)` key, so a page costs `limit` index look-ups whatever the size.
pub async fn export_page(p: Pools<'_>, campaign: &CampaignId, after: Option<&str>, limit: u32) -> Result<Vec<ExportRow>> {
    let rows: Vec<ExportRowDb> = p
        .read()
        .fetch_all(
            "SELECT c.id, c.phone, c.extension, c.name, c.status, c.attempts, c.variables,
                    l.outcome, l.created_at AS last_call_at, l.duration_ms, l.answered_at, l.ended_at, l.summary
             FROM contacts c
             LEFT JOIN calls l ON l.id = (SELECT id FROM calls WHERE contact_id = c.id ORDER BY attempt DESC LIMIT 1)
             WHERE c.campaign_id = $1 AND ($2 IS NULL OR c.id > $2)
             ORDER BY c.id LIMIT $3",
            args![campaign.as_str(), after, limit],
        )
        .await?;
    rows.into_iter()
        .map(|r| {
            let derived = match (r.answered_at, r.ended_at) {
                (Some(a), Some(e)) if e >= a => Some(e - a),
                _ => None,
            };
            Ok(ExportRow {
                id: r.id,
                phone: r.phone,
                extension: r.extension,
                name: r.name,
                status: r.status,
                attempts: r.attempts.max(0) as u64,
                variables: r.variables,
                outcome: r.outcome,
                last_call_at: opt_ts(r.last_call_at)?,
                duration_ms: r.duration_ms.or(derived),
                summary: r.summary,
            })
        })
        .collect()
}

/// JSON text of a value stored in a JSON column.
fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("a campaign setting serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_splits_into_digits_and_name() {
        assert_eq!(ContactFilter::search("+1 (415) 555"), (Some("1415555".into()), None));
        assert_eq!(ContactFilter::search("Ada"), (None, Some("ada".into())));
        assert_eq!(ContactFilter::search("Room 12"), (Some("12".into()), Some("room 12".into())));
        assert_eq!(ContactFilter::search("  "), (None, None));
    }

    fn contact(status: ContactStatus, attempts: u32, next: i64, waiting: Option<crate::Waiting>) -> Contact {
        Contact {
            id: dialtone_core::ContactId::new(),
            campaign_id: CampaignId::new(),
            phone: dialtone_core::PhoneNumber::parse("+14155552671", "US").unwrap(),
            extension: None,
            name: None,
            variables: Default::default(),
            timezone: None,
            timezone_source: None,
            timezones: vec![],
            recurrence: None,
            status,
            attempts,
            next_attempt_at: Timestamp::from_second(next).unwrap(),
            last_outcome: None,
            waiting,
            caller_number: None,
            created_at: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_contact_waits_for_its_own_hold_then_its_due_time_then_the_campaign() {
        let t = |s: i64| Timestamp::from_second(s).unwrap();
        let now = t(100);
        let cap = Some(CampaignHold { reason: WaitingFor::CampaignCap, until: None });
        let hours = crate::Waiting::of(ContactStatus::Pending, Some(crate::WaitReason::CallingHours), t(500), &[]);
        assert_eq!(waiting_for(&contact(ContactStatus::Pending, 0, 500, hours), now, cap), Some((WaitingFor::CallingHours, Some(t(500)))));
        let none = crate::Waiting::of(ContactStatus::Pending, Some(crate::WaitReason::NoCommonHours), t(500), &[]);
        assert_eq!(waiting_for(&contact(ContactStatus::Pending, 1, 500, none), now, cap), Some((WaitingFor::CallingHours, None)));
        assert_eq!(waiting_for(&contact(ContactStatus::Pending, 2, 300, None), now, cap), Some((WaitingFor::RetryDelay, Some(t(300)))));
        assert_eq!(waiting_for(&contact(ContactStatus::Pending, 0, 300, None), now, cap), Some((WaitingFor::CampaignSchedule, Some(t(300)))));
        assert_eq!(waiting_for(&contact(ContactStatus::Pending, 1, 100, None), now, cap), Some((WaitingFor::CampaignCap, None)));
        assert_eq!(waiting_for(&contact(ContactStatus::Pending, 1, 50, None), now, None), None, "due and held by nothing");
        assert_eq!(waiting_for(&contact(ContactStatus::Done, 1, 500, None), now, cap), None);
    }

    #[test]
    fn like_patterns_match_wildcards_literally() {
        assert_eq!(like_pattern("50%_a\\"), "%50\\%\\_a\\\\%");
    }
}
