"""Real Prometheus, promtool and Alertmanager (Debian's packages) on 127.0.0.1, with the stack's files."""

import json
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

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
    binary: Path,
    config_name: str,
    files: dict[str, str],
    storage_flag: str,
    workdir: Path,
    *extra: str,
    port: int | None = None,
) -> ServerProcess:
    """Write the files into workdir and serve them on a free loopback port, until ready: the two share flags."""
    installed(binary, f"{binary.name} (scripts/servers/install-prometheus)")
    workdir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (workdir / name).write_text(text)
    port = port or free_ports(1)[0]
    command = [
        str(binary),
        f"--config.file={workdir / config_name}",
        f"{storage_flag}={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        *extra,
    ]
    log = workdir / f"{binary.name}.log"
    return ServerProcess(binary.name, command, port, log, {}, ready=lambda: answers_ready(port)).start()


def answers_ready(port: int) -> bool:
    """Both servers answer /-/ready with 200 once they serve their API (503 while loading)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def start_alertmanager(config: str, workdir: Path) -> ServerProcess:
    """Alertmanager with the stack's config, alone (no cluster peers)."""
    files = {"alertmanager.yml": config}
    return _serve(ALERTMANAGER, "alertmanager.yml", files, "--storage.path", workdir, "--cluster.listen-address=")


def start_prometheus(config: str, files: dict[str, str], workdir: Path, port: int | None = None) -> ServerProcess:
    """Prometheus with a prometheus.yml and the files it names (rule files), in workdir, on a port if given."""
    files = {"prometheus.yml": config, **files}
    return _serve(PROMETHEUS, "prometheus.yml", files, "--storage.tsdb.path", workdir, port=port)
