"""Kafka's configuration as pure functions: server.properties, the start script, topic and user bootstrap.

The ConfigMap holds server.properties as a template in which two tokens stand for what only the pod
knows (its ordinal and its name); the start script fills them in, and adds what comes from the
Secret. Tests call the same functions with loopback addresses and run the same scripts against a
real Kafka.

Every node has five listeners, whatever the authentication:

- CLIENT: clients (ClickHouse, verify). With `authentication: scram`, SASL/SCRAM-SHA-512 users whom
  ACLs (grants()) allow what each needs, and nothing without them.
- CONTROLLER and INTERNAL: the KRaft quorum and replication. With scram, SASL/PLAIN as the `broker`
  principal, the one super user (SCRAM cannot serve the quorum: its credentials live in the
  metadata the quorum replicates).
- PRESTO: PLAINTEXT, for Presto's kafka catalog only, whose 0.287 client cannot speak SASL. The
  NetworkPolicies admit only Presto's pods, and with scram the ACLs let its principal (ANONYMOUS)
  read the events topic and nothing else.
- EXTERNAL: verify from outside the cluster, through port-forwards (Strimzi calls such a listener
  external). It listens on the pod's loopback only, where a port-forward arrives (the kubelet's
  runtime connects to localhost in the pod's network namespace), and node N advertises
  127.0.0.1:LOCAL_PORT_BASE+N: a client that has local port LOCAL_PORT_BASE+N forwarded to node N's
  EXTERNAL port reaches every broker under the address the metadata gives it. Its authentication is
  CLIENT's, and so are the ACLs, which follow the principal, not the listener.
  Ref: https://github.com/containerd/containerd/blob/v1.7.0/pkg/cri/server/sandbox_portforward_linux.go
  (cri-dockerd, minikube's docker runtime, runs `nsenter -n socat - TCP4:localhost:PORT`)

The nodes' readiness (ready_script) is the broker serving, not an open port: RUNNING, and caught up on
every partition it follows, read from the JMX exporter agent in the JVM (READINESS_RULES).
"""

from collections.abc import Sequence
from dataclasses import dataclass

from components import names
from components.data.clickhouse.config import CONSUMER_GROUP
from components.observability.jmx_exporter import JVM_RULES, KAFKA_RULES, Rule, exporter_config
from components.settings.model import KafkaSettings

NODE_ID_TOKEN = "@NODE_ID@"
POD_NAME_TOKEN = "@POD_NAME@"
EXTERNAL_PORT_TOKEN = "@EXTERNAL_PORT@"
"""Stands for the port node N advertises on EXTERNAL: the start script fills in LOCAL_PORT_BASE + N."""
EXTERNAL_PORT = 9096
"""The EXTERNAL listener's port in the pod, on loopback only."""
LOCAL_PORT_BASE = 19192
"""Node N advertises EXTERNAL as 127.0.0.1:LOCAL_PORT_BASE+N: the local port a port-forward to it must use."""
LOOPBACK = "127.0.0.1"

BROKER_PRINCIPAL = "broker"
CLICKHOUSE_PRINCIPAL = "clickhouse"
VERIFY_PRINCIPAL = "verify"
PRESTO_PRINCIPAL = "ANONYMOUS"
"""Kafka's principal for a PLAINTEXT connection: with scram, only the PRESTO listener has any."""
VERIFY_PREFIX = "verify-"
"""verify's scratch topics and consumer groups start with this."""
SCRAM_MECHANISM = "SCRAM-SHA-512"
SCRAM_ITERATIONS = 8192
ENV_PASSWORD = {
    BROKER_PRINCIPAL: "KAFKA_BROKER_PASSWORD",
    CLICKHOUSE_PRINCIPAL: "KAFKA_CLICKHOUSE_PASSWORD",
    VERIFY_PRINCIPAL: "KAFKA_VERIFY_PASSWORD",
}
"""The environment variable each script reads a password from (filled from the Secret kafka-users)."""
LOG_SUBDIRECTORY = "kafka-logs"
"""Where in the log volume the partitions live: never its root, which on ext4 holds lost+found, which Kafka
would read as a partition directory and stop (Strimzi and the Bitnami chart use a subdirectory too)."""
PLAIN_LOGIN = "org.apache.kafka.common.security.plain.PlainLoginModule"
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule"


