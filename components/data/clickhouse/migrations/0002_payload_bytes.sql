-- Each event's payload size in bytes, for sizing and for spotting oversized events. Rows from before this
-- migration compute it from their payload when read (its DEFAULT), and take it on disk as their parts merge.
-- The servers' own tables first, then the Distributed table: a block written through the Distributed table
-- with the column then always finds it on the shard.
ALTER TABLE analytics.events_local$on_cluster
    ADD COLUMN IF NOT EXISTS payload_bytes UInt32 DEFAULT toUInt32(length(payload));

-- migrate: on every server
-- The Distributed table is altered on each server, not ON CLUSTER: 18.16 refuses ALTER ... ON CLUSTER of a
-- table that is not replicated in a cluster whose shards are (INCONSISTENT_CLUSTER_DEFINITION).
ALTER TABLE analytics.events
    ADD COLUMN IF NOT EXISTS payload_bytes UInt32 DEFAULT toUInt32(length(payload));

-- migrate: once
-- The view is replaced by a new one beside it, named after this migration, and the old one is dropped only
-- then: the Kafka engine writes each block to every view it has, so it never runs without one. While both
-- exist a block is written twice and collapses on merge (ReplacingMergeTree), as any redelivery does.
-- ALTER ... MODIFY QUERY would change it in place, but only the deployed 24.8 has it, not the tests' 18.16.
-- The view converts length() (a UInt64) to the column's type itself: 18.16 fails a whole block on the
-- mismatch and retries it forever, so ingestion stalls at its offsets.
CREATE MATERIALIZED VIEW IF NOT EXISTS analytics.events_mv_0002$on_cluster TO analytics.events AS
SELECT
    event_id,
    run_id,
    kind,
    payload,
    produced_at_ms,
    toDateTime(intDiv(produced_at_ms, 1000)) AS event_time,
    now64(3) AS ingested_at,
    toUInt32(length(payload)) AS payload_bytes
FROM analytics.events_queue;

DROP TABLE IF EXISTS analytics.events_mv$on_cluster;
