"""Kafka smoke checks: brokers and controller, the events topic's shape and health, a produce/consume round trip."""

import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from components.kafka_config import SCRAM_MECHANISM
from verify.checks import Check, CheckFailedError, Context, Figures
from verify.targets import Targets

TIMEOUT = 10.0
QUIET: dict[str, str | int] = {"log_level": 3}
"""librdkafka logs errors only: what goes wrong reaches the check as an exception."""


def connection(targets: Targets) -> dict[str, str | int]:
    """Where Kafka is and, if the stack wants it, the SASL/SCRAM login: the settings every client starts from."""
    settings = {"bootstrap.servers": targets.endpoints.kafka, **QUIET}
    if targets.kafka_login:
        user, password = targets.kafka_login
        settings |= {
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": SCRAM_MECHANISM,
            "sasl.username": user,
            "sasl.password": password,
        }
    return settings


def admin(targets: Targets, seconds: float = TIMEOUT, **config: str | int) -> AdminClient:
    """An admin client whose every request gives up after `seconds`; more librdkafka settings in `config`."""
    return AdminClient({**connection(targets), "socket.timeout.ms": int(seconds * 1000), **config})


def cluster(context: Context) -> Figures:
    """Every expected broker is registered and there is an active controller."""
    client = admin(context.targets)  # kept alive until the future resolves
    described = client.describe_cluster(request_timeout=TIMEOUT).result(timeout=TIMEOUT)
    brokers = len(described.nodes)
    if brokers < context.targets.expected.kafka_brokers:
        raise CheckFailedError(f"{brokers} brokers registered, {context.targets.expected.kafka_brokers} expected")
    if described.controller is None:
        raise CheckFailedError("no active controller")
    return {"brokers": brokers, "controller": described.controller.id}


def topic(context: Context) -> Figures:
    """The events topic has its partitions and replicas, every partition led and fully in sync."""
    expected = context.targets.expected
    metadata = admin(context.targets).list_topics(topic=expected.kafka_topic, timeout=TIMEOUT)
    found = metadata.topics.get(expected.kafka_topic)
    if found is None or found.error is not None:
        raise CheckFailedError(f"topic {expected.kafka_topic} is missing ({found.error if found else 'not listed'})")
    partitions = found.partitions.values()
    if len(partitions) != expected.kafka_partitions:
        raise CheckFailedError(f"{len(partitions)} partitions, {expected.kafka_partitions} expected")
    wrong_rf = sorted(p.id for p in partitions if len(p.replicas) != expected.kafka_replication_factor)
    offline = sorted(p.id for p in partitions if p.leader < 0)
    under = sorted(p.id for p in partitions if len(p.isrs) < len(p.replicas))
    problems = [
        f"{label}: partitions {ids}"
        for label, ids in (
            (f"replication factor not {expected.kafka_replication_factor}", wrong_rf),
            ("offline", offline),
            ("under-replicated", under),
        )
        if ids
    ]
    if problems:
        raise CheckFailedError("; ".join(problems))
    return {"partitions": len(partitions), "replication_factor": expected.kafka_replication_factor}


def idempotent_producer(targets: Targets, seconds: float) -> Producer:
    """A producer that counts a message sent only once every in-sync replica has it, each once."""
    return Producer(
        {
            **connection(targets),
            "acks": "all",
            "enable.idempotence": True,
            "message.timeout.ms": int(seconds * 1000),
        }
    )


def delete_topic(targets: Targets, name: str) -> None:
    """Delete a topic and wait for the controller to confirm."""
    client = admin(targets)
    client.delete_topics([name], request_timeout=TIMEOUT)[name].result(timeout=TIMEOUT)


def scratch_topic(context: Context, name: str, partitions: int) -> str:
    """Create a topic replicated like the events topic, deleted at cleanup; its name."""
    targets = context.targets
    replicas = min(targets.expected.kafka_replication_factor, targets.expected.kafka_brokers)
    client = admin(targets)
    client.create_topics([NewTopic(name, partitions, replicas)], request_timeout=TIMEOUT)[name].result(timeout=TIMEOUT)
    context.cleanup.add(f"Kafka topic {name}", lambda: delete_topic(targets, name))
    return name


def round_trip(context: Context) -> Figures:
    """Produce to a scratch topic (acks=all) and consume the message back; the topic is deleted afterwards."""
    targets = context.targets
    name = scratch_topic(context, f"verify-{context.run_id}", 1)
    producer = idempotent_producer(targets, TIMEOUT)
    reports: list[object] = []
    began = time.monotonic()
    producer.produce(name, key=context.run_id, value=b"round trip", on_delivery=lambda error, _: reports.append(error))
    if producer.flush(TIMEOUT) != 0 or reports != [None]:
        raise CheckFailedError(f"the message was not acknowledged: {reports[0] if reports else 'no delivery report'}")
    produced = time.monotonic()
    consumer = Consumer(
        {
            **connection(targets),
            "group.id": name,
            "enable.auto.commit": False,
            "socket.timeout.ms": int(TIMEOUT * 1000),
        }
    )
    try:
        consumer.assign([TopicPartition(name, 0, 0)])
        message = consumer.poll(TIMEOUT)
    finally:
        consumer.close()
    if message is None:
        raise CheckFailedError(f"nothing consumed from {name} within {TIMEOUT:g}s")
    if message.error() is not None:
        raise KafkaException(message.error())
    return {
        "produce_ms": round((produced - began) * 1000, 1),
        "consume_ms": round((time.monotonic() - produced) * 1000, 1),
    }


def checks(targets: Targets) -> list[Check]:
    """The Kafka smoke checks."""
    where = targets.endpoints.kafka
    return [
        Check("kafka.cluster", "smoke", where, cluster, 20, frozenset({"kafka"})),
        Check("kafka.topic", "smoke", where, topic, 20, frozenset({"kafka"})),
        Check("kafka.round_trip", "smoke", where, round_trip, 45, frozenset({"kafka", "writes"})),
    ]
