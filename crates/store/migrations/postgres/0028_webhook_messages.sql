-- Each outbound event is stored once, as a message, in the transaction of the state change
-- it reports (the durable outbox); the delivery worker fans it out to the endpoints
-- subscribed to it (`webhook_deliveries`, one row per message and endpoint) off the
-- ingest's path. Before, the ingest wrote one delivery per endpoint, each with its own copy
-- of the payload: with 3 endpoints, 3 rows and 9 index entries per event in the ingest's
-- commits, where now there is 1 row and 2 index entries.
-- Written to apply again over itself (a database renumbered from the old PostgreSQL
-- numbering replays the later migrations), as the others are.
CREATE TABLE IF NOT EXISTS webhook_messages (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    event_type    TEXT NOT NULL,
    -- The JSON body sent, exactly as signed.
    payload       TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    -- Unix ms when the worker wrote its deliveries; NULL until then.
    fanned_out_at BIGINT
);
-- The worker's fan-out: messages not fanned out yet, oldest first.
CREATE INDEX IF NOT EXISTS webhook_messages_fan_out ON webhook_messages (created_at) WHERE fanned_out_at IS NULL;

-- Deliveries written before: their message (already fanned out), then their payload column
-- goes (the message holds it).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = current_schema() AND table_name = 'webhook_deliveries' AND column_name = 'payload') THEN
        INSERT INTO webhook_messages (id, workspace_id, event_type, payload, created_at, fanned_out_at)
            SELECT message_id, MIN(workspace_id), MIN(event_type), MIN(payload), MIN(created_at), MIN(created_at)
            FROM webhook_deliveries GROUP BY message_id
            ON CONFLICT (id) DO NOTHING;
        ALTER TABLE webhook_deliveries DROP COLUMN payload;
    END IF;
END $$;
