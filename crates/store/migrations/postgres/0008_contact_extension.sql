-- The extension dialled after a contact's number connects (`ext. 22` in an import), as
-- digits; '' when there is none (NOT NULL so it can sit in the unique index below).
ALTER TABLE contacts ADD COLUMN extension TEXT NOT NULL DEFAULT '';

-- Two people behind one switchboard number are two contacts: the one-number-per-campaign
-- rule becomes one number-and-extension per campaign. Every
-- `ON CONFLICT (campaign_id, phone, extension)` names this index's predicate too.
DROP INDEX contacts_campaign_phone;
CREATE UNIQUE INDEX contacts_campaign_phone_ext ON contacts (campaign_id, phone, extension) WHERE NOT inbound;
