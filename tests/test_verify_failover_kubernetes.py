"""verify failover's Kubernetes and Chaos Mesh injectors, cleanup and CLI, against recorded API behaviour.

tests/fake_chaos_cluster.py answers as the API server and the controllers do (pods replaced after a
delete, Chaos Mesh objects validated against the CRD schemas and finalized, an HPA on a timeline).
The end-to-end runs probe the real Presto; the fake's pod deletes do not reach it, so there the
figures show a fault Presto never felt: what is tested is the injection, the waits and the cleanup.
"""

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from clickhouse_server import ClickHouseNode
from fake_chaos_cluster import Writable, fake_writable_api
from fake_kubernetes import FakeCluster, pod_name
from kafka_server import KafkaNode
from presto_server import PrestoCluster
from verify_harness import by_name, outputs_document, run_verify, verify

from components import names
from components.settings import Settings
from components.stack_files import REPO
from render import Rendered
from verify import cluster, failover_injectors
from verify.chaos_manifests import RUN_LABEL
from verify.checks import Cleanup, Context
from verify.cli import exit_code
from verify.errors import UsageError
from verify.exit_codes import ExitCode
from verify.failover_autoscaling import ScalePlan, autoscaling
from verify.failover_injectors import ChaosMeshInjector, CleanupError, KubernetesInjector
from verify.failover_scenarios import BY_NAME, SCENARIOS
from verify.runner import Redactor, clean_up
from verify.targets import targets_from

RUN = "20261124050000-abcdef"


@dataclass
class Api:
    """The writable fake cluster, its kubeconfig, and a verify client of it."""

    writable: Writable
    kubeconfig: Path
    cluster: cluster.Cluster


@pytest.fixture
def api(tmp_path: Path, rendered_stacks: dict[str, Rendered], dev_settings: Settings) -> Iterator[Api]:
    """The dev stack, rolled out in a fake cluster that has Chaos Mesh."""
    writable = Writable(FakeCluster.healthy(rendered_stacks["dev"]), restart_seconds=0.5)
    with fake_writable_api(writable, tmp_path) as kubeconfig:
        yield Api(writable, kubeconfig, cluster.connect(str(kubeconfig), None, dev_settings.namespace))
    assert writable.cluster.forbidden == [], "verify needs nothing its Role does not grant"


def test_the_kubernetes_injector_deletes_a_ready_pod_at_once_and_waits_for_its_replacement(api: Api) -> None:
    injector, fault = KubernetesInjector(api.cluster), BY_NAME["worker-kill"].fault_for(None)
    assert injector.method(fault) == "kubernetes pod delete"
    worker = pod_name("Deployment", names.PRESTO_WORKER)
    assert injector.inject(fault) == f"deleted pod {worker} (grace period 0)"
    assert api.writable.deleted_pods == [(worker, "0")]
    assert not injector.ready(fault), "the replacement is not ready yet"
    time.sleep(0.6)
    assert injector.ready(fault)


def test_the_kubernetes_api_cannot_express_a_partition_or_a_stress(api: Api) -> None:
    injector = KubernetesInjector(api.cluster)
    for scenario in SCENARIOS:
        expressible = injector.method(scenario.fault_for(None)) is not None
        assert expressible == (scenario.fault.kind == "pod-kill"), scenario.name


def test_chaos_mesh_is_used_only_where_its_api_is_served(api: Api) -> None:
    assert failover_injectors.installed(api.cluster)
    api.writable.chaos_mesh = False
    assert not failover_injectors.installed(api.cluster)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_each_fault_becomes_valid_chaos_mesh_experiments_removed_when_it_ends(api: Api, scenario) -> None:
    injector = ChaosMeshInjector(api.cluster, RUN)
    fault = scenario.fault_for(None)
    text = injector.inject(fault)  # the fake refuses (422) what the CRD schemas do not allow
    created = api.writable.created
    assert len(created) == len(scenario.fault.workloads) and text.startswith("created ")
    assert all(c["metadata"]["labels"][RUN_LABEL] == RUN for c in created)
    assert all(c["spec"]["selector"]["namespaces"] == [api.cluster.namespace] for c in created)
    injector.end(fault)
    injector.remove_all()  # waits until Chaos Mesh has finalized them
    assert all(not objects for objects in api.writable.custom.values()), api.writable.custom


def test_an_experiment_that_cannot_be_removed_fails_cleanup_and_the_run_exits_5(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(failover_injectors, "REMOVE_WAIT", 1.0)
    injector = ChaosMeshInjector(api.cluster, RUN)
    fault = BY_NAME["presto-clickhouse-partition"].fault_for(None)
    injector.inject(fault)
    api.writable.stuck = {c["metadata"]["name"] for c in api.writable.created}
    with pytest.raises(CleanupError, match="networkchaos/verify-"):
        injector.remove_all()
    cleanup = Cleanup()
    cleanup.add(f"fault objects of run {RUN}", injector.remove_all)
    record = clean_up(cleanup, Redactor([]))
    assert record.status == "failed" and "still present" in str(record.error)
    assert exit_code([record], interrupted=False) == ExitCode.CLEANUP


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
    for flag, value in (("--probe-interval", "0.5"), ("--scale-schema", "sf0")):
        bad = verify(
            "failover", "--allow-destructive", flag, value, "--outputs", str(outputs), kubeconfig=api.kubeconfig
        )
        assert bad.returncode == ExitCode.USAGE and f"{flag} {value}:" in bad.stderr, bad.stderr
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


def test_a_service_account_without_a_token_is_a_usage_error_naming_it(api: Api, dev_settings: Settings) -> None:
    operator = str(api.kubeconfig.with_name("kubeconfig-operator"))
    with pytest.raises(
        UsageError,
        match=rf"--service-account nobody: the API refused a token for {dev_settings.namespace}/nobody \(404",
    ):
        cluster.connect(operator, None, dev_settings.namespace, "nobody")
