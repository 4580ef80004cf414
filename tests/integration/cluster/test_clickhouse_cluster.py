"""The stack's replicated, sharded ClickHouse for real: four 18.16 servers as 2 shards x 2 replicas, fed by Kafka.

The servers start from the generated config, cluster file and schema (in their 18.16 form); Keeper is a
Debian ZooKeeper ensemble, which ClickHouse reaches through the same <zookeeper> section (the Keeper
config itself is checked for its structure in tests/unit/test_clickhouse.py). Differences of 18.16 that
show here: a kill -9'd replica that restarts within its Keeper session's 30 s waits for that session to
expire before it replicates again ("appears to be already active"); its Distributed send queue is named
after the interserver login (24.8 names it shardN_replicaM).
"""

import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from components.data.clickhouse.config import (
    ADMIN,
    DATABASE,
    EVENTS_TABLE,
    INGEST,
    LOCAL_TABLE,
    Endpoint,
    consumers_per_server,
    copy_single_server_sql,
    park_single_server_sql,
    statements,
)
from components.settings.model import Settings
from components.settings.parse import parse_settings
from components.settings.stack_files import stack_config
from tests.support.events import produce_events
from tests.support.servers.certificates import issue
from tests.support.servers.clickhouse import (
    ClickHouseCluster,
    ClickHouseNode,
    apply_schema,
    grown_clickhouse,
    loopback_cluster,
    query,
    server_ports,
    start_clickhouse,
)
from tests.support.servers.kafka import KafkaNode, until_group_stable
from tests.support.servers.presto import PRESTO_HOME, Clients, ClusterTls, issue_internal, rows, start_node
from tests.support.servers.process import free_ports
from tests.support.servers.zookeeper import ZooKeeperEnsemble

SETTLE = 90.0
"""Seconds to wait for ingestion and replication to converge (a killed replica's session lasts 30 s)."""


def wait_for(what: str, condition: Callable[[], bool], deadline: float = SETTLE) -> None:
    """Poll until condition holds, or fail naming what never happened."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"{what}: not within {deadline:.0f} s")
        time.sleep(0.5)


def number(node: ClickHouseNode, sql: str) -> int:
    """A query's single number, as admin."""
    return int(query(node, sql, ADMIN))


def visible(cluster: ClickHouseCluster, run_id: str) -> tuple[int, int]:
    """(rows after deduplication, distinct event ids) of a run, read through the Distributed table."""
    table = f"{DATABASE}.{EVENTS_TABLE}"
    where = f"WHERE run_id = '{run_id}'"
    node = cluster.nodes[0]
    return number(node, f"SELECT count() FROM {table} FINAL {where}"), number(
        node, f"SELECT uniqExact(event_id) FROM {table} {where}"
    )


def local_counts(cluster: ClickHouseCluster, run_id: str) -> list[list[int]]:
    """Each server's own rows of a run (after deduplication), shard by shard."""
    sql = f"SELECT count() FROM {DATABASE}.{LOCAL_TABLE} FINAL WHERE run_id = '{run_id}'"
    return [[number(node, sql) for node in replicas] for replicas in cluster.shards]


def all_arrived(cluster: ClickHouseCluster, run_id: str, acked: set[str]) -> None:
    """Every acknowledged event is readable once, and each shard's replicas hold the same rows."""
    wait_for(f"{len(acked)} acknowledged events readable once", lambda: visible(cluster, run_id) == (len(acked),) * 2)
    wait_for(
        "the replicas of each shard converge", lambda: all(len(set(c)) == 1 for c in local_counts(cluster, run_id))
    )


def keys(run_id: str, count: int) -> list[str]:
    """Event ids of a run."""
    return [f"{run_id}-{index}" for index in range(count)]


def test_the_servers_are_the_generated_cluster(
    clickhouse_cluster: ClickHouseCluster, cluster_settings: Settings
) -> None:
    node = clickhouse_cluster.nodes[0]
    shape = query(node, "SELECT shard_num, count() FROM system.clusters WHERE cluster = 'events' GROUP BY shard_num")
    assert shape.splitlines() == ["1\t2", "2\t2"]
    for shard, replicas in enumerate(clickhouse_cluster.shards, start=1):
        for member in replicas:
            macros = dict(
                line.split("\t") for line in query(member, "SELECT macro, substitution FROM system.macros").splitlines()
            )
            assert macros == {"shard": str(shard), "replica": member.replica}
    state = "SELECT is_readonly, active_replicas, total_replicas FROM system.replicas WHERE table = 'events_local'"
    wait_for("every replica active", lambda: all(query(n, state) == "0\t2\t2" for n in clickhouse_cluster.nodes))
    # What the readiness probe asks: caught up, so a roll may take the next server down.
    for member in clickhouse_cluster.nodes:
        with urllib.request.urlopen(f"{member.http}/replicas_status", timeout=10) as answer:
            assert answer.status == 200 and answer.read().strip() == b"Ok."
    # Ingestion's writes through the Distributed table wait for the shard, never queue on the local disk.
    synchronous = "SELECT value FROM system.settings WHERE name = 'insert_distributed_sync'"
    assert query(node, synchronous, INGEST) == "1"


