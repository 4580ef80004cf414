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
"""Where the prestodb/presto image keeps the agent; Kafka's pods copy it from there (init container)."""
CONFIG_FILE = "jmx-exporter.yaml"
"""The agent's config, a key of Presto's and Kafka's ConfigMaps."""


@dataclass(frozen=True)
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
    Rule("java.lang<type=Memory><HeapMemoryUsage>used", "jvm_memory_heap_used_bytes", "GAUGE", "JVM heap in use"),
    Rule("java.lang<type=Memory><HeapMemoryUsage>max", "jvm_memory_heap_max_bytes", "GAUGE", "JVM heap limit (-Xmx)"),
)

_QUERY_MANAGER = "com.facebook.presto.execution<name=QueryManager><>"
PRESTO_RULES = (
    Rule(f"{_QUERY_MANAGER}RunningQueries", "presto_queries_running", "GAUGE", "queries running now"),
    Rule(f"{_QUERY_MANAGER}QueuedQueries", "presto_queries_queued", "GAUGE", "queries waiting in a queue"),
    Rule(
        f"{_QUERY_MANAGER}CompletedQueries.TotalCount",
        "presto_queries_completed_total",
        "COUNTER",
        "queries that ended, successfully or not",
    ),
    Rule(f"{_QUERY_MANAGER}FailedQueries.TotalCount", "presto_queries_failed_total", "COUNTER", "queries that failed"),
    Rule(
        f"{_QUERY_MANAGER}UserErrorFailures.TotalCount",
        "presto_queries_user_error_total",
        "COUNTER",
        "queries that failed through the user's fault (syntax, missing table, permission)",
    ),
    Rule(
        f"{_QUERY_MANAGER}ExecutionTime.FiveMinutes.P(50|95|99)",
        "presto_query_execution_time_milliseconds",
        "GAUGE",
        "query execution time over the last five minutes, by quantile",
        (("quantile", "0.$1"),),
    ),
    Rule(
        f"{_QUERY_MANAGER}QueuedTime.FiveMinutes.P(50|95|99)",
        "presto_query_queued_time_milliseconds",
        "GAUGE",
        "time queries waited in a queue over the last five minutes, by quantile",
        (("quantile", "0.$1"),),
    ),
    Rule(
        "com.facebook.presto.metadata<name=DiscoveryNodeManager><>ActiveNodeCount",
        "presto_cluster_active_nodes",
        "GAUGE",
        "active nodes, coordinator included",
    ),
    Rule(
        "com.facebook.presto.metadata<name=DiscoveryNodeManager><>ActiveCoordinatorCount",
        "presto_cluster_active_coordinators",
        "GAUGE",
        "active coordinators",
    ),
    Rule(
        "com.facebook.presto.memory<name=ClusterMemoryManager><>ClusterMemoryBytes",
        "presto_cluster_memory_bytes",
        "GAUGE",
        "query memory of the whole cluster",
    ),
    Rule(
        "com.facebook.presto.memory<name=ClusterMemoryManager><>ClusterUserMemoryReservation",
        "presto_cluster_user_memory_reserved_bytes",
        "GAUGE",
        "user memory reserved by running queries",
    ),
    Rule(
        "com.facebook.presto.execution.executor<name=TaskExecutor><>(Running|Waiting)Splits",
        "presto_task_executor_splits",
        "GAUGE",
        "splits on this node, by state",
        (("state", "$1"),),
    ),
)

KAFKA_RULES = (
    Rule(
        "kafka.server<type=ReplicaManager, name=(UnderReplicatedPartitions|UnderMinIsrPartitionCount|"
        "PartitionCount|LeaderCount|OfflineReplicaCount)><>Value",
        "kafka_server_replicamanager_$1",
        "GAUGE",
        "replica manager state of this broker",
    ),
    Rule(
        "kafka.controller<type=KafkaController, name=(ActiveControllerCount|OfflinePartitionsCount|"
        "GlobalPartitionCount)><>Value",
        "kafka_controller_kafkacontroller_$1",
        "GAUGE",
        "controller state seen by this node",
    ),
    Rule(
        "kafka.server<type=BrokerTopicMetrics, name=(MessagesIn|BytesIn|BytesOut)PerSec, topic=(.+)><>Count",
        "kafka_server_brokertopicmetrics_$1_total",
        "COUNTER",
        "messages or bytes through this broker, by topic",
        (("topic", "$2"),),
    ),
    Rule(
        "kafka.log<type=Log, name=LogEndOffset, topic=(.+), partition=(.+)><>Value",
        "kafka_log_log_end_offset",
        "GAUGE",
        "offset of the next message of each partition led or followed here",
        (("topic", "$1"), ("partition", "$2")),
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


def kafka_exporter_config() -> str:
    """Kafka's exporter config: replication, controller, throughput, offsets and the JVM."""
    return exporter_config(KAFKA_RULES + JVM_RULES)


def agent_option(jar: str, port: int, config_path: str) -> str:
    """The JVM option that loads the agent."""
    return f"-javaagent:{jar}={port}:{config_path}"
