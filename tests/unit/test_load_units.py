"""verify load's parts without servers: objectives, the driver's schedule and correction, figures, comparison, plans."""

import json
import threading
import time
from pathlib import Path

import pytest
from hdrh.log import HistogramLogReader

from verify.core.checks import CheckFailedError
from verify.core.errors import UsageError
from verify.core.report import RunInfo
from verify.load import html, latency, report, slo
from verify.load.checks import LoadRun, LoadSession, Stage
from verify.load.driver import Outcome, closed_loop, constant_arrivals, open_loop, poisson_arrivals
from verify.load.plan import LoadPlan
from verify.load.report import Change, compare


@pytest.mark.parametrize(
    ("text", "figure", "op", "threshold"),
    [
        ("p95<2s", "p95", "<", 2000.0),
        ("p99.9 <= 250ms", "p99.9", "<=", 250.0),
        ("error_ratio<0.01", "error_ratio", "<", 0.01),
        ("qph>100", "qph", ">", 100.0),
        ("achieved_ratio>=0.99", "achieved_ratio", ">=", 0.99),
    ],
)
def test_objectives_parse_with_latency_in_milliseconds(text: str, figure: str, op: str, threshold: float) -> None:
    parsed = slo.parse(text)
    assert (parsed.figure, parsed.op, parsed.threshold) == (figure, op, threshold)


@pytest.mark.parametrize("text", ["p95<2", "qph>100s", "latency<2s", "p95=2s", "p95<-1s", "", "p95<2s; qph>1"])
def test_a_malformed_objective_is_refused_saying_what_is_allowed(text: str) -> None:
    with pytest.raises(ValueError, match="FIGURE OP NUMBER"):
        slo.parse(text)


def test_verdicts_name_the_figure_its_value_and_the_objective() -> None:
    objectives = [slo.parse("p95<2s"), slo.parse("qph>100"), slo.parse("achieved_ratio>0.99")]
    verdicts = slo.judge(objectives, {"p95": 2500.0, "qph": 180.0})
    assert [v.met for v in verdicts] == [False, True, False]
    assert str(verdicts[0]) == "p95 = 2500 ms (breaches p95<2s)"
    assert str(verdicts[2]) == "achieved_ratio = not measured (breaches achieved_ratio>0.99)"


