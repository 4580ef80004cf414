"""The machine's load for the benches: wait until it is quiet, and print what it was while a figure was measured."""

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROC_STAT = Path("/proc/stat")
QUIET_BUSY_PERCENT = 10.0
"""A core is quiet when it is busy at most this much of a sampling window."""
QUIET_WINDOW = 3.0
"""Seconds each quietness sample spans."""
QUIET_TIMEOUT = 60.0
"""Seconds to wait for quiet before measuring anyway, saying so."""

Ticks = dict[str, tuple[int, int]]
"""By CPU line of /proc/stat (`cpu` for all, `cpu0`...): (busy, total) clock ticks since boot."""


def ticks() -> Ticks:
    """The busy and total ticks of every CPU line of /proc/stat (idle and iowait count as not busy)."""
    found = {}
    for line in PROC_STAT.read_text().splitlines():
        if line.startswith("cpu"):
            name, *fields = line.split()
            counts = [int(field) for field in fields[:8]]  # user nice system idle iowait irq softirq steal
            found[name] = (sum(counts) - counts[3] - counts[4], sum(counts))
    return found


def busy_percent(before: Ticks, after: Ticks) -> dict[str, float]:
    """By CPU line: the percentage of the ticks between two samples that were busy."""
    shares = {}
    for name, (busy, total) in after.items():
        elapsed = total - before[name][1]
        shares[name] = 100.0 * (busy - before[name][0]) / elapsed if elapsed else 0.0
    return shares


def load_line(busy: dict[str, float]) -> str:
    """Load averages, cores and CPU busy % (all cores, then each) as one line."""
    averages = "/".join(f"{value:.2f}" for value in os.getloadavg())
    cores = ", ".join(f"{busy[name]:.0f}%" for name in sorted(busy) if name != "cpu")
    return f"load average {averages} (1/5/15 min), {os.cpu_count()} cores, CPU busy {busy['cpu']:.0f}% ({cores})"


def wait_quiet(timeout: float = QUIET_TIMEOUT) -> None:
    """Wait until every core is at most QUIET_BUSY_PERCENT busy over QUIET_WINDOW s; print the outcome either way."""
    began = time.monotonic()
    while True:
        before = ticks()
        time.sleep(QUIET_WINDOW)
        busy = busy_percent(before, ticks())
        busiest = max(value for name, value in busy.items() if name != "cpu")
        waited = time.monotonic() - began
        if busiest <= QUIET_BUSY_PERCENT:
            print(f"  machine quiet after {waited:.0f} s: {load_line(busy)}")
            return
        if waited >= timeout:
            print(
                f"  machine NOT quiet after {waited:.0f} s (busiest core {busiest:.0f}% > {QUIET_BUSY_PERCENT:.0f}%): "
                f"{load_line(busy)}; the next figures were measured beside that load"
            )
            return


@contextmanager
def measured(what: str) -> Iterator[None]:
    """Print the machine's load over the block (the bench's own processes included) once it ends."""
    before = ticks()
    yield
    print(f"  machine during {what}: {load_line(busy_percent(before, ticks()))}")
