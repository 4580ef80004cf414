"""The replicated cluster these tests share: started once for the folder, stopped when its tests are done."""

from collections.abc import Iterator

import pytest

from components.data.clickhouse.config import Endpoint
from components.settings.model import Settings
from components.settings.parse import parse_settings
from components.settings.stack_files import stack_config
from tests.support.servers.clickhouse import ClickHouseCluster, apply_schema, grown_clickhouse
from tests.support.servers.clickhouse import start_cluster as start_clickhouse_cluster
from tests.support.servers.kafka import KafkaNode, run_topic_bootstrap, start_kafka
from tests.support.servers.zookeeper import ZooKeeperEnsemble, start_ensemble


@pytest.fixture(scope="package")
def cluster_settings() -> Settings:
    """The dev stack grown to 2 shards x 2 replicas: the shape the replicated tests run."""
    return parse_settings("dev", stack_config("dev", grown_clickhouse(shards=2, replicas=2)))


@pytest.fixture(scope="package")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperEnsemble]:
    """Three ZooKeeper nodes (Debian's) standing in for ClickHouse Keeper, which speaks the same protocol."""
    ensemble = start_ensemble(tmp_path_factory.mktemp("zookeeper"), 3)
    yield ensemble
    ensemble.stop_all()


@pytest.fixture(scope="package")
def cluster_kafka(tmp_path_factory: pytest.TempPathFactory, cluster_settings: Settings) -> Iterator[KafkaNode]:
    """A Kafka node of its own for the cluster (dev's, no authentication), with the stack's topic."""
    node = start_kafka(cluster_settings.kafka, tmp_path_factory.mktemp("cluster-kafka"))
    run_topic_bootstrap(node)
    yield node
    node.server.stop()


@pytest.fixture(scope="package")
def clickhouse_cluster(
    tmp_path_factory: pytest.TempPathFactory,
    cluster_settings: Settings,
    zookeeper: ZooKeeperEnsemble,
    cluster_kafka: KafkaNode,
) -> Iterator[ClickHouseCluster]:
    """Four real ClickHouse servers as 2 shards x 2 replicas with the stack's configs and schema, ingesting."""
    keeper = tuple(Endpoint(host=host, port=port) for host, port in zookeeper.hosts)
    cluster = start_clickhouse_cluster(cluster_settings, tmp_path_factory.mktemp("clickhouse-cluster"), keeper)
    try:
        apply_schema(cluster.nodes, cluster_settings, cluster_kafka.bootstrap)
        yield cluster
    finally:
        cluster.stop()
