"""What the verify tests share: the stack outputs of the local servers, a fake Grafana API, running the CLI.

Grafana cannot run on this machine: FakeGrafana answers the three API calls verify makes, as
Grafana 11 does, so that only verify's client side of the Grafana checks is tested.
"""

import base64
import json
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import requests

from components.data.kafka.config import CLICKHOUSE_PRINCIPAL, VERIFY_PRINCIPAL
from components.expectations import expectations
from components.observability.prometheus.alert_rules import RULE_FILE, rule_file
from components.observability.prometheus.config import StaticTarget, prometheus_config
from components.settings.model import Settings
from components.settings.stack_files import REPO
from tests.support.fakes.local_injector import LocalInjector
from tests.support.servers.clickhouse import ClickHouseNode
from tests.support.servers.kafka import KafkaNode
from tests.support.servers.presto import USERS, PrestoCluster
from tests.support.servers.process import ServerProcess, free_ports
from tests.support.servers.prometheus import start_prometheus
from verify.core.checks import CheckFailedError, CheckSkippedError, Cleanup, Context, Figures
from verify.core.runner import Redactor, clean_up
from verify.core.targets import Targets
from verify.failover.checks import run_scenario
from verify.failover.plan import FailoverPlan
from verify.failover.scenarios import BY_NAME

GRAFANA_PASSWORD = "grafana-test-password-0123456789"


class JsonHandler(BaseHTTPRequestHandler):
    """A quiet request handler that answers JSON."""

    def _json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        """Quiet."""


class FakeGrafana(JsonHandler):
    """Answers the three Grafana API calls verify makes, as Grafana 11 does, behind basic auth."""

    dashboards: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        """Serve health, datasource health and dashboard search."""
        if self.path == "/api/health":
            return self._json(200, {"database": "ok", "version": "11.3.1"})
        expected = "Basic " + base64.b64encode(f"admin:{GRAFANA_PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            return self._json(401, {"message": "Unauthorized"})
        if self.path == "/api/datasources/uid/prometheus/health":
            return self._json(200, {"status": "OK", "message": "Successfully queried the Prometheus API."})
        if self.path.startswith("/api/search"):
            return self._json(200, [{"uid": uid, "type": "dash-db"} for uid in self.dashboards])
        return self._json(404, {"message": "Not found"})


@contextmanager
def fake_grafana_api(settings: Settings) -> Iterator[str]:
    """Serve FakeGrafana with the stack's dashboard uids on 127.0.0.1; yield its URL."""
    FakeGrafana.dashboards = expectations(settings)["dashboards"]
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGrafana)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def outputs_document(
    settings: Settings,
    presto: PrestoCluster | None,
    clickhouse: ClickHouseNode,
    kafka: KafkaNode | None,
    topic: str,
    prometheus_url: str,
    grafana_url: str,
    objects: dict[str, list[str]] | None = None,
) -> dict:
    """The stack's outputs as `pulumi stack output --json --show-secrets` gives them, for the local servers.

    Without a Presto, its URL is a closed port and its CA empty; without a Kafka, its bootstrap is a closed port.
    """
    kafka_passwords = kafka.passwords if kafka else {}
    return {
        "namespace": settings.namespace,
        "prestoUrl": f"https://localhost:{presto.clients.port if presto else 9}",
        "prestoCaCertificate": presto.clients.tls.ca_crt.read_text() if presto else "",
        "clickhouseUrl": clickhouse.http,
        "clickhouseNativeAddress": f"127.0.0.1:{clickhouse.ports.native}",
        "kafkaBootstrap": kafka.bootstrap if kafka else "127.0.0.1:9",
        "kafkaAuthentication": "scram" if kafka_passwords else "none",
        "kafkaTopic": topic,
        "prometheusUrl": prometheus_url,
        "grafanaUrl": grafana_url,
        "credentials": {
            "prestoAnalystPassword": USERS["analyst"],
            "clickhouseAdminPassword": clickhouse.passwords["admin"],
            "clickhousePrestoPassword": clickhouse.passwords["presto"],
            "grafanaAdminPassword": GRAFANA_PASSWORD,
            **(
                {
                    "kafkaVerifyPassword": kafka_passwords[VERIFY_PRINCIPAL],
                    "kafkaClickhousePassword": kafka_passwords[CLICKHOUSE_PRINCIPAL],
                }
                if kafka_passwords
                else {}
            ),
        },
        "expected": {
            **expectations(settings),
            "scrapeJobs": ["prometheus", "kafka", "presto"],
            "objects": objects or {},
        },
    }


