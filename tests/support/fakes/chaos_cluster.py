"""The fake cluster, writable: the calls `verify failover` makes, answered as the API server and its controllers do.

- DELETE of a pod: the pod goes at once (grace period 0); its controller creates a replacement (a
  StatefulSet's under the same name, a Deployment's under a new one, each with a new uid) that turns
  Ready after `restart_seconds`.
- Chaos Mesh's custom objects (chaos-mesh.org/v1alpha1 podchaos, networkchaos, stresschaos): created
  only when valid for the vendored CRD schemas (else 422, as the API server's structural validation
  answers), 409 when the name exists, listed by label, and deleted the way Chaos Mesh finalizes them:
  gone after one more list, or never for a name in `stuck` (a finalizer that cannot complete). When
  Chaos Mesh is not installed, every such path is 404, as the API server answers for an unknown group.
- The workers' HorizontalPodAutoscaler follows `hpa_timeline`: (seconds since its first read,
  current replicas, desired replicas).
"""

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from typing_extensions import override

from components import names
from tests.support.chaos_schema import problems
from tests.support.fakes.kubernetes import OPERATOR_TOKEN, TOKEN, FakeCluster, status, write_kubeconfig
from tests.support.verify_harness import JsonHandler
from verify.kube.checks import Cluster

CHAOS = "/apis/chaos-mesh.org/v1alpha1/namespaces/"


