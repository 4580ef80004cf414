"""Print the Kafka -> ClickHouse figures on the real servers; printed, never asserted.

- Throughput: events/s end to end (first produce to the last event visible) over --events events, as a
  ratio to ClickHouse's own INSERT of as many rows of the same shape into the same table (the table the
  stack's materialized view writes), measured in the same run (goal >= 0.5). Also the Kafka engine's
  own drain rate: the same number of events produced while its view is detached, then read at once.
- Produce-to-visible lag p50/p99 (HdrHistogram) of events produced at a steady --lag-rate.
- With replicas: the time a killed replica takes to catch up, per 10,000 rows it is behind.
- Each server's startup time, and the machine's load over each measurement; each starts once the machine
  is quiet (bench/machine.py).

--layout is the ClickHouse layout, shards x replicas (1x1 as dev, 2x2 as prod): the servers start from
the stack's generated config, cluster file and schema, on a ZooKeeper ensemble when there is more than
one (Keeper's stand-in, as in the tests). --flush-ms, --max-block-size, --kafka-max-block-size,
--consumers and --partitions override the Kafka engine's knobs (a users.d profile file in the bench's
workdir, the Kafka table's settings, the topic) for tuning.

Run after scripts/test has installed the servers: .venv/bin/python bench/pipeline.py [--events N]
"""

import argparse
import json
import re
import shutil
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from confluent_kafka import Producer  # noqa: E402
from hdrh.histogram import HdrHistogram  # noqa: E402

from bench.machine import measured, wait_quiet  # noqa: E402
from components.data.clickhouse.config import (  # noqa: E402
    DATABASE,
    INGEST,
    LOCAL_TABLE,
    Endpoint,
    legacy_form,
    migrations,
    statements,
)
from components.settings.model import Settings  # noqa: E402
from components.settings.parse import parse_settings  # noqa: E402
from components.settings.stack_files import stack_config  # noqa: E402
from tests.support.events import event_json  # noqa: E402
from tests.support.servers.clickhouse import (  # noqa: E402
    DISTRIBUTION_CONFIG,
    ClickHouseCluster,
    ClickHouseNode,
    grown_clickhouse,
    query,
    run_migrations,
    start_cluster,
)
from tests.support.servers.kafka import KafkaNode, run_topic_bootstrap, start_kafka  # noqa: E402
from tests.support.servers.zookeeper import start_ensemble  # noqa: E402

WARM_EVENTS = 1000
"""Events sent through before any figure, so the consumers have joined the group and the view has written."""
VISIBLE_TIMEOUT = 300.0
"""Seconds to wait for events to become visible."""
POLL_SECONDS = 0.05
"""How often visibility is checked while measuring lag."""
SESSION_SECONDS = 32.0
"""A killed server's Keeper session lasts session_timeout_ms (30 s) after it dies."""
CATCH_UP_EVENTS = 20_000
"""Events ingested while a replica is down, for the catch-up figure."""


@dataclass(frozen=True)
class Layout:
    """ClickHouse servers as shards x replicas."""

    shards: int
    replicas: int

    @classmethod
    def parse(cls, text: str) -> "Layout":
        """`SxR`, e.g. 1x1 or 2x2."""
        shards, _, replicas = text.partition("x")
        return cls(int(shards), int(replicas))

    def __str__(self) -> str:
        """`S x R`."""
        return f"{self.shards} shard(s) x {self.replicas} replica(s)"


@dataclass(frozen=True)
class Tuning:
    """Overrides of the Kafka engine's knobs; None keeps the stack's value."""

    flush_ms: int | None
    max_block_size: int | None
    kafka_max_block_size: int | None
    consumers: int | None

    def profile(self) -> dict[str, int]:
        """Settings of the default profile, the one the Kafka engine's inserts run with."""
        found = {"stream_flush_interval_ms": self.flush_ms, "max_block_size": self.max_block_size}
        return {name: value for name, value in found.items() if value is not None}

    def table(self) -> dict[str, int]:
        """Settings of the Kafka engine table."""
        found = {"kafka_num_consumers": self.consumers, "kafka_max_block_size": self.kafka_max_block_size}
        return {name: value for name, value in found.items() if value is not None}


