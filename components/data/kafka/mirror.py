"""MirrorMaker 2's configuration as pure functions: the disaster-recovery site's mirror of the primary's topics.

MirrorMaker 2 runs in dedicated mode (connect-mirror-maker, Kafka's own release and image) on the DR site,
with two clusters: the primary (`mirror.sourceAlias`) and this site's Kafka (TARGET_ALIAS). Only the
primary -> DR flow is enabled. Choices, each for the failover it serves:

- IdentityReplicationPolicy: the mirrored topic keeps its name, so the DR site's ClickHouse schema, the
  Kafka engine's topic list and the producers need no change when they move there.
- offset-syncs.topic.location=target: MirrorMaker writes nothing to the primary, so its user there only
  reads (source_grants), and a primary that is down or read-only does not stop its bookkeeping.
- checkpoints and sync.group.offsets: the committed offsets of `mirror.groups` (ClickHouse's group) are
  translated into this site's cluster, so a consumer started there resumes at most OFFSET_LAG_MAX records
  before where the primary's was. MirrorMaker writes them only while the group has no active member here.
- No ACL or topic-config sync: each site's ACLs are its own stack's (grants()).
- Passwords never appear in the file: it names them as ${env:VARIABLE}, resolved by Kafka's
  EnvVarConfigProvider from the pod's environment (filled from Secrets).

Ref: https://kafka.apache.org/39/documentation/#georeplication
Ref: https://cwiki.apache.org/confluence/display/KAFKA/KIP-382%3A+MirrorMaker+2.0
"""

from collections.abc import Sequence

from components.data.clickhouse.config import CONSUMER_GROUP
from components.data.kafka.config import (
    SCRAM_LOGIN,
    SCRAM_MECHANISM,
    Grant,
    acl_commands,
    scram_user_command,
)
from components.observability.jmx_exporter import JVM_RULES, Rule, exporter_config
from components.settings.model import KafkaSettings, MirrorSettings, Settings

TARGET_ALIAS = "dr"
"""This site's cluster in MirrorMaker 2's config."""
MIRROR_PRINCIPAL = "mirror"
"""MirrorMaker 2's SCRAM user, on both clusters."""
SOURCE_PASSWORD_ENV = "KAFKA_MIRROR_SOURCE_PASSWORD"
TARGET_PASSWORD_ENV = "KAFKA_MIRROR_PASSWORD"
"""The environment variables the mirror reads its two passwords from (the pod fills them from Secrets)."""
INTERNAL_PREFIX = "mm2-"
"""MirrorMaker 2's own topics on the target (offset syncs, connect configs, offsets and status)."""
SYNC_SECONDS = 10
"""How often checkpoints are emitted and group offsets synced, and topics and groups are re-listed."""
OFFSET_LAG_MAX = 50
"""Records between two offset syncs of a partition: a group resumes on the DR site at most this many records
before where it had committed on the primary (re-read events collapse by event_id), for one extra write on the
target per this many records."""


def _cluster(alias: str, bootstrap: str, password_env: str) -> dict[str, str]:
    """One cluster's client settings: SCRAM as the mirror user, the password from the environment."""
    jaas = f'{SCRAM_LOGIN} required username="{MIRROR_PRINCIPAL}" password="${{env:{password_env}}}";'
    return {
        f"{alias}.bootstrap.servers": bootstrap,
        f"{alias}.security.protocol": "SASL_PLAINTEXT",
        f"{alias}.sasl.mechanism": SCRAM_MECHANISM,
        f"{alias}.sasl.jaas.config": jaas,
    }


def mirror_properties(kafka: KafkaSettings, mirror: MirrorSettings, target_bootstrap: str) -> str:
    """mm2.properties for connect-mirror-maker (dedicated mode), without any password.

    kafka: this (the DR) site's Kafka, whose replication factor the mirror's topics take; target_bootstrap:
    its CLIENT listener.
    """
    source, flow = mirror.source_alias, f"{mirror.source_alias}->{TARGET_ALIAS}"
    factor = str(kafka.replication_factor)
    properties = {
        "clusters": f"{source},{TARGET_ALIAS}",
        "config.providers": "env",
        "config.providers.env.class": "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
        **_cluster(source, mirror.source_bootstrap, SOURCE_PASSWORD_ENV),
        **_cluster(TARGET_ALIAS, target_bootstrap, TARGET_PASSWORD_ENV),
        f"{flow}.enabled": "true",
        f"{TARGET_ALIAS}->{source}.enabled": "false",
        # A disabled flow still gets a herder while it emits heartbeats (their default): that herder writes its
        # Connect topics on the primary, which the mirror user may not, and its failure stops the whole process.
        f"{TARGET_ALIAS}->{source}.emit.heartbeats.enabled": "false",
        f"{flow}.topics": ",".join(mirror.topics),
        f"{flow}.groups": ",".join(mirror.groups) or "^$",
        "replication.policy.class": "org.apache.kafka.connect.mirror.IdentityReplicationPolicy",
        "offset-syncs.topic.location": "target",
        "offset.lag.max": str(OFFSET_LAG_MAX),
        "emit.checkpoints.enabled": "true",
        "emit.checkpoints.interval.seconds": str(SYNC_SECONDS),
        "sync.group.offsets.enabled": "true",
        "sync.group.offsets.interval.seconds": str(SYNC_SECONDS),
        "refresh.topics.interval.seconds": str(SYNC_SECONDS),
        "refresh.groups.interval.seconds": str(SYNC_SECONDS),
        "emit.heartbeats.enabled": "true",
        "sync.topic.acls.enabled": "false",
        "sync.topic.configs.enabled": "false",
        "replication.factor": factor,
        "checkpoints.topic.replication.factor": factor,
        "heartbeats.topic.replication.factor": factor,
        "offset-syncs.topic.replication.factor": factor,
        "offset.storage.replication.factor": factor,
        "status.storage.replication.factor": factor,
        "config.storage.replication.factor": factor,
        # Every mirror replica shares the tasks through the target's Connect group; one is enough for one topic.
        "tasks.max": "1",
        # The producer waits for every in-sync replica: an event the DR site acknowledged survives a broker loss there.
        f"{TARGET_ALIAS}.producer.acks": "all",
    }
    return "".join(f"{key}={value}\n" for key, value in properties.items())


