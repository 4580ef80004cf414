"""`python -m verify` runs as a module and documents its exit codes."""

import json
from pathlib import Path

from tests.support.verify_harness import verify
from verify.core.exit_codes import MEANING, ExitCode


def test_help_runs_and_lists_every_exit_code() -> None:
    result = verify("--help")
    assert result.returncode == 0, result.stderr
    for code in ExitCode:
        assert f"{code.value}  {MEANING[code]}" in result.stdout


def test_no_command_is_a_usage_error() -> None:
    assert verify().returncode == ExitCode.USAGE


def test_outputs_without_what_verify_needs_are_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "outputs.json").write_text(json.dumps({"namespace": "x"}))
    result = verify("smoke", "--outputs", str(tmp_path / "outputs.json"))
    assert result.returncode == ExitCode.USAGE
    assert "the stack outputs have no expected" in result.stderr


def test_no_stack_named_is_a_usage_error() -> None:
    result = verify("smoke")
    assert result.returncode == ExitCode.USAGE
    assert "--stack NAME" in result.stderr
