-- Issue 9, what providers send (the odd cases).
-- The answering-machine detection verdict of a call, from a callback of its own (Twilio
-- AsyncAmdStatusCallback): a later `completed` end is a voicemail when it says machine.
ALTER TABLE calls ADD COLUMN answered_by TEXT CHECK (answered_by IN ('human', 'machine', 'unknown'));
-- An event whose provider call id and our id name different calls: stored, never applied.
ALTER TABLE call_events ADD COLUMN mismatched BOOLEAN NOT NULL DEFAULT FALSE;
-- Events for calls we never placed are purged after a retention period, oldest first.
CREATE INDEX call_events_unknown ON call_events (received_at) WHERE call_id IS NULL AND source = 'provider';
