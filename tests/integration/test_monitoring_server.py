"""The stack's prometheus.yml, rules and alertmanager.yml on the real tools and servers.

promtool, amtool, Prometheus and Alertmanager come from Debian's packages: Prometheus 2.42 and
Alertmanager 0.25, where the images are 2.53 and 0.27.

Debian builds Prometheus without Kubernetes service discovery, so its promtool rejects the in-cluster
prometheus.yml at its first kubernetes_sd_configs: the in-cluster form is checked by promtool 2.53.4,
the image's version, built from the Go module proxy (scripts/servers/install-promtool), and Debian's
promtool and Prometheus run the same function's static form (same jobs, relabelling, rules and
alerting, fixed targets on loopback).

prod's alerting runs as it is deployed: three Alertmanagers clustered on loopback with the pods' own
flags (the ports differ per process, the addresses are 127.0.0.1), and two Prometheus replicas, each
with its pod name, sending to all three; the notifications land on a webhook the test serves.
"""

import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

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
from tests.support.render import shipped_settings
from tests.support.servers.kafka import KafkaNode
from tests.support.servers.process import ServerProcess, free_ports
from tests.support.servers.prometheus import (
    AMTOOL,
    PROMTOOL,
    PROMTOOL_2_53,
    AlertmanagerCluster,
    Monitoring,
    Webhook,
    get_json,
    run_tool,
    start_alertmanager,
    start_alertmanager_cluster,
    start_prometheus,
)


@pytest.fixture(params=("dev", "prod", "dr"))
def stack_name(request: pytest.FixtureRequest) -> str:
    """Each shipped stack's name (conftest's `stack` is the rendered stack)."""
    return request.param


@pytest.fixture
def settings(stack_name: str) -> Settings:
    """The stack's settings."""
    return shipped_settings(stack_name)


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
    routed = shipped_settings(stack_name, hook)
    for name, config in (("default.yml", alertmanager_config(settings)), ("routed.yml", alertmanager_config(routed))):
        (tmp_path / name).write_text(config)
        checked = run_tool(AMTOOL, "check-config", name, cwd=tmp_path)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def clickhouse_down_at_once(settings: Settings) -> str:
    """The rule file, but ClickHouseDown fires at once (test-only: its promtool test covers its 2-minute wait)."""
    rules = yaml.safe_load(rule_file(settings))
    for rule in rules["groups"][1]["rules"]:
        if rule["alert"] == "ClickHouseDown":
            rule["for"] = "0s"
    return yaml.safe_dump(rules)


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
    config = prometheus_config(
        settings, rule_files=[RULE_FILE], alertmanagers=[f"127.0.0.1:{alertmanager.port}"], static=static
    )
    prometheus = start_prometheus(config, {RULE_FILE: clickhouse_down_at_once(settings)}, workdir / "prometheus")
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


T = TypeVar("T")
PEER_TIMEOUT = 15
"""Alertmanager's --cluster.peer-timeout (the stack keeps the default): peer n waits n times this before it
notifies, and notifies only if the notification log the peers gossip does not hold the notification yet."""
GROUP_WAIT = 30
"""The routing config's group_wait: a new group's first notification waits this long."""


@dataclass
class Alerting:
    """prod's alerting on loopback: the Alertmanager peers, the Prometheus replicas and the webhook."""

    alertmanagers: AlertmanagerCluster
    prometheus: list[ServerProcess]
    webhook: Webhook


@pytest.fixture(scope="module")
def alerting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alerting]:
    """The three Alertmanagers of prod paging a webhook, and its two Prometheus replicas seeing ClickHouse down."""
    workdir = tmp_path_factory.mktemp("alerting")
    webhook = Webhook()
    overrides = {"monitoring": {"alertmanager": {"receivers": {"critical": webhook.url}}}}
    settings = parse_settings("prod", stack_config("prod", overrides))
    assert settings.monitoring.alertmanager.replicas == 3, "prod runs three Alertmanagers"
    alertmanagers = start_alertmanager_cluster(alertmanager_config(settings), workdir)
    scraping = parse_settings("prod", stack_config("prod", {"monitoring": {"prometheus": {"scrapeInterval": "1s"}}}))
    (nothing_listens,) = free_ports(1)
    config = prometheus_config(
        scraping,
        rule_files=[RULE_FILE],
        alertmanagers=[f"127.0.0.1:{port}" for port in alertmanagers.web_ports],
        static={"clickhouse": [StaticTarget(f"127.0.0.1:{nothing_listens}", "clickhouse-0", "server")]},
    )
    replicas = [
        start_prometheus(config, {RULE_FILE: clickhouse_down_at_once(scraping)}, workdir / pod, pod=pod)
        for pod in (f"prometheus-{ordinal}" for ordinal in range(settings.monitoring.prometheus.replicas))
    ]
    yield Alerting(alertmanagers, replicas, webhook)
    for server in replicas:
        server.stop()
    alertmanagers.stop()
    webhook.close()