def source_grants(topics: Sequence[str], groups: Sequence[str]) -> tuple[Grant, ...]:
    """What the mirror user needs on the primary: read the topics and the groups' offsets, nothing else."""
    return (
        Grant(
            principal=MIRROR_PRINCIPAL,
            operations=("Read", "DescribeConfigs"),
            resources=tuple(("topic", "literal", topic) for topic in topics),
            reason="MirrorMaker 2 reads the mirrored topics and their configs",
        ),
        Grant(
            principal=MIRROR_PRINCIPAL,
            operations=("Describe",),
            resources=(
                *(("group", "literal", group) for group in groups),
                ("cluster", "literal", "kafka-cluster"),
            ),
            reason="MirrorMaker 2 lists the groups and reads their committed offsets (checkpoints)",
        ),
    )


def target_grants(mirror: MirrorSettings) -> tuple[Grant, ...]:
    """What the mirror user needs on the DR site: write the topics, its own topics and group, the groups' offsets."""
    return (
        Grant(
            principal=MIRROR_PRINCIPAL,
            operations=("All",),
            resources=(
                *(("topic", "literal", topic) for topic in mirror.topics),
                ("topic", "literal", "heartbeats"),
                ("topic", "literal", f"{mirror.source_alias}.checkpoints.internal"),
                ("topic", "prefixed", INTERNAL_PREFIX),
                ("group", "literal", f"{mirror.source_alias}-mm2"),
            ),
            reason="MirrorMaker 2 creates and writes the mirrored topics, heartbeats, checkpoints and its own topics",
        ),
        Grant(
            principal=MIRROR_PRINCIPAL,
            operations=("Read",),
            resources=tuple(("group", "literal", group) for group in mirror.groups),
            reason="MirrorMaker 2 writes the translated offsets of the mirrored groups",
        ),
        Grant(
            principal=MIRROR_PRINCIPAL,
            operations=("Describe", "Create"),
            resources=(("cluster", "literal", "kafka-cluster"),),
            reason="MirrorMaker 2 creates the topics it mirrors into and lists the groups",
        ),
    )


def mirror_user_commands(granted: tuple[Grant, ...]) -> str:
    """Shell lines creating the mirror user and adding its grants; safe to run again: the topic Job's part of it.

    $admin logs in (config.admin_preamble); the password comes from KAFKA_MIRROR_PASSWORD (the site's
    kafkaMirrorPassword; the DR stack's kafkaMirrorSourcePassword holds the primary's).
    """
    return f"{scram_user_command(MIRROR_PRINCIPAL, TARGET_PASSWORD_ENV)}\n{acl_commands(granted)}"


def site_mirror_user(settings: Settings) -> str:
    """The topic Job's lines creating this site's mirror user: writing on a DR stack, reading on a mirrored primary."""
    if settings.mirror is not None:
        return mirror_user_commands(target_grants(settings.mirror))
    if settings.kafka.mirror_cidrs:
        return mirror_user_commands(source_grants((settings.kafka.topic.name,), (CONSUMER_GROUP,)))
    return ""


REPLICATION_LATENCY_METRIC = "kafka_mirror_replication_latency_ms"
RECORD_AGE_METRIC = "kafka_mirror_record_age_ms"
SOURCE_LAG_METRIC = "kafka_mirror_source_records_lag"
REPLICATION_CONSUMER = "replication-consumer"
"""What the client id of a source task's consumer of the primary ends with (`primary->dr|MirrorSourceConnector-0|...`):
its series exist while a task reads the primary."""
MIRROR_RULES = (
    Rule(
        pattern="kafka.connect.mirror<type=MirrorSourceConnector, target=(.+), topic=(.+), partition=([0-9]+)>"
        "<>replication-latency-ms-max",
        name=REPLICATION_LATENCY_METRIC,
        type="GAUGE",
        help="the most milliseconds a record took from its timestamp on the primary to its acknowledgement here",
        labels=(("target", "$1"), ("topic", "$2"), ("partition", "$3")),
    ),
    Rule(
        pattern="kafka.connect.mirror<type=MirrorSourceConnector, target=(.+), topic=(.+), partition=([0-9]+)>"
        "<>record-age-ms-max",
        name=RECORD_AGE_METRIC,
        type="GAUGE",
        help="the oldest record's age, in milliseconds, when the mirror read it from the primary",
        labels=(("target", "$1"), ("topic", "$2"), ("partition", "$3")),
    ),
    Rule(
        pattern="kafka.consumer<type=consumer-fetch-manager-metrics, client-id=(.+)><>records-lag-max",
        name=SOURCE_LAG_METRIC,
        type="GAUGE",
        help="the most records any partition the mirror reads is behind the primary's end (its source consumer)",
        labels=(("client", "$1"),),
    ),
)
"""What the mirror's JMX exporter agent serves: its lag in time (latency, record age) and in records.
Ref: https://github.com/apache/kafka/blob/3.9.1/connect/mirror/src/main/java/org/apache/kafka/connect/mirror/MirrorSourceMetrics.java"""


def mirror_metrics_config() -> str:
    """The JMX exporter agent's config in the mirror's JVM: MIRROR_RULES and the JVM's."""
    return exporter_config(MIRROR_RULES + JVM_RULES)
