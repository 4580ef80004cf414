"""Network policies: every flow of the table is allowed, and nothing outside it is."""

import itertools

import pytest
from netpol import Pod, allowed

from components import names
from components.labels import selector_labels
from components.network import FLOWS, Peer
from render import Rendered

PORTS = sorted({port for flow in FLOWS for port in flow.ports} | {53, 8080, 8123, names.PRESTO_HTTPS_PORT})


def pod(stack: Rendered, peer: Peer) -> Pod:
    """A pod of the stack's namespace with the labels of a peer."""
    return Pod(selector_labels(peer.name, peer.component, stack.stack), stack.outputs["namespace"])


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f"{f.source.slug()}->{f.target.slug()}")
def test_every_flow_in_the_table_is_allowed(stack: Rendered, flow) -> None:
    for port in flow.ports:
        assert allowed(stack, pod(stack, flow.source), pod(stack, flow.target), port), (
            f"{flow.source.slug()} -> {flow.target.slug()}:{port} ({flow.reason}) is blocked"
        )


def test_nothing_outside_the_table_is_allowed(stack: Rendered) -> None:
    peers = {f.source for f in FLOWS} | {f.target for f in FLOWS}
    listed = {(f.source, f.target, port) for f in FLOWS for port in f.ports}
    for source, target in itertools.product(peers, repeat=2):
        for port in PORTS:
            if (source, target, port) not in listed:
                assert not allowed(stack, pod(stack, source), pod(stack, target), port), (
                    f"{source.slug()} -> {target.slug()}:{port} is allowed but not in the flow table"
                )


def test_pods_of_other_namespaces_get_nothing(stack: Rendered) -> None:
    for flow in FLOWS:
        stranger = Pod(pod(stack, flow.source).labels, "somewhere-else")
        for port in flow.ports:
            assert not allowed(stack, stranger, pod(stack, flow.target), port)


def test_every_pod_may_resolve_names_and_nothing_else_outside(stack: Rendered) -> None:
    dns = Pod({"k8s-app": "kube-dns"}, "kube-system")
    for peer in {f.source for f in FLOWS}:
        assert allowed(stack, pod(stack, peer), dns, 53, "UDP")
        assert allowed(stack, pod(stack, peer), dns, 53, "TCP")
        assert not allowed(stack, pod(stack, peer), dns, 80)
