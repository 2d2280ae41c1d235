-- A campaign names the provider account it dials through (issue 13): one of its
-- workspace's own accounts (`workspace_provider_accounts`), or NULL for the config file's
-- account of its provider. Each call records the account it was placed on, so that the
-- account's concurrency limit counts its own calls and its webhooks reach only its calls.
-- IF NOT EXISTS throughout: a database renumbered from the old PostgreSQL numbering re-runs later files.
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS account_id TEXT REFERENCES workspace_provider_accounts (id);
ALTER TABLE calls ADD COLUMN IF NOT EXISTS account_id TEXT;
CREATE INDEX IF NOT EXISTS calls_active_by_account ON calls (account_id)
    WHERE account_id IS NOT NULL AND status IN ('queued', 'dialing', 'ringing', 'in_progress');
-- The workspace account whose webhook route brought an event (NULL: the config's route, or
-- the engine): an orphan is adopted only by a call placed on the same account.
ALTER TABLE call_events ADD COLUMN IF NOT EXISTS account_id TEXT;
