"""`python -m verify pipeline` against the real Kafka -> ClickHouse -> Presto pipeline on 127.0.0.1.

ClickHouse 18.16 runs the stack's schema (the Kafka engine table and its materialized view) against the
real Kafka's events topic; Presto reads it through its clickhouse catalog. Events verify produces must
all land, none lost; when they cannot (a table nothing feeds), the check fails and says how many.
"""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.settings.model import Settings
from components.settings.stack_files import REPO
from tests.support.servers.clickhouse import ClickHouseNode, query
from tests.support.servers.kafka import KafkaNode
from tests.support.servers.presto import PrestoCluster
from tests.support.verify_harness import by_name, outputs_document, run_verify
from verify.core.exit_codes import ExitCode

UNFED = "default.verify_unfed"
"""A table with the events' columns that no Kafka engine feeds: every event sent is lost to it."""


@pytest.fixture
def document(
    dev_settings: Settings,
    presto: PrestoCluster,
    clickhouse_node: ClickHouseNode,
    kafka_node: KafkaNode,
    pipeline: str,
    fake_grafana: str,
) -> dict:
    """Stack outputs for the local pipeline (Prometheus is not used by these checks)."""
    return outputs_document(
        dev_settings, presto, clickhouse_node, kafka_node, pipeline, "http://127.0.0.1:9", fake_grafana
    )


def rows_of(node: ClickHouseNode, table: str, run_id: str) -> int:
    """How many rows of a run a table holds."""
    return int(query(node, f"SELECT count() FROM {table} WHERE run_id = '{run_id}'"))


def test_every_event_reaches_clickhouse_and_reads_the_same_through_presto(
    document: dict, clickhouse_node: ClickHouseNode, tmp_path: Path
) -> None:
    code, report, _ = run_verify(document, tmp_path, "pipeline", "--events", "500")
    checks = by_name(report)
    assert code == ExitCode.PASSED, [(c["name"], c["error"]) for c in report["checks"]]
    ingest = checks["pipeline.ingest"]["figures"]
    assert ingest["sent"] == ingest["acked"] == ingest["unique"] == 500
    assert ingest["lost"] == 0 and ingest["rows"] == ingest["unique"] + ingest["duplicated"]
    assert 0 < ingest["visible_p50_ms"] <= ingest["visible_p99_ms"] <= ingest["visible_max_ms"]
    assert ingest["events_per_s"] > 0 and ingest["converge_s"] >= 0
    presto = checks["pipeline.presto"]["figures"]
    assert presto["presto_unique"] == presto["clickhouse_unique"] == 500
    assert checks["cleanup"]["status"] == "passed" and checks["cleanup"]["figures"]["actions"] == 1
    table = document["expected"]["eventsTable"]
    end = time.monotonic() + 30
    while rows_of(clickhouse_node, table, report["run_id"]) and time.monotonic() < end:
        time.sleep(0.2)  # the DELETE is a mutation, applied in the background
    assert rows_of(clickhouse_node, table, report["run_id"]) == 0, "the run's events were not removed"


def test_events_that_never_arrive_are_counted_as_lost(
    document: dict, clickhouse_node: ClickHouseNode, tmp_path: Path
) -> None:
    query(
        clickhouse_node,
        f"CREATE TABLE IF NOT EXISTS {UNFED} (event_id String, run_id String) ENGINE = MergeTree ORDER BY event_id",
    )
    document["expected"]["eventsTable"] = UNFED
    code, report, _ = run_verify(document, tmp_path, "pipeline", "--events", "20", "--converge-timeout", "3")
    checks = by_name(report)
    assert code == ExitCode.FAILED
    ingest = checks["pipeline.ingest"]
    assert ingest["status"] == "failed" and "20 of 20 acknowledged events never reached" in ingest["error"]
    assert ingest["figures"]["acked"] == ingest["figures"]["lost"] == 20, "the figures come with the failure"
    assert checks["pipeline.presto"]["status"] == "failed" and "no event" in checks["pipeline.presto"]["error"]
    assert checks["cleanup"]["status"] == "passed"


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_run_cleans_up_and_reports(
    stop: signal.Signals, document: dict, clickhouse_node: ClickHouseNode, tmp_path: Path
) -> None:
    query(
        clickhouse_node,
        f"CREATE TABLE IF NOT EXISTS {UNFED} (event_id String, run_id String) ENGINE = MergeTree ORDER BY event_id",
    )
    document["expected"]["eventsTable"] = UNFED  # the events never arrive: the check waits for them
    outputs, reports = tmp_path / "outputs.json", tmp_path / "reports"
    outputs.write_text(json.dumps(document))
    command = ["pipeline", "--events", "20", "--converge-timeout", "120", "--no-kubernetes"]
    process = subprocess.Popen(
        [sys.executable, "-m", "verify", *command, "--outputs", str(outputs), "--report-dir", str(reports)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # As a shell's background job starts: with SIGINT ignored, which Python then leaves ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    time.sleep(8)  # started, produced, and waiting for ClickHouse
    process.send_signal(stop)
    assert process.wait(timeout=60) == ExitCode.HARNESS, "an interrupted run could not measure everything"
    checks = by_name(json.loads((reports / "verify-report.json").read_text()))
    why = "interrupted (Ctrl-C)" if stop == signal.SIGINT else "interrupted (SIGTERM)"
    assert checks["pipeline.ingest"]["status"] == "skipped" and checks["pipeline.ingest"]["error"] == why
    assert checks["pipeline.presto"]["status"] == "skipped"
    assert checks["cleanup"]["status"] == "passed" and checks["cleanup"]["figures"]["actions"] == 1
