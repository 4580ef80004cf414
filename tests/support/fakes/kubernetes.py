"""A fake Kubernetes API server: the rendered stack's objects with the status a cluster reports, and port-forward.

No cluster can run on this machine. This server answers the calls verify makes, as the API server
does: namespaced lists of Deployments, StatefulSets, Services, Secrets, Pods, HorizontalPodAutoscalers,
PodDisruptionBudgets and NetworkPolicies; one Service; and the pod `portforward` websocket
(subprotocol v4.channel.k8s.io: per port a data and an error channel, each opened by a frame with the
port number, then data frames prefixed by their channel byte). A port-forward is relayed to a real
server on 127.0.0.1, so what verify reads through it comes from the real Presto or ClickHouse.

Every request is authorized as the API server's RBAC would: its bearer TOKEN is the verify
ServiceAccount's, bound to the rendered `verify` Role, so a call outside that Role gets 403; the
OPERATOR_TOKEN may do anything (and mint verify's token, on the writable fake).
"""

import copy
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection, serve

from components import names
from tests.support.rbac import attributes, permits
from tests.support.render import Rendered

TOKEN = "fake-token-of-serviceaccount-verify"
OPERATOR_TOKEN = "fake-token-of-an-operator"
PORT_FORWARD = "v4.channel.k8s.io"
ROUTES = {
    ("apps/v1", "deployments"): "Deployment",
    ("apps/v1", "statefulsets"): "StatefulSet",
    ("v1", "services"): "Service",
    ("v1", "secrets"): "Secret",
    ("v1", "pods"): "Pod",
    ("autoscaling/v2", "horizontalpodautoscalers"): "HorizontalPodAutoscaler",
    ("policy/v1", "poddisruptionbudgets"): "PodDisruptionBudget",
    ("networking.k8s.io/v1", "networkpolicies"): "NetworkPolicy",
}


METRICS_API = "/apis/metrics.k8s.io/v1beta1"


def discovery(path: str) -> bool:
    """Whether a path is the discovery of one API group version, such as /apis/metrics.k8s.io/v1beta1."""
    parts = path.strip("/").split("/")
    return parts[0] == "apis" and len(parts) == 3


