"""The stack's Presto files and start script on a real Presto 0.287: a coordinator and a worker.

Their catalogs reach the real ClickHouse and Kafka of the other integration tests. No node serves
plain HTTP, and no request gets anything without a credential: a password (clients) or the internal
certificate (the nodes). A second cluster, with every plugin the image ships and the JVM flags of the
dev stack's containers, runs the TPC-H power run while its resident memory is sampled.
"""

import base64
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import prestodb
import pytest
import requests
import urllib3

from components.data.clickhouse.config import DATABASE, EVENTS_TABLE
from components.data.presto import memory
from components.data.presto.config import CATALOGS, ROLES, graceful_shutdown_command, probe_command
from components.settings.model import Settings
from components.settings.parse import parse_settings
from components.settings.quantities import quantity_value
from components.settings.stack_files import stack_config
from tests.support.events import produce_events
from tests.support.servers.clickhouse import ClickHouseNode, query
from tests.support.servers.kafka import KafkaNode
from tests.support.servers.presto import (
    JAVA_HOME,
    USERS,
    PrestoCluster,
    as_node,
    connect_as,
    every_plugin_home,
    issue_internal,
    java_status,
    rows,
    start_cluster,
)
from tests.support.servers.process import ServerProcess
from verify import tpch


def test_tpch_lineitem_has_60175_rows(presto: PrestoCluster) -> None:
    assert rows(presto.clients, "SELECT count(*) FROM tpch.tiny.lineitem") == [[60175]]


def statement(presto: PrestoCluster, auth: tuple[str, str] | None) -> requests.Response:
    """Submit a query over HTTPS, trusting the test CA, with or without a user and password."""
    return requests.post(
        f"https://localhost:{presto.clients.port}/v1/statement",
        data="SELECT 1",
        headers={"X-Presto-User": "intruder"},
        auth=auth,
        verify=presto.clients.tls.ca_crt,
        timeout=30,
    )


def test_a_client_without_a_password_is_refused(presto: PrestoCluster) -> None:
    response = statement(presto, None)
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_a_client_with_a_wrong_password_is_refused(presto: PrestoCluster) -> None:
    assert statement(presto, ("admin", "not-the-password")).status_code == 401
    assert statement(presto, ("nobody", USERS["admin"])).status_code == 401


def test_a_user_of_the_password_file_queries_over_https(presto: PrestoCluster) -> None:
    for user, password in USERS.items():
        cursor = connect_as(presto.clients, user, password).cursor()
        cursor.execute("SELECT count(*) FROM tpch.tiny.nation")
        assert cursor.fetchall() == [[25]], user


def listening_ports(process: ServerProcess) -> set[int]:
    """The TCP ports a node's JVM listens on: its sockets (/proc/PID/fd) in the LISTEN state (/proc/PID/net/tcp*)."""
    assert process.process is not None, f"{process.name} was never launched"
    pid = process.process.pid
    sockets = set()
    for descriptor in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(descriptor)
        except OSError:
            continue
        if target.startswith("socket:["):
            sockets.add(target.removeprefix("socket:[").removesuffix("]"))
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in sockets:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def announcements(presto: PrestoCluster) -> dict[bool, dict[str, str]]:
    """What each node announced to discovery, by whether it is the coordinator (asked with the internal certificate)."""
    answer = as_node(presto.tls).get(f"https://127.0.0.1:{presto.clients.port}/v1/service/presto", timeout=10)
    answer.raise_for_status()
    services = [service["properties"] for service in answer.json()["services"]]
    return {service["coordinator"] == "true": service for service in services}


