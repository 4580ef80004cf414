"""Recording and alerting rules, as pure functions of the settings, with a promtool test per alert.

One source of truth: each Alert carries its expression, its annotations and two test cases (one in
which it fires, one in which it stays silent). rule_file() renders the groups Prometheus loads;
rule_tests() renders the `promtool test rules` file from the same objects. Nothing here knows how the
rules are delivered (a ConfigMap today, a PrometheusRule object under the Operator later).
"""

import re
from dataclasses import dataclass, field, replace

import yaml

from components import names
from components.data.kafka.mirror import REPLICATION_CONSUMER, SOURCE_LAG_METRIC, TARGET_ALIAS
from components.settings.model import Settings

ACTIVE_WORKERS = "max(presto_cluster_active_nodes) - max(presto_cluster_active_coordinators)"
"""Presto workers the coordinator sees as active (the alert and the dashboards read it alike)."""
SLI_GROUP = "qestack-slis"
ALERT_GROUP = "qestack-alerts"
SLO_WINDOWS = ("5m", "30m", "1h", "6h")
REPLICATION_DELAY_SECONDS = 300
"""A replica further behind than this alerts: it is ClickHouse's own max_replica_delay_for_distributed_queries,
past which the Distributed table stops reading from that replica, so its shard has one copy left to read."""
REPLICATION_QUEUE_ENTRIES = 100
"""A replication queue above this and still growing alerts: a healthy replica runs its fetches and merges
within seconds of their being logged, so its queue stays at a few dozen entries even under a steady insert rate."""


@dataclass(frozen=True, kw_only=True)
class Recording:
    """A recording rule."""

    record: str
    expr: str


@dataclass(frozen=True, kw_only=True)
class Case:
    """A promtool test case: input series (selector, values in promtool's notation) and an evaluation time."""

    series: tuple[tuple[str, str], ...]
    eval_time: str
    labels: dict[str, str] = field(default_factory=dict)
    """Labels of the alert when it fires (besides alertname and severity)."""


@dataclass(frozen=True, kw_only=True)
class Alert:
    """An alerting rule with its annotations and its two test cases."""

    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str
    """May use {{ $labels.NAME }}; the tests fill it from the firing case's labels."""
    fires: Case
    silent: Case
    runbook: str = ""
    """Address of the runbook (settings.monitoring.runbook_url); alerts() sets it on every alert."""

    def annotations(self) -> dict[str, str]:
        """summary, description and the runbook section of this alert."""
        return {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": f"{self.runbook}#{self.name.lower()}",
        }

    def as_rule(self) -> dict:
        """The alerting rule as Prometheus loads it."""
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_,
            "labels": {"severity": self.severity},
            "annotations": self.annotations(),
        }


def recordings(settings: Settings) -> tuple[Recording, ...]:
    """The SLIs: query errors and latency, pipeline flow and lag, restarts."""
    topic = settings.kafka.topic.name
    namespace = settings.namespace
    errors = [
        Recording(
            record=f"presto:query_error_ratio:rate{window}",
            expr=(
                f"(sum(rate(presto_queries_failed_total[{window}])) - "
                f"sum(rate(presto_queries_user_error_total[{window}])))"
                f" / sum(rate(presto_queries_completed_total[{window}]))"
            ),
        )
        for window in SLO_WINDOWS
    ]
    return (
        *errors,
        Recording(record="presto:query_success_ratio:rate5m", expr="1 - presto:query_error_ratio:rate5m"),
        Recording(
            record="presto:query_execution_time_p95:milliseconds",
            expr='max(presto_query_execution_time_milliseconds{quantile="0.95"})',
        ),
        Recording(
            record="pipeline:kafka_messages_in:rate5m",
            expr=f'sum(rate(kafka_server_brokertopicmetrics_messagesin_total{{topic="{topic}"}}[5m]))',
        ),
        Recording(
            record="pipeline:clickhouse_messages_read:rate5m",
            expr="sum(rate(ClickHouseProfileEvents_KafkaMessagesRead[5m]))",
        ),
        # Consumer lag, estimated from the two counters: what Kafka took in over 15 minutes and the
        # ClickHouse Kafka engine did not read in that time. Neither side exports committed offsets.
        Recording(
            record="pipeline:consumer_lag_messages:estimate15m",
            expr=f'clamp_min(sum(increase(kafka_server_brokertopicmetrics_messagesin_total{{topic="{topic}"}}[15m]))'
            " - sum(increase(ClickHouseProfileEvents_KafkaMessagesRead[15m])), 0)",
        ),
        # Ingest lag: how long ClickHouse needs to catch up at its current read rate.
        Recording(
            record="pipeline:ingest_lag_seconds:estimate",
            expr=(
                "pipeline:consumer_lag_messages:estimate15m / "
                "clamp_min(pipeline:clickhouse_messages_read:rate5m, 0.001)"
            ),
        ),
        Recording(
            record="namespace_pod:restarts:increase1h",
            expr=f'sum by (pod) (increase(kube_pod_container_status_restarts_total{{namespace="{namespace}"}}[1h]))',
        ),
    )


