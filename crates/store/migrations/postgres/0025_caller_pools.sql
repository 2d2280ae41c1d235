-- Caller-ID pools, per-campaign throttle, scheduled batches and replayed Location headers
-- IF NOT EXISTS throughout: a database renumbered from the old PostgreSQL numbering re-runs later files.
-- (issue 13).
--
-- `caller_numbers`: the campaign's pool as a JSON array of numbers (E.164, or Vapi
-- phone-number ids); '[]' means none: every call goes from `phone_number_id` as before.
-- `caller_number_strategy` picks a contact's number at its first attempt
-- (`round_robin`, `least_used`, `local_presence`); `fallback_strategy` is what
-- `local_presence` does when no pool number shares the callee's country and area code.
-- `caller_cursor`: the next pool index round-robin tries (written in the claim).
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS caller_numbers TEXT NOT NULL DEFAULT '[]';
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS caller_number_strategy TEXT NOT NULL DEFAULT 'round_robin';
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS fallback_strategy TEXT NOT NULL DEFAULT 'round_robin';
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS caller_cursor BIGINT NOT NULL DEFAULT 0;
-- At most this many calls placed per rolling minute (NULL: no throttle).
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS calls_per_minute BIGINT;
-- A batch's `start_at` (unix ms), echoed by the API; NULL: at once.
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS start_at BIGINT;
-- The number a contact's first attempt went from: its retries keep it.
ALTER TABLE contacts ADD COLUMN IF NOT EXISTS caller_number TEXT;
-- The number the call went from (pool campaigns, and any campaign of a workspace with a limit).
ALTER TABLE calls ADD COLUMN IF NOT EXISTS caller_number TEXT;
-- Calls per caller number per UTC day that any campaign of the workspace may place (NULL: no limit).
ALTER TABLE workspaces ADD COLUMN IF NOT EXISTS caller_number_daily_limit BIGINT;
-- The `Location` header of the first answer, replayed with it.
ALTER TABLE idempotency_keys ADD COLUMN IF NOT EXISTS response_location TEXT;
-- Calls placed from each number on each UTC day (`YYYY-MM-DD`), across the workspace's
-- campaigns. The claim raises `calls` with a conditional UPDATE (`calls < limit`).
CREATE TABLE IF NOT EXISTS caller_number_usage (
    workspace_id TEXT NOT NULL,
    number       TEXT NOT NULL,
    day          TEXT NOT NULL,
    calls        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, number, day)
);