def local_jmx_port(process: ServerProcess) -> int:
    """The port of the JVM's local JMX connector, from the address jcmd reports (its serialized RMI stub).

    The JVM starts it beside any remote agent, on a port of its choosing, and accepts only loopback
    connections there; a client also needs the stub's random object id, which only local attach (the
    process's own user) reads.
    """
    assert process.process is not None, f"{process.name} was never launched"
    status = subprocess.run(
        [str(JAVA_HOME / "bin" / "jcmd"), str(process.process.pid), "ManagementAgent.status"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    local = status.split("Connection Type: local", 1)[1]
    stub = base64.b64decode(local.split("/stub/", 1)[1].split()[0])
    host = b"\x00\x09127.0.0.1"
    at = stub.index(host) + len(host)
    return int.from_bytes(stub[at : at + 4], "big")


def nodes(presto: PrestoCluster) -> list[tuple[str, ServerProcess, dict[str, str], int]]:
    """Each node: its name, process, announcement and JMX agent's port."""
    announced = announcements(presto)
    return [
        ("coordinator", presto.coordinator, announced[True], presto.jmx_ports[0]),
        ("worker", presto.worker, announced[False], presto.jmx_ports[1]),
    ]


def test_each_node_listens_only_on_https_beside_thrift_and_its_closed_jmx_agent(presto: PrestoCluster) -> None:
    for name, process, announced, jmx_port in nodes(presto):
        assert "http" not in announced, f"the {name} announces a plain HTTP address: {announced}"
        https = urlsplit(announced["https"]).port
        # Presto 0.287 always starts its Thrift (drift) server, on a port of its choosing, with no setting to
        # turn it off, and the JVM its local JMX connector: docs/security.md says what each serves. Nothing
        # else may listen (no HTTP, no admin port, no open JMX agent on a random port).
        thrift = int(announced["thriftServerPort"])
        assert listening_ports(process) == {https, thrift, jmx_port, local_jmx_port(process)}, name


def answer_without_credentials(url: str) -> str:
    """What a request with a user name and nothing else gets: a status code, or how the connection failed."""
    try:
        response = requests.post(
            f"{url}/v1/statement", data="SELECT 1", headers={"X-Presto-User": "admin"}, verify=False, timeout=10
        )
    except requests.RequestException as error:
        return type(error).__name__
    return str(response.status_code)


def test_no_port_of_any_node_serves_a_statement_without_credentials(presto: PrestoCluster) -> None:
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    https_ports = {urlsplit(announced["https"]).port for _, _, announced, _ in nodes(presto)}
    for name, process, _, _ in nodes(presto):
        for port in sorted(listening_ports(process)):
            for scheme in ("http", "https"):
                answer = answer_without_credentials(f"{scheme}://127.0.0.1:{port}")
                expected = "401" if scheme == "https" and port in https_ports else answer
                assert answer == expected and answer != "200", f"{name} port {port} over {scheme}: {answer}"


def test_the_nodes_accept_the_internal_certificate_and_no_other(presto: PrestoCluster, tmp_path: Path) -> None:
    stranger = issue_internal(tmp_path / "stranger")
    for name, _, announced, _ in nodes(presto):
        url = f"{announced['https']}/v1/info"
        assert as_node(presto.tls).get(url, timeout=10).json()["starting"] is False, name
        try:
            refused = requests.get(
                url, cert=(stranger.tls_crt, stranger.tls_key), verify=presto.tls.clients.ca_crt, timeout=10
            )
            outcome = str(refused.status_code)
        except requests.exceptions.SSLError:
            outcome = "handshake refused"
        except requests.exceptions.ConnectionError:
            outcome = "connection closed"
        assert outcome in ("401", "handshake refused", "connection closed"), (
            f"the {name} takes a certificate of another CA: {outcome}"
        )


def follow(session: requests.Session, url: str, user: str, sql: str, **request: object) -> dict:
    """Run a statement through Presto's protocol; the last document: data, or an error."""
    document = session.post(f"{url}/v1/statement", data=sql, headers={"X-Presto-User": user}, timeout=30, **request)
    assert document.status_code == 200, document.text
    result = document.json()
    data: list = []
    while "nextUri" in result and "error" not in result:
        result = session.get(result["nextUri"], headers={"X-Presto-User": user}, timeout=30, **request).json()
        data += result.get("data", [])
    return {"data": data, "error": result.get("error", {}).get("message")}


def test_an_authenticated_client_queries_only_as_itself(presto: PrestoCluster) -> None:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(presto.clients.tls.ca_crt)
    session.auth = ("analyst", USERS["analyst"])
    url = f"https://localhost:{presto.clients.port}"
    assert follow(session, url, "admin", "SHOW CATALOGS")["error"] == (
        "Access Denied: Principal analyst cannot become user admin"
    )
    assert follow(session, url, "analyst", "SELECT current_user")["data"] == [["analyst"]]


def test_the_internal_certificate_is_no_user_but_itself(presto: PrestoCluster) -> None:
    node = as_node(presto.tls)
    url = f"https://127.0.0.1:{presto.clients.port}"
    assert "cannot become user admin" in follow(node, url, "admin", "SHOW CATALOGS")["error"]
    (principal,) = follow(node, url, "CN=presto-internal-tls", "SELECT current_user")["data"][0]
    assert follow(node, url, principal, "SHOW CATALOGS")["data"] == [["system"]], "file-based rules grant system only"


def test_the_probe_command_of_the_pods_passes_on_every_node(presto: PrestoCluster) -> None:
    for name, process, announced, _ in nodes(presto):
        command = probe_command(urlsplit(announced["https"]).port or 0, str(process.log.parent / "etc"))
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 0, f"{name}: {command} exited {result.returncode}: {result.stderr}"


JMX_LOGIN = """
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

public class JmxLogin {
    public static void main(String[] args) {
        String url = "service:jmx:rmi:///jndi/rmi://127.0.0.1:" + args[0] + "/jmxrmi";
        try (var connector = JMXConnectorFactory.connect(new JMXServiceURL(url))) {
            System.out.println("connected");
        } catch (Exception refused) {
            System.out.println("refused: " + refused);
        }
    }
}
"""


def jmx_login(port: int, workdir: Path) -> str:
    """What Java's own JMX client gets from the agent at port without credentials.

    Run as a single-file program by the machine's Java 17 (the test runtime of Presto has no compiler).
    """
    source = workdir / "JmxLogin.java"
    source.write_text(JMX_LOGIN)
    java = shutil.which("java")
    assert java, "java (17) is not on PATH: scripts/test needs it"
    result = subprocess.run([java, str(source), str(port)], capture_output=True, text=True, timeout=120, check=True)
    return result.stdout.strip()


def test_the_jvm_jmx_agent_takes_no_login(presto: PrestoCluster, tmp_path: Path) -> None:
    # The worker's agent is configured as in the pods (the coordinator's is opened for the test's exporter).
    assert "Authentication failed! Credentials required" in jmx_login(presto.jmx_ports[1], tmp_path)
    local = jmx_login(local_jmx_port(presto.worker), tmp_path)
    assert local.startswith("refused: "), f"the local connector answers a JMX client: {local}"


def run_as(presto: PrestoCluster, user: str, sql: str) -> list[list]:
    """Run a statement over HTTPS as one of the password file's users."""
    cursor = connect_as(presto.clients, user, USERS[user]).cursor()
    cursor.execute(sql)
    return cursor.fetchall()


def table_rows(presto: PrestoCluster, table: str) -> int:
    """Rows of a ClickHouse table as Presto reads it."""
    return rows(presto.clients, f"SELECT count(*) FROM clickhouse.{DATABASE}.{table}")[0][0]


@pytest.mark.parametrize("user", ["admin", "ingest"])
def test_a_writing_user_writes_clickhouse_through_clickhouse_ingest(
    presto: PrestoCluster, clickhouse_node: ClickHouseNode, user: str
) -> None:
    table = f"written_by_{user}_{time.time_ns()}"
    run_as(presto, user, f"CREATE TABLE clickhouse_ingest.{DATABASE}.{table} AS SELECT nationkey FROM tpch.tiny.nation")
    assert table_rows(presto, table) == 25
    run_as(presto, user, f"INSERT INTO clickhouse_ingest.{DATABASE}.{table} SELECT regionkey FROM tpch.tiny.region")
    assert table_rows(presto, table) == 30
    # The catalogs keep clickhouse.allow-drop-table at its default, false: tables are dropped in ClickHouse.
    query(clickhouse_node, f"DROP TABLE {DATABASE}.{table}")


@pytest.mark.parametrize("user", ["analyst", "ingest"])
def test_the_clickhouse_catalog_refuses_writes(presto: PrestoCluster, user: str) -> None:
    events = f"clickhouse.{DATABASE}.{EVENTS_TABLE}"
    with pytest.raises(prestodb.exceptions.PrestoUserError, match="Access Denied: Cannot insert into table"):
        run_as(
            presto,
            user,
            f"INSERT INTO {events} SELECT * FROM {events} WHERE false",
        )
    with pytest.raises(prestodb.exceptions.PrestoUserError, match="Access Denied: Cannot create table"):
        run_as(presto, user, f"CREATE TABLE clickhouse.{DATABASE}.intruder (x bigint)")


def test_the_analyst_cannot_write_anywhere(presto: PrestoCluster) -> None:
    with pytest.raises(
        prestodb.exceptions.PrestoUserError, match="Access Denied: Cannot access catalog clickhouse_ingest"
    ):
        run_as(presto, "analyst", f"CREATE TABLE clickhouse_ingest.{DATABASE}.intruder (x bigint)")


def test_the_presto_clickhouse_user_is_read_only_even_for_admin(presto: PrestoCluster) -> None:
    with pytest.raises(prestodb.exceptions.PrestoQueryError, match="readonly"):
        run_as(presto, "admin", f"CREATE TABLE clickhouse.{DATABASE}.by_the_read_only_user AS SELECT 1 AS x")


def test_each_user_sees_the_catalogs_of_its_role(presto: PrestoCluster) -> None:
    for role in ROLES:
        assert {row[0] for row in run_as(presto, role.user, "SHOW CATALOGS")} == {*role.writes, *role.reads}, role.user


def test_the_worker_joined_with_the_internal_certificate_and_shared_secret(presto: PrestoCluster) -> None:
    nodes = rows(presto.clients, "SELECT coordinator FROM system.runtime.nodes WHERE state = 'active'")
    assert sorted(n[0] for n in nodes) == [False, True], nodes


def test_the_catalogs_are_present(presto: PrestoCluster) -> None:
    catalogs = {row[0] for row in rows(presto.clients, "SHOW CATALOGS")}
    assert catalogs == set(CATALOGS)


def test_clickhouse_rows_are_read_and_joined_with_tpch(
    presto: PrestoCluster, clickhouse_node: ClickHouseNode, kafka_node: KafkaNode, pipeline: str
) -> None:
    run_id = f"presto-{time.time_ns()}"
    keys = [f"{run_id}-{i}" for i in range(100)]
    produce_events(kafka_node, pipeline, run_id, keys)
    deadline = time.monotonic() + 60
    where = f"WHERE run_id = '{run_id}'"
    while time.monotonic() < deadline:
        if query(clickhouse_node, f"SELECT count() FROM {DATABASE}.{EVENTS_TABLE} {where}") == "100":
            break
        time.sleep(0.5)
    assert rows(presto.clients, f"SELECT count(*) FROM clickhouse.{DATABASE}.{EVENTS_TABLE} {where}") == [[100]]
    joined = rows(
        presto.clients,
        f"SELECT count(*) FROM clickhouse.{DATABASE}.{EVENTS_TABLE} e "
        f"JOIN tpch.tiny.nation n ON n.nationkey = CAST(e.produced_at_ms % 25 AS BIGINT) {where}",
    )
    assert joined == [[100]]


def test_the_kafka_catalog_reads_the_topic(presto: PrestoCluster, kafka_node: KafkaNode, pipeline: str) -> None:
    run_id = f"kafka-catalog-{time.time_ns()}"
    produce_events(kafka_node, pipeline, run_id, [f"{run_id}-{i}" for i in range(25)])
    assert rows(presto.clients, f"SELECT count(*) FROM kafka.default.{pipeline} WHERE run_id = '{run_id}'") == [[25]]


# The JVM budget on the real server: every plugin of the image, the dev stack's container sizes.

DRAIN_SECONDS = 5
"""The budgeted cluster's worker drains for this long (dev's 60 s would only slow the drain test down)."""


@pytest.fixture(scope="module")
def dev_budgeted() -> Settings:
    """The dev stack's settings, with a short worker grace period (it changes no memory figure)."""
    change = {"presto": {"workers": {"shutdownGracePeriodSeconds": DRAIN_SECONDS}}}
    return parse_settings("dev", stack_config("dev", change))


@pytest.fixture(scope="module")
def budgeted(
    tmp_path_factory: pytest.TempPathFactory,
    dev_budgeted: Settings,
    clickhouse_node: ClickHouseNode,
    kafka_node: KafkaNode,
) -> Iterator[PrestoCluster]:
    """A coordinator (which runs tasks, as dev's does) and a worker, with dev's JVM flags and every plugin."""
    cluster = start_cluster(
        dev_budgeted,
        tmp_path_factory.mktemp("presto-budgeted"),
        f"127.0.0.1:{clickhouse_node.ports.http}",
        clickhouse_node.passwords,
        kafka_node.presto_bootstrap,
        home=every_plugin_home(),
    )
    yield cluster
    cluster.exporter.stop()
    cluster.worker.stop()
    cluster.coordinator.stop()


def test_the_tpch_power_run_stays_within_the_dev_containers_memory(
    budgeted: PrestoCluster, dev_budgeted: Settings
) -> None:
    presto = dev_budgeted.presto
    roles = {
        "coordinator": (budgeted.coordinator, presto.coordinator.resources.limits.memory, memory.COORDINATOR),
        "worker": (budgeted.worker, presto.workers.resources.limits.memory, memory.WORKER),
    }
    peak = {name: {"VmRSS": 0, "Threads": 0} for name in roles}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for name, (process, _, _) in roles.items():
                status = java_status(process)
                peak[name] = {key: max(peak[name][key], status[key]) for key in peak[name]}
            done.wait(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    began = time.monotonic()
    try:
        connection = connect_as(
            budgeted.clients, "analyst", USERS["analyst"], catalog="tpch", schema=tpch.GOLDEN_SCHEMA
        )
        for number in tpch.QUERIES:
            cursor = connection.cursor()
            cursor.execute(tpch.sql(number, tpch.GOLDEN_SCHEMA))
            assert cursor.fetchall(), f"TPC-H {number} returned no rows"
    finally:
        done.set()
        sampler.join()
    elapsed = time.monotonic() - began
    for name, (process, limit, off_heap) in roles.items():
        limit_kib = int(quantity_value(limit)) // 1024
        high_water = java_status(process)["VmHWM"]
        fitted = memory.budget(limit, name == "coordinator")
        print(
            f"{name}: resident peak {high_water // 1024} MiB (sampled {peak[name]['VmRSS'] // 1024} MiB), "
            f"{peak[name]['Threads']} threads, in a {limit} limit; heap {fitted.heap_mb} MiB, "
            f"budget {fitted.total_mb()} MiB; power run {elapsed:.0f} s"
        )
        assert high_water < limit_kib, f"Deployment/presto-{name}: {high_water // 1024} MiB resident in a {limit} limit"
        assert peak[name]["Threads"] <= off_heap.threads, f"{name}: more threads than its budget counts"


def test_the_worker_drains_and_exits_through_the_prestop_command(budgeted: PrestoCluster) -> None:
    worker = budgeted.worker
    https = urlsplit(announcements(budgeted)[False]["https"]).port or 0
    command = graceful_shutdown_command(https, str(worker.log.parent / "etc"), DRAIN_SECONDS)
    drain = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert drain.returncode == 0, f"{command} exited {drain.returncode}: {drain.stderr}"
    assert worker.process is not None
    # Presto waits a grace period before and after draining, then exits by itself: before preStop's sleep ends.
    assert worker.process.wait(60) == 0, worker.tail()