def _burn_rate_alerts(settings: Settings) -> tuple[Alert, ...]:
    """Multi-window, multi-burn-rate alerts on the query-success SLO (the SRE workbook's pairs)."""
    budget = round(1 - settings.monitoring.query_success_objective, 6)
    fast, slow = round(14.4 * budget, 6), round(6 * budget, 6)

    def ratio(window: str, value: float) -> tuple[str, str]:
        return (f"presto:query_error_ratio:rate{window}", f"{value}x60")

    return (
        Alert(
            name="PrestoQuerySLOFastBurn",
            expr=f"presto:query_error_ratio:rate1h > {fast} and presto:query_error_ratio:rate5m > {fast}",
            for_="2m",
            severity="critical",
            summary="Presto is burning its query error budget fast",
            description=f"At this error rate the 30-day budget ({budget:.2%} of queries) is gone in about two days.",
            fires=Case(series=(ratio("1h", 0.5), ratio("5m", 0.5)), eval_time="10m"),
            silent=Case(series=(ratio("1h", 0.5), ratio("5m", 0)), eval_time="10m"),
        ),
        Alert(
            name="PrestoQuerySLOSlowBurn",
            expr=f"presto:query_error_ratio:rate6h > {slow} and presto:query_error_ratio:rate30m > {slow}",
            for_="15m",
            severity="warning",
            summary="Presto is burning its query error budget",
            description=f"At this error rate the 30-day budget ({budget:.2%} of queries) is gone in about five days.",
            fires=Case(series=(ratio("6h", 0.2), ratio("30m", 0.2)), eval_time="30m"),
            silent=Case(series=(ratio("6h", 0.2), ratio("30m", 0)), eval_time="30m"),
        ),
    )


def alerts(settings: Settings) -> tuple[Alert, ...]:
    """Every alert of the platform: each engine's, the pipeline's, the cluster's and the SLO's, with the runbook."""
    every = (
        *_presto_alerts(settings),
        *_clickhouse_alerts(settings),
        *_replication_alerts(),
        *_keeper_alerts(settings),
        *_kafka_alerts(),
        *_pipeline_alerts(settings),
        *_kubernetes_alerts(settings),
        *_scrape_alerts(),
        *_alertmanager_alerts(settings),
        *_burn_rate_alerts(settings),
        *_backup_alerts(settings),
        *_mirror_alerts(settings),
    )
    return tuple(replace(alert, runbook=settings.monitoring.runbook_url) for alert in every)


def _presto_alerts(settings: Settings) -> tuple[Alert, ...]:
    """The coordinator, the workers, failing and queueing queries."""
    min_workers = settings.presto.workers.min_replicas
    coordinator = 'up{job="presto",component="coordinator"}'
    return (
        Alert(
            name="PrestoCoordinatorDown",
            expr=f"max({coordinator}) == 0 or absent({coordinator})",
            for_="2m",
            severity="critical",
            summary="The Presto coordinator is down",
            description="No query can run: the coordinator has not answered a scrape for 2 minutes.",
            fires=Case(series=((coordinator, "0x10"),), eval_time="5m"),
            silent=Case(series=((coordinator, "1x10"),), eval_time="5m"),
        ),
        Alert(
            name="PrestoWorkersBelowMinimum",
            expr=f"{ACTIVE_WORKERS} < {min_workers}",
            for_="5m",
            severity="warning",
            summary="Presto has fewer active workers than its minimum",
            description=f"Fewer than {min_workers} workers are active: queries run slower or queue.",
            fires=Case(
                series=(("presto_cluster_active_nodes", "1x10"), ("presto_cluster_active_coordinators", "1x10")),
                eval_time="8m",
            ),
            silent=Case(
                series=(
                    ("presto_cluster_active_nodes", f"{min_workers + 1}x10"),
                    ("presto_cluster_active_coordinators", "1x10"),
                ),
                eval_time="8m",
            ),
        ),
        Alert(
            name="PrestoQueryFailureRatioHigh",
            expr="presto:query_error_ratio:rate5m > 0.05",
            for_="10m",
            severity="warning",
            summary="More than 5% of Presto queries fail",
            description=(
                "Queries fail for reasons other than the user's (internal, external, resources) for 10 minutes."
            ),
            fires=Case(series=(("presto:query_error_ratio:rate5m", "0.2x20"),), eval_time="15m"),
            silent=Case(series=(("presto:query_error_ratio:rate5m", "0.01x20"),), eval_time="15m"),
        ),
        Alert(
            name="PrestoQueuedQueriesHigh",
            expr="sum(presto_queries_queued) > 20",
            for_="10m",
            severity="warning",
            summary="Presto queries are queueing",
            description="More than 20 queries have been waiting for 10 minutes: the cluster is short of capacity.",
            fires=Case(series=(("presto_queries_queued", "30x20"),), eval_time="15m"),
            silent=Case(series=(("presto_queries_queued", "5x20"),), eval_time="15m"),
        ),
    )


