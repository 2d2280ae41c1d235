-- Idempotency-Key (draft-ietf-httpapi-idempotency-key-header): the first answer to a POST
-- or PATCH that carried the key, replayed to the same request for 24 h. One row per
-- (workspace, key); the primary key makes one request the owner across every node.
-- IF NOT EXISTS: a database renumbered from the old PostgreSQL layout (renumber.rs) may
-- meet this file again after its schema already has it (tests/conformance/renumbering.rs).
CREATE TABLE IF NOT EXISTS idempotency_keys (
    workspace_id          TEXT NOT NULL REFERENCES workspaces (id),
    idempotency_key       TEXT NOT NULL,
    -- Method, path and query of the first request, e.g. 'POST /api/v1/campaigns'.
    request               TEXT NOT NULL,
    -- SHA-256 of the first request's body, hex; NULL while it is in progress.
    body_sha256           TEXT,
    status                TEXT NOT NULL CHECK (status IN ('in_progress', 'done')),
    response_status       BIGINT,
    response_content_type TEXT,
    response_body         TEXT,
    -- Unix ms. A record is forgotten 24 h after this.
    created_at            BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, idempotency_key)
);
-- The purge of expired records.
CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created_at);
