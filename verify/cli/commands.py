"""The commands: each one's summary, flags and how it prepares its checks."""

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from verify.cli import failover, load, pipeline, replay, restore_drill, smoke
from verify.cli.job import Job

if TYPE_CHECKING:
    from verify.core.targets import Targets


@dataclass(frozen=True)
class Command:
    """One subcommand of verify."""

    name: str
    summary: str
    """One line, in `verify --help`."""
    description: str
    """What it checks, in `verify NAME --help`."""
    arguments: Callable[[argparse.ArgumentParser], None]
    """Adds the command's own flags."""
    prepare: Callable[[argparse.Namespace, "Targets", bool], Job]
    """(flags, the stack, whether only planning) -> its job; a UsageError for a bad request, before anything runs."""


def _all(args: argparse.Namespace, targets: "Targets", planning: bool) -> Job:
    """smoke, then pipeline."""
    return smoke.prepare(args, targets, planning) + pipeline.prepare(args, targets, planning)


COMMANDS = (
    Command(
        name="smoke",
        summary="every service answers and is configured as the stack declares",
        description="Every service answers, authenticates and is configured as the stack declares; with the "
        "Kubernetes API, the stack's objects too.",
        arguments=smoke.arguments,
        prepare=smoke.prepare,
    ),
    Command(
        name="pipeline",
        summary="events produced to Kafka reach ClickHouse and Presto",
        description="Events produced to Kafka reach ClickHouse and read through Presto: lost, duplicated, "
        "produce-to-visible latency.",
        arguments=pipeline.arguments,
        prepare=pipeline.prepare,
    ),
    Command(
        name="load",
        summary="a workload in one mode, its figures and its objectives",
        description="Load Presto (TPC-H), ClickHouse or Kafka in one mode; latency, throughput and the "
        "objectives (SLOs) it must meet; load.json, HDR logs and load.html besides the common reports.",
        arguments=load.arguments,
        prepare=load.prepare,
    ),
    Command(
        name="failover",
        summary="break things under traffic and measure recovery (needs --allow-destructive)",
        description="Each scenario kills pods, cuts networks or loads CPUs under traffic and measures "
        "recovery, availability, data loss and alerts; then the autoscaling check. Needs the Kubernetes API "
        "and --allow-destructive.",
        arguments=failover.arguments,
        prepare=failover.prepare,
    ),
    Command(
        name="replay",
        summary="replay the events topic into ClickHouse from an offset or a time (needs --allow-destructive)",
        description="Detach ClickHouse's Kafka engine table, move its consumer group back to an offset or a time, "
        "attach it, and count: events replayed, already present, filled, missing, duplicates visible (after the "
        "touched partitions are merged). A backfill after an outage or a bug. Needs --allow-destructive.",
        arguments=replay.arguments,
        prepare=replay.prepare,
    ),
    Command(
        name="restore-drill",
        summary="restore the newest backups on scratch servers, compare with live, measure RPO and RTO "
        "(needs --allow-destructive)",
        description="Each shard's newest backup is downloaded and restored on a scratch ClickHouse of its own "
        "(a pod verify starts from the deployed template and deletes after); per partition, the restored events "
        "are compared with the same events live (count and content checksum). Reports RPO (the newest backup's "
        "age) and RTO (start to queries answering on the restored data). Needs the Kubernetes API and "
        "--allow-destructive.",
        arguments=restore_drill.arguments,
        prepare=restore_drill.prepare,
    ),
    Command(
        name="all",
        summary="smoke, then pipeline (load and failover run only when named)",
        description="smoke, then pipeline. load and failover run only when named.",
        arguments=pipeline.arguments,
        prepare=_all,
    ),
)
BY_NAME = {command.name: command for command in COMMANDS}
