"""Stable object names, shared by the components and by verify so the two never disagree."""

# Platform baseline.
DEFAULT_DENY_POLICY = "default-deny"
ALLOW_DNS_POLICY = "allow-dns-egress"
QUOTA = "compute-quota"
LIMIT_RANGE = "container-limits"

# Workloads (Deployments and StatefulSets), named for what they run.
PRESTO_COORDINATOR = "presto-coordinator"
PRESTO_WORKER = "presto-worker"
CLICKHOUSE = "clickhouse"
KAFKA = "kafka"
PROMETHEUS = "prometheus"
ALERTMANAGER = "alertmanager"
GRAFANA = "grafana"
KUBE_STATE_METRICS = "kube-state-metrics"


def service_host(service: str, namespace: str) -> str:
    """Return the in-cluster DNS name of a Service."""
    return f"{service}.{namespace}.svc.cluster.local"


# Kafka.
KAFKA_HEADLESS = "kafka-headless"
KAFKA_CONFIG = "kafka-config"
KAFKA_TOPIC_JOB = "kafka-topic-bootstrap"
KAFKA_CLIENT_PORT = 9092
KAFKA_CONTROLLER_PORT = 9093
