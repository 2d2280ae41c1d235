-- Times are unix milliseconds (INTEGER). Every row carries workspace_id.
CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    is_default  INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX workspaces_one_default ON workspaces (is_default) WHERE is_default = 1;

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    name          TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);

CREATE TABLE campaigns (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id),
    name             TEXT NOT NULL,
    provider         TEXT NOT NULL CHECK (provider IN ('vapi', 'sim', 'twilio', 'exotel')),
    assistant_id     TEXT NOT NULL,
    phone_number_id  TEXT NOT NULL,
    mode             TEXT NOT NULL CHECK (mode IN ('continuous', 'batch')),
    max_concurrent   INTEGER NOT NULL CHECK (max_concurrent > 0),
    max_attempts     INTEGER NOT NULL CHECK (max_attempts > 0),
    retry_policy     TEXT NOT NULL,
    default_region   TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('draft', 'starting', 'dialing', 'paused', 'completed', 'canceled')),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    started_at       INTEGER,
    completed_at     INTEGER
);
CREATE INDEX campaigns_workspace ON campaigns (workspace_id, id);
CREATE INDEX campaigns_runnable ON campaigns (status) WHERE status IN ('starting', 'dialing');

CREATE TABLE contacts (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id),
    campaign_id      TEXT NOT NULL REFERENCES campaigns (id),
    phone            TEXT NOT NULL,
    name             TEXT,
    variables        TEXT NOT NULL DEFAULT '{}',
    status           TEXT NOT NULL CHECK (status IN ('pending', 'in_call', 'done', 'exhausted', 'dnc', 'invalid', 'canceled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_outcome     TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    -- 1: the caller of one inbound call (a contact per call: the same caller may call
    -- twice at once, so the one-number-per-campaign rule does not apply to them).
    inbound          INTEGER NOT NULL DEFAULT 0 CHECK (inbound IN (0, 1))
);
-- A number is in a campaign once. Every `ON CONFLICT (campaign_id, phone)` names this
-- index's predicate too.
CREATE UNIQUE INDEX contacts_campaign_phone ON contacts (campaign_id, phone) WHERE inbound = 0;
CREATE INDEX contacts_due ON contacts (campaign_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX contacts_campaign_status ON contacts (campaign_id, status);

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
    outcome           TEXT CHECK (outcome IN ('completed', 'no_answer', 'busy', 'voicemail', 'failed', 'invalid_number', 'canceled', 'timeout')),
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
    UNIQUE (contact_id, attempt)
);
-- "At most one active call per contact" is a database fact, not a hope.
CREATE UNIQUE INDEX calls_one_active_per_contact ON calls (contact_id)
    WHERE status IN ('queued', 'dialing', 'ringing', 'in_progress');
CREATE INDEX calls_active ON calls (campaign_id, last_event_at)
    WHERE status IN ('queued', 'dialing', 'ringing', 'in_progress');
CREATE UNIQUE INDEX calls_provider_id ON calls (provider_call_id) WHERE provider_call_id IS NOT NULL;
CREATE INDEX calls_workspace ON calls (workspace_id, id);
CREATE INDEX calls_campaign ON calls (campaign_id, id);
CREATE INDEX calls_phone ON calls (phone);

CREATE TABLE call_events (
    id             TEXT PRIMARY KEY,
    workspace_id   TEXT,
    call_id        TEXT REFERENCES calls (id),
    source         TEXT NOT NULL CHECK (source IN ('provider', 'engine')),
    provider_type  TEXT NOT NULL,
    kind           TEXT NOT NULL,
    dedupe_key     TEXT NOT NULL UNIQUE,
    applied        INTEGER NOT NULL DEFAULT 0,
    payload        TEXT NOT NULL,
    occurred_at    INTEGER,
    received_at    INTEGER NOT NULL
);
CREATE INDEX call_events_call ON call_events (call_id, received_at);
