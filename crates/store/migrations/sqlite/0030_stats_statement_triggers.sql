-- PostgreSQL's 0030 writes the `/stats` change log once per statement (statement triggers
-- over transition tables). SQLite has only row triggers, so its 0022 triggers stay: this
-- file keeps the two backends' migration numbers the same.
SELECT 1;
