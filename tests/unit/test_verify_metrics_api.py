"""verify's preflight says whether the API server serves the resource metrics API the HPA needs."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kubernetes import client

from verify.core.checks import CheckFailedError, Cleanup, Context, Figures
from verify.kube.checks import METRICS_API, Cluster, metrics_api_check


class Discovery(BaseHTTPRequestHandler):
    """An API server's discovery of the metrics API, answering with the class's status."""

    status = 404

    def do_GET(self) -> None:
        body = json.dumps({"kind": "APIResourceList", "groupVersion": "metrics.k8s.io/v1beta1", "resources": []})
        if self.status != 200 or self.path != METRICS_API:
            body = json.dumps({"kind": "Status", "code": self.status, "message": "the server could not find it"})
        self.send_response(self.status if self.path == METRICS_API else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *_: object) -> None:
        """Quiet."""


@pytest.fixture
def api_server() -> Iterator[type[Discovery]]:
    """A loopback server and a handler class whose status the test sets."""
    handler = type("Answer", (Discovery,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    handler.port = server.server_address[1]  # type: ignore[attr-defined]
    yield handler
    server.shutdown()


def check(handler: type[Discovery]) -> Figures:
    """Run the metrics API check against the loopback server; what it measured."""
    configuration = client.Configuration(host=f"http://127.0.0.1:{handler.port}")  # type: ignore[attr-defined]
    cluster = Cluster(client.ApiClient(configuration), "query-engine")
    probe = metrics_api_check(cluster, ("presto-worker",)).probe
    return probe(Context(run_id="metrics-api", targets=None, cleanup=Cleanup()))


def test_no_metrics_server_is_named_with_the_autoscaler_and_the_fix(api_server: type[Discovery]) -> None:
    api_server.status = 404
    with pytest.raises(CheckFailedError) as failed:
        check(api_server)
    message = str(failed.value)
    assert "is not served: no metrics-server is installed" in message
    assert "presto-worker cannot scale" in message
    assert "minikube addons enable metrics-server" in message


def test_a_registered_but_unavailable_metrics_server_is_told_apart(api_server: type[Discovery]) -> None:
    api_server.status = 503
    with pytest.raises(CheckFailedError, match=r"answers 503 .*registered but not serving"):
        check(api_server)


def test_a_served_metrics_api_passes(api_server: type[Discovery]) -> None:
    api_server.status = 200
    assert check(api_server) == {"autoscalers": 1}
