"""MirrorMaker 2 from the stack's mm2.properties mirrors the events topic and a group's offsets between two real Kafkas.

The primary is the session's SCRAM node; the DR site is a second one, with its own ClickHouse on the stack's
schema. The mirror runs Kafka's own connect-mirror-maker of the same release, with the mirror user and grants
the stack's scripts create.
"""

import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from components.data.clickhouse.config import DATABASE, EVENTS_TABLE
from components.data.kafka.config import BROKER_PRINCIPAL, CLICKHOUSE_PRINCIPAL, VERIFY_PREFIX
from components.data.kafka.mirror import (
    MIRROR_PRINCIPAL,
    OFFSET_LAG_MAX,
    REPLICATION_CONSUMER,
    REPLICATION_LATENCY_METRIC,
    SOURCE_LAG_METRIC,
    site_mirror_user,
    source_grants,
)
from components.settings.model import MirrorSettings, Settings
from tests.support.events import produce_events
from tests.support.servers.clickhouse import ClickHouseNode, apply_schema, query, start_clickhouse
from tests.support.servers.kafka import PASSWORDS, KafkaNode, run_topic_bootstrap, start_kafka, with_scram
from tests.support.servers.metrics import scrape_until
from tests.support.servers.mirror import MIRROR_PASSWORD, Mirror, add_mirror_user, end_offsets, start_mirror
from verify.smoke.mirror import lag_figures

GROUP = f"{VERIFY_PREFIX}mirrored-group"
"""A group committed on the primary whose offsets the mirror translates (not ClickHouse's: the session's may be
consuming, and the mirror leaves a group with members alone)."""


@pytest.fixture(scope="module")
def dr_node(tmp_path_factory: pytest.TempPathFactory, dev_settings: Settings) -> Iterator[KafkaNode]:
    """The DR site's Kafka: the dev stack's config with SCRAM, its own topic bootstrap."""
    node = start_kafka(with_scram(dev_settings).kafka, tmp_path_factory.mktemp("kafka-dr"))
    try:
        run_topic_bootstrap(node)
        yield node
    finally:
        node.server.stop()


@pytest.fixture(scope="module")
def mirror_settings(kafka_node: KafkaNode, events_topic: str) -> MirrorSettings:
    """The dr stack's mirror block pointing at the primary."""
    return MirrorSettings.model_validate(
        {
            "sourceBootstrap": kafka_node.bootstrap,
            "sourceCidrs": ["127.0.0.1/32"],
            "topics": [events_topic],
            "groups": [GROUP],
        }
    )


@pytest.fixture(scope="module")
def mirror(
    kafka_node: KafkaNode, dr_node: KafkaNode, mirror_settings: MirrorSettings, dev_settings: Settings
) -> Iterator[Mirror]:
    """The mirror user on both clusters, then MirrorMaker 2 on the DR side.

    On the DR side the topic Job's own script creates it, as the dr stack runs it (rerun: safe).
    """
    add_mirror_user(kafka_node, source_grants(mirror_settings.topics, mirror_settings.groups))
    dr = with_scram(dev_settings).model_copy(update={"mirror": mirror_settings})
    run_topic_bootstrap(dr_node, site_mirror_user(dr), MIRROR_PASSWORD)
    running = start_mirror(mirror_settings, dr_node)
    yield running
    assert running.server.process and running.server.process.poll() is None, (
        f"the mirror died:\n{running.server.tail()}"
    )
    assert "exiting" not in running.server.log.read_text(), f"a herder died:\n{running.server.tail()}"
    running.server.stop(grace=5)  # its state lives in the DR cluster: nothing to lose at the end


@pytest.fixture(scope="module")
def dr_clickhouse(
    tmp_path_factory: pytest.TempPathFactory, dev_settings: Settings, dr_node: KafkaNode
) -> Iterator[ClickHouseNode]:
    """The DR site's ClickHouse: the stack's config and schema, consuming the DR site's Kafka."""
    login = (CLICKHOUSE_PRINCIPAL, PASSWORDS[CLICKHOUSE_PRINCIPAL])
    node = start_clickhouse(dev_settings, tmp_path_factory.mktemp("clickhouse-dr"), kafka_login=login)
    try:
        apply_schema([node], dev_settings, dr_node.bootstrap)
        yield node
    finally:
        node.server.stop()


def caught_up(primary: KafkaNode, dr: KafkaNode, topic: str, deadline: float = 90.0) -> tuple[dict, dict]:
    """Wait until the DR topic's end offsets equal the primary's; return both (the last read)."""
    end = time.monotonic() + deadline
    while True:
        source, target = end_offsets(primary, topic), end_offsets(dr, topic)
        if source == target or time.monotonic() > end:
            return source, target
        time.sleep(0.5)


def test_the_mirror_copies_every_event_under_the_same_topic_name(
    kafka_node: KafkaNode, dr_node: KafkaNode, mirror: Mirror, events_topic: str
) -> None:
    """Events acknowledged by the primary appear on the DR site's `events`, none missing, at the same offsets."""
    run = f"mirror-{uuid.uuid4()}"
    keys = [f"{run}-{n}" for n in range(200)]
    assert produce_events(kafka_node, events_topic, run, keys) == set(keys)
    source, target = caught_up(kafka_node, dr_node, events_topic)
    assert target == source, f"DR topic {events_topic} end offsets {target}, primary {source}\n{mirror.server.tail()}"
    consumer = Consumer({**dr_node.client_config(BROKER_PRINCIPAL), "group.id": f"{VERIFY_PREFIX}read-{run}"})
    consumer.assign([TopicPartition(events_topic, partition, 0) for partition in target])
    seen: set[str] = set()
    deadline = time.monotonic() + 30
    while not set(keys) <= seen and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None and message.key():
            seen.add(message.key().decode())
    consumer.close()
    assert set(keys) <= seen, f"{len(set(keys) - seen)} events missing on the DR topic {events_topic}"