@dataclass
class Writable:
    """A FakeCluster and what the failover calls change in it."""

    cluster: FakeCluster
    chaos_mesh: bool = True
    restart_seconds: float = 1.0
    stuck: set[str] = field(default_factory=set)
    hpa_timeline: list[tuple[float, int, int]] = field(default_factory=list)
    custom: dict[str, dict[str, dict]] = field(default_factory=dict)
    """Chaos Mesh objects by plural and name."""
    deleted_pods: list[tuple[str, str]] = field(default_factory=list)
    """(name, gracePeriodSeconds) of each pod deletion."""
    created: list[dict] = field(default_factory=list)
    """Every Chaos Mesh object created, in order."""
    _ready_at: dict[str, float] = field(default_factory=dict)
    _finalizing: set[str] = field(default_factory=set)
    _hpa_since: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict]:
        """A read: Chaos Mesh lists, the autoscaler on its timeline, pods with their replacement's readiness."""
        if path.startswith(CHAOS):
            return self._chaos_list(path, query)
        code, body = self.cluster.answer(path, query)
        if body.get("kind") == "PodList":
            body["items"] = [self._with_readiness(pod) for pod in body["items"]]
        if body.get("kind") == "HorizontalPodAutoscaler" and self.hpa_timeline:
            body = self._on_timeline(body)
        return code, body

    def _with_readiness(self, pod: dict) -> dict:
        ready = time.monotonic() >= self._ready_at.get(pod["metadata"]["uid"], 0)
        conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
        return {**pod, "status": {"phase": "Running", "conditions": conditions}}

    def _on_timeline(self, hpa: dict) -> dict:
        self._hpa_since = self._hpa_since or time.monotonic()
        elapsed = time.monotonic() - self._hpa_since
        current, desired = next(
            ((c, d) for at, c, d in reversed(self.hpa_timeline) if elapsed >= at), self.hpa_timeline[0][1:]
        )
        return {**hpa, "status": {**hpa["status"], "currentReplicas": current, "desiredReplicas": desired}}

    def _chaos_list(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict]:
        if not self.chaos_mesh:
            return 404, status(404, "the server could not find the requested resource")
        plural = path[len(CHAOS) :].split("/")[1]
        with self._lock:
            objects = self.custom.setdefault(plural, {})
            for name in [n for n in self._finalizing if n in objects and n not in self.stuck]:
                del objects[name]  # Chaos Mesh finished restoring and dropped its finalizer
                self._finalizing.discard(name)
            self._finalizing |= {n for n, o in objects.items() if "deletionTimestamp" in o["metadata"]}
            items = list(objects.values())
        for selector in query.get("labelSelector", []):
            wanted = dict(term.split("=", 1) for term in selector.split(","))
            items = [o for o in items if wanted.items() <= o["metadata"].get("labels", {}).items()]
        return 200, {"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "List", "metadata": {}, "items": items}

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        """Create a Chaos Mesh object."""
        if not self.chaos_mesh or not path.startswith(CHAOS):
            return 404, status(404, "the server could not find the requested resource")
        plural = path[len(CHAOS) :].split("/")[1]
        found = problems(body)
        if found:
            return 422, status(422, f"{body['kind']}.chaos-mesh.org is invalid: {'; '.join(found)}")
        name = body["metadata"]["name"]
        with self._lock:
            objects = self.custom.setdefault(plural, {})
            if name in objects:
                return 409, status(409, f'{plural}.chaos-mesh.org "{name}" already exists')
            stored = {**body, "metadata": {**body["metadata"], "uid": str(uuid.uuid4()), "finalizers": ["chaos-mesh"]}}
            objects[name] = stored
            self.created.append(stored)
        return 201, stored

    def delete(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict]:
        """Delete a pod (replaced by its controller) or a Chaos Mesh object (finalized later)."""
        parts = path.strip("/").split("/")
        if path.startswith(CHAOS):
            if not self.chaos_mesh:
                return 404, status(404, "the server could not find the requested resource")
            plural, name = parts[-2], parts[-1]
            with self._lock:
                found = self.custom.get(plural, {}).get(name)
                if found is None:
                    return 404, status(404, f'{plural}.chaos-mesh.org "{name}" not found')
                found["metadata"]["deletionTimestamp"] = "2026-11-24T00:00:00Z"
            return 200, found
        if parts[:2] == ["api", "v1"] and parts[4] == "pods":
            return self._replace_pod(parts[5], query.get("gracePeriodSeconds", ["30"])[0])
        return 404, status(404, f"no route for {path}")

    def _replace_pod(self, name: str, grace: str) -> tuple[int, dict]:
        pods = self.cluster.objects["Pod"]
        pod = pods.pop(name, None)
        if pod is None:
            return 404, status(404, f'pods "{name}" not found')
        self.deleted_pods.append((name, grace))
        prefix, suffix = name.rsplit("-", 1)
        stateful = suffix.isdigit() and prefix in self.cluster.objects["StatefulSet"]
        new_name = name if stateful else f"{prefix}-{uuid.uuid4().hex[:5]}"  # a StatefulSet's pod keeps its name
        replacement = {**pod, "metadata": {**pod["metadata"], "name": new_name, "uid": str(uuid.uuid4())}}
        self._ready_at[replacement["metadata"]["uid"]] = time.monotonic() + self.restart_seconds
        pods[new_name] = replacement
        return 200, pod


@contextmanager
def fake_writable_api(writable: Writable, workdir: Path) -> Iterator[Path]:
    """Serve the writable fake cluster over HTTP on 127.0.0.1; yield a kubeconfig that reaches it."""

    class Handler(JsonHandler):
        def _answer(self, method: str) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            refused = writable.cluster.refusal(self.headers.get("Authorization"), method, url.path, query)
            if refused:
                return self._json(*refused)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if method == "GET":
                return self._json(*writable.get(url.path, query))
            if method == "POST" and url.path.endswith(f"/serviceaccounts/{names.VERIFY}/token"):
                # TokenRequest: the operator mints the verify ServiceAccount's token.
                return self._json(
                    201, {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1", "status": {"token": TOKEN}}
                )
            if method == "POST":
                return self._json(*writable.post(url.path, body))
            if "gracePeriodSeconds" in body:
                query["gracePeriodSeconds"] = [str(body["gracePeriodSeconds"])]
            return self._json(*writable.delete(url.path, query))

        @override
        def do_GET(self) -> None:
            """Reads."""
            self._answer("GET")

        @override
        def do_POST(self) -> None:
            """Creates."""
            self._answer("POST")

        @override
        def do_DELETE(self) -> None:
            """Deletes."""
            self._answer("DELETE")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # Beside the verify ServiceAccount's kubeconfig, an operator's (kubeconfig-operator), who may mint its token.
        write_kubeconfig(workdir, f"http://127.0.0.1:{server.server_address[1]}", OPERATOR_TOKEN)
        yield write_kubeconfig(workdir, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()


@dataclass
class Api:
    """The writable fake cluster, its kubeconfig, and a verify client of it."""

    writable: Writable
    kubeconfig: Path
    cluster: Cluster
