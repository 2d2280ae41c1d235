-- Workspace management and scoped API keys (issue 13). A disabled workspace's keys
-- authenticate nothing (api_keys joins workspaces on every request); the default
-- workspace is never disabled (the API refuses it).
ALTER TABLE workspaces ADD COLUMN disabled_at INTEGER;
-- Comma-separated, from read, write, admin. Keys made before scopes keep full rights.
ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT 'read,write,admin';
