-- SQLite's 0010_guard_rails.
-- Guard rails (issue 9). A campaign's own maximum call duration in seconds: a call still
-- live this long after the provider accepted it is hung up and ends as `timeout`.
-- NULL: the server's `max_call_duration_secs` (default 3600).
ALTER TABLE campaigns ADD COLUMN max_call_duration_secs BIGINT CHECK (max_call_duration_secs > 0);
