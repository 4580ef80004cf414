"""Helpers to read pod templates out of rendered workloads."""

from collections.abc import Iterator
from typing import Any

from tests.support.render import Captured, Rendered

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job", "DaemonSet")


def workloads(stack: Rendered) -> list[Captured]:
    """Every object of the stack that runs pods."""
    return [obj for kind in WORKLOAD_KINDS for obj in stack.of_kind(kind)]


def pod_spec(workload: Captured) -> dict[str, Any]:
    """The pod spec of a workload's template."""
    return workload.inputs["spec"]["template"]["spec"]


def containers(workload: Captured) -> Iterator[dict[str, Any]]:
    """Init and regular containers of a workload."""
    spec = pod_spec(workload)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]
