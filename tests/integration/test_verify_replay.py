"""`verify replay` fills a gap ClickHouse never ingested, from a Kafka offset, with no duplicate left visible.

The gap is made as an outage with a bad recovery would: the Kafka engine table detached, events produced,
the group's offsets moved past them, the table attached again. The replay starts before events ClickHouse
already holds, so they are re-read too and must collapse by event_id.
"""

import os
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from components.data.clickhouse.config import CONSUMER_GROUP, DATABASE, QUEUE_TABLE
from components.data.kafka.config import CLICKHOUSE_PRINCIPAL, SCRAM_LOGIN, SCRAM_MECHANISM
from components.settings.model import Settings
from tests.support.events import produce_events
from tests.support.servers.clickhouse import ClickHouseNode, query, run_rows, until_run_events
from tests.support.servers.kafka import KafkaNode, clickhouse_group, until_group_stable
from tests.support.servers.mirror import end_offsets
from tests.support.verify_harness import by_name, outputs_document, run_verify
from verify.core.exit_codes import ExitCode

BATCH = 100


def until_empty(kafka: KafkaNode) -> None:
    """Wait until ClickHouse's group has no member (its Kafka engine table was just detached)."""
    deadline = time.monotonic() + 60
    while clickhouse_group(kafka)[1] and time.monotonic() < deadline:
        time.sleep(0.2)


def skip_to_end(kafka: KafkaNode, topic: str) -> None:
    """Move ClickHouse's group to the topic's end while it has no member: the events before it are never ingested."""
    until_empty(kafka)
    admin = AdminClient(kafka.client_config(CLICKHOUSE_PRINCIPAL))
    ends = [TopicPartition(topic, p, end) for p, end in end_offsets(kafka, topic).items()]
    (future,) = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(CONSUMER_GROUP, ends)]).values()
    future.result()


def skip_with_kafkas_tool(kafka: KafkaNode, topic: str, workdir: Path) -> None:
    """The same skip with kafka-consumer-groups.sh --reset-offsets --to-latest, as the clickhouse user (its ACLs)."""
    until_empty(kafka)
    login = workdir / "clickhouse.properties"
    login.write_text(
        "security.protocol=SASL_PLAINTEXT\n"
        f"sasl.mechanism={SCRAM_MECHANISM}\n"
        f'sasl.jaas.config={SCRAM_LOGIN} required username="{CLICKHOUSE_PRINCIPAL}" '
        f'password="{kafka.passwords[CLICKHOUSE_PRINCIPAL]}";\n'
    )
    command = [str(kafka.home / "bin/kafka-consumer-groups.sh"), "--bootstrap-server", kafka.bootstrap]
    command += ["--command-config", str(login), "--group", CONSUMER_GROUP, "--topic", topic]
    command += ["--reset-offsets", "--to-latest", "--execute"]
    env = {**os.environ, "KAFKA_HEAP_OPTS": "-Xmx128m"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def document(dev_settings: Settings, clickhouse_node: ClickHouseNode, kafka_node: KafkaNode, pipeline: str) -> dict:
    """Stack outputs for the local Kafka and ClickHouse (replay needs no Presto)."""
    return outputs_document(
        dev_settings, None, clickhouse_node, kafka_node, pipeline, "http://127.0.0.1:9", "http://127.0.0.1:9"
    )


def test_a_replay_from_an_offset_fills_the_gap_and_leaves_no_duplicate(
    document: dict, clickhouse_node: ClickHouseNode, kafka_node: KafkaNode, pipeline: str, tmp_path: Path
) -> None:
    run = f"replay-{uuid.uuid4()}"
    before_run = end_offsets(kafka_node, pipeline)
    ingested = [f"{run}-a{n}" for n in range(BATCH)]
    assert produce_events(kafka_node, pipeline, run, ingested) == set(ingested)
    assert until_run_events(clickhouse_node, run, BATCH) == BATCH, "the first batch never reached ClickHouse"

    query(clickhouse_node, f"DETACH TABLE {DATABASE}.{QUEUE_TABLE}")
    gap = [f"{run}-b{n}" for n in range(BATCH)]
    assert produce_events(kafka_node, pipeline, run, gap) == set(gap)
    skip_to_end(kafka_node, pipeline)
    query(clickhouse_node, f"ATTACH TABLE {DATABASE}.{QUEUE_TABLE}")
    after = [f"{run}-c{n}" for n in range(BATCH)]
    assert produce_events(kafka_node, pipeline, run, after) == set(after)
    assert until_run_events(clickhouse_node, run, 2 * BATCH) == 2 * BATCH
    assert run_rows(clickhouse_node, run) == (2 * BATCH, 2 * BATCH), "the gap is not a gap: ClickHouse has the events"

    start = ",".join(f"{partition}={offset}" for partition, offset in before_run.items())
    code, report, _ = run_verify(document, tmp_path, "replay", "--from-offset", start, "--allow-destructive")
    backfill = by_name(report)["replay.backfill"]
    assert code == ExitCode.PASSED, backfill
    figures = backfill["figures"]
    assert figures["missing"] == 0 and figures["duplicates_visible"] == 0, figures
    assert figures["filled"] >= BATCH and figures["already_present"] >= 2 * BATCH, figures
    assert run_rows(clickhouse_node, run) == (3 * BATCH, 3 * BATCH), "every event of the run once, none twice"


def test_a_replay_from_a_time_fills_a_gap_made_with_kafkas_own_tool(
    document: dict, clickhouse_node: ClickHouseNode, kafka_node: KafkaNode, pipeline: str, tmp_path: Path
) -> None:
    run = f"replay-time-{uuid.uuid4()}"
    query(clickhouse_node, f"DETACH TABLE {DATABASE}.{QUEUE_TABLE}")
    since = datetime.now(UTC)
    time.sleep(0.01)  # every event of the gap is stamped after `since`
    gap = [f"{run}-b{n}" for n in range(BATCH)]
    assert produce_events(kafka_node, pipeline, run, gap) == set(gap)
    skip_with_kafkas_tool(kafka_node, pipeline, tmp_path)
    query(clickhouse_node, f"ATTACH TABLE {DATABASE}.{QUEUE_TABLE}")
    assert until_group_stable(kafka_node), "ClickHouse's consumers never joined the group again"
    assert run_rows(clickhouse_node, run) == (0, 0), "the gap is not a gap: ClickHouse has the events"

    code, report, _ = run_verify(document, tmp_path, "replay", "--from-time", since.isoformat(), "--allow-destructive")
    backfill = by_name(report)["replay.backfill"]
    assert code == ExitCode.PASSED, backfill
    assert backfill["figures"]["filled"] >= BATCH and backfill["figures"]["duplicates_visible"] == 0, backfill
    assert run_rows(clickhouse_node, run) == (BATCH, BATCH)
