//! Agents (dialtone's own voice pipeline) and what their calls leave: the transcript and
//! whether a voicemail message was played. Written once for both backends.
//!
//! Deleting is soft (`deleted_at`): campaigns and calls keep pointing at a row that is still
//! there, and a call already under way keeps its agent. A delete is refused
//! ([`StoreError::Conflict`]) while a campaign that is not over (draft, starting, dialing,
//! paused; a scheduled single call's hidden campaign included) names the agent, so nobody
//! deletes an agent and finds it still calling.

use super::Pools;
use crate::common::{ms, ACTIVE_SQL};
use crate::rows::AgentRow;
use crate::sql::{args, Arg};
use crate::{Page, Result, StoreError};
use dialtone_core::{Agent, AgentId, CallId, TranscriptTurn, WorkspaceId};
use jiff::Timestamp;

fn service(s: &dialtone_core::SpeechService) -> String {
    serde_json::to_string(s).expect("a speech service serializes")
}

/// The settings columns, in the order both statements below bind them (after the id and
/// the workspace): everything a PATCH may change.
const SETTINGS: &str = "name, greeting, system_prompt, no_response_prompt, goodbye, voicemail_message, max_duration_secs, language, stt, llm, tts";

/// `a`'s id, workspace and [`SETTINGS`] values, in that order (`$1` to `$13`).
fn key_and_settings(a: &Agent) -> Vec<Arg> {
    args![
        a.id.as_str(),
        a.workspace_id.as_str(),
        &a.name,
        &a.greeting,
        &a.system_prompt,
        &a.no_response_prompt,
        &a.goodbye,
        a.voicemail_message.as_deref(),
        a.max_duration_secs,
        &a.language,
        service(&a.stt),
        service(&a.llm),
        service(&a.tts),
    ]
}

/// Inserts `a` as it is (id, workspace and times included).
pub async fn create(p: Pools<'_>, a: &Agent) -> Result<()> {
    let mut values = key_and_settings(a);
    values.extend(args![ms(a.created_at), ms(a.updated_at)]);
    let sql = format!(
        "INSERT INTO agents (id, workspace_id, {SETTINGS}, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    );
    p.write().execute(&sql, values).await?;
    Ok(())
}

/// A workspace's agent, unless deleted.
pub async fn get(p: Pools<'_>, ws: &WorkspaceId, id: &AgentId) -> Result<Option<Agent>> {
    let row: Option<AgentRow> =
        p.read().fetch_optional("SELECT * FROM agents WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL", args![ws.as_str(), id.as_str()]).await?;
    row.map(Agent::try_from).transpose()
}

/// A workspace's agents, newest first (keyset pagination on the id), deleted ones left out.
pub async fn list(p: Pools<'_>, ws: &WorkspaceId, page: &Page) -> Result<Vec<Agent>> {
    let rows: Vec<AgentRow> = p
        .read()
        .fetch_all(
            "SELECT * FROM agents WHERE workspace_id = $1 AND deleted_at IS NULL AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
            args![ws.as_str(), page.before.as_deref(), page.limit],
        )
        .await?;
    rows.into_iter().map(Agent::try_from).collect()
}

/// Writes every setting of `a` and its `updated_at` (its id, workspace and `created_at`
/// stay). False if there is no such agent, or it was deleted.
pub async fn update(p: Pools<'_>, a: &Agent) -> Result<bool> {
    let mut values = key_and_settings(a);
    values.extend(args![ms(a.updated_at)]);
    let set: Vec<String> = SETTINGS.split(", ").enumerate().map(|(i, column)| format!("{column} = ${}", i + 3)).collect();
    let sql = format!("UPDATE agents SET {}, updated_at = $14 WHERE id = $1 AND workspace_id = $2 AND deleted_at IS NULL", set.join(", "));
    let n = p.write().execute(&sql, values).await?;
    Ok(n == 1)
}

/// Soft-deletes an agent no unfinished campaign uses. False if there is no such agent (or
/// it was deleted already); `Conflict` naming the campaigns that still use it.
pub async fn delete(p: Pools<'_>, ws: &WorkspaceId, id: &AgentId, now: Timestamp) -> Result<bool> {
    let mut tx = p.begin().await?;
    let mut db = tx.db();
    // PostgreSQL: the agent row first, so two deletes (or a delete and an update) take turns.
    super::pg_lock(&mut db, "SELECT 1 FROM agents WHERE workspace_id = $1 AND id = $2 FOR UPDATE", args![ws.as_str(), id.as_str()]).await?;
    let users: Vec<(String,)> = db
        .fetch_all(
            "SELECT id FROM campaigns WHERE workspace_id = $1 AND agent_id = $2 AND status NOT IN ('completed', 'canceled') ORDER BY id LIMIT 5",
            args![ws.as_str(), id.as_str()],
        )
        .await?;
    if !users.is_empty() {
        let ids: Vec<String> = users.into_iter().map(|(c,)| c).collect();
        return Err(StoreError::Conflict(format!("agent {id} is used by campaigns that are not over ({}); cancel them first", ids.join(", "))));
    }
    let n = db
        .execute(
            "UPDATE agents SET deleted_at = $1, updated_at = $1 WHERE workspace_id = $2 AND id = $3 AND deleted_at IS NULL",
            args![ms(now), ws.as_str(), id.as_str()],
        )
        .await?;
    tx.commit().await?;
    Ok(n == 1)
}

/// The agent of `call`'s campaign, deleted or not (a call under way keeps its agent).
/// `None`: no such call, or its campaign has no agent.
pub async fn for_call(p: Pools<'_>, call: &CallId) -> Result<Option<Agent>> {
    let row: Option<AgentRow> = p
        .read()
        .fetch_optional(
            // Only a live call opens a stream: a replayed or reconnected stream URL of a call
            // that is over must not start a second conversation over its saved transcript.
            &format!(
                "SELECT a.* FROM calls k JOIN campaigns c ON c.id = k.campaign_id JOIN agents a ON a.id = c.agent_id \
                 WHERE k.id = $1 AND k.status IN {ACTIVE_SQL}"
            ),
            args![call.as_str()],
        )
        .await?;
    row.map(Agent::try_from).transpose()
}

/// The agents (not deleted) of `starting`/`dialing` campaigns, at most `limit`, most
/// recently changed first.
pub async fn in_use(p: Pools<'_>, limit: u32) -> Result<Vec<Agent>> {
    let rows: Vec<AgentRow> = p
        .read()
        .fetch_all(
            "SELECT a.* FROM agents a WHERE a.deleted_at IS NULL AND a.id IN \
             (SELECT c.agent_id FROM campaigns c WHERE c.status IN ('starting', 'dialing') AND c.agent_id IS NOT NULL) \
             ORDER BY a.updated_at DESC, a.id LIMIT $1",
            args![limit],
        )
        .await?;
    rows.into_iter().map(Agent::try_from).collect()
}

/// Stores what an agent call left (replacing what an earlier save stored). False if there is
/// no such call.
pub async fn save_transcript(p: Pools<'_>, call: &CallId, turns: &[TranscriptTurn], voicemail_left: bool, now: Timestamp) -> Result<bool> {
    let n = p
        .write()
        .execute(
            "UPDATE calls SET transcript = $1, voicemail_left = $2, updated_at = $3 WHERE id = $4",
            args![serde_json::to_string(turns).expect("a transcript serializes"), voicemail_left, ms(now), call.as_str()],
        )
        .await?;
    Ok(n == 1)
}
