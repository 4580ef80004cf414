"""The Grafana dashboards and their provisioning, in both stacks.

Grafana itself cannot be installed on this machine (no Debian package, no PyPI or Maven artifact of the
server, no image pulls), so nothing here runs it: the dashboards are checked through the builder
library's own model (a round trip), their PromQL through a PromQL parser (and the real promtool in
tests/integration/test_dashboards.py), and
the provisioning files and the Deployment that mounts them for their structure.
"""

import configparser
import json

import pytest
import yaml
from grafana_foundation_sdk.models.dashboard import Dashboard

from components import names
from components.observability.grafana.config import Paths
from components.observability.grafana.dashboards import DATASOURCE_UID, as_json, dashboard_files, dashboards
from components.observability.prometheus.alert_rules import recordings
from components.observability.prometheus.config import (
    BACKUP_JOB,
    CADVISOR_METRICS,
    KUBELET_METRICS,
    MIRROR_JOB,
    POD_JOBS,
)
from components.security.credential_catalog import GRAFANA_ADMIN_SECRET
from tests.support.promql import expressions, label_values, metric_names
from tests.support.render import Rendered, settings_of
from tests.support.workloads import pod_spec

WANTED = {"Overview and SLOs", "Presto", "ClickHouse", "Kafka", "Pipeline", "Kubernetes resources"}


@pytest.fixture
def boards(stack: Rendered) -> list[Dashboard]:
    """The stack's dashboards, built."""
    return dashboards(settings_of(stack))


def test_the_issue_s_dashboards_exist_once_each(boards: list[Dashboard]) -> None:
    assert sorted(b.title for b in boards) == sorted(WANTED)
    uids = [b.uid for b in boards]
    assert len(set(uids)) == len(uids) and all(len(uid) <= 40 for uid in uids), "Grafana's uid limit is 40"


def test_every_dashboard_round_trips_through_the_builder_library(boards: list[Dashboard]) -> None:
    for model in boards:
        text = as_json(model)
        assert as_json(Dashboard.from_json(json.loads(text))) == text, model.uid


def test_every_panel_queries_the_provisioned_prometheus(boards: list[Dashboard]) -> None:
    for model in boards:
        ids = [panel.id_val for panel in model.panels]
        assert len(set(ids)) == len(ids), f"{model.uid}: panel ids repeat"
        for panel in model.panels:
            position = panel.grid_pos
            assert position.x + position.w <= 24, f"{model.uid}/{panel.title} overflows the grid"
            if panel.type_val == "row":
                continue
            assert panel.datasource.uid == DATASOURCE_UID, panel.title
            assert panel.targets, f"{model.uid}/{panel.title} has no query"
            assert panel.description, f"{model.uid}/{panel.title} does not say what it shows"
            refs = [target.ref_id for target in panel.targets]
            assert len(set(refs)) == len(refs), panel.title
            assert all(target.datasource.uid == DATASOURCE_UID for target in panel.targets), panel.title


def test_queries_name_only_real_scrape_jobs(stack: Rendered) -> None:
    jobs = {job.job for job in (*POD_JOBS, BACKUP_JOB, MIRROR_JOB)} | {"prometheus", "kubelet", "kubelet-cadvisor"}
    for found in expressions(settings_of(stack)):
        assert label_values(found.expr, "job") <= jobs, found.where


def test_node_metrics_pass_the_scrape_filter(stack: Rendered) -> None:
    """The kubelet jobs keep only listed series: a panel must not use one they drop."""
    for found in expressions(settings_of(stack)):
        for name in metric_names(found.expr):
            if name.startswith("container_"):
                assert name in CADVISOR_METRICS, f"{found.where}: {name} is dropped by the kubelet-cadvisor job"
            if name.startswith("kubelet_"):
                assert name in KUBELET_METRICS, f"{found.where}: {name} is dropped by the kubelet job"


def test_recorded_series_used_by_panels_are_recorded(stack: Rendered) -> None:
    settings = settings_of(stack)
    recorded = {r.record for r in recordings(settings)}
    for found in expressions(settings):
        derived = {name for name in metric_names(found.expr) if ":" in name}
        assert derived <= recorded, f"{found.where}: {derived - recorded} is not a recording rule"


def grafana_files(stack: Rendered) -> tuple[dict, dict]:
    """The Grafana ConfigMap's files by the path the pod sees them at, and the Grafana pod spec."""
    spec = pod_spec(stack.named("Deployment", names.GRAFANA))
    (container,) = spec["containers"]
    data = stack.named("ConfigMap", names.GRAFANA).inputs["data"]
    files = {m["mountPath"]: data[m["subPath"]] for m in container["volumeMounts"] if m["name"] == "config"}
    assert set(files.values()) == set(data.values()), "every file of the ConfigMap is mounted"
    return files, spec


def grafana_ini(files: dict) -> configparser.ConfigParser:
    """grafana.ini as the pod mounts it, parsed."""
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(files["/etc/grafana/grafana.ini"])
    return ini


def test_grafana_is_provisioned_with_prometheus_and_the_dashboards(stack: Rendered) -> None:
    settings = settings_of(stack)
    files, spec = grafana_files(stack)
    ini = grafana_ini(files)
    provisioning = ini["paths"]["provisioning"]
    (source,) = yaml.safe_load(files[f"{provisioning}/datasources/datasources.yaml"])["datasources"]
    assert source["uid"] == DATASOURCE_UID and source["type"] == "prometheus" and source["isDefault"]
    assert source["url"] == f"http://{names.service_host(names.PROMETHEUS, settings.namespace)}:9090"
    (provider,) = yaml.safe_load(files[f"{provisioning}/dashboards/dashboards.yaml"])["providers"]
    assert provider["type"] == "file" and provider["disableDeletion"] and not provider["allowUiUpdates"]
    (container,) = spec["containers"]
    mounted = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volume = {v["name"]: v for v in spec["volumes"]}[mounted[provider["options"]["path"]]]
    board_map = stack.named("ConfigMap", volume["configMap"]["name"])
    assert board_map.inputs["data"] == dashboard_files(settings)


def test_grafana_needs_a_password_from_its_secret(stack: Rendered) -> None:
    files, spec = grafana_files(stack)
    ini = grafana_ini(files)
    assert ini["auth.anonymous"]["enabled"] == "false"
    assert ini["users"]["allow_sign_up"] == "false"
    password = ini["security"]["admin_password"]
    assert password == f"$__file{{{Paths().admin_password_file}}}", "read from a file, never written here"
    directory, file_name = password.removeprefix("$__file{").removesuffix("}").rsplit("/", 1)
    (container,) = spec["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == directory]
    secret = {v["name"]: v for v in spec["volumes"]}[mount["name"]]["secret"]
    assert secret["secretName"] == GRAFANA_ADMIN_SECRET
    assert [item["path"] for item in secret["items"]] == [file_name]
    assert not container.get("env"), "no credential in the environment"


def test_the_dashboards_fit_in_their_config_map(stack: Rendered) -> None:
    data = stack.named("ConfigMap", f"{names.GRAFANA}-dashboards").inputs["data"]
    assert sum(len(text.encode()) for text in data.values()) < 1024 * 1024, "a ConfigMap holds at most 1 MiB"
