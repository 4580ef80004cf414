"""The stack's resource plan: every pod at its largest replica count plus its rollout surge, checked against the quota.

A rollout the quota cannot hold never ends: a Deployment that keeps its old pods until the new ones are ready
waits for ever on a surge pod the quota refuses (issue 20, item 7). So the plan counts each workload's surge.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from components import names
from components.settings.model import Amounts, Resources, Settings, total
from components.settings.quantities import format_bytes, format_cores, quantity_value

JOB_RESOURCES = Resources(requests=Amounts(cpu="50m", memory="128Mi"), limits=Amounts(cpu="500m", memory="256Mi"))
"""Every one-shot bootstrap Job (topic creation, schema): a small JVM or client at most."""


@dataclass(frozen=True, kw_only=True)
class PlannedWorkload:
    """One workload of the stack at its largest size."""

    name: str
    """metadata.name of the Deployment or StatefulSet."""
    setting: str
    """The settings key its resources come from."""
    max_replicas: int
    resources: Resources
    volume: str | None = None
    """Size of its PersistentVolumeClaim per replica, if it has one."""
    surge: int = 0
    """Pods a rollout starts above max_replicas: a Deployment's maxSurge. StatefulSets replace one pod at a
    time (the new one is created once the old one is gone), Recreate and Jobs likewise: 0."""
    sidecar: bool = False
    """A container in each pod of the workload `name`: its resources count, its pods are that workload's."""


def rollout_surge(settings: Settings) -> int:
    """The maxSurge of the stack's rolling Deployments (Presto workers, Grafana and kube-state-metrics).

    A highly available stack rolls with one extra pod at a time and never below its current count; its
    quota is sized to hold that pod. Elsewhere (dev: one small node, a 3 GiB quota that the workloads fill
    but for 96 MiB) there is no room for a second copy of anything, so a rollout takes one pod down before
    starting its replacement (maxSurge 0, maxUnavailable 1): dev loses one worker, or a tool, for the
    length of a restart (its coordinator runs tasks too, so queries still run). The quota counts a
    terminating pod until it is gone, so the replacement may be refused until the old pod has drained:
    a wait, never a deadlock.
    """
    return 1 if settings.high_availability else 0


def planned_workloads(settings: Settings) -> list[PlannedWorkload]:
    """List every pod-running workload the settings imply, at its largest replica count and with its surge."""
    presto, kafka, monitoring = settings.presto, settings.kafka, settings.monitoring
    surge = rollout_surge(settings)
    prometheus_volume = monitoring.prometheus.storage.size if monitoring.prometheus.storage else None
    return [
        PlannedWorkload(
            name=names.PRESTO_COORDINATOR,
            setting="presto.coordinator",
            max_replicas=1,
            resources=presto.coordinator.resources,
        ),
        PlannedWorkload(
            name=names.PRESTO_WORKER,
            setting="presto.workers",
            max_replicas=presto.workers.max_replicas,
            resources=presto.workers.resources,
            surge=surge,
        ),
        PlannedWorkload(
            name=names.CLICKHOUSE,
            setting="clickhouse",
            max_replicas=settings.clickhouse.servers,
            resources=settings.clickhouse.resources,
            volume=settings.clickhouse.storage.size,
        ),
        PlannedWorkload(
            name=names.CLICKHOUSE_KEEPER,
            setting="clickhouse.keeper",
            max_replicas=settings.clickhouse.keeper.replicas if settings.clickhouse.replicated else 0,
            resources=settings.clickhouse.keeper.resources,
            volume=settings.clickhouse.keeper.storage.size,
        ),
        PlannedWorkload(
            name=names.CLICKHOUSE_SCHEMA_JOB, setting="clickhouse", max_replicas=1, resources=JOB_RESOURCES
        ),
        PlannedWorkload(
            name=names.KAFKA,
            setting="kafka",
            max_replicas=kafka.brokers,
            resources=kafka.resources,
            volume=kafka.storage.size,
        ),
        PlannedWorkload(name=names.KAFKA_TOPIC_JOB, setting="kafka", max_replicas=1, resources=JOB_RESOURCES),
        PlannedWorkload(
            name=names.PROMETHEUS,
            setting="monitoring.prometheus",
            max_replicas=monitoring.prometheus.replicas,
            resources=monitoring.prometheus.resources,
            volume=prometheus_volume,
        ),
        PlannedWorkload(
            name=names.ALERTMANAGER,
            setting="monitoring.alertmanager",
            max_replicas=monitoring.alertmanager.replicas,
            resources=monitoring.alertmanager.resources,
        ),
        PlannedWorkload(
            name=names.GRAFANA,
            setting="monitoring.grafana",
            max_replicas=1,
            resources=monitoring.grafana.resources,
            surge=surge,
        ),
        PlannedWorkload(
            name=names.KUBE_STATE_METRICS,
            setting="monitoring.kubeStateMetrics",
            max_replicas=1,
            resources=monitoring.kube_state_metrics.resources,
            surge=surge,
        ),
        *_backup_workloads(settings),
        *(
            [
                PlannedWorkload(
                    name=names.KAFKA_MIRROR, setting="mirror", max_replicas=1, resources=settings.mirror.resources
                )
            ]
            if settings.mirror
            else []
        ),
    ]


