-- Caller-ID pools, per-campaign throttle, scheduled batches and replayed Location headers
-- (issue 13).
--
-- `caller_numbers`: the campaign's pool as a JSON array of numbers (E.164, or Vapi
-- phone-number ids); '[]' means none: every call goes from `phone_number_id` as before.
-- `caller_number_strategy` picks a contact's number at its first attempt
-- (`round_robin`, `least_used`, `local_presence`); `fallback_strategy` is what
-- `local_presence` does when no pool number shares the callee's country and area code.
-- `caller_cursor`: the next pool index round-robin tries (written in the claim).
ALTER TABLE campaigns ADD COLUMN caller_numbers TEXT NOT NULL DEFAULT '[]';
ALTER TABLE campaigns ADD COLUMN caller_number_strategy TEXT NOT NULL DEFAULT 'round_robin';
ALTER TABLE campaigns ADD COLUMN fallback_strategy TEXT NOT NULL DEFAULT 'round_robin';
ALTER TABLE campaigns ADD COLUMN caller_cursor INTEGER NOT NULL DEFAULT 0;
-- At most this many calls placed per rolling minute (NULL: no throttle).
ALTER TABLE campaigns ADD COLUMN calls_per_minute INTEGER;
-- A batch's `start_at` (unix ms), echoed by the API; NULL: at once.
ALTER TABLE campaigns ADD COLUMN start_at INTEGER;
-- The number a contact's first attempt went from: its retries keep it.
ALTER TABLE contacts ADD COLUMN caller_number TEXT;
-- The number the call went from (pool campaigns, and any campaign of a workspace with a limit).
ALTER TABLE calls ADD COLUMN caller_number TEXT;
-- Calls per caller number per UTC day that any campaign of the workspace may place (NULL: no limit).
ALTER TABLE workspaces ADD COLUMN caller_number_daily_limit INTEGER;
-- The `Location` header of the first answer, replayed with it.
ALTER TABLE idempotency_keys ADD COLUMN response_location TEXT;
-- Calls placed from each number on each UTC day (`YYYY-MM-DD`), across the workspace's
-- campaigns. The claim raises `calls` with a conditional UPDATE (`calls < limit`).
CREATE TABLE IF NOT EXISTS caller_number_usage (
    workspace_id TEXT NOT NULL,
    number       TEXT NOT NULL,
    day          TEXT NOT NULL,
    calls        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, number, day)
);
