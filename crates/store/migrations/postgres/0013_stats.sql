-- Stats and failure-rate alerts (issue 11). The `/stats` range reads calls by
-- (workspace or campaign, created_at); the alert evaluator reads the calls that ended in
-- the last hour; webhook-to-commit latency reads a workspace's provider events by
-- received_at; retries pending are a workspace's pending contacts already tried once.
CREATE INDEX IF NOT EXISTS calls_workspace_created ON calls (workspace_id, created_at);
CREATE INDEX IF NOT EXISTS calls_campaign_created ON calls (campaign_id, created_at);
CREATE INDEX IF NOT EXISTS calls_ended ON calls (ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS call_events_workspace_received ON call_events (workspace_id, received_at) WHERE source = 'provider';
CREATE INDEX IF NOT EXISTS contacts_retry_pending ON contacts (workspace_id, campaign_id) WHERE status = 'pending' AND attempts > 0;
