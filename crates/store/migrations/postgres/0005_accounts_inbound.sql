-- SQLite's 0005_accounts_inbound.
-- Provider accounts: the concurrency limit of a whole account (Vapi's default is 10,
-- inbound included), shared by every campaign on it. Set from configuration at start.
-- A claim locks its provider's row, so claims of different campaigns on one account
-- (which lock different campaign rows) still count the account's calls one at a time.
CREATE TABLE provider_accounts (
    provider        TEXT PRIMARY KEY CHECK (provider IN ('vapi', 'sim', 'twilio', 'exotel')),
    max_concurrent  BIGINT CHECK (max_concurrent > 0),
    updated_at      BIGINT NOT NULL
);
CREATE INDEX calls_active_by_provider ON calls (provider)
    WHERE status IN ('queued', 'dialing', 'ringing', 'in_progress');

-- Events that arrive before their call is known (an inbound call's lifecycle racing its
-- assistant-request) are kept, findable by the provider's call id, and applied later.
ALTER TABLE call_events ADD COLUMN provider_call_id TEXT;
CREATE INDEX call_events_orphans ON call_events (provider_call_id) WHERE call_id IS NULL;
-- Orphans are applied in the order received: received_at, then this (SQLite uses rowid).
ALTER TABLE call_events ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY;

-- Our numbers and the assistant that answers each (inbound calls).
CREATE TABLE phone_numbers (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    number        TEXT NOT NULL UNIQUE,
    provider      TEXT NOT NULL CHECK (provider IN ('vapi', 'sim', 'twilio', 'exotel')),
    assistant_id  TEXT NOT NULL,
    name          TEXT,
    created_at    BIGINT NOT NULL
);

-- The hidden campaign that holds the inbound calls to one of our numbers (kind 'inbound',
-- phone_number_id = the number): one per workspace and number, created on first use.
CREATE UNIQUE INDEX campaigns_inbound_number ON campaigns (workspace_id, phone_number_id) WHERE kind = 'inbound';
