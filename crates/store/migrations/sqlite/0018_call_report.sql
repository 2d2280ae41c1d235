-- What a provider reports of a call's content (issue 11), `NULL` until it does: the
-- summary (Vapi `analysis.summary`) and where the recording is (Vapi
-- `artifact.recordingUrl`, Twilio and Exotel `RecordingUrl`).
ALTER TABLE calls ADD COLUMN summary TEXT;
ALTER TABLE calls ADD COLUMN recording_url TEXT;
