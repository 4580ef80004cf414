"""Real Kafka nodes on 127.0.0.1, started from the stack's own server.properties, start script and probe."""

import base64
import os
import re
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient

from components.data.clickhouse.config import CONSUMER_GROUP
from components.data.kafka.config import (
    BROKER_PRINCIPAL,
    CLICKHOUSE_PRINCIPAL,
    ENV_PASSWORD,
    NODE_ID_TOKEN,
    SCRAM_MECHANISM,
    VERIFY_PRINCIPAL,
    Ports,
    metrics_config,
    node_pod,
    ready_script,
    server_properties,
    start_script,
    topic_bootstrap_script,
)
from components.data.kafka.mirror import TARGET_PASSWORD_ENV
from components.observability.jmx_exporter import CONFIG_FILE, agent_option
from components.settings.model import KafkaSettings, Settings
from components.settings.stack_files import REPO
from tests.support.servers.process import CACHE, ServerProcess, free_ports, installed, jmx_exporter_jar

KAFKA_VERSION = re.search(r"<kafka.version>(.+)</kafka.version>", (REPO / "scripts/servers/kafka-pom.xml").read_text())[
    1
]
KAFKA_HOME = CACHE / f"kafka-{KAFKA_VERSION}"
PASSWORDS = {
    BROKER_PRINCIPAL: "broker-test-password-0001",
    CLICKHOUSE_PRINCIPAL: "clickhouse-test-password-0002",
    VERIFY_PRINCIPAL: "verify-test-password-0003",
}
"""What the Secret kafka-users holds, for a node with authentication: scram."""


def with_scram(settings: Settings) -> Settings:
    """The settings with prod's Kafka authentication (SASL/SCRAM users and ACLs)."""
    return settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"authentication": "scram"})})


@dataclass
class KafkaNode:
    """A running node and how to reach it."""

    server: ServerProcess
    settings: KafkaSettings
    ports: Ports
    home: Path
    workdir: Path
    metrics_port: int
    """Where the JMX exporter agent, with the stack's rules, serves /metrics."""
    passwords: dict[str, str]
    """By principal (broker and the SCRAM users), when the node authenticates clients; else empty."""
    node_id: int
    external_port: int
    """The port the node advertises its EXTERNAL listener at, on 127.0.0.1: nothing listens there until a
    forward to ports.external does (as in the pod, where the listener's port is another)."""

    @property
    def bootstrap(self) -> str:
        """The CLIENT listener."""
        return f"127.0.0.1:{self.ports.client}"

    @property
    def presto_bootstrap(self) -> str:
        """The PRESTO listener (PLAINTEXT)."""
        return f"127.0.0.1:{self.ports.presto}"

    def ready(self) -> subprocess.CompletedProcess[str]:
        """Run the stack's readiness probe against the node, as the kubelet does: exit code 0 is ready."""
        script = self.workdir / "ready.sh"
        script.write_text(ready_script())
        return subprocess.run(
            ["/bin/bash", str(script), str(self.metrics_port)], capture_output=True, text=True, timeout=10, check=False
        )

    def client_config(self, user: str = VERIFY_PRINCIPAL, password: str | None = None) -> dict[str, str]:
        """Client settings (librdkafka's) logging in as `user`: a SCRAM user on CLIENT, broker on INTERNAL.

        Without SASL on the node: the CLIENT listener, no login.
        """
        if not self.passwords:
            return {"bootstrap.servers": self.bootstrap}
        broker = user == BROKER_PRINCIPAL
        return {
            "bootstrap.servers": f"127.0.0.1:{self.ports.internal}" if broker else self.bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN" if broker else SCRAM_MECHANISM,
            "sasl.username": user,
            "sasl.password": self.passwords[user] if password is None else password,
        }


def start_kafka(kafka: KafkaSettings, workdir: Path, cluster_id: str | None = None) -> KafkaNode:
    """Render the stack's config for loopback and run the stack's start script on it (with PASSWORDS if scram)."""
    (node,) = start_nodes(kafka, workdir, 1, cluster_id)
    return node


