"""The load report's plots, drawn with matplotlib as inline SVG (the page needs nothing from the network)."""

import io
from collections import Counter
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")  # no display: render to files only

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import FixedLocator, FuncFormatter

SIZE = (9.0, 3.6)
SPECTRUM_TICKS = (50.0, 90.0, 99.0, 99.9, 99.99, 99.999)


def _svg(draw: Callable[[Axes], None]) -> str:
    figure, axes = plt.subplots(figsize=SIZE, layout="constrained")
    try:
        draw(axes)
        axes.grid(True, alpha=0.3)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg")
    finally:
        plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def latency_over_time(outcomes: list[list], scheduled: bool) -> str:
    """Every operation's latency by its intended start; failed ones marked on the time axis."""

    def draw(axes: Axes) -> None:
        ok = [o for o in outcomes if o[4] is None]
        failed = [o for o in outcomes if o[4] is not None]
        axes.scatter([o[1] for o in ok], [(o[3] - o[2]) * 1000 for o in ok], s=4, label="raw (from actual start)")
        if scheduled:
            axes.scatter([o[1] for o in ok], [(o[3] - o[1]) * 1000 for o in ok], s=4, label="corrected (from intended)")
        if failed:
            axes.scatter([o[1] for o in failed], [1] * len(failed), marker="x", color="red", label="failed")
        axes.set(xlabel="seconds into the run", ylabel="latency (ms)", yscale="log")
        axes.legend(loc="upper left", fontsize="small")

    return _svg(draw)


def percentile_distribution(spectra: dict[str, list[list[float]]]) -> str:
    """Latency by percentile (HdrHistogram's plot): the tail stretched to the right."""

    def draw(axes: Axes) -> None:
        for name, points in spectra.items():
            if points:
                axes.plot([1 / (1 - min(p, 99.9999) / 100) for p, _ in points], [ms for _, ms in points], label=name)
        axes.set(xscale="log", xlabel="percentile", ylabel="latency (ms)")
        axes.xaxis.set_major_locator(FixedLocator([1 / (1 - p / 100) for p in SPECTRUM_TICKS]))
        axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{(1 - 1 / x) * 100:g}%"))
        axes.xaxis.set_minor_locator(FixedLocator([]))
        axes.legend(loc="upper left", fontsize="small")

    return _svg(draw)


def throughput(outcomes: list[list], target_rate: float | None) -> str:
    """Operations completed per second, successful and failed, against the target rate."""

    def draw(axes: Axes) -> None:
        ok = Counter(int(o[3]) for o in outcomes if o[4] is None)
        failed = Counter(int(o[3]) for o in outcomes if o[4] is not None)
        seconds = range(max([*ok, *failed], default=0) + 1)
        axes.bar(seconds, [ok[s] for s in seconds], width=1.0, align="edge", label="completed")
        axes.bar(seconds, [failed[s] for s in seconds], width=1.0, align="edge", bottom=[ok[s] for s in seconds],
                 color="red", label="failed")  # fmt: skip
        if target_rate:
            axes.axhline(target_rate, color="black", linestyle="--", label=f"target {target_rate:g}/s")
        axes.set(xlabel="seconds into the run", ylabel="operations per second")
        axes.legend(loc="upper left", fontsize="small")

    return _svg(draw)


def per_query(queries: dict[str, dict]) -> str:
    """Each query's median latency, with Presto's own elapsed median beside it."""

    def draw(axes: Axes) -> None:
        names = list(queries)
        ours = [queries[q].get("latency_ms", {}).get("raw", {}).get("p50", 0) for q in names]
        presto = [queries[q].get("presto_ms", {}).get("elapsed_p50") or 0 for q in names]
        positions = range(len(names))
        axes.bar([p - 0.2 for p in positions], ours, width=0.4, label="measured by verify (p50)")
        axes.bar([p + 0.2 for p in positions], presto, width=0.4, label="Presto's elapsed (p50)")
        axes.set_xticks(list(positions), names, rotation=90, fontsize="small")
        axes.set(ylabel="ms")
        axes.legend(loc="upper left", fontsize="small")

    return _svg(draw)


def ramp(stages: list[dict], knee: float | None, by: str) -> str:
    """Throughput and p95 by stage, the knee marked."""

    def draw(axes: Axes) -> None:
        values = [s["value"] for s in stages]
        axes.plot(values, [s["figures"].get("qps", 0) for s in stages], marker="o", label="throughput (ops/s)")
        axes.set(xlabel=by, ylabel="operations per second", xscale="log", xticks=values)
        axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        latency = axes.twinx()
        figures = [s["figures"].get("latency_ms") or {} for s in stages]
        p95 = [(f.get("corrected") or f.get("raw") or {}).get("p95", 0) for f in figures]
        latency.plot(values, p95, marker="s", color="tab:orange", label="p95 (ms)")
        latency.set_ylabel("p95 (ms)")
        if knee is not None:
            axes.axvline(knee, color="black", linestyle="--", label=f"knee at {knee:g}")
        axes.legend(loc="upper left", fontsize="small")

    return _svg(draw)


def series(samples: dict[str, list[list[float]]], limits: dict[str, dict[str, list[list[float]]]], unit: str) -> str:
    """One line per pod (or HPA) over the run; its request and limit dashed, where known."""

    def draw(axes: Axes) -> None:
        for label, points in sorted(samples.items()):
            (line,) = axes.plot([t for t, _ in points], [v for _, v in points], label=label or "total")
            for kind, style in (("request", ":"), ("limit", "--")):
                known = limits.get(kind, {}).get(label)
                if known:
                    axes.axhline(known[-1][1], color=line.get_color(), linestyle=style, linewidth=0.8)
        axes.set(xlabel="seconds into the run", ylabel=unit)
        axes.legend(loc="upper left", fontsize="x-small")

    return _svg(draw)
