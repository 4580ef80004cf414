"""A real Presto (coordinator and one worker) on 127.0.0.1, started with the stack's files and script.

presto-server 0.287 runs on Java 11 here (scripts/servers/install-presto says why). That runtime lacks
the jdk.httpserver module the JMX exporter's Java agent needs, so the coordinator's metrics come from
the standalone exporter (same version, the stack's own rules) reading its JMX over RMI on loopback.
"""

import json
import os
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import prestodb

from components.data.presto.config import (
    CLICKHOUSE_CATALOGS,
    KEYSTORE_FILE,
    PASSWORD_FILE,
    ClientAccess,
    clickhouse_jdbc_url,
    password_entry,
    start_script,
    template_files,
)
from components.observability.jmx_exporter import CONFIG_FILE, presto_exporter_config
from components.settings.model import Settings
from tests.support.servers.certificates import ServingFiles, issue
from tests.support.servers.process import CACHE, ServerError, ServerProcess, free_ports, installed, jmx_exporter_jar

PRESTO_VERSION = "0.287"
PRESTO_HOME = CACHE / f"presto-server-{PRESTO_VERSION}"
JAVA_HOME = CACHE / "java-11"
SHARED_SECRET = "test-shared-secret-for-internal-jwt-0000000000000000"
USERS = {user: f"test-{user}-password-0123456789" for user in ("admin", "analyst", "ingest")}


@dataclass(frozen=True)
class Jmx:
    """Test-only: the RMI ports through which the standalone exporter reads the coordinator's MBeans."""

    registry_port: int
    server_port: int


@dataclass(frozen=True)
class Clients:
    """The coordinator's client side: its HTTPS port, its certificate files and its users."""

    port: int
    tls: ServingFiles


@dataclass
class PrestoCluster:
    """A running coordinator and worker."""

    coordinator: ServerProcess
    worker: ServerProcess
    exporter: ServerProcess
    """The JMX exporter serving the coordinator's metrics."""
    port: int
    """The nodes' HTTP port on the coordinator (no client authentication)."""
    clients: Clients
    """Where clients connect: HTTPS with a password."""


def start_node(
    settings: Settings,
    workdir: Path,
    *,
    coordinator: bool,
    port: int,
    discovery_port: int,
    clickhouse_http: str,
    clickhouse_passwords: dict[str, str],
    kafka_bootstrap: str,
    clients: Clients | None = None,
    jmx: Jmx | None = None,
) -> ServerProcess:
    """Start one node through the stack's start script; the coordinator serves clients if given."""
    installed(PRESTO_HOME / ".installed", "Presto")
    installed(JAVA_HOME / "bin" / "java", "Java 11 for Presto")
    templates, secrets = workdir / "templates", workdir / "secrets"
    templates.mkdir(parents=True, exist_ok=True)
    secrets.mkdir(exist_ok=True)
    files = template_files(
        settings.presto,
        coordinator=coordinator,
        environment="test",
        http_port=port,
        discovery_uri=f"http://127.0.0.1:{discovery_port}",
        data_dir=str(workdir / "data"),
        # Test-only: ClickHouse 18.16 fails an internal assertion (Poco HTTPServerResponseImpl, "!_pStream")
        # writing the driver's compressed responses and sends an empty body; 24.8 does not.
        clickhouse_jdbc_url=clickhouse_jdbc_url(clickhouse_http) + "?compress=0",
        kafka_nodes=kafka_bootstrap,
        topic=settings.kafka.topic.name,
        etc_dir=str(workdir / "etc"),
        clients=ClientAccess(
            port=clients.port,
            keystore=str(workdir / "etc" / KEYSTORE_FILE),
            password_file=str(secrets / PASSWORD_FILE),
        )
        if clients
        else None,
    )
    # Test-only: a node announces the address it detects, which here is not loopback; in a pod the
    # detected address is the pod IP, which is right.
    files["node.properties"] += "node.internal-address=127.0.0.1\n"
    if jmx:
        # Test-only: remote JMX on loopback for the standalone exporter (the pod loads the agent instead).
        files["config.properties"] += (
            f"jmx.rmiregistry.port={jmx.registry_port}\njmx.rmiserver.port={jmx.server_port}\n"
        )
        files["jvm.config"] += (
            f"-Djava.rmi.server.hostname=127.0.0.1\n-Dcom.sun.management.jmxremote.rmi.port={jmx.server_port}\n"
        )
    for key, text in files.items():
        (templates / key).write_text(text)
    (secrets / "shared-secret").write_text(SHARED_SECRET)
    for catalog, user in CLICKHOUSE_CATALOGS.items():
        (secrets / f"{catalog}-password").write_text(clickhouse_passwords[user])
    if clients:
        (secrets / "tls.key").write_bytes(clients.tls.tls_key.read_bytes())
        (secrets / "tls.crt").write_bytes(clients.tls.tls_crt.read_bytes())
        (secrets / PASSWORD_FILE).write_text(
            "".join(password_entry(user, password, os.urandom(16)) for user, password in USERS.items())
        )
    script = workdir / "start.sh"
    script.write_text(start_script())
    env = {
        "POD_NAME": f"{'coordinator' if coordinator else 'worker'}-{port}",
        "PRESTO_HOME": str(PRESTO_HOME),
        "TEMPLATE_DIR": str(templates),
        "SECRETS_DIR": str(secrets),
        "ETC_DIR": str(workdir / "etc"),
        "DATA_DIR": str(workdir / "data"),
        "PATH": f"{JAVA_HOME / 'bin'}:{os.environ['PATH']}",
    }
    name = "presto-coordinator" if coordinator else "presto-worker"
    return ServerProcess(name, ["/bin/sh", str(script)], port, workdir / "server.log", env, ready=lambda: serving(port))


