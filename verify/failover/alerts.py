"""Whether a fault's alert fired in Prometheus within its `for` plus one scrape and evaluation, and resolved after."""

import time
from dataclasses import dataclass

from verify.core.checks import Figures
from verify.smoke.prometheus import get

RESOLVE_MARGIN = 15.0
"""Seconds beyond one scrape and one evaluation that an alert may take to resolve after recovery."""


@dataclass(frozen=True)
class Rule:
    """An alerting rule's `for` and its group's evaluation interval, in seconds, as Prometheus loaded them."""

    name: str
    hold: float
    interval: float

    @property
    def window(self) -> float:
        """Seconds after the outage begins by which the alert must fire: `for`, one scrape, one evaluation."""
        return self.hold + 2 * self.interval


def rule(prometheus: str, name: str) -> Rule:
    """The loaded alerting rule of this name; KeyError if Prometheus has none."""
    for group in get(prometheus, "/api/v1/rules", type="alert")["groups"]:
        for found in group["rules"]:
            if found["name"] == name:
                return Rule(name, float(found.get("duration", 0)), float(group["interval"]))
    raise KeyError(f"Prometheus has no alerting rule {name}")


def firing(prometheus: str, name: str, at: float | None = None) -> bool:
    """Whether the alert fires now, or at Unix time `at`."""
    query = f'ALERTS{{alertname="{name}",alertstate="firing"}}'
    return bool(get(prometheus, "/api/v1/query", query=query, **({} if at is None else {"time": at}))["result"])


def first_firing(prometheus: str, name: str, start: float, end: float) -> float | None:
    """The first Unix time in [start, end] at which the alert was firing (1 s resolution), or None."""
    data = get(
        prometheus,
        "/api/v1/query_range",
        query=f'ALERTS{{alertname="{name}",alertstate="firing"}}',
        start=start,
        end=end,
        step=1,
    )
    times = [float(t) for series in data["result"] for t, _ in series["values"]]
    return min(times) if times else None


def judge(prometheus: str, name: str, outage: tuple[float, float], stop_waiting: float) -> tuple[Figures, str | None]:
    """Figures of the alert for an outage (Unix start, end), and the problem if it misbehaved.

    Expected to fire when the outage outlasted its window; when it fired, expected to resolve within
    one scrape, one evaluation and a margin of the recovery. `stop_waiting` bounds the wait (Unix time).
    """
    found = rule(prometheus, name)
    began, ended = outage
    if firing(prometheus, name, began - 1):
        figures: Figures = {"alert": name, "alert_fired": "already before the fault"}
        return figures, f"alert {name} was already firing before the fault: the steady state was not clean"
    expected = ended - began >= found.window
    fired_at = first_firing(prometheus, name, began, max(ended, time.time()))
    figures = {
        "alert": name,
        "alert_window_s": found.window,
        "alert_expected": "yes" if expected else "no (outage shorter than its window)",
        "alert_fired": "yes" if fired_at is not None else "no",
    }
    if fired_at is not None:
        figures["alert_fired_after_s"] = round(fired_at - began, 1)
    if expected and (fired_at is None or fired_at - began > found.window + 1):
        return figures, f"alert {name} did not fire within {found.window:g}s of an outage of {ended - began:.0f}s"
    if fired_at is None:
        return figures, None
    deadline = min(stop_waiting, ended + 2 * found.interval + RESOLVE_MARGIN)
    while firing(prometheus, name):
        if time.time() > deadline:
            figures["alert_resolved"] = "no"
            return figures, f"alert {name} still fires {time.time() - ended:.0f}s after recovery"
        time.sleep(1)
    figures["alert_resolved"] = "yes"
    figures["alert_resolved_after_s"] = round(time.time() - ended, 1)
    return figures, None
