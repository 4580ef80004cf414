"""Reach the stack from outside the cluster: local ports whose connections are forwarded to its pods.

Each accepted connection opens its own port-forward stream through the Kubernetes API (the client's
`portforward`, a websocket), to a ready pod behind the Service, and bytes are relayed both ways.

Kafka's clients go on to the addresses the brokers advertise, so one forward to its Service is not
enough: each broker's EXTERNAL listener advertises 127.0.0.1 and a port of its own, and verify forwards
exactly that local port to that broker's pod (components/data/kafka/config.py).
"""

import dataclasses
import select
import socket
import threading
from typing import Any
from urllib.parse import urlunsplit

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from kubernetes import client
from kubernetes.stream import portforward

from components.data.kafka.config import EXTERNAL_PORT, LOOPBACK, node_pod
from verify.core.checks import Check, CheckFailedError, Context, Figures
from verify.core.targets import Endpoints, Targets, split_address
from verify.kube.checks import REQUEST_TIMEOUT, Cluster
from verify.smoke.kafka import TIMEOUT, connection

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
    """A local listening port (any free one unless given) forwarding to one pod's port; close() stops it."""

    def __init__(self, cluster: Cluster, pod: str, port: int, local_port: int = 0):
        self._cluster, self._pod, self._port = cluster, pod, port
        self._listener = socket.create_server((LOOPBACK, local_port))
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
        # A client of its own: `portforward` swaps the websocket transport into the ApiClient it is given for
        # the call, and on a shared one a concurrent call (another relay, a check) would get the wrong one, or
        # keep it. Kafka's clients open connections at any time, so relays start while checks run.
        api = client.ApiClient(self._cluster.api.configuration)
        try:
            forward = portforward(
                client.CoreV1Api(api).connect_get_namespaced_pod_portforward,
                self._pod,
                self._cluster.namespace,
                ports=str(self._port),
                _request_timeout=REQUEST_TIMEOUT[0],
            )
        except Exception:  # the API refused the stream: the client sees its connection closed
            local.close()
            api.close()
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
            api.close()

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


FORWARDED = ("presto", "clickhouse_http", "clickhouse_native", "prometheus", "grafana", "kafka")
"""Endpoints port-forwards stand in for: one to a pod behind the Service, and for Kafka one per broker."""


def in_cluster(host: str) -> bool:
    """Whether a host name only resolves inside the cluster."""
    return host.endswith((".svc", ".svc.cluster.local"))


def advertised(targets: Targets, bootstrap: str) -> dict[int, tuple[str, int]]:
    """(host, port) each broker advertises on the listener reached at `bootstrap`, by broker id."""
    # Silent: librdkafka tries the advertised ports at once, and nothing listens there yet.
    admin = AdminClient({**connection(targets), "bootstrap.servers": bootstrap, "log_level": 0})
    try:
        brokers = admin.list_topics(timeout=TIMEOUT).brokers
    except KafkaException as error:
        raise CheckFailedError(
            f"no Kafka metadata through a port-forward to a broker's external listener (port {EXTERNAL_PORT}; "
            f"a stack deployed before it has none: pass --kafka-bootstrap): {error}"
        ) from None
    return {broker.id: (broker.host or "", broker.port) for broker in brokers.values()}


def broker_forwards(brokers: dict[int, tuple[str, int]]) -> list[tuple[str, int]]:
    """(pod, local port) for each broker: the loopback port its external listener advertises, or an error."""
    elsewhere = [
        f"broker {node} at {host}:{port}" for node, (host, port) in sorted(brokers.items()) if host != LOOPBACK
    ]
    if elsewhere:
        raise CheckFailedError(
            f"Kafka's external listener advertises {', '.join(elsewhere)}, not {LOOPBACK}: "
            "no local port-forward stands in for that; pass --kafka-bootstrap"
        )
    return [(node_pod(node), port) for node, (_, port) in sorted(brokers.items())]


def forward_kafka(cluster: Cluster, targets: Targets, service: str, port: int, forwards: list[PortForward]) -> str:
    """Forward each broker's advertised loopback port to its pod's external listener; the bootstrap list.

    The brokers and their ports come from Kafka's own metadata, read through a forward to a ready pod behind
    the Service: verify follows what the brokers advertise. The forwards are added to `forwards`.
    """
    pod, _ = target_of(cluster, service, port)
    first = PortForward(cluster, pod, EXTERNAL_PORT)
    try:
        brokers = broker_forwards(advertised(targets, f"{LOOPBACK}:{first.local_port}"))
    finally:
        first.close()
    for broker, local_port in brokers:
        try:
            forwards.append(PortForward(cluster, broker, EXTERNAL_PORT, local_port))
        except OSError as error:
            raise CheckFailedError(
                f"local port {local_port}, which {broker} advertises, cannot be listened on ({error}): "
                "free it, or pass --kafka-bootstrap"
            ) from None
    return ",".join(f"{LOOPBACK}:{local_port}" for _, local_port in brokers)


def forwarded(cluster: Cluster, targets: Targets, given: set[str]) -> tuple[Endpoints, list[PortForward]]:
    """The endpoints with each in-cluster one (not given on the command line) replaced by local port-forwards."""
    forwards: list[PortForward] = []
    replaced: dict[str, str] = {}
    try:
        for field in FORWARDED:
            parts = split_address(getattr(targets.endpoints, field))
            if field in given or not parts.hostname or not parts.port or not in_cluster(parts.hostname):
                continue
            service = parts.hostname.split(".")[0]
            if field == "kafka":
                replaced[field] = forward_kafka(cluster, targets, service, parts.port, forwards)
                continue
            forward = forward_service(cluster, service, parts.port)
            forwards.append(forward)
            local = parts._replace(netloc=f"localhost:{forward.local_port}")
            replaced[field] = urlunsplit(local) if parts.scheme else local.netloc
    except BaseException:
        for forward in forwards:
            forward.close()
        raise
    return dataclasses.replace(targets.endpoints, **replaced), forwards


def forward_check(cluster: Cluster, given: set[str]) -> Check:
    """Open the port-forwards the run needs and point the run's targets at them; closed at cleanup."""

    def probe(context: Context) -> Figures:
        endpoints, forwards = forwarded(cluster, context.targets, given)

        def close() -> None:
            for forward in forwards:
                forward.close()

        context.cleanup.add("port-forwards", close)
        context.targets = dataclasses.replace(context.targets, endpoints=endpoints)
        return {field: getattr(endpoints, field) for field in FORWARDED if field not in given}

    return Check(
        name="kubernetes.port_forward",
        scenario="preflight",
        target=cluster.server,
        probe=probe,
        deadline=30,
        tags=frozenset({"kubernetes"}),
        gate=True,
    )
