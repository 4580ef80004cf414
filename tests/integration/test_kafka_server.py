"""The stack's Kafka config and scripts, run on a real Kafka node on 127.0.0.1.

The session's node has prod's authentication (SASL/SCRAM users, ACLs, Presto's PLAINTEXT listener);
the restart test runs a dev node, which authenticates nobody, and the readiness test a quorum of three.
"""

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from components.data.kafka.component import MIN_READY_SECONDS
from components.data.kafka.config import (
    BROKER_PRINCIPAL,
    BROKER_STATE_METRIC,
    CLICKHOUSE_PRINCIPAL,
    RUNNING,
    VERIFY_PREFIX,
    VERIFY_PRINCIPAL,
)
from components.platform.labels import image_version
from components.settings.model import Settings
from tests.support.events import produce
from tests.support.servers.kafka import (
    KAFKA_VERSION,
    KafkaNode,
    forward,
    run_topic_bootstrap,
    start_kafka,
    start_nodes,
)
from tests.support.servers.metrics import scrape

QUIET = {"log_level": 0}
"""librdkafka stays silent: refusals reach the test as errors."""
RUNNING_STATE = float(RUNNING)


def refusal(config: dict[str, str], topic: str) -> KafkaError | None:
    """The error one produce gets within 10 s (None: acknowledged)."""
    outcome: list[KafkaError | None] = []
    producer = Producer({**config, "message.timeout.ms": 10000, **QUIET})
    producer.produce(topic, value=b"x", on_delivery=lambda error, _: outcome.append(error))
    producer.flush(15)
    return outcome[0] if outcome else KafkaError(KafkaError._MSG_TIMED_OUT)


def consume(config: dict[str, str], topic: str, expected: set[str], deadline: float = 30.0) -> set[str]:
    """Read the topic from the start until every expected key is seen or the deadline passes."""
    consumer = Consumer({**config, "group.id": f"{VERIFY_PREFIX}test-{uuid.uuid4()}", "auto.offset.reset": "earliest"})
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


def read_partitions(config: dict[str, str], topic: str, partitions: int, group: str) -> set[str]:
    """Keys read from every partition's start within 10 s by a consumer that assigns (as Presto's does).

    librdkafka asks for the group's coordinator even then (Presto's Java consumer does not): a group
    the principal may not use is reported, and is no reason to stop reading.
    """
    consumer = Consumer({**config, "group.id": group, "enable.auto.commit": False, **QUIET})
    consumer.assign([TopicPartition(topic, partition, 0) for partition in range(partitions)])
    keys: set[str] = set()
    end = time.monotonic() + 10
    try:
        while time.monotonic() < end:
            message = consumer.poll(0.5)
            error = message.error() if message is not None else None
            if error is not None and error.code() != KafkaError.GROUP_AUTHORIZATION_FAILED:
                raise KafkaException(error)
            if error is not None:
                continue
            if message is not None:
                keys.add(message.key().decode())
    finally:
        consumer.close()
    return keys


def test_the_test_server_is_the_deployed_version(dev_settings: Settings) -> None:
    assert image_version(dev_settings.kafka.image) == KAFKA_VERSION


def test_topic_bootstrap_creates_the_topic_as_configured_and_is_idempotent(
    kafka_node: KafkaNode, events_topic: str, dev_settings: Settings
) -> None:
    run_topic_bootstrap(kafka_node)
    admin = AdminClient(kafka_node.client_config(BROKER_PRINCIPAL))
    topic = admin.list_topics(timeout=10).topics[events_topic]
    assert len(topic.partitions) == dev_settings.kafka.topic.partitions
    resource = ConfigResource(ConfigResource.Type.TOPIC, events_topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=10)
    assert configs["min.insync.replicas"].value == str(dev_settings.kafka.min_insync_replicas)


def test_auto_topic_creation_is_off(kafka_node: KafkaNode) -> None:
    # As the super user, so that only the broker setting can refuse the topic.
    config = kafka_node.client_config(BROKER_PRINCIPAL)
    consumer = Consumer({**config, "group.id": "probe", "allow.auto.create.topics": True, **QUIET})
    consumer.list_topics("typo-topic", timeout=5)
    consumer.close()
    assert "typo-topic" not in AdminClient(config).list_topics(timeout=10).topics


