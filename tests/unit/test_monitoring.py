"""Prometheus, Alertmanager and kube-state-metrics in both stacks.

Their config is the pure functions' output, every scrape job finds a named port, API access is read-only;
dev runs one of each, prod three gossiping Alertmanagers and two Prometheus replicas, spread and budgeted.
"""

from typing import Any

import pytest
import yaml

from components import names
from components.observability.prometheus.alert_rules import RULE_FILE, rule_file
from components.observability.prometheus.config import POD_JOBS, prometheus_config
from components.platform.budget import budget_problems, planned_workloads
from components.platform.labels import selector_labels
from components.security.network import ALERTMANAGER, PROMETHEUS, Peer
from components.settings.model import PROJECT
from components.settings.parse import SettingsError, parse_settings
from components.settings.stack_files import stack_config
from tests.support.netpol import Pod, allowed
from tests.support.render import Captured, Rendered, settings_of
from tests.support.workloads import pod_spec

PEERS = "alertmanager-peers.query-engine.svc.cluster.local"


def alertmanager_targets(replicas: int) -> list[str]:
    """Every Alertmanager pod by its stable name, as Prometheus must list them."""
    return [f"alertmanager-{ordinal}.{PEERS}:9093" for ordinal in range(replicas)]


def test_the_config_map_holds_the_generated_config_and_rules(stack: Rendered) -> None:
    settings = settings_of(stack)
    data = stack.named("ConfigMap", names.PROMETHEUS).inputs["data"]
    assert data[RULE_FILE] == rule_file(settings)
    assert data["prometheus.yml"] == prometheus_config(
        settings,
        rule_files=[f"/etc/prometheus/{RULE_FILE}"],
        alertmanagers=alertmanager_targets(settings.monitoring.alertmanager.replicas),
    )


def test_every_scrape_job_finds_its_port_on_its_workloads(stack: Rendered) -> None:
    kinds = ("Deployment", "StatefulSet")
    # Keeper runs only where ClickHouse has more than one server; its job has no target elsewhere.
    absent = set() if settings_of(stack).clickhouse.replicated else {names.CLICKHOUSE_KEEPER}
    for job in POD_JOBS:
        for workload in job.workloads:
            found = [o for kind in kinds for o in stack.of_kind(kind) if o.inputs["metadata"]["name"] == workload]
            if workload in absent:
                assert not found, f"{workload} runs in a stack of one ClickHouse server"
                continue
            (only,) = found
            ports = {p["name"] for c in pod_spec(only)["containers"] for p in c.get("ports", [])}
            assert job.port in ports, f"job {job.job}: {workload} has no port named {job.port}"


def test_prometheus_keeps_its_data_where_the_stack_says(stack: Rendered) -> None:
    storage = settings_of(stack).monitoring.prometheus.storage
    spec = stack.named("StatefulSet", names.PROMETHEUS).inputs["spec"]
    assert bool(spec.get("volumeClaimTemplates")) == (storage is not None)


def test_monitoring_api_access_is_read_only(stack: Rendered) -> None:
    for kind in ("Role", "ClusterRole"):
        for role in (r for r in stack.of_kind(kind) if r.inputs["metadata"]["name"] != names.VERIFY):
            verbs = {verb for rule in role.inputs["rules"] for verb in rule["verbs"]}
            assert verbs <= {"get", "list", "watch"}, f"{role.label}: {verbs}"


def test_alert_routing_lives_in_a_secret(stack: Rendered) -> None:
    secret = stack.named("Secret", names.ALERTMANAGER)
    assert "alertmanager.yml" in secret.inputs["stringData"]
    assert secret.secret_paths, "webhook URLs carry tokens: the config is a Pulumi secret"


