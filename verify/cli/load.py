"""`verify load`: a workload in one mode, its figures, and the objectives it must meet."""

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from verify import tpch
from verify.cli.job import Job
from verify.cli.values import objective, positive
from verify.core.checks import Check, Cleanup
from verify.core.errors import UsageError
from verify.core.report import RunInfo
from verify.load import slo
from verify.load.plan import ARRIVALS, MODES, RAMPS, WORKLOADS, LoadPlan

if TYPE_CHECKING:
    from verify.core.targets import Targets
    from verify.kube.checks import Cluster


def arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `verify load`: workload, mode and its sizes, objectives, comparison."""
    plan = LoadPlan()
    group = parser.add_argument_group("load flags")
    add = group.add_argument
    add(
        "--workload",
        choices=tuple(WORKLOADS),
        default=plan.workload,
        help="tpch: TPC-H on Presto; clickhouse: point queries; kafka: produces (default: %(default)s)",
    )
    add(
        "--mode",
        choices=MODES,
        default=plan.mode,
        help="power: the queries one after another; throughput: --streams at once; open: --rate arrivals/s "
        "for --duration; ramp: --stages of concurrency or rate (default: %(default)s)",
    )
    add("--schema", default=plan.schema, help="tpch schema: tiny, sf1, sf10... (default: %(default)s)")
    add(
        "--queries",
        metavar="QUERIES",
        default="",
        help="TPC-H queries to run, comma-separated, e.g. q01,q06 (default: all 22)",
    )
    add("--runs", type=positive(int), default=plan.runs, help="power: measured runs (default: %(default)s)")
    add("--warmup", type=int, default=plan.warmup, help="power: unmeasured runs first (default: %(default)s)")
    add("--streams", type=positive(int), default=plan.streams, help="throughput: streams (default: %(default)s)")
    add(
        "--rate",
        metavar="PER_SECOND",
        type=positive(float),
        default=plan.rate,
        help="open: arrivals per second (default: %(default)s)",
    )
    add(
        "--duration",
        metavar="SECONDS",
        type=positive(float),
        default=plan.duration,
        help="open: seconds (default: %(default)s)",
    )
    add("--arrivals", choices=ARRIVALS, default=plan.arrivals, help="open: arrival times (default: %(default)s)")
    add("--ramp", choices=RAMPS, default=plan.ramp, help="ramp: what the stages raise (default: %(default)s)")
    add(
        "--stages",
        metavar="STAGES",
        default=",".join(f"{v:g}" for v in plan.stages),
        help="ramp: the concurrency or rate of each stage, comma-separated (default: %(default)s)",
    )
    add(
        "--stage-seconds",
        metavar="SECONDS",
        type=positive(float),
        default=plan.stage_seconds,
        help="ramp: seconds each stage lasts (default: %(default)s)",
    )
    add(
        "--workers",
        type=positive(int),
        default=plan.workers,
        help="open and rate ramp: operations in flight at most (default: %(default)s)",
    )
    add(
        "--timeout",
        metavar="SECONDS",
        type=positive(float),
        default=plan.timeout,
        help="seconds one operation may take (default: %(default)s)",
    )
    add(
        "--sample-interval",
        metavar="SECONDS",
        type=positive(float),
        default=plan.sample_interval,
        help="seconds between two samples of the services' resources (default: %(default)s)",
    )
    add("--seed", type=int, default=plan.seed, help="seed of the arrivals and query orders (default: %(default)s)")
    add(
        "--slo",
        metavar="OBJECTIVE",
        action="append",
        type=objective,
        help="an objective, e.g. p95<2s or error_ratio<0.01 (repeatable; default: the stack's loadSlos)",
    )
    add(
        "--compare",
        metavar="LOAD_JSON",
        type=Path,
        help="an earlier run's load.json: print and plot the change (default: none)",
    )


def load_plan(args: argparse.Namespace, targets: "Targets") -> LoadPlan:
    """The load plan from the flags; the stack's objectives unless --slo gives others."""
    try:
        stages = tuple(float(v) for v in args.stages.split(",") if v)
    except ValueError:
        raise UsageError(f"--stages {args.stages}: give numbers, e.g. 1,2,4,8") from None
    if not stages or min(stages) <= 0:
        raise UsageError(f"--stages {args.stages}: give numbers above 0, e.g. 1,2,4,8")
    stack_objectives = tuple(slo.parse(text) for text in targets.expected.load_slos)
    return LoadPlan(
        workload=args.workload,
        mode=args.mode,
        schema=args.schema,
        queries=tuple(filter(None, args.queries.split(","))) or tpch.QUERIES,
        runs=args.runs,
        warmup=args.warmup,
        streams=args.streams,
        rate=args.rate,
        duration=args.duration,
        arrivals=args.arrivals,
        ramp=args.ramp,
        stages=stages,
        stage_seconds=args.stage_seconds,
        workers=args.workers,
        timeout=args.timeout,
        sample_interval=args.sample_interval,
        seed=args.seed,
        objectives=tuple(args.slo) if args.slo else stack_objectives,
    )


def prepare(args: argparse.Namespace, targets: "Targets", planning: bool) -> Job:
    """The load check and its SLO check; load.json, the HDR logs and load.html after the run."""
    from verify.load import report  # the load machinery and its clients
    from verify.load.checks import LoadSession

    plan = load_plan(args, targets)
    earlier = report.read(args.compare) if args.compare else None
    session = LoadSession(plan)

    def build(kube: "Cluster | None", run_id: str, cleanup: Cleanup) -> list[Check]:
        return session.checks(targets)

    def reports(directory: Path, info: RunInfo) -> list[Path]:
        """load.json, the HDR logs and load.html; the comparison with an earlier run printed too."""
        if session.run is None:
            return []
        from verify.load import html  # matplotlib: only runs that draw pay its import (0.4 s of a 0.85 s start)

        document, paths = report.write(directory, info, session.run)
        changes = report.compare(earlier, document) if earlier else None
        if earlier and changes is not None:
            print(report.comparison_text(earlier, changes))
        paths.append(html.write(directory, document, earlier, changes))
        return paths

    parameters = {f"load.{k}": v for k, v in dataclasses.asdict(plan).items() if k not in ("queries", "objectives")}
    parameters["load.queries"] = ",".join(plan.queries)
    parameters["load.objectives"] = ", ".join(o.text for o in plan.objectives) or "none"
    return Job(parameters=parameters, build=build, reports=reports)