def test_acknowledged_events_are_consumed_back(kafka_node: KafkaNode, events_topic: str) -> None:
    keys = [f"roundtrip-{i}" for i in range(200)]
    acked = produce(kafka_node.client_config(), events_topic, keys)
    assert acked == set(keys)
    # Read back as the super user: verify writes the events topic but reads it through ClickHouse and Presto.
    missing = acked - consume(kafka_node.client_config(BROKER_PRINCIPAL), events_topic, acked)
    assert not missing, f"{len(missing)} acknowledged events were not consumed back"


@pytest.mark.parametrize("password", [None, "not-the-password-000"], ids=["no login", "wrong password"])
def test_the_client_listener_refuses_whoever_cannot_log_in(
    kafka_node: KafkaNode, events_topic: str, password: str | None
) -> None:
    config = (
        {"bootstrap.servers": kafka_node.bootstrap}
        if password is None
        else kafka_node.client_config(VERIFY_PRINCIPAL, password)
    )
    with pytest.raises(KafkaException):
        AdminClient({**config, **QUIET}).list_topics(timeout=5)
    assert refusal(config, events_topic) is not None


def test_clickhouse_may_read_the_events_topic_and_nothing_more(kafka_node: KafkaNode, events_topic: str) -> None:
    keys = {f"clickhouse-reads-{i}" for i in range(5)}
    produce(kafka_node.client_config(), events_topic, sorted(keys))
    clickhouse = kafka_node.client_config(CLICKHOUSE_PRINCIPAL)
    assert keys <= read_partitions(clickhouse, events_topic, kafka_node.settings.topic.partitions, "clickhouse-events")
    error = refusal(clickhouse, events_topic)
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    admin = AdminClient({**clickhouse, **QUIET})  # kept alive until the future resolves
    with pytest.raises(KafkaException, match="TOPIC_AUTHORIZATION_FAILED"):
        admin.create_topics([NewTopic("clickhouse-made-this", 1, 1)])["clickhouse-made-this"].result(timeout=10)


def test_the_presto_listener_reads_the_events_topic_without_login_and_nothing_more(
    kafka_node: KafkaNode, events_topic: str
) -> None:
    keys = {f"presto-reads-{i}" for i in range(5)}
    produce(kafka_node.client_config(), events_topic, sorted(keys))
    scratch = f"{VERIFY_PREFIX}hidden-{uuid.uuid4().hex[:8]}"
    verify = AdminClient({**kafka_node.client_config(), **QUIET})
    verify.create_topics([NewTopic(scratch, 1, 1)])[scratch].result(timeout=10)
    try:
        presto = {"bootstrap.servers": kafka_node.presto_bootstrap}
        assert keys <= read_partitions(presto, events_topic, kafka_node.settings.topic.partitions, "presto")
        assert set(AdminClient({**presto, **QUIET}).list_topics(timeout=10).topics) == {events_topic}
        error = refusal(presto, events_topic)
        assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    finally:
        verify.delete_topics([scratch])[scratch].result(timeout=10)


def test_verify_may_write_events_and_own_only_its_prefixed_topics(kafka_node: KafkaNode, events_topic: str) -> None:
    config = kafka_node.client_config()
    assert produce(config, events_topic, ["verify-writes"]) == {"verify-writes"}
    admin = AdminClient({**config, **QUIET})
    mine, other = f"{VERIFY_PREFIX}{uuid.uuid4().hex[:8]}", f"not-verify-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(mine, 1, 1)])[mine].result(timeout=10)
    assert admin.delete_topics([mine])[mine].result(timeout=10) is None
    with pytest.raises(KafkaException, match="TOPIC_AUTHORIZATION_FAILED"):
        admin.create_topics([NewTopic(other, 1, 1)])[other].result(timeout=10)
    with pytest.raises(KafkaException, match="TOPIC_AUTHORIZATION_FAILED"):
        admin.delete_topics([events_topic])[events_topic].result(timeout=10)


