-- The SQLite schema (migrations/sqlite 0001–0003) for PostgreSQL, in one file.
-- Times are unix milliseconds (BIGINT); every integer is BIGINT so the Rust side reads
-- i64 on both backends. JSON columns (retry_policy, schedule, calling_hours, variables,
-- payload) are TEXT holding serialized JSON: they round-trip byte for byte, and a raw
-- webhook body with a \u0000 escape (which JSONB refuses) is still stored.
CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    is_default  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX workspaces_one_default ON workspaces (is_default) WHERE is_default;

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    name          TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);

CREATE TABLE campaigns (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id),
    name             TEXT NOT NULL,
    provider         TEXT NOT NULL CHECK (provider IN ('vapi', 'sim', 'twilio', 'exotel')),
    assistant_id     TEXT NOT NULL,
    phone_number_id  TEXT NOT NULL,
    mode             TEXT NOT NULL CHECK (mode IN ('continuous', 'batch')),
    max_concurrent   BIGINT NOT NULL CHECK (max_concurrent > 0),
    max_attempts     BIGINT NOT NULL CHECK (max_attempts > 0),
    retry_policy     TEXT NOT NULL,
    default_region   TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('draft', 'starting', 'dialing', 'paused', 'completed', 'canceled')),
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    started_at       BIGINT,
    completed_at     BIGINT,
    -- When to call: the campaign's weekly windows in its own zone, and the recipients'
    -- own calling hours.
    schedule         TEXT NOT NULL DEFAULT '{"timezone":"UTC"}',
    calling_hours    TEXT NOT NULL DEFAULT '{"start":"08:00","end":"21:00"}'
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
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    last_outcome     TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    -- The zone this contact's calling hours are judged in, and where it came from.
    timezone         TEXT,
    timezone_source  TEXT CHECK (timezone_source IN ('explicit', 'area_code', 'country', 'campaign')),
    -- TRUE: the caller of one inbound call (a contact per call: the same caller may call
    -- twice at once, so the one-number-per-campaign rule does not apply to them).
    inbound          BOOLEAN NOT NULL DEFAULT FALSE
);
-- A number is in a campaign once. Every `ON CONFLICT (campaign_id, phone)` names this
-- index's predicate too.
CREATE UNIQUE INDEX contacts_campaign_phone ON contacts (campaign_id, phone) WHERE NOT inbound;
CREATE INDEX contacts_due ON contacts (campaign_id, next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX contacts_campaign_status ON contacts (campaign_id, status);

CREATE TABLE calls (
    id                TEXT PRIMARY KEY,
    workspace_id      TEXT NOT NULL REFERENCES workspaces (id),
    campaign_id       TEXT NOT NULL REFERENCES campaigns (id),
    contact_id        TEXT NOT NULL REFERENCES contacts (id),
    attempt           BIGINT NOT NULL CHECK (attempt > 0),
    direction         TEXT NOT NULL DEFAULT 'outbound' CHECK (direction IN ('outbound', 'inbound')),
    provider          TEXT NOT NULL,
    provider_call_id  TEXT,
    phone             TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('scheduled', 'queued', 'dialing', 'ringing', 'in_progress', 'ended', 'failed', 'canceled')),
    outcome           TEXT CHECK (outcome IN ('completed', 'no_answer', 'busy', 'voicemail', 'failed', 'invalid_number', 'canceled', 'timeout')),
    ended_reason      TEXT,
    cost              DOUBLE PRECISION,
    duration_ms       BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    placing_at        BIGINT,
    dialed_at         BIGINT,
    answered_at       BIGINT,
    ended_at          BIGINT,
    last_event_at     BIGINT NOT NULL,
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
    applied        BOOLEAN NOT NULL DEFAULT FALSE,
    payload        TEXT NOT NULL,
    occurred_at    BIGINT,
    received_at    BIGINT NOT NULL
);
CREATE INDEX call_events_call ON call_events (call_id, received_at);

-- Do-not-call lists: a row with campaign_id NULL suppresses the number in every campaign
-- of the workspace; with a campaign_id, only in that campaign. Checked at claim time.
CREATE TABLE suppressions (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    campaign_id   TEXT REFERENCES campaigns (id),
    phone         TEXT NOT NULL,
    reason        TEXT,
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX suppressions_scope_phone ON suppressions (workspace_id, COALESCE(campaign_id, ''), phone);
CREATE INDEX suppressions_phone ON suppressions (phone, workspace_id);