def start_nodes(kafka: KafkaSettings, workdir: Path, count: int, cluster_id: str | None = None) -> list[KafkaNode]:
    """A KRaft quorum of `count` nodes on 127.0.0.1, each in workdir/node-N but for a single node, started at once.

    On one host the nodes cannot share ports as pods do, so each has its own, and the quorum names each
    voter's CONTROLLER port.
    """
    home = installed(KAFKA_HOME / ".installed", "Kafka").parent
    every = free_ports(7 * count)
    layout = [every[7 * n : 7 * n + 7] for n in range(count)]
    voters = [(n, f"127.0.0.1:{ports[1]}") for n, ports in enumerate(layout)]
    cluster_id = cluster_id or base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    passwords = dict(PASSWORDS) if kafka.authentication == "scram" else {}
    nodes = []
    for node_id, (client, controller, internal, presto, external, advertised, metrics) in enumerate(layout):
        ports = Ports(client=client, controller=controller, internal=internal, presto=presto, external=external)
        directory = workdir if count == 1 else workdir / f"node-{node_id}"
        directory.mkdir(parents=True, exist_ok=True)
        exporter = directory / CONFIG_FILE
        exporter.write_text(metrics_config())
        template = directory / "server.properties.template"
        template.write_text(
            server_properties(
                kafka,
                node_id=NODE_ID_TOKEN,
                advertised_host="127.0.0.1",
                voters=voters,
                log_dir=str(directory / "data"),
                ports=ports,
            )
        )
        script = directory / "start.sh"
        script.write_text(start_script(kafka))
        env = {
            "POD_NAME": node_pod(node_id),
            "CLUSTER_ID": cluster_id,
            "KAFKA_HOME": str(home),
            "TEMPLATE": str(template),
            "RUNTIME_DIR": str(directory),
            # The node advertises EXTERNAL at LOCAL_PORT_BASE + its id: a free port here.
            "LOCAL_PORT_BASE": str(advertised - node_id),
            "KAFKA_HEAP_OPTS": "-Xms256m -Xmx384m" if count == 1 else "-Xms128m -Xmx256m",
            "KAFKA_OPTS": agent_option(str(jmx_exporter_jar("jmx_prometheus_javaagent")), metrics, str(exporter)),
            **password_env(passwords, (BROKER_PRINCIPAL,)),
        }
        server = ServerProcess("kafka", ["/bin/sh", str(script)], client, directory / "kafka.log", env).launch()
        nodes.append(KafkaNode(server, kafka, ports, home, directory, metrics, passwords, node_id, advertised))
    for node in nodes:
        node.server.wait_ready()
    return nodes


def password_env(passwords: dict[str, str], principals: tuple[str, ...] = tuple(ENV_PASSWORD)) -> dict[str, str]:
    """The environment the stack's scripts read these principals' passwords from (none if not given)."""
    return {ENV_PASSWORD[principal]: passwords[principal] for principal in principals if principal in passwords}


def clickhouse_group(kafka: KafkaNode) -> tuple[ConsumerGroupState, int]:
    """ClickHouse's consumer group on a node: its state and how many members it has."""
    admin = AdminClient(kafka.client_config(CLICKHOUSE_PRINCIPAL))
    (described,) = admin.describe_consumer_groups([CONSUMER_GROUP]).values()
    group = described.result()
    return group.state, len(group.members)


def until_group_stable(kafka: KafkaNode, members: int = 1, seconds: float = 60) -> bool:
    """Wait until ClickHouse's group is Stable with at least `members` members; whether it got there."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state, joined = clickhouse_group(kafka)
        if state == ConsumerGroupState.STABLE and joined >= members:
            return True
        time.sleep(0.2)
    return False


def run_topic_bootstrap(
    node: KafkaNode, mirror_user: str = "", mirror_password: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the topic bootstrap Job's script, with the node's passwords, on its INTERNAL listener; fail if it fails.

    mirror_user: the Job's lines creating the mirror user (mirror.site_mirror_user), with its password.
    """
    extra = {TARGET_PASSWORD_ENV: mirror_password} if mirror_password else {}
    return run_admin_script(
        node,
        "topic-bootstrap",
        topic_bootstrap_script(node.settings, mirror_user),
        password_env(node.passwords) | extra,
    )


def run_admin_script(node: KafkaNode, name: str, text: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run one of the stack's admin scripts on the node's INTERNAL listener, as its Job would; fail if it fails."""
    script = node.workdir / f"{name}.sh"
    script.write_text(text)
    runtime = node.workdir / name
    runtime.mkdir(exist_ok=True)
    base = {
        "KAFKA_HEAP_OPTS": "-Xmx128m",
        "KAFKA_HOME": str(node.home),
        "BOOTSTRAP": f"127.0.0.1:{node.ports.internal}",
        "RUNTIME_DIR": str(runtime),
    }
    every = {**os.environ, **base, **env}
    result = subprocess.run(
        ["/bin/sh", str(script)], env=every, capture_output=True, text=True, timeout=180, check=False
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result


@contextmanager
def forward(local_port: int, target_port: int) -> Iterator[None]:
    """Relay connections to 127.0.0.1:local_port to 127.0.0.1:target_port, as a port-forward to a pod would."""
    listener = socket.create_server(("127.0.0.1", local_port))

    def pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            sink.close()

    def accept() -> None:
        while True:
            try:
                local, _ = listener.accept()
            except OSError:
                return
            try:
                remote = socket.create_connection(("127.0.0.1", target_port))
            except OSError:  # nothing there: the client sees its connection closed, as through a port-forward
                local.close()
                continue
            threading.Thread(target=pump, args=(local, remote), daemon=True).start()
            threading.Thread(target=pump, args=(remote, local), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield
    finally:
        listener.close()
