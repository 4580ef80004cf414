"""Kafka's configuration as pure functions: server.properties, the start script, topic bootstrap.

The ConfigMap holds server.properties as a template in which two tokens stand for what only the pod
knows (its ordinal and its name); the start script fills them in. Tests call the same functions with
loopback addresses and run the same script against a real Kafka.
"""

from collections.abc import Sequence

from components.settings import KafkaSettings

NODE_ID_TOKEN = "@NODE_ID@"
POD_NAME_TOKEN = "@POD_NAME@"


def server_properties(
    kafka: KafkaSettings,
    *,
    node_id: str,
    advertised_host: str,
    voters: Sequence[tuple[int, str]],
    log_dir: str,
    client_port: int,
    controller_port: int,
) -> str:
    """server.properties of one combined broker+controller node in KRaft mode."""
    quorum = ",".join(f"{voter_id}@{host}:{controller_port}" for voter_id, host in voters)
    properties = {
        "process.roles": "broker,controller",
        "node.id": node_id,
        "controller.quorum.voters": quorum,
        "listeners": f"CLIENT://:{client_port},CONTROLLER://:{controller_port}",
        "advertised.listeners": f"CLIENT://{advertised_host}:{client_port}",
        "listener.security.protocol.map": "CLIENT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "CLIENT",
        "controller.listener.names": "CONTROLLER",
        "log.dirs": log_dir,
        # Topics are created on purpose (the bootstrap Job), never by a typo in a producer.
        "auto.create.topics.enable": "false",
        "num.partitions": str(kafka.topic.partitions),
        "default.replication.factor": str(kafka.replication_factor),
        "min.insync.replicas": str(kafka.min_insync_replicas),
        "offsets.topic.replication.factor": str(kafka.replication_factor),
        "transaction.state.log.replication.factor": str(kafka.replication_factor),
        "transaction.state.log.min.isr": str(kafka.min_insync_replicas),
        # An out-of-sync replica never becomes leader: acknowledged writes are never lost to failover.
        "unclean.leader.election.enable": "false",
        "group.initial.rebalance.delay.ms": "0",
    }
    return "".join(f"{key}={value}\n" for key, value in properties.items())


def start_script() -> str:
    """POSIX sh run as the container's command: render server.properties, format storage once, start.

    Reads POD_NAME (pod-name-ORDINAL, from the downward API), CLUSTER_ID, KAFKA_HOME, TEMPLATE (the
    server.properties template) and RUNTIME_DIR (a writable directory).
    """
    return f"""#!/bin/sh
set -eu
node_id="${{POD_NAME##*-}}"
sed -e "s/{NODE_ID_TOKEN}/$node_id/g" -e "s/{POD_NAME_TOKEN}/$POD_NAME/g" "$TEMPLATE" > "$RUNTIME_DIR/server.properties"
# Formatting is idempotent with --ignore-formatted: a restarted pod keeps its data and identity.
# It runs without KAFKA_OPTS: the metrics agent there is the server's, and would take its port.
# --cluster-id=: a random id starts with '-' one time in 64, and `-t ID` would then read it as a flag.
KAFKA_OPTS="" "$KAFKA_HOME/bin/kafka-storage.sh" format --ignore-formatted --cluster-id="$CLUSTER_ID" \\
  -c "$RUNTIME_DIR/server.properties"
exec "$KAFKA_HOME/bin/kafka-server-start.sh" "$RUNTIME_DIR/server.properties"
"""


def topic_bootstrap_command(kafka: KafkaSettings, kafka_home: str, bootstrap: str) -> list[str]:
    """Create the events topic if it does not exist yet (safe to run again)."""
    return [
        f"{kafka_home}/bin/kafka-topics.sh",
        "--bootstrap-server",
        bootstrap,
        "--create",
        "--if-not-exists",
        "--topic",
        kafka.topic.name,
        "--partitions",
        str(kafka.topic.partitions),
        "--replication-factor",
        str(kafka.replication_factor),
        "--config",
        f"min.insync.replicas={kafka.min_insync_replicas}",
    ]