@dataclass(frozen=True)
class Pipeline:
    """A running Kafka and ClickHouse with the stack's schema: where events go in and where they show."""

    kafka: KafkaNode
    cluster: ClickHouseCluster
    topic: str
    view: str
    target: str
    """The table the view writes into (and the INSERT peer too)."""

    @property
    def clickhouse(self) -> ClickHouseNode:
        """The server the figures read through (the Distributed table reaches every shard from it)."""
        return self.cluster.nodes[0]

    def visible(self, run_id: str) -> int:
        """How many distinct events of a run the target table shows."""
        return int(query(self.clickhouse, f"SELECT uniqExact(event_id) FROM {self.target} WHERE run_id = '{run_id}'"))

    def visible_ids(self, run_id: str) -> set[str]:
        """The ids of a run's events the target table shows."""
        answer = query(self.clickhouse, f"SELECT DISTINCT event_id FROM {self.target} WHERE run_id = '{run_id}'")
        return set(answer.split())

    def wait_visible(self, run_id: str, count: int) -> float:
        """Wait until `count` events of a run show; the monotonic time they did."""
        deadline = time.monotonic() + VISIBLE_TIMEOUT
        while (shown := self.visible(run_id)) < count:
            if time.monotonic() > deadline:
                sys.exit(f"only {shown} of {count} events of {run_id} visible after {VISIBLE_TIMEOUT:.0f} s")
            time.sleep(0.02)
        return time.monotonic()


def rows(run_id: str, count: int) -> list[tuple[str, str]]:
    """(key, JSON) of each event of a run, in the form the Kafka engine table reads."""
    keys = [f"{run_id}-{i}" for i in range(count)]
    return [(key, event_json(i, key, run_id)) for i, key in enumerate(keys)]


def producer(kafka: KafkaNode) -> Producer:
    """An idempotent acks=all producer, as verify and the tests produce."""
    return Producer({**kafka.client_config(), "enable.idempotence": True, "acks": "all"})


def produce(kafka: KafkaNode, topic: str, events: list[tuple[str, str]]) -> None:
    """Send every event and wait for every acknowledgement."""
    sender = producer(kafka)
    for key, value in events:
        while True:
            try:
                sender.produce(topic, key=key, value=value)
                break
            except BufferError:  # the local queue is full: let it drain
                sender.poll(0.05)
        sender.poll(0)
    if sender.flush(60):
        sys.exit("events still unacknowledged after 60 s")


def profile_file(tuning: Tuning) -> str:
    """users.d file setting the default profile's overrides, in the form the server reads."""
    root = ET.Element("clickhouse")
    default = ET.SubElement(ET.SubElement(root, "profiles"), "default")
    for name, value in tuning.profile().items():
        ET.SubElement(default, name).text = str(value)
    return legacy_form(ET.tostring(root, encoding="unicode") + "\n")


def tuned(tuning: Tuning) -> Callable[[str], str]:
    """The tuning's overrides of the Kafka table, applied to a migration's text in its 18.16 form."""

    def override(match: re.Match[str]) -> str:
        table = {"kafka_num_consumers": int(match[1]), **tuning.table()}
        return ", ".join(f"{name} = {value}" for name, value in table.items())

    def edit(text: str) -> str:
        return re.sub(r"kafka_num_consumers\s*=\s*(\d+)", override, text) if tuning.table() else text

    return edit


def schema(settings: Settings, kafka_bootstrap: str, tuning: Tuning) -> list[str]:
    """Every migration's statements in order, as the test servers take them, with the Kafka table's overrides."""
    edit = tuned(tuning)
    found = [s for m in migrations(settings, kafka_bootstrap) for s in statements(edit(legacy_form(m.sql)))]
    engine = [statement for statement in found if re.search(r"ENGINE\s*=\s*Kafka", statement)]
    if len(engine) != 1 or "kafka_num_consumers" not in engine[0]:
        sys.exit("the schema has no single Kafka table with kafka_num_consumers to override")
    return found


