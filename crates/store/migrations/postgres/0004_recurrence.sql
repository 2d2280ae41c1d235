-- SQLite's 0004_recurrence: how often a contact may be called (daily / weekly / monthly
-- campaigns), and scheduled single calls: each lives in a per-workspace 'single_calls'
-- campaign as a contact with its own recurrence and a call row in status 'scheduled'
-- until its time comes.
ALTER TABLE campaigns ADD COLUMN recurrence TEXT NOT NULL DEFAULT '{"frequency":{"type":"once"}}';
ALTER TABLE campaigns ADD COLUMN kind TEXT NOT NULL DEFAULT 'campaign' CHECK (kind IN ('campaign', 'single_calls', 'inbound'));
ALTER TABLE contacts ADD COLUMN recurrence TEXT;
ALTER TABLE contacts ADD COLUMN respect_business_hours BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE calls ADD COLUMN scheduled_for BIGINT;
CREATE INDEX calls_scheduled ON calls (workspace_id, scheduled_for) WHERE status = 'scheduled';

-- Assistants a workspace may call with: registered by hand or by creating a campaign.
-- A single call must name a known one.
CREATE TABLE assistants (
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id),
    id               TEXT NOT NULL,
    provider         TEXT NOT NULL CHECK (provider IN ('vapi', 'sim', 'twilio', 'exotel')),
    phone_number_id  TEXT NOT NULL,
    name             TEXT,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
