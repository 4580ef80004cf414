"""Prometheus JMX exporter configs for Presto and Kafka, as pure functions.

An allow-list of MBeans and one rule per metric: every exported name is chosen here, and nothing
else is exported.

Both JVMs load the exporter as a Java agent (version AGENT_VERSION, the one the prestodb/presto image
ships at AGENT_JAR); the agent serves /metrics on names.JMX_METRICS_PORT.
"""

from dataclasses import dataclass

import yaml

AGENT_VERSION = "0.20.0"
AGENT_JAR = f"/usr/lib/presto/utils/jmx_prometheus_javaagent-{AGENT_VERSION}.jar"
"""Where the prestodb/presto image keeps the agent; Kafka's pods copy it from there (init container), out of
monitoring.jmxExporterImage, a prestodb/presto image pinned apart from presto.image."""
CONFIG_FILE = "jmx-exporter.yaml"
"""The agent's config, a key of Presto's and Kafka's ConfigMaps."""


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One exported metric: the MBean attribute pattern it comes from and its Prometheus name."""

    pattern: str
    name: str
    type: str
    help: str
    labels: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict:
        """The rule as the exporter's YAML expects it."""
        rule: dict = {"pattern": self.pattern, "name": self.name, "type": self.type, "help": self.help}
        if self.labels:
            rule["labels"] = dict(self.labels)
        return rule


JVM_RULES = (
    Rule(
        pattern="java.lang<type=Memory><HeapMemoryUsage>used",
        name="jvm_memory_heap_used_bytes",
        type="GAUGE",
        help="JVM heap in use",
    ),
    Rule(
        pattern="java.lang<type=Memory><HeapMemoryUsage>max",
        name="jvm_memory_heap_max_bytes",
        type="GAUGE",
        help="JVM heap limit (-Xmx)",
    ),
)

_QUERY_MANAGER = "com.facebook.presto.execution<name=QueryManager><>"
PRESTO_RULES = (
    Rule(
        pattern=f"{_QUERY_MANAGER}RunningQueries",
        name="presto_queries_running",
        type="GAUGE",
        help="queries running now",
    ),
    Rule(
        pattern=f"{_QUERY_MANAGER}QueuedQueries",
        name="presto_queries_queued",
        type="GAUGE",
        help="queries waiting in a queue",
    ),
    Rule(
        pattern=f"{_QUERY_MANAGER}CompletedQueries.TotalCount",
        name="presto_queries_completed_total",
        type="COUNTER",
        help="queries that ended, successfully or not",
    ),
    Rule(
        pattern=f"{_QUERY_MANAGER}FailedQueries.TotalCount",
        name="presto_queries_failed_total",
        type="COUNTER",
        help="queries that failed",
    ),
    Rule(
        pattern=f"{_QUERY_MANAGER}UserErrorFailures.TotalCount",
        name="presto_queries_user_error_total",
        type="COUNTER",
        help="queries that failed through the user's fault (syntax, missing table, permission)",
    ),
    Rule(
        pattern=f"{_QUERY_MANAGER}ExecutionTime.FiveMinutes.P(50|95|99)",
        name="presto_query_execution_time_milliseconds",
        type="GAUGE",
        help="query execution time over the last five minutes, by quantile",
        labels=(("quantile", "0.$1"),),
    ),
    Rule(
        pattern=f"{_QUERY_MANAGER}QueuedTime.FiveMinutes.P(50|95|99)",
        name="presto_query_queued_time_milliseconds",
        type="GAUGE",
        help="time queries waited in a queue over the last five minutes, by quantile",
        labels=(("quantile", "0.$1"),),
    ),
    Rule(
        pattern="com.facebook.presto.metadata<name=DiscoveryNodeManager><>ActiveNodeCount",
        name="presto_cluster_active_nodes",
        type="GAUGE",
        help="active nodes, coordinator included",
    ),
    Rule(
        pattern="com.facebook.presto.metadata<name=DiscoveryNodeManager><>ActiveCoordinatorCount",
        name="presto_cluster_active_coordinators",
        type="GAUGE",
        help="active coordinators",
    ),
    Rule(
        pattern="com.facebook.presto.memory<name=ClusterMemoryManager><>ClusterMemoryBytes",
        name="presto_cluster_memory_bytes",
        type="GAUGE",
        help="query memory of the whole cluster",
    ),
    Rule(
        pattern="com.facebook.presto.memory<name=ClusterMemoryManager><>ClusterUserMemoryReservation",
        name="presto_cluster_user_memory_reserved_bytes",
        type="GAUGE",
        help="user memory reserved by running queries",
    ),
    Rule(
        pattern="com.facebook.presto.execution.executor<name=TaskExecutor><>(Running|Waiting)Splits",
        name="presto_task_executor_splits",
        type="GAUGE",
        help="splits on this node, by state",
        labels=(("state", "$1"),),
    ),
)

KAFKA_RULES = (
    Rule(
        pattern="kafka.server<type=ReplicaManager, name=(UnderReplicatedPartitions|UnderMinIsrPartitionCount|"
        "PartitionCount|LeaderCount|OfflineReplicaCount)><>Value",
        name="kafka_server_replicamanager_$1",
        type="GAUGE",
        help="replica manager state of this broker",
    ),
    Rule(
        pattern="kafka.controller<type=KafkaController, name=(ActiveControllerCount|OfflinePartitionsCount|"
        "GlobalPartitionCount)><>Value",
        name="kafka_controller_kafkacontroller_$1",
        type="GAUGE",
        help="controller state seen by this node",
    ),
    Rule(
        pattern="kafka.server<type=BrokerTopicMetrics, name=(MessagesIn|BytesIn|BytesOut)PerSec, topic=(.+)><>Count",
        name="kafka_server_brokertopicmetrics_$1_total",
        type="COUNTER",
        help="messages or bytes through this broker, by topic",
        labels=(("topic", "$2"),),
    ),
    Rule(
        pattern="kafka.log<type=Log, name=LogEndOffset, topic=(.+), partition=(.+)><>Value",
        name="kafka_log_log_end_offset",
        type="GAUGE",
        help="offset of the next message of each partition led or followed here",
        labels=(("topic", "$1"), ("partition", "$2")),
    ),
)


def exporter_config(rules: tuple[Rule, ...]) -> str:
    """The agent's YAML: lowercase names, only the MBeans the rules read, nothing unmatched."""
    domains = sorted({rule.pattern.split("<", 1)[0] for rule in rules})
    config = {
        "lowercaseOutputName": True,
        "lowercaseOutputLabelNames": True,
        "includeObjectNames": [f"{domain}:*" for domain in domains],
        "rules": [rule.as_dict() for rule in rules],
    }
    return yaml.safe_dump(config, sort_keys=False)


def presto_exporter_config() -> str:
    """Presto's exporter config: queries, cluster, memory, splits and the JVM."""
    return exporter_config(PRESTO_RULES + JVM_RULES)


def agent_option(jar: str, port: int, config_path: str) -> str:
    """The JVM option that loads the agent."""
    return f"-javaagent:{jar}={port}:{config_path}"
