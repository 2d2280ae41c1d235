-- When to call: the campaign's weekly windows in its own zone, and the recipients' own
-- calling hours. Contacts carry the zone their hours are judged in, and where it came from.
ALTER TABLE campaigns ADD COLUMN schedule TEXT NOT NULL DEFAULT '{"timezone":"UTC"}';
ALTER TABLE campaigns ADD COLUMN calling_hours TEXT NOT NULL DEFAULT '{"start":"08:00","end":"21:00"}';
ALTER TABLE contacts ADD COLUMN timezone TEXT;
ALTER TABLE contacts ADD COLUMN timezone_source TEXT
    CHECK (timezone_source IN ('explicit', 'area_code', 'country', 'campaign'));