@dataclass(frozen=True)
class Ports:
    """Where a node listens."""

    client: int = names.KAFKA_CLIENT_PORT
    controller: int = names.KAFKA_CONTROLLER_PORT
    internal: int = names.KAFKA_INTERNAL_PORT
    presto: int = names.KAFKA_PRESTO_PORT
    external: int = EXTERNAL_PORT


def node_pod(node_id: int) -> str:
    """The pod of a node: its node.id is its StatefulSet ordinal (the start script reads it off POD_NAME)."""
    return f"{names.KAFKA}-{node_id}"


@dataclass(frozen=True, kw_only=True)
class Grant:
    """One ACL of a scram stack: a principal may do these operations on these resources."""

    principal: str
    operations: tuple[str, ...]
    resources: tuple[tuple[str, str, str], ...]
    """(resource type, pattern type, name), e.g. ("topic", "literal", "events")."""
    reason: str


def grants(kafka: KafkaSettings) -> tuple[Grant, ...]:
    """What each principal other than the super user may do (Read and Write imply Describe)."""
    topic = ("topic", "literal", kafka.topic.name)
    return (
        Grant(
            principal=CLICKHOUSE_PRINCIPAL,
            operations=("Read",),
            resources=(topic, ("group", "literal", CONSUMER_GROUP)),
            reason="the Kafka engine consumes the events topic in its group",
        ),
        Grant(
            principal=PRESTO_PRINCIPAL,
            operations=("Read",),
            resources=(topic,),
            reason="Presto's kafka catalog reads the events topic",
        ),
        Grant(
            principal=VERIFY_PRINCIPAL,
            operations=("Write",),
            resources=(topic,),
            reason="verify's pipeline and failover traffic",
        ),
        Grant(
            principal=VERIFY_PRINCIPAL,
            operations=("All",),
            resources=(("topic", "prefixed", VERIFY_PREFIX), ("group", "prefixed", VERIFY_PREFIX)),
            reason="verify's scratch topics (smoke round trip, load) and their consumer groups",
        ),
    )


def _plain_jaas(password: str, *, serves: bool) -> str:
    """JAAS logging in as broker with SASL/PLAIN, as a shell double-quoted string's content (password a $VAR).

    `serves`: a listener's, which also accepts broker as its one user.
    """
    jaas = f'{PLAIN_LOGIN} required username="{BROKER_PRINCIPAL}" password="{password}"'
    if serves:
        jaas += f' user_{BROKER_PRINCIPAL}="{password}"'
    return (jaas + ";").replace('"', '\\"')