def clickhouse_outputs(settings: Settings, clickhouse: ClickHouseNode, kafka: KafkaNode) -> dict:
    """The stack's outputs for a ClickHouse cluster reached through one server, and its Kafka; no Presto here.

    Presto, Prometheus and Grafana point at a closed port: only checks of ClickHouse and Kafka can pass.
    """
    closed = "http://127.0.0.1:9"
    return outputs_document(settings, None, clickhouse, kafka, settings.kafka.topic.name, closed, closed)


def verify(*args: str, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run verify as an SRE would, from the repository root; without a kubeconfig, with --no-kubernetes."""
    cluster = ["--kubeconfig", str(kubeconfig)] if kubeconfig else ["--no-kubernetes"]
    return subprocess.run(
        [sys.executable, "-m", "verify", *args, *cluster],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def run_verify(document: dict, tmp_path: Path, *args: str, kubeconfig: Path | None = None) -> tuple[int, dict, float]:
    """Run verify with these outputs: its exit code, its JSON report and its wall time; the JUnit file must parse."""
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(document))
    reports = tmp_path / "reports"
    began = time.monotonic()
    result = verify(*args, "--outputs", str(outputs), "--report-dir", str(reports), kubeconfig=kubeconfig)
    seconds = time.monotonic() - began
    ET.parse(reports / "junit.xml")  # the JUnit file parses, whatever happened
    return result.returncode, json.loads((reports / "verify-report.json").read_text()), seconds


def by_name(report: dict) -> dict[str, dict]:
    """The report's checks by name."""
    return {check["name"]: check for check in report["checks"]}


def start_local_prometheus(
    settings: Settings, kafka: KafkaNode, presto: PrestoCluster, workdir: Path
) -> tuple[ServerProcess, str]:
    """A real Prometheus with the stack's config and rules, scraping the real Kafka and Presto exporters.

    It has scraped every target once when this returns, so the targets check can pass.
    """
    static = {
        "kafka": [StaticTarget(f"127.0.0.1:{kafka.metrics_port}", "kafka-0", "broker")],
        "presto": [StaticTarget(f"127.0.0.1:{presto.exporter.port}", "presto-coordinator-0", "coordinator")],
    }
    (port,) = free_ports(1)
    config = prometheus_config(
        settings, rule_files=[RULE_FILE], alertmanagers=[], static=static, itself=f"127.0.0.1:{port}"
    )
    server = start_prometheus(config, {RULE_FILE: rule_file(settings)}, workdir, port)
    url = f"http://127.0.0.1:{port}"
    # Each target's first scrape comes at an offset of its own within the interval: wait for all of them
    # (a minute at most: a busy machine starts Prometheus and answers its first scrapes slowly).
    deadline = time.monotonic() + 60
    while not every_target_scraped(url):
        if time.monotonic() > deadline:
            tail = server.tail()
            server.stop()
            raise AssertionError(f"Prometheus has not scraped every target:\n{tail}")
        time.sleep(0.5)
    return server, url


def every_target_scraped(url: str) -> bool:
    """Whether Prometheus has scraped each of its active targets at least once."""
    answer = requests.get(f"{url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
    return bool(answer) and all(not target["lastScrape"].startswith("0001-") for target in answer)


def run_local_scenario(targets: Targets, name: str, injector: LocalInjector, plan: FailoverPlan) -> Figures:
    """Run one of verify's scenarios in process with a local injector; its figures, after its cleanup ran.

    Whatever happens, the fault is ended, so the servers are whole for the next test; a scenario that
    fails (or skips) fails the test with its figures, and one past its deadline is reported as hung.
    """
    scenario = BY_NAME[name]
    context = Context("t" + name.replace("-", "")[:8], targets, Cleanup())
    outcome: dict[str, object] = {}

    def body() -> None:
        try:
            outcome["figures"] = run_scenario(context, scenario, injector, plan)
        except (CheckFailedError, CheckSkippedError) as failure:
            outcome["failure"] = failure

    worker = threading.Thread(target=body, daemon=True)
    worker.start()
    worker.join(plan.deadline(scenario))
    assert not worker.is_alive(), f"{name} hung past its deadline"
    injector.end(scenario.fault_for(plan.hold))
    cleanup = clean_up(context.cleanup, Redactor([]))
    assert cleanup.status == "passed", cleanup.error
    if "failure" in outcome:
        failure = outcome["failure"]
        pytest.fail(f"{name} did not pass: {failure} {getattr(failure, 'figures', {})}")
    return outcome["figures"]  # type: ignore[return-value]
