"""The load driver: closed-loop streams and open-loop arrivals, every operation timed from when it should have started.

Open loop is what real users do: they arrive on their own schedule whether or not the service keeps
up. Each operation's latency runs from its intended start, so a stall that delays the next starts is
counted in their latency too (no coordinated omission); how late each one started is kept as well.
"""

import random
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

Operation = Callable[[str], Mapping[str, float]]
"""Runs one operation by its label; returns the server's own timings (may be empty); raises when it fails."""
SWITCH_INTERVAL = 0.0002
"""Seconds a thread may hold the GIL while another waits (Python's default is 5 ms: too coarse for start times)."""

WARM_UP = 0.2
"""Seconds between starting an open loop's workers and its first arrival."""


@dataclass(frozen=True)
class Outcome:
    """One operation: what it was, when it should have started, started and ended (seconds from the run's start)."""

    label: str
    intended: float
    started: float
    ended: float
    error: str | None = None
    server: Mapping[str, float] = field(default_factory=dict)

    @property
    def latency(self) -> float:
        """From the intended start: what a user arriving on schedule waited."""
        return self.ended - self.intended

    @property
    def service_time(self) -> float:
        """From the actual start: what the service took once asked."""
        return self.ended - self.started

    @property
    def lag(self) -> float:
        """How late the driver started it."""
        return self.started - self.intended


def constant_arrivals(rate: float, seconds: float) -> list[float]:
    """Evenly spaced start times at `rate` per second for `seconds`."""
    return [i / rate for i in range(round(rate * seconds))]


def poisson_arrivals(rate: float, seconds: float, seed: int) -> list[float]:
    """Start times of a Poisson process at `rate` per second for `seconds` (exponential gaps, seeded)."""
    rng, at, times = random.Random(seed), 0.0, []
    while (at := at + rng.expovariate(rate)) < seconds:
        times.append(at)
    return times


def describe(error: BaseException) -> str:
    """An error as one short line: its type and message."""
    text = " ".join(str(error).split())[:300]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class _Run:
    """Shared state of one run: its clock (seconds since origin), its outcomes and the stop signal."""

    def __init__(self, operation: Operation, stop: threading.Event, origin: float | None):
        self.operation, self.stop = operation, stop
        self.outcomes: list[Outcome] = []
        self.began = time.perf_counter() if origin is None else origin

    def now(self) -> float:
        return time.perf_counter() - self.began

    def execute(self, label: str, intended: float) -> None:
        started = self.now()
        try:
            server, error = self.operation(label), None
        except Exception as failure:  # counted as an error of the run, never raised
            server, error = {}, describe(failure)
        self.outcomes.append(Outcome(label, intended, started, self.now(), error, dict(server)))

    def join(self, threads: list[threading.Thread]) -> list[Outcome]:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sorted(self.outcomes, key=lambda o: o.intended)


@contextmanager
def _fine_switching() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def closed_loop(
    streams: Sequence[Sequence[str]],
    operation: Operation,
    stop: threading.Event,
    seconds: float | None = None,
    origin: float | None = None,
) -> list[Outcome]:
    """One thread per stream runs its labels in order, each after the last; for `seconds`, over and over.

    Times are seconds since `origin` (a perf_counter reading; default: now), so runs can share a clock.
    """
    run = _Run(operation, stop, origin)
    end = None if seconds is None else run.now() + seconds

    def stream(labels: Sequence[str]) -> None:
        while not stop.is_set():
            for label in labels:
                if stop.is_set() or (end is not None and run.now() >= end):
                    return
                run.execute(label, run.now())
            if end is None:
                return

    return run.join([threading.Thread(target=stream, args=(s,), daemon=True) for s in streams])


def open_loop(
    arrivals: Sequence[float],
    label_of: Callable[[int], str],
    operation: Operation,
    workers: int,
    stop: threading.Event,
    origin: float | None = None,
) -> list[Outcome]:
    """Start operation i at arrivals[i] (seconds from the loop's start) with the first free worker; else late.

    Times are seconds since `origin` (a perf_counter reading; default: now), so runs can share a clock.
    """
    run, lock, claimed = _Run(operation, stop, origin), threading.Lock(), iter(range(len(arrivals)))
    start = run.now() + WARM_UP  # every worker is up before the first arrival

    def worker() -> None:
        while not stop.is_set():
            with lock:
                index = next(claimed, None)
            if index is None:
                return
            intended = start + arrivals[index]
            if (wait := intended - run.now()) > 0:
                time.sleep(wait)
            run.execute(label_of(index), intended)

    with _fine_switching():
        return run.join([threading.Thread(target=worker, daemon=True) for _ in range(workers)])
