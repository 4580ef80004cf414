"""Typed errors that end a run, each mapped to its exit code."""

from verify.core.exit_codes import ExitCode


class VerifyError(Exception):
    """A run that cannot go on; `code` is the process exit status."""

    code = ExitCode.HARNESS


class UsageError(VerifyError):
    """Bad arguments, or stack outputs that lack what verify needs."""

    code = ExitCode.USAGE
