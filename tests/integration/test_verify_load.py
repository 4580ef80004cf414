"""`python -m verify load` against the real Presto, ClickHouse and Kafka on 127.0.0.1, sampled by a real Prometheus.

The report's HTML page is opened in Debian's headless Chromium and screenshot, as a person would open it.
cAdvisor and kube-state-metrics cannot run here, so the CPU, memory and replica series have no data
(the report says so); the Presto query series come from the real Presto's exporter.
"""

import json
import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy
import pytest
from hdrh.log import HistogramLogReader
from PIL import Image

from components.settings.model import Settings
from tests.support.servers.clickhouse import ClickHouseNode
from tests.support.servers.kafka import KafkaNode
from tests.support.servers.presto import PrestoCluster
from tests.support.verify_harness import by_name, outputs_document, run_verify, start_local_prometheus, verify
from verify import tpch
from verify.core.exit_codes import ExitCode
from verify.core.targets import targets_from
from verify.load.workloads import PrestoTpch, WrongResultError
from verify.smoke.kafka import admin
from verify.smoke.presto import ca_file

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
"""As root, without a network: no sandbox, and none of Chromium's own calls home."""


@pytest.fixture(scope="module")
def prometheus_url(
    tmp_path_factory: pytest.TempPathFactory, dev_settings: Settings, kafka_node: KafkaNode, presto: PrestoCluster
) -> Iterator[str]:
    """A real Prometheus scraping the real Presto's and Kafka's exporters, for the load sampler."""
    server, url = start_local_prometheus(dev_settings, kafka_node, presto, tmp_path_factory.mktemp("prometheus"))
    yield url
    server.stop()


@pytest.fixture
def document(
    dev_settings: Settings,
    presto: PrestoCluster,
    clickhouse_node: ClickHouseNode,
    kafka_node: KafkaNode,
    pipeline: str,
    prometheus_url: str,
) -> dict:
    """Stack outputs for the local servers (Grafana is not used by load)."""
    return outputs_document(
        dev_settings, presto, clickhouse_node, kafka_node, pipeline, prometheus_url, "http://127.0.0.1:9"
    )


def chromium(*args: str, profile: str) -> subprocess.CompletedProcess[str]:
    """Run Debian's Chromium headless with a fresh profile."""
    command = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def test_plan_lists_the_load_checks_with_the_flags_parameters(document: dict, tmp_path: Path) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(document))
    args = ("plan", "load", "--mode", "open", "--rate", "5", "--slo", "p95<2s")
    result = verify(*args, "--outputs", str(outputs), "--report-dir", str(tmp_path / "reports"))
    assert result.returncode == ExitCode.PASSED, result.stderr
    assert "load.tpch.open" in result.stdout and "load.slo" in result.stdout
    assert "load.rate = 5.0" in result.stdout and "load.objectives = p95<2s" in result.stdout
    assert not (tmp_path / "reports").exists()


def test_a_power_run_of_all_22_queries_matches_every_golden_fingerprint_and_renders(
    document: dict, tmp_path: Path
) -> None:
    code, report, _ = run_verify(document, tmp_path, "load", "--mode", "power", "--runs", "1", "--warmup", "0")
    checks = by_name(report)
    assert code == ExitCode.PASSED, [(c["name"], c["error"]) for c in report["checks"]]
    figures = checks["load.tpch.power"]["figures"]
    assert figures["operations"] == 22 and figures["errors"] == 0 and figures["power_geomean_ms"] > 0
    reports = tmp_path / "reports"
    load = json.loads((reports / "load.json").read_text())
    golden = {query: str(found) for query, found in (tpch.golden("tiny") or {}).items()}
    assert load["fingerprints"] == {query: {golden[query]: 1} for query in tpch.QUERIES}
    assert all(q["presto_ms"]["elapsed_p50"] > 0 for q in load["queries"].values()), "Presto's own times are kept"
    assert [s["objective"] for s in load["slos"]] == document["expected"]["loadSlos"]
    # Prometheus was sampled: Presto's query gauges from the real exporter; no cAdvisor or kube-state-metrics here.
    assert {"queued_queries", "running_queries"} <= set(load["samples"]["series"])
    assert {"cpu_cores", "memory_bytes", "replicas"} <= set(load["samples"]["no_data"])
    (log,) = reports.glob("load.raw.hlog")  # a closed loop has no intended starts: no corrected log
    histograms = HistogramLogReader(str(log), None)
    recorded = 0
    while (interval := histograms.get_next_interval_histogram()) is not None:
        recorded += interval.get_total_count()
    assert recorded == 22

    page = reports / "load.html"
    with tempfile.TemporaryDirectory() as profile:
        dom = chromium("--dump-dom", page.as_uri(), profile=profile).stdout
    for section in ("objectives", "figures", "latency-over-time", "percentiles", "throughput", "per-query", "queued"):
        assert f'id="{section}"' in dom, section
    assert dom.count("<svg") >= 5 and "q22" in dom
    assert not re.search(r'(src|href)="(https?:)?//', page.read_text()), "the page loads nothing: it opens offline"
    screenshot = tmp_path / "load.png"
    with tempfile.TemporaryDirectory() as profile:
        chromium("--window-size=1200,5000", f"--screenshot={screenshot}", page.as_uri(), profile=profile)
    pixels = numpy.asarray(Image.open(screenshot).convert("RGB"), dtype=int)
    assert pixels.shape == (5000, 1200, 3)
    # The plots are drawn: matplotlib's default blue (31, 119, 180) fills many pixels of the page.
    blue = int((numpy.abs(pixels - (31, 119, 180)).sum(axis=2) < 40).sum())
    assert blue > 5000, f"only {blue} plot-coloured pixels: are the plots drawn?"