def _clickhouse_alerts(settings: Settings) -> tuple[Alert, ...]:
    """The server, its inserts, its Kafka engine and its merges."""
    topic = settings.kafka.topic.name
    clickhouse = 'up{job="clickhouse"}'
    return (
        Alert(
            name="ClickHouseDown",
            expr=f"max({clickhouse}) == 0 or absent({clickhouse})",
            for_="2m",
            severity="critical",
            summary="ClickHouse is down",
            description=(
                "Ingestion has stopped and the clickhouse catalog fails: ClickHouse has not answered for 2 minutes."
            ),
            fires=Case(series=((clickhouse, "0x10"),), eval_time="5m"),
            silent=Case(series=((clickhouse, "1x10"),), eval_time="5m"),
        ),
        Alert(
            name="ClickHouseRejectedInserts",
            expr="sum(increase(ClickHouseProfileEvents_RejectedInserts[5m])) > 0",
            for_="0s",
            severity="warning",
            summary="ClickHouse rejects inserts",
            description="Inserts are refused with 'Too many parts': merges cannot keep up with the insert rate.",
            fires=Case(series=(("ClickHouseProfileEvents_RejectedInserts", "0+1x10"),), eval_time="5m"),
            silent=Case(series=(("ClickHouseProfileEvents_RejectedInserts", "3x10"),), eval_time="5m"),
        ),
        Alert(
            name="ClickHouseKafkaConsumerStalled",
            expr="pipeline:kafka_messages_in:rate5m > 0 and pipeline:clickhouse_messages_read:rate5m == 0",
            for_="10m",
            severity="critical",
            summary="ClickHouse stopped consuming the events topic",
            description=f"Events arrive in topic {topic} but the Kafka engine has read none for 10 minutes.",
            fires=Case(
                series=(
                    ("pipeline:kafka_messages_in:rate5m", "10x20"),
                    ("pipeline:clickhouse_messages_read:rate5m", "0x20"),
                ),
                eval_time="15m",
            ),
            silent=Case(
                series=(
                    ("pipeline:kafka_messages_in:rate5m", "10x20"),
                    ("pipeline:clickhouse_messages_read:rate5m", "10x20"),
                ),
                eval_time="15m",
            ),
        ),
        Alert(
            name="ClickHouseTooManyParts",
            expr="max(ClickHouseAsyncMetrics_MaxPartCountForPartition) > 300",
            for_="10m",
            severity="warning",
            summary="A ClickHouse partition has too many parts",
            description=(
                "Inserts are too small or too frequent for merges to keep up; they will be delayed, then rejected."
            ),
            fires=Case(series=(("ClickHouseAsyncMetrics_MaxPartCountForPartition", "500x20"),), eval_time="15m"),
            silent=Case(series=(("ClickHouseAsyncMetrics_MaxPartCountForPartition", "20x20"),), eval_time="15m"),
        ),
    )


