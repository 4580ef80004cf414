"""verify's Kubernetes side: preflight, the Kubernetes smoke checks and port-forwards, against a fake API server.

No cluster can run here. tests/support/fakes/kubernetes.py serves the rendered dev stack's own objects with the
status a cluster reports (rolled out and ready unless a test changes it), and relays the pod
port-forward websocket to the real Presto, ClickHouse and Kafka: verify reaches them through the Kubernetes
client's port-forward, from the in-cluster addresses the stack exports; Kafka through one forward per broker,
at the loopback port its external listener advertises.
"""

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client

from components import names
from components.data.kafka.config import EXTERNAL_PORT, node_pod
from components.settings.model import Settings
from tests.support.fakes.kubernetes import FakeCluster, fake_api_server, pod_name
from tests.support.render import Rendered
from tests.support.servers.clickhouse import ClickHouseNode
from tests.support.servers.kafka import KafkaNode
from tests.support.servers.presto import PrestoCluster
from tests.support.verify_harness import by_name, outputs_document, run_verify, verify
from verify.core.exit_codes import ExitCode
from verify.kube.checks import connect

IN_CLUSTER = ("prestoUrl", "clickhouseUrl", "clickhouseNativeAddress", "kafkaBootstrap")
"""Endpoints left at their in-cluster addresses, reached through port-forwards."""


@dataclass
class Setting:
    """A fake cluster holding the dev stack, its kubeconfig, and outputs that point verify at it."""

    cluster: FakeCluster
    kubeconfig: Path
    document: dict
    overrides: tuple[str, ...]
    """Flags for the endpoints not forwarded (Prometheus and Grafana)."""
    kafka: KafkaNode
    """The real node behind the fake pod kafka-0's external listener."""


@pytest.fixture
def setting(
    tmp_path: Path,
    rendered_stacks: dict[str, Rendered],
    dev_settings: Settings,
    presto: PrestoCluster,
    clickhouse_node: ClickHouseNode,
    kafka_node: KafkaNode,
    fake_grafana: str,
) -> Iterator[Setting]:
    """The dev stack in a fake cluster whose Presto, ClickHouse and Kafka pods forward to the real servers."""
    rendered = rendered_stacks["dev"]
    cluster = FakeCluster.healthy(rendered)
    coordinator = pod_name("Deployment", names.PRESTO_COORDINATOR)
    clickhouse = pod_name("StatefulSet", names.CLICKHOUSE)
    cluster.backends = {
        (coordinator, names.PRESTO_HTTPS_PORT): presto.clients.port,
        (clickhouse, names.CLICKHOUSE_HTTP_PORT): clickhouse_node.ports.http,
        (clickhouse, names.CLICKHOUSE_NATIVE_PORT): clickhouse_node.ports.native,
        (node_pod(kafka_node.node_id), EXTERNAL_PORT): kafka_node.ports.external,
    }
    document = outputs_document(
        dev_settings,
        presto,
        clickhouse_node,
        kafka_node,
        "events",
        "http://127.0.0.1:9",
        fake_grafana,
        rendered.outputs["expected"]["objects"],
    )
    document |= {key: rendered.outputs[key] for key in IN_CLUSTER}
    overrides = ("--prometheus-url", document["prometheusUrl"], "--grafana-url", fake_grafana)
    with fake_api_server(cluster, tmp_path) as kubeconfig:
        yield Setting(cluster, kubeconfig, document, overrides, kafka_node)


def run_in(setting: Setting, tmp_path: Path, *args: str) -> tuple[int, dict]:
    """Run verify smoke against the fake cluster; the exit code and the JSON report."""
    code, report, _ = run_verify(
        setting.document, tmp_path, "smoke", *setting.overrides, *args, kubeconfig=setting.kubeconfig
    )
    return code, report


def test_the_inventory_lists_every_object_the_stack_declares(stack: Rendered) -> None:
    inventory = stack.outputs["expected"]["objects"]
    for kind, listed in inventory.items():
        declared = sorted(r.inputs["metadata"]["name"] for r in stack.resources if r.kind == kind)
        assert listed == declared, kind
    assert inventory["Deployment"] and inventory["NetworkPolicy"] and inventory["Secret"]