def test_the_mirror_reports_its_replication_latency(mirror: Mirror, events_topic: str) -> None:
    """The agent serves what KafkaMirrorBehind reads: each partition's latency, the task's consumer of the primary."""
    samples = scrape_until(mirror.metrics_port, {REPLICATION_LATENCY_METRIC, SOURCE_LAG_METRIC}, seconds=60)
    latency = samples.get(REPLICATION_LATENCY_METRIC, [])
    assert {s.labels["topic"] for s in latency} == {events_topic}, f"{REPLICATION_LATENCY_METRIC}: {latency}"
    clients = {s.labels["client"] for s in samples.get(SOURCE_LAG_METRIC, [])}
    assert [c for c in clients if "MirrorSourceConnector" in c and REPLICATION_CONSUMER in c], clients


def test_a_group_committed_on_the_primary_resumes_on_the_dr_site(
    kafka_node: KafkaNode, dr_node: KafkaNode, mirror: Mirror, events_topic: str
) -> None:
    """Checkpoints translate the group's committed offsets into the DR cluster, at most OFFSET_LAG_MAX behind."""
    run = f"group-{uuid.uuid4()}"
    keys = [f"{run}-{n}" for n in range(6 * OFFSET_LAG_MAX)]
    assert produce_events(kafka_node, events_topic, run, keys) == set(keys)
    source = end_offsets(kafka_node, events_topic)
    committed = [TopicPartition(events_topic, p, end) for p, end in source.items()]
    consumer = Consumer({**kafka_node.client_config(BROKER_PRINCIPAL), "group.id": GROUP, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=committed, asynchronous=False)
    finally:
        consumer.close()
    admin = AdminClient(dr_node.client_config(BROKER_PRINCIPAL))
    deadline = time.monotonic() + 90
    translated: dict[int, int] = {}
    while time.monotonic() < deadline:
        (future,) = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(GROUP)]).values()
        translated = {tp.partition: tp.offset for tp in future.result().topic_partitions if tp.offset >= 0}
        if translated.keys() == source.keys() and all(source[p] - translated[p] <= OFFSET_LAG_MAX for p in source):
            break
        time.sleep(1)
    behind = {p: source[p] - translated.get(p, 0) for p in source}
    assert all(0 <= lag <= OFFSET_LAG_MAX for lag in behind.values()), (
        f"group {GROUP} on the DR site: {translated}, on the primary: {source}\n{mirror.server.tail()}"
    )


def test_the_lag_counts_what_a_stopped_mirror_has_not_copied_and_reads_zero_once_caught_up(
    kafka_node: KafkaNode, dr_node: KafkaNode, mirror: Mirror, mirror_settings: MirrorSettings, events_topic: str
) -> None:
    """Verify's lag (RPO) figures: 0 caught up; the exact count, and an age, of events produced while it is stopped."""
    source = {**kafka_node.client_config(MIRROR_PRINCIPAL, MIRROR_PASSWORD)}
    target = {**dr_node.client_config(CLICKHOUSE_PRINCIPAL)}
    caught_up(kafka_node, dr_node, events_topic)
    assert lag_figures(source, target, events_topic) == {"behind_records": 0, "partitions_behind": 0, "rpo_seconds": 0}
    mirror.server.pause()
    try:
        time.sleep(0.01)  # the new events' timestamps come after the last mirrored one's millisecond
        run = f"lag-{uuid.uuid4()}"
        keys = [f"{run}-{n}" for n in range(50)]
        assert produce_events(kafka_node, events_topic, run, keys) == set(keys)
        stopped = lag_figures(source, target, events_topic)
    finally:
        mirror.server.resume()
    assert stopped["behind_records"] == 50 and stopped["partitions_behind"] >= 1, stopped
    assert float(stopped["rpo_seconds"]) > 0, stopped
    caught_up(kafka_node, dr_node, events_topic)
    assert lag_figures(source, target, events_topic)["behind_records"] == 0


def test_the_dr_sites_clickhouse_serves_the_mirrored_events_with_the_stacks_own_schema(
    kafka_node: KafkaNode, mirror: Mirror, dr_clickhouse: ClickHouseNode, events_topic: str
) -> None:
    """Events produced on the primary are queryable on the DR site, once each: the topic kept its name."""
    run = f"dr-{uuid.uuid4()}"
    keys = [f"{run}-{n}" for n in range(100)]
    assert produce_events(kafka_node, events_topic, run, keys) == set(keys)
    sql = f"SELECT count(), uniqExact(event_id) FROM {DATABASE}.{EVENTS_TABLE} WHERE run_id = '{run}'"
    deadline = time.monotonic() + 60
    while (found := query(dr_clickhouse, sql)) != "100\t100" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert found == "100\t100", f"the DR site's {DATABASE}.{EVENTS_TABLE} has (rows, events) {found} of the run"