def test_arrivals_keep_their_rate() -> None:
    assert constant_arrivals(4, 2) == [0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    poisson = poisson_arrivals(100, 50, seed=7)
    assert poisson == poisson_arrivals(100, 50, seed=7) and poisson != poisson_arrivals(100, 50, seed=8)
    assert 4500 < len(poisson) < 5500 and poisson == sorted(poisson) and poisson[-1] < 50


def test_a_stall_is_charged_to_the_operations_it_delayed() -> None:
    """One worker, one operation that stalls: those scheduled behind it start late, and their latency says so."""

    def operation(label: str) -> dict:
        time.sleep(0.3 if label == "stall" else 0.001)
        return {}

    labels = ["stall"] + ["quick"] * 9
    outcomes = open_loop(constant_arrivals(50, 0.2), labels.__getitem__, operation, 1, threading.Event())
    assert [o.label for o in outcomes] == labels
    delayed = outcomes[1:]
    assert all(o.lag > 0.2 for o in delayed[:5]), "started after the stall, not on schedule"
    assert all(o.latency >= o.service_time + o.lag - 1e-9 for o in delayed)
    figures = latency.summary(outcomes, scheduled=True, target_rate=50)
    assert figures["late_starts"] >= 9
    assert figures["latency_ms"]["corrected"]["p50"] > 10 * figures["latency_ms"]["raw"]["p50"]


def test_closed_loop_streams_run_their_labels_in_order_and_stop_on_request() -> None:
    seen: list[str] = []
    outcomes = closed_loop([["a", "b"], ["c"]], lambda label: seen.append(label) or {}, threading.Event())
    assert sorted(o.label for o in outcomes) == ["a", "b", "c"] and seen.index("a") < seen.index("b")
    stop = threading.Event()
    stop.set()
    assert closed_loop([["a"]], lambda _: {}, stop, seconds=10) == []


def test_failed_operations_are_counted_not_timed() -> None:
    outcomes = [Outcome("q", 0, 0, 0.1), Outcome("q", 0.1, 0.1, 0.3, "OSError: refused"), Outcome("q", 0.2, 0.2, 0.5)]
    figures = latency.summary(outcomes, scheduled=False)
    assert (figures["count"], figures["ok"], figures["errors"]) == (3, 2, 1)
    assert figures["error_ratio"] == pytest.approx(1 / 3, abs=1e-6) and figures["error_kinds"] == {
        "OSError: refused": 1
    }
    assert figures["latency_ms"]["corrected"] is None and figures["latency_ms"]["raw"]["max"] == pytest.approx(
        300, 0.01
    )


def test_the_hdr_log_holds_every_successful_operation(tmp_path: Path) -> None:
    outcomes = [Outcome("q", i * 0.1, i * 0.1, i * 0.1 + 0.05) for i in range(25)] + [Outcome("q", 0, 0, 1, "x")]
    path = tmp_path / "run.hlog"
    latency.write_hdr_log(path, outcomes, lambda o: o.service_time, "test")
    reader, total = HistogramLogReader(str(path), None), 0
    while (interval := reader.get_next_interval_histogram()) is not None:
        total += interval.get_total_count()
        assert interval.get_max_value() == pytest.approx(50_000, rel=0.01)
    assert total == 25


def test_comparison_calls_out_what_got_worse_by_more_than_a_tenth() -> None:
    def document(p95: float, qph: float, q06: float) -> dict:
        latency_ms = {"raw": {"p50": q06, "p95": p95}, "corrected": None}
        return {
            "overall": {"latency_ms": latency_ms, "error_ratio": 0.0, "qph": qph},
            "queries": {"q06": {"ok": 1, "latency_ms": {"raw": {"p50": q06}}}},
        }

    changes = {c.figure: c for c in compare(document(100, 1000, 50), document(150, 850, 52))}
    assert changes["p95"].regression and changes["qph"].regression and not changes["q06 p50"].regression
    assert changes["p95"].ratio == pytest.approx(0.5) and not changes["error_ratio"].regression
    assert Change("error_ratio", 0.0, 0.05).regression and not Change("qps", 0.0, 5.0).regression


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ({"workload": "kafka", "mode": "power"}, "--mode power runs TPC-H"),
        ({"queries": ("q01", "q23")}, "unknown q23"),
        ({"schema": "huge"}, "tiny or sfN"),
        ({"warmup": -1}, "--warmup -1: must be 0 or more"),
        ({"mode": "ramp", "stages": (1, 1.5)}, "a concurrency ramp takes whole numbers"),
    ],
)
def test_a_plan_that_cannot_run_is_a_usage_error(plan: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        LoadPlan(**plan)


def test_the_knee_is_the_last_stage_that_still_scaled() -> None:
    session = LoadSession(LoadPlan(workload="clickhouse", mode="ramp", stages=(1, 2, 4, 8)))
    stages = [Stage(n, [], {"qps": qps}) for n, qps in ((1, 100), (2, 190), (4, 300), (8, 310))]
    assert session._knee(stages) == 4
    stages[1].figures["qps"] = 120  # doubling the streams bought 20%: saturated at 2
    assert session._knee(stages) == 1


def test_a_ramp_meets_its_objectives_up_to_its_capacity() -> None:
    session = LoadSession(LoadPlan(workload="clickhouse", mode="ramp", objectives=(slo.parse("qps>250"),)))
    stages = [Stage(n, [], {"qps": qps}) for n, qps in ((1, 100), (2, 190), (4, 300), (8, 280))]
    session.run = LoadRun(session.plan, stages)
    assert session.slo(None)["capacity"] == 8  # type: ignore[arg-type]
    session.plan = LoadPlan(workload="clickhouse", mode="ramp", objectives=(slo.parse("qps>1000"),))
    with pytest.raises(CheckFailedError, match=r"qps = 100 \(breaches qps>1000\)") as failed:
        session.slo(None)  # type: ignore[arg-type]
    assert failed.value.figures["capacity"] == "none"


def test_the_page_plots_resources_against_requests_and_limits_and_the_earlier_run(tmp_path: Path) -> None:
    """What a cluster's Prometheus gives (no cAdvisor here): CPU, memory and replicas are plotted, limits dashed."""
    plan = LoadPlan(workload="clickhouse", mode="open", rate=10, duration=1, objectives=(slo.parse("p99<1s"),))
    outcomes = [Outcome("clickhouse", i / 10, i / 10 + 0.001, i / 10 + 0.005) for i in range(10)]
    pods = {"clickhouse-0": [(0.0, 0.2), (1.0, 0.4)], "presto-worker-0": [(0.0, 1.1), (1.0, 1.3)]}
    samples = {
        "interval_s": 1.0,
        "series": {
            "cpu_cores": pods,
            "cpu_request": {"clickhouse-0": [(0.0, 0.5)]},
            "cpu_limit": {"clickhouse-0": [(0.0, 1.0)], "presto-worker-0": [(0.0, 2.0)]},
            "memory_bytes": {"clickhouse-0": [(0.0, 2e8)]},
            "replicas": {"presto-worker": [(0.0, 1.0), (1.0, 2.0)]},
        },
        "no_data": ["queued_queries"],
        "failed_queries": 0,
        "first_failure": None,
    }
    stage = Stage(10, outcomes, latency.summary(outcomes, True, 10))
    run = LoadRun(plan, [stage], overall=stage.figures, samples=samples)
    run.verdicts = slo.judge(list(plan.objectives), {"p99": 5.0})
    info = RunInfo("20261124000000-abcdef", "dev", "load", "2026-11-24T00:00:00+00:00", 1.5, 0, {})
    document, paths = report.write(tmp_path, info, run)
    assert [p.name for p in paths] == ["load.json", "load.raw.hlog", "load.corrected.hlog"]
    earlier = json.loads(json.dumps(document)) | {"runId": "earlier"}
    earlier["overall"]["latency_ms"]["corrected"]["p99"] *= 2
    page = html.write(tmp_path, document, earlier, report.compare(earlier, document)).read_text()
    for section in ("cpu", "memory", "replicas", "comparison", "percentiles", "throughput"):
        assert f'id="{section}"' in page, section
    assert 'id="queued"' not in page and "No data for: queued_queries" in page
    assert "clickhouse-0" in page and "presto-worker" in page and "corrected, run earlier" in page
    assert "REGRESSION" not in page, "p99 halved: an improvement"
