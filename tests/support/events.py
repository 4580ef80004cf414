"""Test events produced to the real Kafka in the JSON form the ClickHouse Kafka engine table reads."""

import json
import time
from collections.abc import Callable

from confluent_kafka import Producer

from tests.support.servers.kafka import KafkaNode


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


def produce(
    config: dict[str, str], topic: str, keys: list[str], value: Callable[[int, str], str] = event_json
) -> set[str]:
    """Send one event per key with an idempotent acks=all producer; return the acknowledged keys."""
    acked: set[str] = set()
    producer = Producer({**config, "enable.idempotence": True, "acks": "all"})

    def delivered(error: object, message: object) -> None:
        if error is None:
            acked.add(message.key().decode())  # type: ignore[attr-defined]

    for index, key in enumerate(keys):
        producer.produce(topic, key=key, value=value(index, key), on_delivery=delivered)
    assert producer.flush(30) == 0, "events still unacknowledged after 30 s"
    return acked


def produce_events(node: KafkaNode, topic: str, run_id: str, keys: list[str]) -> set[str]:
    """Produce events for one run (as verify, if the node wants a login); return the acknowledged keys."""
    return produce(node.client_config(), topic, keys, value=lambda index, key: event_json(index, key, run_id))