def test_every_acked_event_is_readable_once_on_the_shard_of_its_id(
    clickhouse_cluster: ClickHouseCluster, cluster_kafka: KafkaNode, cluster_settings: Settings
) -> None:
    run_id = f"cluster-{time.time_ns()}"
    acked = produce_events(cluster_kafka, cluster_settings.kafka.topic.name, run_id, keys(run_id, 2000))
    assert len(acked) == 2000
    all_arrived(clickhouse_cluster, run_id, acked)
    counts = local_counts(clickhouse_cluster, run_id)
    assert all(shard[0] > 0 for shard in counts), f"both shards hold events: {counts}"
    # The Distributed table sends an event to shard (hash % shards) + 1, so a redelivery meets its first copy.
    for index, replicas in enumerate(clickhouse_cluster.shards):
        elsewhere = (
            f"SELECT count() FROM {DATABASE}.{LOCAL_TABLE} "
            f"WHERE run_id = '{run_id}' AND cityHash64(event_id) % 2 != {index}"
        )
        assert number(replicas[0], elsewhere) == 0


def test_a_replica_killed_mid_ingestion_loses_nothing_and_catches_up(
    clickhouse_cluster: ClickHouseCluster, cluster_kafka: KafkaNode, cluster_settings: Settings
) -> None:
    topic = cluster_settings.kafka.topic.name
    run_id = f"replica-kill-{time.time_ns()}"
    ids = keys(run_id, 3000)
    victim = clickhouse_cluster.shards[1][1]
    acked = produce_events(cluster_kafka, topic, run_id, ids[:1000])
    victim.server.kill()
    acked |= produce_events(cluster_kafka, topic, run_id, ids[1000:2000])
    # Reads keep answering through the Distributed table: the shard's other replica serves them.
    assert number(clickhouse_cluster.nodes[0], f"SELECT count() FROM {DATABASE}.{EVENTS_TABLE}") >= 0
    behind = number(clickhouse_cluster.shards[1][0], f"SELECT count() FROM {DATABASE}.{LOCAL_TABLE}")
    victim.server.launch().wait_ready(120)
    acked |= produce_events(cluster_kafka, topic, run_id, ids[2000:])
    assert len(acked) == 3000
    all_arrived(clickhouse_cluster, run_id, acked)
    total = f"SELECT count() FROM {DATABASE}.{LOCAL_TABLE}"
    wait_for("the restarted replica holds what its peer holds", lambda: number(victim, total) >= behind)


def test_a_consumer_rebalance_leaves_no_duplicate_after_deduplication(
    clickhouse_cluster: ClickHouseCluster, cluster_kafka: KafkaNode, cluster_settings: Settings
) -> None:
    topic = cluster_settings.kafka.topic.name
    run_id = f"rebalance-{time.time_ns()}"
    ids = keys(run_id, 2000)
    consumer = clickhouse_cluster.shards[0][1]
    acked = produce_events(cluster_kafka, topic, run_id, ids[:1000])
    # Every consumer in the group first (a replica restarted by the test before may still be joining): 18.16's
    # librdkafka aborts the whole server on an assertion when a consumer still joining is destroyed.
    members = cluster_settings.clickhouse.servers * consumers_per_server(cluster_settings)
    assert until_group_stable(cluster_kafka, members), f"the group never had its {members} consumers"
    # A consumer leaves the group and comes back: two rebalances while events are in flight.
    query(consumer, f"DETACH TABLE {DATABASE}.events_queue")
    acked |= produce_events(cluster_kafka, topic, run_id, ids[1000:])
    query(consumer, f"ATTACH TABLE {DATABASE}.events_queue")
    all_arrived(clickhouse_cluster, run_id, acked)


