"""The stack's Presto files and start script on a real Presto 0.287: a coordinator and a worker.

Their catalogs reach the real ClickHouse and Kafka of the other integration tests.
"""

import time

import prestodb
import pytest
import requests

from components.data.clickhouse.config import DATABASE, EVENTS_TABLE
from components.data.presto.config import CATALOGS, ROLES
from tests.support.events import produce_events
from tests.support.servers.clickhouse import ClickHouseNode, query
from tests.support.servers.kafka import KafkaNode
from tests.support.servers.presto import USERS, PrestoCluster, connect, connect_as, rows


def test_tpch_lineitem_has_60175_rows(presto: PrestoCluster) -> None:
    assert rows(presto.port, "SELECT count(*) FROM tpch.tiny.lineitem") == [[60175]]


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


def run_as(presto: PrestoCluster, user: str, sql: str) -> list[list]:
    """Run a statement over HTTPS as one of the password file's users."""
    cursor = connect_as(presto.clients, user, USERS[user]).cursor()
    cursor.execute(sql)
    return cursor.fetchall()


def table_rows(presto: PrestoCluster, table: str) -> int:
    """Rows of a ClickHouse table as Presto reads it."""
    return rows(presto.port, f"SELECT count(*) FROM clickhouse.{DATABASE}.{table}")[0][0]


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


def test_a_name_outside_the_roles_gets_only_the_system_catalog(presto: PrestoCluster) -> None:
    cursor = connect(presto.port, user="intruder").cursor()
    cursor.execute("SHOW CATALOGS")
    assert cursor.fetchall() == [["system"]]
    with pytest.raises(prestodb.exceptions.PrestoUserError, match="Access Denied"):
        connect(presto.port, user="intruder").cursor().execute("SELECT count(*) FROM tpch.tiny.nation")


def test_the_worker_joined_with_the_internal_shared_secret(presto: PrestoCluster) -> None:
    nodes = rows(presto.port, "SELECT coordinator FROM system.runtime.nodes WHERE state = 'active'")
    assert sorted(n[0] for n in nodes) == [False, True], nodes


def test_the_catalogs_are_present(presto: PrestoCluster) -> None:
    catalogs = {row[0] for row in rows(presto.port, "SHOW CATALOGS")}
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
    assert rows(presto.port, f"SELECT count(*) FROM clickhouse.{DATABASE}.{EVENTS_TABLE} {where}") == [[100]]
    joined = rows(
        presto.port,
        f"SELECT count(*) FROM clickhouse.{DATABASE}.{EVENTS_TABLE} e "
        f"JOIN tpch.tiny.nation n ON n.nationkey = CAST(e.produced_at_ms % 25 AS BIGINT) {where}",
    )
    assert joined == [[100]]


def test_the_kafka_catalog_reads_the_topic(presto: PrestoCluster, kafka_node: KafkaNode, pipeline: str) -> None:
    run_id = f"kafka-catalog-{time.time_ns()}"
    produce_events(kafka_node, pipeline, run_id, [f"{run_id}-{i}" for i in range(25)])
    assert rows(presto.port, f"SELECT count(*) FROM kafka.default.{pipeline} WHERE run_id = '{run_id}'") == [[25]]
