"""The failover scenarios: what each breaks, the traffic through it, how service is probed, which alert should fire."""

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from components import names
from verify.core.checks import CheckFailedError
from verify.core.targets import Targets
from verify.failover.injectors import Fault
from verify.smoke import clickhouse, presto
from verify.smoke.kafka import admin

FRESHNESS = 15.0
"""Seconds within which the newest produced event must be visible in ClickHouse for ingestion to count as live.

The Kafka engine writes a block every stream_flush_interval_ms (7.5 s by default) or when it is full.
"""
RECONNECT_BACKOFF_MS = 250
"""librdkafka's reconnect backoff ceiling for verify's clients (its default, 10 s, would hide a recovery)."""


@dataclass(frozen=True)
class Scenario:
    """One failover scenario: its fault (held for its default time), traffic, probe and alert."""

    fault: Fault
    probe: str
    """What the prober asks: presto, presto-clickhouse, clickhouse, kafka or ingest."""
    queries: bool
    """Background Presto queries run through it."""
    produce: bool
    """A background producer runs through it; the data-consistency check follows."""
    alert: str | None
    """The alert that should fire if the outage outlasts its `for`."""
    proves: str

    @property
    def name(self) -> str:
        """The scenario's name, as --scenario takes it."""
        return self.fault.scenario

    def fault_for(self, hold: float | None) -> Fault:
        """The fault to inject, held for `hold` seconds if given, else for the scenario's default."""
        return self.fault if hold is None else replace(self.fault, hold=hold)


SCENARIOS = (
    Scenario(
        Fault("worker-kill", "pod-kill", (names.PRESTO_WORKER,)),
        "presto",
        True,
        False,
        "PrestoWorkersBelowMinimum",
        "queries survive losing a worker: how many fail, how long until Presto answers again",
    ),
    Scenario(
        Fault("coordinator-kill", "pod-kill", (names.PRESTO_COORDINATOR,)),
        "presto",
        True,
        False,
        "PrestoCoordinatorDown",
        "the coordinator comes back and workers rejoin it: the outage every client sees",
    ),
    Scenario(
        Fault("clickhouse-kill", "pod-kill", (names.CLICKHOUSE,)),
        "clickhouse",
        False,
        True,
        "ClickHouseDown",
        "ingestion resumes after ClickHouse restarts, with no acknowledged event lost",
    ),
    Scenario(
        Fault("kafka-kill", "pod-kill", (names.KAFKA,)),
        "kafka",
        False,
        True,
        "ScrapeTargetDown",
        "producers ride out a broker restart: no acknowledged event lost, duplicates counted",
    ),
    Scenario(
        Fault(
            "presto-clickhouse-partition",
            "partition",
            (names.PRESTO_COORDINATOR, names.PRESTO_WORKER),
            names.CLICKHOUSE,
            30,
        ),
        "presto-clickhouse",
        True,
        False,
        None,
        "queries on the clickhouse catalog fail fast while cut off and work again once the network heals",
    ),
    Scenario(
        Fault("clickhouse-kafka-partition", "partition", (names.CLICKHOUSE,), names.KAFKA, 30),
        "ingest",
        False,
        True,
        None,
        "the Kafka engine catches up after a partition: no acknowledged event lost",
    ),
    Scenario(
        Fault("worker-cpu-stress", "cpu-stress", (names.PRESTO_WORKER,), hold=60),
        "presto",
        True,
        False,
        None,
        "what saturated workers do to query latency: p99 under stress against the baseline",
    ),
)
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


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
