"""`python -m verify` runs as a module and documents its exit codes."""

import subprocess
import sys

from components.stack_files import REPO
from verify.exit_codes import MEANING, ExitCode


def run_verify(*args: str) -> subprocess.CompletedProcess[str]:
    """Run verify as an operator would, from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "verify", *args], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )


def test_help_runs_and_lists_every_exit_code() -> None:
    result = run_verify("--help")
    assert result.returncode == 0, result.stderr
    for code in ExitCode:
        assert f"{code.value}  {MEANING[code]}" in result.stdout


def test_no_command_is_a_usage_error() -> None:
    assert run_verify().returncode == ExitCode.USAGE
