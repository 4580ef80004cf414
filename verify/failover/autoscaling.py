"""The autoscaling check: drive the workers' CPU, watch their HPA scale out, then back in with no query failing."""

import time
from collections.abc import Callable
from dataclasses import dataclass

from kubernetes import client

from components import names
from verify.core.checks import CheckFailedError, CheckSkippedError, Context, Figures
from verify.failover.injectors import Injector
from verify.failover.plan import ScalePlan
from verify.failover.scenarios import Fault
from verify.failover.traffic import QueryLoad
from verify.kube.checks import REQUEST_TIMEOUT, Cluster
from verify.load.workloads import PrestoTpch
from verify.smoke import presto

DEFAULT_STABILIZATION = 300
"""Seconds of Kubernetes' default scale-down stabilization window, when the HPA sets none."""


@dataclass(frozen=True)
class Sample:
    """The autoscaler's replicas at a moment of the check's clock."""

    at: float
    current: int
    desired: int


def read_hpa(cluster: Cluster) -> tuple[int, int, int]:
    """The workers' HPA: current and desired replicas, and its scale-down stabilization window in seconds."""
    hpa = client.AutoscalingV2Api(cluster.api).read_namespaced_horizontal_pod_autoscaler(
        names.PRESTO_WORKER, cluster.namespace, _request_timeout=REQUEST_TIMEOUT
    )
    behavior = hpa.spec.behavior
    down = behavior.scale_down if behavior else None
    window = down.stabilization_window_seconds if down else None
    stabilization = DEFAULT_STABILIZATION if window is None else window
    if hpa.status is None:  # not yet reconciled: no replicas counted
        return 0, 0, stabilization
    return hpa.status.current_replicas or 0, hpa.status.desired_replicas or 0, stabilization


def timeline(samples: list[Sample]) -> str:
    """The replica changes as `seconds:replicas` pairs, the first sample included."""
    changes = [s for i, s in enumerate(samples) if i == 0 or s.current != samples[i - 1].current]
    return " ".join(f"{s.at:.0f}s:{s.current}" for s in changes)


def autoscaling(context: Context, cluster: Cluster, injector: Injector, scale: ScalePlan) -> Figures:
    """Scale the workers out under CPU load and back in under light queries; figures of both, with the timeline."""
    origin = time.perf_counter()
    samples: list[Sample] = []

    def sample() -> int:
        current, desired, _ = read_hpa(cluster)
        samples.append(Sample(time.perf_counter() - origin, current, desired))
        return current

    def wait(condition: str, test: Callable[[int], bool], seconds: float) -> float:
        deadline = time.perf_counter() + seconds
        while not test(sample()):
            if time.perf_counter() > deadline or context.stopping.is_set():
                figures["timeline"] = timeline(samples)
                raise CheckFailedError(f"the workers' HPA did not {condition} within {seconds:g}s", figures)
            time.sleep(scale.poll)
        return samples[-1].at

    before, _, stabilization = read_hpa(cluster)
    if before < 1:
        raise CheckSkippedError("the workers' HPA reports no current replicas yet")
    stress = Fault(scenario="autoscaling", kind="cpu-stress", workloads=(names.PRESTO_WORKER,), hold=scale.out_timeout)
    figures: Figures = {"replicas_before": before, "stabilization_s": stabilization}
    with presto.ca_file(context.targets) as ca:
        driver = None
        if injector.method(stress) is not None:
            figures["driver"] = f"{injector.method(stress)} on every worker"
            injector.inject(stress)
        else:
            figures["driver"] = f"{scale.streams} TPC-H streams on {scale.schema}"
            heavy = PrestoTpch(context.targets, ca, scale.schema, scale.query_timeout)
            driver = QueryLoad(heavy, "q01", scale.streams, origin)
            driver.start()
        try:
            started = time.perf_counter() - origin
            out_at = wait("scale out", lambda current: current > before, scale.out_timeout)
        finally:
            injector.end(stress)
            if driver is not None:
                driver.stop.set()  # in-flight queries finish on their own; only the light load is judged
        figures["scale_out_s"] = round(out_at - started, 1)
        light = QueryLoad(PrestoTpch(context.targets, ca, "tiny", 60), "q06", 1, origin)
        light.start()
        try:
            in_at = wait("scale back in", lambda current: current <= before, stabilization + scale.in_margin)
        finally:
            light.finish(65)
    failed = [o for o in light.outcomes if o.error is not None]
    figures |= {
        "replicas_peak": max(s.current for s in samples),
        "scale_in_s": round(in_at - out_at, 1),
        "timeline": timeline(samples),
        "queries_during_scale_in": len(light.outcomes),
        "failed_during_scale_in": len(failed),
    }
    if failed:
        raise CheckFailedError(
            f"{len(failed)} of {len(light.outcomes)} queries failed while workers scaled in "
            f"(graceful shutdown should drain them): {failed[0].error}",
            figures,
        )
    return figures
