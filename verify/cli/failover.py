"""`verify failover`: each scenario breaks something under traffic and measures recovery and data loss."""

import argparse
import dataclasses
from typing import TYPE_CHECKING

from components import names
from verify import tpch
from verify.cli.job import Job
from verify.cli.pipeline import converge_timeout
from verify.cli.values import positive
from verify.core.checks import Check, Cleanup
from verify.core.errors import UsageError
from verify.failover.plan import AUTOSCALING, FailoverPlan, PlanError, ScalePlan
from verify.failover.scenarios import BY_NAME

if TYPE_CHECKING:
    from verify.core.targets import Targets
    from verify.failover.injectors import Injector
    from verify.kube.checks import Cluster

INJECTORS = ("auto", "chaos-mesh", "kubernetes")
NEEDS_KUBERNETES = "failover injects faults through the Kubernetes API: drop --no-kubernetes"


def arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `verify failover`: consent, scenarios, injector, probing and traffic."""
    plan, scale = FailoverPlan(), ScalePlan()
    group = parser.add_argument_group("failover flags")
    add = group.add_argument
    add(
        "--allow-destructive",
        action="store_true",
        help="required to run (not to plan): failover kills pods, cuts networks and loads CPUs",
    )
    add(
        "--scenario",
        action="append",
        choices=(*BY_NAME, AUTOSCALING),
        help="run this scenario (repeatable; default: every one, autoscaling last)",
    )
    add(
        "--injector",
        choices=INJECTORS,
        default="auto",
        help="how faults are injected; auto: Chaos Mesh if the cluster serves its API, else the Kubernetes API "
        "(default: %(default)s)",
    )
    add(
        "--hold",
        metavar="SECONDS",
        type=positive(float),
        help="seconds each fault lasts (default: each scenario's own)",
    )
    add(
        "--probe-interval",
        metavar="SECONDS",
        type=positive(float),
        default=plan.probe_interval,
        help="seconds between two probes, at most 0.1 (default: %(default)s)",
    )
    add(
        "--probe-timeout",
        metavar="SECONDS",
        type=positive(float),
        default=plan.probe_timeout,
        help="seconds one probe may take (default: %(default)s)",
    )
    add(
        "--recovery-probes",
        type=positive(int),
        default=plan.consecutive,
        help="passing probes in a row that count as recovered (default: %(default)s)",
    )
    add(
        "--settle",
        metavar="SECONDS",
        type=positive(float),
        default=plan.settle,
        help="seconds each scenario waits, before its fault, for a steady state (--recovery-probes probes in a row "
        "passing); it fails with the probes' history if none comes. At least --recovery-probes x --probe-interval "
        "(default: %(default)s)",
    )
    add(
        "--baseline",
        metavar="SECONDS",
        type=positive(float),
        default=plan.baseline,
        help="seconds of traffic before the fault, for the baseline latencies (default: %(default)s)",
    )
    add(
        "--recover-timeout",
        metavar="SECONDS",
        type=positive(float),
        default=plan.recover_timeout,
        help="seconds the service gets to recover after the fault ends (default: %(default)s)",
    )
    add(
        "--query-streams",
        type=positive(int),
        default=plan.streams,
        help="background TPC-H query streams during a scenario (default: %(default)s)",
    )
    add(
        "--produce-rate",
        metavar="PER_SECOND",
        type=positive(float),
        default=plan.rate,
        help="events per second the background producer sends (default: %(default)s)",
    )
    converge_timeout(group, plan.converge_timeout)
    add("--no-alerts", action="store_true", help="do not judge the scenarios' alerts in Prometheus")
    add(
        "--scale-streams",
        type=positive(int),
        default=scale.streams,
        help="autoscaling: TPC-H streams that load the workers (default: %(default)s)",
    )
    add(
        "--scale-schema",
        metavar="SCHEMA",
        default=scale.schema,
        help="autoscaling: the load's tpch schema (default: %(default)s)",
    )
    add(
        "--scale-poll",
        metavar="SECONDS",
        type=positive(float),
        default=scale.poll,
        help="autoscaling: seconds between two reads of the HPA (default: %(default)s)",
    )


FLAGS = {"probe_interval": "--probe-interval", "settle": "--settle"}
"""The flag of each plan field whose range the plan checks."""


def failover_plan(args: argparse.Namespace) -> FailoverPlan:
    """The failover plan from the flags; a usage error naming the flag for a value out of its range."""
    try:
        return FailoverPlan(
            probe_interval=args.probe_interval,
            probe_timeout=args.probe_timeout,
            consecutive=args.recovery_probes,
            settle=args.settle,
            baseline=args.baseline,
            hold=args.hold,
            recover_timeout=args.recover_timeout,
            streams=args.query_streams,
            rate=args.produce_rate,
            converge_timeout=args.converge_timeout,
            alerts=not args.no_alerts,
        )
    except PlanError as error:
        flag = FLAGS[error.field]
        raise UsageError(f"{flag} {getattr(args, error.field):g}: {error}") from None


def prepare(args: argparse.Namespace, targets: "Targets", planning: bool) -> Job:
    """The failover checks, after consent (a plan needs none); their injector's removal goes to the cleanup."""
    if not planning and not args.allow_destructive:
        raise UsageError("failover kills pods, cuts networks and loads CPUs: pass --allow-destructive to consent")
    if args.no_kubernetes:
        raise UsageError(NEEDS_KUBERNETES)
    plan = failover_plan(args)
    try:
        tpch.scale_factor(args.scale_schema)
    except UsageError:
        raise UsageError(f"--scale-schema {args.scale_schema}: not a tpch schema; use tiny or sfN (sf1...)") from None
    scale = ScalePlan(streams=args.scale_streams, schema=args.scale_schema, poll=args.scale_poll)
    chosen = args.scenario or [*BY_NAME, AUTOSCALING]

    def build(kube: "Cluster | None", run_id: str, cleanup: Cleanup) -> list[Check]:
        from verify.failover import checks  # the Kubernetes client and the services' clients

        if kube is None:
            raise UsageError(NEEDS_KUBERNETES)
        injector = injector_for(kube, args.injector, run_id)
        cleanup.add(f"fault objects of run {run_id}", injector.remove_all)
        found = checks.checks([BY_NAME[name] for name in chosen if name != AUTOSCALING], injector, plan)
        if AUTOSCALING in chosen:
            found.append(autoscaling_check(kube, injector, scale))
        return found

    parameters: dict[str, object] = {"failover.scenarios": ",".join(chosen), "failover.injector": args.injector}
    parameters |= {f"failover.{k}": v for k, v in dataclasses.asdict(plan).items()}
    if AUTOSCALING in chosen:
        parameters |= {f"failover.autoscaling.{k}": v for k, v in dataclasses.asdict(scale).items()}
    return Job(parameters=parameters, build=build)


