"""verify against faulty servers: a SIGSTOPped (hung) or killed ClickHouse fails its checks in time, with reasons.

The run is `python -m verify smoke --tags clickhouse` as a subprocess. The hung server keeps its
port open and accepts connections, then never answers: each check must fail within its own deadline,
and the run must end. A killed server refuses connections: its checks fail at once.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from components.settings.model import Settings
from tests.support.servers.clickhouse import start_clickhouse
from tests.support.servers.kafka import KafkaNode
from tests.support.servers.presto import PrestoCluster
from tests.support.servers.process import ServerProcess
from tests.support.verify_harness import by_name, outputs_document, run_verify
from verify.core.exit_codes import ExitCode
from verify.core.targets import targets_from
from verify.smoke import clickhouse


@pytest.fixture
def spare_clickhouse(
    tmp_path_factory: pytest.TempPathFactory,
    dev_settings: Settings,
    presto: PrestoCluster,
    kafka_node: KafkaNode,
    fake_grafana: str,
) -> Iterator[tuple[ServerProcess, dict]]:
    """A ClickHouse of its own, to break, and the stack outputs that point verify at it."""
    node = start_clickhouse(dev_settings, tmp_path_factory.mktemp("clickhouse-spare"))
    document = outputs_document(dev_settings, presto, node, kafka_node, "events", "http://127.0.0.1:9", fake_grafana)
    yield node.server, document
    node.server.stop()  # continues a paused server first; nothing to do for a killed one


def test_a_hung_clickhouse_fails_every_check_within_its_deadline(
    spare_clickhouse: tuple[ServerProcess, dict], tmp_path: Path
) -> None:
    server, document = spare_clickhouse
    server.pause()
    code, report, _ = run_verify(document, tmp_path, "smoke", "--tags", "clickhouse")
    assert code == ExitCode.FAILED
    checks = by_name(report)
    for check in clickhouse.checks(targets_from("test", document)):
        found = checks[check.name]
        assert found["status"] == "failed", found
        assert found["seconds"] <= check.deadline + 1, f"{check.name} took {found['seconds']}s"
        assert found["error"], f"{check.name} failed without a reason"


def test_a_killed_clickhouse_fails_its_checks_at_once(
    spare_clickhouse: tuple[ServerProcess, dict], tmp_path: Path
) -> None:
    server, document = spare_clickhouse
    server.kill()
    code, report, seconds = run_verify(document, tmp_path, "smoke", "--tags", "clickhouse")
    assert code == ExitCode.FAILED
    checks = by_name(report)
    assert all(checks[name]["status"] == "failed" for name in ("clickhouse.ping", "clickhouse.version"))
    assert "refused" in checks["clickhouse.ping"]["error"].lower()
    assert checks["cleanup"]["status"] == "passed", "nothing was created, so nothing is left"
    assert seconds < 30
