"""The argument parser: `verify [shared flags] COMMAND [shared and the command's flags]`, and `verify plan COMMAND`.

The shared flags (where the stack is, what to run, where the reports go) are accepted before or after the
command. argparse copies every value a subcommand's parser holds over the main parser's, defaults
included: so only the main parser has defaults, and a subcommand's copies of the shared flags have none
(SUPPRESS), which leaves a value given before the command in place.
Ref: https://docs.python.org/3/library/argparse.html#sub-commands
"""

import argparse
import textwrap
from pathlib import Path
from typing import Any

from verify import __version__
from verify.cli.commands import COMMANDS, Command
from verify.core.exit_codes import describe

PROG = "python -m verify"
REPORT_DIR = Path("verify-reports")
ENDPOINTS = (
    ("presto-url", "URL", "Presto's https URL"),
    ("clickhouse-url", "URL", "ClickHouse's HTTP URL"),
    ("clickhouse-native", "HOST:PORT", "ClickHouse's native protocol address"),
    ("kafka-bootstrap", "HOST:PORT[,...]", "Kafka's bootstrap servers"),
    ("prometheus-url", "URL", "Prometheus's URL"),
    ("grafana-url", "URL", "Grafana's URL"),
)
"""Endpoint flags: each replaces the stack's in-cluster address of a service."""
EPILOG = f"exit codes:\n{describe()}"
FORMATTER = argparse.RawDescriptionHelpFormatter
WIDTH = 100
"""Columns the descriptions are wrapped to (the raw formatter keeps the exit codes' lines as written)."""


def shared_arguments(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """The flags every command takes; with their defaults on the main parser only (see the module's docstring)."""

    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    where = parser.add_argument_group("the stack (shared: before or after the command)")
    where.add_argument(
        "--stack",
        metavar="NAME",
        default=default(None),
        help="read this stack's outputs with `pulumi stack output --json --show-secrets` (this or --outputs)",
    )
    where.add_argument(
        "--outputs", metavar="FILE", type=Path, default=default(None), help="read the same JSON from this file instead"
    )
    for name, metavar, what in ENDPOINTS:
        where.add_argument(
            f"--{name}",
            metavar=metavar,
            default=default(None),
            help=f"{what}, instead of the stack's in-cluster address",
        )
    where.add_argument(
        "--kubeconfig",
        metavar="FILE",
        default=default(None),
        help="the cluster's kubeconfig (default: $KUBECONFIG, ~/.kube/config, else in-cluster)",
    )
    where.add_argument(
        "--kube-context",
        metavar="NAME",
        default=default(None),
        help="the kubeconfig's context (default: the stack's kubernetes.context, else the current one)",
    )
    where.add_argument(
        "--service-account",
        metavar="NAME",
        default=default(None),
        help="run as this ServiceAccount of the stack's namespace (`verify`: the least verify needs); "
        "the kubeconfig's user only mints its token (default: the kubeconfig's user)",
    )
    where.add_argument(
        "--no-kubernetes",
        action="store_true",
        default=default(False),
        help="do not use the Kubernetes API: no preflight, no Kubernetes checks, no port-forwards",
    )
    run = parser.add_argument_group("the run (shared: before or after the command)")
    run.add_argument(
        "--tags",
        metavar="TAGS",
        default=default(""),
        help="run only checks with one of these tags, comma-separated, e.g. presto,kafka (default: every check)",
    )
    run.add_argument(
        "--skip-tags",
        metavar="TAGS",
        default=default(""),
        help="run no check with one of these tags, comma-separated (default: none)",
    )
    run.add_argument(
        "--deadline",
        metavar="SECONDS",
        type=float,
        default=default(None),
        help="seconds for the whole run: checks that would start after it are skipped (default: no deadline)",
    )
    run.add_argument(
        "--fail-fast", action="store_true", default=default(False), help="skip the remaining checks after a failure"
    )
    run.add_argument(
        "--report-dir",
        metavar="DIR",
        type=Path,
        default=default(REPORT_DIR),
        help=f"directory the reports are written to, created if need be (default: {REPORT_DIR})",
    )


def _command_parser(commands: Any, command: Command, planned: bool) -> None:
    """A command's parser: its own flags first, then the shared ones (without defaults: see the module's docstring)."""
    description = f"List the checks `verify {command.name}` would run; run nothing." if planned else ""
    command_parser = commands.add_parser(
        command.name,
        prog=f"{PROG} plan {command.name}" if planned else f"{PROG} {command.name}",
        usage=f"%(prog)s [-h] [{command.name} flags] [shared flags]",
        help=command.summary,
        description=textwrap.fill(description or command.description, WIDTH),
        epilog=EPILOG,
        formatter_class=FORMATTER,
    )
    command.arguments(command_parser)
    shared_arguments(command_parser, defaults=False)


def parser() -> argparse.ArgumentParser:
    """The whole command line: shared flags, a command, its flags; `plan` takes a command and its flags."""
    cli = argparse.ArgumentParser(
        prog=PROG,
        usage="%(prog)s [-h] [--version] [shared flags] {plan,smoke,pipeline,load,failover,replay,all} [command flags]",
        description="Check a deployed query-engine-stack: smoke, data pipeline, load and failover, with figures.\n"
        + textwrap.fill(
            "`python -m verify COMMAND --help` lists a command's flags; the shared flags below go before or "
            "after the command.",
            WIDTH,
        ),
        epilog=EPILOG,
        formatter_class=FORMATTER,
    )
    cli.add_argument("--version", action="version", version=f"verify {__version__}")
    shared_arguments(cli, defaults=True)
    commands = cli.add_subparsers(dest="command", required=True, title="commands")
    plan = commands.add_parser(
        "plan",
        prog=f"{PROG} plan",
        usage="%(prog)s [-h] [shared flags] {smoke,pipeline,load,failover,replay,all} [command flags]",
        help="list the checks a command would run, with their parameters; run nothing (e.g. plan load --mode open)",
        description="List the checks a command would run with its flags, and their parameters; run nothing.",
        epilog=EPILOG,
        formatter_class=FORMATTER,
    )
    shared_arguments(plan, defaults=False)
    planned = plan.add_subparsers(dest="planned", required=True, title="the command to plan")
    for command in COMMANDS:
        _command_parser(planned, command, planned=True)
        _command_parser(commands, command, planned=False)
    return cli
