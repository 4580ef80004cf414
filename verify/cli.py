"""Command line of verify: choose the checks, run them, write the reports, exit with a code CI can act on."""

import argparse
import dataclasses
import secrets
import signal
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from components import names
from verify import tpch
from verify.core.checks import Check, Cleanup, Context, Record, Status
from verify.core.errors import UsageError, VerifyError
from verify.core.exit_codes import ExitCode, describe
from verify.core.progress import Progress
from verify.core.report import RunInfo, write_reports
from verify.core.runner import SERVICE_ERRORS, Options, Redactor, run
from verify.core.targets import Targets, load_outputs, targets_from
from verify.failover import injectors as failover_injectors
from verify.failover.autoscaling import ScalePlan, autoscaling
from verify.failover.checks import FailoverPlan
from verify.failover.checks import checks as failover_checks
from verify.failover.injectors import ChaosMeshInjector, Injector, KubernetesInjector
from verify.failover.scenarios import BY_NAME
from verify.kube import checks as cluster
from verify.kube.port_forward import forward_check
from verify.load import report as load_report
from verify.load import slo
from verify.load.checks import MODES, WORKLOADS, LoadPlan, LoadRun, LoadSession
from verify.load.slo import Objective
from verify.pipeline import checks as pipeline_checks
from verify.pipeline.checks import Load
from verify.smoke import clickhouse as clickhouse_checks
from verify.smoke import grafana as grafana_checks
from verify.smoke import kafka as kafka_checks
from verify.smoke import presto as presto_checks
from verify.smoke import prometheus as prometheus_checks

SCENARIOS = ("smoke", "pipeline")
"""Scenarios built so far, in the order `all` runs them."""
SMOKE = (presto_checks, clickhouse_checks, kafka_checks, prometheus_checks, grafana_checks)
VERSION_FIGURES = {"presto.info": "presto", "clickhouse.version": "clickhouse", "grafana.health": "grafana"}


def parser() -> argparse.ArgumentParser:
    """The argument parser: a command, where the stack is, what to run and where to report."""
    cli = argparse.ArgumentParser(
        prog="python -m verify",
        description="Check a deployed query-engine-stack: smoke, data pipeline, load and failover, with figures.",
        epilog=f"exit codes:\n{describe()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cli.add_argument(
        "command",
        choices=("plan", *SCENARIOS, "load", "failover", "all"),
        help="plan lists the checks and runs nothing; all runs smoke and pipeline (load, failover: on purpose)",
    )
    where = cli.add_argument_group("the stack")
    where.add_argument("--stack", help="read this stack's outputs with `pulumi stack output --json --show-secrets`")
    where.add_argument("--outputs", type=Path, help="read the same JSON from a file instead")
    for name, what in (
        ("presto-url", "Presto's https URL"),
        ("clickhouse-url", "ClickHouse's HTTP URL"),
        ("clickhouse-native", "ClickHouse's native host:port"),
        ("kafka-bootstrap", "Kafka bootstrap servers"),
        ("prometheus-url", "Prometheus's URL"),
        ("grafana-url", "Grafana's URL"),
    ):
        where.add_argument(f"--{name}", help=f"{what}, instead of the stack's in-cluster address")
    where.add_argument(
        "--kubeconfig", help="the cluster's kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)"
    )
    where.add_argument(
        "--kube-context", help="the kubeconfig context (default: the stack's kubernetes.context, else the current one)"
    )
    where.add_argument(
        "--service-account",
        help="run as this ServiceAccount of the stack's namespace (`verify`: the least verify needs); "
        "the kubeconfig's user only mints its token",
    )
    where.add_argument(
        "--no-kubernetes",
        action="store_true",
        help="do not use the Kubernetes API: no preflight, no Kubernetes checks, no port-forwards",
    )
    what = cli.add_argument_group("what to run")
    what.add_argument("--tags", default="", help="only checks with one of these tags (comma-separated)")
    what.add_argument("--skip-tags", default="", help="no check with one of these tags (comma-separated)")
    what.add_argument("--deadline", type=float, help="seconds for the whole run: checks after it are skipped")
    what.add_argument("--fail-fast", action="store_true", help="skip the remaining checks after a failure")
    pipeline = cli.add_argument_group("the pipeline check")
    pipeline.add_argument("--events", type=positive(int), default=Load.events, help="events to send (%(default)s)")
    pipeline.add_argument(
        "--converge-timeout",
        type=positive(float),
        default=Load.converge_timeout,
        help="seconds ClickHouse gets to show every acknowledged event (%(default)s)",
    )
    load_arguments(cli.add_argument_group("the load command"))
    failover_arguments(cli.add_argument_group("the failover command"))
    cli.add_argument("--report-dir", type=Path, default=Path("verify-reports"), help="where the reports go")
    return cli


