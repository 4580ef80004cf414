"""verify's reading of Kubernetes objects (on the client's own models as the API server returns them) and forwards."""

import socket

import pytest
from kubernetes import client

from verify.core.checks import CheckFailedError
from verify.kube.checks import Cluster, hpa_problem
from verify.kube.port_forward import PortForward, broker_forwards


def hpa(*metrics: client.V2MetricStatus) -> client.V2HorizontalPodAutoscaler:
    """An autoscaler at one replica whose status reports these metrics."""
    status = client.V2HorizontalPodAutoscalerStatus(current_replicas=1, desired_replicas=1, current_metrics=metrics)
    target = client.V2CrossVersionObjectReference(api_version="apps/v1", kind="Deployment", name="presto-worker")
    spec = client.V2HorizontalPodAutoscalerSpec(max_replicas=2, scale_target_ref=target)
    return client.V2HorizontalPodAutoscaler(spec=spec, status=status)


def test_an_autoscaler_without_metrics_is_a_problem_named_not_an_error() -> None:
    """A cluster without metrics-server reports a metric of type '' (seen on a real kube-apiserver)."""
    figures: dict = {}
    problem = hpa_problem("presto-workers", hpa(client.V2MetricStatus(type="")), figures)
    assert problem == "presto-workers: no current metrics (is metrics-server running?)"
    assert figures == {"presto-workers.replicas": 1, "presto-workers.desired": 1}


def test_an_autoscaler_reading_its_cpu_is_fine() -> None:
    current = client.V2MetricValueStatus(average_utilization=42)
    cpu = client.V2ResourceMetricStatus(name="cpu", current=current)
    assert hpa_problem("presto-workers", hpa(client.V2MetricStatus(type="Resource", resource=cpu)), {}) is None


def test_each_broker_gets_the_local_port_it_advertises() -> None:
    brokers = {1: ("127.0.0.1", 19193), 0: ("127.0.0.1", 19192), 2: ("127.0.0.1", 19194)}
    assert broker_forwards(brokers) == [("kafka-0", 19192), ("kafka-1", 19193), ("kafka-2", 19194)]


def test_a_broker_advertising_an_in_cluster_name_cannot_be_forwarded() -> None:
    brokers = {0: ("127.0.0.1", 19192), 1: ("kafka-1.kafka-headless.query-engine.svc.cluster.local", 9092)}
    with pytest.raises(CheckFailedError, match=r"broker 1 at kafka-1\.kafka-headless.*:9092.*--kafka-bootstrap"):
        broker_forwards(brokers)


class Watched(client.ApiClient):
    """An API client that records every swap of its transport (what the stream helpers do for a call)."""

    swaps: list[object]

    def __setattr__(self, name: str, value: object) -> None:
        if name == "call_api":
            self.swaps.append(value)
        super().__setattr__(name, value)


def test_a_relay_never_swaps_the_transport_of_the_client_the_checks_share() -> None:
    # The stream helpers swap the transport of the client they are given: on the shared one, a check running
    # meanwhile (Kafka's clients open connections at any time) went over a port-forward websocket, and failed.
    configuration = client.Configuration(host="http://127.0.0.1:9")  # nothing listens: the stream is refused
    Watched.swaps = []
    shared = Watched(configuration)
    forward = PortForward(Cluster(shared, "query-engine"), "kafka-0", 9096)
    try:
        with socket.create_connection(("127.0.0.1", forward.local_port), timeout=10) as local:
            assert local.recv(1) == b"", "a refused stream closes the local connection"
    finally:
        forward.close()
    assert Watched.swaps == []
