"""A real ClickHouse on 127.0.0.1, configured like the pod: distribution defaults plus our overrides.

Debian's ClickHouse is 18.16; the image we deploy is 24.8. The generated files are fed to it in
their nearest 18.16 form (components.data.clickhouse.config.legacy_form), which lists every difference.
"""

import base64
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from components.data.clickhouse.config import (
    ADMIN,
    DATABASE,
    EVENTS_TABLE,
    INGEST,
    INTERSERVER,
    INTERSERVER_HOST_ENV,
    MIGRATE_SCRIPT,
    PRESTO,
    REPLICA_ENV,
    SHARD_ENV,
    Cluster,
    Endpoint,
    Ports,
    cluster_config,
    kafka_authentication_config,
    legacy_form,
    migration_files,
    password_hash,
    server_config,
    server_ordinal,
    users_config,
)
from components.data.kafka.config import SCRAM_MECHANISM
from components.settings.model import Settings
from tests.support.servers.process import ServerProcess, free_ports, installed

CLICKHOUSE_SERVER = Path("/usr/sbin/clickhouse-server")
DISTRIBUTION_CONFIG = Path("/etc/clickhouse-server")
PASSWORDS = {
    ADMIN: "admin-test-password-0001",
    INGEST: "ingest-test-password-0002",
    PRESTO: "presto-test-password-0003",
    INTERSERVER: "interserver-test-password-0004",
}


@dataclass
class ClickHouseNode:
    """A running server and how to reach it."""

    server: ServerProcess
    ports: Ports
    passwords: dict[str, str]
    replica: str = "clickhouse-0"
    """Its replica macro (the pod name in the cluster)."""

    @property
    def http(self) -> str:
        """Base URL of the HTTP interface."""
        return f"http://127.0.0.1:{self.ports.http}"


def grown_clickhouse(shards: int, replicas: int) -> dict:
    """Dev's overrides for a ClickHouse of shards x replicas, with a quota that holds it (and Keeper)."""
    quota = {"requests": {"cpu": "16", "memory": "32Gi"}, "limits": {"cpu": "32", "memory": "64Gi"}}
    return {"clickhouse": {"shards": shards, "replicas": replicas}, "quota": quota}


def server_ports() -> Ports:
    """Free loopback ports for one server."""
    http, native, metrics, interserver = free_ports(4)
    return Ports(http=http, native=native, metrics=metrics, interserver=interserver)


def loopback_cluster(ports: list[list[Ports]], keeper: tuple[Endpoint, ...] = ()) -> Cluster:
    """The cluster of servers on loopback: shards in order, each a list of its replicas' ports."""
    shards = tuple(tuple(Endpoint(host="127.0.0.1", port=p.native) for p in replicas) for replicas in ports)
    return Cluster(shards=shards, keeper=keeper)


def start_clickhouse(
    settings: Settings,
    workdir: Path,
    ports: Ports | None = None,
    kafka_login: tuple[str, str] | None = None,
    layout: Cluster | None = None,
    identity: tuple[int, str] = (1, "clickhouse-0"),
) -> ClickHouseNode:
    """Start ClickHouse with the distribution's config and the stack's config.d and users.d files.

    `kafka_login`: (user, password) the Kafka engine logs in with over SASL/SCRAM, as with kafka.authentication scram.
    `layout`: the cluster it belongs to (default: itself alone, as dev); `identity`: its shard (1-based) and
    replica name, which the pod's start script derives from its ordinal.
    """
    installed(CLICKHOUSE_SERVER, "ClickHouse (Debian package clickhouse-server)")
    ports = ports or server_ports()
    layout = layout or loopback_cluster([[ports]])
    etc = workdir / "etc"
    if not etc.exists():
        shutil.copytree(DISTRIBUTION_CONFIG, etc)
    (etc / "config.d").mkdir(exist_ok=True)
    (etc / "users.d").mkdir(exist_ok=True)
    config = server_config(
        settings, ports=ports, listen_host="127.0.0.1", data_path=f"{workdir}/data/", tmp_path=f"{workdir}/tmp/"
    )
    (etc / "config.d" / "qestack.xml").write_text(legacy_form(config))
    (etc / "config.d" / "qestack-cluster.xml").write_text(legacy_form(cluster_config(layout, PASSWORDS[INTERSERVER])))
    if kafka_login:
        login = kafka_authentication_config(*kafka_login, SCRAM_MECHANISM)
        (etc / "config.d" / "qestack-kafka.xml").write_text(legacy_form(login))
    users = users_config(settings, {user: password_hash(p) for user, p in PASSWORDS.items()})
    (etc / "users.d" / "qestack-users.xml").write_text(legacy_form(users))
    shard, replica = identity
    env = {SHARD_ENV: str(shard), REPLICA_ENV: replica, INTERSERVER_HOST_ENV: "127.0.0.1"}
    argv = [str(CLICKHOUSE_SERVER), f"--config-file={etc / 'config.xml'}"]
    server = ServerProcess("clickhouse", argv, ports.http, workdir / "clickhouse.log", cwd=workdir, env=env).start()
    return ClickHouseNode(server, ports, PASSWORDS, replica)


