"""verify's replication check and its replica-kill and Keeper-loss scenarios, against a real replicated cluster.

The session's cluster (tests/conftest.py): a 3-node ZooKeeper ensemble (Debian's; ClickHouse Keeper speaks its
protocol), a Kafka node, and four ClickHouse 18.16 servers as 2 shards x 2 replicas started from the stack's
generated configs and schema, ingesting the topic. verify reaches server clickhouse-0 only, as through a Service; it
reads the others through it. The local injector kills (kill -9) and restarts one server's or one ZooKeeper
node's process, standing in for the pod; probing, traffic, catch-up and convergence are verify's.

18.16's Kafka engine, four consumers joining one group a server at a time, sometimes never starts consuming: the
group is stable, each server holds a partition, and nothing is read or committed (seen here before any fault).
The fixture proves ingestion with an event before it yields, restarting the consumers (DETACH and ATTACH of the
Kafka table) while it does not flow; and the scenarios that kill a server, and so its consumer, come last.
"""

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Producer

from components import names
from components.data.clickhouse.config import DATABASE, QUEUE_TABLE
from components.settings.model import Settings
from tests.support.fakes.local_injector import LocalInjector
from tests.support.servers.clickhouse import (
    ClickHouseCluster,
    ClickHouseNode,
    query,
)
from tests.support.servers.kafka import KafkaNode
from tests.support.servers.zookeeper import ZooKeeperEnsemble
from tests.support.verify_harness import by_name, clickhouse_outputs, run_local_scenario, run_verify
from verify.core.checks import CheckFailedError, CheckSkippedError, Cleanup, Context
from verify.core.exit_codes import ExitCode
from verify.core.targets import Targets, targets_from
from verify.failover.checks import run_scenario
from verify.failover.plan import FailoverPlan
from verify.failover.replication import READ_GAP_S
from verify.failover.scenarios import BY_NAME
from verify.smoke.replication import health

INGEST_WAIT = 30.0
"""Seconds an event gets to arrive through the Kafka engine before its consumers are restarted."""
SETTLE = 180.0
"""As in test_verify_failover: a fresh plane on a shared 2-core machine may take long to answer its first probes."""


@dataclass(frozen=True)
class Replicated:
    """The running cluster and verify's targets for it (through clickhouse-0)."""

    zookeeper: ZooKeeperEnsemble
    kafka: KafkaNode
    nodes: list[ClickHouseNode]
    """By StatefulSet ordinal: shard by shard."""
    document: dict
    """The stack's outputs for them."""

    @property
    def targets(self) -> Targets:
        """The targets verify makes of the outputs."""
        return targets_from("test", self.document)


@pytest.fixture(scope="module")
def replicated(
    zookeeper: ZooKeeperEnsemble,
    cluster_kafka: KafkaNode,
    clickhouse_cluster: ClickHouseCluster,
    cluster_settings: Settings,
) -> Replicated:
    """The session's 2 x 2 cluster (tests/conftest.py), ingesting, and the stack's outputs for it."""
    nodes = clickhouse_cluster.nodes
    ingesting(nodes, cluster_kafka, cluster_settings.kafka.topic.name)
    return Replicated(zookeeper, cluster_kafka, nodes, clickhouse_outputs(cluster_settings, nodes[0], cluster_kafka))


