"""The stack's Presto files and start script on a real Presto 0.287: a coordinator and a worker.

Their catalogs reach the real ClickHouse and Kafka of the other integration tests.
"""

import time

import pytest
import requests
from clickhouse_server import ClickHouseNode, query
from kafka_server import KafkaNode
from presto_server import USERS, PrestoCluster, connect_as, rows
from test_clickhouse_server import produce_events

from components.clickhouse_config import DATABASE, EVENTS_TABLE

pytestmark = pytest.mark.integration


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


def test_the_worker_joined_with_the_internal_shared_secret(presto: PrestoCluster) -> None:
    nodes = rows(presto.port, "SELECT coordinator FROM system.runtime.nodes WHERE state = 'active'")
    assert sorted(n[0] for n in nodes) == [False, True], nodes


def test_the_three_catalogs_are_present(presto: PrestoCluster) -> None:
    catalogs = {row[0] for row in rows(presto.port, "SHOW CATALOGS")}
    assert {"tpch", "clickhouse", "kafka"} <= catalogs


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
