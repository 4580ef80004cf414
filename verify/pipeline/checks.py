"""Pipeline checks: events produced to Kafka reach ClickHouse, each one, and read the same through Presto."""

import json
import time
from dataclasses import dataclass, field

from clickhouse_driver import Client
from clickhouse_driver.errors import ServerException

from verify.core.checks import Check, CheckFailedError, Context, Figures
from verify.core.targets import Targets
from verify.load import latency
from verify.pipeline.plan import PipelinePlan
from verify.smoke import clickhouse, presto
from verify.smoke.kafka import idempotent_producer

KIND = "verify"
"""The events' `kind`: dashboards and queries can tell verify's events from real traffic."""
PRODUCE_TIMEOUT = 30.0
"""Seconds an event may wait for its acknowledgement before it counts as not acked."""
POLL_INTERVAL = 0.1
"""Seconds between two looks at ClickHouse: the resolution of produce-to-visible latencies."""
PRESTO_CATALOG = "clickhouse"


@dataclass
class Production:
    """What was sent and what Kafka acknowledged, with the monotonic time each event was sent."""

    sent: dict[str, float] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def event(key: str, run_id: str, index: int) -> bytes:
    """One event, in the JSON form the Kafka engine table reads."""
    body = {
        "event_id": key,
        "run_id": run_id,
        "kind": KIND,
        "payload": f"verify event {index}",
        "produced_at_ms": time.time_ns() // 1_000_000,
    }
    return json.dumps(body).encode()


def produce(targets: Targets, run_id: str, events: int) -> Production:
    """Send events with unique keys to the stack's topic; count only the acknowledged ones."""
    production = Production()
    producer = idempotent_producer(targets, PRODUCE_TIMEOUT)

    def delivered(error: object, message: object) -> None:
        if error is None:
            production.acked.add(message.key().decode())  # type: ignore[attr-defined]
        elif len(production.errors) < 3:
            production.errors.append(str(error))

    began = time.monotonic()
    for index in range(events):
        key = f"{run_id}-{index:07d}"
        production.sent[key] = time.monotonic()
        producer.produce(targets.expected.kafka_topic, key=key, value=event(key, run_id, index), on_delivery=delivered)
        producer.poll(0)
    producer.flush(PRODUCE_TIMEOUT + 5)
    production.seconds = time.monotonic() - began
    return production


def visible_ids(connection: Client, table: str, run_id: str) -> dict[str, int]:
    """ClickHouse's rows of this run: how many rows each event id has (more than one is a duplicate)."""
    rows = connection.execute(
        f"SELECT event_id, count() FROM {table} WHERE run_id = %(run)s GROUP BY event_id", {"run": run_id}
    )
    return dict(rows)


DDL_TIMEOUT = 60
"""Seconds an ON CLUSTER mutation waits for every server (distributed_ddl_task_timeout)."""
DDL_TIMED_OUT = 159
"""ClickHouse's TIMEOUT_EXCEEDED: an ON CLUSTER task some server has not run yet, left queued for it in Keeper."""


def remove_rows(targets: Targets, run_id: str) -> None:
    """Delete the run's events from ClickHouse (a mutation: the rows go in the background).

    A Distributed table takes no mutation: the rows are deleted from the table under it, on every server of
    its cluster at once (ON CLUSTER, through Keeper) or, on a cluster of one server, there alone.
    """
    connection = clickhouse.client(targets, DDL_TIMEOUT + 15)
    table = targets.expected.events_table
    database, name = table.split(".", 1)
    found = connection.execute(
        "SELECT engine_full FROM system.tables WHERE database = %(database)s AND name = %(name)s",
        {"database": database, "name": name},
    )
    target = table
    if found and found[0][0].startswith("Distributed("):
        cluster, under_database, under_table = (p.strip(" '") for p in found[0][0][12:].split(",")[:3])
        ((servers,),) = connection.execute(
            "SELECT count() FROM system.clusters WHERE cluster = %(cluster)s", {"cluster": cluster}
        )
        target = f"{under_database}.{under_table}" + (f" ON CLUSTER {cluster}" if servers > 1 else "")
    try:
        connection.execute(
            f"ALTER TABLE {target} DELETE WHERE run_id = %(run)s",
            {"run": run_id},
            settings={"distributed_ddl_task_timeout": DDL_TIMEOUT},
        )
    except ServerException as error:
        # A server still catching up (a replica just restarted) has not taken its part yet; Keeper holds the task,
        # and the server runs it when it can ("going to execute the query in background").
        if error.code != DDL_TIMED_OUT:
            raise


