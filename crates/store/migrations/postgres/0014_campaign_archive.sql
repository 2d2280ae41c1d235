-- A campaign archived by `DELETE /api/v1/campaigns/{id}` (unix ms): hidden from the
-- default campaign list, shown with `?archived=true`. NULL = not archived.
-- IF NOT EXISTS: a database renumbered from the old PostgreSQL layout (renumber.rs) may
-- meet this file again after its schema already has it (tests/conformance/renumbering.rs).
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS archived_at BIGINT;
-- A campaign's contacts in id order: the export's keyset pages and the contact list.
CREATE INDEX IF NOT EXISTS contacts_campaign_id ON contacts (campaign_id, id);