def test_a_short_open_loop_reaches_its_target_rate_with_corrected_latency(document: dict, tmp_path: Path) -> None:
    args = ("load", "--mode", "open", "--rate", "2", "--duration", "6", "--queries", "q06,q14", "--workers", "8")
    code, report, _ = run_verify(document, tmp_path, *args)
    checks = by_name(report)
    assert code == ExitCode.PASSED, [(c["name"], c["error"]) for c in report["checks"]]
    figures = checks["load.tpch.open"]["figures"]
    assert figures["operations"] == 12 and figures["errors"] == 0
    assert figures["achieved_ratio"] >= 0.95, figures
    load = json.loads((tmp_path / "reports" / "load.json").read_text())
    latency = load["overall"]["latency_ms"]
    assert latency["corrected"]["max"] >= latency["raw"]["max"] * 0.999, "from the intended start, never less"
    assert load["overall"]["target_rate"] == 2 and "start_lag_ms" in load["overall"]
    assert (tmp_path / "reports" / "load.corrected.hlog").exists()


def test_an_impossible_slo_fails_with_exit_1_naming_each_breached_figure_and_compares_with_before(
    document: dict, tmp_path: Path
) -> None:
    first = tmp_path / "first"
    first.mkdir()
    code, _, _ = run_verify(document, first, "load", "--queries", "q06", "--runs", "1", "--warmup", "0")
    assert code == ExitCode.PASSED
    earlier = first / "reports" / "load.json"
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(document))
    reports = tmp_path / "reports"
    slos = ("--slo", "p95<1ms", "--slo", "qph>100000000", "--slo", "error_ratio<0.5")
    args = ("--queries", "q06", "--runs", "1", "--warmup", "0", "--compare", str(earlier))
    result = verify("load", *args, *slos, "--outputs", str(outputs), "--report-dir", str(reports))
    assert result.returncode == ExitCode.FAILED, result.stderr
    report = json.loads((reports / "verify-report.json").read_text())
    slo = by_name(report)["load.slo"]
    assert slo["status"] == "failed" and slo["figures"]["breached"] == 2
    assert "p95 = " in slo["error"] and "breaches p95<1ms" in slo["error"]
    assert "breaches qph>100000000" in slo["error"] and "error_ratio" not in slo["error"]
    assert by_name(report)["load.tpch.power"]["status"] == "passed"
    assert "against run " in result.stdout and "q06 p50" in result.stdout, result.stdout
    page = (reports / "load.html").read_text()
    assert 'id="comparison"' in page and "BREACHED" in page


def test_clickhouse_point_queries_and_kafka_produces_each_load_their_engine(
    document: dict, kafka_node: KafkaNode, tmp_path: Path
) -> None:
    for workload in ("clickhouse", "kafka"):
        args = ("load", "--workload", workload, "--mode", "open", "--rate", "50", "--duration", "2")
        (tmp_path / workload).mkdir()
        code, report, _ = run_verify(document, tmp_path / workload, *args, "--slo", "error_ratio<0.01")
        checks = by_name(report)
        assert code == ExitCode.PASSED, [(c["name"], c["error"]) for c in report["checks"]]
        figures = checks[f"load.{workload}.open"]["figures"]
        assert figures["operations"] == 100 and figures["errors"] == 0 and figures["p99_ms"] > 0
    topics = admin(targets_from("dev", document)).list_topics(timeout=10).topics
    assert not [t for t in topics if t.startswith("verify-load-")], "the scratch topic was removed at cleanup"


def test_a_concurrency_ramp_reports_each_stage_and_the_knee(document: dict, tmp_path: Path) -> None:
    args = ("load", "--workload", "clickhouse", "--mode", "ramp", "--stages", "1,2,4", "--stage-seconds", "1")
    code, report, _ = run_verify(document, tmp_path, *args)
    assert code == ExitCode.PASSED, [(c["name"], c["error"]) for c in report["checks"]]
    load = json.loads((tmp_path / "reports" / "load.json").read_text())
    assert [s["value"] for s in load["stages"]] == [1, 2, 4]
    assert all(s["figures"]["qps"] > 0 for s in load["stages"])
    assert load["knee"] in (None, 1, 2, 4)
    assert 'id="ramp"' in (tmp_path / "reports" / "load.html").read_text()


def test_a_dead_service_fails_the_load_check_with_its_reason(document: dict, tmp_path: Path) -> None:
    document["clickhouseUrl"] = "http://127.0.0.1:9"  # nothing listens on the discard port
    args = ("load", "--workload", "clickhouse", "--mode", "open", "--rate", "5", "--duration", "1", "--timeout", "2")
    code, report, _ = run_verify(document, tmp_path, *args)
    check = by_name(report)["load.clickhouse.open"]
    assert code == ExitCode.FAILED and check["status"] == "failed"
    assert check["error"].startswith("ConnectionError: ClickHouse at http://127.0.0.1:9/"), check["error"]
    assert by_name(report)["load.slo"]["status"] == "failed"


def test_a_result_unlike_the_golden_one_is_an_error_naming_the_query(document: dict) -> None:
    targets = targets_from("dev", document)
    with ca_file(targets) as ca:
        queries = PrestoTpch(targets, ca, "tiny", 60)
        assert queries("q06")["elapsed_ms"] > 0
        queries.golden = {"q06": tpch.Fingerprint(1, "0" * 16)}
        with pytest.raises(WrongResultError, match=r"q06 gave 1 rows, [0-9a-f]{16}; tiny's golden result is 1 rows"):
            queries("q06")
        (wrong,) = queries.wrong()
        assert wrong.startswith("q06 gave 1 rows, ") and "(2x); tiny's golden result is 1 rows, 0000" in wrong
