"""Traffic during a fault: a prober at a fixed interval, background queries and a background producer.

All three share the scenario's clock (seconds since one perf_counter reading), so a probe, a query
and an acknowledgement can be placed on one timeline with the injection.
"""

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from verify.core.targets import Targets
from verify.failover.timeline import Probe
from verify.load import driver
from verify.load.driver import describe
from verify.pipeline.checks import event
from verify.smoke.kafka import idempotent_producer


class Background:
    """A daemon thread running `body(stop)` until stopped."""

    def __init__(self, name: str, body: Callable[[threading.Event], None]):
        self.stop = threading.Event()
        self._thread = threading.Thread(target=body, args=(self.stop,), name=name, daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def finish(self, seconds: float) -> bool:
        """Stop and wait up to `seconds`; whether the thread ended."""
        self.stop.set()
        self._thread.join(seconds)
        return not self._thread.is_alive()


class Prober(Background):
    """Runs a probe every `interval` seconds on a fixed schedule, each bounded by `timeout`.

    A service that waits instead of failing (Presto queues a query while it has no worker; a stopped
    process accepts connections and never answers) fails the probe at its timeout: the probe's thread
    is left to end on its own, and the ticks it covered are skipped.
    """

    def __init__(self, probe: Callable[[], None], interval: float, timeout: float, origin: float):
        self.probes: list[Probe] = []
        self._probe, self._interval, self._timeout, self._origin = probe, interval, timeout, origin
        super().__init__("prober", self._loop)

    def now(self) -> float:
        """Seconds on the scenario's clock."""
        return time.perf_counter() - self._origin

    def _once(self) -> Probe:
        at, passed = self.now(), threading.Event()
        errors: list[str] = []

        def attempt() -> None:
            try:
                self._probe()
                passed.set()
            except Exception as error:  # a failed probe is data, never a crash
                errors.append(describe(error))

        worker = threading.Thread(target=attempt, name="probe", daemon=True)
        worker.start()
        worker.join(self._timeout)
        if worker.is_alive():
            return Probe(at, False, f"TimeoutError: no answer within {self._timeout:g}s")
        return Probe(at, passed.is_set(), errors[0] if errors else None)

    def _loop(self, stop: threading.Event) -> None:
        start, tick = self.now(), 0
        while not stop.is_set():
            self.probes.append(self._once())
            tick = max(tick + 1, int((self.now() - start) / self._interval) + 1)
            stop.wait(max(0.0, start + tick * self._interval - self.now()))


class QueryLoad(Background):
    """`streams` closed-loop streams running one query over and over until stopped."""

    def __init__(self, operation: driver.Operation, label: str, streams: int, origin: float):
        self.outcomes: list[driver.Outcome] = []

        def body(stop: threading.Event) -> None:
            self.outcomes = driver.closed_loop([[label]] * streams, operation, stop, math.inf, origin)

        super().__init__("queries", body)


@dataclass
class Ledger:
    """What the producer sent and what Kafka acknowledged, by event key, with the clock time of each ack."""

    sent: int = 0
    acked: dict[str, float] = field(default_factory=dict)
    failed: int = 0
    first_error: str | None = None


class Producer(Background):
    """Sends events with unique keys to the stack's topic at `rate` per second (acks=all, idempotent)."""

    def __init__(self, targets: Targets, run_id: str, rate: float, timeout: float, origin: float):
        self.ledger = Ledger()
        self._producer = idempotent_producer(targets, timeout)
        self.run_id = run_id
        """The run_id of every event it sends."""
        self._targets, self._rate, self._origin = targets, rate, origin
        super().__init__("producer", self._loop)

    def _delivered(self, error: object, message: object) -> None:
        if error is None:
            self.ledger.acked[message.key().decode()] = time.perf_counter() - self._origin  # type: ignore[attr-defined]
        else:
            self.ledger.failed += 1
            self.ledger.first_error = self.ledger.first_error or str(error)

    def _loop(self, stop: threading.Event) -> None:
        began, topic = time.perf_counter(), self._targets.expected.kafka_topic
        while not stop.is_set():
            index = self.ledger.sent
            key = f"{self.run_id}-{index:07d}"
            try:
                self._producer.produce(
                    topic, key=key, value=event(key, self.run_id, index), on_delivery=self._delivered
                )
            except BufferError:  # the local queue is full while Kafka is away: wait for room
                self._producer.poll(0.1)
                continue
            self.ledger.sent += 1
            self._producer.poll(0)
            stop.wait(max(0.0, began + (index + 1) / self._rate - time.perf_counter()))

    def drain(self, seconds: float) -> int:
        """Stop producing and wait up to `seconds` for every outstanding acknowledgement; how many are left."""
        self.finish(5)
        return self._producer.flush(seconds)
