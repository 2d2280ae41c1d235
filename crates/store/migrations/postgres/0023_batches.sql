-- A campaign made by `POST /api/v1/batches` (one request carrying its calls): it runs as
-- any campaign (caps, hours, retries, DNC) but is listed under `/batches`, not `/campaigns`.
ALTER TABLE campaigns ADD COLUMN batch BOOLEAN NOT NULL DEFAULT FALSE;
