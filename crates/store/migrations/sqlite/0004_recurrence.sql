-- How often a contact may be called (daily / weekly / monthly campaigns), and scheduled
-- single calls: each lives in a per-workspace 'single_calls' campaign as a contact with its
-- own recurrence and a call row in status 'scheduled' until its time comes.
ALTER TABLE campaigns ADD COLUMN recurrence TEXT NOT NULL DEFAULT '{"frequency":{"type":"once"}}';
ALTER TABLE campaigns ADD COLUMN kind TEXT NOT NULL DEFAULT 'campaign' CHECK (kind IN ('campaign', 'single_calls', 'inbound'));
ALTER TABLE contacts ADD COLUMN recurrence TEXT;
ALTER TABLE contacts ADD COLUMN respect_business_hours INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN scheduled_for INTEGER;
CREATE INDEX calls_scheduled ON calls (workspace_id, scheduled_for) WHERE status = 'scheduled';

-- Assistants a workspace may call with: registered by hand or by creating a campaign.
-- A single call must name a known one.
CREATE TABLE assistants (
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id),
    id               TEXT NOT NULL,
    provider         TEXT NOT NULL CHECK (provider IN ('vapi', 'sim', 'twilio', 'exotel')),
    phone_number_id  TEXT NOT NULL,
    name             TEXT,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
