"""How a failover scenario asks whether service is back: one small probe per kind (Scenario.probe)."""

import time
from collections.abc import Callable

from verify.core.checks import CheckFailedError
from verify.core.targets import Targets
from verify.smoke import clickhouse, presto
from verify.smoke.kafka import admin

FRESHNESS = 15.0
"""Seconds within which the newest produced event must be visible in ClickHouse for ingestion to count as live.

The Kafka engine writes a block every stream_flush_interval_ms (7.5 s by default) or when it is full.
"""
RECONNECT_BACKOFF_MS = 250
"""librdkafka's reconnect backoff ceiling for verify's clients (its default, 10 s, would hide a recovery)."""


def presto_probe(targets: Targets, ca: str, timeout: float) -> Callable[[], None]:
    """A TPC-H count that needs a worker: tpch.tiny.nation has 25 rows."""
    connection = presto.connect(targets, ca, timeout, catalog="tpch", schema="tiny")

    def probe() -> None:
        cursor = connection.cursor()
        cursor.execute("SELECT count(*) FROM nation")
        if (found := cursor.fetchall()) != [[25]]:
            raise CheckFailedError(f"tpch.tiny.nation counted {found}, not 25 rows")

    return probe


def presto_clickhouse_probe(targets: Targets, ca: str, timeout: float) -> Callable[[], None]:
    """A read of the events table through Presto's clickhouse catalog (it needs Presto to reach ClickHouse)."""
    connection = presto.connect(targets, ca, timeout)
    sql = f"SELECT count(*) FROM clickhouse.{targets.expected.events_table} WHERE event_id = ''"

    def probe() -> None:
        connection.cursor().execute(sql)

    return probe


def clickhouse_probe(targets: Targets, timeout: float) -> Callable[[], None]:
    """SELECT 1 over the native protocol, on a connection of its own (a hung probe may still hold the last one)."""
    return lambda: clickhouse.client(targets, timeout).execute("SELECT 1")


def distributed_probe(targets: Targets, run_id: str, timeout: float) -> Callable[[], None]:
    """A read of the run's events through the Distributed table: it needs a live replica of every shard."""
    sql = f"SELECT count() FROM {targets.expected.events_table} WHERE run_id = %(run)s"
    return lambda: clickhouse.client(targets, timeout).execute(sql, {"run": run_id})


def kafka_probe(targets: Targets, timeout: float) -> Callable[[], None]:
    """Fresh metadata of the events topic: every partition has a leader."""
    client = admin(targets, timeout, **{"reconnect.backoff.max.ms": RECONNECT_BACKOFF_MS})
    topic = targets.expected.kafka_topic

    def probe() -> None:
        found = client.list_topics(topic=topic, timeout=timeout).topics.get(topic)
        if found is None or found.error is not None:
            raise CheckFailedError(f"topic {topic} unavailable ({found.error if found else 'not listed'})")
        leaderless = sorted(p.id for p in found.partitions.values() if p.leader < 0)
        if leaderless:
            raise CheckFailedError(f"partitions {leaderless} of {topic} have no leader")

    return probe


def ingest_probe(targets: Targets, run_id: str, timeout: float) -> Callable[[], None]:
    """The newest event this run produced is in ClickHouse and younger than FRESHNESS."""
    sql = f"SELECT max(produced_at_ms) FROM {targets.expected.events_table} WHERE run_id = %(run)s"

    def probe() -> None:
        ((newest,),) = clickhouse.client(targets, timeout).execute(sql, {"run": run_id})
        age = time.time() - newest / 1000
        if not newest or age > FRESHNESS:
            raise CheckFailedError(f"the newest event in ClickHouse is {age:.0f}s old (more than {FRESHNESS:g}s)")

    return probe
