"""Every metric name the rules and dashboards read is one that something really exports.

Where each name must be found:
- the recording rules, and Prometheus's own `up` and `ALERTS`;
- the real Kafka (the JMX exporter agent) and the real Presto (the standalone exporter), scraped here;
- ClickHouse: the image (24.8) exports system.events, system.metrics and system.asynchronous_metrics
  as ClickHouseProfileEvents_*, ClickHouseMetrics_* and ClickHouseAsyncMetrics_*. The real server
  here is Debian's 18.16: a name is in its live system tables, or, for an event still at zero or an
  asynchronous metric not computed yet (18.16 lists neither), a whole string in its library. Names
  18.16 does not have are in NEWER_THAN_18_16, and the test checks that 18.16 really lacks them;
- ClickHouse Keeper (the image's `clickhouse-keeper`, 24.8) has no Debian package and no 18.16 form,
  and ClickHouse's source is not a Go module, so install-metric-sources cannot fetch it: its names are
  in KEEPER_24_8, each with the file of ClickHouse 24.8 that defines it, read there by hand. The test
  checks that 18.16 really lacks them (else they belong above), and that the rules read them, and only
  them, on the `clickhouse-keeper` job: Keeper's endpoint (KeeperPrometheusMetricsWriter) serves every
  asynchronous metric but only Keeper's own list of current metrics and events, so a server metric read
  on Keeper would be a series that never exists;
- Alertmanager: two real Alertmanager 0.25 peers (Debian's; the image is 0.27) gossiping on loopback,
  scraped;
- kube-state-metrics, cAdvisor and the kubelet need a cluster to run: their names are checked against
  their source at the versions we deploy (scripts/servers/install-metric-sources).
"""

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from components import names
from components.observability.alertmanager.config import alertmanager_config
from components.observability.prometheus.alert_rules import recordings
from components.settings.model import Settings
from tests.support.events import produce_events
from tests.support.promql import expressions, metric_names, selectors
from tests.support.servers.clickhouse import CLICKHOUSE_SERVER, ClickHouseNode, query
from tests.support.servers.kafka import KafkaNode
from tests.support.servers.metrics import scrape, scrape_until
from tests.support.servers.presto import PrestoCluster, rows
from tests.support.servers.process import CACHE
from tests.support.servers.prometheus import start_alertmanager_cluster

PROMETHEUS_OWN = {"up", "ALERTS"}
CLICKHOUSE_PREFIXES = {
    "ClickHouseProfileEvents_": "SELECT event FROM system.events",
    "ClickHouseMetrics_": "SELECT metric FROM system.metrics",
    "ClickHouseAsyncMetrics_": "SELECT metric FROM system.asynchronous_metrics",
}
NEWER_THAN_18_16 = {
    "FailedQuery": "queries that failed (profile event)",
    "KafkaMessagesRead": "Kafka engine (profile event)",
    "KafkaRowsRead": "Kafka engine (profile event)",
    "KafkaRowsRejected": "Kafka engine (profile event)",
    "KafkaConsumerErrors": "Kafka engine (profile event)",
    "KafkaCommitFailures": "Kafka engine (profile event)",
    "KafkaRebalanceAssignments": "Kafka engine (profile event)",
    "KafkaConsumers": "Kafka engine (current metric)",
    "KafkaConsumersWithAssignment": "Kafka engine (current metric)",
}
"""ClickHouse names that came after 18.16: the deployed 24.8 exports them, Debian's server lacks them."""
KEEPER_ASYNC = "src/Coordination/KeeperAsynchronousMetrics.cpp: updateKeeperInformation (asynchronous metric)"
KEEPER_24_8 = {
    "ClickHouseAsyncMetrics_KeeperIsLeader": KEEPER_ASYNC,
    "ClickHouseAsyncMetrics_KeeperZnodeCount": KEEPER_ASYNC,
    "ClickHouseMetrics_KeeperOutstandingRequests": (
        "src/Common/CurrentMetrics.cpp (current metric, spelled so since 24.7: KeeperOutstandingRequets before), "
        "exported by Keeper as one of APPLY_FOR_KEEPER_METRICS in src/Coordination/KeeperConstants.cpp"
    ),
}
"""ClickHouse Keeper 24.8's names the rules and dashboards read, by where ClickHouse's source defines them."""
SOURCES = CACHE / "metric-sources"


def used_names(settings: Settings) -> dict[str, str]:
    """Every metric name read by a rule or a panel, and the first place that reads it."""
    used: dict[str, str] = {}
    for found in expressions(settings):
        for name in metric_names(found.expr):
            used.setdefault(name, found.where)
    return used


def clickhouse_library() -> bytes:
    """The 18.16 server's code: clickhouse-server is a small launcher of libclickhouse."""
    linked = subprocess.run(["ldd", str(CLICKHOUSE_SERVER)], capture_output=True, text=True, timeout=30, check=True)
    (path,) = re.findall(r"libclickhouse\S* => (\S+)", linked.stdout)
    return Path(path).read_bytes()


def clickhouse_names(node: ClickHouseNode) -> set[str]:
    """The names ClickHouse would export now, after a write and a read, under the image's prefixes."""
    query(node, "CREATE TABLE IF NOT EXISTS default.metric_names_probe (x UInt8) ENGINE = Memory")
    query(node, "INSERT INTO default.metric_names_probe VALUES (1)")
    query(node, "SELECT count() FROM default.metric_names_probe")
    query(node, "DROP TABLE default.metric_names_probe")
    return {
        prefix + name
        for prefix, sql in CLICKHOUSE_PREFIXES.items()
        for name in query(node, f"{sql} FORMAT TSV").split()
    }


