-- Agents for dialtone's own voice pipeline (issue 12; PostgreSQL's 0012_agents). Speech
-- services (stt, llm, tts) are TEXT holding one serialized `SpeechService` each
-- ({provider, model?, voice?, base_url?}). Deleting an agent sets `deleted_at` (soft
-- delete): the campaigns and calls that used it keep pointing at a row that is still
-- there; the API refuses the delete while a campaign that is not over uses it.
--
-- The outcome `no_response` widens the CHECK on calls.outcome, which SQLite can only do by
-- rebuilding the table (https://www.sqlite.org/lang_altertable.html#otheralter). Its
-- recipe turns foreign keys off first, but that PRAGMA does nothing inside a transaction
-- and sqlx runs every SQLite migration in one. So foreign keys are deferred instead (`PRAGMA
-- defer_foreign_keys`, reset by the COMMIT): dropping `calls` counts the `call_events` rows
-- that point at it as pending violations, and inserting the same rows into the new `calls`
-- settles each one again; a row lost on the way would fail the COMMIT. The rows wait in a
-- TEMP table in between. The calls table keeps every column, index and constraint it had,
-- and gains `transcript` and `voicemail_left`.
PRAGMA defer_foreign_keys = ON;

CREATE TABLE agents (
    id                  TEXT PRIMARY KEY,
    workspace_id        TEXT NOT NULL REFERENCES workspaces (id),
    name                TEXT NOT NULL,
    greeting            TEXT NOT NULL,
    system_prompt       TEXT NOT NULL,
    no_response_prompt  TEXT NOT NULL,
    goodbye             TEXT NOT NULL,
    voicemail_message   TEXT,
    max_duration_secs   INTEGER NOT NULL CHECK (max_duration_secs > 0),
    language            TEXT NOT NULL,
    stt                 TEXT NOT NULL,
    llm                 TEXT NOT NULL,
    tts                 TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    deleted_at          INTEGER
);
CREATE INDEX agents_workspace ON agents (workspace_id, id) WHERE deleted_at IS NULL;

-- A campaign (or a single call's hidden campaign) on Exotel or Twilio that names an agent
-- is handled by dialtone's own pipeline: its calls are placed with a media stream.
ALTER TABLE campaigns ADD COLUMN agent_id TEXT REFERENCES agents (id);

CREATE TEMP TABLE calls_old AS SELECT * FROM calls;
DROP TABLE calls;

CREATE TABLE calls (
    id                TEXT PRIMARY KEY,
    workspace_id      TEXT NOT NULL REFERENCES workspaces (id),
    campaign_id       TEXT NOT NULL REFERENCES campaigns (id),
    contact_id        TEXT NOT NULL REFERENCES contacts (id),
    attempt           INTEGER NOT NULL CHECK (attempt > 0),
    direction         TEXT NOT NULL DEFAULT 'outbound' CHECK (direction IN ('outbound', 'inbound')),
    provider          TEXT NOT NULL,
    provider_call_id  TEXT,
    phone             TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('scheduled', 'queued', 'dialing', 'ringing', 'in_progress', 'ended', 'failed', 'canceled')),
    outcome           TEXT CHECK (outcome IN ('completed', 'no_answer', 'no_response', 'busy', 'voicemail', 'failed', 'invalid_number', 'canceled', 'timeout')),
    ended_reason      TEXT,
    cost              REAL,
    duration_ms       INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    placing_at        INTEGER,
    dialed_at         INTEGER,
    answered_at       INTEGER,
    ended_at          INTEGER,
    last_event_at     INTEGER NOT NULL,
    scheduled_for     INTEGER,
    claimed_by        TEXT,
    answered_by       TEXT CHECK (answered_by IN ('human', 'machine', 'unknown')),
    -- What an agent call left: its transcript (a JSON list of TranscriptTurn; NULL when
    -- none was saved) and whether a voicemail message was played.
    transcript        TEXT,
    voicemail_left    INTEGER NOT NULL DEFAULT 0 CHECK (voicemail_left IN (0, 1)),
    UNIQUE (contact_id, attempt)
);
INSERT INTO calls (id, workspace_id, campaign_id, contact_id, attempt, direction, provider, provider_call_id, phone, status, outcome,
    ended_reason, cost, duration_ms, created_at, updated_at, placing_at, dialed_at, answered_at, ended_at, last_event_at, scheduled_for,
    claimed_by, answered_by)
SELECT id, workspace_id, campaign_id, contact_id, attempt, direction, provider, provider_call_id, phone, status, outcome,
    ended_reason, cost, duration_ms, created_at, updated_at, placing_at, dialed_at, answered_at, ended_at, last_event_at, scheduled_for,
    claimed_by, answered_by
FROM temp.calls_old;
DROP TABLE temp.calls_old;

CREATE UNIQUE INDEX calls_one_active_per_contact ON calls (contact_id)
    WHERE status IN ('queued', 'dialing', 'ringing', 'in_progress');
CREATE INDEX calls_active ON calls (campaign_id, last_event_at)
    WHERE status IN ('queued', 'dialing', 'ringing', 'in_progress');
CREATE UNIQUE INDEX calls_provider_id ON calls (provider_call_id) WHERE provider_call_id IS NOT NULL;
CREATE INDEX calls_workspace ON calls (workspace_id, id);
CREATE INDEX calls_campaign ON calls (campaign_id, id);
CREATE INDEX calls_phone ON calls (phone);
CREATE INDEX calls_scheduled ON calls (workspace_id, scheduled_for) WHERE status = 'scheduled';
CREATE INDEX calls_active_by_provider ON calls (provider)
    WHERE status IN ('queued', 'dialing', 'ringing', 'in_progress');
CREATE INDEX calls_unsent ON calls (claimed_by) WHERE status = 'queued' AND provider_call_id IS NULL;
