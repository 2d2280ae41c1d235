-- A claim takes a campaign's due contacts in (next_attempt_at, id) order: with id in the
-- index, contacts due at the same moment need no sort. PostgreSQL's 0001_init had it so
-- from the start; the schema-drift test (tests/conformance/schema.rs) found the difference.
DROP INDEX contacts_due;
CREATE INDEX contacts_due ON contacts (campaign_id, next_attempt_at, id) WHERE status = 'pending';
