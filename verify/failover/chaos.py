"""Chaos Mesh experiments as pure functions: PodChaos, NetworkChaos and StressChaos objects for a verify run.

Each lives in the stack's namespace (the one Chaos Mesh may inject into), selects pods by their
app.kubernetes.io labels there, and carries the run's id as a label, so that cleanup can find it.
"""

from collections.abc import Mapping

from components.chaos.api import API_VERSION
from verify.kube.labels import run_labels


def _selector(namespace: str, labels: Mapping[str, str]) -> dict:
    return {"namespaces": [namespace], "labelSelectors": dict(labels)}


def _experiment(kind: str, name: str, namespace: str, run_id: str, spec: dict) -> dict:
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": run_labels(run_id),
        },
        "spec": spec,
    }


def pod_kill(
    name: str, namespace: str, run_id: str, labels: Mapping[str, str], grace_seconds: int = 0, pod: str | None = None
) -> dict:
    """Kill one pod that has these labels, or the named pod (grace 0: as a crashed node would)."""
    # Chaos Mesh's `pods` selector names pods exactly, and then ignores the label selector.
    selector = {"namespaces": [namespace], "pods": {namespace: [pod]}} if pod else _selector(namespace, labels)
    spec = {"action": "pod-kill", "mode": "one", "selector": selector, "gracePeriod": grace_seconds}
    return _experiment("PodChaos", name, namespace, run_id, spec)


def partition(
    name: str, namespace: str, run_id: str, source: Mapping[str, str], target: Mapping[str, str], duration: str
) -> dict:
    """Cut the network both ways between every pod with `source` labels and every pod with `target` labels."""
    spec = {
        "action": "partition",
        "mode": "all",
        "selector": _selector(namespace, source),
        "direction": "both",
        "target": {"mode": "all", "selector": _selector(namespace, target)},
        "duration": duration,
    }
    return _experiment("NetworkChaos", name, namespace, run_id, spec)


def cpu_stress(
    name: str, namespace: str, run_id: str, labels: Mapping[str, str], workers: int, load: int, duration: str
) -> dict:
    """Load every pod with these labels with `workers` CPU stressors, each at `load` percent."""
    if not 0 <= load <= 100:
        raise ValueError(f"load {load}: a percentage, 0 to 100")
    spec = {
        "mode": "all",
        "selector": _selector(namespace, labels),
        "stressors": {"cpu": {"workers": workers, "load": load}},
        "duration": duration,
    }
    return _experiment("StressChaos", name, namespace, run_id, spec)
