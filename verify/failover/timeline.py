"""What a fault did to a service, read from its probe timeline: recovery time, error window, availability."""

from collections.abc import Sequence
from dataclasses import dataclass


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
