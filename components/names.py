"""Stable object names, shared by the components and by verify so the two never disagree."""

# Platform baseline.
DEFAULT_DENY_POLICY = "default-deny"
ALLOW_DNS_POLICY = "allow-dns-egress"
QUOTA = "compute-quota"
LIMIT_RANGE = "container-limits"

# Workloads (Deployments and StatefulSets), named for what they run.
PRESTO_COORDINATOR = "presto-coordinator"
PRESTO_CLIENTS = "presto-clients"
"""The HTTPS-only Service of type network.serviceType, declared when that is not ClusterIP."""
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


# Metrics: the JMX exporter agent in Presto's and Kafka's JVMs.
JMX_METRICS_PORT = 9404
PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093
ALERTMANAGER_CLUSTER_PORT = 9094
"""Alertmanager's peers gossip on it, TCP and UDP."""
ALERTMANAGER_PEERS = "alertmanager-peers"
"""The headless Service that gives each Alertmanager replica a stable DNS name."""
KUBE_STATE_METRICS_PORT = 8080
GRAFANA_PORT = 3000

# Kafka.
KAFKA_HEADLESS = "kafka-headless"
KAFKA_CONFIG = "kafka-config"
KAFKA_TOPIC_JOB = "kafka-topic-bootstrap"
KAFKA_MIRROR = "kafka-mirror"
"""MirrorMaker 2 on a DR stack: its Deployment, ServiceAccount, ConfigMap and app.kubernetes.io/name."""
KAFKA_CLIENT_PORT = 9092
KAFKA_CONTROLLER_PORT = 9093
KAFKA_INTERNAL_PORT = 9094
KAFKA_PRESTO_PORT = 9095

# ClickHouse.
CLICKHOUSE_HEADLESS = "clickhouse-headless"
CLICKHOUSE_CONFIG = "clickhouse-config"
CLICKHOUSE_USERS_CONFIG = "clickhouse-users-config"
CLICKHOUSE_SCHEMA_JOB = "clickhouse-schema-bootstrap"
CLICKHOUSE_HTTP_PORT = 8123
CLICKHOUSE_NATIVE_PORT = 9000
CLICKHOUSE_METRICS_PORT = 9363
CLICKHOUSE_INTERSERVER_PORT = 9009
"""Replicas of a shard fetch each other's parts over it (HTTP, with the interserver credentials)."""
CLICKHOUSE_CLUSTER = "events"
"""The remote_servers cluster the Distributed table reads and writes through."""
CLICKHOUSE_CLUSTER_FILE = "qestack-cluster.xml"
"""The servers' config.d file defining the cluster and its Keeper: a server without it stands alone."""

# ClickHouse backups: the backup tool beside each server (its API and /metrics on one port) and the scheduled Job.
CLICKHOUSE_BACKUP = "clickhouse-backup"
"""The sidecar container, the CronJob and its Secret of the tool's config."""
CLICKHOUSE_BACKUP_CONFIG = "clickhouse-backup-config"
CLICKHOUSE_BACKUP_PORT = 7171
"""The tool's REST API and /metrics, behind its login."""
CLICKHOUSE_RESTORE_DRILL = "clickhouse-restore-drill"
"""The scratch servers `verify restore-drill` restores onto (pods verify creates and deletes)."""
CLICKHOUSE_RESTORE_DRILL_COMPONENT = "scratch"
"""Their app.kubernetes.io/component: with the name, what their NetworkPolicy selects (and no Service does)."""

# ClickHouse Keeper: the replicas' coordination (only when there is more than one ClickHouse server).
CLICKHOUSE_KEEPER = "clickhouse-keeper"
CLICKHOUSE_KEEPER_HEADLESS = "clickhouse-keeper-headless"
CLICKHOUSE_KEEPER_CONFIG = "clickhouse-keeper-config"
KEEPER_CLIENT_PORT = 9181
KEEPER_RAFT_PORT = 9234
KEEPER_METRICS_PORT = 9363
KEEPER_HTTP_PORT = 9182
"""Keeper's HTTP control port: its /ready answers once the node is in a quorum with a leader."""

# Presto.
PRESTO_HTTPS_PORT = 8443
"""Every Presto node's only port: clients with a password, the nodes with the internal certificate."""
PRESTO_TLS_SECRET = "presto-tls"
PRESTO_PASSWORD_FILE_SECRET = "presto-password-file"
PRESTO_COORDINATOR_CONFIG = "presto-coordinator-config"
PRESTO_WORKER_CONFIG = "presto-worker-config"
VERIFY = "verify"
"""ServiceAccount, Role and RoleBinding that `python -m verify --service-account verify` runs as."""
