"""Shared fixtures: stacks rendered under Pulumi's mocks, and real servers started from their configs."""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.chaos.component import CHART as CHAOS_CHART
from components.data.kafka.config import CLICKHOUSE_PRINCIPAL
from components.settings.model import Settings
from components.settings.parse import parse_settings
from components.settings.stack_files import stack_config
from tests.support.engine import CLUSTER as ENGINE_CLUSTER
from tests.support.engine import Backend, EngineMissingError, LocalChart, Toolchain, cluster, local_chart
from tests.support.fakes.chaos_cluster import Api, Writable, fake_writable_api
from tests.support.fakes.kubernetes import FakeCluster
from tests.support.render import SHIPPED_STACKS, STACK_SECRETS, Rendered, render
from tests.support.servers.clickhouse import (
    ClickHouseNode,
    apply_schema,
    start_clickhouse,
)
from tests.support.servers.kafka import PASSWORDS, KafkaNode, run_topic_bootstrap, start_kafka, with_scram
from tests.support.servers.presto import PrestoCluster, start_cluster
from tests.support.verify_harness import fake_grafana_api
from verify.kube.checks import connect

STACKS = SHIPPED_STACKS
INTEGRATION = Path(__file__).parent / "integration"
SERVERS = {
    "kafka_node",
    "events_topic",
    "clickhouse_node",
    "pipeline",
    "presto",
    "control_plane",
    "zookeeper",
    "cluster_kafka",
    "clickhouse_cluster",
}
"""Fixtures that start a real server: only tests under tests/integration may use them."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration as integration; refuse a unit test that would start a server."""
    for item in items:
        if item.path.is_relative_to(INTEGRATION):
            item.add_marker(pytest.mark.integration)
        elif started := SERVERS & set(getattr(item, "fixturenames", ())):
            raise pytest.UsageError(f"{item.nodeid} starts {sorted(started)}: move it to tests/integration")


@pytest.fixture(scope="session")
def rendered_stacks() -> dict[str, Rendered]:
    """Every shipped stack, rendered once (with the secrets its operator sets)."""
    return {name: render(name, secrets=STACK_SECRETS.get(name)) for name in STACKS}


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest, rendered_stacks: dict[str, Rendered]) -> Rendered:
    """Each shipped stack in turn."""
    return rendered_stacks[request.param]


@pytest.fixture(scope="session")
def dev_settings() -> Settings:
    """The dev stack's settings: the sizes the real servers are started with."""
    return parse_settings("dev", stack_config("dev"))


@pytest.fixture(scope="session")
def kafka_node(tmp_path_factory: pytest.TempPathFactory, dev_settings: Settings) -> Iterator[KafkaNode]:
    """A real Kafka node running the dev stack's config with prod's authentication (SCRAM, ACLs), for the session.

    Every test that talks to it goes through the stricter path: ClickHouse and verify log in, Presto reads
    through its own listener. A dev node (no authentication) is tested in test_kafka_server.
    """
    node = start_kafka(with_scram(dev_settings).kafka, tmp_path_factory.mktemp("kafka"))
    yield node
    node.server.stop()


@pytest.fixture(scope="session")
def events_topic(kafka_node: KafkaNode, dev_settings: Settings) -> str:
    """The events topic, its users and ACLs, created by the stack's own bootstrap script."""
    run_topic_bootstrap(kafka_node)
    return dev_settings.kafka.topic.name


@pytest.fixture(scope="session")
def clickhouse_node(tmp_path_factory: pytest.TempPathFactory, dev_settings: Settings) -> Iterator[ClickHouseNode]:
    """A real ClickHouse running the dev stack's config and users, for the whole session; its Kafka engine logs in."""
    login = (CLICKHOUSE_PRINCIPAL, PASSWORDS[CLICKHOUSE_PRINCIPAL])
    node = start_clickhouse(dev_settings, tmp_path_factory.mktemp("clickhouse"), kafka_login=login)
    yield node
    node.server.stop()


@pytest.fixture(scope="session")
def pipeline(clickhouse_node: ClickHouseNode, kafka_node: KafkaNode, events_topic: str, dev_settings: Settings) -> str:
    """The stack's schema applied to ClickHouse, consuming the real Kafka's events topic."""
    apply_schema([clickhouse_node], dev_settings, kafka_node.bootstrap)
    return events_topic


@pytest.fixture(scope="session")
def presto(
    tmp_path_factory: pytest.TempPathFactory,
    dev_settings: Settings,
    clickhouse_node: ClickHouseNode,
    kafka_node: KafkaNode,
    pipeline: str,
) -> Iterator[PrestoCluster]:
    """A real Presto coordinator and worker, with the tpch, clickhouse and kafka catalogs."""
    cluster = start_cluster(
        dev_settings,
        tmp_path_factory.mktemp("presto"),
        f"127.0.0.1:{clickhouse_node.ports.http}",
        clickhouse_node.passwords,
        kafka_node.presto_bootstrap,
    )
    yield cluster
    cluster.exporter.stop()
    cluster.worker.stop()
    cluster.coordinator.stop()


@pytest.fixture(scope="session")
def fake_grafana(dev_settings: Settings) -> Iterator[str]:
    """A stand-in for Grafana's API (Grafana cannot run here), serving the stack's dashboard uids."""
    with fake_grafana_api(dev_settings) as url:
        yield url


@pytest.fixture
def api(tmp_path: Path, rendered_stacks: dict[str, Rendered], dev_settings: Settings) -> Iterator[Api]:
    """The dev stack, rolled out in a fake cluster that has Chaos Mesh."""
    writable = Writable(FakeCluster.healthy(rendered_stacks["dev"]), restart_seconds=0.5)
    with fake_writable_api(writable, tmp_path) as kubeconfig:
        yield Api(writable, kubeconfig, connect(str(kubeconfig), None, dev_settings.namespace))
    assert writable.cluster.forbidden == [], "verify needs nothing its Role does not grant"


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """The local Kubernetes control plane (scripts/engine/cluster) and a file backend of the real Pulumi engine.

    Installs nothing: a binary that is not built fails the tests (never skips them), naming what to run. Starts
    the control plane unless it runs already, and stops it at the end only if it started it here.
    """
    try:
        toolchain = Toolchain.installed()
    except EngineMissingError as missing:
        pytest.fail(str(missing), pytrace=False)
    running = subprocess.run([str(ENGINE_CLUSTER), "status"], capture_output=True, check=False).returncode == 0
    if not running:
        cluster("start")
    try:
        yield Backend(tmp_path_factory.mktemp("engine"), toolchain)
    finally:
        if not running:
            cluster("stop")


@pytest.fixture(scope="session")
def chaos_chart() -> LocalChart:
    """Chaos Mesh's chart as scripts/engine/install fetched it; a failure naming the command when it has not."""
    try:
        return local_chart(CHAOS_CHART)
    except EngineMissingError as missing:
        pytest.fail(str(missing), pytrace=False)
