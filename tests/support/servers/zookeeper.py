"""A real ZooKeeper ensemble on 127.0.0.1 (Debian's 3.8.0 jars), the coordination replicated ClickHouse tables need.

Each node has its own dataDir, myid and zoo.cfg under workdir/zk-N and its own client, quorum and election
ports (pods share ports; processes on one host cannot). The admin server is off; only the four-letter
words ruok, srvr and mntr are allowed, which the readiness wait uses.
"""

import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from tests.support.servers.process import ServerError, ServerProcess, free_ports, installed

ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")
"""Debian's jar: its manifest's Class-Path names every dependency under /usr/share/java."""
LOGGER_JAR = Path("/usr/share/java/slf4j-simple.jar")
"""The jar alone logs nothing (slf4j without a binding); libslf4j-java, a dependency, ships this one (stderr)."""
MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
FOUR_LETTER_WORDS = "ruok,srvr,mntr"
TICK_MS = 500
"""Shorter than the usual 2000 ms, so elections and session expiry take seconds in the tests."""
SERVING_MODES = ("leader", "follower", "standalone")


def four_letter_word(port: int, word: str, timeout: float = 2.0) -> str:
    """Send a four-letter word to a node's client port and return the answer ('' when it cannot be reached)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
            connection.sendall(word.encode())
            chunks = []
            while chunk := connection.recv(4096):
                chunks.append(chunk)
    except OSError:
        return ""
    return b"".join(chunks).decode(errors="replace")


def mode(port: int) -> str:
    """The node's Mode from srvr (leader, follower, standalone), or '' while it does not serve requests."""
    for line in four_letter_word(port, "srvr").splitlines():
        if line.startswith("Mode: "):
            return line.removeprefix("Mode: ").strip()
    return ""


def serving(port: int) -> bool:
    """Whether the node answers ruok with imok and srvr with a serving Mode."""
    return four_letter_word(port, "ruok") == "imok" and mode(port) in SERVING_MODES


@dataclass
class ZooKeeperNode:
    """One node of the ensemble and its ports."""

    myid: int
    server: ServerProcess
    client_port: int
    quorum_port: int
    election_port: int
    directory: Path

    @property
    def mode(self) -> str:
        """leader, follower or standalone; '' while down or without quorum."""
        return mode(self.client_port)