def test_every_alert_links_its_section_of_the_configured_runbook() -> None:
    runbook = "https://wiki.example.com/qestack/runbook"
    settings = parse_settings("dev", stack_config("dev", {"monitoring": {"runbookUrl": runbook}}))
    groups = yaml.safe_load(rule_file(settings))["groups"]
    alerts = [rule for group in groups for rule in group["rules"] if "alert" in rule]
    assert alerts, "the rule file has alerts"
    for rule in alerts:
        want = f"{runbook}#{rule['alert'].lower()}"
        assert rule["annotations"]["runbook_url"] == want, f"alert {rule['alert']}: {rule['annotations']}"


def container(stack: Rendered, name: str) -> dict[str, Any]:
    """The one container of a StatefulSet."""
    (only,) = pod_spec(stack.named("StatefulSet", name))["containers"]
    return only


def budgets_of(stack: Rendered, name: str) -> list[Captured]:
    """The PodDisruptionBudgets selecting a workload's pods."""
    selector = stack.named("StatefulSet", name).inputs["spec"]["selector"]["matchLabels"]
    return [b for b in stack.of_kind("PodDisruptionBudget") if b.inputs["spec"]["selector"]["matchLabels"] == selector]


def test_dev_runs_one_alertmanager_and_one_prometheus_within_its_quota(rendered_stacks: dict[str, Rendered]) -> None:
    dev = rendered_stacks["dev"]
    for name in (names.ALERTMANAGER, names.PROMETHEUS):
        statefulset = dev.named("StatefulSet", name)
        assert statefulset.inputs["spec"]["replicas"] == 1, statefulset.label
        assert not budgets_of(dev, name), f"{statefulset.label}: one pod needs no budget"
        assert "affinity" not in pod_spec(statefulset), f"{statefulset.label}: dev has one node"
    args = container(dev, names.ALERTMANAGER)["args"]
    assert "--cluster.listen-address=" in args, "one Alertmanager gossips with nobody"
    assert not [a for a in args if a.startswith("--cluster.peer")], args
    settings = settings_of(dev)
    plan = {w.name: w for w in planned_workloads(settings)}
    assert (plan[names.ALERTMANAGER].max_replicas, plan[names.PROMETHEUS].max_replicas) == (1, 1)
    assert not list(budget_problems(settings))