def _replication_alerts() -> tuple[Alert, ...]:
    """The replicas of the events table (ReplicatedReplacingMergeTree), each server alike, named by its pod.

    They read job="clickhouse" only, and ZooKeeperSession only while the Keeper job has targets: a stack of
    one server has no Keeper and no replicated table, and these stay silent there.
    """
    readonly = 'ClickHouseMetrics_ReadonlyReplica{job="clickhouse",pod="clickhouse-1"}'
    delay = 'ClickHouseAsyncMetrics_ReplicasMaxAbsoluteDelay{job="clickhouse",pod="clickhouse-1"}'
    queue = 'ClickHouseAsyncMetrics_ReplicasMaxQueueSize{job="clickhouse",pod="clickhouse-1"}'
    session = 'ClickHouseMetrics_ZooKeeperSession{job="clickhouse",pod="clickhouse-1"}'
    keeper = f'up{{job="{names.CLICKHOUSE_KEEPER}",pod="clickhouse-keeper-0"}}'
    pod = {"pod": "clickhouse-1"}
    return (
        Alert(
            name="ClickHouseReplicaReadOnly",
            expr='max by (pod) (ClickHouseMetrics_ReadonlyReplica{job="clickhouse"}) > 0',
            for_="5m",
            severity="critical",
            summary="A ClickHouse replica is read-only",
            description=(
                "Replicated tables of {{ $labels.pod }} refuse writes (no Keeper session, or lost metadata): "
                "its Kafka consumers cannot store what they read."
            ),
            fires=Case(series=((readonly, "1x20"),), eval_time="10m", labels=pod),
            silent=Case(series=((readonly, "0x20"),), eval_time="10m"),
        ),
        Alert(
            name="ClickHouseReplicationLagHigh",
            expr=f'max by (pod) (ClickHouseAsyncMetrics_ReplicasMaxAbsoluteDelay{{job="clickhouse"}})'
            f" > {REPLICATION_DELAY_SECONDS}",
            for_="5m",
            severity="warning",
            summary="A ClickHouse replica is far behind its shard",
            description=(
                f"{{{{ $labels.pod }}}} lacks parts more than {REPLICATION_DELAY_SECONDS}s newer than its own: "
                "Distributed reads skip it, and its shard has one readable copy less."
            ),
            fires=Case(series=((delay, "600x20"),), eval_time="10m", labels=pod),
            silent=Case(series=((delay, "10x20"),), eval_time="10m"),
        ),
        Alert(
            name="ClickHouseReplicationQueueGrowing",
            expr=f'max by (pod) (ClickHouseAsyncMetrics_ReplicasMaxQueueSize{{job="clickhouse"}})'
            f" > {REPLICATION_QUEUE_ENTRIES}"
            ' and max by (pod) (deriv(ClickHouseAsyncMetrics_ReplicasMaxQueueSize{job="clickhouse"}[15m])) > 0',
            for_="15m",
            severity="warning",
            summary="A ClickHouse replication queue keeps growing",
            description=(
                f"{{{{ $labels.pod }}}} has more than {REPLICATION_QUEUE_ENTRIES} fetches and merges queued, "
                "and more every minute: it cannot keep up with its shard."
            ),
            fires=Case(series=((queue, "100+10x40"),), eval_time="30m", labels=pod),
            silent=Case(series=((queue, "500x40"),), eval_time="30m"),
        ),
        Alert(
            name="ClickHouseKeeperSessionLost",
            expr='max by (pod) (ClickHouseMetrics_ZooKeeperSession{job="clickhouse"}) == 0'
            f' and on () count(up{{job="{names.CLICKHOUSE_KEEPER}"}}) > 0',
            for_="2m",
            severity="critical",
            summary="A ClickHouse server has no Keeper session",
            description=(
                "{{ $labels.pod }} is not connected to ClickHouse Keeper: its replicated tables turn read-only "
                "and it neither fetches nor announces parts."
            ),
            fires=Case(series=((session, "0x10"), (keeper, "1x10")), eval_time="5m", labels=pod),
            # A stack of one server: no session, and no Keeper to have one with.
            silent=Case(series=((session, "0x10"),), eval_time="5m"),
        ),
    )


def _keeper_alerts(settings: Settings) -> tuple[Alert, ...]:
    """The ClickHouse Keeper ensemble: quorum and leader.

    The ensemble's size is its StatefulSet's replicas (kube-state-metrics), not the targets Prometheus
    finds, since a pod that cannot be scheduled has no target. Where there is no Keeper StatefulSet,
    every expression here is empty and no alert fires.
    """
    keeper = names.CLICKHOUSE_KEEPER
    up = f'(sum(up{{job="{keeper}"}}) or vector(0))'
    size = f'max(kube_statefulset_replicas{{namespace="{settings.namespace}",statefulset="{keeper}"}})'
    replicas = (f'kube_statefulset_replicas{{namespace="{settings.namespace}",statefulset="{keeper}"}}', "3x20")

    def nodes(*values: str) -> tuple[tuple[str, str], ...]:
        return tuple((f'up{{job="{keeper}",pod="{keeper}-{i}"}}', v) for i, v in enumerate(values))

    def leader(*values: str) -> tuple[tuple[str, str], ...]:
        metric = "ClickHouseAsyncMetrics_KeeperIsLeader"
        return tuple((f'{metric}{{job="{keeper}",pod="{keeper}-{i}"}}', v) for i, v in enumerate(values))

    return (
        Alert(
            name="ClickHouseKeeperQuorumLost",
            expr=f"{up} <= {size} / 2",
            for_="1m",
            severity="critical",
            summary="ClickHouse Keeper has lost its quorum",
            description=(
                "Half or more of the Keeper nodes are down: every replicated table is read-only, "
                "so ingestion stops, until a majority is back."
            ),
            fires=Case(series=(*nodes("1x10", "0x10", "0x10"), replicas), eval_time="5m"),
            silent=Case(series=(*nodes("1x10", "1x10", "0x10"), replicas), eval_time="5m"),
        ),
        Alert(
            name="ClickHouseKeeperNodeDown",
            expr=f"{up} < {size} and {up} > {size} / 2",
            for_="5m",
            severity="warning",
            summary="A ClickHouse Keeper node is down",
            description=(
                "The Keeper quorum holds, but with fewer nodes than the ensemble has: "
                "one more lost node may stop every replicated table."
            ),
            fires=Case(series=(*nodes("1x20", "1x20", "0x20"), replicas), eval_time="10m"),
            silent=Case(series=(*nodes("1x20", "1x20", "1x20"), replicas), eval_time="10m"),
        ),
        Alert(
            name="ClickHouseKeeperNoLeader",
            expr=f'sum(ClickHouseAsyncMetrics_KeeperIsLeader{{job="{keeper}"}}) != 1',
            for_="1m",
            severity="critical",
            summary="ClickHouse Keeper has no leader",
            description=(
                "The Keeper nodes that answer report no leader (or more than one): "
                "Keeper takes no write, and replicated tables can neither insert nor merge."
            ),
            fires=Case(series=leader("0x10", "0x10", "0x10"), eval_time="3m"),
            silent=Case(series=leader("0x10", "1x10", "0x10"), eval_time="3m"),
        ),
    )


