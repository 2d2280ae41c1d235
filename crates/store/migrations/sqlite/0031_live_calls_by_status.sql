-- The live calls' index keyed by (campaign, status) first: counting a campaign's live calls
-- (the dispatcher's runnable-campaigns query, the claim's room under the cap, steering,
-- completion) then reads this index alone. Keyed by (campaign_id, last_event_at), it was
-- not covering for `campaign_id = ? AND status IN (…)`, and SQLite's planner, without
-- statistics (nothing analyses a table under 1,000 rows, and its reader connections never
-- load the statistics the writer's ANALYZE writes), took `calls_campaign_created` instead:
-- every call the campaign ever made, read at each dispatcher pass (1.3 ms a pass at 2,000
-- calls, growing with the campaign; BENCHMARKS.md, issue 10). Covering, it wins with or
-- without statistics. The stale-call sweep's `last_event_at` is still in the key.
DROP INDEX calls_active;
CREATE INDEX calls_active ON calls (campaign_id, status, last_event_at)
    WHERE status IN ('queued', 'dialing', 'ringing', 'in_progress');
