"""Prometheus, Alertmanager and kube-state-metrics in both stacks.

Their config is the pure functions' output, every scrape job finds a named port, API access is read-only.
"""

import yaml

from components import names
from components.observability.prometheus.alert_rules import RULE_FILE, rule_file
from components.observability.prometheus.config import POD_JOBS, prometheus_config
from components.settings.parse import parse_settings
from components.settings.stack_files import stack_config
from tests.support.render import Rendered, settings_of
from tests.support.workloads import pod_spec


def test_the_config_map_holds_the_generated_config_and_rules(stack: Rendered) -> None:
    settings = settings_of(stack)
    data = stack.named("ConfigMap", names.PROMETHEUS).inputs["data"]
    assert data[RULE_FILE] == rule_file(settings)
    assert data["prometheus.yml"] == prometheus_config(
        settings,
        rule_files=[f"/etc/prometheus/{RULE_FILE}"],
        alertmanagers=[f"{names.ALERTMANAGER}.{settings.namespace}.svc.cluster.local:9093"],
    )


def test_every_scrape_job_finds_its_port_on_its_workloads(stack: Rendered) -> None:
    kinds = ("Deployment", "StatefulSet")
    for job in POD_JOBS:
        for workload in job.workloads:
            (found,) = [o for kind in kinds for o in stack.of_kind(kind) if o.inputs["metadata"]["name"] == workload]
            ports = {p["name"] for c in pod_spec(found)["containers"] for p in c.get("ports", [])}
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