def _kafka_alerts() -> tuple[Alert, ...]:
    """The KRaft controller and the partitions' leaders and replicas."""
    return (
        Alert(
            name="KafkaNoActiveController",
            expr="sum(kafka_controller_kafkacontroller_activecontrollercount) != 1",
            for_="1m",
            severity="critical",
            summary="Kafka has no active controller",
            description=(
                "The KRaft quorum has no leader (or more than one): metadata changes and leader elections stop."
            ),
            fires=Case(series=(("kafka_controller_kafkacontroller_activecontrollercount", "0x10"),), eval_time="3m"),
            silent=Case(series=(("kafka_controller_kafkacontroller_activecontrollercount", "1x10"),), eval_time="3m"),
        ),
        Alert(
            name="KafkaOfflinePartitions",
            expr="sum(kafka_controller_kafkacontroller_offlinepartitionscount) > 0",
            for_="1m",
            severity="critical",
            summary="Kafka has offline partitions",
            description="Some partitions have no leader: producers and consumers of them fail.",
            fires=Case(series=(("kafka_controller_kafkacontroller_offlinepartitionscount", "2x10"),), eval_time="3m"),
            silent=Case(series=(("kafka_controller_kafkacontroller_offlinepartitionscount", "0x10"),), eval_time="3m"),
        ),
        Alert(
            name="KafkaUnderReplicatedPartitions",
            expr="sum(kafka_server_replicamanager_underreplicatedpartitions) > 0",
            for_="10m",
            severity="warning",
            summary="Kafka partitions are under-replicated",
            description="A broker is down or lagging: one more failure may lose acknowledged events.",
            fires=Case(series=(("kafka_server_replicamanager_underreplicatedpartitions", "3x20"),), eval_time="15m"),
            silent=Case(series=(("kafka_server_replicamanager_underreplicatedpartitions", "0x20"),), eval_time="15m"),
        ),
        Alert(
            name="KafkaUnderMinIsr",
            expr="sum(kafka_server_replicamanager_underminisrpartitioncount) > 0",
            for_="1m",
            severity="critical",
            summary="Kafka partitions are below min.insync.replicas",
            description="Producers with acks=all are refused on these partitions: ingestion stops.",
            fires=Case(series=(("kafka_server_replicamanager_underminisrpartitioncount", "1x10"),), eval_time="3m"),
            silent=Case(series=(("kafka_server_replicamanager_underminisrpartitioncount", "0x10"),), eval_time="3m"),
        ),
    )


def _pipeline_alerts(settings: Settings) -> tuple[Alert, ...]:
    """How far ClickHouse is behind the events topic."""
    return (
        Alert(
            name="PipelineLagHigh",
            expr=f"pipeline:ingest_lag_seconds:estimate > {settings.monitoring.pipeline_lag_seconds}",
            for_="10m",
            severity="warning",
            summary="Events take too long to reach ClickHouse",
            description=(
                f"At its current read rate, ClickHouse needs more than {settings.monitoring.pipeline_lag_seconds}s "
                "to catch up with the events topic."
            ),
            fires=Case(series=(("pipeline:ingest_lag_seconds:estimate", "600x20"),), eval_time="15m"),
            silent=Case(series=(("pipeline:ingest_lag_seconds:estimate", "1x20"),), eval_time="15m"),
        ),
    )


