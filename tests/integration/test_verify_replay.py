"""`verify replay` fills a gap ClickHouse never ingested, from a Kafka offset, with no duplicate left visible.

The gap is made as an outage with a bad recovery would: the Kafka engine table detached, events produced,
the group's offsets moved past them, the table attached again. The replay starts before events ClickHouse
already holds, so they are re-read too and must collapse by event_id.
"""

import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from components.data.clickhouse.config import CONSUMER_GROUP, DATABASE, QUEUE_TABLE
from components.data.kafka.config import CLICKHOUSE_PRINCIPAL
from components.settings.model import Settings
from tests.support.events import produce_events
from tests.support.servers.clickhouse import ClickHouseNode, query
from tests.support.servers.kafka import KafkaNode
from tests.support.servers.mirror import end_offsets
from tests.support.verify_harness import by_name, outputs_document, run_verify
from verify.core.exit_codes import ExitCode

BATCH = 100


def rows(node: ClickHouseNode, run_id: str) -> tuple[int, int]:
    """(rows, distinct event ids) of a run in the events table."""
    text = query(node, f"SELECT count(), uniqExact(event_id) FROM {DATABASE}.events WHERE run_id = '{run_id}'")
    total, unique = text.split("\t")
    return int(total), int(unique)


def until_rows(node: ClickHouseNode, run_id: str, wanted: int, seconds: float = 60) -> int:
    """Wait until the run has `wanted` distinct events in ClickHouse; return how many it has."""
    deadline = time.monotonic() + seconds
    while (unique := rows(node, run_id)[1]) < wanted and time.monotonic() < deadline:
        time.sleep(0.2)
    return unique


def skip_to_end(kafka: KafkaNode, topic: str) -> None:
    """Move ClickHouse's group to the topic's end while it has no member: the events before it are never ingested."""
    admin = AdminClient(kafka.client_config(CLICKHOUSE_PRINCIPAL))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        (described,) = admin.describe_consumer_groups([CONSUMER_GROUP]).values()
        if not described.result().members:
            break
        time.sleep(0.2)
    ends = [TopicPartition(topic, p, end) for p, end in end_offsets(kafka, topic).items()]
    (future,) = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(CONSUMER_GROUP, ends)]).values()
    future.result()


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
    assert until_rows(clickhouse_node, run, BATCH) == BATCH, "the first batch never reached ClickHouse"

    query(clickhouse_node, f"DETACH TABLE {DATABASE}.{QUEUE_TABLE}")
    gap = [f"{run}-b{n}" for n in range(BATCH)]
    assert produce_events(kafka_node, pipeline, run, gap) == set(gap)
    skip_to_end(kafka_node, pipeline)
    query(clickhouse_node, f"ATTACH TABLE {DATABASE}.{QUEUE_TABLE}")
    after = [f"{run}-c{n}" for n in range(BATCH)]
    assert produce_events(kafka_node, pipeline, run, after) == set(after)
    assert until_rows(clickhouse_node, run, 2 * BATCH) == 2 * BATCH
    assert rows(clickhouse_node, run) == (2 * BATCH, 2 * BATCH), "the gap is not a gap: ClickHouse has the events"

    start = ",".join(f"{partition}={offset}" for partition, offset in before_run.items())
    code, report, _ = run_verify(document, tmp_path, "replay", "--from-offset", start, "--allow-destructive")
    backfill = by_name(report)["replay.backfill"]
    assert code == ExitCode.PASSED, backfill
    figures = backfill["figures"]
    assert figures["missing"] == 0 and figures["duplicates_visible"] == 0, figures
    assert figures["filled"] >= BATCH and figures["already_present"] >= 2 * BATCH, figures
    assert rows(clickhouse_node, run) == (3 * BATCH, 3 * BATCH), "every event of the run once, none twice"