def test_a_ready_stack_passes_preflight_and_is_checked_through_port_forwards(setting: Setting, tmp_path: Path) -> None:
    code, report = run_in(setting, tmp_path, "--tags", "presto,clickhouse,kafka,kubernetes")
    checks = by_name(report)
    assert code == ExitCode.PASSED, [
        (c["name"], c["status"], c["error"]) for c in report["checks"] if c["status"] != "passed"
    ]
    assert checks["kubernetes.preflight"]["figures"] == {"Deployment": 4, "StatefulSet": 4, "Service": 9}
    forwarded = checks["kubernetes.port_forward"]["figures"]
    assert forwarded["presto"].startswith("https://localhost:") and forwarded["clickhouse_native"].startswith("local")
    assert forwarded["kafka"] == f"127.0.0.1:{setting.kafka.external_port}", "the port broker 0 advertises"
    assert "prometheus" not in forwarded, "an endpoint given on the command line is not forwarded"
    assert checks["presto.tpch"]["figures"]["rows"] == 60175, "a real query ran through the port-forward"
    assert checks["clickhouse.round_trip"]["status"] == "passed"
    assert checks["kafka.round_trip"]["status"] == "passed" and checks["kafka.refuses_anonymous"]["status"] == "passed"
    assert checks["kubernetes.hpas"]["figures"] == {"presto-worker.replicas": 1, "presto-worker.desired": 1}
    assert checks["kubernetes.network_policies"]["figures"] == {
        "present": len(setting.cluster.objects["NetworkPolicy"])
    }
    assert setting.cluster.forbidden == [], "verify needs nothing its Role does not grant"


def test_the_pipeline_check_passes_through_verify_s_own_port_forwards(setting: Setting, tmp_path: Path) -> None:
    """From only the stack's in-cluster addresses: Kafka, ClickHouse and Presto reached through forwards."""
    code, report, _ = run_verify(
        setting.document, tmp_path, "pipeline", "--events", "200", *setting.overrides, kubeconfig=setting.kubeconfig
    )
    checks = by_name(report)
    assert code == ExitCode.PASSED, [(c["name"], c["error"]) for c in report["checks"]]
    ingest = checks["pipeline.ingest"]["figures"]
    assert ingest["acked"] == ingest["unique"] == 200 and ingest["lost"] == 0
    assert checks["pipeline.presto"]["figures"]["presto_unique"] == 200
    assert (node_pod(setting.kafka.node_id), EXTERNAL_PORT) in setting.cluster.forwarded
    assert setting.cluster.forbidden == [], "verify needs nothing its Role does not grant"


def test_the_verify_role_may_not_read_secrets(setting: Setting) -> None:
    api = connect(str(setting.kubeconfig), None, setting.document["namespace"]).api
    with pytest.raises(client.exceptions.ApiException) as refused:
        client.CoreV1Api(api).list_namespaced_secret(setting.document["namespace"])
    assert refused.value.status == 403
    with pytest.raises(client.exceptions.ApiException) as refused:
        client.CoreV1Api(api).read_namespaced_secret(names.PRESTO_TLS_SECRET, setting.document["namespace"])
    assert refused.value.status == 403


def test_a_stack_not_rolled_out_exits_3_naming_what_is_missing(setting: Setting, tmp_path: Path) -> None:
    objects = setting.cluster.objects
    objects["StatefulSet"]["kafka"]["status"]["readyReplicas"] = 0
    objects["Deployment"]["grafana"]["metadata"]["generation"] = 2
    del objects["Service"][names.GRAFANA]
    code, report = run_in(setting, tmp_path)
    checks = by_name(report)
    assert code == ExitCode.NOT_READY
    error = checks["kubernetes.preflight"]["error"]
    assert "StatefulSet/kafka: 0/1 replicas ready" in error
    assert "Deployment/grafana: generation 2 not yet observed" in error
    assert f"Service/{names.GRAFANA}: missing" in error
    skipped = [c for c in report["checks"] if c["scenario"] not in ("preflight", "cleanup")]
    assert skipped and all(c["status"] == "skipped" for c in skipped)
    assert checks["cleanup"]["status"] == "passed"


