"""The replay: stop ClickHouse's consumers, move their group back, read the range, let them ingest it again, count.

The steps are those of the documented procedure (docs/operations.md, "Replay a topic into ClickHouse"): the
Kafka engine table is detached on every server, so the group has no member; the group's offsets are reset
(the AlterConsumerGroupOffsets request `kafka-consumer-groups.sh --reset-offsets` sends); the table is
attached again and the Kafka engine re-reads the range. Re-read events that ClickHouse already holds collapse
by event_id (ReplacingMergeTree): the touched partitions are merged with OPTIMIZE ... FINAL, so no duplicate
stays visible to a query. A partition's offset is never moved forward: that would skip events.
"""

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from clickhouse_driver import Client
from confluent_kafka import Consumer, ConsumerGroupState, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from components.data.clickhouse.config import CONSUMER_GROUP, DATABASE, LOCAL_TABLE, QUEUE_TABLE
from components.data.kafka.config import CLICKHOUSE_PRINCIPAL
from verify.core.checks import Check, CheckFailedError, Context, Figures
from verify.core.targets import Targets
from verify.replay.plan import EVERY_PARTITION, ReplayPlan
from verify.smoke import clickhouse
from verify.smoke.kafka import CLICKHOUSE_PASSWORD, connection

TIMEOUT = 10.0
EMPTY_GROUP_TIMEOUT = 330.0
"""Seconds the group gets to lose its members once the Kafka engine table is detached. Consumers that leave
cleanly are gone at once; a group caught mid-rebalance (its table attached moments before) keeps its departed
members until the rebalance times out, after their max.poll.interval.ms: 300 s, librdkafka's default."""
DDL_TIMEOUT = 60
IDS_PER_QUERY = 2000
"""Event ids per IN list: well under ClickHouse's max_query_size (256 KiB)."""
POLL_INTERVAL = 0.5
NO_OFFSET = -1001
"""librdkafka's OFFSET_INVALID: the group has committed nothing on the partition."""


@dataclass
class Range:
    """What the replay re-reads: per partition, from where (the reset offset) to where (the end when reset)."""

    starts: dict[int, int]
    ends: dict[int, int]
    ids: set[str] = field(default_factory=set)
    messages: int = 0
    unparsed: int = 0


def kafka_login(targets: Targets) -> dict[str, str | int]:
    """The consumer group's owner: Kafka's clickhouse user (the only one its ACLs let read the topic and group)."""
    if not targets.kafka_login:
        return connection(targets)
    return connection(targets, (CLICKHOUSE_PRINCIPAL, targets.credentials[CLICKHOUSE_PASSWORD]))


def on_cluster(client: Client, targets: Targets) -> str:
    """` ON CLUSTER name` when the events table spans several servers (each runs its own consumers), else ''."""
    database, name = targets.expected.events_table.split(".", 1)
    found = client.execute(
        "SELECT engine_full FROM system.tables WHERE database = %(database)s AND name = %(name)s",
        {"database": database, "name": name},
    )
    if not found or not found[0][0].startswith("Distributed("):
        return ""
    cluster = found[0][0][12:].split(",")[0].strip(" '")
    ((servers,),) = client.execute("SELECT count() FROM system.clusters WHERE cluster = %(c)s", {"c": cluster})
    return f" ON CLUSTER {cluster}" if servers > 1 else ""


def attach(client: Client, clause: str) -> None:
    """Attach the Kafka engine table again, unless it is attached (the cleanup runs this too)."""
    ((attached,),) = client.execute(
        "SELECT count() FROM system.tables WHERE database = %(d)s AND name = %(n)s", {"d": DATABASE, "n": QUEUE_TABLE}
    )
    if not attached:
        client.execute(f"ATTACH TABLE {DATABASE}.{QUEUE_TABLE}{clause}")


def wait_empty(admin: AdminClient, deadline: float) -> None:
    """Wait until the consumer group has no member (ClickHouse's consumers left it), or fail."""
    end = time.monotonic() + deadline
    state = None
    while time.monotonic() < end:
        (future,) = admin.describe_consumer_groups([CONSUMER_GROUP], request_timeout=TIMEOUT).values()
        described = future.result()
        state = described.state
        if state in (ConsumerGroupState.EMPTY, ConsumerGroupState.DEAD) and not described.members:
            return
        time.sleep(POLL_INTERVAL)
    raise CheckFailedError(
        f"consumer group {CONSUMER_GROUP} still has members {deadline:g}s after {QUEUE_TABLE} was detached "
        f"(state {state}): is another consumer using it?"
    )


