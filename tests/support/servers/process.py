"""Real server processes for the integration tests: start with a deadline, stop, kill, pause.

A server that does not come up is a test failure carrying the tail of its log, never a skip.
"""

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from components.observability.jmx_exporter import AGENT_VERSION

CACHE = Path(os.environ.get("QUERY_ENGINE_STACK_CACHE", Path.home() / ".cache" / "query-engine-stack"))
"""Where scripts/servers/* install the servers: outside the clone, shared by every run on the machine."""


JMX_EXPORTER_JARS = CACHE / "m2" / "io" / "prometheus" / "jmx"


def jmx_exporter_jar(artifact: str) -> Path:
    """The exporter jar scripts/servers/install-jmx-exporter fetched (jmx_prometheus_javaagent or _httpserver)."""
    return installed(JMX_EXPORTER_JARS / artifact / AGENT_VERSION / f"{artifact}-{AGENT_VERSION}.jar", artifact)


class ServerError(AssertionError):
    """A server did not start (or stop) as expected; the message carries its log tail."""


def free_ports(count: int) -> list[int]:
    """Distinct TCP ports nobody listens on right now.

    Every probe socket stays open until all are bound: ports taken one at a time can repeat.
    """
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on the port."""
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError:
        return False
    return True


def installed(path: Path, what: str) -> Path:
    """The path of an installed server, or a failure telling how to install it."""
    if not path.exists():
        raise ServerError(f"{what} is not installed at {path}: run scripts/test, which installs it")
    return path


@dataclass
class ServerProcess:
    """One server process with its log file."""

    name: str
    argv: list[str]
    port: int
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    ready: Callable[[], bool] = lambda: True
    """Extra readiness check, once the port is open (e.g. an HTTP status)."""
    process: subprocess.Popen | None = None
    started_in: float = 0.0
    """Seconds from launch to ready, for the figures."""
    _began: float = 0.0

    def start(self, deadline: float = 120.0) -> "ServerProcess":
        """Launch and wait until ready, or fail with the log tail."""
        return self.launch().wait_ready(deadline)

    def launch(self) -> "ServerProcess":
        """Start the process without waiting."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._began = time.monotonic()
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                self.argv,
                env={**os.environ, **self.env},
                cwd=self.cwd,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_ready(self, deadline: float = 120.0) -> "ServerProcess":
        """Wait until the port accepts connections and the readiness check passes."""
        assert self.process is not None, f"{self.name} was never launched"
        while time.monotonic() - self._began < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")
            if port_open(self.port) and self.ready():
                self.started_in = time.monotonic() - self._began
                return self
            time.sleep(0.1)
        self.stop()
        raise ServerError(f"{self.name} did not open port {self.port} within {deadline:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        """The last lines of the log."""
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def _signal_group(self, sig: signal.Signals) -> None:
        """Send a signal to the server and everything it started."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)

    def stop(self, grace: float = 30.0) -> None:
        """Stop gracefully (SIGTERM), then SIGKILL after the grace period."""
        if not self.process or self.process.poll() is not None:
            return
        self._signal_group(signal.SIGCONT)
        self._signal_group(signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """Kill -9, as a crashed pod would die."""
        self._signal_group(signal.SIGKILL)
        if self.process:
            self.process.wait(30)

    def pause(self) -> None:
        """SIGSTOP: the process hangs with its port still open."""
        self._signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after pause."""
        self._signal_group(signal.SIGCONT)
