"""Run a command: read the stack, prepare the command's checks, then list them (plan) or run them and report."""

import argparse
import dataclasses
import secrets
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from verify.cli.commands import BY_NAME
from verify.cli.job import Job
from verify.cli.parser import parser
from verify.core.checks import Check, Cleanup, Context
from verify.core.errors import VerifyError
from verify.core.exit_codes import ExitCode, exit_code
from verify.core.report import RunInfo, write_reports

if TYPE_CHECKING:
    from verify.core.targets import Targets

VERSION_FIGURES = {"presto.info": "presto", "clickhouse.version": "clickhouse", "grafana.health": "grafana"}
"""Checks whose `version` figure is a service's version, for the report's run metadata."""


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run; return the exit code."""
    args = parser().parse_args(argv)
    planning = args.command == "plan"
    command = args.planned if planning else args.command
    overrides = {
        "presto": args.presto_url,
        "clickhouse_http": args.clickhouse_url,
        "clickhouse_native": args.clickhouse_native,
        "kafka": args.kafka_bootstrap,
        "prometheus": args.prometheus_url,
        "grafana": args.grafana_url,
    }
    given = {key for key, value in overrides.items() if value}
    run_id = f"{datetime.now(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(3)}"
    cleanup = Cleanup()
    from verify.core.targets import load_outputs, targets_from  # the settings model, pydantic

    try:
        stack, outputs = load_outputs(args.stack, args.outputs)
        targets = targets_from(stack, outputs)
        targets = dataclasses.replace(targets, endpoints=targets.endpoints.overridden(**overrides))
        job = BY_NAME[command].prepare(args, targets, planning)
    except VerifyError as error:
        return refused(error)
    from verify.core import runner  # the clients: loaded once a command is prepared, their errors needed here

    try:
        checks = chosen(args, targets, job, given, run_id, cleanup)
    except VerifyError as error:
        return refused(error)
    except runner.SERVICE_ERRORS as error:
        print(f"verify: the Kubernetes API did not answer: {error}", file=sys.stderr)
        return ExitCode.NOT_READY
    if planning:
        return plan(job, checks)
    return run(args, command, stack, targets, job, checks, run_id, cleanup)


def refused(error: VerifyError) -> int:
    """Say why the request cannot run; its exit code."""
    print(f"verify: {error}", file=sys.stderr)
    return error.code


def chosen(
    args: argparse.Namespace, targets: "Targets", job: Job, given: set[str], run_id: str, cleanup: Cleanup
) -> list[Check]:
    """The command's checks, filtered by tags; preflight first when the cluster is reachable."""
    kube = None
    preflight: list[Check] = []
    if not args.no_kubernetes:
        from verify.kube.checks import connect, metrics_api_check, preflight_check  # the Kubernetes client
        from verify.kube.port_forward import forward_check

        kube = connect(
            args.kubeconfig, args.kube_context or targets.kube_context, targets.namespace, args.service_account
        )
        preflight = [preflight_check(kube, targets), forward_check(kube, given)]
        if autoscalers := targets.expected.objects.get("HorizontalPodAutoscaler", ()):
            preflight.append(metrics_api_check(kube, autoscalers))
    checks = preflight + job.build(kube, run_id, cleanup)
    wanted, unwanted = (set(filter(None, t.split(","))) for t in (args.tags, args.skip_tags))
    return [c for c in checks if c.gate or ((not wanted or c.tags & wanted) and not c.tags & unwanted)]


def plan(job: Job, checks: list[Check]) -> int:
    """Print the parameters and what would run, against what, under which deadline; change nothing."""
    for name, value in job.parameters.items():
        print(f"{name} = {'default' if value is None else value}")
    for check in checks:
        tags = ", ".join(sorted(check.tags))
        print(f"{check.scenario:8} {check.name:28} {check.deadline:>5g}s  {check.target}  [{tags}]")
    print(f"{len(checks)} checks; nothing was run.")
    return ExitCode.PASSED


def interrupt(signum: int, _: object) -> None:
    """SIGTERM handler: stop the run the way Ctrl-C does."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run(
    args: argparse.Namespace,
    command: str,
    stack: str,
    targets: "Targets",
    job: Job,
    checks: list[Check],
    run_id: str,
    cleanup: Cleanup,
) -> int:
    """Run the checks, write the reports, return the exit code."""
    from verify.core import runner
    from verify.core.progress import Progress  # rich

    signal.signal(signal.SIGTERM, interrupt)  # a cancelled CI job cleans up as Ctrl-C does
    # Python leaves SIGINT ignored when it starts so (a shell's background job, some CI runners):
    # Ctrl-C, or a runner's cancel, must still stop the run and clean up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started, began = datetime.now(UTC).isoformat(timespec="seconds"), time.monotonic()
    progress = Progress()
    outcome = runner.run(
        checks,
        Context(run_id, targets, cleanup, progress=progress.update),
        runner.Options(deadline=args.deadline, fail_fast=args.fail_fast),
        runner.Redactor(targets.secrets()),
        progress.start,
        progress.done,
    )
    code = exit_code(outcome.records, outcome.interrupted)
    versions = {
        service: str(r.figures["version"])
        for r in outcome.records
        if (service := VERSION_FIGURES.get(r.name)) and "version" in r.figures
    }
    info = RunInfo(run_id, stack, command, started, round(time.monotonic() - began, 3), int(code), versions)
    paths = write_reports(args.report_dir, info, outcome.records) + job.reports(args.report_dir, info)
    for path in paths:
        print(f"report: {path}", file=sys.stderr)
    return code
