-- The `/stats` change log (0022) written once per statement, not once per row. The
-- engine writes calls and events in batches (an ingest batch's one `UPDATE … FROM UNNEST`,
-- a group of dialed marks, a batch's reports), and a row trigger ran a PL/pgSQL function
-- and inserted a log row for each row of them, nearly all naming the same (workspace,
-- campaign, hour). A statement trigger reads the statement's rows from its transition
-- tables (PostgreSQL 10+, "CREATE TRIGGER … REFERENCING"; one trigger per event, as
-- transition tables require) and logs each distinct hour once. What is logged is unchanged:
-- the same hours, for the same column changes (the old row's hour on UPDATE and DELETE,
-- the new row's on INSERT and when an UPDATE moved it). SQLite has only row triggers and
-- keeps 0022's (its 0030 says so).
DROP TRIGGER IF EXISTS stats_calls_insert_delete ON calls;
DROP TRIGGER IF EXISTS stats_calls_update ON calls;
DROP TRIGGER IF EXISTS stats_events_insert_delete ON call_events;
DROP TRIGGER IF EXISTS stats_events_update ON call_events;
DROP FUNCTION IF EXISTS stats_mark_call();
DROP FUNCTION IF EXISTS stats_mark_event();

CREATE OR REPLACE FUNCTION stats_mark_calls() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO stats_dirty (kind, workspace_id, campaign_id, hour)
        SELECT DISTINCT 'c', n.workspace_id, n.campaign_id, (n.created_at / 3600000) * 3600000 FROM new_rows n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO stats_dirty (kind, workspace_id, campaign_id, hour)
        SELECT DISTINCT 'c', o.workspace_id, o.campaign_id, (o.created_at / 3600000) * 3600000 FROM old_rows o;
    ELSE
        -- The columns `/stats` reads; the timestamps every event bumps (updated_at,
        -- last_event_at) are not among them.
        INSERT INTO stats_dirty (kind, workspace_id, campaign_id, hour)
        SELECT DISTINCT 'c', h.workspace_id, h.campaign_id, h.hour
        FROM old_rows o
        JOIN new_rows n ON n.id = o.id
        CROSS JOIN LATERAL (VALUES
            (o.workspace_id, o.campaign_id, (o.created_at / 3600000) * 3600000),
            (n.workspace_id, n.campaign_id, (n.created_at / 3600000) * 3600000)) AS h (workspace_id, campaign_id, hour)
        WHERE o.status IS DISTINCT FROM n.status OR o.outcome IS DISTINCT FROM n.outcome
           OR o.ended_reason IS DISTINCT FROM n.ended_reason OR o.duration_ms IS DISTINCT FROM n.duration_ms
           OR o.dialed_at IS DISTINCT FROM n.dialed_at OR o.answered_at IS DISTINCT FROM n.answered_at
           OR o.scheduled_for IS DISTINCT FROM n.scheduled_for OR o.attempt IS DISTINCT FROM n.attempt
           OR o.created_at IS DISTINCT FROM n.created_at OR o.campaign_id IS DISTINCT FROM n.campaign_id
           OR o.workspace_id IS DISTINCT FROM n.workspace_id;
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER stats_calls_insert AFTER INSERT ON calls REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stats_mark_calls();
CREATE OR REPLACE TRIGGER stats_calls_update AFTER UPDATE ON calls REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stats_mark_calls();
CREATE OR REPLACE TRIGGER stats_calls_delete AFTER DELETE ON calls REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stats_mark_calls();

-- A provider event with the provider's own time logs its received hour, under its call's
-- campaign.
CREATE OR REPLACE FUNCTION stats_mark_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO stats_dirty (kind, workspace_id, campaign_id, hour)
        SELECT DISTINCT 'w', e.workspace_id, COALESCE(c.campaign_id, ''), (e.received_at / 3600000) * 3600000
        FROM new_rows e LEFT JOIN calls c ON c.id = e.call_id
        WHERE e.workspace_id IS NOT NULL AND e.source = 'provider' AND e.occurred_at IS NOT NULL;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO stats_dirty (kind, workspace_id, campaign_id, hour)
        SELECT DISTINCT 'w', e.workspace_id, COALESCE(c.campaign_id, ''), (e.received_at / 3600000) * 3600000
        FROM old_rows e LEFT JOIN calls c ON c.id = e.call_id
        WHERE e.workspace_id IS NOT NULL AND e.source = 'provider' AND e.occurred_at IS NOT NULL;
    ELSE
        INSERT INTO stats_dirty (kind, workspace_id, campaign_id, hour)
        SELECT DISTINCT 'w', e.workspace_id, COALESCE(c.campaign_id, ''), (e.received_at / 3600000) * 3600000
        FROM old_rows o
        JOIN new_rows n ON n.id = o.id
        CROSS JOIN LATERAL (VALUES
            (o.workspace_id, o.source, o.occurred_at, o.received_at, o.call_id),
            (n.workspace_id, n.source, n.occurred_at, n.received_at, n.call_id)) AS e (workspace_id, source, occurred_at, received_at, call_id)
        LEFT JOIN calls c ON c.id = e.call_id
        WHERE (o.call_id IS DISTINCT FROM n.call_id OR o.received_at IS DISTINCT FROM n.received_at
               OR o.occurred_at IS DISTINCT FROM n.occurred_at OR o.source IS DISTINCT FROM n.source
               OR o.workspace_id IS DISTINCT FROM n.workspace_id)
          AND e.workspace_id IS NOT NULL AND e.source = 'provider' AND e.occurred_at IS NOT NULL;
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER stats_events_insert AFTER INSERT ON call_events REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stats_mark_events();
CREATE OR REPLACE TRIGGER stats_events_update AFTER UPDATE ON call_events REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stats_mark_events();
CREATE OR REPLACE TRIGGER stats_events_delete AFTER DELETE ON call_events REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stats_mark_events();
