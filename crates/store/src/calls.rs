//! The statements about calls whose text is the same on both backends, written once (see
//! [`crate::sql`]). What stays in `sqlite/calls.rs` and `postgres/calls.rs` differs for a
//! reason said there: the claim (PostgreSQL locks rows and batches with `UNNEST`), the
//! transactions that adopt early events (each backend's own event code and locks), and
//! the heartbeat (PostgreSQL returns the server's clock).
//!
//! The fences of one outbound attempt, in the order that keeps it from being dialled twice
//! (see `dialtone_core::attempt`): the claim inserts it QUEUED and owned by a node;
//! [`mark_placing`] commits `placing_at` before the provider request; the provider's
//! answer stores its id ([`mark_dialed_rows`]); a call that certainly never reached the
//! provider is deleted by [`delete_unsent`] and its attempt given back
//! (`crate::attempts::give_back`); after a crash, [`orphaned`] hands each unsent call to
//! exactly one node to resolve.

use crate::common::{lease_cutoff, ms, ACTIVE_SQL};
use crate::rows::{CallEventRow, CallRow};
use crate::sql::{args, Arg, Db};
use crate::{Call, CallEvent, CallFilter, CallSort, Page, Result};
use dialtone_core::{CallId, CallReport, EventKind, Outcome, ProviderEvent, WorkspaceId};
use jiff::Timestamp;

fn calls(rows: Vec<CallRow>) -> Result<Vec<Call>> {
    rows.into_iter().map(Call::try_from).collect()
}

/// Fences the send (see `Store::mark_placing`): sets `placing_at` on a QUEUED call not yet
/// being placed and still owned by `node`. False: already placing, no longer QUEUED, or
/// taken over by another node (whose takeover wrote the row first; on PostgreSQL the
/// second writer re-reads the row and matches nothing).
pub async fn mark_placing(mut db: Db<'_>, call: &CallId, node: &str, now: Timestamp) -> Result<bool> {
    let n = db
        .execute(
            "UPDATE calls SET placing_at = $1, updated_at = $1 WHERE id = $2 AND status = 'queued' AND placing_at IS NULL AND claimed_by = $3",
            args![ms(now), call.as_str(), node],
        )
        .await?;
    Ok(n == 1)
}

/// The placing fence committed in the claim's own transaction (see `Store::claim_placing`):
/// sets `placing_at` on `calls`, QUEUED calls this transaction has just inserted or queued
/// for `node`. One statement for the lot, the ids one JSON list (`crate::sql::in_json_list`). Errors if any call
/// was not matched, which the claim's own rows rule out.
pub async fn mark_placing_claimed(mut db: Db<'_>, calls: &[&CallId], node: &str, now: Timestamp) -> Result<()> {
    if calls.is_empty() {
        return Ok(());
    }
    let ids = crate::sql::json_list(&calls.iter().map(|c| c.as_str()).collect::<Vec<_>>());
    let list = crate::sql::in_json_list(db.dialect(), 3);
    let sql =
        format!("UPDATE calls SET placing_at = $1, updated_at = $1 WHERE id IN ({list}) AND status = 'queued' AND placing_at IS NULL AND claimed_by = $2");
    let n = db.execute(&sql, args![ms(now), node, ids]).await?;
    if n != calls.len() as u64 {
        return Err(crate::StoreError::Conflict(format!("the claim's placing fence matched {n} of its {} calls", calls.len())));
    }
    Ok(())
}

