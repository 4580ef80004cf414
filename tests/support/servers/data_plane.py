"""The real Kafka, ClickHouse and Presto started together, as the benches use them."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from components.data.kafka.config import CLICKHOUSE_PRINCIPAL
from components.settings.model import Settings
from tests.support.servers.clickhouse import ClickHouseNode, apply_schema, start_clickhouse
from tests.support.servers.kafka import KafkaNode, run_topic_bootstrap, start_kafka
from tests.support.servers.presto import PrestoCluster, start_cluster


@dataclass(frozen=True)
class DataPlane:
    """The three servers, the events topic created and the ClickHouse schema consuming it."""

    kafka: KafkaNode
    clickhouse: ClickHouseNode
    presto: PrestoCluster


@contextmanager
def data_plane(settings: Settings, workdir: Path) -> Iterator[DataPlane]:
    """Start Kafka, ClickHouse and Presto from the stack's configs, bootstrap topic and schema; stop them after."""
    kafka = start_kafka(settings.kafka, workdir / "kafka")
    servers = [kafka.server]
    try:
        login = (CLICKHOUSE_PRINCIPAL, kafka.passwords[CLICKHOUSE_PRINCIPAL]) if kafka.passwords else None
        clickhouse = start_clickhouse(settings, workdir / "clickhouse", kafka_login=login)
        servers.append(clickhouse.server)
        presto = start_cluster(
            settings,
            workdir / "presto",
            f"127.0.0.1:{clickhouse.ports.http}",
            clickhouse.passwords,
            kafka.presto_bootstrap,
        )
        servers += [presto.coordinator, presto.worker, presto.exporter]
        run_topic_bootstrap(kafka)
        apply_schema([clickhouse], settings, kafka.bootstrap)
        yield DataPlane(kafka, clickhouse, presto)
    finally:
        for server in reversed(servers):
            server.stop()
