"""A real Presto (coordinator and one worker) on 127.0.0.1, started with the stack's files and script.

presto-server 0.287 runs on Java 11 here (scripts/servers/install-presto says why). That runtime lacks
the jdk.httpserver module the JMX exporter's Java agent needs, so the coordinator's metrics come from
the standalone exporter (same version, the stack's own rules) reading its JMX over RMI on loopback.

Like the pods, every node serves HTTPS only: the nodes present an internal certificate, made here the
way the Presto component makes it with pulumi-tls (its own ECDSA P-256 CA, server and client use).
"""

import datetime
import ipaddress
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import prestodb
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from components.data.presto.config import (
    CLICKHOUSE_CATALOGS,
    PASSWORD_FILE,
    clickhouse_jdbc_url,
    password_entry,
    start_script,
    template_files,
)
from components.observability.jmx_exporter import CONFIG_FILE, presto_exporter_config
from components.settings.model import Settings
from tests.support.servers.certificates import ServingFiles, issue, subject_name
from tests.support.servers.process import CACHE, ServerError, ServerProcess, free_ports, installed, jmx_exporter_jar

PRESTO_VERSION = "0.287"
PRESTO_HOME = CACHE / f"presto-server-{PRESTO_VERSION}"
"""The installation scripts/servers/install-presto unpacks, with only the plugins the stack uses."""
PRESTO_TARBALL = CACHE / "m2" / "com" / "facebook" / "presto" / "presto-server" / PRESTO_VERSION
EVERY_PLUGIN_HOME = CACHE / f"presto-server-{PRESTO_VERSION}-every-plugin"
JAVA_HOME = CACHE / "java-11"
SHARED_SECRET = "test-shared-secret-for-internal-jwt-0000000000000000"
USERS = {user: f"test-{user}-password-0123456789" for user in ("admin", "analyst", "ingest")}


