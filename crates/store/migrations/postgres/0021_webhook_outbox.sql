-- Outbound events to the user's systems (Standard Webhooks, https://www.standardwebhooks.com/).
-- A workspace's endpoints; the outbox of deliveries (one row per message and endpoint,
-- written in the same transaction as the state change it reports); the delivery log.
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id                    TEXT PRIMARY KEY,
    workspace_id          TEXT NOT NULL REFERENCES workspaces (id),
    url                   TEXT NOT NULL,
    description           TEXT,
    -- The event types it receives, comma separated with a leading and a trailing comma
    -- (',call.ended,campaign.started,'), so one LIKE matches on both backends.
    events                TEXT NOT NULL,
    enabled               BOOLEAN NOT NULL,
    -- 'whsec_' + base64 of 24 random bytes.
    secret                TEXT NOT NULL,
    -- The secret before the last rotation; it signs alongside the new one until
    -- previous_secret_until (unix ms).
    previous_secret       TEXT,
    previous_secret_until BIGINT,
    -- Unix ms of the first failed try since the last success; NULL while healthy.
    failing_since         BIGINT,
    -- 'failing' when dialtone disabled it (failing for 5 days); NULL otherwise.
    disabled_reason       TEXT,
    disabled_at           BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_endpoints_workspace ON webhook_endpoints (workspace_id);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    message_id      TEXT NOT NULL,
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    workspace_id    TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    -- The JSON body sent, exactly as signed.
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    -- Tries claimed so far (since the last replay).
    attempts        BIGINT NOT NULL,
    -- Unix ms; when the next try is due (pending only).
    next_attempt_at BIGINT,
    -- The node trying it now and until when (unix ms); after that another node may.
    claimed_by      TEXT,
    lease_until     BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (message_id, endpoint_id)
);
-- The worker's claim: due pending deliveries, oldest first.
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at);

CREATE TABLE IF NOT EXISTS webhook_attempts (
    id               TEXT PRIMARY KEY,
    message_id       TEXT NOT NULL,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    attempt          BIGINT NOT NULL,
    attempted_at     BIGINT NOT NULL,
    -- HTTP status of the answer; NULL when none came (timeout, connection refused).
    status_code      BIGINT,
    latency_ms       BIGINT NOT NULL,
    -- The first 1 KiB of the answer's body, or the error.
    response_excerpt TEXT,
    error            TEXT,
    succeeded        BOOLEAN NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_attempts_endpoint ON webhook_attempts (endpoint_id, attempted_at);
