"""A real Kafka node on 127.0.0.1, started from the stack's own server.properties and start script."""

import base64
import os
import re
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from components.data.kafka.config import (
    BROKER_PRINCIPAL,
    CLICKHOUSE_PRINCIPAL,
    ENV_PASSWORD,
    NODE_ID_TOKEN,
    SCRAM_MECHANISM,
    VERIFY_PRINCIPAL,
    Ports,
    server_properties,
    start_script,
    topic_bootstrap_script,
)
from components.observability.jmx_exporter import CONFIG_FILE, agent_option, kafka_exporter_config
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

    @property
    def bootstrap(self) -> str:
        """The CLIENT listener."""
        return f"127.0.0.1:{self.ports.client}"

    @property
    def presto_bootstrap(self) -> str:
        """The PRESTO listener (PLAINTEXT)."""
        return f"127.0.0.1:{self.ports.presto}"

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
    home = installed(KAFKA_HOME / ".installed", "Kafka").parent
    client, controller, internal, presto, metrics = free_ports(5)
    ports = Ports(client=client, controller=controller, internal=internal, presto=presto)
    workdir.mkdir(parents=True, exist_ok=True)
    exporter = workdir / CONFIG_FILE
    exporter.write_text(kafka_exporter_config())
    template = workdir / "server.properties.template"
    template.write_text(
        server_properties(
            kafka,
            node_id=NODE_ID_TOKEN,
            advertised_host="127.0.0.1",
            voters=[(0, "127.0.0.1")],
            log_dir=str(workdir / "data"),
            ports=ports,
        )
    )
    script = workdir / "start.sh"
    script.write_text(start_script(kafka))
    passwords = dict(PASSWORDS) if kafka.authentication == "scram" else {}
    env = {
        "POD_NAME": "kafka-0",
        "CLUSTER_ID": cluster_id or base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="),
        "KAFKA_HOME": str(home),
        "TEMPLATE": str(template),
        "RUNTIME_DIR": str(workdir),
        "KAFKA_HEAP_OPTS": "-Xms256m -Xmx384m",
        "KAFKA_OPTS": agent_option(str(jmx_exporter_jar("jmx_prometheus_javaagent")), metrics, str(exporter)),
        **password_env(passwords, (BROKER_PRINCIPAL,)),
    }
    server = ServerProcess("kafka", ["/bin/sh", str(script)], client, workdir / "kafka.log", env).start()
    return KafkaNode(server, kafka, ports, home, workdir, metrics, passwords)


def password_env(passwords: dict[str, str], principals: tuple[str, ...] = tuple(ENV_PASSWORD)) -> dict[str, str]:
    """The environment the stack's scripts read these principals' passwords from (none if not given)."""
    return {ENV_PASSWORD[principal]: passwords[principal] for principal in principals if principal in passwords}


def run_topic_bootstrap(node: KafkaNode) -> subprocess.CompletedProcess[str]:
    """Run the topic bootstrap Job's script, with the node's passwords, on its INTERNAL listener; fail if it fails."""
    script = node.workdir / "topic-bootstrap.sh"
    script.write_text(topic_bootstrap_script(node.settings))
    runtime = node.workdir / "topic-bootstrap"
    runtime.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "KAFKA_HEAP_OPTS": "-Xmx128m",
        "KAFKA_HOME": str(node.home),
        "BOOTSTRAP": f"127.0.0.1:{node.ports.internal}",
        "RUNTIME_DIR": str(runtime),
        **password_env(node.passwords),
    }
    result = subprocess.run(["/bin/sh", str(script)], env=env, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, f"topic bootstrap failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result
