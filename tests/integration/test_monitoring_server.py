"""The stack's prometheus.yml, rules and alertmanager.yml on the real tools and servers.

promtool, amtool, Prometheus and Alertmanager come from Debian's packages: Prometheus 2.42 and
Alertmanager 0.25, where the images are 2.53 and 0.27.

Debian builds Prometheus without Kubernetes service discovery, so its promtool rejects the in-cluster
prometheus.yml at its first kubernetes_sd_configs: the in-cluster form is checked by promtool 2.53.4,
the image's version, built from the Go module proxy (scripts/servers/install-promtool), and Debian's
promtool and Prometheus run the same function's static form (same jobs, relabelling, rules and
alerting, fixed targets on loopback).
"""

import time
import urllib.parse
from pathlib import Path

import pytest
import yaml

from components.observability.alertmanager.config import alertmanager_config
from components.observability.grafana.dashboards import dashboards
from components.observability.prometheus.alert_rules import RULE_FILE, alerts, rule_file, rule_tests
from components.observability.prometheus.config import POD_JOBS, StaticTarget, prometheus_config
from components.settings.model import Settings
from components.settings.parse import parse_settings
from components.settings.stack_files import stack_config
from tests.support.promql import expressions
from tests.support.servers.kafka import KafkaNode
from tests.support.servers.process import free_ports
from tests.support.servers.prometheus import (
    AMTOOL,
    PROMTOOL,
    PROMTOOL_2_53,
    Monitoring,
    run_tool,
    start_alertmanager,
    start_prometheus,
)


@pytest.fixture(params=("dev", "prod"))
def stack_name(request: pytest.FixtureRequest) -> str:
    """Each shipped stack's name (conftest's `stack` is the rendered stack)."""
    return request.param


@pytest.fixture
def settings(stack_name: str) -> Settings:
    """The stack's settings."""
    return parse_settings(stack_name, stack_config(stack_name))


def static_targets(port: int) -> dict:
    """One loopback target per pod job."""
    return {job.job: [StaticTarget(f"127.0.0.1:{port}", f"{job.job}-0", job.job)] for job in POD_JOBS}