def plan_range(consumer: Consumer, topic: str, partitions: list[int], plan: ReplayPlan) -> tuple[Range, list[str]]:
    """Each partition's reset offset (never past its committed one) and end; notes on what was clamped."""
    ends, lows, notes = {}, {}, []
    for partition in partitions:
        lows[partition], ends[partition] = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=TIMEOUT
        )
    if plan.from_time_ms is not None:
        found = consumer.offsets_for_times(
            [TopicPartition(topic, p, plan.from_time_ms) for p in partitions], timeout=TIMEOUT
        )
        wanted = {tp.partition: (tp.offset if tp.offset >= 0 else ends[tp.partition]) for tp in found}
    else:
        offsets = plan.offsets or {}
        unknown = sorted(set(offsets) - set(partitions) - {EVERY_PARTITION})
        if unknown:
            raise CheckFailedError(f"{topic} has no partition {unknown[0]} (it has {len(partitions)})")
        every = offsets.get(EVERY_PARTITION)
        wanted = {p: offsets.get(p, ends[p] if every is None else every) for p in partitions}
    committed = {
        tp.partition: tp.offset
        for tp in consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=TIMEOUT)
    }
    starts = {}
    for partition in partitions:
        start = min(max(wanted[partition], lows[partition]), ends[partition])
        if start != wanted[partition]:
            notes.append(
                f"partition {partition}: {wanted[partition]} is outside [{lows[partition]}, {ends[partition]}]"
            )
        if committed[partition] != NO_OFFSET and start > committed[partition]:
            notes.append(f"partition {partition}: kept at its committed {committed[partition]}, not moved forward")
            start = committed[partition]
        starts[partition] = start
    return Range(starts=starts, ends=ends), notes


def read_range(consumer: Consumer, topic: str, span: Range, plan: ReplayPlan, deadline: float) -> None:
    """Read every message of the range (without committing) and keep its event_id."""
    todo = {p: end for p, end in span.ends.items() if span.starts[p] < end}
    total = sum(end - span.starts[p] for p, end in todo.items())
    if total > plan.max_events:
        raise CheckFailedError(f"the range holds {total} messages, over --max-events {plan.max_events}")
    if not todo:
        return
    consumer.assign([TopicPartition(topic, p, span.starts[p]) for p in todo])
    end = time.monotonic() + deadline
    while todo and time.monotonic() < end:
        message = consumer.poll(POLL_INTERVAL)
        if message is None or message.error() is not None:
            continue
        partition, offset, value = message.partition(), message.offset(), message.value()
        if partition is None or offset is None or partition not in todo or offset >= todo[partition]:
            continue
        span.messages += 1
        try:
            span.ids.add(str(json.loads(value or b"")["event_id"]))
        except (ValueError, KeyError, TypeError):
            span.unparsed += 1
        if offset + 1 >= todo[partition]:
            del todo[partition]
    if todo:
        raise CheckFailedError(f"could not read the range within {deadline:g}s: partitions {sorted(todo)} unfinished")


def _chunks(ids: Iterable[str]) -> Iterable[tuple[str, ...]]:
    """The ids in IN lists of at most IDS_PER_QUERY."""
    ordered = sorted(ids)
    for index in range(0, len(ordered), IDS_PER_QUERY):
        yield tuple(ordered[index : index + IDS_PER_QUERY])


def rows_by_id(client: Client, table: str, ids: set[str]) -> dict[str, int]:
    """How many rows of each of these event ids the table shows (more than one: a duplicate visible)."""
    rows: dict[str, int] = {}
    for chunk in _chunks(ids):
        rows |= dict(
            client.execute(
                f"SELECT event_id, count() FROM {table} WHERE event_id IN %(ids)s GROUP BY event_id", {"ids": chunk}
            )
        )
    return rows


def collapse(client: Client, table: str, ids: set[str], clause: str) -> int:
    """Merge the partitions these events live in (OPTIMIZE ... FINAL), so duplicates collapse; how many merged."""
    months: set[int] = set()
    for chunk in _chunks(ids):
        found = client.execute(
            f"SELECT DISTINCT toYYYYMM(event_time) FROM {table} WHERE event_id IN %(ids)s", {"ids": chunk}
        )
        months |= {month for (month,) in found}
    for month in sorted(months):
        client.execute(
            f"OPTIMIZE TABLE {DATABASE}.{LOCAL_TABLE}{clause} PARTITION {month} FINAL",
            settings={"distributed_ddl_task_timeout": DDL_TIMEOUT},
        )
    return len(months)


