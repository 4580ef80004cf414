"""`verify pipeline`: events produced to Kafka reach ClickHouse and Presto, counted and timed."""

import argparse
import dataclasses
from typing import TYPE_CHECKING

from verify.cli.job import Job
from verify.cli.values import positive
from verify.core.checks import Check, Cleanup
from verify.pipeline.plan import PipelinePlan

if TYPE_CHECKING:
    from verify.core.targets import Targets
    from verify.kube.checks import Cluster


def arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `verify pipeline` (and of `verify all`, which runs it)."""
    group = parser.add_argument_group("pipeline flags")
    group.add_argument(
        "--events",
        type=positive(int),
        default=PipelinePlan.events,
        help="events to produce to Kafka (default: %(default)s)",
    )
    converge_timeout(group, PipelinePlan.converge_timeout)


def converge_timeout(group: argparse._ArgumentGroup, default: float) -> None:
    """--converge-timeout, which pipeline and failover share."""
    group.add_argument(
        "--converge-timeout",
        metavar="SECONDS",
        type=positive(float),
        default=default,
        help="seconds after the last acknowledgement ClickHouse gets to show every acknowledged event "
        "(default: %(default)s)",
    )


def prepare(args: argparse.Namespace, targets: "Targets", planning: bool) -> Job:
    """The pipeline checks with the flags' sizes."""
    plan = PipelinePlan(events=args.events, converge_timeout=args.converge_timeout)

    def build(kube: "Cluster | None", run_id: str, cleanup: Cleanup) -> list[Check]:
        from verify.pipeline import checks  # the Kafka and ClickHouse clients

        return checks.checks(targets, plan)

    return Job(parameters={f"pipeline.{k}": v for k, v in dataclasses.asdict(plan).items()}, build=build)