def server_properties(
    kafka: KafkaSettings,
    *,
    node_id: str,
    advertised_host: str,
    voters: Sequence[tuple[int, str]],
    log_dir: str,
    ports: Ports,
) -> str:
    """server.properties of one combined broker+controller node in KRaft mode, without any password.

    voters: (node id, host:port of its CONTROLLER listener) of every node. log_dir: where the node's log
    volume is mounted; the partitions go in its LOG_SUBDIRECTORY.
    """
    quorum = ",".join(f"{voter_id}@{address}" for voter_id, address in voters)
    scram = kafka.authentication == "scram"
    protected = "SASL_PLAINTEXT" if scram else "PLAINTEXT"
    properties = {
        "process.roles": "broker,controller",
        "node.id": node_id,
        "controller.quorum.voters": quorum,
        "listeners": (
            f"CLIENT://:{ports.client},CONTROLLER://:{ports.controller},"
            f"INTERNAL://:{ports.internal},PRESTO://:{ports.presto},EXTERNAL://{LOOPBACK}:{ports.external}"
        ),
        "advertised.listeners": (
            f"CLIENT://{advertised_host}:{ports.client},INTERNAL://{advertised_host}:{ports.internal},"
            f"PRESTO://{advertised_host}:{ports.presto},EXTERNAL://{LOOPBACK}:{EXTERNAL_PORT_TOKEN}"
        ),
        "listener.security.protocol.map": (
            f"CLIENT:{protected},CONTROLLER:{protected},INTERNAL:{protected},PRESTO:PLAINTEXT,EXTERNAL:{protected}"
        ),
        "inter.broker.listener.name": "INTERNAL",
        "controller.listener.names": "CONTROLLER",
        "log.dirs": f"{log_dir.rstrip('/')}/{LOG_SUBDIRECTORY}",
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
    if scram:
        properties |= {
            "listener.name.client.sasl.enabled.mechanisms": SCRAM_MECHANISM,
            f"listener.name.client.{SCRAM_MECHANISM.lower()}.sasl.jaas.config": f"{SCRAM_LOGIN} required;",
            "listener.name.external.sasl.enabled.mechanisms": SCRAM_MECHANISM,
            f"listener.name.external.{SCRAM_MECHANISM.lower()}.sasl.jaas.config": f"{SCRAM_LOGIN} required;",
            "listener.name.internal.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            "sasl.mechanism.controller.protocol": "PLAIN",
            # The PLAIN JAAS lines carry the broker password: the start script adds them from the Secret.
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:{BROKER_PRINCIPAL}",
            "allow.everyone.if.no.acl.found": "false",
        }
    return "".join(f"{key}={value}\n" for key, value in properties.items())


def log4j_properties() -> str:
    """Kafka's log4j 1.x configuration (reload4j): everything to stdout, nothing to files.

    The image's own config writes server.log, controller.log, state-change.log and others through hourly
    DailyRollingFileAppenders that never delete a file; in the pod those land in an emptyDir, which fills
    until the kubelet evicts the node. On stdout the kubelet rotates them (containerLogMaxSize).
    Ref: https://github.com/apache/kafka/blob/3.9.1/config/log4j.properties
    """
    lines = {
        "log4j.rootLogger": "INFO, stdout",
        "log4j.appender.stdout": "org.apache.log4j.ConsoleAppender",
        "log4j.appender.stdout.layout": "org.apache.log4j.PatternLayout",
        "log4j.appender.stdout.layout.ConversionPattern": "[%d] %p %m (%c)%n",
        # As the image's config: the clients' and the request loggers are chatty at INFO.
        "log4j.logger.org.apache.kafka.clients": "WARN",
        "log4j.logger.kafka.request.logger": "WARN",
        "log4j.logger.kafka.network.RequestChannel$": "WARN",
        "log4j.logger.org.apache.kafka.controller": "INFO",
        "log4j.logger.kafka.log.LogCleaner": "INFO",
        "log4j.logger.state.change.logger": "INFO",
        "log4j.logger.kafka.authorizer.logger": "INFO",
    }
    return "".join(f"{key}={value}\n" for key, value in lines.items())


BROKER_STATE_METRIC = "kafka_server_kafkaserver_brokerstate"
FOLLOWER_LAG_METRIC = "kafka_server_fetcherlagmetrics_consumerlag"
RUNNING = "3.0"
"""BrokerState RUNNING as the agent prints it: registered with the quorum, unfenced, serving."""
READINESS_RULES = (
    Rule(
        pattern="kafka.server<type=KafkaServer, name=BrokerState><>Value",
        name=BROKER_STATE_METRIC,
        type="GAUGE",
        help="the broker's state: 1 starting, 2 recovering its logs, 3 running, 6 and 7 shutting down",
    ),
    Rule(
        pattern="kafka.server<type=FetcherLagMetrics, name=ConsumerLag, clientId=ReplicaFetcherThread-[0-9]+-([0-9]+), "
        "topic=(.+), partition=(.+)><>Value",
        name=FOLLOWER_LAG_METRIC,
        type="GAUGE",
        help="messages a partition followed here is behind its leader's high watermark (-1: nothing fetched yet)",
        labels=(("leader", "$1"), ("topic", "$2"), ("partition", "$3")),
    ),
)
"""What ready_script reads. Kafka sets a follower's lag from each fetch response: 0 once it has its leader's
high watermark, which is when the leader takes it back into the partition's ISR.
Ref: https://github.com/apache/kafka/blob/3.9.1/core/src/main/scala/kafka/server/AbstractFetcherThread.scala"""


def metrics_config() -> str:
    """The JMX exporter agent's config on the nodes: Kafka's and the JVM's metrics, and READINESS_RULES."""
    return exporter_config(KAFKA_RULES + JVM_RULES + READINESS_RULES)


def ready_script() -> str:
    """The readiness probe, a bash script taking the agent's port as $1: ready when RUNNING and caught up.

    One HTTP request to the JMX exporter agent in the broker's JVM, over bash's /dev/tcp: the image has
    bash (Kafka's own scripts need it) but no curl, and an admin client would start a JVM every probe.
    It reads the whole page, as a scrape does: the agent's name[] filter never reaches its JMX metrics.
    Not ready while the broker starts, recovers its logs or shuts down, while any partition it follows
    is behind its leader (as after a restart, until it is back in every ISR), or when the JVM does not
    answer within 4 s (stopped, or stuck).
    """
    return f"""#!/bin/bash
set -u
{{ exec 3<>"/dev/tcp/{LOOPBACK}/$1"; }} 2>/dev/null || {{ echo "no metrics agent on port $1"; exit 1; }}
printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3
status="" state="" behind=0 example=""
while :; do
  IFS= read -r -t 4 line <&3 || {{ code=$?; break; }}
  line="${{line%$'\\r'}}"
  case "$line" in
    HTTP/*) status="${{line#* }}" status="${{status%% *}}" ;;
    "{BROKER_STATE_METRIC} "*) state="${{line##* }}" ;;
    "{FOLLOWER_LAG_METRIC}{{"*)
      if [ "${{line##* }}" != 0.0 ]; then
        behind=$((behind + 1)) example="${{example:-$line}}"
      fi ;;
  esac
done
exec 3<&-
if [ "$code" -gt 128 ]; then echo "the metrics agent did not answer within 4 s"; exit 1; fi
if [ "$status" != 200 ]; then echo "the metrics agent answered ${{status:-nothing}}"; exit 1; fi
if [ "$state" != {RUNNING} ]; then echo "broker state ${{state:-unknown}}, not {RUNNING} (RUNNING)"; exit 1; fi
if [ "$behind" -gt 0 ]; then echo "behind the leader on $behind partitions, e.g. $example"; exit 1; fi
echo "running, and in sync on every partition it follows"
"""


def _legacy_layout_move() -> str:
    """POSIX sh moving the partitions of a volume from before LOG_SUBDIRECTORY into it, once.

    Without it, an upgraded node would find log.dirs empty, format it afresh and come back without its
    data. The move goes through a staging directory (renames on one filesystem), so a pod stopped halfway
    resumes it at its next start.
    """
    staging = f".{LOG_SUBDIRECTORY}.moving"
    return f"""# A volume from before log.dirs was its {LOG_SUBDIRECTORY} subdirectory holds the partitions at its root.
logs=$(sed -n 's/^log[.]dirs=//p' "$RUNTIME_DIR/server.properties")
volume="${{logs%/*}}"
if [ ! -e "$logs" ] && {{ [ -f "$volume/meta.properties" ] || [ -d "$volume/{staging}" ]; }}; then
  mkdir -p "$volume/{staging}"
  for entry in "$volume"/* "$volume"/.[!.]*; do
    case "${{entry##*/}}" in
      '*' | '.[!.]*' | lost+found | {staging}) ;;
      *) mv "$entry" "$volume/{staging}/" ;;
    esac
  done
  mv "$volume/{staging}" "$logs"
fi"""


def start_script(kafka: KafkaSettings) -> str:
    """POSIX sh run as the container's command: render server.properties, format storage once, start.

    Reads POD_NAME (pod-name-ORDINAL, from the downward API), CLUSTER_ID, KAFKA_HOME, TEMPLATE (the
    server.properties template), LOCAL_PORT_BASE (EXTERNAL's advertised port is it plus the node id),
    RUNTIME_DIR (a writable directory) and, with scram, the broker password from KAFKA_BROKER_PASSWORD.
    """
    passwords = ""
    if kafka.authentication == "scram":
        jaas = _plain_jaas(f"${ENV_PASSWORD[BROKER_PRINCIPAL]}", serves=True)
        passwords = f"""# The broker password comes from the Secret (the file is this user's only: umask 077).
for listener in internal controller; do
  printf '%s\\n' "listener.name.$listener.plain.sasl.jaas.config={jaas}" >> "$RUNTIME_DIR/server.properties"
done
"""
    return f"""#!/bin/sh
set -eu
umask 077
node_id="${{POD_NAME##*-}}"
sed -e "s/{NODE_ID_TOKEN}/$node_id/g" -e "s/{POD_NAME_TOKEN}/$POD_NAME/g" \
  -e "s/{EXTERNAL_PORT_TOKEN}/$((LOCAL_PORT_BASE + node_id))/g" "$TEMPLATE" > "$RUNTIME_DIR/server.properties"
{passwords}{_legacy_layout_move()}
# Formatting is idempotent with --ignore-formatted: a restarted pod keeps its data and identity.
# It runs without KAFKA_OPTS: the metrics agent there is the server's, and would take its port.
# --cluster-id=: a random id starts with '-' one time in 64, and `-t ID` would then read it as a flag.
KAFKA_OPTS="" "$KAFKA_HOME/bin/kafka-storage.sh" format --ignore-formatted --cluster-id="$CLUSTER_ID" \\
  -c "$RUNTIME_DIR/server.properties"
exec "$KAFKA_HOME/bin/kafka-server-start.sh" "$RUNTIME_DIR/server.properties"
"""


def acl_commands(granted: Sequence[Grant]) -> str:
    """kafka-acls.sh lines adding these grants (adding an ACL that exists changes nothing); $admin logs in.

    One line (one JVM) per grant and pattern type: a pattern type applies to every resource of the line.
    """
    lines = []
    for grant in granted:
        operations = " ".join(f"--operation {operation}" for operation in grant.operations)
        for pattern in dict.fromkeys(pattern for _, pattern, _ in grant.resources):
            resources = " ".join(f"--{kind} {name}" for kind, how, name in grant.resources if how == pattern)
            lines.append(
                f'"$KAFKA_HOME/bin/kafka-acls.sh" $admin --add --force --allow-principal User:{grant.principal} '
                f"{operations} --resource-pattern-type {pattern} {resources}"
            )
    return "\n".join(lines)


def scram_user_command(user: str, password_env: str) -> str:
    """Shell lines setting a SCRAM user's password from an environment variable, through a file ($admin logs in)."""
    return f"""printf '%s\\n' "{SCRAM_MECHANISM}=iterations={SCRAM_ITERATIONS},password=${password_env}" \\
  > "$RUNTIME_DIR/{user}.properties"
"$KAFKA_HOME/bin/kafka-configs.sh" $admin --alter --entity-type users --entity-name {user} \\
  --add-config-file "$RUNTIME_DIR/{user}.properties\""""


def admin_preamble() -> str:
    """The start of a scram stack's admin script: $admin logs in as broker on BOOTSTRAP (password from the env)."""
    jaas = _plain_jaas(f"${ENV_PASSWORD[BROKER_PRINCIPAL]}", serves=False)
    return f"""#!/bin/sh
set -eu
# Passwords go into files only this user can read, never onto a command line.
umask 077
printf '%s\\n' security.protocol=SASL_PLAINTEXT sasl.mechanism=PLAIN "sasl.jaas.config={jaas}" \\
  > "$RUNTIME_DIR/admin.properties"
admin="--bootstrap-server $BOOTSTRAP --command-config $RUNTIME_DIR/admin.properties"
"""


def topic_bootstrap_script(kafka: KafkaSettings, mirror_user: str = "") -> str:
    """POSIX sh of the bootstrap Job: create the events topic; with scram, the users and their ACLs.

    Safe to run again; run again after a password change, it sets the new one. Reads KAFKA_HOME,
    BOOTSTRAP (the INTERNAL listener), RUNTIME_DIR (writable) and, with scram, the passwords from
    KAFKA_BROKER_PASSWORD, KAFKA_CLICKHOUSE_PASSWORD and KAFKA_VERIFY_PASSWORD. mirror_user: the lines
    creating the mirror user (mirror.mirror_user_commands, reading KAFKA_MIRROR_PASSWORD), on a scram stack
    a DR site mirrors from or that mirrors.
    """
    create_topic = (
        f'"$KAFKA_HOME/bin/kafka-topics.sh" $admin --create --if-not-exists --topic {kafka.topic.name} '
        f"--partitions {kafka.topic.partitions} --replication-factor {kafka.replication_factor} "
        f"--config min.insync.replicas={kafka.min_insync_replicas}"
    )
    if kafka.authentication != "scram":
        return f"""#!/bin/sh
set -eu
admin="--bootstrap-server $BOOTSTRAP"
{create_topic}
"""
    users = "\n".join(scram_user_command(user, ENV_PASSWORD[user]) for user in (CLICKHOUSE_PRINCIPAL, VERIFY_PRINCIPAL))
    return f"""{admin_preamble()}{create_topic}
{users}
{acl_commands(grants(kafka))}
{mirror_user}
"""
