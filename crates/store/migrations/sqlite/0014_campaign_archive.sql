-- A campaign archived by `DELETE /api/v1/campaigns/{id}` (unix ms): hidden from the
-- default campaign list, shown with `?archived=true`. NULL = not archived.
ALTER TABLE campaigns ADD COLUMN archived_at INTEGER;
-- A campaign's contacts in id order: the export's keyset pages and the contact list.
CREATE INDEX contacts_campaign_id ON contacts (campaign_id, id);
