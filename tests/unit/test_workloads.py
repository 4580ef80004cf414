"""Every workload: restricted pod security, resources, probes, pinned images, and the budget plan."""

import math
from decimal import Decimal

from components import names
from components.platform.budget import budget, budget_problems, planned_workloads
from components.settings.quantities import quantity_value
from tests.support.render import Captured, Rendered, settings_of
from tests.support.workloads import containers, pod_spec, workloads


def test_stacks_declare_workloads(stack: Rendered) -> None:
    assert workloads(stack), f"stack {stack.stack} declares no workload"


def test_every_pod_meets_the_restricted_pod_security_standard(stack: Rendered) -> None:
    for workload in workloads(stack):
        pod = pod_spec(workload)
        security = pod.get("securityContext", {})
        assert security.get("runAsNonRoot") is True, f"{workload.label}: pod may run as root"
        assert security.get("seccompProfile") == {"type": "RuntimeDefault"}, (
            f"{workload.label}: no RuntimeDefault seccomp"
        )
        name = workload.inputs["metadata"]["name"]
        assert pod["serviceAccountName"] == name, f"{workload.label}: not its own ServiceAccount"
        if name not in NEEDS_THE_API:
            assert pod.get("automountServiceAccountToken") is False, f"{workload.label}: API token mounted"
        for container in containers(workload):
            where = f"{workload.label} container {container['name']}"
            context = container.get("securityContext", {})
            assert context.get("allowPrivilegeEscalation") is False, f"{where}: privilege escalation allowed"
            assert context.get("capabilities") == {"drop": ["ALL"]}, f"{where}: capabilities not all dropped"
            assert context.get("readOnlyRootFilesystem") is True, f"{where}: root filesystem writable"
            assert not context.get("privileged"), f"{where}: privileged"


def test_every_container_has_requests_and_limits(stack: Rendered) -> None:
    for workload in workloads(stack):
        for container in containers(workload):
            resources = container.get("resources", {})
            for side in ("requests", "limits"):
                assert set(resources.get(side, {})) == {"cpu", "memory"}, (
                    f"{workload.label} container {container['name']}: {side} must set cpu and memory"
                )


def test_every_long_running_container_has_three_probes(stack: Rendered) -> None:
    for workload in workloads(stack):
        if workload.kind == "Job":
            continue
        for container in pod_spec(workload)["containers"]:
            missing = [p for p in ("startupProbe", "readinessProbe", "livenessProbe") if p not in container]
            assert not missing, f"{workload.label} container {container['name']} lacks {missing}"


def test_every_image_is_pinned(stack: Rendered) -> None:
    for workload in workloads(stack):
        for container in containers(workload):
            image = container["image"]
            tag = image.split("@")[0].rsplit("/", 1)[-1].partition(":")[2]
            assert "@sha256:" in image or (tag and tag != "latest"), f"{workload.label}: image {image} not pinned"


NEEDS_THE_API = {names.PROMETHEUS, names.KUBE_STATE_METRICS}
"""Workloads that talk to the Kubernetes API, each through its own least-privilege account."""


def pod_amount(workload: Captured, side: str, kind: str) -> Decimal:
    """What the scheduler counts for a pod: its containers' sum, or its largest init container's if more."""
    spec = pod_spec(workload)
    running = sum((quantity_value(c["resources"][side][kind]) for c in spec["containers"]), Decimal(0))
    init = [quantity_value(c["resources"][side][kind]) for c in spec.get("initContainers", [])]
    return max([running, *init])


def test_rendered_workloads_are_the_budget_plan(stack: Rendered) -> None:
    planned_list = planned_workloads(settings_of(stack))
    plan = {w.name: w for w in planned_list if not w.sidecar}
    for workload in workloads(stack):
        name = workload.inputs["metadata"]["name"]
        assert name in plan, f"{workload.label} is missing from the budget plan (components/platform/budget.py)"
        planned = plan[name]
        sidecars = [w for w in planned_list if w.sidecar and w.name == name]
        for side in ("requests", "limits"):
            for kind in ("cpu", "memory"):
                rendered = pod_amount(workload, side, kind)
                expected = sum(
                    (quantity_value(getattr(getattr(w.resources, side), kind)) for w in (planned, *sidecars)),
                    Decimal(0),
                )
                assert rendered == expected, f"{workload.label}: {side}.{kind} {rendered} != planned {expected}"
        replicas = workload.inputs["spec"].get("replicas", 1)
        assert replicas <= planned.max_replicas, (
            f"{workload.label}: {replicas} replicas > planned {planned.max_replicas}"
        )


def rollout_surge(workload: Captured, replicas: int) -> int:
    """Pods a workload's rollout starts above its count, read from its strategy as the controllers do."""
    if workload.kind != "Deployment":
        return 0  # a StatefulSet creates a pod's replacement once the pod is gone; a Job does not roll
    strategy = workload.inputs["spec"].get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0
    surge = (strategy.get("rollingUpdate") or {}).get("maxSurge", "25%")
    return math.ceil(int(surge[:-1]) * replicas / 100) if isinstance(surge, str) else int(surge)


def test_the_plan_counts_every_rollout_surge_and_the_quota_holds_it(stack: Rendered) -> None:
    settings = settings_of(stack)
    plan = {w.name: w for w in planned_workloads(settings)}
    for workload in workloads(stack):
        planned = plan[workload.inputs["metadata"]["name"]]
        rendered = rollout_surge(workload, planned.max_replicas)
        assert planned.surge == rendered, f"{workload.label}: rolls with {rendered} extra pods, planned {planned.surge}"
    need = budget(settings)
    assert need.pods == sum(w.max_replicas + w.surge for w in plan.values()), need.lines()
    assert not list(budget_problems(settings)), f"stack {stack.stack}: {list(budget_problems(settings))}"


SINGLE_IN_PROD = {
    names.PRESTO_COORDINATOR: "Presto 0.287 has one active coordinator; the delivery issue puts two behind a router",
    names.GRAFANA: "stateless: dashboards and datasources are provisioned, a restart loses nothing",
    names.KUBE_STATE_METRICS: "stateless: it rebuilds every series from the API server within a scrape",
}
"""The only workloads prod runs as one pod, and why."""


def test_prod_runs_no_single_replica_of_a_stateful_service(rendered_stacks: dict[str, Rendered]) -> None:
    prod = rendered_stacks["prod"]
    single = {
        workload.inputs["metadata"]["name"]
        for kind in ("StatefulSet", "Deployment")
        for workload in prod.of_kind(kind)
        if workload.inputs["spec"].get("replicas", 2) < 2
    }
    assert single == set(SINGLE_IN_PROD)
    assert all(s.inputs["spec"]["replicas"] >= 2 for s in prod.of_kind("StatefulSet"))
