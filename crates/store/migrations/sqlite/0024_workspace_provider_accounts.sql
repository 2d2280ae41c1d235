-- A workspace's own provider accounts (issue 13, `/api/v1/provider-accounts`): several per
-- provider allowed. The config-file accounts stay as they are (provider_accounts, one per
-- provider, the default workspace's).
CREATE TABLE workspace_provider_accounts (
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
    max_concurrent    INTEGER CHECK (max_concurrent > 0),
    calls_per_second  REAL CHECK (calls_per_second > 0),
    -- Unix ms; NULL while enabled.
    disabled_at       INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX workspace_provider_accounts_workspace ON workspace_provider_accounts (workspace_id, id);