def injector_for(kube: "Cluster", choice: str, run_id: str) -> "Injector":
    """Chaos Mesh when chosen or (auto) installed, else the Kubernetes API."""
    from verify.failover import injectors

    if choice == "kubernetes":
        return injectors.KubernetesInjector(kube)
    if injectors.installed(kube):
        return injectors.ChaosMeshInjector(kube, run_id)
    if choice == "chaos-mesh":
        raise UsageError(f"--injector chaos-mesh: the cluster serves no chaos-mesh.org API in {kube.namespace}")
    return injectors.KubernetesInjector(kube)


def autoscaling_check(kube: "Cluster", injector: "Injector", scale: ScalePlan) -> Check:
    """The autoscaling check: the workers' HPA scales out under load and back in, with no query failing."""
    from verify.failover.autoscaling import autoscaling

    return Check(
        name="failover.autoscaling",
        scenario="failover",
        target=f"{names.PRESTO_WORKER} HorizontalPodAutoscaler",
        probe=lambda context: autoscaling(context, kube, injector, scale),
        # Scale-out, then Kubernetes' longest scale-down stabilization window (an hour) and a margin.
        deadline=scale.out_timeout + 3600 + scale.in_margin,
        tags=frozenset({"failover", "destructive", "presto", "kubernetes"}),
    )