def test_from_outside_a_client_given_only_the_loopback_addresses_produces_and_consumes(
    kafka_node: KafkaNode, events_topic: str
) -> None:
    # The node's EXTERNAL listener advertises 127.0.0.1:external_port, where only a forward listens, as on a laptop.
    outside = f"127.0.0.1:{kafka_node.external_port}"
    with forward(kafka_node.external_port, kafka_node.ports.external):
        verify = {**kafka_node.client_config(), "bootstrap.servers": outside}
        brokers = AdminClient({**verify, **QUIET}).list_topics(timeout=10).brokers
        assert {(b.id, f"{b.host}:{b.port}") for b in brokers.values()} == {(0, outside)}, "nothing in-cluster"
        keys = [f"from-outside-{i}" for i in range(50)]
        assert produce(verify, events_topic, keys) == set(keys)
        scratch = f"{VERIFY_PREFIX}outside-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({**verify, **QUIET})
        admin.create_topics([NewTopic(scratch, 1, 1)])[scratch].result(timeout=10)
        try:
            assert produce(verify, scratch, keys) == set(keys)
            assert consume(verify, scratch, set(keys)) == set(keys)
        finally:
            admin.delete_topics([scratch])[scratch].result(timeout=10)
        with pytest.raises(KafkaException):
            AdminClient({"bootstrap.servers": outside, **QUIET}).list_topics(timeout=5)
        clickhouse = {**kafka_node.client_config(CLICKHOUSE_PRINCIPAL), "bootstrap.servers": outside}
        error = refusal(clickhouse, events_topic)
        assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, "the same ACLs"


def test_running_the_bootstrap_again_sets_a_changed_password(kafka_node: KafkaNode, events_topic: str) -> None:
    old = kafka_node.passwords[VERIFY_PRINCIPAL]
    kafka_node.passwords[VERIFY_PRINCIPAL] = "rotated-verify-password-0004"
    try:
        run_topic_bootstrap(kafka_node)
        assert produce(kafka_node.client_config(), events_topic, ["after-rotation"]) == {"after-rotation"}
        assert refusal(kafka_node.client_config(VERIFY_PRINCIPAL, old), events_topic) is not None
    finally:
        kafka_node.passwords[VERIFY_PRINCIPAL] = old
        run_topic_bootstrap(kafka_node)


def test_a_dev_node_authenticates_nobody_and_a_restart_keeps_its_data_and_identity(
    tmp_path, dev_settings: Settings
) -> None:
    assert dev_settings.kafka.authentication == "none"
    cluster_id = "-q1Sh9_ISia_zwGINzRvyQ"  # a leading '-', as one random id in 64 has
    node = start_kafka(dev_settings.kafka, tmp_path, cluster_id)
    try:
        run_topic_bootstrap(node)
        plain = {"bootstrap.servers": node.bootstrap}
        acked = produce(plain, dev_settings.kafka.topic.name, [f"durable-{i}" for i in range(20)])
    finally:
        node.server.stop()
    again = start_kafka(dev_settings.kafka, tmp_path, cluster_id)
    try:
        missing = acked - consume({"bootstrap.servers": again.bootstrap}, dev_settings.kafka.topic.name, acked)
        assert not missing, f"{len(missing)} acknowledged events were lost across the restart"
    finally:
        again.server.stop()


def probe_until(node: KafkaNode, ready: bool, seconds: float) -> str:
    """Run the node's readiness probe every half second until it reads `ready`; its last message."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        result = node.ready()
        if (result.returncode == 0) == ready:
            return result.stdout.strip()
        time.sleep(0.5)
    raise AssertionError(f"kafka-{node.node_id} did not read {'ready' if ready else 'not ready'} in {seconds:g}s")


def broker_state(node: KafkaNode) -> float | None:
    """The node's BrokerState as its metrics agent exports it (None: not answering)."""
    try:
        samples = scrape(node.metrics_port)
    except OSError:
        return None
    found = samples.get(BROKER_STATE_METRIC)
    return found[0].value if found else None