def ingesting(nodes: list[ClickHouseNode], kafka: KafkaNode, topic: str) -> None:
    """Wait until an event reaches the Distributed table, restarting the Kafka engine's consumers while none does."""
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "acks": "all", "enable.idempotence": True})
    for attempt in range(4):
        key = f"ingesting-{attempt}-{time.time_ns()}"
        body = {"event_id": key, "run_id": key, "kind": "test", "produced_at_ms": time.time_ns() // 10**6}
        producer.produce(topic, key=key, value=json.dumps(body).encode())
        assert producer.flush(30) == 0, "Kafka did not acknowledge the event"
        deadline = time.monotonic() + INGEST_WAIT
        while time.monotonic() < deadline:
            if query(nodes[0], f"SELECT count() FROM {DATABASE}.events WHERE run_id = '{key}'") != "0":
                return
            time.sleep(0.5)
        for node in nodes:  # 18.16's consumers stalled in the group: start them again
            query(node, f"DETACH TABLE {DATABASE}.{QUEUE_TABLE}")
            query(node, f"ATTACH TABLE {DATABASE}.{QUEUE_TABLE}")
    pytest.fail(f"no event reached ClickHouse through the Kafka engine in 4 x {INGEST_WAIT:g}s")


def test_the_replication_check_reads_every_replica_through_the_one_server_verify_reaches(
    replicated: Replicated, tmp_path: Path
) -> None:
    code, report, _ = run_verify(replicated.document, tmp_path, "smoke", "--tags", "clickhouse")
    checks = by_name(report)
    assert code == ExitCode.PASSED, [(c["name"], c["error"]) for c in report["checks"] if c["status"] != "passed"]
    figures = checks["clickhouse.replication"]["figures"]
    assert figures["servers"] == 4 and figures["shards"] == 2 and figures["replicas"] == 4, figures
    assert figures["replicas_active"] == 4 and figures["readonly"] == 0 and figures["keeper_sessions"] == 4, figures
    assert figures["max_delay_s"] <= 60 and figures["max_queue"] <= 100, figures
    assert "clickhouse.round_trip" in checks, "the other ClickHouse checks pass against a member of the cluster"


def test_a_single_unreplicated_server_passes_with_nothing_to_replicate_and_skips_the_scenarios(
    replicated: Replicated, clickhouse_node: ClickHouseNode, dev_settings: Settings
) -> None:
    single = targets_from("test", clickhouse_outputs(dev_settings, clickhouse_node, replicated.kafka))
    figures = health(Context("single", single, Cleanup()))
    assert figures["servers"] == 1 and figures["replicas"] == 0, figures
    assert str(figures["replication"]).startswith("none"), figures
    plan = FailoverPlan(settle=5)
    for name in ("clickhouse-replica-kill", "keeper-loss"):
        with pytest.raises(CheckSkippedError, match="no replicated table"):
            run_scenario(Context("single", single, Cleanup()), BY_NAME[name], LocalInjector({}), plan)


def test_losing_one_keeper_node_of_three_stops_neither_ingestion_nor_reads(replicated: Replicated) -> None:
    # A follower: 18.16 takes the leader's loss, even with a quorum left, as the end of every server's session,
    # so all of them go read-only until a new leader is elected (10 to 13 s), and its Kafka engine then drops
    # the blocks it failed to write (seen here: 470 of 770 acked events lost). 24.8's client moves its session to
    # another Keeper node within the session timeout, and its Kafka engine commits only written blocks (neither is
    # measurable here: docs/operations.md lists this among the test servers' differences).
    follower = next(node for node in replicated.zookeeper.nodes if node.mode == "follower")
    injector = LocalInjector({names.CLICKHOUSE_KEEPER: [follower.server]})
    plan = FailoverPlan(baseline=3, hold=5, alerts=False, settle=60)
    figures = run_local_scenario(replicated.targets, "keeper-loss", injector, plan)
    print(figures)
    assert figures["events_acked"] > 0 and figures["events_lost"] == 0, figures
    assert figures["keeper_sessions_low"] >= 0 and figures["readonly_peak"] >= 0, figures
    assert "after recovery" not in str(figures), figures


def test_a_replica_killed_during_ingestion_catches_up_while_reads_go_on(replicated: Replicated) -> None:
    pods = {node.replica: [node.server] for node in replicated.nodes}
    injector = LocalInjector({names.CLICKHOUSE: [n.server for n in replicated.nodes]}, pods=pods)
    plan = FailoverPlan(baseline=10, hold=8, alerts=False, settle=SETTLE)
    figures = run_local_scenario(replicated.targets, "clickhouse-replica-kill", injector, plan)
    print(figures)  # the figures, for the log: not asserted beyond what must hold
    assert figures["replica_killed"] == "clickhouse-3", "the last replica, not clickhouse-0 that verify reads through"
    assert figures["injected"] == "killed clickhouse"
    assert figures["events_acked"] > 0 and figures["events_lost"] == 0, figures
    assert figures["events_duplicated"] >= 0, "reported, whatever their number"
    assert figures["longest_read_gap_s"] <= READ_GAP_S, figures
    assert figures["rows_behind"] >= 0 and figures["catch_up_s"] >= 0, figures
    shards = dict(part.split(":") for part in str(figures["shard_events"]).split())
    assert sorted(shards) == ["1", "2"], figures
    assert all(len(set(counts.split("="))) == 1 for counts in shards.values()), "the replicas converged"


def test_a_dead_replica_fails_the_check_which_names_it(replicated: Replicated) -> None:
    victim = replicated.nodes[1]
    victim.server.kill()
    try:
        with pytest.raises(CheckFailedError, match=rf"server 127.0.0.1:{victim.ports.native} did not answer") as fail:
            health(Context("dead", replicated.targets, Cleanup()))
        assert fail.value.figures["servers"] == 4 and fail.value.figures["replicas"] == 3
    finally:
        victim.server.start()


def test_a_cluster_of_another_shape_than_deployed_fails_the_check(replicated: Replicated) -> None:
    document = {**replicated.document, "expected": {**replicated.document["expected"], "clickhouseShards": 1}}
    with pytest.raises(CheckFailedError, match=r"4 servers in 2 shards; the stack deployed 1 x 2"):
        health(Context("shape", targets_from("test", document), Cleanup()))
