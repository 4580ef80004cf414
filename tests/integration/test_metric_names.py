"""Every metric name the rules and dashboards read is one that something really exports.

Where each name must be found:
- the recording rules, and Prometheus's own `up` and `ALERTS`;
- the real Kafka (the JMX exporter agent) and the real Presto (the standalone exporter), scraped here;
- ClickHouse: the image (24.8) exports system.events, system.metrics and system.asynchronous_metrics
  as ClickHouseProfileEvents_*, ClickHouseMetrics_* and ClickHouseAsyncMetrics_*. The real server
  here is Debian's 18.16: a name is in its live system tables, or, for an event still at zero or an
  asynchronous metric not computed yet (18.16 lists neither), a whole string in its library. Names
  18.16 does not have are in NEWER_THAN_18_16, and the test checks that 18.16 really lacks them;
- kube-state-metrics, cAdvisor and the kubelet need a cluster to run: their names are checked against
  their source at the versions we deploy (scripts/servers/install-metric-sources).
"""

import re
import subprocess
import time
from pathlib import Path

import pytest

from components.observability.prometheus.alert_rules import recordings
from components.settings.model import Settings
from tests.support.events import produce_events
from tests.support.promql import expressions, metric_names
from tests.support.servers.clickhouse import CLICKHOUSE_SERVER, ClickHouseNode, query
from tests.support.servers.kafka import KafkaNode
from tests.support.servers.metrics import scrape, scrape_until
from tests.support.servers.presto import PrestoCluster, rows
from tests.support.servers.process import CACHE

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
        if bare in NEWER_THAN_18_16:
            assert name not in live and not compiled, f"{bare} is in 18.16: drop it from NEWER_THAN_18_16"
        else:
            assert name in live or compiled, f"{where}: ClickHouse has no {bare}"


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
    families = ("presto_", "kafka_", "jvm_", "kube_", "container_", "kubelet_", *CLICKHOUSE_PREFIXES)
    for name, where in used_names(dev_settings).items():
        assert name in recorded or name in PROMETHEUS_OWN or name.startswith(families), f"{where}: {name}"