def _backup_workloads(settings: Settings) -> list[PlannedWorkload]:
    """With backups on: the sidecar in every ClickHouse pod, the scheduled Job's pod and the drill's scratch pods."""
    backup = settings.clickhouse.backup
    if not backup.enabled:
        return []
    return [
        PlannedWorkload(
            name=names.CLICKHOUSE,
            setting="clickhouse.backup",
            max_replicas=settings.clickhouse.servers,
            resources=backup.resources,
            sidecar=True,
        ),
        # concurrencyPolicy Forbid: never two runs at once. None in restore mode.
        *(
            [
                PlannedWorkload(
                    name=names.CLICKHOUSE_BACKUP, setting="clickhouse.backup", max_replicas=1, resources=JOB_RESOURCES
                )
            ]
            if backup.mode == "backup"
            else []
        ),
        # verify restore-drill: a scratch server per shard, a copy of a server's pod (its sidecar included),
        # so that a drill fits beside the running stack.
        PlannedWorkload(
            name=names.CLICKHOUSE_RESTORE_DRILL,
            setting="clickhouse",
            max_replicas=settings.clickhouse.shards,
            resources=settings.clickhouse.resources,
        ),
        PlannedWorkload(
            name=names.CLICKHOUSE_RESTORE_DRILL,
            setting="clickhouse.backup",
            max_replicas=settings.clickhouse.shards,
            resources=backup.resources,
            sidecar=True,
        ),
    ]


SURGE_NOTE = ", rollout surge included (a rollout the quota cannot hold never ends)"


@dataclass(frozen=True)
class Budget:
    """The plan's totals, the figures the quota must hold."""

    requests_cpu: Decimal
    requests_memory: Decimal
    limits_cpu: Decimal
    limits_memory: Decimal
    pods: int
    volumes: int
    storage: Decimal

    def lines(self) -> list[str]:
        """Render the totals for people."""
        return [
            f"requests: cpu {format_cores(self.requests_cpu)}, memory {format_bytes(self.requests_memory)}",
            f"limits:   cpu {format_cores(self.limits_cpu)}, memory {format_bytes(self.limits_memory)}",
            f"pods {self.pods}, PVCs {self.volumes}, storage {format_bytes(self.storage)}",
        ]


def budget(settings: Settings) -> Budget:
    """Sum the plan at every workload's largest replica count, with every rollout's surge at once.

    Every surge at once: one `pulumi up` may roll all the Deployments together (a changed label, a new config).
    """
    plan = planned_workloads(settings)

    def summed(side: Literal["requests", "limits"], kind: Literal["cpu", "memory"]) -> Decimal:
        return sum((total([getattr(w.resources, side)], kind) * (w.max_replicas + w.surge) for w in plan), Decimal(0))

    with_volume = [w for w in plan if w.volume]
    return Budget(
        requests_cpu=summed("requests", "cpu"),
        requests_memory=summed("requests", "memory"),
        limits_cpu=summed("limits", "cpu"),
        limits_memory=summed("limits", "memory"),
        pods=sum(w.max_replicas + w.surge for w in plan if not w.sidecar),
        volumes=sum(w.max_replicas for w in with_volume),
        storage=sum((quantity_value(w.volume or "0") * w.max_replicas for w in with_volume), Decimal(0)),
    )


def budget_problems(settings: Settings) -> Iterator[tuple[str, str, str]]:
    """Yield (key, value, message) wherever the plan would not fit the namespace's own limits."""
    need = budget(settings)
    quota = settings.quota
    checks: list[tuple[str, str, Decimal, str]] = [
        ("quota.requests.cpu", quota.requests.cpu, need.requests_cpu, format_cores(need.requests_cpu)),
        ("quota.requests.memory", quota.requests.memory, need.requests_memory, format_bytes(need.requests_memory)),
        ("quota.limits.cpu", quota.limits.cpu, need.limits_cpu, format_cores(need.limits_cpu)),
        ("quota.limits.memory", quota.limits.memory, need.limits_memory, format_bytes(need.limits_memory)),
        ("quota.storage", quota.storage, need.storage, format_bytes(need.storage)),
    ]
    for key, allowed, needed, shown in checks:
        if quantity_value(allowed) < needed:
            yield key, allowed, f"too small: the workloads need {shown} at their largest replica counts{SURGE_NOTE}"
    for key, count, needed_count in (
        ("quota.pods", quota.pods, need.pods),
        ("quota.persistentVolumeClaims", quota.persistent_volume_claims, need.volumes),
    ):
        if count < needed_count:
            yield (
                key,
                str(count),
                f"too small: the workloads need {needed_count} at their largest replica counts{SURGE_NOTE}",
            )
    yield from _limit_range_problems(settings)


def _limit_range_problems(settings: Settings) -> Iterator[tuple[str, str, str]]:
    """Yield a problem for every workload whose limits the LimitRange would refuse."""
    ceiling: Amounts = settings.limit_range.max
    for workload in planned_workloads(settings):
        for kind in ("cpu", "memory"):
            limit = getattr(workload.resources.limits, kind)
            if quantity_value(limit) > quantity_value(getattr(ceiling, kind)):
                yield (
                    f"{workload.setting}.resources.limits.{kind}",
                    limit,
                    f"exceeds limitRange.max.{kind} ({getattr(ceiling, kind)}); the namespace would refuse the pod",
                )
