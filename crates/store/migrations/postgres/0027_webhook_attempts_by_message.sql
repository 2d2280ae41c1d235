-- The delivery log numbers each try after every try of the same message to the same
-- endpoint logged before it (replays included): found with this index instead of a scan of
-- the endpoint's whole log on every try.
CREATE INDEX IF NOT EXISTS webhook_attempts_message ON webhook_attempts (message_id, endpoint_id, attempt);
