"""`verify replay`: replay the events topic into ClickHouse from an offset or a time (needs --allow-destructive)."""

import argparse
from typing import TYPE_CHECKING

from verify.cli.job import Job
from verify.cli.pipeline import converge_timeout
from verify.cli.values import positive
from verify.core.checks import Check, Cleanup
from verify.core.errors import UsageError
from verify.replay.plan import PlanError, ReplayPlan, parse_offsets, parse_time

if TYPE_CHECKING:
    from verify.core.targets import Targets
    from verify.kube.checks import Cluster


def arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `verify replay`: consent, where to start, sizes."""
    group = parser.add_argument_group("replay flags")
    add = group.add_argument
    add(
        "--allow-destructive",
        action="store_true",
        help="required to run (not to plan): replay stops ClickHouse's ingestion and moves its consumer group back",
    )
    start = group.add_mutually_exclusive_group()
    start.add_argument(
        "--from-offset",
        metavar="N|P=N[,P=N...]",
        help="replay every partition from offset N, or each named partition from its own",
    )
    start.add_argument(
        "--from-time",
        metavar="ISO8601",
        help="replay each partition from its first event at or after this time, e.g. 2026-11-29T13:00:00Z",
    )
    add(
        "--max-events",
        type=positive(int),
        default=ReplayPlan.max_events,
        help="refuse a range of more messages than this (default: %(default)s)",
    )
    converge_timeout(group, ReplayPlan.converge_timeout)


def plan_of(args: argparse.Namespace) -> ReplayPlan:
    """The replay the flags ask for, or a UsageError naming the flag."""
    try:
        return ReplayPlan(
            offsets=parse_offsets(args.from_offset) if args.from_offset is not None else None,
            from_time_ms=parse_time(args.from_time) if args.from_time is not None else None,
            converge_timeout=args.converge_timeout,
            max_events=args.max_events,
        )
    except PlanError as error:
        flag = "--from-offset" if args.from_offset is not None else "--from-time"
        raise UsageError(f"{flag}: {error}" if args.from_offset or args.from_time else str(error)) from None


def prepare(args: argparse.Namespace, targets: "Targets", planning: bool) -> Job:
    """The replay check; refused before anything runs without consent or a starting point."""
    plan = plan_of(args)
    if not planning and not args.allow_destructive:
        raise UsageError(
            "replay detaches ClickHouse's Kafka engine table and resets its consumer group: "
            "pass --allow-destructive to consent"
        )

    def build(kube: "Cluster | None", run_id: str, cleanup: Cleanup) -> list[Check]:
        from verify.replay import checks  # the Kafka and ClickHouse clients

        return checks.checks(targets, plan)

    parameters: dict[str, object] = {
        "replay.from_offset": args.from_offset,
        "replay.from_time": args.from_time,
        "replay.max_events": plan.max_events,
        "replay.converge_timeout": plan.converge_timeout,
    }
    return Job(parameters=parameters, build=build)