def view_and_target(schema_statements: list[str]) -> tuple[str, str]:
    """The materialized view reading the Kafka table (the newest migration's) and the table it writes into."""
    for statement in reversed(schema_statements):
        if match := re.search(r"MATERIALIZED VIEW (?:IF NOT EXISTS )?(\S+)(?: ON CLUSTER \S+)? TO (\S+)", statement):
            return match[1], match[2]
    sys.exit("the schema has no materialized view with a TO table")


@contextmanager
def pipeline(settings: Settings, tuning: Tuning, work: Path) -> Iterator[Pipeline]:
    """Start Kafka and the ClickHouse layout from the stack's configs, with the tuning's overrides; stop after."""
    with ExitStack() as started:
        kafka = start_kafka(settings.kafka, work / "kafka")
        started.callback(kafka.server.stop)
        keeper: tuple[Endpoint, ...] = ()
        if settings.clickhouse.replicated:
            ensemble = start_ensemble(work / "zookeeper")
            started.callback(ensemble.stop_all)
            keeper = tuple(Endpoint(host=host, port=port) for host, port in ensemble.hosts)
        if tuning.profile():
            # start_clickhouse copies the distribution's files only into an absent etc: copy them first.
            for ordinal in range(settings.clickhouse.servers):
                etc = work / "clickhouse" / f"clickhouse-{ordinal}" / "etc"
                shutil.copytree(DISTRIBUTION_CONFIG, etc)
                (etc / "users.d").mkdir(exist_ok=True)
                (etc / "users.d" / "bench-tuning.xml").write_text(profile_file(tuning))
        cluster = start_cluster(settings, work / "clickhouse", keeper)
        started.callback(cluster.stop)
        run_topic_bootstrap(kafka)
        sql = schema(settings, kafka.bootstrap, tuning)
        # The schema Job's own script and migrations, with the tuning's overrides.
        applied = run_migrations(cluster.nodes, settings, kafka.bootstrap, edit=tuned(tuning))
        if applied.returncode:
            sys.exit(f"the migrations failed: {applied.stderr}")
        yield Pipeline(kafka, cluster, settings.kafka.topic.name, *view_and_target(sql))


def insert_peer(plane: Pipeline, count: int) -> float:
    """Seconds from ClickHouse's INSERT of `count` events' rows (JSONEachRow, one statement) to all visible."""
    run_id = f"insert-{time.time_ns()}"
    events = rows(run_id, count)
    columns = ", ".join(json.loads(events[0][1]))
    body = f"INSERT INTO {plane.target} ({columns}) FORMAT JSONEachRow\n" + "\n".join(value for _, value in events)
    began = time.monotonic()
    query(plane.clickhouse, body, INGEST)
    return plane.wait_visible(run_id, count) - began


def end_to_end(plane: Pipeline, count: int) -> tuple[float, float]:
    """Seconds from the first produce to every event acknowledged, and to every event visible."""
    run_id = f"throughput-{time.time_ns()}"
    events = rows(run_id, count)
    began = time.monotonic()
    produce(plane.kafka, plane.topic, events)
    acked = time.monotonic()
    return acked - began, plane.wait_visible(run_id, count) - began


def drain(plane: Pipeline, count: int) -> float:
    """Seconds the Kafka engine takes to bring `count` events, produced while its views were detached, into view."""
    run_id = f"drain-{time.time_ns()}"
    for node in plane.cluster.nodes:
        query(node, f"DETACH TABLE {plane.view}", INGEST)
    try:
        produce(plane.kafka, plane.topic, rows(run_id, count))
        wait_quiet()
    finally:
        for node in plane.cluster.nodes:
            query(node, f"ATTACH TABLE {plane.view}", INGEST)
    began = time.monotonic()
    with measured("drain"):
        return plane.wait_visible(run_id, count) - began


