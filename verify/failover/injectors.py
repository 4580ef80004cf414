"""Fault injectors: Chaos Mesh experiments when it is installed, else the Kubernetes API where it can.

An injector breaks a workload's pods (`inject`), ends a fault that does not end by itself (`end`), says
when the workload is whole again (`ready`) and removes everything it created (`remove_all`).
"""

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubernetes import client

from components.chaos.api import GROUP, PLURALS, VERSION
from verify.failover import chaos
from verify.failover.scenarios import Fault
from verify.kube.checks import REQUEST_TIMEOUT, Cluster
from verify.kube.labels import RUN_LABEL

STRESS_WORKERS = 2
"""CPU stressors per pod in the cpu-stress fault, each at full load."""
REMOVE_WAIT = 30.0
"""Seconds Chaos Mesh gets to finalize a deleted experiment (it restores what it changed first)."""


class Injector(Protocol):
    """Something that can break pods and undo it."""

    def method(self, fault: Fault) -> str | None:
        """How it would inject the fault, or None when it cannot express it."""

    def inject(self, fault: Fault) -> str:
        """Inject the fault; what it did, for the report."""

    def end(self, fault: Fault) -> None:
        """End the fault if it does not end by itself."""

    def ready(self, fault: Fault) -> bool:
        """Whether every pod of the fault's workloads is back and ready."""

    def remove_all(self) -> None:
        """Remove everything this injector created; raise naming what could not be removed."""


class CleanupError(Exception):
    """An object verify created is still there after removal; the message names it."""


def selector(cluster: Cluster, workload: str) -> tuple[dict[str, str], int]:
    """A workload's pod selector and how many replicas it wants (a Deployment or a StatefulSet)."""
    apps = client.AppsV1Api(cluster.api)
    for read in (apps.read_namespaced_deployment, apps.read_namespaced_stateful_set):
        try:
            found = read(workload, cluster.namespace, _request_timeout=REQUEST_TIMEOUT)
        except client.exceptions.ApiException as error:
            if error.status == 404:
                continue
            raise
        replicas = 1 if found.spec.replicas is None else found.spec.replicas
        labels = found.spec.selector.match_labels
        if not labels:  # an empty selector would pick every pod of the namespace
            raise ValueError(f"{workload} selects its pods by expressions, not labels: verify cannot find them")
        return dict(labels), replicas
    raise client.exceptions.ApiException(status=404, reason=f"no Deployment or StatefulSet {workload}")


def pods(cluster: Cluster, labels: dict[str, str]) -> list[Any]:
    """The namespace's pods with these labels, by name."""
    terms = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
    listed = client.CoreV1Api(cluster.api).list_namespaced_pod(
        cluster.namespace, label_selector=terms, _request_timeout=REQUEST_TIMEOUT
    )
    return sorted(listed.items, key=lambda pod: pod.metadata.name)


def pod_ready(pod: Any) -> bool:
    """Running, not being deleted, and its Ready condition true."""
    conditions = pod.status.conditions or []
    return (
        pod.metadata.deletion_timestamp is None
        and pod.status.phase == "Running"
        and any(c.type == "Ready" and c.status == "True" for c in conditions)
    )


@dataclass
class PodWatch:
    """The pods of the faulted workloads before the fault, to tell when they are replaced and ready."""

    cluster: Cluster
    before: dict[str, set[str]] = field(default_factory=dict)
    """Pod uids by workload, read just before injection."""

    def mark(self, fault: Fault) -> None:
        """Remember the pods the fault may hit."""
        self.before = {
            w: {p.metadata.uid for p in pods(self.cluster, selector(self.cluster, w)[0])} for w in fault.workloads
        }

    def whole(self, fault: Fault) -> bool:
        """Every workload has its replicas ready; after a kill, one pod at least is new."""
        for workload in fault.workloads:
            labels, replicas = selector(self.cluster, workload)
            found = [p for p in pods(self.cluster, labels) if pod_ready(p)]
            if len(found) < replicas:
                return False
            if fault.kind == "pod-kill" and {p.metadata.uid for p in found} >= self.before.get(workload, set()):
                return False  # the kill has not shown yet
        return True


class KubernetesInjector:
    """Deletes a pod through the Kubernetes API with no grace period; the only fault it can express."""

    def __init__(self, cluster: Cluster):
        self._cluster, self._watch = cluster, PodWatch(cluster)

    def method(self, fault: Fault) -> str | None:
        """Pod kills only: the API cannot cut a network or load a CPU."""
        return "kubernetes pod delete" if fault.kind == "pod-kill" else None

    def inject(self, fault: Fault) -> str:
        """Delete the fault's pod, or else the first ready pod of the workload, by name, with grace period 0."""
        self._watch.mark(fault)
        (workload,) = fault.workloads
        victims = [p for p in pods(self._cluster, selector(self._cluster, workload)[0]) if pod_ready(p)]
        if fault.pod is not None:
            victims = [p for p in victims if p.metadata.name == fault.pod]
        if not victims:
            which = f"no ready pod {fault.pod}" if fault.pod else "no ready pod"
            raise client.exceptions.ApiException(status=409, reason=f"{workload} has {which} to delete")
        name = victims[0].metadata.name
        client.CoreV1Api(self._cluster.api).delete_namespaced_pod(
            name, self._cluster.namespace, grace_period_seconds=0, _request_timeout=REQUEST_TIMEOUT
        )
        return f"deleted pod {name} (grace period 0)"

    def end(self, fault: Fault) -> None:
        """Nothing: the workload's controller replaces the pod."""

    def ready(self, fault: Fault) -> bool:
        """The replacement pod is ready."""
        return self._watch.whole(fault)

    def remove_all(self) -> None:
        """Nothing: a deleted pod is replaced by its controller, and nothing else was created."""