/// Stores the provider's id of each accepted call of `calls` (call, provider call id) and
/// moves it QUEUED → DIALING (never back; a first id stays), in one statement: the pairs
/// travel as one JSON array (`crate::sql::json_elements`). A call named twice keeps the
/// first id, as two marks one after the other would. Returns each call as it is
/// afterwards, in the order of `calls`; errors with `NotFound` (the first missing id) if a
/// call does not exist. PostgreSQL locks the rows in call id order first, the order an
/// event batch takes them in, so the two never wait on each other in a cycle.
///
/// With each call, whether its campaign had not started (`started_at` unset) as the
/// statement read it: only those campaigns may need [`start_campaign`]'s flip (`started_at`
/// is never unset once set), so a campaign long under way costs no flip statement per group.
pub async fn mark_dialed_rows(mut db: Db<'_>, calls: &[(CallId, String)], now: Timestamp) -> Result<Vec<(Call, bool)>> {
    let mut first: std::collections::BTreeMap<&str, &str> = std::collections::BTreeMap::new();
    for (call, pid) in calls {
        first.entry(call.as_str()).or_insert(pid.as_str());
    }
    if first.is_empty() {
        return Ok(vec![]);
    }
    let pairs: Vec<serde_json::Value> = first.iter().map(|(id, pid)| serde_json::json!({ "id": id, "pid": pid })).collect();
    lock_calls_in_id_order(&mut db, &first.keys().copied().collect::<Vec<_>>()).await?;
    // SQLite's RETURNING reads only the updated table and takes no `calls.*`; PostgreSQL's
    // `*` would add the FROM list's columns.
    let returning = match db.dialect() {
        crate::sql::Dialect::Sqlite => "*",
        crate::sql::Dialect::Postgres => "calls.*",
    };
    // A CASE rather than SQLite's MAX / PostgreSQL's GREATEST, so the text is one.
    #[derive(sqlx::FromRow)]
    struct Dialed {
        #[sqlx(flatten)]
        call: CallRow,
        unstarted: bool,
    }
    let rows: Vec<Dialed> = db
        .fetch_all(
            &format!(
                "UPDATE calls SET provider_call_id = COALESCE(calls.provider_call_id, d.pid),
                    status = CASE WHEN calls.status = 'queued' THEN 'dialing' ELSE calls.status END,
                    dialed_at = COALESCE(calls.dialed_at, $2),
                    last_event_at = CASE WHEN calls.last_event_at > $2 THEN calls.last_event_at ELSE $2 END,
                    updated_at = $2
                 FROM (SELECT value ->> 'id' AS id, value ->> 'pid' AS pid FROM {}) AS d
                 WHERE calls.id = d.id
                 RETURNING {returning},
                    COALESCE((SELECT c.started_at IS NULL FROM campaigns c WHERE c.id = calls.campaign_id), false) AS unstarted",
                crate::sql::json_elements(db.dialect(), 1)
            ),
            args![serde_json::Value::Array(pairs).to_string(), ms(now)],
        )
        .await?;
    let mut by_id: std::collections::HashMap<String, (Call, bool)> = std::collections::HashMap::with_capacity(rows.len());
    for row in rows {
        let call = Call::try_from(row.call)?;
        by_id.insert(call.id.as_str().to_string(), (call, row.unstarted));
    }
    calls.iter().map(|(call, _)| by_id.get(call.as_str()).cloned().ok_or_else(|| crate::StoreError::not_found("call", call))).collect()
}

/// PostgreSQL: locks the rows of `calls` with ids `ids` in id order, the order an event
/// batch takes them in, so that two writers of several calls never wait on each other in a
/// cycle. SQLite: nothing (its one writer connection already keeps every other out).
async fn lock_calls_in_id_order(db: &mut Db<'_>, ids: &[&str]) -> Result<()> {
    if db.dialect() == crate::sql::Dialect::Postgres {
        let list = crate::sql::in_json_list(db.dialect(), 1);
        db.execute(&format!("SELECT 1 FROM calls WHERE id IN ({list}) ORDER BY id FOR UPDATE"), args![crate::sql::json_list(ids)]).await?;
    }
    Ok(())
}