def local_rows(node: ClickHouseNode) -> int:
    """Rows a server holds of its shard."""
    return int(query(node, f"SELECT count() FROM {DATABASE}.{LOCAL_TABLE}", INGEST))


def catch_up(plane: Pipeline, count: int) -> None:
    """Kill one replica, ingest `count` events without it, restart it: seconds until it holds what its peer holds."""
    replicas = plane.cluster.shards[0]
    victim, peer = replicas[-1], replicas[0]
    held = local_rows(victim)
    victim.server.kill()
    killed = time.monotonic()
    run_id = f"catch-up-{time.time_ns()}"
    produce(plane.kafka, plane.topic, rows(run_id, count))
    plane.wait_visible(run_id, count)
    # Its Keeper session outlives it by session_timeout_ms (30 s): restarted sooner, a replica waits that
    # out before it replicates (18.16 and 24.8 alike), which a pod's restart usually takes anyway.
    time.sleep(max(0.0, killed + SESSION_SECONDS - time.monotonic()))
    target = local_rows(peer)
    behind = target - held
    wait_quiet()
    began = time.monotonic()
    with measured("the catch-up"):
        victim.server.launch().wait_ready(120)
        started = time.monotonic() - began
        deadline = began + VISIBLE_TIMEOUT
        while local_rows(victim) < target:
            if time.monotonic() > deadline:
                sys.exit(f"the restarted replica did not catch up within {VISIBLE_TIMEOUT:.0f} s")
            time.sleep(0.1)
        took = time.monotonic() - began
    print(
        f"  {victim.replica} was {behind:,} rows behind; from its launch it served in {started:.2f} s and held "
        f"them all in {took:.2f} s: {took / behind * 10_000:.2f} s per 10,000 rows behind"
    )


def lag(plane: Pipeline, rate: float, seconds: float) -> HdrHistogram:
    """Produce-to-visible milliseconds of each event of a steady stream at `rate` events/s."""
    run_id = f"lag-{time.time_ns()}"
    events = rows(run_id, int(rate * seconds))
    sent: dict[str, float] = {}

    def stream() -> None:
        sender, began = producer(plane.kafka), time.monotonic()
        for index, (key, value) in enumerate(events):
            if (wait := began + index / rate - time.monotonic()) > 0:
                time.sleep(wait)
            sent[key] = time.monotonic()
            sender.produce(plane.topic, key=key, value=value)
            sender.poll(0)
        sender.flush(60)

    found = HdrHistogram(1, 600_000, 3)
    seen: set[str] = set()
    streaming = threading.Thread(target=stream, daemon=True)
    streaming.start()
    deadline = time.monotonic() + seconds + VISIBLE_TIMEOUT
    while len(seen) < len(events) and time.monotonic() < deadline:
        shown = plane.visible_ids(run_id)
        now = time.monotonic()
        for key in shown - seen:
            found.record_value(max(1, round((now - sent[key]) * 1000)))
        seen |= shown
        time.sleep(POLL_SECONDS)
    streaming.join()
    if len(seen) < len(events):
        print(f"  {len(events) - len(seen)} of {len(events)} lag events never became visible")
    return found


def ratio_line(name: str, seconds: float, count: int, peer_seconds: float) -> str:
    """`name N events/s, ratio R to INSERT` for `count` events in `seconds`."""
    figure = f"{count / seconds:10,.0f} events/s ({seconds:6.2f} s)"
    return f"  {name:26} {figure}, ratio to INSERT {peer_seconds / seconds:.2f}"


