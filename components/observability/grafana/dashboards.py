"""Grafana dashboards, built with grafana-foundation-sdk's typed builders as pure functions of the settings.

Every panel queries the provisioned Prometheus datasource (uid DATASOURCE_UID) for series our scrape
config collects or our recording rules produce; the tests check both. Nothing here knows how the
dashboards reach Grafana (provisioning files today, a GrafanaDashboard object under an operator later).
"""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.builders.common import GraphThresholdsStyleConfig, VizLegendOptions
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import GraphThresholdsStyleMode, LegendDisplayMode, LegendPlacement
from grafana_foundation_sdk.models.dashboard import (
    Dashboard,
    DataSourceRef,
    Threshold,
    ThresholdsMode,
)

from components import names
from components.observability.prometheus.alert_rules import (
    ACTIVE_WORKERS,
    REPLICATION_DELAY_SECONDS,
    REPLICATION_QUEUE_ENTRIES,
)
from components.settings.model import Settings

DATASOURCE_UID = "prometheus"
"""uid of the provisioned Prometheus datasource: every panel names it."""
DATASOURCE = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
FOLDER = "Query engine stack"
TAG = "query-engine-stack"


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a panel and its legend."""

    expr: str
    legend: str = ""


def _target(query: Query, ref: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().ref_id(ref).expr(query.expr).legend_format(query.legend).datasource(DATASOURCE)


Steps = tuple[tuple[float, str], ...]
"""Threshold steps: (value, colour) from that value up."""


def _thresholds(steps: Steps, base: str) -> board.ThresholdsConfig:
    """The base colour below the first step, then each step's colour from its value up."""
    levels = [Threshold(value=None, color=base), *(Threshold(value=v, color=c) for v, c in steps)]
    return board.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(levels)


def graph(
    title: str, description: str, unit: str, *queries: Query, width: int = 12, line: Steps = ()
) -> timeseries.Panel:
    """A time series panel: one line per series of each query, and dashed threshold lines if given."""
    legend = VizLegendOptions().show_legend(True).display_mode(LegendDisplayMode.LIST).placement(LegendPlacement.BOTTOM)
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(8)
        .fill_opacity(10)
        .legend(legend)
        .thresholds(_thresholds(line, "transparent"))
        .targets([_target(q, chr(ord("A") + i)) for i, q in enumerate(queries)])
    )
    if line:
        panel.thresholds_style(GraphThresholdsStyleConfig().mode(GraphThresholdsStyleMode.DASHED))
    return panel


