-- What a provider reports of a call's content (issue 11), `NULL` until it does: the
-- summary (Vapi `analysis.summary`) and where the recording is (Vapi
-- `artifact.recordingUrl`, Twilio and Exotel `RecordingUrl`).
ALTER TABLE calls ADD COLUMN summary TEXT;
ALTER TABLE calls ADD COLUMN recording_url TEXT;
-- `dialtone keys list` (issue 11): the key's first characters, shown to tell keys apart
-- (the key itself is never stored), and when it last authenticated a request (unix ms,
-- written at most once a minute per key and server). NULL for keys made before.
ALTER TABLE api_keys ADD COLUMN key_prefix TEXT;
ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;