def serving(port: int) -> bool:
    """Whether the node at port has finished starting."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/info", timeout=2) as response:
            return json.load(response).get("starting") is False
    except (OSError, ValueError):
        return False


def start_cluster(
    settings: Settings, workdir: Path, clickhouse_http: str, clickhouse_passwords: dict[str, str], kafka_bootstrap: str
) -> PrestoCluster:
    """Start a coordinator and a worker in parallel, and wait until the worker has joined."""
    port, worker_port, https_port, registry, rmi, metrics = free_ports(6)
    clients = Clients(https_port, issue(workdir / "tls", "presto-coordinator"))
    jmx = Jmx(registry, rmi)
    common = {
        "discovery_port": port,
        "clickhouse_http": clickhouse_http,
        "clickhouse_passwords": clickhouse_passwords,
        "kafka_bootstrap": kafka_bootstrap,
    }
    coordinator = start_node(
        settings, workdir / "coordinator", coordinator=True, port=port, clients=clients, jmx=jmx, **common
    ).launch()
    worker = start_node(settings, workdir / "worker", coordinator=False, port=worker_port, **common).launch()
    coordinator.wait_ready(180)
    worker.wait_ready(180)
    deadline = time.monotonic() + 60
    while active_nodes(port) < 2:
        if time.monotonic() > deadline:
            raise ServerError(f"the worker never joined the coordinator:\n{worker.tail()}")
        time.sleep(0.5)
    exporter = start_exporter(workdir / "exporter", jmx, metrics)
    return PrestoCluster(coordinator, worker, exporter, port, clients)


def start_exporter(workdir: Path, jmx: Jmx, port: int) -> ServerProcess:
    """The standalone JMX exporter with the stack's Presto rules, reading the coordinator over RMI."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / CONFIG_FILE
    config.write_text(f"hostPort: 127.0.0.1:{jmx.registry_port}\n" + presto_exporter_config())
    jar = jmx_exporter_jar("jmx_prometheus_httpserver")
    command = ["java", "-Xmx128m", "-jar", str(jar), f"127.0.0.1:{port}", str(config)]
    return ServerProcess("jmx-exporter", command, port, workdir / "exporter.log", {}).start()


def active_nodes(port: int) -> int:
    """How many nodes the coordinator sees as active."""
    return rows(port, "SELECT count(*) FROM system.runtime.nodes WHERE state = 'active'")[0][0]


def connect(port: int, user: str = "admin") -> prestodb.dbapi.Connection:
    """A connection to the coordinator's HTTP port, as the nodes use it (the user is named, not authenticated)."""
    return prestodb.dbapi.connect(host="127.0.0.1", port=port, user=user, request_timeout=120)


def connect_as(clients: Clients, user: str, password: str, **session: str) -> prestodb.dbapi.Connection:
    """A client connection over HTTPS, trusting only the test CA, authenticated with a password (catalog=, schema=)."""
    connection = prestodb.dbapi.connect(
        **session,
        host="localhost",
        port=clients.port,
        user=user,
        http_scheme="https",
        auth=prestodb.auth.BasicAuthentication(user, password),
        request_timeout=120,
    )
    # The client has no option for a CA bundle: its requests session takes one directly, and must not
    # let REQUESTS_CA_BUNDLE from the environment override it.
    connection._http_session.verify = str(clients.tls.ca_crt)
    connection._http_session.trust_env = False
    return connection


def rows(port: int, sql: str) -> list[list]:
    """Run a query and fetch every row."""
    cursor = connect(port).cursor()
    cursor.execute(sql)
    return cursor.fetchall()