def eventually(probe: Callable[[], T], deadline: float, what: str) -> T:
    """Poll probe every second until it returns something truthy; fail naming what never happened."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if found := probe():
            return found
        time.sleep(1)
    raise AssertionError(f"{what} within {deadline:.0f} s")


def held(alerting: Alerting, index: int, alertname: str) -> list[dict]:
    """The alerts of one name that Alertmanager peer index holds."""
    query = urllib.parse.urlencode({"filter": f'alertname="{alertname}"'})
    path = f"/api/v2/alerts?{query}"
    return alerting.alertmanagers.api(index, path)


def test_the_alertmanagers_form_one_cluster(alerting: Alerting) -> None:
    def settled() -> list[dict]:
        statuses = [alerting.alertmanagers.api(i, "/api/v2/status")["cluster"] for i in range(3)]
        return statuses if all(s["status"] == "ready" and len(s["peers"]) == 3 for s in statuses) else []

    statuses = eventually(settled, 60, "three Alertmanagers settled into one cluster of three")
    assert len({s["name"] for s in statuses}) == 3


def test_each_prometheus_replica_labels_its_series_with_its_pod_and_sends_to_every_alertmanager(
    alerting: Alerting,
) -> None:
    wanted = {f"http://127.0.0.1:{port}/api/v2/alerts" for port in alerting.alertmanagers.web_ports}
    for server in alerting.prometheus:
        base = f"http://127.0.0.1:{server.port}"
        active = get_json(f"{base}/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
        assert {a["url"] for a in active} == wanted, f"{server.name}:{server.port} sends to {active}"
        pod = server.env["POD_NAME"]
        federated = eventually(
            lambda base=base: urllib.request.urlopen(f"{base}/federate?match[]=up", timeout=10).read().decode(),
            30,
            f"{pod} federating its up series",
        )
        assert f'replica="{pod}"' in federated, f"{pod}: {federated}"


def test_both_replicas_alert_is_held_by_every_alertmanager_as_one(alerting: Alerting) -> None:
    for index in range(3):
        alerts = eventually(lambda i=index: held(alerting, i, "ClickHouseDown"), 60, f"ClickHouseDown in peer {index}")
        (alert,) = alerts
        assert "replica" not in alert["labels"], f"peer {index}: {alert['labels']}"
        assert alert["labels"]["severity"] == "critical"


def test_the_cluster_notifies_the_replicas_alert_exactly_once(alerting: Alerting) -> None:
    eventually(lambda: alerting.webhook.notifications("ClickHouseDown"), GROUP_WAIT + 60, "ClickHouseDown notified")
    # Every peer has had its turn: the last waits two peer timeouts, then finds the notification logged.
    time.sleep(2 * PEER_TIMEOUT + 10)
    (notification,) = alerting.webhook.notifications("ClickHouseDown")
    # One firing alert from both replicas (their `replica` label dropped); the firing-at-once rule may add its
    # absent() form, resolved by the first scrape.
    firing = [a["labels"] for a in notification["alerts"] if a["status"] == "firing"]
    assert len(firing) == 1 and "replica" not in firing[0], notification["alerts"]


def test_a_silence_set_on_one_alertmanager_is_held_by_every_peer(alerting: Alerting) -> None:
    now = time.time()
    silence = {
        "matchers": [{"name": "alertname", "value": "NothingFiresThis", "isRegex": False, "isEqual": True}],
        "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600)),
        "createdBy": "test",
        "comment": "gossiped to every peer",
    }
    created = alerting.alertmanagers.post(1, "/api/v2/silences", silence)
    assert created, "Alertmanager answers with the silence's id"
    for index in (0, 2):
        eventually(
            lambda i=index: [
                s for s in alerting.alertmanagers.api(i, "/api/v2/silences") if s["id"] == created["silenceID"]
            ],
            30,
            f"the silence on peer {index}",
        )


def test_with_one_alertmanager_killed_an_alert_is_notified_exactly_once(alerting: Alerting) -> None:
    alerting.alertmanagers.peers[0].kill()
    alert = {"labels": {"alertname": "PeerLost", "namespace": "query-engine", "severity": "critical"}}
    for index in (1, 2):  # as every Prometheus does: to every Alertmanager it can reach
        alerting.alertmanagers.post(index, "/api/v2/alerts", [alert])
    eventually(lambda: alerting.webhook.notifications("PeerLost"), GROUP_WAIT + 60, "PeerLost notified")
    time.sleep(2 * PEER_TIMEOUT + 10)
    assert len(alerting.webhook.notifications("PeerLost")) == 1, alerting.webhook.notifications("PeerLost")
    assert len(alerting.webhook.notifications("ClickHouseDown")) == 1, "a peer's loss notifies nothing again"


def test_a_restarted_alertmanager_gets_the_silences_back_from_its_peers(alerting: Alerting) -> None:
    silences = {s["id"] for s in alerting.alertmanagers.api(1, "/api/v2/silences")}
    assert silences, "the silence test left one"
    alerting.alertmanagers.start(0, fresh=True)  # an empty data directory, as a new pod's emptyDir
    eventually(
        lambda: silences <= {s["id"] for s in alerting.alertmanagers.api(0, "/api/v2/silences")},
        60,
        "the restarted peer holding the cluster's silences",
    )