@dataclass
class ZooKeeperEnsemble:
    """The running nodes; the hosts list is what a ClickHouse <zookeeper> section names."""

    nodes: list[ZooKeeperNode]

    @property
    def hosts(self) -> list[tuple[str, int]]:
        """(host, client port) of every node, in myid order."""
        return [("127.0.0.1", node.client_port) for node in self.nodes]

    @property
    def connect_string(self) -> str:
        """host:port,host:port,... for a ZooKeeper client."""
        return ",".join(f"{host}:{port}" for host, port in self.hosts)

    def node(self, myid: int) -> ZooKeeperNode:
        """The node with this myid (1-based)."""
        return next(node for node in self.nodes if node.myid == myid)

    def leader(self) -> ZooKeeperNode:
        """The node that is leader now, or a failure."""
        for node in self.nodes:
            if node.mode == "leader":
                return node
        raise ServerError("no ZooKeeper node is leader: " + ", ".join(f"{n.myid}={n.mode or '-'}" for n in self.nodes))

    def kill(self, myid: int) -> None:
        """Kill -9 one node, as a crashed pod would die."""
        self.node(myid).server.kill()

    def stop(self, myid: int) -> None:
        """Stop one node gracefully (SIGTERM)."""
        self.node(myid).server.stop()

    def restart(self, myid: int, deadline: float = 60.0) -> ZooKeeperNode:
        """Start a stopped or killed node again on its ports and data, and wait until it serves (needs a quorum)."""
        node = self.node(myid)
        node.server.stop()
        node.server.launch().wait_ready(deadline)
        return node

    def wait_ready(self, deadline: float = 60.0) -> None:
        """Wait until every running node serves as leader or follower, or fail with the logs of those that do not."""
        began = time.monotonic()
        running = [n for n in self.nodes if n.server.process and n.server.process.poll() is None]
        while time.monotonic() - began < deadline:
            if all(serving(node.client_port) for node in running):
                return
            time.sleep(0.2)
        late = [n for n in running if not serving(n.client_port)]
        raise ServerError(
            "ZooKeeper nodes not serving within "
            f"{deadline:.0f} s:\n" + "\n".join(f"-- zk-{n.myid}:\n{n.server.tail()}" for n in late)
        )

    def stop_all(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.server.stop()


def zoo_cfg(data_dir: Path, client_port: int, peers: list[tuple[int, int, int]]) -> str:
    """A node's zoo.cfg: `peers` holds (myid, quorum port, election port) for every node, none for a standalone one."""
    lines = [
        f"tickTime={TICK_MS}",
        "initLimit=20",
        "syncLimit=10",
        # ClickHouse asks for 30 s sessions; the default ceiling (20 ticks) would cut that to 10 s.
        "maxSessionTimeout=30000",
        f"dataDir={data_dir}",
        f"clientPort={client_port}",
        "clientPortAddress=127.0.0.1",
        "admin.enableServer=false",
        f"4lw.commands.whitelist={FOUR_LETTER_WORDS}",
    ]
    if peers:
        lines.append("standaloneEnabled=false")
        lines += [f"server.{myid}=127.0.0.1:{quorum}:{election}" for myid, quorum, election in peers]
    return "\n".join(lines) + "\n"


def java() -> Path:
    """The java on PATH (Debian's default-jre, a dependency of the zookeeper package)."""
    found = shutil.which("java")
    if found is None:
        raise ServerError("java is not on PATH: run scripts/test, which installs ZooKeeper and its JRE")
    return Path(found)


def start_ensemble(workdir: Path, count: int = 3, deadline: float = 60.0) -> ZooKeeperEnsemble:
    """Start `count` nodes at once (a quorum needs a majority up) and wait until each is leader or follower."""
    installed(ZOOKEEPER_JAR, "ZooKeeper (Debian package zookeeper)")
    installed(LOGGER_JAR, "slf4j-simple (Debian package libslf4j-java)")
    every = free_ports(3 * count)
    layout = [(n + 1, *every[3 * n : 3 * n + 3]) for n in range(count)]
    peers = [(myid, quorum, election) for myid, _, quorum, election in layout] if count > 1 else []
    nodes = []
    for myid, client, quorum, election in layout:
        directory = workdir / f"zk-{myid}"
        data = directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        (data / "myid").write_text(f"{myid}\n")
        config = directory / "zoo.cfg"
        config.write_text(zoo_cfg(data, client, peers))
        argv = [
            str(java()),
            "-Xmx256m",
            "-Dzookeeper.admin.enableServer=false",
            "-Dorg.slf4j.simpleLogger.showDateTime=true",
            "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd HH:mm:ss.SSS",
            "-cp",
            f"{ZOOKEEPER_JAR}:{LOGGER_JAR}",
            MAIN,
            str(config),
        ]
        server = ServerProcess(
            f"zookeeper-{myid}",
            argv,
            client,
            directory / "zookeeper.log",
            cwd=directory,
            ready=partial(serving, client),
        )
        nodes.append(ZooKeeperNode(myid, server, client, quorum, election, directory))
    ensemble = ZooKeeperEnsemble(nodes)
    try:
        for node in nodes:
            node.server.launch()
        for node in nodes:
            node.server.wait_ready(deadline)
    except BaseException:
        ensemble.stop_all()
        raise
    return ensemble


@contextmanager
def zookeeper_ensemble(workdir: Path, count: int = 3) -> Iterator[ZooKeeperEnsemble]:
    """An ensemble for the duration of a with block, stopped after."""
    ensemble = start_ensemble(workdir, count)
    try:
        yield ensemble
    finally:
        ensemble.stop_all()
