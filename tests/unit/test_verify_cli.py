"""`python -m verify`: subcommands with their own flags, help and --version without the client libraries, exit codes."""

import argparse
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import verify
from components.settings.stack_files import REPO
from tests.support.verify_harness import verify as run_verify_cli
from verify.cli.parser import parser
from verify.core.exit_codes import MEANING, ExitCode

CLIENTS = (
    "confluent_kafka",
    "prestodb",
    "clickhouse_driver",
    "pycurl",
    "matplotlib",
    "rich",
    "hdrh",
    "kubernetes",
    "jinja2",
)
"""The client libraries: none of them may be needed to parse a command line or print help."""
WITHOUT_CLIENTS = (
    f"import runpy, sys\nfor name in {CLIENTS!r}:\n    sys.modules[name] = None  # import raises ImportError\n"
    "sys.argv[0] = 'verify'\nrunpy.run_module('verify', run_name='__main__')\n"
)
COMMANDS = ("smoke", "pipeline", "load", "failover", "all")


def without_clients(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m verify ARGS` with every client library unimportable."""
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_CLIENTS, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def flags(help_text: str) -> set[str]:
    """The long flags a help text lists."""
    return {word.strip(",[]") for word in help_text.split() if word.startswith("--") and len(word) > 2}


def test_help_runs_and_lists_every_exit_code() -> None:
    result = run_verify_cli("--help")
    assert result.returncode == 0, result.stderr
    for code in ExitCode:
        assert f"{code.value}  {MEANING[code]}" in result.stdout


@pytest.mark.parametrize("command", ["", *COMMANDS, "plan", *(f"plan {c}" for c in COMMANDS)])
def test_every_help_works_without_the_client_libraries(command: str) -> None:
    result = without_clients(*command.split(), "--help")
    assert result.returncode == 0, result.stderr
    assert "--report-dir" in result.stdout, "the shared flags are listed on every command"


def test_version_is_the_project_version_and_needs_no_client_library() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert verify.__version__ == project
    result = without_clients("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"verify {project}"


def test_each_command_lists_its_own_flags_and_no_other_commands() -> None:
    helps = {command: without_clients(command, "--help").stdout for command in COMMANDS}
    shared = flags(helps["smoke"])  # smoke has no flags of its own
    assert {"--stack", "--outputs", "--kubeconfig", "--service-account", "--report-dir", "--deadline"} <= shared
    own = {command: flags(text) - shared for command, text in helps.items()}
    assert {"--mode", "--rate", "--slo", "--timeout"} <= own["load"]
    assert {"--allow-destructive", "--scenario", "--probe-interval"} <= own["failover"]
    assert not own["load"] & own["failover"], "load's help lists failover's flags"
    assert own["all"] == own["pipeline"] == {"--events", "--converge-timeout"}


def every_parser() -> list[argparse.ArgumentParser]:
    """The main parser and every command's, plan's included."""
    found, waiting = [], [parser()]
    while waiting:
        current = waiting.pop()
        found.append(current)
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                waiting += action.choices.values()
    return found


def test_every_flag_has_a_help_that_says_more_than_its_default() -> None:
    for current in every_parser():
        for action in (a for a in current._actions if a.option_strings):
            meaning = (action.help or "").replace("(default: %(default)s)", "").strip()
            assert len(meaning) > 12, f"{current.prog} {action.option_strings}: help {action.help!r}"
            if action.dest in ("timeout", "deadline", "hold") or action.dest.endswith(("_timeout", "_interval")):
                assert "seconds" in meaning, f"{current.prog} {action.option_strings[0]}: say the unit"


def test_another_commands_flag_is_a_usage_error() -> None:
    result = run_verify_cli("smoke", "--rate", "5")
    assert result.returncode == ExitCode.USAGE and "--rate" in result.stderr


def test_shared_flags_go_before_or_after_the_command() -> None:
    before = parser().parse_args(["--service-account", "verify", "--report-dir", "r", "failover", "--hold", "3"])
    after = parser().parse_args(["failover", "--hold", "3", "--service-account", "verify", "--report-dir", "r"])
    for args in (before, after):
        assert args.service_account == "verify" and args.report_dir == Path("r") and args.hold == 3
    plain = parser().parse_args(["plan", "load", "--mode", "open"])
    assert (plain.command, plain.planned, plain.mode) == ("plan", "load", "open")
    assert plain.report_dir == Path("verify-reports") and plain.service_account is None and not plain.no_kubernetes


def test_no_command_is_a_usage_error() -> None:
    assert run_verify_cli().returncode == ExitCode.USAGE
    assert run_verify_cli("plan").returncode == ExitCode.USAGE


def test_outputs_without_what_verify_needs_are_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "outputs.json").write_text(json.dumps({"namespace": "x"}))
    result = run_verify_cli("smoke", "--outputs", str(tmp_path / "outputs.json"))
    assert result.returncode == ExitCode.USAGE
    assert "the stack outputs have no expected" in result.stderr


def test_no_stack_named_is_a_usage_error() -> None:
    result = run_verify_cli("smoke")
    assert result.returncode == ExitCode.USAGE
    assert "--stack NAME" in result.stderr
