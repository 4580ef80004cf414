"""Reading a probe timeline: recovery after K passing probes, the error window, availability."""

from verify.failover.timeline import Probe, read, steady


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
