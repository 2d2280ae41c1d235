-- Contact zones (SQLite's 0007_contact_zones). A number whose prefix does not pin one clock
-- (an Australian mobile, a +1 800 number) keeps every zone it may be in, and is called only
-- when the calling hours hold in all of them (API: timezone_source "ambiguous").
--
-- Stored as on SQLite (which cannot widen a CHECK in place), so both backends read alike:
-- `timezones` holds the candidate zones, comma-separated, and is set only for an ambiguous
-- contact (whose `timezone_source` is then NULL and `timezone` one of the candidates). Rows
-- from before keep their single `timezone`.
ALTER TABLE contacts ADD COLUMN timezones TEXT;

-- Why the claim put a pending contact back without calling it: 'calling_hours' (not a
-- decent hour in one of its zones; due again at next_attempt_at) or 'no_common_hours'
-- (its zones never share a moment inside the calling hours). NULL once it is claimed.
ALTER TABLE contacts ADD COLUMN wait_reason TEXT;

-- Opt-in: judge ambiguous contacts in the campaign's own zone instead of in all of theirs.
ALTER TABLE campaigns ADD COLUMN assume_campaign_timezone_for_ambiguous BOOLEAN NOT NULL DEFAULT FALSE;