@pytest.fixture(scope="module")
def cluster_presto(
    tmp_path_factory: pytest.TempPathFactory, clickhouse_cluster: ClickHouseCluster, cluster_settings: Settings
) -> Iterator[Clients]:
    """One Presto node (a coordinator that also runs tasks, as dev's) whose clickhouse catalog reads server 0."""
    workdir = tmp_path_factory.mktemp("cluster-presto")
    port, jmx = free_ports(2)
    clients = Clients(port, issue(workdir / "tls", "presto-coordinator"))
    node = clickhouse_cluster.nodes[0]
    coordinator = start_node(
        cluster_settings,
        workdir / "coordinator",
        coordinator=True,
        port=port,
        discovery_port=port,
        tls=ClusterTls(clients=clients.tls, internal=issue_internal(workdir / "internal-tls")),
        clickhouse_http=f"127.0.0.1:{node.ports.http}",
        clickhouse_passwords=node.passwords,
        kafka_bootstrap="127.0.0.1:1",
        jmx_port=jmx,
        home=PRESTO_HOME,
    )
    coordinator.start(180)
    try:
        yield clients
    finally:
        coordinator.stop()


def test_presto_reads_every_shard_through_the_distributed_table(
    clickhouse_cluster: ClickHouseCluster, cluster_kafka: KafkaNode, cluster_settings: Settings, cluster_presto: Clients
) -> None:
    run_id = f"presto-{time.time_ns()}"
    acked = produce_events(cluster_kafka, cluster_settings.kafka.topic.name, run_id, keys(run_id, 500))
    all_arrived(clickhouse_cluster, run_id, acked)
    sql = f"SELECT count(DISTINCT event_id) FROM clickhouse.{DATABASE}.{EVENTS_TABLE} WHERE run_id = '{run_id}'"
    wait_for("Presto answers", lambda: _answers(cluster_presto, sql), 60)
    assert rows(cluster_presto, sql) == [[500]]


def _answers(clients: Clients, sql: str) -> bool:
    """Whether Presto answers the query yet (its password authenticator loads just after it starts)."""
    try:
        rows(clients, sql)
    except Exception:
        return False
    return True


PRE_REPLICATION_SCHEMA = """
CREATE DATABASE IF NOT EXISTS analytics;
CREATE TABLE analytics.events
(
    event_id String, run_id String, kind String, payload String, produced_at_ms UInt64,
    event_time DateTime DEFAULT toDateTime(intDiv(produced_at_ms, 1000)),
    ingested_at DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(ingested_at) PARTITION BY toYYYYMM(event_time) ORDER BY event_id
"""
"""The events table of releases before replication (in its 18.16 form): one plain table on the one server."""


def test_a_single_server_stack_moves_into_the_replicated_layout_without_losing_a_row(
    tmp_path: Path, zookeeper: ZooKeeperEnsemble
) -> None:
    single = parse_settings("dev", stack_config("dev"))
    grown = parse_settings("dev", stack_config("dev", grown_clickhouse(shards=1, replicas=2)))
    first, second = server_ports(), server_ports()
    old = start_clickhouse(single, tmp_path / "clickhouse-0", first)
    for statement in statements(PRE_REPLICATION_SCHEMA):
        query(old, statement)
    query(
        old,
        "INSERT INTO analytics.events (event_id, run_id, kind, payload, produced_at_ms) SELECT "
        "concat('old-', toString(number)), 'old', 'test', 'p', 1700000000000 + number FROM system.numbers LIMIT 5000",
    )
    old.server.stop()
    # The `pulumi up` of the new layout: server 0 restarts on its volume, a second replica joins; the shard
    # number is the test's own, so these tables do not meet the session cluster's in the shared ZooKeeper.
    keeper = tuple(Endpoint(host=host, port=port) for host, port in zookeeper.hosts)
    layout = loopback_cluster([[first, second]], keeper)
    nodes = [
        start_clickhouse(grown, tmp_path / f"clickhouse-{n}", ports, layout=layout, identity=(9, f"migration-{n}"))
        for n, ports in enumerate((first, second))
    ]
    try:
        for statement in park_single_server_sql():
            query(nodes[0], statement)
        # No broker: ingestion is not what this test is about, and it must not join the session cluster's group.
        apply_schema(nodes, grown, "127.0.0.1:1")
        for statement in copy_single_server_sql():
            query(nodes[0], statement)
        sql = "SELECT count(), sum(produced_at_ms) FROM analytics.events_local"
        expected = query(nodes[0], "SELECT count(), sum(produced_at_ms) FROM analytics.events_single")
        assert expected.split("\t")[0] == "5000"
        wait_for("both replicas hold every row", lambda: all(query(n, sql) == expected for n in nodes), 60)
    finally:
        for node in nodes:
            node.server.stop()