/// `Store::mark_dialed_many` on either backend: [`mark_dialed_many`] in one write
/// transaction, one commit for the batch. A PostgreSQL deadlock victim (two nodes crossing
/// on a campaign row, say) is retried whole; the marks are idempotent.
pub async fn mark_dialed_committed(p: crate::shared::Pools<'_>, calls: &[(CallId, String)], now: Timestamp) -> Result<Vec<bool>> {
    let mut attempt = 1;
    loop {
        let mut tx = p.begin().await?;
        match mark_dialed_many(&mut tx, calls, now).await {
            Ok(started) => {
                tx.commit().await?;
                return Ok(started);
            }
            Err(crate::StoreError::Database(e)) if attempt < crate::postgres::events::ATTEMPTS && crate::postgres::events::is_retryable(&e) => {
                tracing::warn!(attempt, error = %e, "dialed marks aborted by PostgreSQL; retrying");
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// [`mark_dialed_rows`] for `calls` (call, provider call id) in the transaction `tx`,
/// and what the mark brings with it (`Store::mark_dialed`): the events stored earlier under
/// each provider id with no call are adopted and applied, and each campaign is flipped to
/// `dialing` on its first accepted call. Returns, in the order of `calls`, whether each
/// started its campaign (only a campaign's first call of the batch can). Errors with
/// `NotFound` if a call does not exist; the caller's transaction then rolls back whole.
///
/// Per batch, not per call: one statement marks them all, one orphan lookup for all the provider ids (one indexed query),
/// on PostgreSQL one statement for the ids' advisory locks, and one flip per campaign not yet started. Each
/// statement is a round trip (to sqlx's SQLite worker thread, or to the PostgreSQL server),
/// and done per call these were two thirds of a mark's cost (BENCHMARKS.md).
///
/// Lock order, as an event batch takes them (`postgres/events.rs`, `lock_calls`): the call
/// rows in id order, then the provider ids' advisory locks in key order, then the campaign
/// rows in id order (`after_call_rows` shares them in that order). A batch that stores an
/// orphan for one of these ids under its advisory lock either committed before the lookup
/// (which sees the orphan) or looks for the call after this commits (and finds it).
pub async fn mark_dialed_many(tx: &mut crate::shared::Tx, calls: &[(CallId, String)], now: Timestamp) -> Result<Vec<bool>> {
    let marked = mark_dialed_rows(tx.db(), calls, now).await?;
    let unstarted: std::collections::HashSet<&str> = marked.iter().filter(|(_, u)| *u).map(|(c, _)| c.campaign_id.as_str()).collect();
    let dialed: Vec<&Call> = marked.iter().map(|(c, _)| c).collect();
    let pids: Vec<&str> = dialed.iter().filter_map(|c| c.provider_call_id.as_deref()).collect();
    if tx.db().dialect() == crate::sql::Dialect::Postgres {
        let mut keys: Vec<String> = pids.iter().map(|p| crate::postgres::events::advisory_key(p).to_string()).collect();
        keys.sort_unstable();
        keys.dedup();
        // A subquery with ORDER BY is never flattened: the locks are taken in key order.
        tx.db()
            .execute(
                "SELECT pg_advisory_xact_lock(s.k) FROM (SELECT DISTINCT k::bigint AS k FROM jsonb_array_elements_text($1::jsonb) AS t(k) ORDER BY 1) s",
                args![crate::sql::json_list(&keys)],
            )
            .await?;
    }
    let list = crate::sql::in_json_list(tx.db().dialect(), 1);
    let with_orphans: std::collections::HashSet<String> = tx
        .db()
        .fetch_all::<(String,)>(
            &format!("SELECT DISTINCT provider_call_id FROM call_events WHERE call_id IS NULL AND provider_call_id IN ({list})"),
            args![crate::sql::json_list(&pids)],
        )
        .await?
        .into_iter()
        .map(|(pid,)| pid)
        .collect();
    for call in &dialed {
        if let Some(pid) = call.provider_call_id.as_deref().filter(|pid| with_orphans.contains(*pid)) {
            crate::events::adopt_orphans(&mut tx.db(), (*call).clone(), pid, now).await?;
        }
    }
    let campaigns: Vec<&str> = dialed.iter().map(|c| c.campaign_id.as_str()).collect();
    let mut flips: Vec<&str> = campaigns.iter().copied().filter(|c| unstarted.contains(c)).collect();
    flips.sort_unstable();
    flips.dedup();
    let mut started = std::collections::HashSet::new();
    for campaign in flips {
        if start_campaign(tx.db(), campaign, now).await? {
            started.insert(campaign);
        }
    }
    // True for the batch's first call of each campaign it started.
    Ok(campaigns.iter().map(|c| started.remove(c)).collect())
}

/// Flips `campaign` to `dialing` on its first accepted call. True only for the one call that
/// did (`started_at IS NULL` is the fence: a racing second first call matches nothing).
pub async fn start_campaign(mut db: Db<'_>, campaign: &str, now: Timestamp) -> Result<bool> {
    let n = db
        .execute(
            "UPDATE campaigns SET status = CASE WHEN status = 'starting' THEN 'dialing' ELSE status END,
                started_at = $1, updated_at = $1
             WHERE id = $2 AND started_at IS NULL",
            args![ms(now), campaign],
        )
        .await?;
    Ok(n == 1)
}

/// The engine's decision to end `call` with `outcome`, as the event `Store::end_call` applies.
pub fn end_event(call: &CallId, outcome: Outcome, reason: &str, now: Timestamp) -> ProviderEvent {
    ProviderEvent {
        provider_type: "engine".into(),
        provider_call_id: None,
        call_id: Some(call.clone()),
        kind: EventKind::Ended { outcome, reason: Some(reason.to_string()) },
        dedupe_key: format!("engine:{call}:end"),
        occurred_at: Some(now),
        cost: None,
        duration_ms: None,
        report: None,
        raw: serde_json::json!({ "decision": "end", "outcome": outcome, "reason": reason }).into(),
        webhook: None,
    }
}

/// A call deleted by [`delete_unsent`]: whose attempt to give back, and where to note it.
#[derive(sqlx::FromRow)]
pub struct Unsent {
    pub contact_id: String,
    pub workspace_id: String,
    pub campaign_id: String,
}

/// Deletes a QUEUED call that certainly never reached the provider (no provider id, no
/// event stored for it: an event means the provider echoed our id, and deleting the call
/// would orphan it). `None`: not such a call (it was sent, ended, or already released).
/// The caller gives the attempt back in the same transaction (`attempts::give_back`).
pub async fn delete_unsent(mut db: Db<'_>, call: &CallId) -> Result<Option<Unsent>> {
    db.fetch_optional(
        "DELETE FROM calls WHERE id = $1 AND status = 'queued' AND provider_call_id IS NULL
           AND NOT EXISTS (SELECT 1 FROM call_events WHERE call_id = $1)
         RETURNING contact_id, workspace_id, campaign_id",
        args![call.as_str()],
    )
    .await
}

/// Active calls with no event since `quiet_since`, quietest first.
pub async fn stuck(mut db: Db<'_>, quiet_since: Timestamp, limit: u32) -> Result<Vec<Call>> {
    calls(db.fetch_all(crate::common::STUCK_SQL, args![ms(quiet_since), limit]).await?)
}

#[derive(sqlx::FromRow)]
struct OverdueRow {
    #[sqlx(flatten)]
    call: CallRow,
    max_secs: i64,
}

/// The max-duration sweep's statement: `$1` the default maximum (s), `$2` now (ms), `$3`
/// the limit. It reads the live calls only (`calls_active`, named on SQLite: see
/// [`crate::sql::indexed_by`]); left to its planner, SQLite took the range
/// `provider_call_id IS NOT NULL` over `calls_provider_id`, every call ever sent.
pub(crate) fn overdue_sql(dialect: crate::sql::Dialect) -> String {
    let live = crate::sql::indexed_by(dialect, "calls_active");
    format!(
        "SELECT k.*, COALESCE(c.max_call_duration_secs, $1) AS max_secs FROM calls k {live} JOIN campaigns c ON c.id = k.campaign_id
         WHERE k.status IN {ACTIVE_SQL} AND k.provider_call_id IS NOT NULL
           AND COALESCE(k.dialed_at, k.created_at) <= $2 - COALESCE(c.max_call_duration_secs, $1) * 1000
         ORDER BY COALESCE(k.dialed_at, k.created_at) LIMIT $3"
    )
}

/// Live calls past their maximum duration (see `Store::overdue_calls`).
pub async fn overdue(mut db: Db<'_>, now: Timestamp, default_max: std::time::Duration, limit: u32) -> Result<Vec<(Call, u64)>> {
    let default_secs = i64::try_from(default_max.as_secs()).unwrap_or(i64::MAX);
    let rows: Vec<OverdueRow> = db.fetch_all(&overdue_sql(db.dialect()), args![default_secs, ms(now), limit]).await?;
    rows.into_iter().map(|r| Ok((Call::try_from(r.call)?, r.max_secs as u64))).collect()
}

/// The unsent calls a node may take over: `$1` the node, `$2` the lease cutoff (ms). No
/// `ORDER BY` (the caller sorts by id): to avoid sorting, SQLite's planner walked the whole
/// table in id order rather than the partial index `calls_unsent` of the few unsent calls.
pub(crate) const ORPHANS_SQL: &str = "SELECT c.id, c.claimed_by FROM calls c LEFT JOIN nodes n ON n.id = c.claimed_by
     WHERE c.status = 'queued' AND c.provider_call_id IS NULL
       AND (c.claimed_by IS NULL OR c.claimed_by = $1 OR n.id IS NULL OR n.heartbeat_at < $2)";

/// Unsent calls `node` may resolve, each taken over by a fenced UPDATE (see
/// `Store::orphaned_calls`): candidates are read on `read`, taken on `write` (SQLite keeps
/// a reader pool beside its one writer; PostgreSQL passes its pool twice). Two nodes
/// taking over the same call: the second's fence sees the new owner and matches nothing
/// (PostgreSQL: it waits for the first's row lock, then re-checks the WHERE). Calls in
/// `busy` are skipped before any write.
pub async fn orphaned(
    mut read: Db<'_>,
    mut write: Db<'_>,
    node: &str,
    lease: std::time::Duration,
    now: Timestamp,
    busy: &std::collections::HashSet<CallId>,
) -> Result<Vec<Call>> {
    let cutoff = lease_cutoff(now, lease);
    let found: Vec<(String, Option<String>)> = read.fetch_all(ORPHANS_SQL, args![node, cutoff]).await?;
    let mut candidates: Vec<(CallId, Option<String>)> =
        found.into_iter().map(|(id, owner)| (CallId::from_db(id), owner)).filter(|(id, _)| !busy.contains(id)).collect();
    candidates.sort_unstable();
    let mut taken = Vec::with_capacity(candidates.len());
    for (id, owner) in candidates {
        // The fence: the owner must still be the one we saw, the call still unsent, and,
        // unless it is us, the owner still without a live lease (it may have come back).
        let row: Option<CallRow> = write
            .fetch_optional(
                "UPDATE calls SET claimed_by = $1
                 WHERE id = $2 AND claimed_by IS NOT DISTINCT FROM $3 AND status = 'queued' AND provider_call_id IS NULL
                   AND (claimed_by IS NULL OR claimed_by = $1
                        OR NOT EXISTS (SELECT 1 FROM nodes WHERE id = calls.claimed_by AND heartbeat_at >= $4))
                 RETURNING *",
                args![node, id.as_str(), owner.as_deref(), cutoff],
            )
            .await?;
        if let Some(row) = row {
            if owner.as_deref().is_some_and(|o| o != node) {
                tracing::info!(call_id = %id, from = owner.as_deref().unwrap_or_default(), to = node, "took over an unsent call of a node whose lease ran out");
            }
            taken.push(Call::try_from(row)?);
        }
    }
    Ok(taken)
}

/// Nodes other than `node` with a live lease (see `Store::other_live_nodes`).
pub async fn other_live_nodes(mut db: Db<'_>, node: &str, lease: std::time::Duration, now: Timestamp) -> Result<u64> {
    let (n,): (i64,) = db.fetch_one("SELECT COUNT(*) FROM nodes WHERE id <> $1 AND heartbeat_at >= $2", args![node, lease_cutoff(now, lease)]).await?;
    Ok(n as u64)
}

/// Touches `last_event_at` (never backwards) after a reconcile found the call alive.
pub async fn touch(mut db: Db<'_>, call: &CallId, now: Timestamp) -> Result<()> {
    db.execute("UPDATE calls SET last_event_at = CASE WHEN last_event_at > $1 THEN last_event_at ELSE $1 END WHERE id = $2", args![ms(now), call.as_str()])
        .await?;
    Ok(())
}

/// A call with its contact's name and variables (`contact_name`, `contact_variables`).
const CALL_WITH_CONTACT: &str = "SELECT calls.*, ct.name AS contact_name, ct.variables AS contact_variables
     FROM calls LEFT JOIN contacts ct ON ct.id = calls.contact_id";

pub async fn get(mut db: Db<'_>, ws: &WorkspaceId, id: &CallId) -> Result<Option<Call>> {
    let sql = format!("{CALL_WITH_CONTACT} WHERE calls.workspace_id = $1 AND calls.id = $2");
    let row: Option<CallRow> = db.fetch_optional(&sql, args![ws.as_str(), id.as_str()]).await?;
    row.map(Call::try_from).transpose()
}

/// A workspace's calls matching `f`, in `f.sort` order (keyset pagination on the id).
pub async fn list(mut db: Db<'_>, ws: &WorkspaceId, f: &CallFilter, page: &Page) -> Result<Vec<Call>> {
    let mut sql = format!("{CALL_WITH_CONTACT} WHERE calls.workspace_id = $1");
    let mut args: Vec<Arg> = args![ws.as_str()];
    let mut filter = |column: &str, value: Option<Arg>| {
        if let Some(v) = value {
            args.push(v);
            sql.push_str(&format!(" AND calls.{column} ${}", args.len()));
        }
    };
    filter("campaign_id =", f.campaign_id.as_ref().map(|c| c.as_str().into()));
    filter("contact_id =", f.contact_id.as_ref().map(|c| c.as_str().into()));
    filter("status =", f.status.map(|s| s.as_str().into()));
    filter("outcome =", f.outcome.map(|o| o.as_str().into()));
    filter("phone =", f.phone.as_ref().map(|p| p.as_str().into()));
    filter("created_at >=", f.created_from.map(|t| ms(t).into()));
    filter("created_at <", f.created_to.map(|t| ms(t).into()));
    filter("ended_at >=", f.ended_from.map(|t| ms(t).into()));
    filter("ended_at <", f.ended_to.map(|t| ms(t).into()));
    let (cursor, order) = match f.sort {
        CallSort::NewestFirst => ("id <", "DESC"),
        CallSort::OldestFirst => ("id >", "ASC"),
    };
    filter(cursor, page.before.as_ref().map(|b| b.as_str().into()));
    let mut any_of = |column: &str, values: Vec<&str>| {
        if values.is_empty() {
            return;
        }
        let first = args.len() + 1;
        args.extend(values.into_iter().map(Arg::from));
        let placeholders: Vec<String> = (first..=args.len()).map(|i| format!("${i}")).collect();
        sql.push_str(&format!(" AND calls.{column} IN ({})", placeholders.join(", ")));
    };
    any_of("status", f.statuses.iter().map(|s| s.as_str()).collect());
    any_of("outcome", f.outcomes.iter().map(|o| o.as_str()).collect());
    args.push(page.limit.into());
    sql.push_str(&format!(" ORDER BY calls.id {order} LIMIT ${}", args.len()));
    calls(db.fetch_all(&sql, args).await?)
}

/// Stores what a provider reported of `call`'s content (see `Store::save_call_report`): each
/// part the report carries replaces the stored one, except a transcript, which never
/// replaces one already there (dialtone's own pipeline saves the turns it heard). False if
/// there is no such call.
pub async fn save_report(mut db: Db<'_>, call: &CallId, report: &CallReport, now: Timestamp) -> Result<bool> {
    let transcript = report.transcript.as_ref().map(|t| serde_json::to_string(t).expect("a transcript serializes"));
    let n = db
        .execute(
            "UPDATE calls SET summary = COALESCE($1, summary), recording_url = COALESCE($2, recording_url),
                transcript = COALESCE(transcript, $3), updated_at = $4
             WHERE id = $5",
            args![report.summary.as_deref(), report.recording_url.as_deref(), transcript, ms(now), call.as_str()],
        )
        .await?;
    Ok(n == 1)
}

/// [`save_report`] for each of `reports` in one write transaction (see
/// `Store::save_call_reports`): one commit (one WAL sync) for a whole ingest batch's reports
/// instead of one each.
pub async fn save_reports(p: crate::shared::Pools<'_>, reports: &[(&CallId, &CallReport)], now: Timestamp) -> Result<()> {
    match reports {
        [] => return Ok(()),
        [(call, report)] => return save_report(p.write(), call, report, now).await.map(drop),
        _ => {}
    }
    let mut tx = p.begin().await?;
    save_reports_in(tx.db(), reports, now).await?;
    tx.commit().await?;
    Ok(())
}

/// [`save_report`] for each of `reports`, in the caller's transaction, as one `UPDATE …
/// FROM` over a JSON array (`crate::sql::json_elements`): every statement costs a round trip and PostgreSQL's
/// per-statement work on `calls` (its CHECKs, triggers and 15 indexes set up anew), which
/// per report was ~0.2 ms of the server's time (BENCHMARKS.md). Several reports of one call
/// are first merged in order, as one after the other would have stored them: the last
/// summary and recording URL, the first transcript. PostgreSQL locks the rows in call id
/// order first, so two such writers never wait on each other in a cycle.
pub async fn save_reports_in(mut db: Db<'_>, reports: &[(&CallId, &CallReport)], now: Timestamp) -> Result<()> {
    let mut merged: std::collections::BTreeMap<&str, CallReport> = std::collections::BTreeMap::new();
    for (call, report) in reports {
        let row = merged.entry(call.as_str()).or_default();
        row.summary = report.summary.clone().or(row.summary.take());
        row.recording_url = report.recording_url.clone().or(row.recording_url.take());
        row.transcript = row.transcript.take().or_else(|| report.transcript.clone());
    }
    if merged.is_empty() {
        return Ok(());
    }
    let rows: Vec<serde_json::Value> = merged
        .iter()
        .map(|(id, r)| {
            let transcript = r.transcript.as_ref().map(|t| serde_json::to_string(t).expect("a transcript serializes"));
            serde_json::json!({ "id": id, "summary": r.summary, "recording_url": r.recording_url, "transcript": transcript })
        })
        .collect();
    let rows = serde_json::Value::Array(rows).to_string();
    lock_calls_in_id_order(&mut db, &merged.keys().copied().collect::<Vec<_>>()).await?;
    let list = crate::sql::json_elements(db.dialect(), 1);
    db.execute(
        &format!(
            "UPDATE calls SET summary = COALESCE(r.summary, calls.summary), recording_url = COALESCE(r.recording_url, calls.recording_url),
                transcript = COALESCE(calls.transcript, r.transcript), updated_at = $2
             FROM (SELECT value ->> 'id' AS id, value ->> 'summary' AS summary, value ->> 'recording_url' AS recording_url,
                          value ->> 'transcript' AS transcript FROM {list}) AS r
             WHERE calls.id = r.id"
        ),
        args![rows, ms(now)],
    )
    .await?;
    Ok(())
}

pub async fn events_of(mut db: Db<'_>, ws: &WorkspaceId, id: &CallId) -> Result<Vec<CallEvent>> {
    let rows: Vec<CallEventRow> = db
        .fetch_all(
            "SELECT e.* FROM call_events e JOIN calls c ON c.id = e.call_id
             WHERE c.workspace_id = $1 AND e.call_id = $2 ORDER BY e.received_at, e.id",
            args![ws.as_str(), id.as_str()],
        )
        .await?;
    rows.into_iter().map(CallEvent::try_from).collect()
}

pub async fn active_count(mut db: Db<'_>) -> Result<u64> {
    let (n,): (i64,) = db.fetch_one(crate::common::LIVE_COUNT_SQL, args![]).await?;
    Ok(n as u64)
}

/// See `Store::release_unsent`. The attempt never reached the provider: the call is deleted,
/// the attempt given back (the contact is due now, unless its campaign was canceled
/// meanwhile) and why is noted, in one write transaction. PostgreSQL holds the campaign's
/// status still (`FOR SHARE`: a cancel waits) while the contact follows it; SQLite's one
/// writer already does.
pub async fn release_unsent(p: crate::shared::Pools<'_>, call: &CallId, reason: &str, now: Timestamp) -> Result<bool> {
    let mut tx = p.begin().await?;
    let Some(unsent) = delete_unsent(tx.db(), call).await? else {
        return Ok(false);
    };
    crate::shared::pg_lock(&mut tx.db(), "SELECT 1 FROM campaigns WHERE id = $1 FOR SHARE", args![unsent.campaign_id.as_str()]).await?;
    crate::attempts::give_back(tx.db(), &unsent.contact_id, now, None, now).await?;
    crate::events::insert_engine_note(
        &mut tx.db(),
        &unsent.workspace_id,
        &format!("engine:{call}:released"),
        "released",
        serde_json::json!({ "call_id": call, "contact_id": unsent.contact_id, "reason": reason }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}
