-- SQLite's 0012_agents (issue 12: dialtone speaks).
-- Agents for dialtone's own voice pipeline (`/api/v1/agents`). Speech services (stt, llm,
-- tts) are TEXT holding one serialized `SpeechService` each ({provider, model?, voice?,
-- base_url?}). Deleting an agent sets `deleted_at` (soft delete): the campaigns and calls
-- that used it keep pointing at a row that is still there; the API refuses the delete
-- while a campaign that is not over uses it.
CREATE TABLE agents (
    id                  TEXT PRIMARY KEY,
    workspace_id        TEXT NOT NULL REFERENCES workspaces (id),
    name                TEXT NOT NULL,
    greeting            TEXT NOT NULL,
    system_prompt       TEXT NOT NULL,
    no_response_prompt  TEXT NOT NULL,
    goodbye             TEXT NOT NULL,
    voicemail_message   TEXT,
    max_duration_secs   BIGINT NOT NULL CHECK (max_duration_secs > 0),
    language            TEXT NOT NULL,
    stt                 TEXT NOT NULL,
    llm                 TEXT NOT NULL,
    tts                 TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    deleted_at          BIGINT
);
CREATE INDEX agents_workspace ON agents (workspace_id, id) WHERE deleted_at IS NULL;

-- A campaign (or a single call's hidden campaign) on Exotel or Twilio that names an agent
-- is handled by dialtone's own pipeline: its calls are placed with a media stream.
ALTER TABLE campaigns ADD COLUMN agent_id TEXT REFERENCES agents (id);

-- What an agent call left: its transcript (TEXT holding a JSON list of TranscriptTurn;
-- NULL when none was saved) and whether a voicemail message was played.
ALTER TABLE calls ADD COLUMN transcript TEXT;
ALTER TABLE calls ADD COLUMN voicemail_left BOOLEAN NOT NULL DEFAULT FALSE;

-- The outcome `no_response`: answered by a person who never spoke to our own pipeline.
ALTER TABLE calls DROP CONSTRAINT calls_outcome_check;
ALTER TABLE calls ADD CONSTRAINT calls_outcome_check
    CHECK (outcome IN ('completed', 'no_answer', 'no_response', 'busy', 'voicemail', 'failed', 'invalid_number', 'canceled', 'timeout'));
