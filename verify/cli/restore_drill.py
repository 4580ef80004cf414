"""`verify restore-drill`: the newest backups restored on a scratch server and compared with live; RPO and RTO."""

import argparse
import dataclasses
from typing import TYPE_CHECKING

from verify.cli.job import Job
from verify.cli.values import positive
from verify.core.checks import Check, Cleanup
from verify.core.errors import UsageError
from verify.restore_drill.plan import DrillPlan

if TYPE_CHECKING:
    from verify.core.targets import Targets
    from verify.kube.checks import Cluster

NEEDS_KUBERNETES = "restore-drill starts its scratch server through the Kubernetes API: drop --no-kubernetes"


def arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `verify restore-drill`: consent, the recovery point objective and each step's deadline."""
    plan = DrillPlan()
    group = parser.add_argument_group("restore-drill flags")
    add = group.add_argument
    add(
        "--allow-destructive",
        action="store_true",
        help="required to run (not to plan): the drill starts a scratch ClickHouse and downloads whole backups",
    )
    add(
        "--max-rpo",
        metavar="SECONDS",
        type=positive(float),
        default=plan.max_rpo,
        help="a newest backup older than this fails the drill (default: %(default)s)",
    )
    for step, what in (("start", "the scratch server gets to answer"), ("download", "one backup's download may take")):
        add(
            f"--{step}-timeout",
            metavar="SECONDS",
            type=positive(float),
            default=getattr(plan, f"{step}_timeout"),
            help=f"seconds {what} (default: %(default)s)",
        )
    add(
        "--restore-timeout",
        metavar="SECONDS",
        type=positive(float),
        default=plan.restore_timeout,
        help="seconds one backup's restore may take (default: %(default)s)",
    )


def prepare(args: argparse.Namespace, targets: "Targets", planning: bool) -> Job:
    """The drill's check, after consent (a plan needs none); the scratch server's removal goes to the cleanup."""
    if not planning and not args.allow_destructive:
        raise UsageError("restore-drill starts a scratch server and reads every backup: pass --allow-destructive")
    if args.no_kubernetes:
        raise UsageError(NEEDS_KUBERNETES)
    plan = DrillPlan(
        start_timeout=args.start_timeout,
        download_timeout=args.download_timeout,
        restore_timeout=args.restore_timeout,
        max_rpo=args.max_rpo,
    )

    def build(kube: "Cluster | None", run_id: str, cleanup: Cleanup) -> list[Check]:
        from verify.restore_drill import checks  # the Kubernetes and ClickHouse clients
        from verify.restore_drill import kube as scratch

        if kube is None:
            raise UsageError(NEEDS_KUBERNETES)
        return checks.checks(targets, scratch.KubernetesScratch(kube, run_id, targets), plan)

    return Job(parameters={f"restore-drill.{k}": v for k, v in dataclasses.asdict(plan).items()}, build=build)
