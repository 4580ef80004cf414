"""What a command will do, decided from its flags and the stack's outputs before anything runs."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from verify.core.checks import Check, Cleanup
from verify.core.report import RunInfo

if TYPE_CHECKING:
    from verify.kube.checks import Cluster  # the Kubernetes client: imported by the commands that run


Build = Callable[["Cluster | None", str, Cleanup], list[Check]]
"""(the cluster, or None with --no-kubernetes; the run's id; the run's cleanup) -> the command's checks."""
Reports = Callable[[Path, RunInfo], list[Path]]
"""(the report directory, the run) -> the command's own reports, written after the common ones."""


def no_reports(directory: Path, info: RunInfo) -> list[Path]:
    """A command with no reports of its own."""
    return []


@dataclass(frozen=True)
class Job:
    """A command's parameters (printed by `verify plan`), how to build its checks, and its own reports."""

    parameters: dict[str, object]
    build: Build
    reports: Reports = no_reports

    def __add__(self, other: "Job") -> "Job":
        """A job that runs this one's checks, then the other's (`all`: smoke, then pipeline)."""
        return Job(
            parameters=self.parameters | other.parameters,
            build=lambda kube, run_id, cleanup: self.build(kube, run_id, cleanup) + other.build(kube, run_id, cleanup),
            reports=lambda directory, info: self.reports(directory, info) + other.reports(directory, info),
        )
