-- The `/stats` rollup (issue 11; docs/architecture.md, "Stats rollup"). Whole hours of a
-- range are read from these tables instead of the calls; `stats_dirty` is the log of what
-- changed since they were last brought up to date, written by triggers in the same
-- transaction as the change (an INSERT into a table without any unique index: it takes no
-- lock another writer could wait on, so it cannot add a deadlock to the ingest batch). The
-- store drains the log (`shared::stats::refresh`) before every `/stats` read and from the
-- reaper, recomputing each logged hour from the raw rows.
--
-- `kind`: 'c' a call created in `hour` changed; 'w' a provider event received in `hour`
-- changed. `hour` is epoch ms of the hour's start (UTC).
CREATE TABLE stats_dirty (
    kind          TEXT NOT NULL,
    workspace_id  TEXT NOT NULL,
    campaign_id   TEXT NOT NULL,
    hour          BIGINT NOT NULL
);
-- Calls per (workspace, campaign, hour of created_at) and every dimension `/stats` groups
-- by. `reason` is the call's ended_reason for outcomes in the failure breakdown (NULL
-- otherwise); `retry` is 1 for attempt > 1; `placed` / `answered` 1 when dialed_at /
-- answered_at is set.
CREATE TABLE stats_call_hours (
    workspace_id  TEXT NOT NULL,
    campaign_id   TEXT NOT NULL,
    hour          BIGINT NOT NULL,
    status        TEXT NOT NULL,
    outcome       TEXT,
    reason        TEXT,
    retry         BIGINT NOT NULL,
    placed        BIGINT NOT NULL,
    answered      BIGINT NOT NULL,
    n             BIGINT NOT NULL,
    dur_sum       BIGINT,
    dur_n         BIGINT NOT NULL
);
CREATE INDEX stats_call_hours_workspace ON stats_call_hours (workspace_id, hour);
CREATE INDEX stats_call_hours_campaign ON stats_call_hours (campaign_id, hour);
-- Latency histograms ('p' placement by the call's created hour, 'w' webhook-to-commit by
-- the event's received hour; campaign '' for an event without a call), per hour and, summed
-- from the hours, per UTC day, so a month reads 30 days of buckets, not 720 hours.
CREATE TABLE stats_latency_hours (
    kind          TEXT NOT NULL,
    workspace_id  TEXT NOT NULL,
    campaign_id   TEXT NOT NULL,
    hour          BIGINT NOT NULL,
    bucket        BIGINT NOT NULL,
    n             BIGINT NOT NULL
);
CREATE INDEX stats_latency_hours_workspace ON stats_latency_hours (workspace_id, kind, hour, bucket, n);
CREATE INDEX stats_latency_hours_campaign ON stats_latency_hours (campaign_id, kind, hour, bucket, n);
CREATE TABLE stats_latency_days (
    kind          TEXT NOT NULL,
    workspace_id  TEXT NOT NULL,
    campaign_id   TEXT NOT NULL,
    day           BIGINT NOT NULL,
    bucket        BIGINT NOT NULL,
    n             BIGINT NOT NULL
);
CREATE INDEX stats_latency_days_workspace ON stats_latency_days (workspace_id, kind, day, bucket, n);
CREATE INDEX stats_latency_days_campaign ON stats_latency_days (campaign_id, kind, day, bucket, n);

-- A change to a call logs its hour (the old one and, if it moved, the new one). Only the
-- columns `/stats` reads count: the timestamps every event bumps (updated_at,
-- last_event_at) do not.
CREATE TRIGGER stats_calls_insert AFTER INSERT ON calls BEGIN
    INSERT INTO stats_dirty (kind, workspace_id, campaign_id, hour) VALUES ('c', NEW.workspace_id, NEW.campaign_id, (NEW.created_at / 3600000) * 3600000);
END;
CREATE TRIGGER stats_calls_delete AFTER DELETE ON calls BEGIN
    INSERT INTO stats_dirty (kind, workspace_id, campaign_id, hour) VALUES ('c', OLD.workspace_id, OLD.campaign_id, (OLD.created_at / 3600000) * 3600000);
END;
CREATE TRIGGER stats_calls_update AFTER UPDATE ON calls
WHEN OLD.status IS NOT NEW.status OR OLD.outcome IS NOT NEW.outcome OR OLD.ended_reason IS NOT NEW.ended_reason
        OR OLD.duration_ms IS NOT NEW.duration_ms OR OLD.dialed_at IS NOT NEW.dialed_at
        OR OLD.answered_at IS NOT NEW.answered_at OR OLD.scheduled_for IS NOT NEW.scheduled_for
        OR OLD.attempt IS NOT NEW.attempt OR OLD.created_at IS NOT NEW.created_at
        OR OLD.campaign_id IS NOT NEW.campaign_id OR OLD.workspace_id IS NOT NEW.workspace_id
BEGIN
    INSERT INTO stats_dirty (kind, workspace_id, campaign_id, hour) VALUES ('c', OLD.workspace_id, OLD.campaign_id, (OLD.created_at / 3600000) * 3600000);
    INSERT INTO stats_dirty (kind, workspace_id, campaign_id, hour)
    SELECT 'c', NEW.workspace_id, NEW.campaign_id, (NEW.created_at / 3600000) * 3600000
    WHERE NEW.workspace_id IS NOT OLD.workspace_id OR NEW.campaign_id IS NOT OLD.campaign_id
       OR NEW.created_at / 3600000 IS NOT OLD.created_at / 3600000;
END;
-- A provider event with the provider's own time logs its received hour, under its call's
-- campaign.
CREATE TRIGGER stats_events_insert AFTER INSERT ON call_events
WHEN NEW.workspace_id IS NOT NULL AND NEW.source = 'provider' AND NEW.occurred_at IS NOT NULL
BEGIN
    INSERT INTO stats_dirty (kind, workspace_id, campaign_id, hour)
    VALUES ('w', NEW.workspace_id, COALESCE((SELECT campaign_id FROM calls WHERE id = NEW.call_id), ''), (NEW.received_at / 3600000) * 3600000);
END;
CREATE TRIGGER stats_events_delete AFTER DELETE ON call_events
WHEN OLD.workspace_id IS NOT NULL AND OLD.source = 'provider' AND OLD.occurred_at IS NOT NULL
BEGIN
    INSERT INTO stats_dirty (kind, workspace_id, campaign_id, hour)
    VALUES ('w', OLD.workspace_id, COALESCE((SELECT campaign_id FROM calls WHERE id = OLD.call_id), ''), (OLD.received_at / 3600000) * 3600000);
END;
CREATE TRIGGER stats_events_update AFTER UPDATE ON call_events
WHEN OLD.call_id IS NOT NEW.call_id OR OLD.received_at IS NOT NEW.received_at
        OR OLD.occurred_at IS NOT NEW.occurred_at OR OLD.source IS NOT NEW.source
        OR OLD.workspace_id IS NOT NEW.workspace_id
BEGIN
    INSERT INTO stats_dirty (kind, workspace_id, campaign_id, hour)
    SELECT 'w', OLD.workspace_id, COALESCE((SELECT campaign_id FROM calls WHERE id = OLD.call_id), ''), (OLD.received_at / 3600000) * 3600000
    WHERE OLD.workspace_id IS NOT NULL AND OLD.source = 'provider' AND OLD.occurred_at IS NOT NULL;
    INSERT INTO stats_dirty (kind, workspace_id, campaign_id, hour)
    SELECT 'w', NEW.workspace_id, COALESCE((SELECT campaign_id FROM calls WHERE id = NEW.call_id), ''), (NEW.received_at / 3600000) * 3600000
    WHERE NEW.workspace_id IS NOT NULL AND NEW.source = 'provider' AND NEW.occurred_at IS NOT NULL;
END;

-- What is already stored: every hour with calls or provider events is logged once.
INSERT INTO stats_dirty (kind, workspace_id, campaign_id, hour)
SELECT DISTINCT 'c', workspace_id, campaign_id, (created_at / 3600000) * 3600000 FROM calls;
INSERT INTO stats_dirty (kind, workspace_id, campaign_id, hour)
SELECT DISTINCT 'w', e.workspace_id, COALESCE(c.campaign_id, ''), (e.received_at / 3600000) * 3600000
FROM call_events e LEFT JOIN calls c ON c.id = e.call_id
WHERE e.workspace_id IS NOT NULL AND e.source = 'provider' AND e.occurred_at IS NOT NULL;