def single(
    title: str,
    description: str,
    unit: str,
    query: Query,
    steps: Steps = (),
    base: str = "green",
    no_value: str | None = None,
) -> stat.Panel:
    """A stat panel: the latest value of one query, coloured by thresholds."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(4)
        .height(4)
        .thresholds(_thresholds(steps, base))
        .targets([_target(query, "A")])
    )
    if no_value is not None:
        panel.no_value(no_value)
    return panel


def jvm_heap(job: str) -> timeseries.Panel:
    """Heap in use by each pod of a JVM scrape job, against its limit."""
    return graph(
        "JVM heap",
        "Heap in use by pod, against the JVM's limit (-Xmx): near it, garbage collection takes over.",
        "bytes",
        Query(f'jvm_memory_heap_used_bytes{{job="{job}"}}', "{{pod}} used"),
        Query(f'jvm_memory_heap_max_bytes{{job="{job}"}}', "{{pod}} max"),
    )


def _dashboard(uid: str, title: str, description: str) -> board.Dashboard:
    """A dashboard of the stack: tagged, refreshing, over the last three hours."""
    return (
        board.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .editable()
        .refresh("30s")
        .time("now-3h", "now")
        .timezone("browser")
    )


def overview(settings: Settings) -> board.Dashboard:
    """The platform at a glance: the query SLO, capacity, the pipeline, alerts and targets."""
    budget = round(1 - settings.monitoring.query_success_objective, 6)
    objective = settings.monitoring.query_success_objective
    burn = ((6.0, "orange"), (14.4, "red"))
    replicas = settings.monitoring.alertmanager.replicas
    return (
        _dashboard("qestack-overview", "Overview and SLOs", "Is the platform healthy, and is the query SLO met?")
        .with_row(board.Row("Service level"))
        .with_panel(
            single(
                "Query success (5m)",
                f"Share of Presto queries that did not fail for a non-user reason. Objective: {objective:.2%}.",
                "percentunit",
                Query("presto:query_success_ratio:rate5m"),
                ((objective, "green"),),
                base="red",
            )
        )
        .with_panel(
            single(
                "Error budget burn (1h)",
                "How fast the 30-day error budget is spent: 1 keeps to it exactly; 14.4 pages (fast burn).",
                "none",
                Query(f"presto:query_error_ratio:rate1h / {budget}"),
                burn,
            )
        )
        .with_panel(
            single(
                "Error budget burn (6h)",
                "The slow-burn window: 6 or more for 15 minutes raises a ticket.",
                "none",
                Query(f"presto:query_error_ratio:rate6h / {budget}"),
                burn,
            )
        )
        .with_panel(
            single(
                "Active workers",
                f"Presto workers in the cluster; the minimum is {settings.presto.workers.min_replicas}.",
                "none",
                Query(ACTIVE_WORKERS),
                ((float(settings.presto.workers.min_replicas), "green"),),
                base="red",
            )
        )
        .with_panel(
            single(
                "Ingest lag",
                "How long ClickHouse needs to catch up with the events topic at its current read rate.",
                "s",
                Query("pipeline:ingest_lag_seconds:estimate"),
                ((float(settings.monitoring.pipeline_lag_seconds), "red"),),
            )
        )
        .with_panel(
            single(
                "Alerts firing",
                "Alerts firing now, all severities.",
                "none",
                Query('count(ALERTS{alertstate="firing"})'),
                ((1.0, "red"),),
                no_value="0",
            )
        )
        .with_panel(
            graph(
                "Query error ratio",
                "Failed queries (user errors excluded) over completed ones, by window.",
                "percentunit",
                *(Query(f"presto:query_error_ratio:rate{w}", w) for w in ("5m", "1h", "6h")),
                line=((budget, "red"),),
            )
        )
        .with_panel(
            graph(
                "Targets up",
                "Scrape targets answering, by job: a drop is a pod down or unreachable.",
                "none",
                Query("sum by (job) (up)", "{{job}}"),
            )
        )
        .with_row(board.Row("Alerting"))
        .with_panel(
            graph(
                "Alertmanager cluster",
                f"Peers each Alertmanager gossips with, of {replicas}; peers it counts as failed (a restarted pod "
                "stays failed for hours) and its gossip health score (0 is healthy). Empty with one replica.",
                "none",
                Query('min by (pod) (alertmanager_cluster_members{job="alertmanager"})', "{{pod}} members"),
                Query('max by (pod) (alertmanager_cluster_failed_peers{job="alertmanager"})', "{{pod}} failed"),
                Query('max by (pod) (alertmanager_cluster_health_score{job="alertmanager"})', "{{pod}} health score"),
                width=24,
                line=((float(replicas), "green"),),
            )
        )
    )


def presto_board(settings: Settings) -> board.Dashboard:
    """Presto: queries, latency, cluster size, memory, splits and the JVMs."""
    return (
        _dashboard("qestack-presto", "Presto", "Queries, latency, nodes and memory of the Presto cluster.")
        .with_row(board.Row("Queries"))
        .with_panel(
            graph(
                "Queries running and queued",
                "Queued queries wait for memory or a slot in their resource group.",
                "none",
                Query("sum(presto_queries_running)", "running"),
                Query("sum(presto_queries_queued)", "queued"),
                width=8,
            )
        )
        .with_panel(
            graph(
                "Query rate",
                "Queries ending per second: all of them, failed ones, and those failed by the user's fault.",
                "ops",
                Query("sum(rate(presto_queries_completed_total[5m]))", "completed"),
                Query("sum(rate(presto_queries_failed_total[5m]))", "failed"),
                Query("sum(rate(presto_queries_user_error_total[5m]))", "user errors"),
                width=8,
            )
        )
        .with_panel(
            graph(
                "Execution time",
                "Quantiles over the last five minutes, as the coordinator computes them.",
                "ms",
                Query("max by (quantile) (presto_query_execution_time_milliseconds)", "p{{quantile}}"),
                width=8,
            )
        )
        .with_row(board.Row("Cluster"))
        .with_panel(
            graph(
                "Active nodes",
                "Nodes the coordinator's discovery sees, and the workers' autoscaler replicas.",
                "none",
                Query(ACTIVE_WORKERS, "active workers"),
                Query(
                    f'max(kube_horizontalpodautoscaler_status_desired_replicas{{namespace="{settings.namespace}",'
                    f'horizontalpodautoscaler="{names.PRESTO_WORKER}"}})',
                    "desired by the autoscaler",
                ),
                width=8,
            )
        )
        .with_panel(
            graph(
                "Cluster memory",
                "Query memory of the whole cluster and what running queries have reserved of it.",
                "bytes",
                Query("max(presto_cluster_memory_bytes)", "total"),
                Query("max(presto_cluster_user_memory_reserved_bytes)", "reserved by queries"),
                width=8,
            )
        )
        .with_panel(
            graph(
                "Queued time",
                "How long queries waited before running, quantiles over five minutes.",
                "ms",
                Query("max by (quantile) (presto_query_queued_time_milliseconds)", "p{{quantile}}"),
                width=8,
            )
        )
        .with_row(board.Row("Nodes"))
        .with_panel(
            graph(
                "Splits by node",
                "Running and waiting splits on each node: waiting splits mean busy workers.",
                "none",
                Query("sum by (pod, state) (presto_task_executor_splits)", "{{pod}} {{state}}"),
            )
        )
        .with_panel(jvm_heap("presto"))
    )


def clickhouse_board(settings: Settings) -> board.Dashboard:
    """ClickHouse: queries, inserts, parts and merges, memory, connections, replication and Keeper."""
    dashboard = (
        _dashboard(
            "qestack-clickhouse",
            "ClickHouse",
            "Queries, inserts, parts and merges, replication and Keeper of ClickHouse.",
        )
        .with_row(board.Row("Queries"))
        .with_panel(
            single("Up", "1 while Prometheus can scrape ClickHouse.", "none", Query('min(up{job="clickhouse"})'))
        )
        .with_panel(
            single(
                "Largest partition's parts",
                "Parts in the busiest partition: inserts are delayed, then rejected, as this grows.",
                "none",
                Query("max(ClickHouseAsyncMetrics_MaxPartCountForPartition)"),
                ((150.0, "orange"), (300.0, "red")),
            )
        )
        .with_panel(
            single(
                "Queries running",
                "Queries executing now, background ones included.",
                "none",
                Query("sum(ClickHouseMetrics_Query)"),
            )
        )
        .with_panel(
            single(
                "Memory tracked",
                "Memory ClickHouse accounts to queries, merges and caches.",
                "bytes",
                Query("sum(ClickHouseMetrics_MemoryTracking)"),
            )
        )
        .with_panel(
            single(
                "Uptime",
                "Since the server last started.",
                "s",
                Query("min(ClickHouseAsyncMetrics_Uptime)"),
            )
        )
        .with_panel(
            single(
                "Connections",
                "Open TCP (native) and HTTP connections.",
                "none",
                Query("sum(ClickHouseMetrics_TCPConnection) + sum(ClickHouseMetrics_HTTPConnection)"),
            )
        )
        .with_panel(
            graph(
                "Query rate",
                "Queries per second by kind, and failed ones.",
                "ops",
                Query("sum(rate(ClickHouseProfileEvents_SelectQuery[5m]))", "select"),
                Query("sum(rate(ClickHouseProfileEvents_InsertQuery[5m]))", "insert"),
                Query("sum(rate(ClickHouseProfileEvents_FailedQuery[5m]))", "failed"),
            )
        )
        .with_panel(
            graph(
                "Inserted rows",
                "Rows written per second (the Kafka engine's materialized view included).",
                "short",
                Query("sum(rate(ClickHouseProfileEvents_InsertedRows[5m]))", "rows/s"),
            )
        )
        .with_row(board.Row("Parts and merges"))
        .with_panel(
            graph(
                "Delayed and rejected inserts",
                "Inserts slowed down or refused because a partition has too many parts.",
                "short",
                Query("sum(rate(ClickHouseProfileEvents_DelayedInserts[5m]))", "delayed/s"),
                Query("sum(rate(ClickHouseProfileEvents_RejectedInserts[5m]))", "rejected/s"),
            )
        )
        .with_panel(
            graph(
                "Merges",
                "Merges running now and rows merged per second.",
                "short",
                Query("sum(ClickHouseMetrics_Merge)", "running"),
                Query("sum(rate(ClickHouseProfileEvents_MergedRows[5m]))", "rows merged/s"),
            )
        )
    )
    return _with_rows(dashboard, {"Replication": _replication_panels(), "Keeper": _keeper_panels()})


def _replication_panels() -> list[timeseries.Panel]:
    """The replicas of each shard, by pod: delay, queue, read-only tables and Keeper sessions."""
    server = 'job="clickhouse"'
    return [
        graph(
            "Replication delay by pod",
            "How far each replica's newest part is behind its shard's; past the red line, Distributed reads "
            "skip the replica. Empty on a stack of one server.",
            "s",
            Query(f"max by (pod) (ClickHouseAsyncMetrics_ReplicasMaxAbsoluteDelay{{{server}}})", "{{pod}}"),
            width=8,
            line=((float(REPLICATION_DELAY_SECONDS), "red"),),
        ),
        graph(
            "Replication queue by pod",
            "Fetches and merges each replica still has to run; the alert fires above the line while it grows.",
            "short",
            Query(f"max by (pod) (ClickHouseAsyncMetrics_ReplicasMaxQueueSize{{{server}}})", "{{pod}}"),
            width=8,
            line=((float(REPLICATION_QUEUE_ENTRIES), "orange"),),
        ),
        graph(
            "Read-only replicas and Keeper sessions by pod",
            "Replicated tables refusing writes on each server, and its sessions to Keeper (1 when replicated).",
            "none",
            Query(f"max by (pod) (ClickHouseMetrics_ReadonlyReplica{{{server}}})", "{{pod}} read-only tables"),
            Query(f"max by (pod) (ClickHouseMetrics_ZooKeeperSession{{{server}}})", "{{pod}} Keeper sessions"),
            width=8,
        ),
    ]


def _keeper_panels() -> list[timeseries.Panel | stat.Panel]:
    """The ClickHouse Keeper ensemble: nodes up, its leader, load and size."""
    keeper = f'job="{names.CLICKHOUSE_KEEPER}"'
    none = "no Keeper answers"
    return [
        single(
            "Keeper nodes up",
            "Keeper nodes Prometheus can scrape; a majority of the ensemble must be up for any write.",
            "none",
            Query(f"sum(up{{{keeper}}})"),
            no_value=none,
        ),
        single(
            "Keeper leaders",
            "Exactly 1 while the ensemble has a leader.",
            "none",
            Query(f"sum(ClickHouseAsyncMetrics_KeeperIsLeader{{{keeper}}})"),
            ((1.0, "green"), (2.0, "red")),
            base="red",
            no_value=none,
        ),
        single(
            "Keeper znodes",
            "Nodes in Keeper's tree (the replication log and the replicas' metadata), on the leader.",
            "short",
            Query(f"max(ClickHouseAsyncMetrics_KeeperZnodeCount{{{keeper}}})"),
            no_value=none,
        ),
        graph(
            "Keeper outstanding requests by pod",
            "Requests each Keeper node has taken and not answered yet: a rising line is a slow disk or quorum.",
            "short",
            Query(f"max by (pod) (ClickHouseMetrics_KeeperOutstandingRequests{{{keeper}}})", "{{pod}}"),
        ),
        graph(
            "Keeper znodes and leader by pod",
            "Each node's copy of the tree (they should agree), and which node leads.",
            "short",
            Query(f"max by (pod) (ClickHouseAsyncMetrics_KeeperZnodeCount{{{keeper}}})", "{{pod}} znodes"),
            Query(f"max by (pod) (ClickHouseAsyncMetrics_KeeperIsLeader{{{keeper}}})", "{{pod}} leader"),
        ),
    ]


def kafka_board(settings: Settings) -> board.Dashboard:
    """Kafka: controller and partition health, throughput by topic and broker, the JVMs."""
    return (
        _dashboard("qestack-kafka", "Kafka", "Controller, partitions and throughput of the Kafka cluster.")
        .with_row(board.Row("Health"))
        .with_panel(
            single(
                "Brokers up",
                f"Brokers Prometheus can scrape, of {settings.kafka.brokers}.",
                "none",
                Query('sum(up{job="kafka"})'),
                ((float(settings.kafka.brokers), "green"),),
                base="red",
            )
        )
        .with_panel(
            single(
                "Active controllers",
                "Exactly 1 when the KRaft quorum has a leader.",
                "none",
                Query("sum(kafka_controller_kafkacontroller_activecontrollercount)"),
                ((1.0, "green"), (2.0, "red")),
                base="red",
            )
        )
        .with_panel(
            single(
                "Offline partitions",
                "Partitions without a leader: their producers and consumers fail.",
                "none",
                Query("sum(kafka_controller_kafkacontroller_offlinepartitionscount)"),
                ((1.0, "red"),),
            )
        )
        .with_panel(
            single(
                "Under-replicated",
                "Partitions with fewer in-sync replicas than replicas.",
                "none",
                Query("sum(kafka_server_replicamanager_underreplicatedpartitions)"),
                ((1.0, "orange"),),
            )
        )
        .with_panel(
            single(
                "Under min ISR",
                "Partitions that refuse acks=all writes.",
                "none",
                Query("sum(kafka_server_replicamanager_underminisrpartitioncount)"),
                ((1.0, "red"),),
            )
        )
        .with_panel(
            single(
                "Partitions",
                "Partitions in the cluster, as the controller counts them.",
                "none",
                Query("max(kafka_controller_kafkacontroller_globalpartitioncount)"),
            )
        )
        .with_row(board.Row("Throughput"))
        .with_panel(
            graph(
                "Messages in by topic",
                "Messages produced per second.",
                "ops",
                Query("sum by (topic) (rate(kafka_server_brokertopicmetrics_messagesin_total[5m]))", "{{topic}}"),
            )
        )
        .with_panel(
            graph(
                "Bytes in and out by broker",
                "Client traffic per broker (replication excluded).",
                "Bps",
                Query("sum by (pod) (rate(kafka_server_brokertopicmetrics_bytesin_total[5m]))", "{{pod}} in"),
                Query("sum by (pod) (rate(kafka_server_brokertopicmetrics_bytesout_total[5m]))", "{{pod}} out"),
            )
        )
        .with_row(board.Row("Brokers"))
        .with_panel(
            graph(
                "Partitions and leaders by broker",
                "Replicas each broker holds and how many of them it leads: leaders should be balanced.",
                "none",
                Query("sum by (pod) (kafka_server_replicamanager_partitioncount)", "{{pod}} replicas"),
                Query("sum by (pod) (kafka_server_replicamanager_leadercount)", "{{pod}} leaders"),
            )
        )
        .with_panel(jvm_heap("kafka"))
    )


def pipeline_board(settings: Settings) -> board.Dashboard:
    """The Kafka -> ClickHouse pipeline: flow on both sides, lag, consumer health."""
    topic = settings.kafka.topic.name
    return (
        _dashboard(
            "qestack-pipeline", "Pipeline", f"Events from Kafka topic {topic} into ClickHouse: flow, lag and errors."
        )
        .with_row(board.Row("Flow"))
        .with_panel(
            graph(
                "Messages in and read",
                f"Messages produced to {topic} and read by ClickHouse's Kafka engine: the lines should overlap.",
                "ops",
                Query("pipeline:kafka_messages_in:rate5m", "into Kafka"),
                Query("pipeline:clickhouse_messages_read:rate5m", "read by ClickHouse"),
            )
        )
        .with_panel(
            graph(
                "Rows stored and rejected",
                "Rows the Kafka engine parsed, and messages it could not parse (skipped).",
                "short",
                Query("sum(rate(ClickHouseProfileEvents_KafkaRowsRead[5m]))", "rows read/s"),
                Query("sum(rate(ClickHouseProfileEvents_KafkaRowsRejected[5m]))", "rows rejected/s"),
            )
        )
        .with_row(board.Row("Lag"))
        .with_panel(
            graph(
                "Consumer lag (estimate)",
                "Messages Kafka took in over 15 minutes that ClickHouse has not read in that time.",
                "short",
                Query("pipeline:consumer_lag_messages:estimate15m", "messages behind"),
                width=8,
            )
        )
        .with_panel(
            graph(
                "Ingest lag (estimate)",
                "Time ClickHouse needs to catch up at its current read rate; the alert threshold is the red line.",
                "s",
                Query("pipeline:ingest_lag_seconds:estimate", "seconds behind"),
                width=8,
                line=((float(settings.monitoring.pipeline_lag_seconds), "red"),),
            )
        )
        .with_panel(
            graph(
                "Log end offset by partition",
                f"The next offset of each partition of {topic}: the producers' progress.",
                "short",
                Query(f'max by (partition) (kafka_log_log_end_offset{{topic="{topic}"}})', "partition {{partition}}"),
                width=8,
            )
        )
        .with_row(board.Row("Consumer"))
        .with_panel(
            graph(
                "Consumers",
                "Kafka engine consumers, and how many have partitions assigned.",
                "none",
                Query("sum(ClickHouseMetrics_KafkaConsumers)", "consumers"),
                Query("sum(ClickHouseMetrics_KafkaConsumersWithAssignment)", "with partitions"),
            )
        )
        .with_panel(
            graph(
                "Consumer errors and rebalances",
                "librdkafka errors, failed offset commits and partition reassignments.",
                "short",
                Query("sum(rate(ClickHouseProfileEvents_KafkaConsumerErrors[5m]))", "errors/s"),
                Query("sum(rate(ClickHouseProfileEvents_KafkaCommitFailures[5m]))", "commit failures/s"),
                Query("sum(rate(ClickHouseProfileEvents_KafkaRebalanceAssignments[5m]))", "rebalances/s"),
            )
        )
    )


def kubernetes_board(settings: Settings) -> board.Dashboard:
    """Kubernetes resources: CPU and memory against requests and limits, autoscaling, restarts, volumes."""
    ns = f'namespace="{settings.namespace}"'
    return _with_rows(
        _dashboard(
            "qestack-kubernetes",
            "Kubernetes resources",
            "CPU and memory of every pod against its requests and limits; autoscaling, restarts and volumes.",
        ),
        {"CPU and memory": _resource_panels(ns), "Autoscaling and health": _health_panels(ns)},
    )


def _with_rows(dashboard: board.Dashboard, rows: dict[str, Sequence[timeseries.Panel | stat.Panel]]) -> board.Dashboard:
    """The dashboard with each row, titled, followed by its panels."""
    for title, panels in rows.items():
        dashboard.with_row(board.Row(title))
        for panel in panels:
            dashboard.with_panel(panel)
    return dashboard


def _resource_panels(ns: str) -> list[timeseries.Panel]:
    """CPU and memory of the namespace's pods against their requests and limits (ns: its label matcher)."""
    containers = f'{ns},container!=""'
    return [
        graph(
            "CPU by pod",
            "Cores in use by pod (cAdvisor), with the pod's requests and limits (kube-state-metrics).",
            "none",
            Query(f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{containers}}}[5m]))", "{{pod}} used"),
            Query(f'sum by (pod) (kube_pod_container_resource_requests{{{ns},resource="cpu"}})', "{{pod}} request"),
            Query(f'sum by (pod) (kube_pod_container_resource_limits{{{ns},resource="cpu"}})', "{{pod}} limit"),
        ),
        graph(
            "Memory by pod",
            "Working set by pod (what the OOM killer weighs), with requests and limits.",
            "bytes",
            Query(f"sum by (pod) (container_memory_working_set_bytes{{{containers}}})", "{{pod}} used"),
            Query(
                f'sum by (pod) (kube_pod_container_resource_requests{{{ns},resource="memory"}})',
                "{{pod}} request",
            ),
            Query(f'sum by (pod) (kube_pod_container_resource_limits{{{ns},resource="memory"}})', "{{pod}} limit"),
        ),
        graph(
            "CPU throttling",
            "Share of CFS periods in which a container hit its CPU limit.",
            "percentunit",
            Query(
                f"sum by (pod) (rate(container_cpu_cfs_throttled_periods_total{{{containers}}}[5m]))"
                f" / sum by (pod) (rate(container_cpu_cfs_periods_total{{{containers}}}[5m]))",
                "{{pod}}",
            ),
            line=((0.25, "red"),),
        ),
        graph(
            "Memory against limit",
            "Working set over the memory limit, by pod: near 100% the pod is OOM-killed.",
            "percentunit",
            Query(
                f"sum by (pod) (container_memory_working_set_bytes{{{containers}}})"
                f' / sum by (pod) (kube_pod_container_resource_limits{{{ns},resource="memory"}})',
                "{{pod}}",
            ),
            line=((0.9, "red"),),
        ),
    ]