def _kubernetes_alerts(settings: Settings) -> tuple[Alert, ...]:
    """Pods, autoscalers and volumes of the namespace."""
    namespace = settings.namespace
    return (
        Alert(
            name="PodCrashLooping",
            expr=f'max by (pod, container) (kube_pod_container_status_waiting_reason{{namespace="{namespace}",'
            'reason="CrashLoopBackOff"}) == 1',
            for_="10m",
            severity="warning",
            summary="A pod is crash looping",
            description=(
                "Container {{ $labels.container }} of pod {{ $labels.pod }} keeps crashing; see its previous logs."
            ),
            fires=Case(
                series=(
                    (
                        f'kube_pod_container_status_waiting_reason{{namespace="{namespace}",pod="kafka-0",'
                        'container="kafka",reason="CrashLoopBackOff"}',
                        "1x20",
                    ),
                ),
                eval_time="15m",
                labels={"pod": "kafka-0", "container": "kafka"},
            ),
            silent=Case(
                series=(
                    (
                        f'kube_pod_container_status_waiting_reason{{namespace="{namespace}",pod="kafka-0",'
                        'container="kafka",reason="CrashLoopBackOff"}',
                        "0x20",
                    ),
                ),
                eval_time="15m",
            ),
        ),
        Alert(
            name="HpaAtMaxReplicas",
            expr=f'kube_horizontalpodautoscaler_status_current_replicas{{namespace="{namespace}"}}'
            f' >= kube_horizontalpodautoscaler_spec_max_replicas{{namespace="{namespace}"}}',
            for_="15m",
            severity="warning",
            summary="An autoscaler is at its maximum",
            description=(
                "{{ $labels.horizontalpodautoscaler }} cannot add replicas: "
                "raise its maximum or the cluster's capacity."
            ),
            fires=Case(
                series=(
                    (_hpa("kube_horizontalpodautoscaler_status_current_replicas", namespace), "2x20"),
                    (_hpa("kube_horizontalpodautoscaler_spec_max_replicas", namespace), "2x20"),
                ),
                eval_time="20m",
                labels={"horizontalpodautoscaler": "presto-worker", "namespace": namespace},
            ),
            silent=Case(
                series=(
                    (_hpa("kube_horizontalpodautoscaler_status_current_replicas", namespace), "1x20"),
                    (_hpa("kube_horizontalpodautoscaler_spec_max_replicas", namespace), "2x20"),
                ),
                eval_time="20m",
            ),
        ),
        Alert(
            name="PersistentVolumeFillingUp",
            expr=f'kubelet_volume_stats_available_bytes{{namespace="{namespace}"}}'
            f' / kubelet_volume_stats_capacity_bytes{{namespace="{namespace}"}} < 0.15',
            for_="5m",
            severity="warning",
            summary="A persistent volume is almost full",
            description=(
                "{{ $labels.persistentvolumeclaim }} has less than 15% free: grow it before its engine stops writing."
            ),
            fires=Case(
                series=(
                    (_pvc("kubelet_volume_stats_available_bytes", namespace), "10x10"),
                    (_pvc("kubelet_volume_stats_capacity_bytes", namespace), "100x10"),
                ),
                eval_time="8m",
                labels={"persistentvolumeclaim": "data-kafka-0", "namespace": namespace},
            ),
            silent=Case(
                series=(
                    (_pvc("kubelet_volume_stats_available_bytes", namespace), "50x10"),
                    (_pvc("kubelet_volume_stats_capacity_bytes", namespace), "100x10"),
                ),
                eval_time="8m",
            ),
        ),
    )


def _scrape_alerts() -> tuple[Alert, ...]:
    """A target Prometheus cannot scrape: whatever it measures is unknown."""
    return (
        Alert(
            name="ScrapeTargetDown",
            expr="up == 0",
            for_="5m",
            severity="warning",
            summary="A metrics target is down",
            description="Prometheus cannot scrape {{ $labels.instance }} of job {{ $labels.job }}.",
            fires=Case(
                series=(('up{job="kafka",instance="kafka-0:9404"}', "0x10"),),
                eval_time="8m",
                labels={"job": "kafka", "instance": "kafka-0:9404"},
            ),
            silent=Case(series=(('up{job="kafka",instance="kafka-0:9404"}', "1x10"),), eval_time="8m"),
        ),
    )


DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def _seconds(duration: str) -> int:
    """A Prometheus duration of the settings ('26h') in seconds."""
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h|d|w|y)", duration).groups()  # type: ignore[union-attr]
    return int(int(number) * DURATION_UNITS[unit])