def followers_in_sync(admin: AdminClient, topic: str, node_id: int) -> bool:
    """Whether the node is in the ISR of every partition of the topic."""
    partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions.values()
    return all(node_id in partition.isrs for partition in partitions)


def test_a_restarted_broker_is_ready_only_once_running_and_back_in_sync(tmp_path, dev_settings: Settings) -> None:
    # Three real nodes: the probe the kubelet runs reads not-ready while a broker is down, starting, or running
    # but still catching up (replication throttled to hold it there), and ready once it is back in every ISR.
    kafka = dev_settings.kafka.model_copy(update={"brokers": 3, "replication_factor": 3, "min_insync_replicas": 2})
    nodes = start_nodes(kafka, tmp_path, 3)
    try:
        for node in nodes:
            probe_until(node, ready=True, seconds=60)
        restarted = nodes[2]
        restarted.server.pause()
        try:
            assert "did not answer" in probe_until(restarted, ready=False, seconds=10)
        finally:
            restarted.server.resume()
        probe_until(restarted, ready=True, seconds=30)
        admin = AdminClient({"bootstrap.servers": nodes[0].bootstrap, **QUIET})
        admin.create_topics([NewTopic("rolled", 3, 3)])["rolled"].result(timeout=30)
        writer = {"bootstrap.servers": nodes[0].bootstrap}
        assert produce(writer, "rolled", [f"before-{i}" for i in range(100)]) == {f"before-{i}" for i in range(100)}
        assert followers_in_sync(admin, "rolled", restarted.node_id)

        restarted.server.stop()
        assert "no metrics agent" in probe_until(restarted, ready=False, seconds=5)
        payload = "x" * 1024
        while_down = [f"while-down-{i}" for i in range(3000)]  # 3 MB the node has to fetch when it is back
        assert produce(writer, "rolled", while_down, value=lambda index, key: payload) == set(while_down)
        # The leaders send a replica outside the ISR 20 kB/s: the node stays behind long enough to be seen.
        throttle(admin, nodes[:2], "20000")
        restarted.server.launch()
        end = time.monotonic() + 60
        while broker_state(restarted) != RUNNING_STATE:
            assert restarted.ready().returncode != 0, "ready before the broker is RUNNING"
            assert time.monotonic() < end, f"kafka-2 not RUNNING within 60 s:\n{restarted.server.tail()}"
            time.sleep(0.5)
        behind = restarted.ready()
        assert behind.returncode != 0 and behind.stdout.startswith("behind the leader"), behind.stdout
        assert not followers_in_sync(admin, "rolled", restarted.node_id)

        throttle(admin, nodes[:2], None)
        assert probe_until(restarted, ready=True, seconds=60) == "running, and in sync on every partition it follows"
        end = time.monotonic() + MIN_READY_SECONDS
        while not followers_in_sync(admin, "rolled", restarted.node_id):
            assert time.monotonic() < end, "ready, but not back in every ISR within minReadySeconds"
            time.sleep(0.2)
    finally:
        for node in nodes:
            node.server.stop()


def throttle(admin: AdminClient, leaders: list[KafkaNode], rate: str | None) -> None:
    """Limit (None: stop limiting) what these brokers send replicas outside the ISR of "rolled", in bytes/s."""
    operation = AlterConfigOpType.SET if rate else AlterConfigOpType.DELETE
    replicas = ConfigEntry("leader.replication.throttled.replicas", "*", incremental_operation=operation)
    rated = ConfigEntry("leader.replication.throttled.rate", rate or "", incremental_operation=operation)
    # One broker per request (the broker applies its own config), and the topic's replicas it applies to.
    for resource in (
        ConfigResource(ConfigResource.Type.TOPIC, "rolled", incremental_configs=[replicas]),
        *(
            ConfigResource(ConfigResource.Type.BROKER, str(leader.node_id), incremental_configs=[rated])
            for leader in leaders
        ),
    ):
        admin.incremental_alter_configs([resource])[resource].result(timeout=10)
