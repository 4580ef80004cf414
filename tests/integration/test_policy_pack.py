"""The policy pack as the Pulumi CLI runs it: its own virtualenv, its analyzer served over gRPC.

The CLI cannot be installed here; these tests start policy/__main__.py in policy/venv (made by
scripts/setup-policy, as the CLI would make it) and make the CLI's calls: GetAnalyzerInfo, Analyze for
one resource and AnalyzeStack for a whole rendered stack.
"""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from policy.rules import RULES
from tests.support.render import Rendered, render

POLICY = Path(__file__).resolve().parents[2] / "policy"


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """The policy pack's analyzer, started from its own virtualenv."""
    python = POLICY / "venv" / "bin" / "python"
    assert python.exists(), "policy/venv is missing: run scripts/setup-policy (scripts/test does)"
    pack = subprocess.Popen([str(python), "-u", "__main__.py"], cwd=POLICY, stdout=subprocess.PIPE, text=True)
    try:
        port = int(pack.stdout.readline())  # type: ignore[union-attr]
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        pack.kill()
        pack.wait()


def properties(inputs: dict) -> struct_pb2.Struct:
    """Resource inputs as the engine sends them."""
    value = struct_pb2.Struct()
    value.update(inputs)
    return value


def analyze_stack(analyzer: analyzer_pb2_grpc.AnalyzerStub, stack: Rendered) -> list[str]:
    """AnalyzeStack and Analyze of every resource, as `pulumi preview` calls them: policy and violation."""
    resources = [
        analyzer_pb2.AnalyzerResource(type=r.type, properties=properties(r.inputs), urn=r.urn, name=r.name)
        for r in stack.resources
    ]
    found = list(analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources), timeout=60).diagnostics)
    for r in resources:
        request = analyzer_pb2.AnalyzeRequest(type=r.type, properties=r.properties, urn=r.urn, name=r.name)
        found += analyzer.Analyze(request, timeout=30).diagnostics
    # A message is the policy's description, then a line of what violated it.
    return [f"{d.policyName}: {d.message.splitlines()[-1]}" for d in found]


def test_the_pack_serves_every_rule_as_mandatory(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
    assert info.name == "query-engine-stack"
    assert {p.name for p in info.policies} == {rule.name for rule in RULES}
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}


def test_every_shipped_stack_passes_the_pack(analyzer: analyzer_pb2_grpc.AnalyzerStub, stack: Rendered) -> None:
    assert analyze_stack(analyzer, stack) == []


def test_the_pack_refuses_an_exposed_privileged_change(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    exposed = render("dev", overrides={"network": {"serviceType": "NodePort", "clients": {"cidrs": ["192.0.2.0/24"]}}})
    for resource in exposed.resources:
        if resource.kind == "Deployment" and resource.inputs["metadata"]["name"] == "grafana":
            resource.inputs["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    found = analyze_stack(analyzer, exposed)
    assert "services-not-exposed: Service/grafana: type NodePort, allowed: ClusterIP" in found
    assert "services-not-exposed: Service/presto-clients: type NodePort, allowed: ClusterIP" in found
    assert "no-privileged-containers: Deployment/grafana container grafana: privileged" in found
    assert len(found) == 3, found
