"""Reach a Service from outside the cluster: a local port whose connections are forwarded to one of its pods.

Each accepted connection opens its own port-forward stream through the Kubernetes API (the client's
`portforward`, a websocket), to a ready pod behind the Service, and bytes are relayed both ways.
"""

import dataclasses
import select
import socket
import threading
from typing import Any
from urllib.parse import urlunsplit

from kubernetes import client
from kubernetes.stream import portforward

from verify.core.checks import Check, CheckFailedError, Context, Figures
from verify.core.targets import Endpoints, split_address
from verify.kube.checks import REQUEST_TIMEOUT, Cluster

BUFFER = 64 * 1024
IDLE_SECONDS = 300
"""A relayed connection with no traffic either way for this long is closed."""


def ready(pod: Any) -> bool:
    """Whether a pod is running and its Ready condition is true."""
    conditions = pod.status.conditions or []
    return pod.status.phase == "Running" and any(c.type == "Ready" and c.status == "True" for c in conditions)


def target_of(cluster: Cluster, service: str, port: int) -> tuple[str, int]:
    """A ready pod behind the Service and the container port its `port` leads to."""
    core = client.CoreV1Api(cluster.api)
    found = core.read_namespaced_service(service, cluster.namespace, _request_timeout=REQUEST_TIMEOUT)
    spec = found.spec
    labels = (spec.selector if spec else None) or {}
    selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
    if spec is None or not selector:
        raise CheckFailedError(f"Service {service} has no selector: no pod to forward to")
    pods = core.list_namespaced_pod(cluster.namespace, label_selector=selector, _request_timeout=REQUEST_TIMEOUT)
    pod = next((p for p in pods.items if ready(p)), None)
    if pod is None:
        raise CheckFailedError(f"no ready pod behind Service {service} ({selector}) to forward to")
    served = next((p for p in spec.ports or [] if p.port == port), None)
    if served is None:
        raise CheckFailedError(f"Service {service} has no port {port}")
    target = served.target_port if served.target_port is not None else port
    name = pod.metadata.name if pod.metadata else None
    if not name:
        raise CheckFailedError(f"a ready pod behind Service {service} has no name")
    if isinstance(target, str) and not target.isdigit():
        containers = pod.spec.containers if pod.spec else []
        named = [p.container_port for c in containers for p in c.ports or [] if p.name == target]
        if not named:
            raise CheckFailedError(f"pod {name} has no port named {target}")
        target = named[0]
    return name, int(target)


class PortForward:
    """A local listening port forwarding to one pod's port; close() stops it and its relays."""

    def __init__(self, cluster: Cluster, pod: str, port: int):
        self._cluster, self._pod, self._port = cluster, pod, port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._closed = threading.Event()
        self.local_port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, name=f"port-forward {pod}:{port}", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(connection,), daemon=True).start()

    def _relay(self, local: socket.socket) -> None:
        core = client.CoreV1Api(self._cluster.api)
        try:
            forward = portforward(
                core.connect_get_namespaced_pod_portforward,
                self._pod,
                self._cluster.namespace,
                ports=str(self._port),
                _request_timeout=REQUEST_TIMEOUT[0],
            )
        except Exception:  # the API refused the stream: the client sees its connection closed
            local.close()
            return
        remote = forward.socket(self._port)  # a socket-like wrapper, without the context manager protocol
        pipes = {local: remote, remote: local}
        try:
            while not self._closed.is_set():
                readable, _, _ = select.select(list(pipes), [], [], IDLE_SECONDS)
                if not readable or not self._pump(readable, pipes):
                    break
        finally:
            local.close()
            remote.close()
            forward.close()

    @staticmethod
    def _pump(readable: list[socket.socket], pipes: dict[socket.socket, socket.socket]) -> bool:
        """Move what is readable to the other side; False once either side has closed."""
        for source in readable:
            try:
                data = source.recv(BUFFER)
            except OSError:
                return False
            if not data:
                return False
            pipes[source].sendall(data)
        return True

    def close(self) -> None:
        """Stop listening; relays end at their next wake-up."""
        self._closed.set()
        self._listener.close()


def forward_service(cluster: Cluster, service: str, port: int) -> PortForward:
    """A local port that reaches the Service's port through one of its ready pods."""
    pod, target = target_of(cluster, service, port)
    return PortForward(cluster, pod, target)


FORWARDABLE = ("presto", "clickhouse_http", "clickhouse_native", "prometheus", "grafana")
"""Endpoints a port-forward can stand in for. Not Kafka: its clients go on to the brokers' advertised
in-cluster names, which a port-forward cannot rewrite; pass --kafka-bootstrap or run verify in the cluster."""


def in_cluster(host: str) -> bool:
    """Whether a host name only resolves inside the cluster."""
    return host.endswith((".svc", ".svc.cluster.local"))


def forwarded(cluster: Cluster, endpoints: Endpoints, given: set[str]) -> tuple[Endpoints, list[PortForward]]:
    """The endpoints with each in-cluster one (not given on the command line) replaced by a local port-forward."""
    forwards: list[PortForward] = []
    replaced: dict[str, str] = {}
    for field in FORWARDABLE:
        address = getattr(endpoints, field)
        parts = split_address(address)
        if field in given or not parts.hostname or not parts.port or not in_cluster(parts.hostname):
            continue
        forward = forward_service(cluster, parts.hostname.split(".")[0], parts.port)
        forwards.append(forward)
        local = parts._replace(netloc=f"localhost:{forward.local_port}")
        replaced[field] = urlunsplit(local) if parts.scheme else local.netloc
    return dataclasses.replace(endpoints, **replaced), forwards


def forward_check(cluster: Cluster, given: set[str]) -> Check:
    """Open the port-forwards the run needs and point the run's targets at them; closed at cleanup."""

    def probe(context: Context) -> Figures:
        endpoints, forwards = forwarded(cluster, context.targets.endpoints, given)

        def close() -> None:
            for forward in forwards:
                forward.close()

        context.cleanup.add("port-forwards", close)
        context.targets = dataclasses.replace(context.targets, endpoints=endpoints)
        return {field: getattr(endpoints, field) for field in FORWARDABLE if field not in given}

    return Check(
        name="kubernetes.port_forward",
        scenario="preflight",
        target=cluster.server,
        probe=probe,
        deadline=30,
        tags=frozenset({"kubernetes"}),
        gate=True,
    )