def measure(plane: Pipeline, count: int, rate: float, seconds: float) -> None:
    """Warm the path up, then each figure once the machine is quiet, with the load over it."""
    warm = f"warm-{time.time_ns()}"
    produce(plane.kafka, plane.topic, rows(warm, WARM_EVENTS))
    plane.wait_visible(warm, WARM_EVENTS)
    print(f"throughput over {count:,} events into {plane.target} (goal: end to end / INSERT >= 0.5)")
    wait_quiet()
    with measured("INSERT"):
        insert = insert_peer(plane, count)
    wait_quiet()
    with measured("end to end"):
        acked, visible = end_to_end(plane, count)
    drained = drain(plane, count)
    print(f"  {'INSERT (one statement)':26} {count / insert:10,.0f} events/s ({insert:6.2f} s)")
    print(ratio_line("end to end", visible, count, insert))
    print(
        f"    of which produce + acks {acked:.2f} s ({count / acked:,.0f} events/s), "
        f"then {visible - acked:.2f} s to visible"
    )
    print(ratio_line("drain (Kafka engine alone)", drained, count, insert))
    print(
        f"produce-to-visible lag: {rate:g} events/s for {seconds:g} s, "
        f"visibility polled every {POLL_SECONDS * 1000:.0f} ms"
    )
    wait_quiet()
    with measured("the lag stream"):
        found = lag(plane, rate, seconds)
    print(
        f"  p50 {found.get_value_at_percentile(50)} ms  p99 {found.get_value_at_percentile(99)} ms  "
        f"max {found.get_max_value()} ms over {found.get_total_count()} events"
    )
    if len(plane.cluster.shards[0]) > 1:
        print(f"a killed replica catching up ({CATCH_UP_EVENTS:,} events ingested while it was down)")
        catch_up(plane, CATCH_UP_EVENTS)


def main() -> None:
    """Start the servers, measure, print, stop."""
    parser = argparse.ArgumentParser(description="Kafka -> ClickHouse figures on the real servers")
    parser.add_argument("--events", type=int, default=100_000, help="events for the throughput runs")
    parser.add_argument("--lag-rate", type=float, default=200, help="events/s of the lag stream")
    parser.add_argument("--lag-seconds", type=float, default=15, help="seconds of the lag stream")
    parser.add_argument("--layout", type=Layout.parse, default=Layout(1, 1), help="ClickHouse shards x replicas")
    parser.add_argument("--flush-ms", type=int, help="profile stream_flush_interval_ms (18.16 default 7500)")
    parser.add_argument("--max-block-size", type=int, help="profile max_block_size (default 65536)")
    parser.add_argument("--kafka-max-block-size", type=int, help="Kafka table kafka_max_block_size")
    parser.add_argument("--consumers", type=int, help="Kafka table kafka_num_consumers")
    parser.add_argument("--partitions", type=int, help="partitions of the events topic")
    options = parser.parse_args()
    layout = options.layout
    overrides = grown_clickhouse(layout.shards, layout.replicas) if layout != Layout(1, 1) else {}
    if options.partitions:
        overrides["kafka"] = {"topic": {"partitions": options.partitions}}
    settings = parse_settings("dev", stack_config("dev", overrides))
    tuning = Tuning(options.flush_ms, options.max_block_size, options.kafka_max_block_size, options.consumers)
    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    with pipeline(settings, tuning, work) as plane:
        kafka_table = next(s for s in schema(settings, plane.kafka.bootstrap, tuning) if "kafka_num_consumers" in s)
        knobs = ", ".join(re.findall(r"kafka_(?:num_consumers|max_block_size)\s*=\s*\d+", kafka_table))
        print(
            f"ClickHouse {options.layout}, topic {plane.topic} with {settings.kafka.topic.partitions} partitions; "
            f"{knobs}; profile {tuning.profile() or 'as the stack sets it'}"
        )
        startup = (plane.kafka.server, *(node.server for node in plane.cluster.nodes))
        print(
            "server startup (launch to ready): "
            + ", ".join(f"{server.name} {server.started_in:.2f} s" for server in startup)
        )
        measure(plane, options.events, options.lag_rate, options.lag_seconds)


if __name__ == "__main__":
    main()
