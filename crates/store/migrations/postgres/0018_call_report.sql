-- What a provider reports of a call's content (issue 11), `NULL` until it does: the
-- summary (Vapi `analysis.summary`) and where the recording is (Vapi
-- `artifact.recordingUrl`, Twilio and Exotel `RecordingUrl`).
-- IF NOT EXISTS: a database renumbered from the old PostgreSQL layout (renumber.rs) may
-- meet this file again after its schema already has it (tests/conformance/renumbering.rs).
ALTER TABLE calls ADD COLUMN IF NOT EXISTS summary TEXT;
ALTER TABLE calls ADD COLUMN IF NOT EXISTS recording_url TEXT;
-- `dialtone keys list` (issue 11): the key's first characters, shown to tell keys apart
-- (the key itself is never stored), and when it last authenticated a request (unix ms,
-- written at most once a minute per key and server). NULL for keys made before.
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS key_prefix TEXT;
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS last_used_at BIGINT;
