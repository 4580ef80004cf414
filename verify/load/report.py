"""A load run's own reports: load.json (figures and outcomes), HDR histogram logs, the change against an earlier run."""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from verify.core.errors import UsageError
from verify.core.report import RunInfo
from verify.load import latency
from verify.load.checks import LoadRun, measured

SCHEMA_VERSION = 1
JSON_FILE = "load.json"
REGRESSION = 0.10
"""A figure that got worse by more than this share is called a regression."""
HIGHER_IS_BETTER = ("qps", "qph", "achieved_ratio")


def document(info: RunInfo, run: LoadRun) -> dict:
    """load.json: the plan, the figures overall, per query and per stage, Prometheus's samples and every outcome."""
    plan = asdict(run.plan) | {"objectives": [o.text for o in run.plan.objectives], "scheduled": run.plan.scheduled}
    outcomes = run.outcomes
    ok = [o for o in outcomes if o.error is None]
    return {
        "schemaVersion": SCHEMA_VERSION,
        "runId": info.run_id,
        "stack": info.stack,
        "started": info.started,
        "plan": plan,
        "overall": run.overall,
        "queries": run.queries,
        "stages": [{"value": s.value, "figures": s.figures} for s in run.stages],
        "knee": run.knee,
        "slos": [{"objective": v.objective.text, "value": v.value, "met": v.met} for v in run.verdicts],
        "fingerprints": run.fingerprints,
        "spectrum": {
            "raw": latency.spectrum(latency.histogram(o.service_time for o in ok)),
            "corrected": latency.spectrum(latency.histogram(o.latency for o in ok)) if run.plan.scheduled else [],
        },
        "samples": run.samples,
        "outcomes": [
            [o.label, round(o.intended, 6), round(o.started, 6), round(o.ended, 6), o.error] for o in outcomes
        ],
    }


def write(directory: Path, info: RunInfo, run: LoadRun) -> tuple[dict, list[Path]]:
    """Write load.json and the HDR logs (corrected ones for scheduled runs); the document and the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    found = document(info, run)
    paths = [directory / JSON_FILE]
    paths[0].write_text(json.dumps(found, indent=1) + "\n")
    logs = {"raw": lambda o: o.service_time}
    if run.plan.scheduled:
        logs["corrected"] = lambda o: o.latency
    for kind, duration in logs.items():
        path = directory / f"load.{kind}.hlog"
        legend = f"verify {info.run_id} {run.plan.workload} {run.plan.mode}: {kind} latency, microseconds"
        latency.write_hdr_log(path, run.outcomes, duration, legend)
        paths.append(path)
    return found, paths


def read(path: Path) -> dict:
    """An earlier load.json; a usage error if it is not one."""
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"--compare {path}: {error}") from None
    if not isinstance(found, dict) or found.get("schemaVersion") != SCHEMA_VERSION or "overall" not in found:
        raise UsageError(f"--compare {path}: not a load.json of schema version {SCHEMA_VERSION}")
    return found


@dataclass(frozen=True)
class Change:
    """One figure before and after."""

    figure: str
    before: float
    after: float

    @property
    def ratio(self) -> float | None:
        """After / before - 1 (None when before is 0)."""
        return self.after / self.before - 1 if self.before else None

    @property
    def worse(self) -> float:
        """How much worse, as a share (negative: better)."""
        sign = -1.0 if self._higher_is_better else 1.0
        if self.ratio is None:  # from zero: any rise is a whole step up
            return 0.0 if self.after == self.before else sign * (1.0 if self.after > self.before else -1.0)
        return sign * self.ratio

    @property
    def _higher_is_better(self) -> bool:
        return self.figure.split(" ")[-1] in HIGHER_IS_BETTER

    @property
    def regression(self) -> bool:
        return self.worse > REGRESSION


def compare(before: dict, after: dict) -> list[Change]:
    """The headline figures overall and each query's median, where both runs have them."""
    changes = []
    old, new = measured(before["overall"]), measured(after["overall"])
    for name, value in new.items():
        if value is not None and (then := old.get(name)) is not None:
            changes.append(Change(name, then, value))
    for query, figures in after.get("queries", {}).items():
        then = before.get("queries", {}).get(query)
        if then and figures.get("ok") and then.get("ok"):
            medians = (found["latency_ms"]["raw"]["p50"] for found in (then, figures))
            changes.append(Change(f"{query} p50", *medians))
    return changes


def comparison_text(before: dict, changes: list[Change]) -> str:
    """The changes as a table for the terminal, regressions called out."""
    lines = [
        f"against run {before.get('runId')} ({before.get('started')}):",
        f"{'figure':16} {'before':>12} {'after':>12} {'change':>9}",
    ]
    for change in changes:
        ratio = "n/a" if change.ratio is None else f"{change.ratio:+.1%}"
        flag = "  REGRESSION" if change.regression else ""
        lines.append(f"{change.figure:16} {change.before:>12g} {change.after:>12g} {ratio:>9}{flag}")
    regressions = sum(c.regression for c in changes)
    lines.append(f"{regressions} regressions (worse by more than {REGRESSION:.0%})" if regressions else "no regression")
    return "\n".join(lines)
