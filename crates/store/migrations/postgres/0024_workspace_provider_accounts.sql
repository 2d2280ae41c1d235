-- SQLite's 0024_workspace_provider_accounts.
-- A workspace's own provider accounts (issue 13, `/api/v1/provider-accounts`): several per
-- provider allowed. The config-file accounts stay as they are (provider_accounts, one per
-- provider, the default workspace's).
-- IF NOT EXISTS, as in every PostgreSQL migration after 0013: a database renumbered from the
-- old PostgreSQL numbering runs the later files again over what it already has.
CREATE TABLE IF NOT EXISTS workspace_provider_accounts (
    id                TEXT PRIMARY KEY,
    workspace_id      TEXT NOT NULL REFERENCES workspaces (id),
    provider          TEXT NOT NULL CHECK (provider IN ('vapi', 'twilio', 'exotel')),
    name              TEXT NOT NULL,
    -- The settings that are not secret (account SID, base URL, TwiML URL, …): a JSON object.
    settings          TEXT NOT NULL,
    -- The secret credentials, a JSON object sealed with the master key
    -- (dialtone_store::secrets): 'dtenc1:{key id}:{base64}'. Never plaintext.
    secrets           TEXT NOT NULL,
    -- The last four characters of each secret (a JSON object): all the API shows of them.
    secret_hints      TEXT NOT NULL,
    max_concurrent    BIGINT CHECK (max_concurrent > 0),
    calls_per_second  DOUBLE PRECISION CHECK (calls_per_second > 0),
    -- Unix ms; NULL while enabled.
    disabled_at       BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS workspace_provider_accounts_workspace ON workspace_provider_accounts (workspace_id, id);