def replay(context: Context, plan: ReplayPlan) -> Figures:
    """Detach, reset the group, attach; wait for every re-read event; collapse; count before and after."""
    targets = context.targets
    topic, table = targets.expected.kafka_topic, targets.expected.events_table
    client = clickhouse.client(targets, DDL_TIMEOUT + 15)
    clause = on_cluster(client, targets)
    login = kafka_login(targets)
    admin = AdminClient({**login, "socket.timeout.ms": int(TIMEOUT * 1000)})
    consumer = Consumer({**login, "group.id": CONSUMER_GROUP, "enable.auto.commit": False})
    try:
        partitions = sorted(admin.list_topics(topic, timeout=TIMEOUT).topics[topic].partitions)
        context.progress(f"detaching {DATABASE}.{QUEUE_TABLE}")
        client.execute(f"DETACH TABLE {DATABASE}.{QUEUE_TABLE}{clause}")
        context.cleanup.add(f"{DATABASE}.{QUEUE_TABLE} attached", lambda: attach(client, clause))
        detached = time.monotonic()
        wait_empty(admin, EMPTY_GROUP_TIMEOUT)
        emptied = time.monotonic() - detached
        span, notes = plan_range(consumer, topic, partitions, plan)
        context.progress(f"reading {sum(span.ends[p] - span.starts[p] for p in partitions)} messages")
        read_range(consumer, topic, span, plan, plan.converge_timeout)
        before = rows_by_id(client, table, span.ids)
        resets = [TopicPartition(topic, p, span.starts[p]) for p in partitions]
        (future,) = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(CONSUMER_GROUP, resets)]).values()
        future.result()
    finally:
        consumer.close()
    attach(client, clause)
    context.progress(f"waiting for {len(span.ids)} events in {table}")
    after: dict[str, int] = {}
    attached = time.monotonic()
    end = attached + plan.converge_timeout
    while time.monotonic() < end and not context.stopping.is_set():
        after = rows_by_id(client, table, span.ids)
        if after.keys() >= span.ids:
            break
        time.sleep(POLL_INTERVAL)
    converged = time.monotonic() - attached
    merged = collapse(client, table, span.ids, clause)
    after = rows_by_id(client, table, span.ids)
    missing = span.ids - after.keys()
    figures: Figures = {
        "partitions": len(partitions),
        "replayed": span.messages,
        "events": len(span.ids),
        "unparsed": span.unparsed,
        "already_present": len(before),
        "filled": len(after.keys() - before.keys()),
        "missing": len(missing),
        "duplicates_visible": sum(after.values()) - len(after),
        "partitions_merged": merged,
        "group_empty_s": round(emptied, 3),
        "converge_s": round(converged, 3),
        "from": ",".join(f"{p}:{span.starts[p]}" for p in partitions),
        "to": ",".join(f"{p}:{span.ends[p]}" for p in partitions),
    }
    if notes:
        figures["notes"] = "; ".join(notes)
    if missing:
        raise CheckFailedError(
            f"{len(missing)} of {len(span.ids)} replayed events are not in {table} after {plan.converge_timeout:g}s "
            f"(first: {min(missing)})",
            figures,
        )
    if figures["duplicates_visible"]:
        raise CheckFailedError(f"{figures['duplicates_visible']} duplicate rows still visible in {table}", figures)
    return figures


def checks(targets: Targets, plan: ReplayPlan) -> list[Check]:
    """The one replay check (its steps must run in order, each undone on failure by the cleanup)."""
    topic, table = targets.expected.kafka_topic, targets.expected.events_table
    return [
        Check(
            name="replay.backfill",
            scenario="replay",
            target=f"{targets.endpoints.kafka} ({topic}, group {CONSUMER_GROUP}) -> "
            f"{targets.endpoints.clickhouse_native} ({table})",
            probe=lambda context: replay(context, plan),
            deadline=EMPTY_GROUP_TIMEOUT + 2 * plan.converge_timeout + 2 * DDL_TIMEOUT,
            tags=frozenset({"kafka", "clickhouse", "writes"}),
        )
    ]
