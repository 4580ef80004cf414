"""verify failover end to end through the fake Kubernetes API, probing the real servers.

tests/support/fakes/chaos_cluster.py answers as the API server and the controllers do; the probes and queries
reach the real Presto, ClickHouse and Kafka. The fake's pod deletes do not reach Presto, so the figures show a
fault Presto never felt: what is tested is the injection, the waits and the cleanup.
"""

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components import names
from components.settings.model import Settings
from components.settings.stack_files import REPO
from tests.support.fakes.chaos_cluster import Api
from tests.support.fakes.kubernetes import pod_name
from tests.support.servers.clickhouse import ClickHouseNode, start_clickhouse
from tests.support.servers.kafka import KafkaNode
from tests.support.servers.presto import PrestoCluster
from tests.support.verify_harness import by_name, outputs_document, run_verify, verify
from verify.core.checks import Cleanup, Context
from verify.core.exit_codes import ExitCode
from verify.core.targets import targets_from
from verify.failover.autoscaling import autoscaling
from verify.failover.injectors import ChaosMeshInjector
from verify.failover.plan import ScalePlan

RUN = "20261124050000-abcdef"


def test_the_workers_autoscaler_is_watched_out_and_back_in_under_queries(
    api: Api, document: dict, dev_settings: Settings
) -> None:
    api.writable.hpa_timeline = [(0, 1, 1), (1.0, 1, 2), (2.0, 2, 2), (4.0, 2, 1), (5.0, 1, 1)]
    context = Context(RUN, targets_from("test", document), Cleanup())
    injector = ChaosMeshInjector(api.cluster, RUN)
    figures = autoscaling(context, api.cluster, injector, ScalePlan(poll=0.25))
    assert figures["driver"] == "Chaos Mesh StressChaos on every worker"
    assert [c["kind"] for c in api.writable.created] == ["StressChaos"]
    assert figures["replicas_before"] == 1 and figures["replicas_peak"] == 2
    assert figures["timeline"].count(":") == 3, figures["timeline"]
    assert figures["scale_out_s"] >= 0 and figures["scale_in_s"] > 0
    assert figures["queries_during_scale_in"] > 0 and figures["failed_during_scale_in"] == 0
    assert figures["stabilization_s"] == dev_settings.presto.workers.scale_down_stabilization_seconds


@pytest.fixture
def document(
    dev_settings: Settings, presto: PrestoCluster, clickhouse_node: ClickHouseNode, kafka_node: KafkaNode
) -> dict:
    """Stack outputs pointing verify at the real servers (reached directly, not port-forwarded)."""
    return outputs_document(dev_settings, presto, clickhouse_node, kafka_node, "events", "http://127.0.0.1:9", "")


def test_failover_needs_consent_and_the_kubernetes_api(api: Api, document: dict, tmp_path: Path) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(document))
    refused = verify("failover", "--outputs", str(outputs), kubeconfig=api.kubeconfig)
    assert refused.returncode == ExitCode.USAGE and "--allow-destructive" in refused.stderr
    blind = verify("failover", "--allow-destructive", "--outputs", str(outputs))
    assert blind.returncode == ExitCode.USAGE and "--no-kubernetes" in blind.stderr
    for flag, value in (("--probe-interval", "0.5"), ("--settle", "0.2"), ("--scale-schema", "sf0")):
        bad = verify(
            "failover", "--allow-destructive", flag, value, "--outputs", str(outputs), kubeconfig=api.kubeconfig
        )
        assert bad.returncode == ExitCode.USAGE and f"{flag} {value}:" in bad.stderr, bad.stderr
    assert not api.writable.deleted_pods and not api.writable.created


def test_plan_lists_the_failover_checks_and_their_parameters_without_consent_or_faults(
    api: Api, document: dict, tmp_path: Path
) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(document))
    args = (
        "plan",
        "failover",
        "--scenario",
        "worker-kill",
        "--hold",
        "7",
        "--injector",
        "kubernetes",
        "--settle",
        "45",
    )
    result = verify(*args, "--outputs", str(outputs), kubeconfig=api.kubeconfig)
    assert result.returncode == ExitCode.PASSED, result.stderr
    assert "failover.worker-kill" in result.stdout and "failover.kafka-kill" not in result.stdout
    assert "failover.hold = 7.0" in result.stdout and "nothing was run" in result.stdout
    assert "failover.settle = 45.0" in result.stdout
    assert not api.writable.deleted_pods and not api.writable.created