def test_an_autoscaler_without_metrics_and_a_budget_without_room_fail(setting: Setting, tmp_path: Path) -> None:
    worker = setting.cluster.objects["HorizontalPodAutoscaler"][names.PRESTO_WORKER]
    worker["status"]["currentMetrics"] = []
    selector = {"matchLabels": {"app.kubernetes.io/name": names.PRESTO_WORKER}}
    setting.cluster.objects["PodDisruptionBudget"][names.PRESTO_WORKER] = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": names.PRESTO_WORKER, "namespace": setting.document["namespace"]},
        "spec": {"minAvailable": 1, "selector": selector},
        "status": {"currentHealthy": 1, "desiredHealthy": 1, "disruptionsAllowed": 0, "expectedPods": 1},
    }
    setting.document["expected"]["objects"]["PodDisruptionBudget"] = [names.PRESTO_WORKER]
    code, report = run_in(setting, tmp_path, "--tags", "kubernetes")
    checks = by_name(report)
    assert code == ExitCode.FAILED
    assert "no current metrics" in checks["kubernetes.hpas"]["error"]
    assert checks["kubernetes.metrics_api"]["status"] == "passed", "the API serves metrics; the HPA has none yet"
    assert "allows no disruption (1 healthy of 1)" in checks["kubernetes.pdbs"]["error"]
    assert checks["kubernetes.pdbs"]["figures"] == {f"{names.PRESTO_WORKER}.disruptions_allowed": 0}


def test_an_unreachable_api_server_fails_preflight(setting: Setting, tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    kubeconfig = tmp_path / "unreachable"
    kubeconfig.write_text(setting.kubeconfig.read_text().replace(setting_server(setting), f"127.0.0.1:{port}"))
    code, report, _ = run_verify(setting.document, tmp_path, "smoke", kubeconfig=kubeconfig)
    checks = by_name(report)
    assert code == ExitCode.NOT_READY
    assert checks["kubernetes.preflight"]["status"] == "failed" and checks["kubernetes.preflight"]["error"]


def setting_server(setting: Setting) -> str:
    """host:port of the fake API server, as its kubeconfig names it."""
    text = setting.kubeconfig.read_text()
    return text.split("http://", 1)[1].split('"', 1)[0]


def test_verify_uses_the_stack_context_and_a_missing_one_is_a_usage_error(
    setting: Setting, rendered_stacks: dict[str, Rendered], tmp_path: Path
) -> None:
    assert rendered_stacks["dev"].outputs["kubeContext"] == "minikube"
    setting.document["kubeContext"] = "minikube"  # the fake kubeconfig has only "fake"
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(setting.document))
    result = verify("plan", "all", "--outputs", str(outputs), kubeconfig=setting.kubeconfig)
    assert result.returncode == ExitCode.USAGE and "minikube" in result.stderr
    result = verify("plan", "all", "--outputs", str(outputs), "--kube-context", "fake", kubeconfig=setting.kubeconfig)
    assert result.returncode == ExitCode.PASSED and "kubernetes.preflight" in result.stdout


def test_a_cluster_without_metrics_server_is_told_so_by_the_preflight(setting: Setting, tmp_path: Path) -> None:
    setting.cluster.served.clear()
    code, report = run_in(setting, tmp_path, "--tags", "kubernetes")
    checks = by_name(report)
    assert code == ExitCode.NOT_READY, "the environment lacks what the stack needs"
    error = checks["kubernetes.metrics_api"]["error"]
    assert "/apis/metrics.k8s.io/v1beta1 is not served" in error and names.PRESTO_WORKER in error, error
    assert checks["kubernetes.network_policies"]["status"] == "passed", "not a gate: the other checks run"
