"""The schema Job's migrations on the real 2 x 2 cluster: applied once, ON CLUSTER, and recorded on every server."""

import time

from components.data.clickhouse.config import DATABASE, EVENTS_TABLE, LOCAL_TABLE, MIGRATIONS_TABLE, VIEWS, migrations
from components.settings.model import Settings
from tests.support.servers.clickhouse import ClickHouseCluster, query, run_migrations
from tests.support.servers.kafka import KafkaNode

RECORDS = f"SELECT version, name, checksum, applied_at FROM {DATABASE}.{MIGRATIONS_TABLE} ORDER BY version"


def alterations(cluster: ClickHouseCluster) -> list[str]:
    """How often each shard's replicated table changed columns: the version of its columns node in Keeper."""
    found = []
    for shard, replicas in enumerate(cluster.shards, start=1):
        path = f"/clickhouse/tables/{shard}/{DATABASE}/{LOCAL_TABLE}"
        sql = f"SELECT version FROM system.zookeeper WHERE path = '{path}' AND name = 'columns'"
        found.append(query(replicas[0], sql))
    return found


def test_every_server_records_every_migration_once(
    clickhouse_cluster: ClickHouseCluster, cluster_settings: Settings, cluster_kafka: KafkaNode
) -> None:
    expected = [[str(m.version), m.name, m.checksum] for m in migrations(cluster_settings, cluster_kafka.bootstrap)]
    for node in clickhouse_cluster.nodes:
        records = [line.split("\t")[:3] for line in query(node, RECORDS).splitlines()]
        assert records == expected, f"server {node.replica}"


def test_the_migrations_reached_every_server_and_each_replicated_alter_ran_once_per_shard(
    clickhouse_cluster: ClickHouseCluster,
) -> None:
    for node in clickhouse_cluster.nodes:
        for table in (LOCAL_TABLE, EVENTS_TABLE):
            column = f"SELECT type FROM system.columns WHERE database = '{DATABASE}' AND table = '{table}' AND name = "
            assert query(node, column + "'payload_bytes'") == "UInt32", f"{node.replica}: {table}"
        views = f"SELECT name FROM system.tables WHERE database = '{DATABASE}' AND engine = 'MaterializedView'"
        assert query(node, views) == "events_mv_0002", f"{node.replica}: the view of 0002 replaced 0001's"
    # One ALTER per shard, run by one replica and replicated to the other through Keeper: ON CLUSTER run on
    # every replica would have altered twice (and failed on the second, which has the column).
    assert alterations(clickhouse_cluster) == ["1", "1"]


def test_a_rerun_on_the_cluster_applies_nothing(
    clickhouse_cluster: ClickHouseCluster, cluster_settings: Settings, cluster_kafka: KafkaNode
) -> None:
    before = [query(node, RECORDS) for node in clickhouse_cluster.nodes]
    rerun = run_migrations(clickhouse_cluster.nodes, cluster_settings, cluster_kafka.bootstrap)
    assert rerun.returncode == 0, rerun.stderr
    assert "migrate: 0 applied" in rerun.stdout
    assert [query(node, RECORDS) for node in clickhouse_cluster.nodes] == before
    assert alterations(clickhouse_cluster) == ["1", "1"]


def test_a_server_without_a_record_gets_that_migration_again_and_its_record(
    clickhouse_cluster: ClickHouseCluster, cluster_settings: Settings, cluster_kafka: KafkaNode
) -> None:
    # What a new server, or a run that failed while recording, leaves: the others have the record, it has not.
    last = clickhouse_cluster.nodes[-1]
    table = f"{DATABASE}.{MIGRATIONS_TABLE}"
    query(last, f"ALTER TABLE {table} DELETE WHERE version = 1")
    end = time.monotonic() + 30
    while query(last, f"SELECT count() FROM {table} WHERE version = 1") != "0":
        assert time.monotonic() < end, f"{last.replica}: the record was not deleted"
        time.sleep(0.2)
    again = run_migrations(clickhouse_cluster.nodes, cluster_settings, cluster_kafka.bootstrap)
    assert again.returncode == 0, again.stderr
    expected = (
        f"migrate: applying 0001_initial.sql again for the servers without its record: 127.0.0.1:{last.ports.native}\n"
    )
    assert expected in again.stdout and "0002" not in again.stdout
    test_every_server_records_every_migration_once(clickhouse_cluster, cluster_settings, cluster_kafka)
    assert alterations(clickhouse_cluster) == ["1", "1"], "0001 again changed no table"
    # A server holding 0002 without 0001's record is this test's making: 0001 again (its view ON CLUSTER) gave
    # every server back the view 0002 dropped, and two views on one Kafka table break ingestion. Drop it again.
    for node in clickhouse_cluster.nodes:
        query(node, f"DROP TABLE IF EXISTS {DATABASE}.{VIEWS[0]}")
