-- A `call.ended` whose provider sends its end-of-call report in a webhook of its own after
-- the end (Vapi, the simulator) is held until the report is stored, or 30 s at most, so it
-- carries the report's cost, duration and summary: the worker rebuilds those from the call's
-- row when it fans the message out. The ingest only writes the two columns; it never
-- rewrites a message.
-- The call a `call.ended` reports; NULL for other events.
ALTER TABLE webhook_messages ADD COLUMN call_id TEXT;
-- Unix ms before which a held message is not fanned out unless its report is stored; NULL:
-- not held.
ALTER TABLE webhook_messages ADD COLUMN not_before BIGINT;
-- The fan-out of messages not held, oldest first (held ones would otherwise sit at its head
-- and be read past on every claim) …
DROP INDEX webhook_messages_fan_out;
CREATE INDEX webhook_messages_fan_out ON webhook_messages (created_at) WHERE fanned_out_at IS NULL AND not_before IS NULL;
-- … and the held ones, apart.
CREATE INDEX webhook_messages_held ON webhook_messages (not_before) WHERE fanned_out_at IS NULL AND not_before IS NOT NULL;