def test_prod_clusters_three_alertmanagers_through_their_headless_service(
    rendered_stacks: dict[str, Rendered],
) -> None:
    prod = rendered_stacks["prod"]
    statefulset = prod.named("StatefulSet", names.ALERTMANAGER)
    spec = statefulset.inputs["spec"]
    assert spec["replicas"] == 3 and spec["serviceName"] == "alertmanager-peers"
    main = container(prod, names.ALERTMANAGER)
    args = main["args"]
    assert "--cluster.listen-address=0.0.0.0:9094" in args
    assert "--cluster.advertise-address=$(POD_IP):9094" in args
    peers = [a.removeprefix("--cluster.peer=") for a in args if a.startswith("--cluster.peer=")]
    assert peers == [f"alertmanager-{ordinal}.{PEERS}:9094" for ordinal in range(3)]
    (pod_ip,) = [e for e in main["env"] if e["name"] == "POD_IP"]
    assert pod_ip["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    gossip = {(p["containerPort"], p.get("protocol", "TCP")) for p in main["ports"]}
    assert {(9094, "TCP"), (9094, "UDP")} <= gossip, gossip
    service = prod.named("Service", "alertmanager-peers").inputs["spec"]
    assert service["clusterIP"] == "None" and service["publishNotReadyAddresses"] is True
    assert {(p["port"], p.get("protocol", "TCP")) for p in service["ports"]} >= {(9094, "TCP"), (9094, "UDP")}
    assert service["selector"] == spec["selector"]["matchLabels"]


def test_prod_runs_two_prometheus_replicas_each_with_its_volume_and_label(
    rendered_stacks: dict[str, Rendered],
) -> None:
    prod = rendered_stacks["prod"]
    spec = prod.named("StatefulSet", names.PROMETHEUS).inputs["spec"]
    assert spec["replicas"] == 2 and spec["volumeClaimTemplates"], "each replica has its own TSDB volume"
    claims = sorted(p.inputs["metadata"]["name"] for p in prod.patches("PersistentVolumeClaim"))
    assert {"data-prometheus-0", "data-prometheus-1"} <= set(claims), claims
    main = container(prod, names.PROMETHEUS)
    assert "--enable-feature=expand-external-labels" in main["args"]
    (pod_name,) = [e for e in main["env"] if e["name"] == "POD_NAME"]
    assert pod_name["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    config = yaml.safe_load(prod.named("ConfigMap", names.PROMETHEUS).inputs["data"]["prometheus.yml"])
    assert config["global"]["external_labels"]["replica"] == "${POD_NAME}"
    assert config["alerting"]["alert_relabel_configs"] == [{"action": "labeldrop", "regex": "replica"}], (
        "the replicas' alerts must reach Alertmanager as one"
    )
    (targets,) = config["alerting"]["alertmanagers"][0]["static_configs"]
    assert targets["targets"] == alertmanager_targets(3), "every Alertmanager, not the Service in front of them"
    service = prod.named("Service", names.PROMETHEUS).inputs["spec"]
    assert service["sessionAffinity"] == "ClientIP", "Grafana stays on one replica"


@pytest.mark.parametrize("name", [names.ALERTMANAGER, names.PROMETHEUS])
def test_prod_spreads_and_budgets_every_replica(rendered_stacks: dict[str, Rendered], name: str) -> None:
    prod = rendered_stacks["prod"]
    statefulset = prod.named("StatefulSet", name)
    selector = statefulset.inputs["spec"]["selector"]["matchLabels"]
    (pdb,) = budgets_of(prod, name)
    assert pdb.inputs["spec"]["maxUnavailable"] == 1, pdb.label
    pod = pod_spec(statefulset)
    (term,) = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term == {"labelSelector": {"matchLabels": selector}, "topologyKey": "kubernetes.io/hostname"}, (
        f"{statefulset.label}: two replicas on one node"
    )
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone" and spread["labelSelector"]["matchLabels"] == selector
    plan = {w.name: w for w in planned_workloads(settings_of(prod))}
    assert plan[name].max_replicas == statefulset.inputs["spec"]["replicas"], f"{statefulset.label}: not in the plan"
    assert not list(budget_problems(settings_of(prod)))


def peer_pod(stack: Rendered, peer: Peer) -> Pod:
    """A pod of the stack's namespace with a peer's labels."""
    return Pod(selector_labels(peer.name, peer.component, stack.stack), stack.outputs["namespace"])


def test_the_gossip_port_is_open_between_alertmanagers_only_over_tcp_and_udp(stack: Rendered) -> None:
    alertmanager, prometheus = peer_pod(stack, ALERTMANAGER), peer_pod(stack, PROMETHEUS)
    for protocol in ("TCP", "UDP"):
        assert allowed(stack, alertmanager, alertmanager, 9094, protocol), (
            f"alertmanager -> alertmanager:9094/{protocol}"
        )
        assert not allowed(stack, prometheus, alertmanager, 9094, protocol), (
            f"prometheus -> alertmanager:9094/{protocol}"
        )
    assert not allowed(stack, alertmanager, alertmanager, 9093, "UDP")
    assert not allowed(stack, prometheus, alertmanager, 9093, "UDP")
    assert allowed(stack, prometheus, alertmanager, 9093), "Prometheus sends to every peer"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("alertmanager", {"replicas": 2}, "at least 3 when highAvailability is true"),
        ("prometheus", {"replicas": 1}, "at least 2 when highAvailability is true"),
    ],
)
def test_a_highly_available_stack_refuses_too_few_replicas(key: str, value: dict, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings("prod", stack_config("prod", {"monitoring": {key: value}}))
    line = next(line for line in str(caught.value).splitlines() if f"{PROJECT}:monitoring.{key}.replicas" in line)
    assert message in line, line
