"""Network policies: every flow of the table is allowed, and nothing outside it is."""

import itertools

import pytest

from components.platform.labels import selector_labels
from components.security.network import ALERTMANAGER, CLIENTS, FLOWS, KEDA, KUBE_STATE_METRICS, PROMETHEUS, Peer
from tests.support.netpol import Pod, allowed
from tests.support.render import Rendered, render

INTERNAL = tuple(f for f in FLOWS if f.source not in (CLIENTS, KEDA))
FROM_CLIENTS = tuple(f for f in FLOWS if f.source == CLIENTS)
PEERS = {f.source for f in INTERNAL} | {f.target for f in FLOWS}
PORTS = sorted({port for flow in FLOWS for port in flow.ports} | {53, 8080, 8123})
CLIENT_NAMESPACE, CLIENT_RANGE, CLIENT_ADDRESS = "ingress-nginx", "192.0.2.0/24", "192.0.2.7"
RECEIVERS = {"critical": "https://pager.example.com/hook", "warning": "http://tickets.example.com:8080/hook"}


@pytest.fixture(scope="module")
def open_to_clients() -> Rendered:
    """The dev stack with clients configured: a namespace, an address range, and two alert receivers."""
    clients = {"namespaces": [CLIENT_NAMESPACE], "cidrs": [CLIENT_RANGE]}
    return render(
        "dev", overrides={"network": {"clients": clients}, "monitoring": {"alertmanager": {"receivers": RECEIVERS}}}
    )


def pod(stack: Rendered, peer: Peer) -> Pod:
    """A pod of the stack's namespace with the labels of a peer."""
    return Pod(selector_labels(peer.name, peer.component, stack.stack), stack.outputs["namespace"])


def client_pods() -> list[Pod]:
    """A pod of the clients' namespace, and a machine in their address range."""
    return [Pod({"app": "ingress"}, CLIENT_NAMESPACE), Pod({}, None, CLIENT_ADDRESS)]


@pytest.mark.parametrize("flow", INTERNAL, ids=lambda f: f"{f.source.slug()}->{f.target.slug()}")
def test_every_flow_in_the_table_is_allowed(stack: Rendered, flow) -> None:
    for port in flow.ports:
        assert allowed(stack, pod(stack, flow.source), pod(stack, flow.target), port), (
            f"{flow.source.slug()} -> {flow.target.slug()}:{port} ({flow.reason}) is blocked"
        )


def test_nothing_outside_the_table_is_allowed(stack: Rendered) -> None:
    listed = {(f.source, f.target, port) for f in INTERNAL for port in f.ports}
    for source, target in itertools.product(PEERS - {CLIENTS}, repeat=2):
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


@pytest.mark.parametrize("flow", FROM_CLIENTS, ids=lambda f: f"clients->{f.target.slug()}")
def test_configured_clients_reach_presto_and_grafana(open_to_clients: Rendered, flow) -> None:
    for client, port in itertools.product(client_pods(), flow.ports):
        assert allowed(open_to_clients, client, pod(open_to_clients, flow.target), port), (client, flow.reason)


def test_clients_reach_nothing_else(open_to_clients: Rendered) -> None:
    listed = {(f.target, port) for f in FROM_CLIENTS for port in f.ports}
    for client, target, port in itertools.product(client_pods(), PEERS - {CLIENTS}, PORTS):
        if (target, port) not in listed:
            assert not allowed(open_to_clients, client, pod(open_to_clients, target), port), (client, target, port)


def test_no_client_is_admitted_unless_configured(stack: Rendered) -> None:
    for flow, client, port in itertools.product(FROM_CLIENTS, client_pods(), PORTS):
        assert not allowed(stack, client, pod(stack, flow.target), port)
    outsider = Pod({}, None, "198.51.100.1")
    for flow in FROM_CLIENTS:
        assert not allowed(stack, outsider, pod(stack, flow.target), flow.ports[0])


def test_an_address_outside_the_client_ranges_is_refused(open_to_clients: Rendered) -> None:
    for flow in FROM_CLIENTS:
        target = pod(open_to_clients, flow.target)
        assert not allowed(open_to_clients, Pod({}, None, "198.51.100.1"), target, flow.ports[0])
        assert not allowed(open_to_clients, Pod({}, "another-team"), target, flow.ports[0])


def test_alertmanager_reaches_its_receivers_ports_only(stack: Rendered, open_to_clients: Rendered) -> None:
    receiver = Pod({}, None, "203.0.113.9")
    for port in (80, 443, 8080):
        assert not allowed(stack, pod(stack, ALERTMANAGER), receiver, port), "no receiver is configured"
    sender = pod(open_to_clients, ALERTMANAGER)
    assert allowed(open_to_clients, sender, receiver, 443)
    assert allowed(open_to_clients, sender, receiver, 8080)
    assert not allowed(open_to_clients, sender, receiver, 80)


def test_every_pod_may_resolve_names_and_nothing_else_outside(stack: Rendered) -> None:
    dns = Pod({"k8s-app": "kube-dns"}, "kube-system")
    for peer in {f.source for f in INTERNAL}:
        assert allowed(stack, pod(stack, peer), dns, 53, "UDP")
        assert allowed(stack, pod(stack, peer), dns, 53, "TCP")
        assert not allowed(stack, pod(stack, peer), dns, 80)


MINIKUBE_API_SERVER = Pod({}, None, "192.168.49.2")
"""minikube's API server: the kubernetes Service's 443 translates to this address's 8443."""


def test_dev_reads_the_api_server_where_minikube_serves_it() -> None:
    stack = render("dev")
    for reader in (PROMETHEUS, KUBE_STATE_METRICS):
        assert allowed(stack, pod(stack, reader), MINIKUBE_API_SERVER, 8443), reader.slug()
        assert not allowed(stack, pod(stack, reader), MINIKUBE_API_SERVER, 6443), reader.slug()


@pytest.mark.parametrize("port", [443, 6443])
def test_prod_reads_the_api_server_on_the_usual_ports_only(port: int) -> None:
    prod = render("prod")
    for reader in (PROMETHEUS, KUBE_STATE_METRICS):
        assert allowed(prod, pod(prod, reader), Pod({}, None, "10.0.0.1"), port)
        assert not allowed(prod, pod(prod, reader), Pod({}, None, "10.0.0.1"), 8443)


def test_the_api_server_range_narrows_what_the_readers_reach() -> None:
    narrowed = render("dev", overrides={"network": {"apiServer": {"ports": [6443], "cidrs": ["10.0.0.0/28"]}}})
    reader = pod(narrowed, PROMETHEUS)
    assert allowed(narrowed, reader, Pod({}, None, "10.0.0.1"), 6443)
    assert not allowed(narrowed, reader, Pod({}, None, "10.0.1.1"), 6443)
    assert allowed(narrowed, reader, Pod({}, None, "10.0.1.1"), 10250), "the kubelets stay reachable everywhere"
