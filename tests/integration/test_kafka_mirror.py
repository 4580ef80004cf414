"""MirrorMaker 2 from the stack's mm2.properties mirrors the events topic and a group's offsets between two real Kafkas.

The primary is the session's SCRAM node; the DR site is a second one, whose ClickHouse (the stack's config and
schema) recovers from the primary's backup and the mirrored topic. The mirror runs Kafka's own
connect-mirror-maker of the same release, with the mirror user and grants the stack's scripts create.
"""

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from components.data.clickhouse.backup import Schedule
from components.data.clickhouse.config import CONSUMER_GROUP, DATABASE, LOCAL_TABLE
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
from tests.support.servers.backup import run_job, start_backup_tool
from tests.support.servers.clickhouse import (
    ClickHouseNode,
    apply_schema,
    run_rows,
    start_clickhouse,
    until_run_events,
)
from tests.support.servers.kafka import PASSWORDS, KafkaNode, run_topic_bootstrap, start_kafka, with_scram
from tests.support.servers.metrics import scrape_until
from tests.support.servers.mirror import MIRROR_PASSWORD, Mirror, add_mirror_user, end_offsets, start_mirror
from tests.support.servers.object_store import start_object_store
from tests.support.verify_harness import by_name, outputs_document, run_verify
from verify.core.exit_codes import ExitCode
from verify.restore_drill.api import CREATED_FORMAT
from verify.smoke.mirror import lag_figures

BUCKET, PREFIX = "primary-backups", "prod"
SCHEDULE = Schedule(keep_full=1, full_every=1)
TABLE = f"{DATABASE}.{LOCAL_TABLE}"
REPLAY_MARGIN = timedelta(minutes=1)
"""docs/operations.md replays from a minute before the backup: events the engine had not flushed when it froze."""
CLOSED = "http://127.0.0.1:9"
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


def test_the_dr_site_recovers_from_the_primarys_backup_and_the_mirror_with_every_event_once(
    kafka_node: KafkaNode,
    dr_node: KafkaNode,
    mirror: Mirror,
    clickhouse_node: ClickHouseNode,
    pipeline: str,
    dev_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    """docs/operations.md's failover: the primary's newest backup restored, then Kafka replayed from its time.

    The primary's ClickHouse takes events, the stack's job backs it up to a real S3 server, more events follow
    and the mirror copies them. The DR site's ClickHouse (its group where a synced group of a caught-up primary
    is: at the topic's end, so it re-reads nothing by itself) gets the backup restored and verify replay from the
    backup's time: every event of the primary once, RPO (the mirror's lag) and RTO (to the last event) printed.
    """
    workdir = tmp_path_factory.mktemp("dr-recovery")
    store = start_object_store(workdir / "store")
    try:
        store.create_bucket(BUCKET)
        run = f"recovery-{uuid.uuid4()}"
        backed_up, later = [f"{run}-a{n}" for n in range(300)], [f"{run}-b{n}" for n in range(200)]
        tool = start_backup_tool(clickhouse_node, store, BUCKET, SCHEDULE, workdir / "primary-backup", PREFIX)
        try:
            assert produce_events(kafka_node, pipeline, run, backed_up) == set(backed_up)
            assert until_run_events(clickhouse_node, run, len(backed_up)) == len(backed_up)
            job = run_job([[tool]], SCHEDULE)
            assert job.returncode == 0, job.stderr
            (backup,) = tool.remote_backups()
        finally:
            tool.server.stop()
        created = datetime.strptime(backup["created"], CREATED_FORMAT).replace(tzinfo=UTC)
        time.sleep(1)  # the later events are stamped after the backup's second
        assert produce_events(kafka_node, pipeline, run, later) == set(later)
        caught_up(kafka_node, dr_node, pipeline)
        source = kafka_node.client_config(MIRROR_PRINCIPAL, MIRROR_PASSWORD)
        target = dr_node.client_config(CLICKHOUSE_PRINCIPAL)
        lag = lag_figures(source, target, pipeline)

        # The primary is lost: recover on the DR site.
        began = time.monotonic()
        login = (CLICKHOUSE_PRINCIPAL, PASSWORDS[CLICKHOUSE_PRINCIPAL])
        dr = start_clickhouse(dev_settings, workdir / "dr-clickhouse", kafka_login=login)
        try:
            ends = [TopicPartition(pipeline, p, end) for p, end in end_offsets(dr_node, pipeline).items()]
            admin = AdminClient(dr_node.client_config(CLICKHOUSE_PRINCIPAL))
            (moved,) = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(CONSUMER_GROUP, ends)]).values()
            moved.result()
            apply_schema([dr], dev_settings, dr_node.bootstrap)
            restorer = start_backup_tool(dr, store, BUCKET, SCHEDULE, workdir / "dr-backup", PREFIX)
            try:
                restored = restorer.cli("restore_remote", "--data", "--table", TABLE, backup["name"])
                assert restored.returncode == 0, restored.stdout[-3000:]
            finally:
                restorer.server.stop()
            assert run_rows(dr, run) == (len(backed_up), len(backed_up)), "the restore brings the backup back"
            document = outputs_document(dev_settings, None, dr, dr_node, pipeline, CLOSED, CLOSED)
            since = (created - REPLAY_MARGIN).isoformat()
            code, report, _ = run_verify(document, tmp_path, "replay", "--from-time", since, "--allow-destructive")
            replayed = by_name(report)["replay.backfill"]
            assert code == ExitCode.PASSED, f"{replayed['error']} {replayed['figures']}"
            rto = time.monotonic() - began
            assert run_rows(dr, run) == (len(backed_up) + len(later),) * 2, "every event of the primary once"
        finally:
            dr.server.stop()
        print(
            f"DR recovery: RPO {lag['rpo_seconds']} s ({lag['behind_records']} records not mirrored at failover), "
            f"backup {backup['name']}, replay from {since}; RTO {rto:.1f} s to every event queryable"
        )
    finally:
        store.server.stop()