def _backup_alerts(settings: Settings) -> tuple[Alert, ...]:
    """With clickhouse.backup.enabled: the scheduled backup's last run failed, or no backup succeeded for too long.

    The CronJob's Job fails when any shard's backup fails (backup.job_script), so kube-state-metrics'
    CronJob times tell a failed run whatever failed; the sidecars' own last create and upload statuses
    (0 failed, 1 succeeded, 2 none yet) name the server.
    """
    backup = settings.clickhouse.backup
    # Restore mode makes no backups: nothing to be late or to fail.
    if not backup.enabled or backup.mode == "restore":
        return ()
    cronjob = f'namespace="{settings.namespace}",cronjob="{names.CLICKHOUSE_BACKUP}"'
    scheduled = f"max(kube_cronjob_status_last_schedule_time{{{cronjob}}})"
    succeeded = f"max(kube_cronjob_status_last_successful_time{{{cronjob}}})"
    active = f"max(kube_cronjob_status_active{{{cronjob}}})"
    tool = 'job="clickhouse-backup"'
    missing_after = _seconds(backup.missing_after)
    return (
        Alert(
            name="ClickHouseBackupFailed",
            expr=(
                f"({scheduled} > ({succeeded} or vector(0)) and {active} == 0)"
                f" or max by (pod) (clickhouse_backup_last_create_status{{{tool}}} == 0)"
                f" or max by (pod) (clickhouse_backup_last_upload_status{{{tool}}} == 0)"
            ),
            for_="1m",
            severity="warning",
            summary="The last scheduled ClickHouse backup failed",
            description=(
                "The backup CronJob's last run ended without success (its log names the shard and the tool's "
                "error), or a backup sidecar's last create or upload failed ({{ $labels.pod }})."
            ),
            fires=Case(
                series=(
                    (f"kube_cronjob_status_last_schedule_time{{{cronjob}}}", "7200x10"),
                    (f"kube_cronjob_status_last_successful_time{{{cronjob}}}", "3600x10"),
                    (f"kube_cronjob_status_active{{{cronjob}}}", "0x10"),
                ),
                eval_time="5m",
            ),
            silent=Case(
                series=(
                    (f"kube_cronjob_status_last_schedule_time{{{cronjob}}}", "7200x10"),
                    (f"kube_cronjob_status_last_successful_time{{{cronjob}}}", "7300x10"),
                    (f"kube_cronjob_status_active{{{cronjob}}}", "0x10"),
                    (f'clickhouse_backup_last_create_status{{{tool},pod="clickhouse-0"}}', "1x10"),
                    (f'clickhouse_backup_last_upload_status{{{tool},pod="clickhouse-0"}}', "2x10"),
                ),
                eval_time="5m",
            ),
        ),
        Alert(
            name="ClickHouseBackupMissing",
            expr=(
                f"time() - {succeeded} > {missing_after}"
                f" or absent(kube_cronjob_status_last_successful_time{{{cronjob}}})"
            ),
            # absent(): no run has ever succeeded; it must stay so for a whole period before this fires.
            for_=backup.missing_after,
            severity="critical",
            summary="No ClickHouse backup has succeeded for too long",
            description=(
                f"No scheduled backup of every shard has succeeded for {backup.missing_after} "
                "(clickhouse.backup.missingAfter): a restore would lose more than the schedule allows."
            ),
            # Overdue from missingAfter on, then firing after missingAfter more: evaluated just past twice it.
            fires=Case(
                series=((f"kube_cronjob_status_last_successful_time{{{cronjob}}}", f"0x{missing_after // 30 + 20}"),),
                eval_time=f"{missing_after // 30 + 10}m",
            ),
            silent=Case(
                series=(
                    (f"kube_cronjob_status_last_successful_time{{{cronjob}}}", f"0+60x{missing_after // 30 + 20}"),
                ),
                eval_time=f"{missing_after // 30 + 10}m",
            ),
        ),
    )


