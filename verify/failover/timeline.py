"""What a fault did to a service, read from its probe timeline: recovery time, error window, availability."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

SHOWN_ERRORS = 3
"""How many distinct errors a probe history names (the most recent ones)."""


@dataclass(frozen=True)
class Probe:
    """One probe: when it started (seconds on the scenario's clock), whether it passed, why not."""

    at: float
    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class Reading:
    """The timeline after an injection: when the service failed first, when it was back, how available it was."""

    probes: int
    failures: int
    first_failure: float | None
    recovered: float | None
    """Start of the run of at least K passing probes after the last failure (the injection time if none failed)."""
    availability: float
    """Percent of probes that passed, from the injection on."""
    first_error: str | None


def read(probes: Sequence[Probe], since: float, consecutive: int) -> Reading:
    """Read the probes that started at or after `since` (the injection); recovered is None until K pass in a row."""
    after = [p for p in probes if p.at >= since]
    failed = [i for i, p in enumerate(after) if not p.ok]
    if failed:
        tail = after[failed[-1] + 1 :]
        recovered = tail[0].at if len(tail) >= consecutive else None
    else:
        recovered = since if len(after) >= consecutive else None
    passed = len(after) - len(failed)
    return Reading(
        probes=len(after),
        failures=len(failed),
        first_failure=after[failed[0]].at if failed else None,
        recovered=recovered,
        availability=round(100 * passed / len(after), 2) if after else 0.0,
        first_error=after[failed[0]].error if failed else None,
    )


def steady(probes: Sequence[Probe], consecutive: int) -> bool:
    """Whether the last K probes all passed."""
    return len(probes) >= consecutive and all(p.ok for p in probes[-consecutive:])


@dataclass(frozen=True)
class History:
    """The probes of a window: how many passed and failed, the longest passing run, the last distinct errors."""

    probes: int
    passed: int
    longest_run: int
    """The most probes that passed in a row."""
    errors: tuple[tuple[str, int], ...]
    """Every distinct error, the most recent first, with how many probes failed with it."""

    @property
    def failed(self) -> int:
        """Probes that failed."""
        return self.probes - self.passed

    def text(self) -> str:
        """One line: `12 probes, 2 passed, 10 failed, at most 2 in a row passed; last errors: X (7x); Y (3x)`."""
        counts = f"{self.probes} probes, {self.passed} passed, {self.failed} failed"
        line = f"{counts}, at most {self.longest_run} in a row passed"
        if self.errors:
            shown = "; ".join(f"{error} ({count}x)" for error, count in self.errors[:SHOWN_ERRORS])
            hidden = len(self.errors) - SHOWN_ERRORS
            line += f"; last errors: {shown}" + (f"; and {hidden} other errors before" if hidden > 0 else "")
        return line


def history(probes: Sequence[Probe]) -> History:
    """The history of these probes."""
    longest = run = 0
    for probe in probes:
        run = run + 1 if probe.ok else 0
        longest = max(longest, run)
    failures = [p.error or "failed without an error" for p in probes if not p.ok]
    counts = Counter(failures)
    latest = list(dict.fromkeys(reversed(failures)))
    return History(
        probes=len(probes),
        passed=len(probes) - len(failures),
        longest_run=longest,
        errors=tuple((error, counts[error]) for error in latest),
    )