def load_arguments(group: argparse._ArgumentGroup) -> None:
    """Flags of `verify load`: workload, mode and its sizes, objectives, comparison."""
    plan = LoadPlan()
    group.add_argument("--workload", choices=tuple(WORKLOADS), default=plan.workload, help="%(default)s")
    group.add_argument("--mode", choices=MODES, default=plan.mode, help="%(default)s")
    group.add_argument("--schema", default=plan.schema, help="tpch schema: tiny, sf1, sf10... (%(default)s)")
    group.add_argument("--queries", default="", help="TPC-H queries to run, e.g. q01,q06 (default: all 22)")
    group.add_argument("--runs", type=positive(int), default=plan.runs, help="power: measured runs (%(default)s)")
    group.add_argument("--warmup", type=int, default=plan.warmup, help="power: warm-up runs (%(default)s)")
    group.add_argument("--streams", type=positive(int), default=plan.streams, help="throughput: streams (%(default)s)")
    group.add_argument("--rate", type=positive(float), default=plan.rate, help="open: arrivals/s (%(default)s)")
    group.add_argument("--duration", type=positive(float), default=plan.duration, help="open: seconds (%(default)s)")
    group.add_argument("--arrivals", choices=("constant", "poisson"), default=plan.arrivals, help="%(default)s")
    group.add_argument("--ramp", choices=("concurrency", "rate"), default=plan.ramp, help="ramp by (%(default)s)")
    group.add_argument("--stages", default=",".join(f"{v:g}" for v in plan.stages), help="ramp: %(default)s")
    group.add_argument("--stage-seconds", type=positive(float), default=plan.stage_seconds, help="%(default)s")
    group.add_argument("--workers", type=positive(int), default=plan.workers, help="open: in flight (%(default)s)")
    group.add_argument("--timeout", type=positive(float), default=plan.timeout, help="per operation (%(default)s)")
    group.add_argument("--sample-interval", type=positive(float), default=plan.sample_interval, help="%(default)s")
    group.add_argument("--seed", type=int, default=plan.seed, help="for arrivals and orders (%(default)s)")
    group.add_argument(
        "--slo", action="append", type=objective, help="e.g. p95<2s (repeatable; replaces the stack's loadSlos)"
    )
    group.add_argument("--compare", type=Path, help="an earlier run's load.json: print and plot the change")


AUTOSCALING = "autoscaling"
INJECTORS = ("auto", "chaos-mesh", "kubernetes")


def failover_arguments(group: argparse._ArgumentGroup) -> None:
    """Flags of `verify failover`: consent, scenarios, injector, probing and traffic."""
    plan, scale = FailoverPlan(), ScalePlan()
    group.add_argument(
        "--allow-destructive", action="store_true", help="required: failover kills pods and cuts networks"
    )
    group.add_argument(
        "--scenario",
        action="append",
        choices=(*BY_NAME, AUTOSCALING),
        help="run this scenario (repeatable; default: every one, autoscaling last)",
    )
    group.add_argument("--injector", choices=INJECTORS, default="auto", help="auto: Chaos Mesh if installed")
    group.add_argument("--hold", type=positive(float), help="seconds each fault lasts (default: each scenario's)")
    group.add_argument(
        "--probe-interval", type=positive(float), default=plan.probe_interval, help="seconds, at most 0.1 (%(default)s)"
    )
    group.add_argument(
        "--probe-timeout", type=positive(float), default=plan.probe_timeout, help="seconds (%(default)s)"
    )
    group.add_argument(
        "--recovery-probes", type=positive(int), default=plan.consecutive, help="K passing in a row (%(default)s)"
    )
    group.add_argument("--baseline", type=positive(float), default=plan.baseline, help="seconds (%(default)s)")
    group.add_argument(
        "--recover-timeout", type=positive(float), default=plan.recover_timeout, help="seconds (%(default)s)"
    )
    group.add_argument(
        "--query-streams", type=positive(int), default=plan.streams, help="background query streams (%(default)s)"
    )
    group.add_argument("--produce-rate", type=positive(float), default=plan.rate, help="events/s (%(default)s)")
    group.add_argument("--no-alerts", action="store_true", help="do not judge the scenarios' alerts in Prometheus")
    group.add_argument(
        "--scale-streams", type=positive(int), default=scale.streams, help="autoscaling load streams (%(default)s)"
    )
    group.add_argument("--scale-schema", default=scale.schema, help="autoscaling load's tpch schema (%(default)s)")
    group.add_argument("--scale-poll", type=positive(float), default=scale.poll, help="seconds (%(default)s)")