@pytest.mark.parametrize("identity", ["verify's kubeconfig", "an operator's, --service-account verify"])
def test_a_worker_kill_through_the_kubernetes_api_reports_its_method_and_pods_ready(
    api: Api, document: dict, tmp_path: Path, identity: str
) -> None:
    as_operator = identity.startswith("an operator")
    kubeconfig = api.kubeconfig.with_name("kubeconfig-operator") if as_operator else api.kubeconfig
    args = (
        *(("--service-account", names.VERIFY) if as_operator else ()),
        "failover",
        "--allow-destructive",
        "--scenario",
        "worker-kill",
        "--injector",
        "kubernetes",
        "--baseline",
        "1",
    )
    code, report, _ = run_verify(document, tmp_path, *args, kubeconfig=kubeconfig)
    found = by_name(report)["failover.worker-kill"]
    assert code == ExitCode.PASSED, found
    assert found["figures"]["method"] == "kubernetes pod delete"
    assert found["figures"]["pods_ready_s"] >= 0.5, "the fake's replacement turns ready after 0.5 s"
    assert found["figures"]["ttr_s"] == 0, "the fake's delete never reached the real Presto"
    assert [name for name, _ in api.writable.deleted_pods] == [pod_name("Deployment", names.PRESTO_WORKER)]
    token_request = f"POST /api/v1/namespaces/{document['namespace']}/serviceaccounts/{names.VERIFY}/token"
    assert api.writable.cluster.by_operator == ([token_request] if as_operator else [])


def test_sigterm_during_a_partition_removes_its_experiments_before_exit(
    api: Api, document: dict, tmp_path: Path
) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(document))
    command = [sys.executable, "-m", "verify", "failover", "--allow-destructive", "--outputs", str(outputs)]
    command += ["--scenario", "presto-clickhouse-partition", "--baseline", "1", "--hold", "300", "--no-alerts"]
    command += ["--kubeconfig", str(api.kubeconfig), "--report-dir", str(tmp_path / "reports")]
    running = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not api.writable.created:
        assert running.poll() is None, running.stderr.read() if running.stderr else ""
        assert time.monotonic() < deadline, "no experiment was created"
        time.sleep(0.2)
    running.send_signal(signal.SIGTERM)
    assert running.wait(60) == ExitCode.HARNESS
    report = json.loads((tmp_path / "reports" / "verify-report.json").read_text())
    assert by_name(report)["cleanup"]["status"] == "passed"
    assert [c["kind"] for c in api.writable.created] == ["NetworkChaos", "NetworkChaos"]
    assert all(not objects for objects in api.writable.custom.values()), "every experiment removed"


def test_a_hung_clickhouse_never_steady_fails_its_scenario_with_the_probe_history_and_no_fault(
    api: Api, document: dict, dev_settings: Settings, tmp_path: Path
) -> None:
    node = start_clickhouse(dev_settings, tmp_path / "clickhouse")
    hung = {**document, "clickhouseUrl": node.http, "clickhouseNativeAddress": f"127.0.0.1:{node.ports.native}"}
    node.server.pause()  # SIGSTOP: connections are accepted and never answered
    try:
        outputs = tmp_path / "outputs.json"
        outputs.write_text(json.dumps(hung))
        args = ("failover", "--allow-destructive", "--scenario", "clickhouse-kill", "--injector", "kubernetes")
        args += ("--settle", "6", "--probe-timeout", "0.5", "--no-alerts", "--converge-timeout", "5")
        result = verify(
            *args, "--outputs", str(outputs), "--report-dir", str(tmp_path / "reports"), kubeconfig=api.kubeconfig
        )
    finally:
        node.server.stop()
    report = json.loads((tmp_path / "reports" / "verify-report.json").read_text())
    found, cleanup = by_name(report)["failover.clickhouse-kill"], by_name(report)["cleanup"]
    assert found["status"] == "failed", found
    # The producer ran meanwhile; the run's rows cannot be deleted from a hung ClickHouse, and verify says so.
    assert result.returncode == ExitCode.CLEANUP and "ClickHouse rows of run" in cleanup["error"], cleanup
    error = found["error"]
    assert error.startswith("not in a steady state before the fault: 5 probes in a row did not pass within 6s"), error
    assert re.search(r": \d+ probes, 0 passed, \d+ failed, at most 0 in a row passed; last errors: ", error), error
    assert "TimeoutError: no answer within 0.5s (" in error, error
    figures = found["figures"]
    assert figures["settle_s"] == 6 and figures["settle_probes"] == figures["settle_failed_probes"] >= 5, figures
    assert "failover.clickhouse-kill: waiting for 5 passing probes in a row, 5s of 6s: " in result.stderr, result.stderr
    assert not api.writable.deleted_pods, "no fault is injected into a service that was not steady"
