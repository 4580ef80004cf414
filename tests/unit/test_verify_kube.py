"""verify's reading of Kubernetes objects, on the client's own models as the API server returns them."""

from kubernetes import client

from verify.kube.checks import hpa_problem


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
