"""Checks and their records: what runs, against what, and what it found."""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """How a check ended."""

    PASSED = "passed"
    FAILED = "failed"
    """The service is wrong, down or too slow: the stack's fault."""
    ERROR = "error"
    """verify could not measure: the harness's fault."""
    SKIPPED = "skipped"


Figures = dict[str, float | int | str]


class CheckFailedError(Exception):
    """The service answered, or failed to, in a way the check does not accept; the message says how."""

    def __init__(self, message: str, figures: Figures | None = None):
        super().__init__(message)
        self.figures: Figures = figures or {}
        """What the check measured before it failed: reported with the failure."""


class CheckSkippedError(Exception):
    """The check cannot apply to this deployment (e.g. its fault needs Chaos Mesh); the message says why."""


@dataclass(frozen=True)
class Check:
    """One check: its name, scenario, tags, deadline and the probe that runs it."""

    name: str
    """Dotted, service first: `presto.catalogs`."""
    scenario: str
    """smoke, pipeline, load or failover."""
    target: str
    """What it talks to, for `plan` (an address, never a credential)."""
    probe: Callable[["Context"], Figures]
    """Runs the check: returns its figures, raises CheckFailedError (or a client error) when it fails."""
    deadline: float = 30.0
    """Seconds the probe may take; past it the check fails, and the run goes on."""
    tags: frozenset[str] = frozenset()
    gate: bool = False
    """When it does not pass, the checks after it are skipped (preflight)."""


@dataclass
class Record:
    """What one check found: the unit of every report."""

    name: str
    scenario: str
    status: Status
    started: str
    """ISO 8601, UTC."""
    seconds: float
    figures: Figures = field(default_factory=dict)
    error: str | None = None

    def detail(self) -> str:
        """Its error if it has one, else its figures as name=value pairs."""
        return self.error or ", ".join(f"{k}={v}" for k, v in self.figures.items())


@dataclass
class Context:
    """What a probe may use: the run's id, where things are, and the cleanup list."""

    run_id: str
    targets: Any
    """verify.core.targets.Targets."""
    cleanup: "Cleanup"
    stopping: threading.Event = field(default_factory=threading.Event)
    """Set when the run is interrupted (Ctrl-C, SIGTERM): long probes wind down before cleanup runs."""
    progress: Callable[[str], None] = field(default=lambda _: None)
    """Tells the operator where a long check is (the runner's progress shows it); silent by default."""


@dataclass
class Cleanup:
    """Undo actions for what the run created, run last (and on Ctrl-C), newest first."""

    actions: list[tuple[str, Callable[[], None]]] = field(default_factory=list)

    def add(self, what: str, undo: Callable[[], None]) -> None:
        """Register how to remove something the run just created."""
        self.actions.append((what, undo))
