"""A real Kafka node on 127.0.0.1, started from the stack's own server.properties and start script."""

import base64
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from servers import CACHE, ServerProcess, free_port, installed

from components.kafka_config import NODE_ID_TOKEN, server_properties, start_script
from components.settings import KafkaSettings
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


def start_kafka(kafka: KafkaSettings, workdir: Path, cluster_id: str | None = None) -> KafkaNode:
    """Render the stack's config for loopback and run the stack's start script on it."""
    home = installed(KAFKA_HOME / ".installed", "Kafka").parent
    client, controller = free_port(), free_port()
    workdir.mkdir(parents=True, exist_ok=True)
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
    }
    server = ServerProcess("kafka", ["/bin/sh", str(script)], client, workdir / "kafka.log", env).start()
    return KafkaNode(server, f"127.0.0.1:{client}", home)
