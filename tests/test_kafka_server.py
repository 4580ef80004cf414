"""The stack's Kafka config and scripts, run on a real Kafka node on 127.0.0.1."""

import json
import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, ConfigResource
from kafka_server import KAFKA_VERSION, KafkaNode, run_topic_bootstrap, start_kafka

from components.labels import image_version
from components.settings import Settings

pytestmark = pytest.mark.integration


def event_json(index: int, key: str, run_id: str = "kafka-tests") -> str:
    """An event in the JSON form the ClickHouse Kafka engine table reads."""
    return json.dumps(
        {
            "event_id": key,
            "run_id": run_id,
            "kind": "test",
            "payload": f"p{index}",
            "produced_at_ms": time.time_ns() // 10**6,
        }
    )


def produce(bootstrap: str, topic: str, keys: list[str], value: Callable[[int, str], str] = event_json) -> set[str]:
    """Send one event per key with an idempotent acks=all producer; return the acknowledged keys."""
    acked: set[str] = set()
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})

    def delivered(error: object, message: object) -> None:
        if error is None:
            acked.add(message.key().decode())  # type: ignore[attr-defined]

    for index, key in enumerate(keys):
        producer.produce(topic, key=key, value=value(index, key), on_delivery=delivered)
    assert producer.flush(30) == 0, "events still unacknowledged after 30 s"
    return acked


def consume(bootstrap: str, topic: str, expected: set[str], deadline: float = 30.0) -> set[str]:
    """Read the topic from the start until every expected key is seen or the deadline passes."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4()}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    seen: set[str] = set()
    end = time.monotonic() + deadline
    try:
        while not expected <= seen and time.monotonic() < end:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                seen.add(message.key().decode())
    finally:
        consumer.close()
    return seen


def test_the_test_server_is_the_deployed_version(dev_settings: Settings) -> None:
    assert image_version(dev_settings.kafka.image) == KAFKA_VERSION


def test_topic_bootstrap_creates_the_topic_as_configured_and_is_idempotent(
    kafka_node: KafkaNode, events_topic: str, dev_settings: Settings
) -> None:
    run_topic_bootstrap(kafka_node, dev_settings)
    admin = AdminClient({"bootstrap.servers": kafka_node.bootstrap})
    topic = admin.list_topics(timeout=10).topics[events_topic]
    assert len(topic.partitions) == dev_settings.kafka.topic.partitions
    resource = ConfigResource(ConfigResource.Type.TOPIC, events_topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=10)
    assert configs["min.insync.replicas"].value == str(dev_settings.kafka.min_insync_replicas)


def test_auto_topic_creation_is_off(kafka_node: KafkaNode) -> None:
    produce(kafka_node.bootstrap, "typo-topic", []) if False else None
    admin = AdminClient({"bootstrap.servers": kafka_node.bootstrap})
    consumer = Consumer(
        {"bootstrap.servers": kafka_node.bootstrap, "group.id": "probe", "allow.auto.create.topics": True}
    )
    consumer.list_topics("typo-topic", timeout=5)
    consumer.close()
    assert "typo-topic" not in admin.list_topics(timeout=10).topics


def test_acknowledged_events_are_consumed_back(kafka_node: KafkaNode, events_topic: str) -> None:
    keys = [f"roundtrip-{i}" for i in range(200)]
    acked = produce(kafka_node.bootstrap, events_topic, keys)
    assert acked == set(keys)
    missing = acked - consume(kafka_node.bootstrap, events_topic, acked)
    assert not missing, f"{len(missing)} acknowledged events were not consumed back"


def test_a_restarted_node_keeps_its_data_and_identity(tmp_path, dev_settings: Settings) -> None:
    cluster_id = "-q1Sh9_ISia_zwGINzRvyQ"  # a leading '-', as one random id in 64 has
    node = start_kafka(dev_settings.kafka, tmp_path, cluster_id)
    try:
        run_topic_bootstrap(node, dev_settings)
        acked = produce(node.bootstrap, dev_settings.kafka.topic.name, [f"durable-{i}" for i in range(20)])
    finally:
        node.server.stop()
    again = start_kafka(dev_settings.kafka, tmp_path, cluster_id)
    try:
        missing = acked - consume(again.bootstrap, dev_settings.kafka.topic.name, acked)
        assert not missing, f"{len(missing)} acknowledged events were lost across the restart"
    finally:
        again.server.stop()
