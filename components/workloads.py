"""Pieces every workload shares: restricted security, resources, HA placement and disruption budgets."""

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.core.v1 import (
    AffinityArgs,
    CapabilitiesArgs,
    PodAffinityTermArgs,
    PodAntiAffinityArgs,
    PodSecurityContextArgs,
    ResourceRequirementsArgs,
    SeccompProfileArgs,
    SecurityContextArgs,
    TopologySpreadConstraintArgs,
    WeightedPodAffinityTermArgs,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs
from pulumi_kubernetes.policy.v1 import PodDisruptionBudgetSpecArgs

from components.settings import Resources, Settings


def container_security() -> SecurityContextArgs:
    """The restricted Pod Security Standard for a container, with a read-only root filesystem."""
    return SecurityContextArgs(
        allow_privilege_escalation=False,
        capabilities=CapabilitiesArgs(drop=["ALL"]),
        run_as_non_root=True,
        read_only_root_filesystem=True,
        seccomp_profile=SeccompProfileArgs(type="RuntimeDefault"),
    )


def pod_security(user: int) -> PodSecurityContextArgs:
    """Run the pod as the image's own unprivileged user; volumes become writable by its group."""
    return PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=user,
        run_as_group=user,
        fs_group=user,
        fs_group_change_policy="OnRootMismatch",
        seccomp_profile=SeccompProfileArgs(type="RuntimeDefault"),
    )


def container_resources(resources: Resources) -> ResourceRequirementsArgs:
    """Requests and limits from settings."""
    return ResourceRequirementsArgs(
        requests={"cpu": resources.requests.cpu, "memory": resources.requests.memory},
        limits={"cpu": resources.limits.cpu, "memory": resources.limits.memory},
    )


def placement(settings: Settings, selector: dict[str, str], one_per_host: bool) -> dict:
    """Pod spec fields that spread replicas over hosts and zones when the stack is highly available.

    one_per_host: replicas that hold a share of the same data (Kafka) must never share a node, so a
    node loss costs at most one; stateless replicas (Presto workers) only prefer to spread, so the
    autoscaler can still place more replicas than there are nodes.
    """
    if not settings.high_availability:
        return {}
    spread = settings.spread
    term = PodAffinityTermArgs(label_selector=LabelSelectorArgs(match_labels=selector), topology_key=spread.host_key)
    anti_affinity = (
        PodAntiAffinityArgs(required_during_scheduling_ignored_during_execution=[term])
        if one_per_host
        else PodAntiAffinityArgs(
            preferred_during_scheduling_ignored_during_execution=[
                WeightedPodAffinityTermArgs(weight=100, pod_affinity_term=term)
            ]
        )
    )
    return {
        "affinity": AffinityArgs(pod_anti_affinity=anti_affinity),
        "topology_spread_constraints": [
            TopologySpreadConstraintArgs(
                max_skew=1,
                topology_key=spread.zone_key,
                when_unsatisfiable=spread.zone_policy,
                label_selector=LabelSelectorArgs(match_labels=selector),
            )
        ],
    }


def disruption_budget(
    name: str,
    namespace: pulumi.Input[str],
    labels: dict[str, str],
    selector: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> k8s.policy.v1.PodDisruptionBudget:
    """Allow voluntary evictions (drains, upgrades) one pod at a time."""
    return k8s.policy.v1.PodDisruptionBudget(
        name,
        metadata=ObjectMetaArgs(name=name, namespace=namespace, labels=labels),
        spec=PodDisruptionBudgetSpecArgs(max_unavailable=1, selector=LabelSelectorArgs(match_labels=selector)),
        opts=opts,
    )
