"""The stack's ClickHouse config, users and schema on a real ClickHouse, fed by a real Kafka.

The server is Debian's 18.16, the image is 24.8: the files are fed in their nearest 18.16 form,
whose differences are listed in components.data.clickhouse.config._LEGACY.
"""

import json
import time
import urllib.error
import urllib.request

import pytest

from components.data.clickhouse.config import DATABASE, EVENTS_TABLE
from components.settings.model import Settings
from tests.support.events import produce_events
from tests.support.servers.clickhouse import (
    ADMIN,
    INGEST,
    PRESTO,
    ClickHouseNode,
    ClickHouseRefusedError,
    apply_schema,
    query,
)
from tests.support.servers.kafka import KafkaNode


def test_every_user_signs_in_with_its_password(clickhouse_node: ClickHouseNode) -> None:
    for user in (ADMIN, INGEST, PRESTO):
        assert query(clickhouse_node, "SELECT 1", user) == "1"


def test_a_wrong_password_is_refused(clickhouse_node: ClickHouseNode) -> None:
    with pytest.raises(ClickHouseRefusedError, match=r"(?i)password"):
        query(clickhouse_node, "SELECT 1", PRESTO, password="not-the-password-at-all")


def test_a_client_without_credentials_is_refused_even_from_loopback(clickhouse_node: ClickHouseNode) -> None:
    request = urllib.request.Request(f"{clickhouse_node.http}/", data=b"SELECT 1", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    # 18.16 names the address (code 195); 24.8 answers "default: Authentication failed" (code 516).
    assert "User default is not allowed to connect from address 127.0.0.1" in refused.value.read().decode()


def test_the_presto_user_is_read_only(clickhouse_node: ClickHouseNode, pipeline: str) -> None:
    assert query(clickhouse_node, f"SELECT count() FROM {DATABASE}.{EVENTS_TABLE}", PRESTO).isdigit()
    with pytest.raises(ClickHouseRefusedError, match="readonly"):
        query(clickhouse_node, f"INSERT INTO {DATABASE}.{EVENTS_TABLE} (event_id) VALUES ('nope')", PRESTO)
    with pytest.raises(ClickHouseRefusedError, match="readonly"):
        query(clickhouse_node, f"CREATE TABLE {DATABASE}.nope (x UInt8) ENGINE = Memory", PRESTO)


def test_the_presto_user_sees_only_the_analytics_database(clickhouse_node: ClickHouseNode) -> None:
    query(clickhouse_node, "CREATE TABLE IF NOT EXISTS default.private (x UInt8) ENGINE = Memory", ADMIN)
    with pytest.raises(ClickHouseRefusedError, match=r"(?i)access denied"):
        query(clickhouse_node, "SELECT count() FROM default.private", PRESTO)


def test_queries_are_capped_to_the_container(clickhouse_node: ClickHouseNode, dev_settings: Settings) -> None:
    value = query(clickhouse_node, "SELECT value FROM system.settings WHERE name = 'max_memory_usage'", INGEST)
    limit = 1024**3  # dev: clickhouse.resources.limits.memory = 1Gi
    assert int(value) == limit * 6 // 10


def test_the_schema_is_idempotent(
    clickhouse_node: ClickHouseNode, kafka_node: KafkaNode, pipeline: str, dev_settings: Settings
) -> None:
    apply_schema([clickhouse_node], dev_settings, kafka_node.bootstrap)
    tables = query(clickhouse_node, f"SELECT name FROM system.tables WHERE database = '{DATABASE}' ORDER BY name")
    assert tables.split() == ["events", "events_local", "events_mv_0002", "events_queue", "schema_migrations"]


def test_events_produced_to_kafka_arrive_in_the_events_table(
    clickhouse_node: ClickHouseNode, kafka_node: KafkaNode, pipeline: str
) -> None:
    run_id = f"run-{time.time_ns()}"
    keys = [f"{run_id}-{i}" for i in range(500)]
    acked = produce_events(kafka_node, pipeline, run_id, keys)
    assert acked == set(keys)
    deadline = time.monotonic() + 60
    count = 0
    while time.monotonic() < deadline:
        count = int(
            query(
                clickhouse_node, f"SELECT uniqExact(event_id) FROM {DATABASE}.{EVENTS_TABLE} WHERE run_id = '{run_id}'"
            )
        )
        if count == len(keys):
            break
        time.sleep(0.5)
    assert count == len(keys), f"{count} of {len(keys)} acknowledged events reached ClickHouse within 60 s"
    table = f"{DATABASE}.{EVENTS_TABLE}"
    sql = f"SELECT kind, payload, event_time > 0 FROM {table} WHERE event_id = '{keys[0]}' FORMAT JSONEachRow"
    row = query(clickhouse_node, sql, PRESTO)
    assert json.loads(row.splitlines()[0]) == {"kind": "test", "payload": "p0", "greater(event_time, 0)": 1}
