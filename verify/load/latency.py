"""A run's figures from its outcomes: HdrHistogram percentiles (corrected and raw), rates, errors and the HDR log."""

import math
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogWriter

from verify.load.driver import Outcome

HIGHEST_US = 3_600_000_000
"""Latencies are recorded in microseconds, from 1 µs to an hour, to 3 significant digits."""
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p99.9": 99.9}
LATE_AFTER = 0.002
"""Seconds after its intended start past which an operation counts as a late start."""
LOG_INTERVAL = 1.0
"""Seconds each interval histogram of the HDR log covers."""


def histogram(seconds: Iterable[float]) -> HdrHistogram:
    """An HdrHistogram of durations in seconds (recorded in µs)."""
    found = HdrHistogram(1, HIGHEST_US, 3)
    for value in seconds:
        found.record_value(min(HIGHEST_US, max(1, round(value * 1e6))))
    return found


def percentiles(found: HdrHistogram) -> dict[str, float]:
    """p50 to p99.9 and max, in milliseconds."""
    figures = {name: found.get_value_at_percentile(at) / 1000 for name, at in PERCENTILES.items()}
    return {**figures, "max": found.get_max_value() / 1000} if found.get_total_count() else {}


def spectrum(found: HdrHistogram) -> list[tuple[float, float]]:
    """(percentile, ms) points of the distribution, denser towards the tail, for the percentile plot."""
    if not found.get_total_count():
        return []
    points = [(i.percentile_level_iterated_to, i.value_iterated_to / 1000) for i in found.get_percentile_iterator(5)]
    return [(round(p, 4), ms) for p, ms in points if p < 100] + [(100.0, found.get_max_value() / 1000)]


def summary(outcomes: Sequence[Outcome], scheduled: bool, target_rate: float | None = None) -> dict:
    """Counts, error ratio, throughput, latency percentiles (corrected when the run had a schedule) and server times."""
    ok = [o for o in outcomes if o.error is None]
    count = len(outcomes)
    figures: dict = {"count": count, "ok": len(ok), "errors": count - len(ok)}
    if not count:
        return figures
    first, last = min(o.intended for o in outcomes), max(o.ended for o in outcomes)
    seconds = max(last - first, 1e-9)
    figures |= {
        "error_ratio": round((count - len(ok)) / count, 6),
        "seconds": round(seconds, 3),
        "qps": round(len(ok) / seconds, 3),
        "qph": round(len(ok) / seconds * 3600, 1),
        "latency_ms": {
            "raw": percentiles(histogram(o.service_time for o in ok)),
            "corrected": percentiles(histogram(o.latency for o in ok)) if scheduled else None,
        },
    }
    if scheduled:
        span = max(o.started for o in outcomes) - first
        achieved = (count - 1) / span if count > 1 and span > 0 else None
        figures |= {
            "target_rate": target_rate,
            "achieved_rate": round(achieved, 3) if achieved else None,
            "achieved_ratio": round(achieved / target_rate, 4) if achieved and target_rate else None,
            "late_starts": sum(o.lag > LATE_AFTER for o in outcomes),
            "start_lag_ms": percentiles(histogram(max(o.lag, 0) for o in outcomes)),
        }
    if any("elapsed_ms" in o.server for o in ok):
        figures["presto_ms"] = {
            f"{kind}_{name}": value
            for kind in ("elapsed", "queued")
            for name, value in percentiles(histogram(o.server.get(f"{kind}_ms", 0.0) / 1000 for o in ok)).items()
            if name in ("p50", "p95", "max")
        }
    errors = Counter(o.error for o in outcomes if o.error)
    if errors:
        figures["error_kinds"] = dict(errors.most_common(5))
    return figures


def latency_of(figures: dict) -> dict[str, float]:
    """The percentiles a run is judged on: corrected when it had a schedule, else raw."""
    latency = figures.get("latency_ms") or {}
    return latency.get("corrected") or latency.get("raw") or {}


def geometric_mean(values: Iterable[float]) -> float | None:
    """TPC-H's power figure: the geometric mean of the queries' times."""
    positive = [v for v in values if v > 0]
    return round(math.exp(statistics.fmean(map(math.log, positive))), 1) if positive else None


def write_hdr_log(path: Path, outcomes: Sequence[Outcome], duration: Callable[[Outcome], float], legend: str) -> None:
    """One interval histogram per second of the run (by end time), in HdrHistogram's log format, values in µs."""
    ok = [o for o in outcomes if o.error is None]
    with path.open("w") as handle:
        writer = HistogramLogWriter(handle)
        writer.output_comment(legend)
        writer.output_log_format_version()
        writer.output_legend()
        if not ok:
            return
        for second in range(math.ceil(max(o.ended for o in ok) / LOG_INTERVAL) + 1):
            start, end = second * LOG_INTERVAL, (second + 1) * LOG_INTERVAL
            found = histogram(duration(o) for o in ok if start <= o.ended < end)
            if found.get_total_count():
                found.set_start_time_stamp(int(start * 1000))
                found.set_end_time_stamp(int(end * 1000))
                writer.output_interval_histogram(found, start or 1e-9, end, max_value_unit_ratio=1000.0)