def every_plugin_home() -> Path:
    """A Presto installation with every plugin the image ships, as the pods load them all at start.

    The JVM's class metadata grows with the plugins it loads, so a memory figure wants the image's set.
    Unpacked once from the tarball install-presto fetched into the cache (its lib is shared; bin is
    copied, since the launcher finds the installation from bin's real path).
    """
    if not (EVERY_PLUGIN_HOME / ".installed").exists():
        tarball = installed(PRESTO_TARBALL / f"presto-server-{PRESTO_VERSION}.tar.gz", "Presto's tarball")
        installed(PRESTO_HOME / ".installed", "Presto")
        staging = EVERY_PLUGIN_HOME.with_name(f"{EVERY_PLUGIN_HOME.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        plugins = f"presto-server-{PRESTO_VERSION}/plugin/*"
        command = ["tar", "-xzf", str(tarball), "-C", str(staging), "--strip-components=1", "--wildcards", plugins]
        subprocess.run(command, check=True)
        (staging / "lib").symlink_to(PRESTO_HOME / "lib")
        shutil.copytree(PRESTO_HOME / "bin", staging / "bin")
        (staging / ".installed").touch()
        shutil.rmtree(EVERY_PLUGIN_HOME, ignore_errors=True)
        staging.rename(EVERY_PLUGIN_HOME)
    return EVERY_PLUGIN_HOME


@dataclass(frozen=True)
class Clients:
    """The coordinator's client side: its HTTPS port, its certificate files and its users."""

    port: int
    tls: ServingFiles


def issue_internal(directory: Path) -> ServingFiles:
    """A fresh internal CA and the nodes' certificate it signs, for localhost and 127.0.0.1."""
    now = datetime.datetime.now(datetime.UTC)
    lifetime = {
        "not_valid_before": now - datetime.timedelta(minutes=5),
        "not_valid_after": now + datetime.timedelta(days=1),
    }
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder(
            subject_name=subject_name("test internal CA"),
            issuer_name=subject_name("test internal CA"),
            public_key=ca_key.public_key(),
            serial_number=x509.random_serial_number(),
            **lifetime,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    certificate = (
        x509.CertificateBuilder(
            subject_name=subject_name("presto-internal-tls"),
            issuer_name=ca.subject,
            public_key=key.public_key(),
            serial_number=x509.random_serial_number(),
            **lifetime,
        )
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = ServingFiles(directory / "ca.crt", directory / "tls.crt", directory / "tls.key")
    files.ca_crt.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.tls_crt.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    files.tls_key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


@dataclass(frozen=True)
class ClusterTls:
    """Every certificate a test cluster's nodes read: the clients' (coordinator) and the internal one (all)."""

    clients: ServingFiles
    internal: ServingFiles


@dataclass
class PrestoCluster:
    """A running coordinator and worker."""

    coordinator: ServerProcess
    worker: ServerProcess
    exporter: ServerProcess
    """The JMX exporter serving the coordinator's metrics."""
    clients: Clients
    """Where clients connect: HTTPS with a password (the coordinator's only port)."""
    internal: ServingFiles
    """The certificate the nodes present to each other."""
    jmx_ports: tuple[int, int]
    """The JVM JMX agents' ports of the coordinator (opened for the exporter, test-only) and the worker (closed)."""

    @property
    def tls(self) -> ClusterTls:
        """Every certificate the nodes read."""
        return ClusterTls(clients=self.clients.tls, internal=self.internal)


def start_node(
    settings: Settings,
    workdir: Path,
    *,
    coordinator: bool,
    port: int,
    discovery_port: int,
    tls: ClusterTls,
    clickhouse_http: str,
    clickhouse_passwords: dict[str, str],
    kafka_bootstrap: str,
    jmx_port: int,
    open_jmx: bool = False,
    home: Path = PRESTO_HOME,
) -> ServerProcess:
    """Start one node on its HTTPS port through the stack's start script; the coordinator serves clients.

    jmx_port: the JVM's JMX agent's (closed, as in the pods, unless open_jmx). home: the Presto installation
    (its lib, bin and plugin directories).
    """
    installed(home / ".installed", "Presto")
    installed(JAVA_HOME / "bin" / "java", "Java 11 for Presto")
    templates, secrets = workdir / "templates", workdir / "secrets"
    templates.mkdir(parents=True, exist_ok=True)
    secrets.mkdir(exist_ok=True)
    files = template_files(
        settings.presto,
        coordinator=coordinator,
        environment="test",
        https_port=port,
        discovery_uri=f"https://127.0.0.1:{discovery_port}",
        # Test-only: every node on loopback, which both certificates name; a pod announces its DNS name.
        internal_address="127.0.0.1",
        data_dir=str(workdir / "data"),
        # Test-only: ClickHouse 18.16 fails an internal assertion (Poco HTTPServerResponseImpl, "!_pStream")
        # writing the driver's compressed responses and sends an empty body; 24.8 does not.
        clickhouse_jdbc_url=clickhouse_jdbc_url(clickhouse_http) + "?compress=0",
        kafka_nodes=kafka_bootstrap,
        topic=settings.kafka.topic.name,
        etc_dir=str(workdir / "etc"),
        jmx_port=jmx_port,
        password_file=str(secrets / PASSWORD_FILE) if coordinator else None,
    )
    if open_jmx:
        # Test-only: the JMX agent open on loopback for the standalone exporter (the pod loads the Java
        # agent instead, which reads the MBeans in-process). A later -D option wins over the earlier one.
        files["jvm.config"] += (
            "-Djava.rmi.server.hostname=127.0.0.1\n-Dcom.sun.management.jmxremote.authenticate=false\n"
        )
    for key, text in files.items():
        (templates / key).write_text(text)
    (secrets / "shared-secret").write_text(SHARED_SECRET)
    for catalog, user in CLICKHOUSE_CATALOGS.items():
        (secrets / f"{catalog}-password").write_text(clickhouse_passwords[user])
    # The projected Secret files every pod reads: the internal certificate, its CA, the clients' CA.
    for source, target in (
        (tls.internal.tls_key, "internal-tls.key"),
        (tls.internal.tls_crt, "internal-tls.crt"),
        (tls.internal.ca_crt, "internal-ca.crt"),
        (tls.clients.ca_crt, "ca.crt"),
    ):
        (secrets / target).write_bytes(source.read_bytes())
    if coordinator:
        (secrets / "tls.key").write_bytes(tls.clients.tls_key.read_bytes())
        (secrets / "tls.crt").write_bytes(tls.clients.tls_crt.read_bytes())
        (secrets / PASSWORD_FILE).write_text(
            "".join(password_entry(user, password, os.urandom(16)) for user, password in USERS.items())
        )
    script = workdir / "start.sh"
    script.write_text(start_script())
    env = {
        "POD_NAME": f"{'coordinator' if coordinator else 'worker'}-{port}",
        "PRESTO_HOME": str(home),
        "TEMPLATE_DIR": str(templates),
        "SECRETS_DIR": str(secrets),
        "ETC_DIR": str(workdir / "etc"),
        "DATA_DIR": str(workdir / "data"),
        "PATH": f"{JAVA_HOME / 'bin'}:{os.environ['PATH']}",
    }
    name = "presto-coordinator" if coordinator else "presto-worker"
    return ServerProcess(
        name, ["/bin/sh", str(script)], port, workdir / "server.log", env, ready=lambda: serving(port, tls)
    )


def as_node(tls: ClusterTls) -> requests.Session:
    """An HTTP session that presents the internal certificate and trusts both CAs, as a node does."""
    session = requests.Session()
    session.trust_env = False
    session.cert = (str(tls.internal.tls_crt), str(tls.internal.tls_key))
    bundle = tls.internal.tls_crt.parent / "trusted.pem"
    bundle.write_bytes(tls.internal.ca_crt.read_bytes() + tls.clients.ca_crt.read_bytes())
    session.verify = str(bundle)
    return session


def serving(port: int, tls: ClusterTls) -> bool:
    """Whether the node at port has finished starting (asked as a node asks: with the internal certificate)."""
    try:
        return as_node(tls).get(f"https://127.0.0.1:{port}/v1/info", timeout=2).json().get("starting") is False
    except (OSError, ValueError):
        return False


def java_status(process: ServerProcess) -> dict[str, int]:
    """VmRSS and VmHWM (KiB) and Threads of a node's JVM, from /proc (the start script execs into it)."""
    assert process.process is not None, f"{process.name} was never launched"
    wanted = {}
    for line in Path(f"/proc/{process.process.pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "Threads"):
            wanted[key] = int(value.split()[0])
    return wanted


def start_cluster(
    settings: Settings,
    workdir: Path,
    clickhouse_http: str,
    clickhouse_passwords: dict[str, str],
    kafka_bootstrap: str,
    home: Path = PRESTO_HOME,
) -> PrestoCluster:
    """Start a coordinator and a worker in parallel, and wait until the worker has joined."""
    port, worker_port, jmx, worker_jmx, metrics = free_ports(5)
    clients = Clients(port, issue(workdir / "tls", "presto-coordinator"))
    tls = ClusterTls(clients=clients.tls, internal=issue_internal(workdir / "internal-tls"))
    common = {
        "discovery_port": port,
        "tls": tls,
        "clickhouse_http": clickhouse_http,
        "clickhouse_passwords": clickhouse_passwords,
        "kafka_bootstrap": kafka_bootstrap,
        "home": home,
    }
    coordinator = start_node(
        settings, workdir / "coordinator", coordinator=True, port=port, jmx_port=jmx, open_jmx=True, **common
    )
    worker = start_node(
        settings, workdir / "worker", coordinator=False, port=worker_port, jmx_port=worker_jmx, **common
    )
    coordinator.launch()
    worker.launch()
    coordinator.wait_ready(180)
    worker.wait_ready(180)
    deadline = time.monotonic() + 60
    while not (heartbeated(worker) and joined(clients)):
        if time.monotonic() > deadline:
            raise ServerError(f"the worker never joined the coordinator:\n{worker.tail()}")
        time.sleep(0.5)
    exporter = start_exporter(workdir / "exporter", jmx, metrics)
    return PrestoCluster(coordinator, worker, exporter, clients, tls.internal, (jmx, worker_jmx))


def start_exporter(workdir: Path, jmx_port: int, port: int) -> ServerProcess:
    """The standalone JMX exporter with the stack's Presto rules, reading the coordinator over RMI."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / CONFIG_FILE
    config.write_text(f"hostPort: 127.0.0.1:{jmx_port}\n" + presto_exporter_config())
    jar = jmx_exporter_jar("jmx_prometheus_httpserver")
    command = ["java", "-Xmx128m", "-jar", str(jar), f"127.0.0.1:{port}", str(config)]
    return ServerProcess("jmx-exporter", command, port, workdir / "exporter.log", {}).start()


def heartbeated(worker: ServerProcess) -> bool:
    """Whether the coordinator's failure detector has pinged the worker (HEAD /v1/status in its request log).

    Until its first pass the detector may count a just-announced worker as failed and drop it from the
    active nodes for a few seconds; a query planned meanwhile failed with "Index 2 out of bounds for length 2".
    """
    requests_log = worker.log.parent / "data" / "var" / "log" / "http-request.log"
    return requests_log.exists() and "\tHEAD\t/v1/status\t" in requests_log.read_text()


def joined(clients: Clients) -> bool:
    """Whether the coordinator sees both nodes active.

    Presto 0.287 loads its password authenticator just after /v1/info stops saying it is starting: a
    password meanwhile gets a 500 ("authenticator was not loaded"), which is a not yet.
    """
    try:
        return active_nodes(clients) >= 2
    except prestodb.exceptions.HttpError:
        return False


def active_nodes(clients: Clients) -> int:
    """How many nodes the coordinator sees as active."""
    return rows(clients, "SELECT count(*) FROM system.runtime.nodes WHERE state = 'active'")[0][0]


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


def rows(clients: Clients, sql: str) -> list[list]:
    """Run a query as admin, over HTTPS with admin's password, and fetch every row."""
    cursor = connect_as(clients, "admin", USERS["admin"]).cursor()
    cursor.execute(sql)
    return cursor.fetchall()
