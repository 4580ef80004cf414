"""Real Prometheus, promtool and Alertmanager (Debian's packages) on 127.0.0.1, with the stack's files and flags."""

import json
import subprocess
import threading
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from components.observability.alertmanager.config import Cluster, alertmanager_args
from components.observability.prometheus.config import REPLICA_FLAGS
from tests.support.servers.process import CACHE, ServerProcess, free_ports, installed

PROMETHEUS = Path("/usr/bin/prometheus")
PROMTOOL = Path("/usr/bin/promtool")
ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")
AMTOOL = Path("/usr/bin/amtool")
PROMTOOL_2_53 = CACHE / "prometheus-2.53.4" / "promtool"
"""The image's promtool, with Kubernetes service discovery (scripts/servers/install-promtool)."""


def run_tool(tool: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run promtool or amtool; the caller asserts on the result."""
    installed(tool, f"{tool.name} (scripts/servers/install-prometheus)")
    return subprocess.run([str(tool), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def get_json(url: str) -> dict:
    """GET a JSON API on loopback, with a deadline."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


@dataclass
class Monitoring:
    """A running Prometheus and the Alertmanager it sends to."""

    prometheus: ServerProcess
    alertmanager: ServerProcess

    def api(self, path: str) -> dict:
        """Prometheus HTTP API."""
        return get_json(f"http://127.0.0.1:{self.prometheus.port}{path}")

    def alerts_in_alertmanager(self) -> list[dict]:
        """The alerts Alertmanager holds."""
        return get_json(f"http://127.0.0.1:{self.alertmanager.port}/api/v2/alerts")  # type: ignore[return-value]


def _serve(
    binary: Path, files: dict[str, str], workdir: Path, args: list[str], port: int, env: dict[str, str] | None = None
) -> ServerProcess:
    """Write the files into workdir and run the binary with these flags until it answers ready on port."""
    installed(binary, f"{binary.name} (scripts/servers/install-prometheus)")
    workdir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (workdir / name).write_text(text)
    log = workdir / f"{binary.name}.log"
    return ServerProcess(
        binary.name, [str(binary), *args], port, log, env or {}, ready=lambda: answers_ready(port)
    ).start()


def answers_ready(port: int) -> bool:
    """Both servers answer /-/ready with 200 once they serve their API (503 while loading)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def start_alertmanager(
    config: str, workdir: Path, port: int | None = None, cluster: Cluster | None = None
) -> ServerProcess:
    """Alertmanager with the stack's config and the pods' flags: alone, or gossiping as one peer of a cluster."""
    port = port or free_ports(1)[0]
    args = alertmanager_args(
        config_file=str(workdir / "alertmanager.yml"),
        storage_path=str(workdir / "data"),
        web=f"127.0.0.1:{port}",
        cluster=cluster,
    )
    return _serve(ALERTMANAGER, {"alertmanager.yml": config}, workdir, args, port)


@dataclass
class AlertmanagerCluster:
    """Alertmanager peers on loopback, each with its own web and gossip ports, every one listing them all."""

    config: str
    workdir: Path
    web_ports: list[int]
    gossip_ports: list[int]
    peers: list[ServerProcess] = field(default_factory=list)

    def cluster(self, index: int) -> Cluster:
        """Peer index's gossip flags: what the pods get, with loopback addresses and its own port."""
        own = f"127.0.0.1:{self.gossip_ports[index]}"
        return Cluster(listen=own, advertise=own, peers=tuple(f"127.0.0.1:{port}" for port in self.gossip_ports))

    def start(self, index: int, fresh: bool = False) -> ServerProcess:
        """Start peer index; fresh: with an empty data directory, as a new pod's emptyDir."""
        workdir = self.workdir / f"alertmanager-{index}"
        if fresh:
            workdir = workdir.with_name(f"{workdir.name}-restarted")
        peer = start_alertmanager(self.config, workdir, self.web_ports[index], self.cluster(index))
        if index < len(self.peers):
            self.peers[index] = peer
        else:
            self.peers.append(peer)
        return peer

    def api(self, index: int, path: str) -> Any:
        """GET peer index's API."""
        return get_json(f"http://127.0.0.1:{self.web_ports[index]}{path}")

    def post(self, index: int, path: str, body: object) -> Any:
        """POST JSON to peer index's API; its answer, if any."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.web_ports[index]}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read()
        return json.loads(text) if text else None

    def stop(self) -> None:
        """Stop every peer."""
        for peer in self.peers:
            peer.stop()


def start_alertmanager_cluster(config: str, workdir: Path, count: int = 3) -> AlertmanagerCluster:
    """Alertmanagers (count of them) gossiping on loopback, each started with every peer's address, as the pods are."""
    ports = free_ports(2 * count)
    cluster = AlertmanagerCluster(config, workdir, ports[:count], ports[count:])
    for index in range(count):
        cluster.start(index)
    return cluster


def start_prometheus(
    config: str, files: dict[str, str], workdir: Path, port: int | None = None, pod: str = "prometheus-0"
) -> ServerProcess:
    """Prometheus with a prometheus.yml and its files, with the pods' flags, as the pod named pod."""
    port = port or free_ports(1)[0]
    args = [
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        *REPLICA_FLAGS,
    ]
    return _serve(PROMETHEUS, {"prometheus.yml": config, **files}, workdir, args, port, {"POD_NAME": pod})


class Webhook:
    """A loopback HTTP receiver that records every notification Alertmanager posts to it."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                """Keep the test output quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        """Where Alertmanager posts."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def notifications(self, alertname: str) -> list[dict]:
        """The notifications received for one alert's group."""
        return [n for n in list(self.received) if n["groupLabels"].get("alertname") == alertname]

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