def _health_panels(ns: str) -> list[timeseries.Panel]:
    """Autoscalers, restarts, volumes and ready replicas of the namespace (ns: its label matcher)."""
    return [
        graph(
            "Autoscaler replicas",
            "Current and desired replicas of each HorizontalPodAutoscaler, between its bounds.",
            "none",
            *(
                Query(
                    f"max by (horizontalpodautoscaler) (kube_horizontalpodautoscaler_{m}{{{ns}}})",
                    f"{{{{horizontalpodautoscaler}}}} {label}",
                )
                for m, label in (
                    ("status_current_replicas", "current"),
                    ("status_desired_replicas", "desired"),
                    ("spec_min_replicas", "min"),
                    ("spec_max_replicas", "max"),
                )
            ),
            width=8,
        ),
        graph(
            "Restarts (1h)",
            "Container restarts per pod over the last hour.",
            "none",
            Query("namespace_pod:restarts:increase1h", "{{pod}}"),
            width=8,
        ),
        graph(
            "Volume usage",
            "Used share of each persistent volume; the alert fires above 85%.",
            "percentunit",
            Query(
                f"1 - kubelet_volume_stats_available_bytes{{{ns}}} / kubelet_volume_stats_capacity_bytes{{{ns}}}",
                "{{persistentvolumeclaim}}",
            ),
            width=8,
            line=((0.85, "red"),),
        ),
        graph(
            "Ready replicas",
            "Ready pods of each StatefulSet and available pods of each Deployment.",
            "none",
            Query(f"kube_statefulset_status_replicas_ready{{{ns}}}", "{{statefulset}}"),
            Query(f"kube_deployment_status_replicas_available{{{ns}}}", "{{deployment}}"),
            width=24,
        ),
    ]


BOARDS: tuple[Callable[[Settings], board.Dashboard], ...] = (
    overview,
    presto_board,
    clickhouse_board,
    kafka_board,
    pipeline_board,
    kubernetes_board,
)


def dashboards(settings: Settings) -> list[Dashboard]:
    """Every dashboard of the stack, built, its panels numbered in order (Grafana links to panels by id)."""
    models = [make(settings).build() for make in BOARDS]
    for model in models:
        for number, panel in enumerate(model.panels or [], start=1):
            panel.id_val = number
    return models


def as_json(model: Dashboard) -> str:
    """A dashboard as Grafana's JSON model, the text provisioning reads."""
    return json.dumps(model, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def dashboard_files(settings: Settings) -> dict[str, str]:
    """The provisioning directory's files: one JSON file per dashboard, named after its uid."""
    return {f"{model.uid}.json": as_json(model) for model in dashboards(settings)}
