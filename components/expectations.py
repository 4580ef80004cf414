"""What the stack deploys, as verify should find it: exported with the stack's outputs."""

from components.data.clickhouse.config import DATABASE, EVENTS_TABLE
from components.observability.grafana.dashboards import dashboards
from components.observability.prometheus.alert_rules import ALERT_GROUP, SLI_GROUP
from components.observability.prometheus.config import POD_JOBS
from components.settings.model import Settings

CATALOGS = ("tpch", "clickhouse", "kafka")


def expectations(settings: Settings) -> dict:
    """Counts, names and ids verify checks the running stack against (no credential, no address)."""
    return {
        "prestoWorkers": settings.presto.workers.min_replicas,
        "prestoCatalogs": list(CATALOGS),
        "kafkaBrokers": settings.kafka.brokers,
        "kafkaTopic": settings.kafka.topic.name,
        "kafkaPartitions": settings.kafka.topic.partitions,
        "kafkaReplicationFactor": settings.kafka.replication_factor,
        "eventsTable": f"{DATABASE}.{EVENTS_TABLE}",
        "clickhouseShards": settings.clickhouse.shards,
        "clickhouseReplicas": settings.clickhouse.replicas,
        "scrapeJobs": ["prometheus", *(job.job for job in POD_JOBS)],
        "ruleGroups": [SLI_GROUP, ALERT_GROUP],
        "dashboards": [board.uid for board in dashboards(settings)],
        "loadSlos": list(settings.verify.load_slos),
    }