def installed(cluster: Cluster) -> bool:
    """Whether the cluster serves Chaos Mesh's API (its CRDs are installed)."""
    try:
        client.CustomObjectsApi(cluster.api).list_namespaced_custom_object(
            GROUP, VERSION, cluster.namespace, "podchaos", limit=1, _request_timeout=REQUEST_TIMEOUT
        )
    except client.exceptions.ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


class ChaosMeshInjector:
    """Creates Chaos Mesh experiments labelled with the run id; deletes them when the fault ends and at cleanup."""

    def __init__(self, cluster: Cluster, run_id: str):
        self._cluster, self._run_id, self._watch = cluster, run_id, PodWatch(cluster)
        self._objects = client.CustomObjectsApi(cluster.api)
        self._created: dict[str, list[tuple[str, str]]] = {}
        """(plural, name) of each scenario's experiments."""

    def method(self, fault: Fault) -> str | None:
        """Every fault of ours has a Chaos Mesh experiment."""
        return {"pod-kill": "Chaos Mesh PodChaos", "partition": "Chaos Mesh NetworkChaos"}.get(
            fault.kind, "Chaos Mesh StressChaos"
        )

    def manifests(self, fault: Fault) -> list[dict]:
        """The experiments of a fault: one per workload it hits."""
        namespace, run = self._cluster.namespace, self._run_id
        duration = f"{max(1, round(fault.hold))}s"
        made = []
        for index, workload in enumerate(fault.workloads):
            name = f"verify-{run}-{fault.scenario}-{index}"
            labels = selector(self._cluster, workload)[0]
            if fault.kind == "pod-kill":
                made.append(chaos.pod_kill(name, namespace, run, labels, pod=fault.pod))
            elif fault.kind == "partition":
                peer = selector(self._cluster, str(fault.peer))[0]
                made.append(chaos.partition(name, namespace, run, labels, peer, duration))
            else:
                made.append(chaos.cpu_stress(name, namespace, run, labels, STRESS_WORKERS, 100, duration))
        return made

    def inject(self, fault: Fault) -> str:
        """Create the fault's experiments."""
        self._watch.mark(fault)
        created = self._created.setdefault(fault.scenario, [])
        for manifest in self.manifests(fault):
            plural = PLURALS[manifest["kind"]]
            self._objects.create_namespaced_custom_object(
                GROUP,
                VERSION,
                self._cluster.namespace,
                plural,
                manifest,
                _request_timeout=REQUEST_TIMEOUT,
            )
            created.append((plural, manifest["metadata"]["name"]))
        return "created " + ", ".join(f"{plural}/{name}" for plural, name in created)

    def end(self, fault: Fault) -> None:
        """Delete the fault's experiments: Chaos Mesh restores the network or stops the stressors."""
        for plural, name in self._created.pop(fault.scenario, []):
            self._delete(plural, name)

    def ready(self, fault: Fault) -> bool:
        """Every hit workload has its replicas ready (after a kill, a new pod among them)."""
        return self._watch.whole(fault)

    def _delete(self, plural: str, name: str) -> None:
        try:
            self._objects.delete_namespaced_custom_object(
                GROUP, VERSION, self._cluster.namespace, plural, name, _request_timeout=REQUEST_TIMEOUT
            )
        except client.exceptions.ApiException as error:
            if error.status != 404:
                raise

    def _left(self) -> list[str]:
        """The run's experiments still in the namespace, as plural/name."""
        left = []
        for plural in PLURALS.values():
            listed = self._objects.list_namespaced_custom_object(
                GROUP,
                VERSION,
                self._cluster.namespace,
                plural,
                label_selector=f"{RUN_LABEL}={self._run_id}",
                _request_timeout=REQUEST_TIMEOUT,
            )
            items = listed.get("items", []) if isinstance(listed, dict) else []  # the client types it as object
            left += [f"{plural}/{item['metadata']['name']}" for item in items]
        return left

    def remove_all(self) -> None:
        """Delete every experiment labelled with the run id, and wait until Chaos Mesh has let them go."""
        for entry in self._left():
            plural, name = entry.split("/", 1)
            self._delete(plural, name)
        deadline = time.monotonic() + REMOVE_WAIT
        while left := self._left():
            if time.monotonic() > deadline:
                raise CleanupError(f"still present {REMOVE_WAIT:g}s after deletion: {', '.join(left)}")
            time.sleep(1)
