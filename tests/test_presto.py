"""The Presto component in both stacks: coordinator, autoscaled draining workers, config and Secrets."""

from workloads import pod_spec

from components import names
from components.presto_config import graceful_shutdown_command, start_script
from render import Rendered, render, settings_of


def test_exactly_one_coordinator_never_two_at_once(stack: Rendered) -> None:
    spec = stack.named("Deployment", names.PRESTO_COORDINATOR).inputs["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}


def test_the_autoscaler_owns_the_worker_count(stack: Rendered) -> None:
    workers = settings_of(stack).presto.workers
    assert "replicas" not in stack.named("Deployment", names.PRESTO_WORKER).inputs["spec"]
    hpa = stack.named("HorizontalPodAutoscaler", names.PRESTO_WORKER).inputs["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": names.PRESTO_WORKER}
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (workers.min_replicas, workers.max_replicas)
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["metrics"]}
    assert targets == {"cpu": workers.cpu_target_percent, "memory": workers.memory_target_percent}
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == workers.scale_down_stabilization_seconds


def test_workers_drain_before_they_stop(stack: Rendered) -> None:
    grace = settings_of(stack).presto.workers.shutdown_grace_period_seconds
    spec = pod_spec(stack.named("Deployment", names.PRESTO_WORKER))
    (container,) = spec["containers"]
    assert container["lifecycle"]["preStop"]["exec"]["command"] == graceful_shutdown_command(
        names.PRESTO_HTTP_PORT, grace
    )
    assert spec["terminationGracePeriodSeconds"] > 2 * grace, "Kubernetes must not kill a draining worker"
    config = stack.named("ConfigMap", names.PRESTO_WORKER_CONFIG).inputs["data"]["config.properties"]
    assert f"shutdown.grace-period={grace}s" in config


def test_secrets_reach_presto_as_files_not_config(stack: Rendered) -> None:
    for workload, config_name in (
        (names.PRESTO_COORDINATOR, names.PRESTO_COORDINATOR_CONFIG),
        (names.PRESTO_WORKER, names.PRESTO_WORKER_CONFIG),
    ):
        volumes = {v["name"]: v for v in pod_spec(stack.named("Deployment", workload))["volumes"]}
        sources = volumes["secrets"]["projected"]["sources"]
        assert {s["secret"]["name"] for s in sources} == {"presto-internal", "clickhouse-users"}
        data = stack.named("ConfigMap", config_name).inputs["data"]
        assert data["start.sh"] == start_script()
        assert "password=" not in data["catalog-clickhouse.properties"]
        assert "shared-secret=" not in data["config.properties"]


def test_prod_workers_spread_and_budget_disruptions() -> None:
    prod = render("prod")
    selector = prod.named("Deployment", names.PRESTO_WORKER).inputs["spec"]["selector"]["matchLabels"]
    assert prod.named("PodDisruptionBudget", names.PRESTO_WORKER).inputs["spec"]["selector"]["matchLabels"] == selector
    spec = pod_spec(prod.named("Deployment", names.PRESTO_WORKER))
    assert spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert spec["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    coordinator = prod.named("ConfigMap", names.PRESTO_COORDINATOR_CONFIG).inputs["data"]["config.properties"]
    assert "node-scheduler.include-coordinator=false" in coordinator


def test_dev_coordinator_also_schedules_work() -> None:
    data = render("dev").named("ConfigMap", names.PRESTO_COORDINATOR_CONFIG).inputs["data"]
    assert "node-scheduler.include-coordinator=true" in data["config.properties"]
    assert "-Xmx716m" in data["jvm.config"], "70% of the 1Gi limit"