def failover_plan(args: argparse.Namespace) -> FailoverPlan:
    """The failover plan from the flags; a usage error for a probe interval above 100 ms."""
    try:
        return FailoverPlan(
            probe_interval=args.probe_interval,
            probe_timeout=args.probe_timeout,
            consecutive=args.recovery_probes,
            baseline=args.baseline,
            hold=args.hold,
            recover_timeout=args.recover_timeout,
            streams=args.query_streams,
            rate=args.produce_rate,
            converge_timeout=args.converge_timeout,
            alerts=not args.no_alerts,
        )
    except ValueError as error:
        raise UsageError(f"--probe-interval {args.probe_interval:g}: {error}") from None


def injector_for(kube: cluster.Cluster, choice: str, run_id: str) -> Injector:
    """Chaos Mesh when chosen or (auto) installed, else the Kubernetes API."""
    if choice == "kubernetes":
        return KubernetesInjector(kube)
    if failover_injectors.installed(kube):
        return ChaosMeshInjector(kube, run_id)
    if choice == "chaos-mesh":
        raise UsageError(f"--injector chaos-mesh: the cluster serves no chaos-mesh.org API in {kube.namespace}")
    return KubernetesInjector(kube)


def failover(args: argparse.Namespace, kube: cluster.Cluster | None, run_id: str, cleanup: Cleanup) -> list[Check]:
    """The failover checks, after consent; their injector's removal registered with the cleanup."""
    if not args.allow_destructive:
        raise UsageError("failover kills pods, cuts networks and loads CPUs: pass --allow-destructive to consent")
    if kube is None:
        raise UsageError("failover injects faults through the Kubernetes API: drop --no-kubernetes")
    plan = failover_plan(args)
    try:
        tpch.scale_factor(args.scale_schema)
    except UsageError:
        raise UsageError(f"--scale-schema {args.scale_schema}: not a tpch schema; use tiny or sfN (sf1...)") from None
    chosen_names = args.scenario or [*BY_NAME, AUTOSCALING]
    injector = injector_for(kube, args.injector, run_id)
    cleanup.add(f"fault objects of run {run_id}", injector.remove_all)
    checks = failover_checks([BY_NAME[n] for n in chosen_names if n != AUTOSCALING], injector, plan)
    if AUTOSCALING in chosen_names:
        scale = ScalePlan(streams=args.scale_streams, schema=args.scale_schema, poll=args.scale_poll)
        deadline = scale.out_timeout + 3600 + scale.in_margin
        checks.append(
            Check(
                "failover.autoscaling",
                "failover",
                f"{names.PRESTO_WORKER} HorizontalPodAutoscaler",
                lambda context: autoscaling(context, kube, injector, scale),
                deadline,
                frozenset({"failover", "destructive", "presto", "kubernetes"}),
            )
        )
    return checks


def objective(text: str) -> Objective:
    """An argparse type: an SLO."""
    try:
        return slo.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def load_plan(args: argparse.Namespace, targets: Targets) -> LoadPlan:
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


Number = TypeVar("Number", int, float)


def positive(kind: type[Number]) -> Callable[[str], Number]:
    """An argparse type: a number above zero."""

    def parse(text: str) -> Number:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text}: must be above 0")
        return value

    parse.__name__ = kind.__name__
    return parse


def scenario_checks(
    scenario: str,
    targets: Targets,
    load: Load,
    kube: cluster.Cluster | None,
    session: LoadSession | None,
    destructive: list[Check] | None = None,
) -> list[Check]:
    """The checks of one scenario, in the order they run (failover's are built with their injector)."""
    if scenario == "failover":
        return destructive or []
    if scenario == "load":
        return session.checks(targets) if session else []
    if scenario == "pipeline":
        return pipeline_checks.checks(targets, load)
    smoke = [check for module in SMOKE for check in module.checks(targets)]
    return smoke + (cluster.checks(kube, targets) if kube else [])


def chosen(
    command: str,
    targets: Targets,
    args: argparse.Namespace,
    kube: cluster.Cluster | None,
    given: set[str],
    session: LoadSession | None,
    destructive: list[Check] | None = None,
) -> list[Check]:
    """The checks of the command, filtered by tags; preflight first when the cluster is reachable."""
    scenarios = SCENARIOS if command in ("all", "plan") else (command,)
    load = Load(args.events, args.converge_timeout)
    preflight = [cluster.preflight_check(kube, targets), forward_check(kube, given)] if kube else []
    checks = preflight + [
        c for scenario in scenarios for c in scenario_checks(scenario, targets, load, kube, session, destructive)
    ]
    wanted, unwanted = (set(filter(None, t.split(","))) for t in (args.tags, args.skip_tags))
    return [c for c in checks if c.gate or ((not wanted or c.tags & wanted) and not c.tags & unwanted)]


