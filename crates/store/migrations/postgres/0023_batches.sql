-- A campaign made by `POST /api/v1/batches` (one request carrying its calls): it runs as
-- any campaign (caps, hours, retries, DNC) but is listed under `/batches`, not `/campaigns`.
-- IF NOT EXISTS, as in every PostgreSQL migration after 0013: a database renumbered from the
-- old PostgreSQL numbering runs the later files again over what it already has.
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS batch BOOLEAN NOT NULL DEFAULT FALSE;
