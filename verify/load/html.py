"""load.html: one self-contained page with the run's objectives, figures, comparison and plots."""

from dataclasses import dataclass
from pathlib import Path

import jinja2

from verify.load import latency, plots
from verify.load.report import Change

HTML_FILE = "load.html"
RESOURCE_PLOTS = (
    ("cpu", "CPU by pod", "cpu_cores", "cpu", "cores"),
    ("memory", "Memory by pod", "memory_bytes", "memory", "bytes"),
    ("replicas", "Replicas (HPA)", "replicas", None, "replicas"),
    ("queued", "Presto queries queued", "queued_queries", None, "queries"),
    ("running", "Presto queries running", "running_queries", None, "queries"),
)
"""(id, title, sampled series, its request/limit series prefix, unit) of each Prometheus plot."""

HEADLINE = (
    "error_ratio",
    "qps",
    "qph",
    "target_rate",
    "achieved_rate",
    "achieved_ratio",
    "late_starts",
    "power_geomean_ms",
)


@dataclass(frozen=True)
class Plot:
    id: str
    title: str
    svg: str


def plots_for(document: dict, earlier: dict | None) -> list[Plot]:
    """Every plot the run has data for."""
    plan, outcomes = document["plan"], document["outcomes"]
    spectra = {"raw": document["spectrum"]["raw"], "corrected": document["spectrum"]["corrected"]}
    if earlier:
        kind = "corrected" if earlier["spectrum"].get("corrected") else "raw"
        spectra[f"{kind}, run {earlier['runId']}"] = earlier["spectrum"][kind]
    found = [
        Plot("latency-over-time", "Latency over time", plots.latency_over_time(outcomes, plan["scheduled"])),
        Plot("percentiles", "Latency by percentile", plots.percentile_distribution(spectra)),
        Plot("throughput", "Throughput", plots.throughput(outcomes, document["overall"].get("target_rate"))),
    ]
    if plan["workload"] == "tpch" and document["queries"]:
        found.append(Plot("per-query", "Per query", plots.per_query(document["queries"])))
    if plan["mode"] == "ramp":
        drawn = plots.ramp(document["stages"], document["knee"], plan["ramp"])
        found.append(Plot("ramp", f"Ramp by {plan['ramp']}", drawn))
    sampled = document["samples"].get("series", {})
    for plot_id, title, name, limits, unit in RESOURCE_PLOTS:
        if name in sampled:
            bounds = {kind: sampled.get(f"{limits}_{kind}", {}) for kind in ("request", "limit")} if limits else {}
            found.append(Plot(plot_id, title, plots.series(sampled[name], bounds, unit)))
    return found


def headline(overall: dict) -> list[tuple[str, object]]:
    """The run's figures as rows for the page."""
    rows: list[tuple[str, object]] = [(f"{name} (ms)", value) for name, value in latency.latency_of(overall).items()]
    for name in HEADLINE:
        if overall.get(name) is not None:
            rows.append((name, overall[name]))
    if "start_lag_ms" in overall:
        rows += [(f"start lag {name} (ms)", value) for name, value in overall["start_lag_ms"].items()]
    raw = (overall.get("latency_ms") or {}).get("raw") or {}
    if overall.get("latency_ms", {}).get("corrected"):
        rows += [(f"raw {name} (ms)", value) for name, value in raw.items()]
    if "presto_ms" in overall:
        rows += [(f"Presto {name} (ms)", value) for name, value in overall["presto_ms"].items()]
    return rows


def render(document: dict, earlier: dict | None, changes: list[Change] | None) -> str:
    """The page's HTML."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("verify.load", "templates"), autoescape=True, undefined=jinja2.StrictUndefined
    )
    plan = document["plan"]
    return environment.get_template("load.html.j2").render(
        doc=document,
        plan=plan,
        overall=document["overall"],
        slos=document["slos"],
        headline=headline(document["overall"]),
        earlier=earlier,
        changes=changes,
        plots=plots_for(document, earlier),
        queries=document["queries"] if plan["workload"] == "tpch" else {},
        fingerprints=document["fingerprints"],
        samples=document["samples"],
        errors=document["overall"].get("error_kinds", {}),
    )


def write(directory: Path, document: dict, earlier: dict | None, changes: list[Change] | None) -> Path:
    """Write load.html beside the other reports; its path."""
    path = directory / HTML_FILE
    path.write_text(render(document, earlier, changes))
    return path
