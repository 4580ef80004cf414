"""Command line of verify."""

import argparse
from collections.abc import Sequence

from verify.exit_codes import ExitCode, describe


def parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    return argparse.ArgumentParser(
        prog="python -m verify",
        description="Check a deployed query-engine-stack: smoke, data pipeline, load and failover, with figures.",
        epilog=f"exit codes:\n{describe()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run; return the exit code."""
    cli = parser()
    cli.parse_args(argv)
    cli.print_usage()
    return ExitCode.USAGE