def integral(value: Any) -> Any:
    """The value with whole floats made ints (Pulumi's mocks turn every number into a float)."""
    if isinstance(value, dict):
        return {key: integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [integral(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def rolled_out(manifest: dict) -> dict:
    """A workload as a cluster reports it once every replica is updated and ready."""
    replicas = manifest["spec"].get("replicas", 1)
    status = {
        "observedGeneration": 1,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
    }
    if manifest["kind"] == "StatefulSet":
        status |= {"currentRevision": "rev-1", "updateRevision": "rev-1"}
    return {**manifest, "metadata": {**manifest["metadata"], "generation": 1}, "status": status}


def pod_name(kind: str, workload: str) -> str:
    """The name a controller gives the first pod of a workload."""
    return f"{workload}-0" if kind == "StatefulSet" else f"{workload}-7d9f8c6b5-x2x4q"


def pod_of(workload: dict) -> dict:
    """A running, ready pod of a workload, as its controller would have created it."""
    template = workload["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(workload["kind"], workload["metadata"]["name"]),
            "uid": f"uid-{pod_name(workload['kind'], workload['metadata']['name'])}",
            "namespace": workload["metadata"]["namespace"],
            "labels": template["metadata"]["labels"],
        },
        "spec": template["spec"],
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }


def scaling(hpa: dict) -> dict:
    """An autoscaler as it reports itself once metrics-server serves its metric."""
    current = [
        {"type": "Resource", "resource": {"name": m["resource"]["name"], "current": {"averageUtilization": 12}}}
        for m in hpa["spec"]["metrics"]
    ]
    replicas = hpa["spec"]["minReplicas"]
    return {**hpa, "status": {"currentReplicas": replicas, "desiredReplicas": replicas, "currentMetrics": current}}


def budget(pdb: dict) -> dict:
    """A disruption budget over healthy pods, allowing one disruption."""
    status = {"currentHealthy": 2, "desiredHealthy": 1, "disruptionsAllowed": 1, "expectedPods": 2}
    return {**pdb, "status": status}


@dataclass
class FakeCluster:
    """Objects by kind and name, and where each pod's ports really are (pod, port) -> 127.0.0.1 port."""

    objects: dict[str, dict[str, dict]] = field(default_factory=dict)
    backends: dict[tuple[str, int], int] = field(default_factory=dict)
    rules: list[dict] = field(default_factory=list)
    """The rules of the verify Role, which TOKEN's requests are held to."""
    forbidden: list[str] = field(default_factory=list)
    """Every request refused with 403, as 'METHOD path'."""
    by_operator: list[str] = field(default_factory=list)
    """Every request made with OPERATOR_TOKEN, as 'METHOD path'."""
    forwarded: list[tuple[str, int]] = field(default_factory=list)
    """(pod, port) of every port-forward stream opened."""
    served: set[str] = field(default_factory=lambda: {METRICS_API})
    """The aggregated APIs this cluster serves, by discovery path (metrics-server's, as on a working cluster)."""

    @classmethod
    def healthy(cls, rendered: Rendered, every_pod: bool = False) -> "FakeCluster":
        """The rendered stack, rolled out and ready, one pod per workload (every_pod: each StatefulSet's every pod)."""
        cluster = cls({kind: {} for kind in ROUTES.values()})
        cluster.rules = integral(rendered.named("Role", names.VERIFY).inputs["rules"])
        for resource in rendered.resources:
            manifest = integral(copy.deepcopy(resource.inputs))
            kind = manifest.get("kind")
            if kind in ("Deployment", "StatefulSet"):
                manifest = rolled_out(manifest)
                pod = pod_of(manifest)
                cluster.objects["Pod"][pod["metadata"]["name"]] = pod
                if every_pod and kind == "StatefulSet":
                    for ordinal in range(1, manifest["spec"].get("replicas", 1)):
                        name = f"{manifest['metadata']['name']}-{ordinal}"
                        metadata = {**pod["metadata"], "name": name, "uid": f"uid-{name}"}
                        cluster.objects["Pod"][name] = {**pod, "metadata": metadata}
            elif kind == "HorizontalPodAutoscaler":
                manifest = scaling(manifest)
            elif kind == "PodDisruptionBudget":
                manifest = budget(manifest)
            if kind in cluster.objects:
                cluster.objects[kind][manifest["metadata"]["name"]] = manifest
        return cluster

    def refusal(
        self, authorization: str | None, method: str, path: str, query: dict[str, list[str]]
    ) -> tuple[int, dict] | None:
        """401 without a known token, 403 for what TOKEN's Role does not grant; None when the request may go on."""
        if authorization == f"Bearer {OPERATOR_TOKEN}":
            self.by_operator.append(f"{method} {path}")
            return None
        if authorization != f"Bearer {TOKEN}":
            return 401, status(401, "Unauthorized")
        if discovery(path):
            return None  # every authenticated user may read discovery (the system:discovery ClusterRole)
        wanted = attributes(method, path, query)
        # A websocket port-forward is a GET; newer API servers also require create on the subresource.
        verbs = ("get", "create") if wanted.resource == "pods/portforward" else (wanted.verb,)
        if all(permits(self.rules, replace(wanted, verb=verb)) for verb in verbs):
            return None
        self.forbidden.append(f"{method} {path}")
        return 403, status(
            403, f'{wanted.resource} is forbidden: User "system:serviceaccount:verify" cannot {wanted.verb}'
        )

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict]:
        """The API's answer to a GET: a list, one Service, or a Status for what is not there."""
        if discovery(path):
            resources = {"kind": "APIResourceList", "groupVersion": path.removeprefix("/apis/"), "resources": []}
            return (200, resources) if path in self.served else (404, status(404, "the server could not find it"))
        parts = path.strip("/").split("/")
        group = "v1" if parts[0] == "api" else "/".join(parts[1:3])
        rest = parts[2:] if parts[0] == "api" else parts[3:]
        if len(rest) < 3 or rest[0] != "namespaces" or (group, rest[2]) not in ROUTES:
            return 404, status(404, f"no route for {path}")
        kind = ROUTES[(group, rest[2])]
        if len(rest) == 4:
            found = self.objects[kind].get(rest[3])
            return (200, found) if found else (404, status(404, f'{rest[2]} "{rest[3]}" not found'))
        items = [o for o in self.objects[kind].values() if o["metadata"].get("namespace") == rest[1]]
        for selector in query.get("labelSelector", []):
            wanted = dict(term.split("=", 1) for term in selector.split(","))
            items = [o for o in items if wanted.items() <= o["metadata"].get("labels", {}).items()]
        return 200, {"apiVersion": group, "kind": f"{kind}List", "metadata": {}, "items": items}


def status(code: int, message: str) -> dict:
    """A Kubernetes Status object."""
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}


