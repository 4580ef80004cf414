"""MirrorMaker 2 on 127.0.0.1, from the stack's own mm2.properties, between two real Kafka clusters."""

from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from components.data.kafka.component import LOG4J_FILE
from components.data.kafka.config import BROKER_PRINCIPAL, Grant, admin_preamble, log4j_properties
from components.data.kafka.mirror import (
    SOURCE_PASSWORD_ENV,
    TARGET_PASSWORD_ENV,
    mirror_metrics_config,
    mirror_properties,
    mirror_user_commands,
)
from components.observability.jmx_exporter import CONFIG_FILE, agent_option
from components.settings.model import MirrorSettings
from tests.support.servers.kafka import KafkaNode, password_env, run_admin_script
from tests.support.servers.process import ServerProcess, free_ports, jmx_exporter_jar

MIRROR_PASSWORD = "mirror-test-password-0005"
"""The mirror user's password on both clusters (each site's Secret holds its own in a deployment)."""


@dataclass
class Mirror:
    """A running MirrorMaker 2 and where its metrics are."""

    server: ServerProcess
    metrics_port: int


def add_mirror_user(node: KafkaNode, granted: tuple[Grant, ...]) -> None:
    """Run the topic Job's mirror user lines on a cluster (as broker, on INTERNAL); fail if it fails."""
    env = {TARGET_PASSWORD_ENV: MIRROR_PASSWORD, **password_env(node.passwords, (BROKER_PRINCIPAL,))}
    run_admin_script(node, "mirror-user", f"{admin_preamble()}{mirror_user_commands(granted)}\n", env)


def start_mirror(mirror: MirrorSettings, target: KafkaNode) -> Mirror:
    """Start connect-mirror-maker on the stack's mm2.properties (the target's settings), its metrics agent on."""
    directory = target.workdir / "mirror"
    directory.mkdir(exist_ok=True)
    properties = directory / "mm2.properties"
    properties.write_text(mirror_properties(target.settings, mirror, target.bootstrap))
    exporter = directory / CONFIG_FILE
    exporter.write_text(mirror_metrics_config())
    # The pod's log4j file (stdout only), as the Deployment mounts it.
    log4j = directory / LOG4J_FILE
    log4j.write_text(log4j_properties())
    (metrics,) = free_ports(1)
    env = {
        "KAFKA_LOG4J_OPTS": f"-Dlog4j.configuration=file:{log4j}",
        "LOG_DIR": str(directory / "logs"),
        "KAFKA_HEAP_OPTS": "-Xms128m -Xmx256m",
        "KAFKA_OPTS": agent_option(str(jmx_exporter_jar("jmx_prometheus_javaagent")), metrics, str(exporter)),
        SOURCE_PASSWORD_ENV: MIRROR_PASSWORD,
        TARGET_PASSWORD_ENV: MIRROR_PASSWORD,
    }
    argv = [str(target.home / "bin/connect-mirror-maker.sh"), str(properties)]
    server = ServerProcess("mirror", argv, metrics, directory / "mirror.log", env).start()
    return Mirror(server, metrics)


def end_offsets(node: KafkaNode, topic: str) -> dict[int, int]:
    """Each partition's end offset (high watermark) of a topic, read as the broker user."""
    config: dict[str, str | int | float | bool] = {**node.client_config(BROKER_PRINCIPAL)}
    partitions = AdminClient(config).list_topics(topic, timeout=10).topics[topic].partitions
    consumer = Consumer({**config, "group.id": "unused"})
    try:
        return {
            partition: consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
            for partition in partitions
        }
    finally:
        consumer.close()
