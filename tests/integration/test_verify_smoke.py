"""`python -m verify smoke`, run as a subprocess against the real servers on 127.0.0.1.

The stack's outputs file points at the real Presto (HTTPS, the test CA, the generated users), ClickHouse,
Kafka (with the events topic the stack's command created) and a real Prometheus with the stack's rules,
scraping the real Kafka and Presto exporters. Grafana cannot run here: a small fake HTTP server
stands in for its API (health, datasource health, dashboard search), and only the client side of
the Grafana checks is tested against it.
"""

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from components.settings.model import Settings
from tests.support.servers.clickhouse import ClickHouseNode
from tests.support.servers.kafka import KafkaNode
from tests.support.servers.presto import PrestoCluster
from tests.support.verify_harness import outputs_document, start_local_prometheus, verify
from verify.core.checks import CheckFailedError, Cleanup, Context
from verify.core.exit_codes import ExitCode
from verify.core.targets import targets_from
from verify.smoke import kafka


@pytest.fixture
def outputs(
    tmp_path: Path,
    dev_settings: Settings,
    presto: PrestoCluster,
    clickhouse_node: ClickHouseNode,
    kafka_node: KafkaNode,
    events_topic: str,
    fake_grafana: str,
) -> Iterator[Path]:
    """The stack's outputs as `pulumi stack output --json --show-secrets` gives them, for the local servers."""
    # Started afresh for each test: the alerts that fire here (ClickHouseDown: 18.16 has no metrics
    # endpoint) wait 2 minutes first, longer than a smoke run.
    prometheus, url = start_local_prometheus(dev_settings, kafka_node, presto, tmp_path / "prometheus")
    document = outputs_document(dev_settings, presto, clickhouse_node, kafka_node, events_topic, url, fake_grafana)
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(document))
    yield path
    prometheus.stop()


def test_every_smoke_check_passes_on_the_real_servers(outputs: Path, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    result = verify("smoke", "--outputs", str(outputs), "--report-dir", str(reports))
    report = json.loads((reports / "verify-report.json").read_text())
    failed = [(c["name"], c["error"]) for c in report["checks"] if c["status"] != "passed"]
    assert result.returncode == ExitCode.PASSED, f"{failed}\n{result.stderr}"
    names = {c["name"] for c in report["checks"]}
    assert {"presto.tpch", "clickhouse.round_trip", "kafka.round_trip", "prometheus.rules", "cleanup"} <= names
    # The session's Kafka has prod's authentication: verify logs in, and checks that it must.
    assert {"kafka.refuses_anonymous", "kafka.read_only_refuses_writes"} <= names
    assert report["versions"]["clickhouse"] == "18.16.1" and report["versions"]["presto"].startswith("0.287")
    replication = next(c["figures"] for c in report["checks"] if c["name"] == "clickhouse.replication")
    assert replication["servers"] == 1 and replication["replicas"] == 0, "dev: one server, nothing to replicate"
    suites = ET.parse(reports / "junit.xml").getroot()
    assert int(suites.find("testsuite[@name='smoke']").get("tests")) == len(names) - 1
    text = "\n".join(p.read_text() for p in reports.iterdir()) + result.stdout + result.stderr
    secrets = json.loads(outputs.read_text())["credentials"].values()
    assert not [s for s in secrets if s in text], "a credential leaked into a report or the log"


def test_plan_lists_the_checks_and_runs_nothing(outputs: Path, tmp_path: Path) -> None:
    result = verify("plan", "all", "--outputs", str(outputs), "--report-dir", str(tmp_path / "reports"))
    assert result.returncode == ExitCode.PASSED, result.stderr
    assert "presto.tpch" in result.stdout and "nothing was run" in result.stdout
    assert not (tmp_path / "reports").exists()


def test_kafka_refuses_anonymous_fails_where_kafka_answers_without_a_login(
    outputs: Path, kafka_node: KafkaNode
) -> None:
    # Presto's listener is PLAINTEXT: a stack whose client listener answered like it must fail the check.
    document = json.loads(outputs.read_text())
    targets = targets_from("test", {**document, "kafkaBootstrap": kafka_node.presto_bootstrap})
    context = Context("anon", replace(targets, kafka_login=None), Cleanup())
    with pytest.raises(CheckFailedError, match="without a login got the cluster's metadata"):
        kafka.refuses_anonymous(context)