def source_text(exporter: str, under: str) -> str:
    """The Go source of an exporter's metric definitions."""
    root = SOURCES / exporter
    assert root.is_dir(), f"{root} is missing: run scripts/servers/install-metric-sources"
    return "\n".join(path.read_text() for path in sorted((root / under).rglob("*.go")))


@pytest.fixture(scope="module")
def exported(kafka_node: KafkaNode, pipeline: str, presto: PrestoCluster) -> set[str]:
    """What the real Kafka and Presto export, after events went through the topic and a query ran."""
    produce_events(kafka_node, pipeline, f"names-{time.time_ns()}", ["a", "b"])
    assert rows(presto.clients, "SELECT count(*) FROM tpch.tiny.nation") == [[25]]
    kafka = scrape_until(kafka_node.metrics_port, {"kafka_server_brokertopicmetrics_messagesin_total"})
    return set(kafka) | set(scrape(presto.exporter.port))


def test_jmx_names_come_from_the_real_exporters(dev_settings: Settings, exported: set[str]) -> None:
    for name, where in used_names(dev_settings).items():
        if name.startswith(("presto_", "kafka_", "jvm_")):
            assert name in exported, f"{where}: no real exporter serves {name}"


def test_clickhouse_names_exist_in_clickhouse(dev_settings: Settings, clickhouse_node: ClickHouseNode) -> None:
    live = clickhouse_names(clickhouse_node)
    library = clickhouse_library()
    for name, where in used_names(dev_settings).items():
        prefix = next((p for p in CLICKHOUSE_PREFIXES if name.startswith(p)), None)
        if prefix is None:
            continue
        bare = name.removeprefix(prefix)
        compiled = f"\0{bare}\0".encode() in library
        if name in KEEPER_24_8:
            assert name not in live and not compiled, f"{bare} is in 18.16: check it there, not in KEEPER_24_8"
        elif bare in NEWER_THAN_18_16:
            assert name not in live and not compiled, f"{bare} is in 18.16: drop it from NEWER_THAN_18_16"
        else:
            assert name in live or compiled, f"{where}: ClickHouse has no {bare}"


def test_keeper_names_are_read_on_keeper_and_only_there(dev_settings: Settings) -> None:
    """Keeper's names come from KEEPER_24_8 and are read on the Keeper job; the servers' never are."""
    keeper = names.CLICKHOUSE_KEEPER
    for found in expressions(dev_settings):
        for selector in selectors(found.expr):
            name = selector.name or ""
            if not name.startswith(tuple(CLICKHOUSE_PREFIXES)):
                continue
            jobs = {m.value for m in selector.matchers.matchers if m.name == "job"}
            if name in KEEPER_24_8:
                assert jobs == {keeper}, f"{found.where}: {name} is Keeper's: select it with job={keeper!r}"
            else:
                assert keeper not in jobs, f"{found.where}: Keeper does not export {name} (not in KEEPER_24_8)"


@pytest.fixture(scope="module")
def alertmanager_names(tmp_path_factory: pytest.TempPathFactory, dev_settings: Settings) -> Iterator[set[str]]:
    """What two real Alertmanager peers export once they see each other."""
    cluster = start_alertmanager_cluster(alertmanager_config(dev_settings), tmp_path_factory.mktemp("am"), count=2)
    try:
        deadline = time.monotonic() + 30
        while True:
            samples = scrape(cluster.web_ports[0])
            members = [s.value for s in samples.get("alertmanager_cluster_members", [])]
            if members == [2] or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert members == [2], f"the two peers never saw each other: {members}"
        yield set(samples)
    finally:
        cluster.stop()


def test_alertmanager_names_come_from_the_real_alertmanager(
    dev_settings: Settings, alertmanager_names: set[str]
) -> None:
    for name, where in used_names(dev_settings).items():
        if name.startswith("alertmanager_"):
            assert name in alertmanager_names, f"{where}: Alertmanager serves no {name}"


def test_cluster_exporter_names_exist_in_their_source(dev_settings: Settings) -> None:
    ksm = source_text("kube-state-metrics", "internal/store")
    cadvisor = source_text("cadvisor", "metrics")
    kubelet = source_text("kubelet", "pkg/kubelet/metrics")
    assert re.search(r'KubeletSubsystem\s*=\s*"kubelet"', kubelet), "kubelet metrics are named kubelet_*"
    for name, where in used_names(dev_settings).items():
        if name.startswith("kube_"):
            assert f'"{name}"' in ksm, f"{where}: kube-state-metrics has no {name}"
        elif name.startswith("container_"):
            assert f'"{name}"' in cadvisor, f"{where}: cAdvisor has no {name}"
        elif name.startswith("kubelet_"):
            key = re.escape(name.removeprefix("kubelet_"))
            assert re.search(rf'=\s*"{key}"', kubelet), f"{where}: the kubelet has no {name}"


def test_every_name_has_a_source(dev_settings: Settings) -> None:
    """A name outside every family above would go unchecked: there is none."""
    recorded = {r.record for r in recordings(dev_settings)}
    families = ("presto_", "kafka_", "jvm_", "kube_", "container_", "kubelet_", "alertmanager_", *CLICKHOUSE_PREFIXES)
    for name, where in used_names(dev_settings).items():
        assert name in recorded or name in PROMETHEUS_OWN or name.startswith(families), f"{where}: {name}"
