"""Reading a probe timeline: recovery after K passing probes, the error window, availability, the steady state."""

import itertools
import time

import pytest

from verify.core.checks import CheckFailedError, Cleanup, Context
from verify.failover import checks
from verify.failover.plan import FailoverPlan
from verify.failover.timeline import Probe, history, read, steady
from verify.failover.traffic import Prober


def timeline(marks: str, every: float = 0.1) -> list[Probe]:
    """Probes from a string: '.' passed, 'x' failed, one every `every` seconds from 0."""
    return [Probe(round(i * every, 3), mark == ".", None if mark == "." else "refused") for i, mark in enumerate(marks)]


def test_recovery_is_the_start_of_k_passing_probes_after_the_last_failure() -> None:
    reading = read(timeline("....xxx.x......"), since=0.4, consecutive=5)
    assert reading.first_failure == 0.4
    assert reading.recovered == 0.9, "the lone pass at 0.7 was not recovery: 0.8 failed again"
    assert (reading.probes, reading.failures) == (11, 4)
    assert reading.availability == round(100 * 7 / 11, 2)
    assert reading.first_error == "refused"


def test_no_recovery_until_k_probes_have_passed() -> None:
    assert read(timeline("..xx..."), since=0.2, consecutive=5).recovered is None


def test_a_fault_nobody_felt_recovers_at_its_injection() -> None:
    reading = read(timeline(".........."), since=0.3, consecutive=5)
    assert reading.recovered == 0.3 and reading.first_failure is None and reading.availability == 100


def test_probes_before_the_injection_do_not_count() -> None:
    reading = read(timeline("xx......"), since=0.2, consecutive=3)
    assert reading.failures == 0 and reading.recovered == 0.2


def test_steady_means_the_last_k_passed() -> None:
    assert steady(timeline("x....."), 5)
    assert not steady(timeline("....x"), 5)
    assert not steady(timeline("..."), 5)


def test_a_history_counts_the_window_and_names_the_last_distinct_errors_most_recent_first() -> None:
    probes = [
        Probe(0.0, False, "ConnectionRefusedError: refused"),
        Probe(0.1, True),
        Probe(0.2, True),
        Probe(0.3, False, "TimeoutError: no answer within 2s"),
        Probe(0.4, False, "ConnectionRefusedError: refused"),
        Probe(0.5, True),
    ]
    found = history(probes)
    assert (found.probes, found.passed, found.failed, found.longest_run) == (6, 3, 3, 2)
    assert found.errors == (("ConnectionRefusedError: refused", 2), ("TimeoutError: no answer within 2s", 1))
    assert found.text() == (
        "6 probes, 3 passed, 3 failed, at most 2 in a row passed; "
        "last errors: ConnectionRefusedError: refused (2x); TimeoutError: no answer within 2s (1x)"
    )


def test_a_history_names_three_errors_and_counts_the_older_ones() -> None:
    probes = [Probe(i / 10, False, f"error {i}") for i in range(5)]
    text = history(probes).text()
    assert text.endswith("last errors: error 4 (1x); error 3 (1x); error 2 (1x); and 2 other errors before"), text
    assert history([]).text() == "0 probes, 0 passed, 0 failed, at most 0 in a row passed"


COUNTER = itertools.count()


def flapping() -> None:
    """A probe that passes every third time: never 5 in a row."""
    if next(COUNTER) % 3:
        raise ConnectionRefusedError("refused")


def test_no_steady_state_within_the_settle_window_fails_with_its_history_and_said_so_while_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(checks, "PROGRESS_EVERY", 0.3)
    said: list[str] = []
    context = Context("run", None, Cleanup(), progress=said.append)
    prober = Prober(flapping, 0.05, 1.0, time.perf_counter())
    prober.start()
    began = time.monotonic()
    try:
        with pytest.raises(CheckFailedError) as failed:
            checks.wait_steady(prober, FailoverPlan(probe_interval=0.05, settle=1.0), context, "failover.x")
    finally:
        prober.finish(2)
    assert 1.0 <= time.monotonic() - began < 3, "it waits the settle window, and no longer"
    message = str(failed.value)
    assert message.startswith("not in a steady state before the fault: 5 probes in a row did not pass within 1s")
    assert "at most 1 in a row passed; last errors: ConnectionRefusedError: refused (" in message, message
    figures = failed.value.figures
    assert figures["settle_s"] == 1.0 and figures["settle_probes"] >= 10
    assert 0 < figures["settle_failed_probes"] < figures["settle_probes"]
    assert said and all(line.startswith("failover.x: waiting for 5 passing probes in a row, ") for line in said)
    assert "s of 1s: " in said[0] and "failed" in said[0], said


def test_a_steady_service_is_waited_for_no_longer_than_k_probes() -> None:
    context = Context("run", None, Cleanup())
    prober = Prober(lambda: None, 0.05, 1.0, time.perf_counter())
    prober.start()
    began = time.monotonic()
    try:
        checks.wait_steady(prober, FailoverPlan(probe_interval=0.05, settle=30), context, "failover.x")
    finally:
        prober.finish(2)
    assert time.monotonic() - began < 2