def _mirror_alerts(settings: Settings) -> tuple[Alert, ...]:
    """On a DR stack: the mirror is behind the primary by more than mirror.lagAlertSeconds, or not running.

    The latency is MirrorMaker 2's own, from a record's timestamp on the primary to its acknowledgement here
    (replication-latency-ms-max, MIRROR_RULES). absent() covers a mirror with no pod scraped at all, and one
    whose JVM runs without a source task reading the primary (its connector failed to start or its task died:
    no replication consumer); a quiet primary and a running task that cannot fetch both leave the latency
    empty, which only verify's lag check tells apart.
    """
    mirror = settings.mirror
    if mirror is None:
        return ()
    limit_ms = mirror.lag_alert_seconds * 1000
    latency = 'kafka_mirror_replication_latency_ms{job="kafka-mirror",topic="events",partition="0"}'
    up = 'up{job="kafka-mirror"}'
    consumer = f'{SOURCE_LAG_METRIC}{{job="kafka-mirror",client=~".*{REPLICATION_CONSUMER}.*"}}'
    task = f"{mirror.source_alias}->{TARGET_ALIAS}|MirrorSourceConnector-0|{REPLICATION_CONSUMER}"
    running = f'{SOURCE_LAG_METRIC}{{job="kafka-mirror",client="{task}"}}'
    return (
        Alert(
            name="KafkaMirrorBehind",
            expr=f"max(kafka_mirror_replication_latency_ms) > {limit_ms} or absent({up} == 1) or absent({consumer})",
            for_="5m",
            severity="critical",
            summary="The DR site's mirror of the primary's Kafka is behind or not running",
            description=(
                f"MirrorMaker 2 acknowledges records here more than {mirror.lag_alert_seconds} s after they were "
                "written on the primary (mirror.lagAlertSeconds), or no mirror is scraped, or no source task reads "
                "the primary: a failover now would lose more than the RPO allows."
            ),
            fires=Case(series=((latency, f"{limit_ms * 2}x10"), (up, "1x10"), (running, "0x10")), eval_time="8m"),
            silent=Case(series=((latency, f"{limit_ms // 2}x10"), (up, "1x10"), (running, "0x10")), eval_time="8m"),
        ),
    )


def _alertmanager_alerts(settings: Settings) -> tuple[Alert, ...]:
    """The Alertmanager gossip cluster: every peer must see all the others.

    A peer with clustering off (one replica, dev) exports no alertmanager_cluster_members: silent there.
    Failed peers are not alerted on: a restarted pod is a new peer, and memberlist keeps the old one as
    failed for hours (--cluster.reconnect-timeout); the dashboard shows them.
    """
    replicas = settings.monitoring.alertmanager.replicas
    members = 'alertmanager_cluster_members{job="alertmanager",pod="alertmanager-2"}'
    return (
        Alert(
            name="AlertmanagerClusterDegraded",
            expr=f'min by (pod) (alertmanager_cluster_members{{job="alertmanager"}}) < {replicas}',
            for_="10m",
            severity="warning",
            summary="An Alertmanager does not see all its peers",
            description=(
                f"{{{{ $labels.pod }}}} counts fewer cluster members than the {replicas} configured: silences "
                "and the notification log do not reach the missing peers, which may notify twice."
            ),
            fires=Case(
                series=((members, f"{max(replicas - 1, 0)}x20"),), eval_time="15m", labels={"pod": "alertmanager-2"}
            ),
            silent=Case(series=((members, f"{replicas}x20"),), eval_time="15m"),
        ),
    )


def _hpa(metric: str, namespace: str) -> str:
    return f'{metric}{{namespace="{namespace}",horizontalpodautoscaler="presto-worker"}}'


def _pvc(metric: str, namespace: str) -> str:
    return f'{metric}{{namespace="{namespace}",persistentvolumeclaim="data-kafka-0"}}'


RULE_FILE = "qestack.rules.yml"


def rule_file(settings: Settings) -> str:
    """The rule file: one group of SLI recordings and one group of alerts."""
    groups = [
        {
            "name": SLI_GROUP,
            "interval": settings.monitoring.prometheus.scrape_interval,
            "rules": [{"record": r.record, "expr": r.expr} for r in recordings(settings)],
        },
        {"name": ALERT_GROUP, "rules": [a.as_rule() for a in alerts(settings)]},
    ]
    return yaml.safe_dump({"groups": groups}, sort_keys=False, width=1000)


def _filled(text: str, labels: dict[str, str]) -> str:
    """An annotation as Prometheus renders it for these labels."""
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m[1], ""), text)


def rule_tests(settings: Settings, rule_path: str = RULE_FILE) -> str:
    """The promtool test file: for each alert, a case where it fires and one where it stays silent."""
    tests = []
    for alert in alerts(settings):
        for case, firing in ((alert.fires, True), (alert.silent, False)):
            expected = []
            if firing:
                labels = {"severity": alert.severity, **case.labels}
                annotations = {key: _filled(value, labels) for key, value in alert.annotations().items()}
                expected = [{"exp_labels": labels, "exp_annotations": annotations}]
            tests.append(
                {
                    "name": f"{alert.name} {'fires' if firing else 'stays silent'}",
                    "interval": "1m",
                    "input_series": [{"series": series, "values": values} for series, values in case.series],
                    "alert_rule_test": [{"eval_time": case.eval_time, "alertname": alert.name, "exp_alerts": expected}],
                }
            )
    document = {"rule_files": [rule_path], "evaluation_interval": "1m", "tests": tests}
    return yaml.safe_dump(document, sort_keys=False, width=1000)
