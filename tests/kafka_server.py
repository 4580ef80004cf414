"""A real Kafka node on 127.0.0.1, started from the stack's own server.properties and start script."""

import base64
import os
import re
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from servers import CACHE, ServerProcess, free_ports, installed, jmx_exporter_jar

from components.jmx_exporter import CONFIG_FILE, agent_option, kafka_exporter_config
from components.kafka_config import NODE_ID_TOKEN, server_properties, start_script, topic_bootstrap_command
from components.settings import KafkaSettings, Settings
from components.stack_files import REPO

KAFKA_VERSION = re.search(r"<kafka.version>(.+)</kafka.version>", (REPO / "scripts/servers/kafka-pom.xml").read_text())[
    1
]
KAFKA_HOME = CACHE / f"kafka-{KAFKA_VERSION}"


@dataclass
class KafkaNode:
    """A running node and how to reach it."""

    server: ServerProcess
    bootstrap: str
    home: Path
    metrics_port: int
    """Where the JMX exporter agent, with the stack's rules, serves /metrics."""


def start_kafka(kafka: KafkaSettings, workdir: Path, cluster_id: str | None = None) -> KafkaNode:
    """Render the stack's config for loopback and run the stack's start script on it."""
    home = installed(KAFKA_HOME / ".installed", "Kafka").parent
    client, controller, metrics = free_ports(3)
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
            client_port=client,
            controller_port=controller,
        )
    )
    script = workdir / "start.sh"
    script.write_text(start_script())
    env = {
        "POD_NAME": "kafka-0",
        "CLUSTER_ID": cluster_id or base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="),
        "KAFKA_HOME": str(home),
        "TEMPLATE": str(template),
        "RUNTIME_DIR": str(workdir),
        "KAFKA_HEAP_OPTS": "-Xms256m -Xmx384m",
        "KAFKA_OPTS": agent_option(str(jmx_exporter_jar("jmx_prometheus_javaagent")), metrics, str(exporter)),
    }
    server = ServerProcess("kafka", ["/bin/sh", str(script)], client, workdir / "kafka.log", env).start()
    return KafkaNode(server, f"127.0.0.1:{client}", home, metrics)


def run_topic_bootstrap(node: KafkaNode, settings: Settings) -> subprocess.CompletedProcess[str]:
    """Run the topic bootstrap Job's command against a node; fail with its output if it fails."""
    result = subprocess.run(
        topic_bootstrap_command(settings.kafka, str(node.home), node.bootstrap),
        env={**os.environ, "KAFKA_HEAP_OPTS": "-Xmx128m"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"topic bootstrap failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result