def json_response(code: int, body: dict) -> Response:
    """An HTTP response with a JSON body."""
    data = json.dumps(body).encode()
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return Response(code, "OK" if code == 200 else "Error", headers, data)


def relay(connection: ServerConnection, port: int, backend: int) -> None:
    """The pod side of a port-forward stream, relaying channel 0 to a real server's port."""
    opening = port.to_bytes(2, "little")
    connection.send(b"\x00" + opening)
    connection.send(b"\x01" + opening)
    with socket.create_connection(("127.0.0.1", backend), timeout=60) as upstream:

        def downstream() -> None:
            try:
                while data := upstream.recv(65536):
                    connection.send(b"\x00" + data)
            except (ConnectionClosed, OSError):  # the client went away first
                pass
            connection.close()

        threading.Thread(target=downstream, daemon=True).start()
        try:
            for message in connection:
                if isinstance(message, bytes) and message[:1] == b"\x00":
                    upstream.sendall(message[1:])
        except (ConnectionClosed, OSError):
            pass


def write_kubeconfig(workdir: Path, server: str, token: str = TOKEN) -> Path:
    """A kubeconfig that reaches the fake API server at `server` with a bearer token (verify's by default)."""
    kubeconfig = workdir / ("kubeconfig" if token == TOKEN else "kubeconfig-operator")
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": server}}],
                "users": [{"name": "verify", "user": {"token": token}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "verify"}}],
                "current-context": "fake",
            }
        )
    )
    return kubeconfig


@contextmanager
def fake_api_server(cluster: FakeCluster, workdir: Path) -> Iterator[Path]:
    """Serve the fake cluster on 127.0.0.1; yield a kubeconfig that reaches it with a bearer token."""

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        refused = cluster.refusal(request.headers.get("Authorization"), "GET", url.path, parse_qs(url.query))
        if refused:
            return json_response(*refused)
        if url.path.endswith("/portforward"):
            return None  # go on with the websocket handshake
        code, body = cluster.answer(url.path, parse_qs(url.query))
        return json_response(code, body)

    def handler(connection: ServerConnection) -> None:
        url = urlsplit(connection.request.path)
        pod = url.path.split("/")[-2]
        port = int(parse_qs(url.query)["ports"][0])
        cluster.forwarded.append((pod, port))
        backend = cluster.backends.get((pod, port))
        if backend is None:
            connection.send(b"\x00" + port.to_bytes(2, "little"))
            connection.send(b"\x01" + port.to_bytes(2, "little"))
            connection.send(b"\x01" + f"no backend for {pod}:{port}".encode())
            return
        relay(connection, port, backend)

    with serve(handler, "127.0.0.1", 0, process_request=process_request, subprotocols=[PORT_FORWARD]) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        host, port = server.socket.getsockname()[:2]
        kubeconfig = write_kubeconfig(workdir, f"http://{host}:{port}")
        try:
            yield kubeconfig
        finally:
            server.shutdown()
