"""The exit codes a CI job can act on."""

from enum import IntEnum

from verify.core.checks import Record, Status


class ExitCode(IntEnum):
    """Process exit status of `python -m verify`."""

    PASSED = 0
    FAILED = 1
    USAGE = 2
    NOT_READY = 3
    HARNESS = 4
    CLEANUP = 5


MEANING = {
    ExitCode.PASSED: "every check passed",
    ExitCode.FAILED: "a check or an SLO failed",
    ExitCode.USAGE: "usage or configuration error",
    ExitCode.NOT_READY: "environment not ready (preflight failed)",
    ExitCode.HARNESS: "harness error: verify could not measure",
    ExitCode.CLEANUP: "cleanup failed: something verify created is still there",
}


def describe() -> str:
    """One line per exit code, for --help."""
    return "\n".join(f"  {code.value}  {MEANING[code]}" for code in ExitCode)


def exit_code(records: list[Record], interrupted: bool) -> ExitCode:
    """The run's exit code from its records: cleanup failed beats could not measure beats a check failed."""
    if any(r.name == "cleanup" and r.status != Status.PASSED for r in records):
        return ExitCode.CLEANUP
    if interrupted or any(r.status == Status.ERROR for r in records):
        return ExitCode.HARNESS
    if any(r.scenario == "preflight" and r.status == Status.FAILED for r in records):
        return ExitCode.NOT_READY
    if any(r.status == Status.FAILED for r in records):
        return ExitCode.FAILED
    return ExitCode.PASSED
