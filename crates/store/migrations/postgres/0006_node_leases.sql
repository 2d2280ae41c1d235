-- SQLite's 0006_node_leases.
-- Node leases. Several `dialtone serve` nodes may share one database: each heartbeats
-- its row here, and owns the unsent calls it claimed (`calls.claimed_by`). Start-up
-- recovery and the reaper take over only the unsent calls of a node whose heartbeat is
-- older than the lease (or unknown), one fenced UPDATE per call, and `mark_placing`
-- succeeds only for the call's owner: a live node's in-flight call is never released by
-- another node, and a dead node's is taken over exactly once.
CREATE TABLE nodes (
    id            TEXT PRIMARY KEY,
    started_at    BIGINT NOT NULL,
    heartbeat_at  BIGINT NOT NULL
);

-- The node that claimed (owns) a call; NULL for calls claimed before leases existed,
-- and for scheduled, inbound and finished calls that no node is placing.
ALTER TABLE calls ADD COLUMN claimed_by TEXT;
CREATE INDEX calls_unsent ON calls (claimed_by) WHERE status = 'queued' AND provider_call_id IS NULL;
