"""Kafka smoke checks: brokers and controller, the events topic's shape and health, a produce/consume round trip."""

import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

# confluent-kafka documents NewTopic in confluent_kafka.admin, which imports it from its C module without
# re-exporting it for type checkers (no __all__, no `as`): the library's typing is wrong, not the import.
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from components.data.kafka.config import CLICKHOUSE_PRINCIPAL, SCRAM_MECHANISM
from verify.core.checks import Check, CheckFailedError, Context, Figures
from verify.core.targets import Targets

TIMEOUT = 10.0
ANONYMOUS_WAIT = 5.0
"""How long a client without a login waits for metadata it must not get."""
CLICKHOUSE_PASSWORD = "kafkaClickhousePassword"
QUIET: dict[str, str | int] = {"log_level": 3}
"""librdkafka logs errors only: what goes wrong reaches the check as an exception."""


def connection(targets: Targets, login: tuple[str, str] | None = None) -> dict[str, str | int]:
    """Where Kafka is and, if the stack wants it, the SASL/SCRAM login (verify's unless another is given)."""
    settings = {"bootstrap.servers": targets.endpoints.kafka, **QUIET}
    if targets.kafka_login:
        user, password = login or targets.kafka_login
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


def refuses_anonymous(context: Context) -> Figures:
    """Kafka answers verify's login, and gives a client without one nothing."""
    targets = context.targets
    admin(targets).list_topics(timeout=TIMEOUT)  # reachable: a refusal below is the login's doing
    anonymous = AdminClient(
        {"bootstrap.servers": targets.endpoints.kafka, "socket.timeout.ms": int(ANONYMOUS_WAIT * 1000), **QUIET}
    )
    try:
        anonymous.list_topics(timeout=ANONYMOUS_WAIT)
    except KafkaException as refused:
        return {"anonymous": refused.args[0].name()}
    raise CheckFailedError("a client without a login got the cluster's metadata")


def read_only_refuses_writes(context: Context) -> Figures:
    """Kafka's clickhouse user, which may only read, is refused a write to the events topic."""
    targets = context.targets
    login = (CLICKHOUSE_PRINCIPAL, targets.credentials[CLICKHOUSE_PASSWORD])
    producer = Producer({**connection(targets, login), "message.timeout.ms": int(TIMEOUT * 1000)})
    reports: list[KafkaError | None] = []
    # An empty value: were it accepted, the Kafka engine would skip it rather than ingest it.
    producer.produce(
        targets.expected.kafka_topic, key=context.run_id, value=b"", on_delivery=lambda e, _: reports.append(e)
    )
    producer.flush(TIMEOUT + 5)
    if not reports:
        raise CheckFailedError(f"no answer to the write within {TIMEOUT:g}s")
    if reports[0] is None:
        raise CheckFailedError(
            f"{CLICKHOUSE_PRINCIPAL} wrote to {targets.expected.kafka_topic}: the ACLs let a reader write"
        )
    if reports[0].code() != KafkaError.TOPIC_AUTHORIZATION_FAILED:
        raise CheckFailedError(f"refused, but not by the ACLs: {reports[0].str()}")
    return {"user": CLICKHOUSE_PRINCIPAL, "error": reports[0].name()}


def checks(targets: Targets) -> list[Check]:
    """The Kafka smoke checks; with authentication, also that it is required and a reader cannot write."""
    where = targets.endpoints.kafka
    tags = frozenset({"kafka"})
    found = [
        Check(name="kafka.cluster", scenario="smoke", target=where, probe=cluster, deadline=20, tags=tags),
        Check(name="kafka.topic", scenario="smoke", target=where, probe=topic, deadline=20, tags=tags),
        Check(
            name="kafka.round_trip",
            scenario="smoke",
            target=where,
            probe=round_trip,
            deadline=45,
            tags=tags | {"writes"},
        ),
    ]
    if targets.kafka_login:
        found += [
            Check(
                name="kafka.refuses_anonymous",
                scenario="smoke",
                target=where,
                probe=refuses_anonymous,
                deadline=20,
                tags=tags,
            ),
            Check(
                name="kafka.read_only_refuses_writes",
                scenario="smoke",
                target=where,
                probe=read_only_refuses_writes,
                deadline=20,
                tags=tags,
            ),
        ]
    return found
