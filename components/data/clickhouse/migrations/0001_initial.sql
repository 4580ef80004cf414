-- The schema of every server: its part of the events, the Distributed table over all, and ingestion. Each
-- server consumes the topic in one consumer group and writes through the Distributed table, which sends each
-- event to the shard of its id. Every statement is IF NOT EXISTS: on a stack from before migrations, which
-- already has these objects, it changes nothing and is recorded as applied.
CREATE DATABASE IF NOT EXISTS analytics$on_cluster;

-- One row per event; a redelivered event (the Kafka engine is at-least-once) collapses on merge.
CREATE TABLE IF NOT EXISTS analytics.events_local$on_cluster
(
    event_id String,
    run_id String,
    kind String,
    payload String,
    produced_at_ms UInt64,
    event_time DateTime DEFAULT toDateTime(intDiv(produced_at_ms, 1000)),
    ingested_at DateTime64(3) DEFAULT now64(3)
)
ENGINE = $local_engine
PARTITION BY toYYYYMM(event_time)
ORDER BY event_id;

CREATE TABLE IF NOT EXISTS analytics.events$on_cluster AS analytics.events_local
ENGINE = Distributed($cluster, analytics, events_local, $sharding_key);

-- A malformed event is skipped (up to 100 per block) instead of stalling all ingestion behind it.
CREATE TABLE IF NOT EXISTS analytics.events_queue$on_cluster
(
    event_id String,
    run_id String,
    kind String,
    payload String,
    produced_at_ms UInt64
)
ENGINE = Kafka
SETTINGS kafka_broker_list = '$kafka_broker_list',
         kafka_topic_list = '$kafka_topic',
         kafka_group_name = '$consumer_group',
         kafka_format = 'JSONEachRow',
         kafka_num_consumers = $kafka_num_consumers,
         kafka_skip_broken_messages = 100,
         kafka_flush_interval_ms = $flush_interval_ms,
         kafka_thread_per_consumer = 1;

-- Every column is selected explicitly: a view does not fill DEFAULT columns on every server version.
CREATE MATERIALIZED VIEW IF NOT EXISTS analytics.events_mv$on_cluster TO analytics.events AS
SELECT
    event_id,
    run_id,
    kind,
    payload,
    produced_at_ms,
    toDateTime(intDiv(produced_at_ms, 1000)) AS event_time,
    now64(3) AS ingested_at
FROM analytics.events_queue;