def test_promtool_checks_the_rules_and_their_unit_tests(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / RULE_FILE).write_text(rule_file(settings))
    (tmp_path / "tests.yml").write_text(rule_tests(settings))
    checked = run_tool(PROMTOOL, "check", "rules", RULE_FILE, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run_tool(PROMTOOL, "test", "rules", "tests.yml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    cases = yaml.safe_load((tmp_path / "tests.yml").read_text())["tests"]
    assert len(cases) == 2 * len(alerts(settings)), "a firing and a silent case for every alert"


def test_promtool_checks_prometheus_yml(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / RULE_FILE).write_text(rule_file(settings))
    config = prometheus_config(
        settings, rule_files=[RULE_FILE], alertmanagers=["127.0.0.1:9093"], static=static_targets(9404)
    )
    (tmp_path / "prometheus.yml").write_text(config)
    checked = run_tool(PROMTOOL, "check", "config", "prometheus.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_images_promtool_checks_the_in_cluster_prometheus_yml(settings: Settings, tmp_path: Path) -> None:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    # Stand-ins for the files Kubernetes mounts in the pod: promtool checks that they exist.
    (account / "token").write_text("token")
    (account / "ca.crt").write_text("ca")
    (tmp_path / RULE_FILE).write_text(rule_file(settings))
    config = prometheus_config(
        settings, rule_files=[RULE_FILE], alertmanagers=["alertmanager:9093"], service_account=str(account)
    )
    (tmp_path / "prometheus.yml").write_text(config)
    checked = run_tool(PROMTOOL_2_53, "check", "config", "prometheus.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "kubernetes_sd_configs" in config


def test_amtool_checks_alertmanager_yml(stack_name: str, settings: Settings, tmp_path: Path) -> None:
    hook = {"monitoring": {"alertmanager": {"receivers": {"critical": "https://pager.example.com/hook"}}}}
    routed = parse_settings(stack_name, stack_config(stack_name, hook))
    for name, config in (("default.yml", alertmanager_config(settings)), ("routed.yml", alertmanager_config(routed))):
        (tmp_path / name).write_text(config)
        checked = run_tool(AMTOOL, "check-config", name, cwd=tmp_path)
        assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.fixture(scope="module")
def monitoring(tmp_path_factory: pytest.TempPathFactory, kafka_node: KafkaNode, dev_settings: Settings) -> Monitoring:
    """Prometheus scraping the real Kafka, a ClickHouse target that is down, and sending to Alertmanager."""
    workdir = tmp_path_factory.mktemp("monitoring")
    alertmanager = start_alertmanager(alertmanager_config(dev_settings), workdir / "alertmanager")
    settings = parse_settings("dev", stack_config("dev", {"monitoring": {"prometheus": {"scrapeInterval": "1s"}}}))
    (nothing_listens,) = free_ports(1)
    static = {
        "kafka": [StaticTarget(f"127.0.0.1:{kafka_node.metrics_port}", "kafka-0", "broker")],
        "clickhouse": [StaticTarget(f"127.0.0.1:{nothing_listens}", "clickhouse-0", "server")],
    }
    rules = yaml.safe_load(rule_file(settings))
    # Test-only: ClickHouseDown waits 2 minutes before it fires; its promtool test covers that wait.
    for rule in rules["groups"][1]["rules"]:
        if rule["alert"] == "ClickHouseDown":
            rule["for"] = "0s"
    config = prometheus_config(
        settings, rule_files=[RULE_FILE], alertmanagers=[f"127.0.0.1:{alertmanager.port}"], static=static
    )
    prometheus = start_prometheus(config, {RULE_FILE: yaml.safe_dump(rules)}, workdir / "prometheus")
    yield Monitoring(prometheus, alertmanager)
    prometheus.stop()
    alertmanager.stop()


def test_every_rule_group_loads_healthy(monitoring: Monitoring) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        groups = monitoring.api("/api/v1/rules")["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        if rules and all("lastEvaluation" in r and not r["lastEvaluation"].startswith("0001") for r in rules):
            break
        time.sleep(1)
    assert {g["name"] for g in groups} == {"qestack-slis", "qestack-alerts"}
    unhealthy = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not unhealthy, unhealthy


def test_the_real_kafka_is_scraped_with_the_pod_labels(monitoring: Monitoring) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        result = monitoring.api(
            '/api/v1/query?query=kafka_controller_kafkacontroller_activecontrollercount{job="kafka"}'
        )
        if result["data"]["result"]:
            break
        time.sleep(1)
    (sample,) = result["data"]["result"]
    assert sample["metric"]["pod"] == "kafka-0" and sample["metric"]["component"] == "broker"
    assert sample["value"][1] == "1"


def test_a_target_that_is_down_pages_through_alertmanager(monitoring: Monitoring) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        held = [a for a in monitoring.alerts_in_alertmanager() if a["labels"]["alertname"] == "ClickHouseDown"]
        if held:
            break
        time.sleep(1)
    assert held, "ClickHouseDown never reached Alertmanager"
    (alert,) = held
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["runbook_url"].endswith("#clickhousedown")
    assert [r["name"] for r in alert["receivers"]] == ["critical"]


def test_every_dashboard_and_rule_expression_runs_on_the_real_prometheus(monitoring: Monitoring) -> None:
    for found in expressions(parse_settings("dev", stack_config("dev"))):
        answer = monitoring.api(f"/api/v1/query?{urllib.parse.urlencode({'query': found.expr})}")
        assert answer["status"] == "success", f"{found.where}: {answer}"


def test_the_kafka_dashboard_shows_the_real_kafka(monitoring: Monitoring) -> None:
    (board,) = [b for b in dashboards(parse_settings("dev", stack_config("dev"))) if b.uid == "qestack-kafka"]
    stats = {panel.title: panel.targets[0].expr for panel in board.panels if panel.type_val == "stat"}
    deadline = time.monotonic() + 30
    while True:
        values = {}
        for title, expr in stats.items():
            result = monitoring.api(f"/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
            values[title] = [float(s["value"][1]) for s in result["data"]["result"]]
        if all(values.values()) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert values["Brokers up"] == [1.0] and values["Active controllers"] == [1.0]
    assert values["Offline partitions"] == [0.0] and values["Under min ISR"] == [0.0]