def exit_code(records: list[Record], interrupted: bool) -> ExitCode:
    """Cleanup failed beats could not measure beats a check failed."""
    if any(r.name == "cleanup" and r.status != Status.PASSED for r in records):
        return ExitCode.CLEANUP
    if interrupted or any(r.status == Status.ERROR for r in records):
        return ExitCode.HARNESS
    if any(r.scenario == "preflight" and r.status == Status.FAILED for r in records):
        return ExitCode.NOT_READY
    if any(r.status == Status.FAILED for r in records):
        return ExitCode.FAILED
    return ExitCode.PASSED


def plan(checks: list[Check]) -> int:
    """Print what would run, against what, under which deadline; change nothing."""
    for check in checks:
        tags = ", ".join(sorted(check.tags))
        print(f"{check.scenario:8} {check.name:28} {check.deadline:>5g}s  {check.target}  [{tags}]")
    print(f"{len(checks)} checks; nothing was run.")
    return ExitCode.PASSED


def interrupt(signum: int, _: object) -> None:
    """SIGTERM handler: stop the run the way Ctrl-C does."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run; return the exit code."""
    args = parser().parse_args(argv)
    overrides = {
        "presto": args.presto_url,
        "clickhouse_http": args.clickhouse_url,
        "clickhouse_native": args.clickhouse_native,
        "kafka": args.kafka_bootstrap,
        "prometheus": args.prometheus_url,
        "grafana": args.grafana_url,
    }
    try:
        stack, outputs = load_outputs(args.stack, args.outputs)
        targets = targets_from(stack, outputs)
        context = args.kube_context or targets.kube_context
        session = LoadSession(load_plan(args, targets)) if args.command == "load" else None
        earlier = load_report.read(args.compare) if args.compare and session else None
        kube = (
            None
            if args.no_kubernetes
            else cluster.connect(args.kubeconfig, context, targets.namespace, args.service_account)
        )
    except VerifyError as error:
        print(f"verify: {error}", file=sys.stderr)
        return error.code
    targets = dataclasses.replace(targets, endpoints=targets.endpoints.overridden(**overrides))
    given = {key for key, value in overrides.items() if value}
    run_id = f"{datetime.now(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(3)}"
    cleanup = Cleanup()
    try:
        destructive = failover(args, kube, run_id, cleanup) if args.command == "failover" else None
    except VerifyError as error:
        print(f"verify: {error}", file=sys.stderr)
        return error.code
    except SERVICE_ERRORS as error:
        print(f"verify: the Kubernetes API did not answer: {error}", file=sys.stderr)
        return ExitCode.NOT_READY
    checks = chosen(args.command, targets, args, kube, given, session, destructive)
    if args.command == "plan":
        return plan(checks)
    signal.signal(signal.SIGTERM, interrupt)  # a cancelled CI job cleans up as Ctrl-C does
    # Python leaves SIGINT ignored when it starts so (a shell's background job, some CI runners):
    # Ctrl-C, or a runner's cancel, must still stop the run and clean up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started, began = datetime.now(UTC).isoformat(timespec="seconds"), time.monotonic()
    progress = Progress()
    outcome = run(
        checks,
        Context(run_id, targets, cleanup),
        Options(deadline=args.deadline, fail_fast=args.fail_fast),
        Redactor(targets.secrets()),
        progress.start,
        progress.done,
    )
    code = exit_code(outcome.records, outcome.interrupted)
    versions = {
        service: str(r.figures["version"])
        for r in outcome.records
        if (service := VERSION_FIGURES.get(r.name)) and "version" in r.figures
    }
    info = RunInfo(run_id, stack, args.command, started, round(time.monotonic() - began, 3), int(code), versions)
    paths = write_reports(args.report_dir, info, outcome.records)
    if session is not None and session.run is not None:
        paths += write_load_reports(args.report_dir, info, session.run, earlier)
    for path in paths:
        print(f"report: {path}", file=sys.stderr)
    return code


def write_load_reports(directory: Path, info: RunInfo, run: LoadRun, earlier: dict | None) -> list[Path]:
    """load.json, the HDR logs and load.html; the comparison with an earlier run printed too."""
    from verify.load import (
        html as load_html,  # matplotlib: only runs that draw pay its import (0.4 s of a 0.85 s start)
    )

    document, paths = load_report.write(directory, info, run)
    changes = load_report.compare(earlier, document) if earlier else None
    if earlier and changes is not None:
        print(load_report.comparison_text(earlier, changes))
    paths.append(load_html.write(directory, document, earlier, changes))
    return paths
