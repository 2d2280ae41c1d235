-- Workspace management and scoped API keys (issue 13). A disabled workspace's keys
-- authenticate nothing (api_keys joins workspaces on every request); the default
-- workspace is never disabled (the API refuses it).
-- IF NOT EXISTS: see 0019 (a database renumbered from the old layout may meet it again).
ALTER TABLE workspaces ADD COLUMN IF NOT EXISTS disabled_at BIGINT;
-- Comma-separated, from read, write, admin. Keys made before scopes keep full rights.
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS scopes TEXT NOT NULL DEFAULT 'read,write,admin';