def ingest(context: Context, plan: PipelinePlan) -> Figures:
    """Produce events, wait until ClickHouse shows every acknowledged one, count lost and duplicated."""
    targets, table = context.targets, context.targets.expected.events_table
    run_id = context.run_id
    context.cleanup.add(f"ClickHouse rows of run {run_id} in {table}", lambda: remove_rows(targets, run_id))
    production = produce(targets, run_id, plan.events)
    figures: Figures = {
        "sent": plan.events,
        "acked": len(production.acked),
        "produce_events_per_s": round(len(production.acked) / production.seconds),
    }
    if not production.acked:
        reason = production.errors[0] if production.errors else "no delivery report"
        raise CheckFailedError(f"Kafka acknowledged none of {plan.events} events: {reason}", figures)
    seen: dict[str, float] = {}
    counts: dict[str, int] = {}
    connection = clickhouse.client(targets, 20)  # one connection for every look
    acked_by = time.monotonic()
    while time.monotonic() - acked_by < plan.converge_timeout:
        counts = visible_ids(connection, table, run_id)
        now = time.monotonic()
        for key in counts:
            seen.setdefault(key, now)
        if production.acked <= seen.keys():
            break
        time.sleep(POLL_INTERVAL)
    delays = (seen[key] - production.sent[key] for key in production.acked & seen.keys())
    visible = latency.percentiles(latency.histogram(delays))
    lost = sorted(production.acked - seen.keys())
    figures |= {
        "rows": sum(counts.values()),
        "unique": len(counts),
        "lost": len(lost),
        "duplicated": sum(counts.values()) - len(counts),
        "unacked_but_stored": len(seen.keys() - production.acked),
        **{f"visible_{name}_ms": round(visible.get(name, 0)) for name in ("p50", "p99", "max")},
        "poll_ms": round(POLL_INTERVAL * 1000),
    }
    if lost:
        raise CheckFailedError(
            f"{len(lost)} of {len(production.acked)} acknowledged events never reached {table} "
            f"within {plan.converge_timeout:g}s (first: {lost[0]})",
            figures,
        )
    last_seen = max(seen[key] for key in production.acked)
    figures["converge_s"] = round(max(0.0, last_seen - acked_by), 3)
    figures["events_per_s"] = round(len(production.acked) / (last_seen - min(production.sent.values())))
    return figures


def through_presto(context: Context) -> Figures:
    """Presto's clickhouse catalog reads exactly the events of this run that ClickHouse holds."""
    stored = visible_ids(clickhouse.client(context.targets, 20), context.targets.expected.events_table, context.run_id)
    if not stored:
        raise CheckFailedError(f"ClickHouse has no event of run {context.run_id}: pipeline.ingest did not deliver")
    began = time.monotonic()
    rows = presto.query(
        context.targets,
        f"SELECT event_id FROM {PRESTO_CATALOG}.{context.targets.expected.events_table} "
        f"WHERE run_id = '{context.run_id}' GROUP BY event_id",
        60,
    )
    read = {row[0] for row in rows}
    figures: Figures = {
        "clickhouse_unique": len(stored),
        "presto_unique": len(read),
        "latency_ms": round((time.monotonic() - began) * 1000, 1),
    }
    missing, extra = sorted(stored.keys() - read), sorted(read - stored.keys())
    if missing or extra:
        raise CheckFailedError(
            f"Presto and ClickHouse disagree: {len(missing)} events missing through Presto"
            f"{f' (first: {missing[0]})' if missing else ''}, {len(extra)} extra",
            figures,
        )
    return figures


def checks(targets: Targets, plan: PipelinePlan) -> list[Check]:
    """The pipeline checks: ingestion first, then the same rows through Presto."""
    topic, table = targets.expected.kafka_topic, targets.expected.events_table
    where = f"{targets.endpoints.kafka} ({topic}) -> {targets.endpoints.clickhouse_native} ({table})"
    deadline = PRODUCE_TIMEOUT + plan.converge_timeout + 30
    return [
        Check(
            name="pipeline.ingest",
            scenario="pipeline",
            target=where,
            probe=lambda context: ingest(context, plan),
            deadline=deadline,
            tags=frozenset({"kafka", "clickhouse", "writes"}),
        ),
        Check(
            name="pipeline.presto",
            scenario="pipeline",
            target=f"{targets.endpoints.presto} ({PRESTO_CATALOG}.{table})",
            probe=through_presto,
            deadline=90,
            tags=frozenset({"presto", "clickhouse"}),
        ),
    ]
