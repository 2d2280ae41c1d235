-- Do-not-call lists: a row with campaign_id NULL suppresses the number in every campaign
-- of the workspace; with a campaign_id, only in that campaign. Checked at claim time.
CREATE TABLE suppressions (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    campaign_id   TEXT REFERENCES campaigns (id),
    phone         TEXT NOT NULL,
    reason        TEXT,
    created_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX suppressions_scope_phone ON suppressions (workspace_id, COALESCE(campaign_id, ''), phone);
CREATE INDEX suppressions_phone ON suppressions (phone, workspace_id);