def query(node: ClickHouseNode, sql: str, user: str = ADMIN, password: str | None = None) -> str:
    """Run one statement over the HTTP interface as a user; raise ClickHouseRefused on an error."""
    request = urllib.request.Request(f"{node.http}/", data=sql.encode(), method="POST")
    token = base64.b64encode(f"{user}:{password or node.passwords[user]}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read().decode().strip()
    except urllib.error.HTTPError as error:
        raise ClickHouseRefusedError(error.read().decode(errors="replace").strip()) from None


class ClickHouseRefusedError(Exception):
    """ClickHouse answered a statement with an error."""


CLICKHOUSE_CLIENT = Path("/usr/bin/clickhouse-client")


def run_rows(node: ClickHouseNode, run_id: str) -> tuple[int, int]:
    """(rows, distinct events) of one run in the events table: a duplicate still visible shows as more rows."""
    found = query(node, f"SELECT count(), uniqExact(event_id) FROM {DATABASE}.{EVENTS_TABLE} WHERE run_id = '{run_id}'")
    rows, events = found.split("\t")
    return int(rows), int(events)


def until_run_events(node: ClickHouseNode, run_id: str, wanted: int, seconds: float = 60) -> int:
    """Wait until a run has `wanted` distinct events in the events table; how many it has."""
    deadline = time.monotonic() + seconds
    while (events := run_rows(node, run_id)[1]) < wanted and time.monotonic() < deadline:
        time.sleep(0.2)
    return events


def run_migrations(
    nodes: list["ClickHouseNode"],
    settings: Settings,
    kafka_bootstrap: str,
    *,
    upto: int | None = None,
    edit: Callable[[str], str] = str,
) -> subprocess.CompletedProcess[str]:
    """Run the schema Job's script over the servers with the stack's migrations in their 18.16 form, as ingest.

    `upto`: ship only the migrations up to this version (a stack deployed before the later ones); `edit`: a
    change to each migration's text (the pipeline bench's Kafka table overrides).
    """
    installed(CLICKHOUSE_CLIENT, "ClickHouse's client (Debian package clickhouse-client)")
    files = migration_files(settings, kafka_bootstrap)
    with tempfile.TemporaryDirectory(prefix="migrations-") as directory:
        for name, text in files.items():
            if name == MIGRATE_SCRIPT or upto is None or int(name[:4]) <= upto:
                Path(directory, name).write_text(text if name == MIGRATE_SCRIPT else edit(legacy_form(text)))
        servers = [f"127.0.0.1:{node.ports.native}" for node in nodes]
        env = {**os.environ, "CLICKHOUSE_USER": INGEST, "CLICKHOUSE_PASSWORD": nodes[0].passwords[INGEST]}
        command = ["/bin/sh", str(Path(directory, MIGRATE_SCRIPT)), directory, *servers]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)


def apply_schema(nodes: list["ClickHouseNode"], settings: Settings, kafka_bootstrap: str) -> None:
    """Apply the stack's pending migrations to its servers as the schema Job does; fail with the script's output."""
    result = run_migrations(nodes, settings, kafka_bootstrap)
    if result.returncode != 0:
        raise ClickHouseRefusedError(f"migrate.sh exited {result.returncode}: {result.stdout}{result.stderr}")


@dataclass
class ClickHouseCluster:
    """Servers started as shards of replicas, sharing a Keeper ensemble (ZooKeeper here)."""

    shards: list[list[ClickHouseNode]]

    @property
    def nodes(self) -> list[ClickHouseNode]:
        """Every server, in ordinal order (shard by shard)."""
        return [node for replicas in self.shards for node in replicas]

    def stop(self) -> None:
        """Stop every server."""
        for node in self.nodes:
            node.server.stop()


def start_cluster(settings: Settings, workdir: Path, keeper: tuple[Endpoint, ...]) -> ClickHouseCluster:
    """Start settings' shards x replicas servers on loopback as members of one cluster, each as its pod would be."""
    clickhouse = settings.clickhouse
    ports = [[server_ports() for _ in range(clickhouse.replicas)] for _ in range(clickhouse.shards)]
    layout = loopback_cluster(ports, keeper)
    shards: list[list[ClickHouseNode]] = []
    try:
        for shard, replicas in enumerate(ports):
            shards.append([])
            for replica, port in enumerate(replicas):
                ordinal = server_ordinal(shard, replica, clickhouse.replicas)
                name = f"clickhouse-{ordinal}"
                node = start_clickhouse(settings, workdir / name, port, layout=layout, identity=(shard + 1, name))
                shards[-1].append(node)
    except BaseException:
        ClickHouseCluster(shards).stop()
        raise
    return ClickHouseCluster(shards)
